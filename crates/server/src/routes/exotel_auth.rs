//! `GET /exotel/auth/check`: proves the Exotel credentials work by asking
//! Exotel (the simulator in sandbox mode) for the account.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use mangwale_providers::exotel::client::ExotelError;
use serde_json::{Value, json};

use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/exotel/auth/check", get(check))
}

/// `{ok: true, accountSid}`; a refusal by Exotel is a 502 that says why, an
/// unreachable Exotel a 503.
async fn check(State(state): State<AppState>) -> AppResult<Json<Value>> {
    match state.exotel.client.account().await {
        Ok(account) => Ok(Json(json!({
            "ok": true,
            "accountSid": account.sid,
            "friendlyName": account.friendly_name,
            "status": account.status,
            "mode": state.config.mode.as_str(),
        }))),
        Err(ExotelError::Permanent { status, message, .. }) => Err(AppError::BadGateway {
            code: "exotel_refused",
            message: format!("Exotel answered {status}: {message}"),
        }),
        Err(e) => Err(AppError::Unavailable {
            code: "exotel_unavailable",
            message: format!("Exotel could not be reached: {}", e.message()),
        }),
    }
}
