//! `GET /exotel/auth/check`: proves the Exotel credentials work.

use axum::routing::get;

use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/exotel/auth/check", get(check))
}

/// Answers `{ok, accountSid}` once the Exotel client is part of the service;
/// until then it says so plainly instead of pretending.
async fn check() -> AppResult<axum::Json<serde_json::Value>> {
    Err(AppError::Unavailable {
        code: "exotel_client_unavailable",
        message: "this build has no Exotel client yet, so the account cannot be checked".into(),
    })
}
