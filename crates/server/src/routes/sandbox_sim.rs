//! `/_sim/exotel/*`: the in-process Exotel simulator's control endpoints on
//! the service's own port, in sandbox mode only, so that a developer can
//! place a pretend inbound call (and see what happened) with one curl. In
//! live mode there is no simulator and these paths answer 404.
//!
//! Two entries of the service's own: `POST /_sim/exotel/voice-order` places
//! a pretend voice order (the simulator's `voice-order`, answered with where
//! to watch it), and `GET /_sim/exotel/timeline/{call_sid}` shows a call's
//! timeline entries (every turn with its transcript) and the orders it made.
//!
//! The in-process WhatsApp and app-push simulators' control endpoints are
//! under `/_sim/whatsapp/*` and `/_sim/push/*` the same way (when they run:
//! no `WHATSAPP_*` / `PUSH_PROVIDER` set), and `GET /_sim/phones` is the
//! directory of the sandbox's virtual phones (the console's phones page).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use mangwale_core::E164;
use serde::Serialize;
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
        .route("/_sim/whatsapp", any(whatsapp_index))
        .route("/_sim/whatsapp/", any(whatsapp_index))
        .route("/_sim/whatsapp/{*path}", any(whatsapp_control))
        .route("/_sim/push", any(push_index))
        .route("/_sim/push/", any(push_index))
        .route("/_sim/push/{*path}", any(push_control))
        .route("/_sim/phones", get(phones))
}

async fn whatsapp_index(state: State<AppState>, method: Method, body: Bytes) -> Response {
    forward_whatsapp(&state, &method, "", &body).await
}

async fn whatsapp_control(state: State<AppState>, method: Method, Path(path): Path<String>, body: Bytes) -> Response {
    forward_whatsapp(&state, &method, &path, &body).await
}

/// The WhatsApp simulator's own answer to `/_sim/{path}`.
async fn forward_whatsapp(state: &AppState, method: &Method, path: &str, body: &[u8]) -> Response {
    let Some(sim) = &state.channels.whatsapp_sim else {
        return AppError::NotFound("the WhatsApp simulator runs only in sandbox mode without WHATSAPP_*".into())
            .into_response();
    };
    let (status, answer) = sim.control(method, path, body).await;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(answer)).into_response()
}

async fn push_index(state: State<AppState>, method: Method, body: Bytes) -> Response {
    forward_push(&state, &method, "", &body)
}

async fn push_control(state: State<AppState>, method: Method, Path(path): Path<String>, body: Bytes) -> Response {
    forward_push(&state, &method, &path, &body)
}

/// The push simulator's own answer to `/_sim/{path}`.
fn forward_push(state: &AppState, method: &Method, path: &str, body: &[u8]) -> Response {
    let Some(sim) = &state.channels.push_sim else {
        return AppError::NotFound("the push simulator runs only in sandbox mode without PUSH_PROVIDER".into())
            .into_response();
    };
    let (status, answer) = sim.control(method, path, body);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(answer)).into_response()
}

/// One virtual phone of the directory.
#[derive(Debug, Serialize)]
struct VirtualPhone {
    number: String,
    /// `vendor`, `rider`, `customer`, `admin` or `order_desk`.
    role: &'static str,
    name: String,
    /// The language the person takes calls in.
    language: String,
    /// The party's id (a store, rider or customer id of the demo data).
    #[serde(skip_serializing_if = "Option::is_none")]
    party_id: Option<String>,
    /// Who app pushes to this person are for (`vendor_12`: the FCM topic,
    /// or the app backend's `<type>_<id>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    push_recipient: Option<String>,
}

/// An ExoPhone the phones can dial, and what it is for.
#[derive(Debug, Serialize)]
struct DialableExoPhone {
    number: String,
    /// `incoming` (a voice order), `missed_call`, `masking`, or another flow's id.
    purpose: String,
    flow_id: String,
}

/// `GET /_sim/phones`: the sandbox's virtual phones (the demo vendors,
/// riders and customers of the Jupiter simulator, the admin and the order
/// desk) and the ExoPhones they can call.
async fn phones(state: State<AppState>) -> Result<Json<Value>, AppError> {
    let Some(sim) = &state.exotel.sim else {
        return Err(AppError::NotFound("the virtual phones exist only in sandbox mode".into()));
    };
    let mut directory = Vec::new();
    let config = &state.config;
    for (number, role, name) in [
        (&config.admin_support_phone, "admin", "Admin support"),
        (&config.order_desk_phone, "order_desk", "Order desk"),
    ] {
        if let Some(number) = number {
            directory.push(VirtualPhone {
                number: number.as_str().to_string(),
                role,
                name: name.to_string(),
                language: "en".into(),
                party_id: None,
                push_recipient: None,
            });
        }
    }
    if let Some(jupiter) = &state.jupiter.sim {
        let data = jupiter.data();
        let phone = |text: &str| E164::parse(text).ok().map(|n| n.as_str().to_string());
        for store in data.stores.iter().filter(|s| s.active) {
            directory.extend(phone(&store.phone).map(|number| VirtualPhone {
                number,
                role: "vendor",
                name: store.name.clone(),
                language: store.owner_language.clone(),
                party_id: Some(store.id.to_string()),
                push_recipient: Some(format!("vendor_{}", store.id)),
            }));
        }
        for rider in data.riders.iter().filter(|r| r.active) {
            directory.extend(phone(&rider.phone).map(|number| VirtualPhone {
                number,
                role: "rider",
                name: rider.name(),
                language: rider.language.clone(),
                party_id: Some(rider.id.to_string()),
                push_recipient: Some(format!("rider_{}", rider.id)),
            }));
        }
        for customer in &data.customers {
            directory.extend(phone(&customer.phone).map(|number| VirtualPhone {
                number,
                role: "customer",
                name: customer.name(),
                language: customer.language.clone(),
                party_id: Some(customer.id.to_string()),
                push_recipient: Some(format!("customer_{}", customer.id)),
            }));
        }
    }
    let mut exophones: Vec<DialableExoPhone> = sim
        .exophone_flows()
        .into_iter()
        .map(|(number, flow_id)| DialableExoPhone {
            number: number.as_str().to_string(),
            purpose: match flow_id.as_str() {
                mangwale_sim::exotel::INCOMING_FLOW => "incoming".to_string(),
                mangwale_sim::exotel::MISSED_CALL_FLOW => "missed_call".to_string(),
                mangwale_sim::exotel::MASKED_CALL_FLOW => "masking".to_string(),
                other => other.to_string(),
            },
            flow_id,
        })
        .collect();
    exophones.sort_by_key(|e| match e.purpose.as_str() {
        "incoming" => 0,
        "missed_call" => 1,
        "masking" => 2,
        _ => 3,
    });
    Ok(Json(json!({
        "phones": directory,
        "exophones": exophones,
        "held": sim.held_phones().into_iter().map(|p| p.number.as_str().to_string()).collect::<Vec<_>>(),
        "whatsapp": state.channels.whatsapp_sim.is_some(),
        "push": state.channels.push_sim.is_some(),
    })))
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
