//! Health, metrics and the API description.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

use crate::health::Verdict;
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

/// What runs in this process, for `/health`'s `features`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Running {
    pub exotel_simulator: bool,
    pub jupiter_simulator: bool,
    /// Jupiter's webhooks must carry a valid signature.
    pub jupiter_signatures: bool,
    pub whatsapp: bool,
    pub whatsapp_simulator: bool,
    pub app_push: bool,
    pub push_simulator: bool,
}

impl Running {
    pub fn of(state: &AppState) -> Running {
        Running {
            exotel_simulator: state.exotel.sim.is_some(),
            jupiter_simulator: state.jupiter.sim.is_some(),
            jupiter_signatures: state.jupiter.webhook_secret.is_some(),
            whatsapp: state.channels.whatsapp.is_some(),
            whatsapp_simulator: state.channels.whatsapp_sim.is_some(),
            app_push: state.channels.push.is_some(),
            push_simulator: state.channels.push_sim.is_some(),
        }
    }

    /// The features that are configured and running: the fixed core, then
    /// each channel and simulator only when it is there.
    pub fn features(self) -> Vec<&'static str> {
        let mut features = vec![
            "durable-jobs",
            "timeline",
            "metrics",
            "exotel-client",
            "exotel-webhooks",
            "jupiter-client",
            "jupiter-webhooks",
            "escalation-ladders",
            "ivr-menus",
            "analytics",
        ];
        let optional = [
            (self.exotel_simulator, "exotel-simulator"),
            (self.jupiter_simulator, "jupiter-simulator"),
            (self.jupiter_signatures, "jupiter-webhook-signatures"),
            (self.whatsapp, "whatsapp"),
            (self.whatsapp_simulator, "whatsapp-simulator"),
            (self.app_push, "app-push"),
            (self.push_simulator, "push-simulator"),
        ];
        features.extend(optional.into_iter().filter(|(on, _)| *on).map(|(_, name)| name));
        features
    }
}

/// `status` is `ok` when everything answers, `degraded` when a dependency
/// other than the database is down or jobs a handler of this build runs are
/// overdue (jobs of a kind no handler runs yet are listed under
/// `queue.awaitingHandler` instead), and `down` (HTTP 503,
/// so a load balancer takes the replica out) when the database is unreachable.
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let snapshot = state.health.snapshot();
    let c = &snapshot.connections;
    let verdict = snapshot.verdict();
    let code = if verdict == Verdict::Down { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let queue = match snapshot.queue {
        Some(q) => {
            json!({"pending": q.pending, "overdue": q.overdue, "running": q.running, "dead": q.dead, "lag_ms": q.lag_ms,
                   "awaitingHandler": snapshot.awaiting_handler, "deadByKind": snapshot.dead_by_kind})
        }
        None => Value::Null,
    };
    let body = json!({
        "status": verdict.as_str(),
        "service": "exotel-service",
        "version": env!("CARGO_PKG_VERSION"),
        "mode": state.config.mode.as_str(),
        "features": Running::of(&state).features(),
        "database": state.store.backend().name(),
        "connections": c,
        "speech": state.speech.status(),
        "queue": queue,
        "components": snapshot.components,
        "failedComponents": snapshot.failed_components(),
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

#[cfg(test)]
mod tests {
    use super::Running;

    #[test]
    fn features_list_only_what_runs() {
        // Live mode with neither WhatsApp nor push configured.
        let live = Running { jupiter_signatures: true, ..Running::default() }.features();
        for absent in ["whatsapp", "app-push", "exotel-simulator", "jupiter-simulator", "push-simulator"] {
            assert!(!live.contains(&absent), "{absent} in {live:?}");
        }
        assert!(live.contains(&"durable-jobs") && live.contains(&"jupiter-webhook-signatures"));
        let sandbox = Running {
            exotel_simulator: true,
            jupiter_simulator: true,
            whatsapp: true,
            whatsapp_simulator: true,
            app_push: true,
            push_simulator: true,
            ..Running::default()
        }
        .features();
        for present in ["exotel-simulator", "jupiter-simulator", "whatsapp", "whatsapp-simulator", "app-push"] {
            assert!(sandbox.contains(&present), "{present} not in {sandbox:?}");
        }
        assert!(!sandbox.contains(&"jupiter-webhook-signatures"));
    }
}
