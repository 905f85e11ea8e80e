//! The yardstick for `benches/webhook_wrk.sh`: a bare axum handler that
//! parses the same form-encoded status callback as the service's
//! `POST /exotel/webhooks/call-status` and answers the same small JSON,
//! with nothing behind it (no store, no queue, no log). Run next to the
//! service in the same run, it shows what HTTP, form parsing and the load
//! generator cost on this machine on their own.
//!
//!     cargo run --release -p mangwale-server --example bare_form_handler -- 127.0.0.1:3911

use axum::routing::post;
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// The same allocator as the service's binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The fields the service reads from a terminal status callback.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)] // parsed, as the service parses them, and then unused
struct StatusCallback {
    call_sid: String,
    event_type: Option<String>,
    status: Option<String>,
    date_updated: Option<String>,
    from: Option<String>,
    to: Option<String>,
    conversation_duration: Option<String>,
    custom_field: Option<String>,
}

async fn call_status(Form(callback): Form<StatusCallback>) -> Json<Value> {
    std::hint::black_box(&callback);
    Json(json!({"ok": true}))
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3911".into());
    // The service's runtime: tokio's default multi-threaded scheduler.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        let app = Router::new().route("/exotel/webhooks/call-status", post(call_status));
        axum::serve(listener, app).await.expect("serve");
    });
}
