//! `/_sim/exotel/*`: the in-process Exotel simulator's control endpoints on
//! the service's own port, in sandbox mode only, so that a developer can
//! place a pretend inbound call (and see what happened) with one curl. In
//! live mode there is no simulator and these paths answer 404.
//!
//! Two entries of the service's own: `POST /_sim/exotel/voice-order` places
//! a pretend voice order (the simulator's `voice-order`, answered with where
//! to watch it), and `GET /_sim/exotel/timeline/{call_sid}` shows a call's
//! timeline entries (every turn with its transcript) and the orders it made.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

use crate::error::AppError;
use crate::state::AppState;

/// Timeline entries scanned for one call (newest calls are at the end of
/// the feed; a sandbox database holds far fewer).
const MAX_SCANNED: usize = 100_000;
const PAGE: u32 = 1_000;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/_sim/exotel/voice-order", post(voice_order))
        .route("/_sim/exotel/timeline/{call_sid}", get(call_timeline))
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

/// `POST /_sim/exotel/voice-order`: the simulator places the call; the
/// answer adds where to watch it.
async fn voice_order(state: State<AppState>, body: Bytes) -> Response {
    let Some(sim) = &state.exotel.sim else {
        return AppError::NotFound("the Exotel simulator runs only in sandbox mode".into()).into_response();
    };
    let (status, mut answer) = sim.control(&Method::POST, "voice-order", &body).await;
    if status == 200
        && let Some(sid) = answer["call_sid"].as_str().map(str::to_string)
    {
        let base = state.config.public_base_url.as_str().trim_end_matches('/').to_string();
        answer["watch"] = json!({
            "timeline": format!("{base}/_sim/exotel/timeline/{sid}"),
            "flow": format!("{base}/_sim/exotel/flows/{sid}"),
            "streams": format!("{base}/_sim/exotel/calls/{sid}/streams"),
            "call": format!("{base}/_sim/exotel/calls/{sid}"),
        });
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(answer)).into_response()
}

/// `GET /_sim/exotel/timeline/{call_sid}`: the call's timeline entries,
/// oldest first, and the orders they name with their timelines.
async fn call_timeline(state: State<AppState>, Path(call_sid): Path<String>) -> Result<Json<Value>, AppError> {
    if state.exotel.sim.is_none() {
        return Err(AppError::NotFound("the Exotel simulator runs only in sandbox mode".into()));
    }
    let mut events = Vec::new();
    let mut after = 0;
    let mut scanned = 0;
    loop {
        let page = state.store.events_after(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        scanned += page.len();
        events.extend(page.into_iter().filter(|e| e.call_sid.as_deref() == Some(call_sid.as_str())));
        if scanned >= MAX_SCANNED {
            break;
        }
    }
    let mut orders: Vec<String> = events.iter().filter_map(|e| e.order_id.clone()).collect();
    orders.dedup();
    let base = state.config.public_base_url.as_str().trim_end_matches('/').to_string();
    let orders: Vec<Value> = orders
        .into_iter()
        .map(|id| json!({"order_id": id, "timeline": format!("{base}/comms/timeline/{id}")}))
        .collect();
    Ok(Json(json!({"call_sid": call_sid, "events": events, "orders": orders})))
}
