//! The real application on 127.0.0.1:0, driven over HTTP.

mod common;

#[path = "api/campaigns.rs"]
mod campaigns;
#[path = "api/deploy.rs"]
mod deploy;
#[path = "api/event_stream.rs"]
mod event_stream;
#[path = "api/ops.rs"]
mod ops;

use common::{API_KEY, Setup, TOKEN, TestApp};
use mangwale_store::NewJob;
use serde_json::{Value, json};
use tokio::net::TcpListener;

#[tokio::test]
async fn health_reports_mode_database_and_queue() {
    let app = TestApp::start(&[]).await;
    let (status, body) = app.get("/health", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["mode"], "sandbox");
    assert_eq!(body["database"], "sqlite");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["connections"]["database"]["connected"], true);
    assert!(body["connections"]["database"]["latency_ms"].is_u64());
    // Sandbox mode without JUPITER_URL runs the Jupiter and PHP simulator,
    // probed like the real thing.
    assert_eq!(body["connections"]["jupiter"]["connected"], true, "{body}");
    assert!(body["connections"]["jupiter"]["url"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    assert_eq!(body["connections"]["php"]["connected"], true);
    assert_eq!(body["status"], "ok");
    // The daily maintenance job is scheduled at start-up.
    assert!(body["queue"]["pending"].as_u64().unwrap() + body["queue"]["running"].as_u64().unwrap() <= 1);
    assert_eq!(body["queue"]["dead"], 0);
    let features: Vec<&str> = body["features"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for feature in ["durable-jobs", "exotel-simulator", "jupiter-simulator", "whatsapp-simulator", "push-simulator"] {
        assert!(features.contains(&feature), "{feature} not in {features:?}");
    }
    assert!(!features.contains(&"jupiter-webhook-signatures"), "no JUPITER_WEBHOOK_SECRET: {features:?}");
    app.stop().await;
}

#[tokio::test]
async fn health_shows_jupiter_and_php_latency_from_the_probe() {
    let fake =
        axum::Router::new().route("/health", axum::routing::get(|| async { axum::Json(json!({"status": "ok"})) }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, fake).await.unwrap() });
    // The PHP site answers 404 at its root, which still proves it is up.
    let app = TestApp::start(&[
        ("JUPITER_URL", &url),
        ("PHP_BACKEND_URL", &url),
        ("JUPITER_WEBHOOK_SECRET", "a-long-webhook-secret-0001"),
    ])
    .await;
    let (_, body) = app.get("/health", None).await;
    // A real Jupiter: its simulator is not running, and its webhooks must be signed.
    let features = body["features"].as_array().unwrap();
    assert!(!features.iter().any(|f| f == "jupiter-simulator"), "{body}");
    assert!(features.iter().any(|f| f == "jupiter-webhook-signatures"), "{body}");
    assert_eq!(body["connections"]["jupiter"]["connected"], true, "{body}");
    assert!(body["connections"]["jupiter"]["latency_ms"].is_u64());
    assert_eq!(body["connections"]["jupiter"]["latency"], body["connections"]["jupiter"]["latency_ms"]);
    assert_eq!(body["connections"]["php"]["connected"], true);
    assert_eq!(body["status"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = TestApp::start(&[]).await;
    let (status, body) = app.get("/no/such/route", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    let res = app.http.delete(format!("{}/health", app.base)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 405);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    app.stop().await;
}

#[tokio::test]
async fn internal_routes_need_an_api_key() {
    let app = TestApp::start(&[]).await;
    for key in [None, Some("wrong-key-0123456789"), Some("")] {
        let (status, body) = app.get("/exotel/auth/check", key).await;
        assert_eq!(status, 401, "{key:?}");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(!body.to_string().contains(API_KEY));
    }
    // Unknown internal routes do not reveal whether they exist.
    assert_eq!(app.get("/comms/anything", None).await.0, 401);
    let (status, body) = app.get("/exotel/auth/check", Some(API_KEY)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true);
    assert_eq!(body["accountSid"], mangwale_sim::exotel::DEFAULT_ACCOUNT_SID, "the sandbox simulator's account");
    let res = app
        .http
        .get(format!("{}/exotel/auth/check", app.base))
        .header("Authorization", format!("Bearer {API_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    app.stop().await;
}

#[tokio::test]
async fn exotel_callbacks_need_the_webhook_token() {
    let app = TestApp::start(&[]).await;
    for query in ["", "?token=wrong-token-0123456789", "?CallSid=abc"] {
        let res = app.http.post(format!("{}/exotel/ivr/incoming{query}", app.base)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 401, "{query}");
    }
    // An API key is no substitute for the webhook token.
    let res = app
        .http
        .post(format!("{}/exotel/webhooks/call-status", app.base))
        .header("X-API-Key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let res = app.http.get(format!("{}/exotel/ivr/incoming?CallSid=x&token={TOKEN}", app.base)).send().await.unwrap();
    assert_ne!(res.status().as_u16(), 401, "the token is accepted");
    app.stop().await;
}

#[tokio::test]
async fn request_ids_are_set_and_propagated() {
    let app = TestApp::start(&[]).await;
    let res = app.http.get(format!("{}/health", app.base)).send().await.unwrap();
    let generated = res.headers().get("x-request-id").unwrap().to_str().unwrap().to_string();
    assert_eq!(generated.len(), 36);
    let res = app.http.get(format!("{}/health", app.base)).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(res.headers().get("x-request-id").unwrap(), "abc-123");
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_matched_route() {
    let app = TestApp::start(&[]).await;
    app.get("/health", None).await;
    app.get("/no/such/route/12345", None).await;
    app.state.health.probe_once().await;
    let text = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("mangwale_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/health\""));
    assert!(!text.contains("12345"), "raw paths never become labels");
    assert!(text.contains("mangwale_jobs_pending"));
    assert!(text.contains("mangwale_jobs_dead"));
    assert!(text.contains("mangwale_job_queue_lag_seconds"));
    app.stop().await;
}

#[tokio::test]
async fn sandbox_keys_are_generated_once_and_survive_restarts() {
    let first = TestApp::start_setup(Setup { generated_credentials: true, ..Setup::default() }).await;
    let key = first.state.credentials.api_keys[0].expose().to_string();
    let token = first.state.credentials.webhook_token.expose().to_string();
    assert!(key.starts_with("mwk_") && key.len() > 32);
    assert!(token.starts_with("mwt_") && token.len() > 32);
    assert_eq!(first.get("/exotel/auth/check", Some(&key)).await.0, 200, "the generated key works");
    let db = first.stop_keeping_db().await;

    let again = TestApp::start_setup(Setup { generated_credentials: true, db: Some(db), ..Setup::default() }).await;
    assert_eq!(again.state.credentials.api_keys[0].expose(), key);
    assert_eq!(again.state.credentials.webhook_token.expose(), token);
    again.stop().await;
}

#[tokio::test]
async fn shutdown_stops_the_server_and_the_workers() {
    let app = TestApp::start_with_workers(&[]).await;
    app.state
        .store
        .enqueue(NewJob::new(mangwale_server::maintenance::PRUNE_JOBS, "extra-prune", json!({}), chrono::Utc::now()))
        .await
        .unwrap();
    let base = app.base.clone();
    app.shutdown.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(20), app.served).await.expect("stops promptly").unwrap();
    assert!(reqwest::get(format!("{base}/health")).await.is_err(), "no longer listening");
    app.db.cleanup().await;
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = TestApp::start(&[]).await;
    let spec: Value = serde_json::from_str(mangwale_server::routes::system::OPENAPI).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    assert!(!paths.is_empty());
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let concrete = path.replace("{orderId}", "MW-1").replace("{id}", "x");
            let url = format!("{}{concrete}?token={TOKEN}", app.base);
            let req = app.http.request(method.to_uppercase().parse().unwrap(), url).header("X-API-Key", API_KEY);
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let streamed = res.headers().get("content-type").is_some_and(|t| t == "text/event-stream");
            // A handler may answer 404 for an unknown id; the router's own
            // fallback says "no such route". A stream never ends: its
            // status is the answer.
            let body: Value = if streamed { Value::Null } else { res.json().await.unwrap_or(Value::Null) };
            let unrouted = status == 405 || (status == 404 && body["error"]["message"] == "no such route");
            assert!(!unrouted, "{method} {path} is documented but answers {status} {body}");
        }
    }
    app.stop().await;
}

/// The other way round: every path the router serves (read from the route
/// table in the source) is in the OpenAPI document.
#[test]
fn every_routed_path_is_documented() {
    let spec: Value = serde_json::from_str(mangwale_server::routes::system::OPENAPI).unwrap();
    let normalise = |path: &str| {
        let mut out = String::new();
        let mut in_param = false;
        for c in path.trim_end_matches('/').chars() {
            match c {
                '{' => {
                    in_param = true;
                    out.push_str("{}");
                }
                '}' => in_param = false,
                _ if in_param => {}
                _ => out.push(c),
            }
        }
        out
    };
    let documented: std::collections::HashSet<String> =
        spec["paths"].as_object().unwrap().keys().map(|p| normalise(p)).collect();
    let mut sources = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))];
    let mut undocumented = Vec::new();
    while let Some(path) = sources.pop() {
        if path.is_dir() {
            sources.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Unit tests' own routers are not the service's.
        let text = text.split("#[cfg(test)]").next().unwrap();
        for route in text.split(".route(").skip(1) {
            let Some(literal) = route.trim_start().strip_prefix('"').and_then(|r| r.split('"').next()) else {
                continue;
            };
            let route = normalise(literal);
            // Jupiter's webhooks are one route over the documented events.
            let route = route.replace("/webhooks/jupiter/{}/{}", "/webhooks/jupiter/order/new");
            if !documented.contains(&route) {
                undocumented.push(format!("{literal} ({})", path.display()));
            }
        }
    }
    assert!(undocumented.is_empty(), "routed but not in docs/openapi.json: {undocumented:#?}");
}

#[tokio::test]
async fn analytics_refuse_dates_out_of_range_naming_the_field() {
    let app = TestApp::start(&[]).await;
    for (query, field) in [
        ("to=-262143-01-01", "to"),
        ("from=-262143-01-01", "from"),
        ("to=%2B262142-12-31", "to"),
        ("from=1900-01-01&to=2026-01-01", "from"),
        ("to=2200-01-01T00:00:00Z", "to"),
        ("to=yesterday", "to"),
    ] {
        let (status, body) = app.get(&format!("/exotel/ivr/analytics?{query}"), Some(API_KEY)).await;
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some(field)), "{query}: {body}");
    }
    let (status, body) = app.get("/exotel/ivr/analytics?from=2026-01-01&to=2026-01-02", Some(API_KEY)).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}
