//! The incumbent's `/masking/*` routes (same paths and shapes, now backed by
//! durable sessions) and the seed's masked and admin bridges. All need an
//! API key (see `auth`). Sessions show each party's role and masked phone,
//! never a full number.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{MethodRouter, get, post};
use mangwale_core::masking::{Leg, PartyPair, PartyRole};
use mangwale_core::{E164, OrderId};
use mangwale_store::MaskingOpen;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{AppError, AppResult};
use crate::extract::ApiJson;
use crate::idempotency::idempotent;
use crate::masking::{self, bridge, leg_of, legs_for_request, order_for_request, session_json};
use crate::routes::comms::Id;
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/masking/create", post(create))
        .route("/masking/customer-rider", open_pair(PartyPair::CustomerRider))
        .route("/masking/customer-vendor", open_pair(PartyPair::CustomerVendor))
        .route("/masking/rider-vendor", open_pair(PartyPair::RiderVendor))
        .route("/masking/session/{order_id}", get(session))
        .route("/masking/end", post(end))
        .route("/masking/active", get(active))
        .route("/masking/stats", get(stats))
        .route("/exotel/ivr/bridge/masked", post(idempotent(bridge_masked)))
        .route("/exotel/ivr/bridge/admin", post(idempotent(bridge_admin)))
}

fn order_id(field: &str, raw: &Option<Id>) -> AppResult<OrderId> {
    let raw = raw.as_ref().ok_or_else(|| AppError::invalid(field, format!("{field} is required")))?;
    OrderId::parse(&raw.text()).map_err(|e| AppError::invalid(field, format!("{field}: {e}")))
}

fn phone(field: &str, raw: &Option<String>) -> AppResult<E164> {
    let raw = raw
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| AppError::invalid(field, format!("{field} is required")))?;
    E164::parse(raw).map_err(|e| AppError::invalid(field, format!("{field}: {e}")))
}

fn role(field: &str, raw: &Option<String>, default: PartyRole) -> AppResult<PartyRole> {
    match raw.as_deref() {
        None => Ok(default),
        Some(r) => r.parse().map_err(|e| AppError::invalid(field, format!("{field}: {e}"))),
    }
}

