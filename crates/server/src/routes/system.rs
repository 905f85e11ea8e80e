//! Health, metrics and the API description.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

/// What this build can do, for `/health`.
pub const FEATURES: &[&str] = &[
    "durable-jobs",
    "timeline",
    "metrics",
    "exotel-client",
    "exotel-webhooks",
    "exotel-simulator",
    "jupiter-client",
    "jupiter-webhooks",
    "escalation-ladders",
    "ivr-menus",
    "whatsapp",
    "app-push",
    "analytics",
];

/// `status` is `ok` when everything answers, `degraded` when a dependency
/// other than the database is down or jobs a handler of this build runs are
/// overdue (jobs of a kind no handler runs yet are listed under
/// `queue.awaitingHandler` instead), and `down` (HTTP 503,
/// so a load balancer takes the replica out) when the database is unreachable.
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let snapshot = state.health.snapshot();
    let c = &snapshot.connections;
    let overdue = snapshot.late_jobs();
    let (status, code) = if !c.database.connected {
        ("down", StatusCode::SERVICE_UNAVAILABLE)
    } else if !c.jupiter.connected || !c.php.connected || overdue > 0 {
        ("degraded", StatusCode::OK)
    } else {
        ("ok", StatusCode::OK)
    };
    let queue = match snapshot.queue {
        Some(q) => {
            json!({"pending": q.pending, "overdue": q.overdue, "running": q.running, "dead": q.dead, "lag_ms": q.lag_ms,
                   "awaitingHandler": snapshot.awaiting_handler})
        }
        None => Value::Null,
    };
    let body = json!({
        "status": status,
        "service": "exotel-service",
        "version": env!("CARGO_PKG_VERSION"),
        "mode": state.config.mode.as_str(),
        "features": FEATURES,
        "database": state.store.backend().name(),
        "connections": c,
        "queue": queue,
        "time": state.clock.now(),
    });
    (code, Json(body))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// The OpenAPI document, kept in the repository and checked against the
/// router by the tests.
pub const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}
