//! `/_sim/exotel/*`: the in-process Exotel simulator's control endpoints on
//! the service's own port, in sandbox mode only, so that a developer can
//! place a pretend inbound call (and see what happened) with one curl. In
//! live mode there is no simulator and these paths answer 404.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use crate::error::AppError;
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/_sim/exotel", any(index))
        .route("/_sim/exotel/", any(index))
        .route("/_sim/exotel/{*path}", any(control))
}

async fn index(state: State<AppState>, method: Method, body: Bytes) -> Response {
    forward(&state, &method, "", &body).await
}

async fn control(state: State<AppState>, method: Method, Path(path): Path<String>, body: Bytes) -> Response {
    forward(&state, &method, &path, &body).await
}

/// The simulator's own answer to `/_sim/{path}`, status and JSON as it gives them.
async fn forward(state: &AppState, method: &Method, path: &str, body: &[u8]) -> Response {
    let Some(sim) = &state.exotel.sim else {
        return AppError::NotFound("the Exotel simulator runs only in sandbox mode".into()).into_response();
    };
    let (status, answer) = sim.control(method, path, body).await;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(answer)).into_response()
}