fn opened(
    outcome: MaskingOpen,
    now: chrono::DateTime<chrono::Utc>,
    message: &str,
) -> AppResult<(StatusCode, Json<Value>)> {
    let (session, existing) = match outcome {
        MaskingOpen::Opened { session, .. } => (session, false),
        MaskingOpen::Existing(session) => (session, true),
        MaskingOpen::PoolEmpty => {
            return Err(AppError::Unavailable {
                code: "masking_pool_empty",
                message: "EXOTEL_MASKING_NUMBERS is empty: no masked number to give".into(),
            });
        }
    };
    let status = if existing { StatusCode::OK } else { StatusCode::CREATED };
    Ok((
        status,
        Json(json!({
            "success": true,
            "existing": existing,
            "maskedNumber": session.masked_number.as_str(),
            "session": session_json(&session, now),
            "message": message,
        })),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    order_id: Option<Id>,
    party_a: Option<String>,
    party_b: Option<String>,
    party_a_type: Option<String>,
    party_b_type: Option<String>,
    ttl_minutes: Option<u32>,
}

/// `POST /masking/create`: a session between two given numbers of a known
/// order (`partyAType` default customer, `partyBType` default rider).
async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBody>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let order = order_id("orderId", &body.order_id)?;
    let a = Leg {
        role: role("partyAType", &body.party_a_type, PartyRole::Customer)?,
        phone: phone("partyA", &body.party_a)?,
    };
    let b =
        Leg { role: role("partyBType", &body.party_b_type, PartyRole::Rider)?, phone: phone("partyB", &body.party_b)? };
    let pair = PartyPair::of(a.role, b.role)
        .ok_or_else(|| AppError::invalid("partyBType", "partyBType: the two parties must have different types"))?;
    if a.phone == b.phone {
        return Err(AppError::invalid("partyB", "partyB: the two parties must have different numbers"));
    }
    let ttl = match body.ttl_minutes {
        None => None,
        Some(m @ 1..=10_080) => Some(std::time::Duration::from_secs(u64::from(m) * 60)),
        Some(_) => return Err(AppError::invalid("ttlMinutes", "ttlMinutes: 1 to 10080")),
    };
    order_for_request(&state, &order, "orderId").await?;
    let (a, b) = if pair.roles().0 == a.role { (a, b) } else { (b, a) };
    let outcome = masking::open_session(&state, &order, pair, a, b, "api:/masking/create", ttl).await?;
    let masked = match &outcome {
        MaskingOpen::Opened { session, .. } | MaskingOpen::Existing(session) => {
            session.masked_number.as_str().to_string()
        }
        MaskingOpen::PoolEmpty => String::new(),
    };
    opened(outcome, state.clock.now(), &format!("Both parties can use {masked} to call each other"))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderBody {
    order_id: Option<Id>,
}

/// `POST /masking/customer-rider`, `/masking/customer-vendor` and
/// `/masking/rider-vendor` `{orderId}`: the pair's session, the parties
/// from Jupiter.
fn open_pair(pair: PartyPair) -> MethodRouter<AppState> {
    post(move |State(state): State<AppState>, ApiJson(body): ApiJson<OrderBody>| async move {
        open_pair_session(&state, body, pair).await
    })
}

async fn open_pair_session(state: &AppState, body: OrderBody, pair: PartyPair) -> AppResult<(StatusCode, Json<Value>)> {
    let order_id = order_id("orderId", &body.order_id)?;
    let order = order_for_request(state, &order_id, "orderId").await?;
    let (a, b) = legs_for_request(&order, pair, "orderId")?;
    let source = format!("api:/masking/{}", pair.as_str().replace('_', "-"));
    let outcome = masking::open_session(state, &order_id, pair, a, b, &source, None).await?;
    let message = match pair {
        PartyPair::CustomerRider => "Customer and rider can now call each other using the masked number",
        PartyPair::CustomerVendor => "Customer and vendor can now call each other using the masked number",
        PartyPair::RiderVendor => "Rider and vendor can now call each other using the masked number",
    };
    opened(outcome, state.clock.now(), message)
}

/// `GET /masking/session/:orderId`: the order's open sessions (newest as
/// `session`); 404 when none is open.
async fn session(State(state): State<AppState>, Path(raw): Path<String>) -> AppResult<Json<Value>> {
    let order = OrderId::parse(&raw).map_err(|e| AppError::invalid("orderId", format!("orderId: {e}")))?;
    let now = state.clock.now();
    let open: Vec<_> =
        state.store.masking_sessions_for_order(&order).await?.into_iter().filter(|s| s.is_open(now)).collect();
    let Some(newest) = open.first() else {
        return Err(AppError::NotFound(format!("no active masking session for order {order}")));
    };
    Ok(Json(json!({
        "session": session_json(newest, now),
        "sessions": open.iter().map(|s| session_json(s, now)).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndBody {
    order_id: Option<Id>,
    reason: Option<String>,
    pair: Option<String>,
}

/// `POST /masking/end` `{orderId, reason, pair?}`: ends the order's open
/// sessions (of `pair` only, when given); 404 when none is open.
async fn end(State(state): State<AppState>, ApiJson(body): ApiJson<EndBody>) -> AppResult<Json<Value>> {
    let order = order_id("orderId", &body.order_id)?;
    let pair = match body.pair.as_deref() {
        None => None,
        Some(p) => Some(p.parse::<PartyPair>().map_err(|e| AppError::invalid("pair", format!("pair: {e}")))?),
    };
    let reason = body.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).unwrap_or("order_completed");
    if reason.len() > 100 {
        return Err(AppError::invalid("reason", "reason: at most 100 characters"));
    }
    let now = state.clock.now();
    let ended = state.store.masking_end(&order, pair, reason, now).await?;
    let Some(first) = ended.first() else {
        return Err(AppError::NotFound(format!("no active masking session for order {order}")));
    };
    let sessions: Vec<Value> = ended.iter().map(|s| session_json(s, now)).collect();
    let event = mangwale_store::NewEvent::new("masking.session_ended", now)
        .order(order.as_str())
        .channel("masking")
        .detail(json!({"reason": reason, "sessions": sessions}));
    state.store.record_event(event).await?;
    Ok(Json(json!({
        "success": true,
        "session": session_json(first, now),
        "sessions": sessions,
        "message": "Masking session ended successfully",
    })))
}

async fn stats_json(state: &AppState) -> AppResult<Value> {
    let now = state.clock.now();
    let stats = state.store.masking_stats(now - chrono::Duration::hours(24), now, now).await?;
    Ok(json!({
        "activeSessions": stats.open_sessions,
        "poolSize": state.config.masking_numbers.len(),
        "sessionsOpened24h": stats.sessions_opened,
        "maskedCalls24h": stats.calls,
        "connected24h": stats.connected,
        "noSession24h": stats.no_session,
        "avgBridgeDuration": stats.avg_bridge_secs,
    }))
}

/// `GET /masking/active`: the open sessions (at most 500, newest first) and
/// the stats.
async fn active(State(state): State<AppState>) -> AppResult<Json<Value>> {
    let now = state.clock.now();
    let open = state.store.masking_open_sessions(now, 500).await?;
    let sessions: Vec<Value> = open
        .iter()
        .map(|s| {
            json!({
                "sessionId": s.id, "orderId": s.order_id.as_str(), "maskedNumber": s.masked_number.as_str(),
                "partyAType": s.party_a.role.as_str(), "partyBType": s.party_b.role.as_str(),
                "status": s.status(now), "expiresAt": s.expires_at,
            })
        })
        .collect();
    Ok(Json(json!({"stats": stats_json(&state).await?, "sessions": sessions})))
}

/// `GET /masking/stats`: open sessions, the pool, and the last 24 hours of
/// masked calls.
async fn stats(State(state): State<AppState>) -> AppResult<Json<Value>> {
    Ok(Json(stats_json(&state).await?))
}

fn time_limit(raw: Option<u32>) -> AppResult<u32> {
    let limit = raw.unwrap_or(masking::MAX_CONVERSATION_SECS);
    if !(30..=14_400).contains(&limit) {
        return Err(AppError::invalid("time_limit", "time_limit: 30 to 14400 seconds"));
    }
    Ok(limit)
}

#[derive(Debug, Deserialize)]
struct MaskedBridgeBody {
    party_a_phone: Option<String>,
    party_b_phone: Option<String>,
    context: Option<String>,
    order_id: Option<Id>,
    time_limit: Option<u32>,
}

/// `POST /exotel/ivr/bridge/masked`: bridges two parties of an order (party
/// A dialled first) through their session's masked number.
async fn bridge_masked(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<MaskedBridgeBody>,
) -> AppResult<Json<Value>> {
    let order_id = order_id("order_id", &body.order_id)?;
    let a = phone("party_a_phone", &body.party_a_phone)?;
    let b = phone("party_b_phone", &body.party_b_phone)?;
    if a == b {
        return Err(AppError::invalid("party_b_phone", "party_b_phone: the two parties must have different numbers"));
    }
    let limit = time_limit(body.time_limit)?;
    let order = order_for_request(&state, &order_id, "order_id").await?;
    let role_of = |field: &str, phone: &E164| {
        [PartyRole::Customer, PartyRole::Rider, PartyRole::Vendor]
            .into_iter()
            .find(|r| leg_of(&order, *r).is_some_and(|l| &l.phone == phone))
            .ok_or_else(|| {
                AppError::invalid(field, format!("{field}: not a party (customer, rider, vendor) of order {order_id}"))
            })
    };
    let first = Leg { role: role_of("party_a_phone", &a)?, phone: a };
    let second = Leg { role: role_of("party_b_phone", &b)?, phone: b };
    let placed = bridge::masked_bridge(&state, &order_id, first, second, limit).await?;
    Ok(Json(json!({
        "success": true,
        "callSid": placed.attempt.call_sid,
        "attemptId": placed.attempt.id,
        "state": placed.attempt.state.as_str(),
        "maskedNumber": placed.session.masked_number.as_str(),
        "sessionId": placed.session.id,
        "context": body.context,
    })))
}

#[derive(Debug, Deserialize)]
struct AdminBridgeBody {
    caller_phone: Option<String>,
    order_id: Option<Id>,
    context: Option<String>,
}

/// `POST /exotel/ivr/bridge/admin`: bridges a caller to support.
async fn bridge_admin(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AdminBridgeBody>,
) -> AppResult<Json<Value>> {
    let caller = phone("caller_phone", &body.caller_phone)?;
    let order = match &body.order_id {
        None => None,
        Some(_) => {
            let id = order_id("order_id", &body.order_id)?;
            order_for_request(&state, &id, "order_id").await?;
            Some(id)
        }
    };
    let context = body.context.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if context
        .is_some_and(|c| c.len() > 64 || !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'))
    {
        return Err(AppError::invalid("context", "context: up to 64 letters, digits, '_' or '-'"));
    }
    let attempt = bridge::admin_bridge(&state, order.as_ref(), &caller, context).await?;
    Ok(Json(json!({
        "success": true,
        "callSid": attempt.call_sid,
        "attemptId": attempt.id,
        "state": attempt.state.as_str(),
        "context": body.context,
    })))
}
