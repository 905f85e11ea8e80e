//! What shipping relies on: Swagger UI at `/exotel/docs` from the embedded
//! assets, and the `health-check` command the container's HEALTHCHECK runs.

use std::process::Command;

use crate::common::TestApp;

#[tokio::test]
async fn swagger_ui_is_served_without_credentials_from_embedded_assets() {
    let app = TestApp::start(&[]).await;
    let res = app.http.get(format!("{}/exotel/docs", app.base)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    assert_eq!(header("cache-control"), "no-cache");
    assert!(header("content-security-policy").contains("script-src 'self'"), "{}", header("content-security-policy"));
    assert_eq!(header("x-frame-options"), "DENY");
    let page = res.text().await.unwrap();
    for linked in
        ["/exotel/docs/swagger-ui.css", "/exotel/docs/swagger-ui-bundle.js", "/exotel/docs/swagger-initializer.js"]
    {
        assert!(page.contains(linked), "{linked} not linked from {page}");
    }
    // The trailing-slash form is the same page.
    let slash = app.http.get(format!("{}/exotel/docs/", app.base)).send().await.unwrap();
    assert_eq!(slash.status().as_u16(), 200);
    assert_eq!(slash.text().await.unwrap(), page);

    for (path, content_type, marker) in [
        ("/exotel/docs/swagger-ui.css", "text/css; charset=utf-8", ".swagger-ui"),
        ("/exotel/docs/swagger-ui-bundle.js", "text/javascript; charset=utf-8", "SwaggerUIBundle"),
        ("/exotel/docs/swagger-initializer.js", "text/javascript; charset=utf-8", "/openapi.json"),
    ] {
        let res = app.http.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "{path}");
        let headers = res.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert_eq!(headers["cache-control"], "public, max-age=86400", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let etag = headers["etag"].to_str().unwrap().to_string();
        let body = res.text().await.unwrap();
        assert!(body.contains(marker), "{path} does not contain {marker}");
        // A browser revalidating its copy gets a 304 without the body.
        let again = app.http.get(format!("{}{path}", app.base)).header("If-None-Match", &etag).send().await.unwrap();
        assert_eq!(again.status().as_u16(), 304, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
    }

    // The document the UI loads is served, and lists the docs page itself.
    let (status, spec) = app.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(spec["paths"]["/exotel/docs"]["get"].is_object(), "/exotel/docs is not in the OpenAPI document");
    // Other /exotel/ routes still need the webhook token.
    let (status, _) = app.get("/exotel/docsx", None).await;
    assert_eq!(status, 401);
    app.stop().await;
}

#[tokio::test]
async fn health_check_command_exits_0_when_the_service_answers_and_1_when_not() {
    let app = TestApp::start(&[]).await;
    let port = app.base.rsplit(':').next().unwrap().to_string();
    let run = |port: &str| {
        let (port, dir) = (port.to_string(), std::env::temp_dir());
        tokio::task::spawn_blocking(move || {
            // A directory without a .env, so only these variables count.
            Command::new(env!("CARGO_BIN_EXE_mangwale-exotel"))
                .current_dir(dir)
                .arg("health-check")
                .env("PORT", port)
                .env("HOST", "0.0.0.0")
                .output()
                .unwrap()
        })
    };
    let up = run(&port).await.unwrap();
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    app.stop().await;
    let down = run(&port).await.unwrap();
    assert_eq!(down.status.code(), Some(1), "{}", String::from_utf8_lossy(&down.stderr));
    assert!(String::from_utf8_lossy(&down.stderr).contains("health-check"));
}

/// The metric names in `text`: `mangwale_…` tokens, histogram series
/// (`_bucket`, `_sum`, `_count`) folded into their histogram.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("mangwale_") {
        let tail = &rest[at..];
        let end =
            tail.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        names.insert(base.to_string());
        rest = &tail[end..];
    }
    names
}

fn rust_sources(dir: &std::path::Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn alerts_and_dashboard_use_only_metrics_the_service_records() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut sources = String::new();
    for krate in ["core", "store", "providers", "voice", "speech", "sim", "server"] {
        rust_sources(&root.join("crates").join(krate).join("src"), &mut sources);
    }
    let dashboard = std::fs::read_to_string(root.join("deploy/grafana/mangwale-exotel.json")).unwrap();
    let _: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let alerts = std::fs::read_to_string(root.join("deploy/prometheus/alerts.yml")).unwrap();
    for (file, text) in [("deploy/grafana/mangwale-exotel.json", &dashboard), ("deploy/prometheus/alerts.yml", &alerts)]
    {
        let names = metric_names(text);
        assert!(names.len() >= 5, "{file}: {names:?}");
        for name in names {
            assert!(sources.contains(&format!("\"{name}\"")), "{file} uses {name}, which no crate records");
        }
    }
}
