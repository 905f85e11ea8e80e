//! The operations console over HTTP: its embedded files and their headers,
//! the login, and the session cookie on the internal routes (401 without
//! it, 403 for an unsafe request without the CSRF token, 200 with both);
//! sessions survive a restart and end with their API key.

mod common;

use common::{API_KEY, Setup, TestApp};
use serde_json::{Value, json};

const VENDOR: &str = "+919876543210";

/// `(status, Set-Cookie, body)` of a login with `key`.
async fn login(app: &TestApp, key: Value) -> (u16, Option<String>, Value) {
    let res =
        app.http.post(format!("{}/console/login", app.base)).json(&json!({ "apiKey": key })).send().await.unwrap();
    let status = res.status().as_u16();
    let cookie = res.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string());
    (status, cookie, res.json().await.unwrap_or(Value::Null))
}

/// The `mw_console=<token>` pair of a Set-Cookie value.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().trim().to_string()
}

/// A logged-in session: the Cookie header value and the CSRF token.
async fn session(app: &TestApp) -> (String, String) {
    let (status, cookie, body) = login(app, json!(API_KEY)).await;
    assert_eq!(status, 200, "{body}");
    (pair(&cookie.unwrap()), body["csrfToken"].as_str().unwrap().to_string())
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.http.request(method.parse().unwrap(), format!("{}{path}", app.base));
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    if let Some(t) = csrf {
        req = req.header("X-CSRF-Token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn vendor_order(order: &str) -> Value {
    json!({
        "order_id": order, "vendor_id": "V-7", "vendor_phone": VENDOR, "vendor_name": "Krishna Kirana",
        "amount": 325, "items": "Poha x1", "payment_mode": "cod", "language": "hi"
    })
}

#[tokio::test]
async fn the_console_is_served_with_its_security_headers() {
    let app = TestApp::start(&[]).await;
    for path in ["/console", "/console/", "/console/index.html"] {
        let res = app.http.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let h = res.headers().clone();
        assert_eq!(h["content-type"], "text/html; charset=utf-8", "{path}");
        assert_eq!(h["cache-control"], "no-cache");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        let csp = h["content-security-policy"].to_str().unwrap();
        for part in ["default-src 'self'", "img-src 'self' data:", "media-src 'self' blob: data:", "connect-src 'self'"]
        {
            assert!(csp.contains(part), "{csp} lacks {part}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        let html = res.text().await.unwrap();
        assert!(html.contains(r#"<script type="module" src="/console/app.js"></script>"#));
    }
    for (path, ty) in [
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/app.css", "text/css; charset=utf-8"),
        ("/console/favicon.svg", "image/svg+xml"),
    ] {
        let res = app.http.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], ty, "{path}");
        assert!(res.headers().contains_key("content-security-policy"));
    }
    // Every file the table lists is served, and nothing else.
    for asset in mangwale_server::routes::console::ASSETS {
        let res = app.http.get(format!("{}/console/{}", app.base, asset.path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{}", asset.path);
        assert_eq!(res.bytes().await.unwrap().as_ref(), asset.bytes);
    }
    let (status, body) = send(&app, "GET", "/console/nothing.js", None, None, None).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = send(&app, "GET", "/console/..%2FCargo.toml", None, None, None).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_key_is_refused_without_a_cookie() {
    let app = TestApp::start(&[]).await;
    let (status, cookie, body) = login(&app, json!("not-the-key")).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(cookie, None, "no cookie for a refused login");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    let (status, cookie, body) = login(&app, Value::Null).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("apiKey")), "{body}");
    assert_eq!(cookie, None);
    // Not JSON at all.
    let res = app.http.post(format!("{}/console/login", app.base)).body("apiKey=x").send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("set-cookie").is_none());
    app.stop().await;
}

#[tokio::test]
async fn a_session_cookie_opens_the_internal_routes_and_unsafe_ones_need_the_csrf_token() {
    let app = TestApp::start(&[]).await;
    let (status, set_cookie, body) = login(&app, json!(API_KEY)).await;
    assert_eq!(status, 200, "{body}");
    let set_cookie = set_cookie.unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.contains(attr), "{set_cookie} lacks {attr}");
    }
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");
    assert!(set_cookie.starts_with("mw_console=v1."), "{set_cookie}");
    let cookie = pair(&set_cookie);
    let csrf = body["csrfToken"].as_str().unwrap().to_string();
    assert_eq!(body["expiresIn"], 43200);

    // Reading needs the cookie (or a key), nothing else.
    assert_eq!(send(&app, "GET", "/comms/events", None, None, None).await.0, 401);
    assert_eq!(send(&app, "GET", "/comms/events", Some(&cookie), None, None).await.0, 200);
    assert_eq!(send(&app, "GET", "/campaigns", Some(&cookie), None, None).await.0, 200);
    assert_eq!(send(&app, "GET", "/comms/events", Some("mw_console=v1.9999999999.00.00"), None, None).await.0, 401);

    // The session tells the page its CSRF token again.
    let (status, again) = send(&app, "GET", "/console/session", Some(&cookie), None, None).await;
    assert_eq!((status, again["csrfToken"].as_str()), (200, Some(csrf.as_str())));
    assert_eq!(send(&app, "GET", "/console/session", None, None, None).await.0, 401);

    // Changing something: 401 without the cookie, 403 without (or with a
    // wrong) CSRF token, through with both.
    let order = "MW-CONSOLE-1";
    let (status, body) = send(&app, "POST", "/comms/notify/vendor/order", None, None, Some(vendor_order(order))).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) =
        send(&app, "POST", "/comms/notify/vendor/order", Some(&cookie), None, Some(vendor_order(order))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("csrf_token_invalid")), "{body}");
    let (status, body) =
        send(&app, "POST", "/comms/notify/vendor/order", Some(&cookie), Some("0123"), Some(vendor_order(order))).await;
    assert_eq!(status, 403, "{body}");
    assert!(app.state.store.ladders_for_order(order).await.unwrap().is_empty(), "nothing started");
    let (status, body) =
        send(&app, "POST", "/comms/notify/vendor/order", Some(&cookie), Some(&csrf), Some(vendor_order(order))).await;
    assert_eq!(status, 200, "{body}");
    let id = body["escalationId"].as_str().unwrap().to_string();
    let stop = json!({"escalation_id": id, "action": "cancel", "actor": "console"});
    let (status, body) = send(&app, "POST", "/comms/stop", Some(&cookie), None, Some(stop.clone())).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = send(&app, "POST", "/comms/stop", Some(&cookie), Some(&csrf), Some(stop)).await;
    assert_eq!((status, body["stopped"].as_bool()), (200, Some(true)), "{body}");

    // Another session's token does not do.
    let (_, other_csrf) = session(&app).await;
    assert_ne!(other_csrf, csrf);
    let (status, _) = send(&app, "POST", "/comms/stop", Some(&cookie), Some(&other_csrf), Some(json!({}))).await;
    assert_eq!(status, 403);

    // API-key callers are unchanged: no CSRF token; a wrong key is 401 even
    // with a good cookie.
    let res = app
        .http
        .post(format!("{}/comms/stop", app.base))
        .header("X-API-Key", API_KEY)
        .json(&json!({"escalation_id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .http
        .get(format!("{}/comms/events", app.base))
        .header("X-API-Key", "wrong")
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Logging out clears the cookie.
    let res = app.http.post(format!("{}/console/logout", app.base)).header("Cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let cleared = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cleared.starts_with("mw_console=;") && cleared.contains("Max-Age=0"), "{cleared}");
    app.stop().await;
}

#[tokio::test]
async fn a_session_survives_a_restart_and_ends_when_its_key_is_rotated_out() {
    let first = TestApp::start(&[]).await;
    let (cookie, csrf) = session(&first).await;
    let db = first.stop_keeping_db().await;

    let again = TestApp::start_setup(Setup { db: Some(db), ..Setup::default() }).await;
    assert_eq!(send(&again, "GET", "/comms/events", Some(&cookie), None, None).await.0, 200, "after a restart");
    let (status, body) = send(&again, "GET", "/console/session", Some(&cookie), None, None).await;
    assert_eq!((status, body["csrfToken"].as_str()), (200, Some(csrf.as_str())));
    let db = again.stop_keeping_db().await;

    // The key that logged in is rotated out: its sessions end.
    let rotated = TestApp::start_setup(Setup {
        db: Some(db),
        vars: vec![("API_KEYS".into(), "a-brand-new-key-0123456789".into())],
        ..Setup::default()
    })
    .await;
    assert_eq!(send(&rotated, "GET", "/comms/events", Some(&cookie), None, None).await.0, 401);
    assert_eq!(send(&rotated, "GET", "/console/session", Some(&cookie), None, None).await.0, 401);
    rotated.stop().await;
}

#[tokio::test]
async fn the_cookie_is_secure_behind_https() {
    let app = TestApp::start(&[("PUBLIC_BASE_URL", "https://exotel.example.com")]).await;
    let (status, cookie, _) = login(&app, json!(API_KEY)).await;
    assert_eq!(status, 200);
    assert!(cookie.unwrap().contains("; Secure"));
    app.stop().await;
}
