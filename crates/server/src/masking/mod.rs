//! Number masking: customer, rider and vendor of an order talk through one
//! of our ExoPhones (`EXOTEL_MASKING_NUMBERS`) and never see each other's
//! number.
//!
//! A session ties two parties of an order to a masked number of the pool
//! (allocated by the store so that a phone never holds two open sessions on
//! one number while another is free). It is opened by the `masking.open`
//! job (Jupiter's `rider/assigned`), by the `/masking/*` API, by a masked
//! bridge, or by the inbound menus through [`connect_through_session`]; it
//! ends on request, after the grace period of a delivered order
//! (`masking.close`), or when its TTL runs out.
//!
//! A call to a masked number runs the `masked_call` flow ([`inbound`]); an
//! outbound masked bridge is placed by [`bridge`].

pub mod bridge;
pub mod inbound;
pub mod jobs;

use mangwale_core::OrderId;
use mangwale_core::masking::PartyPair;
pub use mangwale_core::masking::{Leg, PartyRole};
use mangwale_providers::exotel::applet::Connect;
use mangwale_providers::jupiter::model::Order;
use mangwale_store::{
    MaskedCall, MaskedCallDirection, MaskedCallOutcome, MaskingOpen, MaskingSession, NewEvent, NewMaskingSession,
};
use serde_json::{Value, json};

use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Longest masked conversation, seconds.
pub const MAX_CONVERSATION_SECS: u32 = 1800;

/// The Connect that puts `caller` through to `callee` of `order_id`, showing
/// the callee the masked number of their session (opened now if the order
/// has none for the pair), never the caller's number. So the callee can
/// call the masked number back and reach the caller. With an empty pool the
/// caller goes to support, as every masked call does.
pub async fn connect_through_session(
    state: &AppState,
    call_sid: &str,
    order_id: &str,
    caller: &Leg,
    callee: &Leg,
) -> AppResult<Connect> {
    let order = OrderId::parse(order_id).map_err(|e| AppError::invalid("orderId", format!("orderId: {e}")))?;
    let pair = PartyPair::of(caller.role, callee.role).ok_or_else(|| {
        AppError::invalid("callee", format!("a {} cannot be masked from a {}", callee.role, caller.role))
    })?;
    let (a, b) = if pair.roles().0 == caller.role { (caller, callee) } else { (callee, caller) };
    let session = match open_session(state, &order, pair, a.clone(), b.clone(), "ivr:menu", None).await? {
        MaskingOpen::Opened { session, .. } | MaskingOpen::Existing(session) => session,
        MaskingOpen::PoolEmpty => return Ok(support_connect(state)),
    };
    tracing::info!(order_id, caller = %caller.role, callee = %callee.role, masked = %session.masked_number, "masked connect");
    // Counted with the masked calls; the applet after the Connect (which
    // carries DialCallStatus) records how it ended: `inbound::after_connect`.
    let now = state.clock.now();
    let call = MaskedCall {
        key: call_sid.to_string(),
        direction: MaskedCallDirection::Inbound,
        masked_number: session.masked_number.clone(),
        session_id: Some(session.id.clone()),
        order_id: Some(order.clone()),
        caller_role: Some(caller.role),
        outcome: MaskedCallOutcome::Connecting,
        digit_tries: 0,
        started_at: now,
        ended_at: None,
        duration_secs: None,
    };
    state.store.masked_call_put(&call).await?;
    let detail = json!({"sessionId": session.id, "maskedNumber": session.masked_number.as_str(),
                        "caller": caller.role.as_str(), "callee": callee.role.as_str(), "via": "menu"});
    let event = NewEvent::new("masking.call_connecting", now)
        .call(call_sid)
        .order(order.as_str())
        .channel("masking")
        .detail(detail);
    state.store.record_event(event).await?;
    Ok(dial(state, &callee.phone, &session))
}

/// Dials `callee` showing the session's masked number.
pub(crate) fn dial(state: &AppState, callee: &mangwale_core::E164, session: &MaskingSession) -> Connect {
    let connect = Connect::dial(std::slice::from_ref(callee), Some(&session.masked_number))
        .max_conversation(MAX_CONVERSATION_SECS);
    if state.config.masking_record { connect.recorded() } else { connect }
}

/// Admin support (`ADMIN_SUPPORT_PHONE`), or nobody when it is not set.
pub(crate) fn support_connect(state: &AppState) -> Connect {
    crate::comms::ivr::connect(state, "admin")
}

/// A session's parties for the API and the timeline: roles and masked
/// phones only.
pub fn session_json(session: &MaskingSession, now: chrono::DateTime<chrono::Utc>) -> Value {
    let party = |leg: &Leg| json!({"type": leg.role.as_str(), "phone": leg.phone.masked()});
    json!({
        "sessionId": session.id,
        "orderId": session.order_id.as_str(),
        "pair": session.pair.as_str(),
        "maskedNumber": session.masked_number.as_str(),
        "partyA": party(&session.party_a),
        "partyB": party(&session.party_b),
        "shared": session.shared,
        "status": session.status(now),
        "source": session.source,
        "createdAt": session.opened_at,
        "expiresAt": session.expires_at,
        "endedAt": session.closed_at,
        "endReason": session.close_reason,
    })
}

/// Opens (or finds) the session of `pair` between `a` and `b` of the order,
/// expiring after `ttl` (default `MASKING_TTL_MINUTES`), and puts what
/// happened on the order's timeline. An empty pool is logged and noted on
/// the timeline too.
pub async fn open_session(
    state: &AppState,
    order: &OrderId,
    pair: PartyPair,
    a: Leg,
    b: Leg,
    source: &str,
    ttl: Option<std::time::Duration>,
) -> AppResult<MaskingOpen> {
    let now = state.clock.now();
    let ttl = chrono::Duration::from_std(ttl.unwrap_or(state.config.masking_ttl)).unwrap_or(chrono::Duration::hours(2));
    let new = NewMaskingSession {
        order_id: order.clone(),
        pair,
        party_a: a,
        party_b: b,
        source: source.to_string(),
        expires_at: now + ttl,
    };
    let outcome = state.store.masking_open(&new, &state.config.masking_numbers, now).await?;
    let event =
        |kind: &str, detail: Value| NewEvent::new(kind, now).order(order.as_str()).channel("masking").detail(detail);
    match &outcome {
        MaskingOpen::Opened { session, replaced } => {
            metrics::counter!("mangwale_masking_sessions_opened_total", "pair" => pair.as_str()).increment(1);
            if session.shared {
                tracing::warn!(order_id = %order, masked = %session.masked_number, "masking pool too small: a phone holds two sessions on one number; its calls will ask for the order digits");
            }
            let mut detail = session_json(session, now);
            if let Some(old) = replaced {
                detail["replaced"] = json!(old.id);
            }
            state.store.record_event(event("masking.session_opened", detail)).await?;
        }
        MaskingOpen::Existing(_) => {}
        MaskingOpen::PoolEmpty => {
            tracing::warn!(order_id = %order, pair = pair.as_str(), "EXOTEL_MASKING_NUMBERS is empty: no masking session; masked calls go to support");
            metrics::counter!("mangwale_masking_pool_empty_total").increment(1);
            let detail = json!({"pair": pair.as_str(), "source": source,
                                "reason": "EXOTEL_MASKING_NUMBERS is empty; masked calls go to support"});
            state.store.record_event(event("masking.pool_empty", detail)).await?;
        }
    }
    Ok(outcome)
}

/// The leg of `role` in a Jupiter order, if the order names its phone.
pub fn leg_of(order: &Order, role: PartyRole) -> Option<Leg> {
    let phone = match role {
        // The delivery contact when the customer's record has no phone.
        PartyRole::Customer => order
            .customer
            .as_ref()
            .and_then(|p| p.phone.clone())
            .or_else(|| order.delivery_address.as_ref().and_then(|a| a.contact_phone.clone())),
        PartyRole::Rider => order.rider.as_ref().and_then(|p| p.phone.clone()),
        PartyRole::Vendor => order.store.as_ref().and_then(|s| s.phone.clone()),
    };
    phone.map(|phone| Leg { role, phone })
}

/// Why an order's parties could not be read.
#[derive(Debug)]
pub enum OrderLookup {
    /// Neither Jupiter nor the PHP backend knows the order.
    Unknown,
    /// Jupiter could not be asked; worth retrying.
    Unavailable(String),
    /// Jupiter refused the lookup.
    Failed(String),
}

/// The order from Jupiter, fresh (a rider may have just been assigned).
pub async fn order(state: &AppState, id: &OrderId) -> Result<Order, OrderLookup> {
    state.jupiter.client.invalidate_order(id);
    match state.jupiter.client.order(id).await {
        Ok(Some(order)) => Ok(order),
        Ok(None) => Err(OrderLookup::Unknown),
        Err(e) if e.is_transient() => Err(OrderLookup::Unavailable(e.message())),
        Err(e) => Err(OrderLookup::Failed(e.message())),
    }
}

/// [`order`] for a request: an unknown order is a 400 naming `field`.
pub async fn order_for_request(state: &AppState, id: &OrderId, field: &str) -> AppResult<Order> {
    order(state, id).await.map_err(|e| match e {
        OrderLookup::Unknown => AppError::invalid(field, format!("{field}: Jupiter does not know order {id}")),
        OrderLookup::Unavailable(m) => AppError::Unavailable { code: "jupiter_unavailable", message: m },
        OrderLookup::Failed(m) => AppError::BadGateway { code: "jupiter_refused", message: m },
    })
}

/// The two legs of `pair` in the order, or a 400 naming `field` that says
/// which party has no phone.
pub fn legs_for_request(order: &Order, pair: PartyPair, field: &str) -> AppResult<(Leg, Leg)> {
    let (ra, rb) = pair.roles();
    let leg = |role: PartyRole| {
        leg_of(order, role)
            .ok_or_else(|| AppError::invalid(field, format!("{field}: order {} has no {role} phone number", order.id)))
    };
    Ok((leg(ra)?, leg(rb)?))
}

/// Says at start-up whether masked calls can work.
pub fn log_pool(config: &crate::config::Config) {
    if config.masking_numbers.is_empty() {
        if config.mode == crate::config::Mode::Live {
            tracing::warn!(
                "EXOTEL_MASKING_NUMBERS is empty: no masking sessions can open, and every masked call goes to support"
            );
        } else {
            tracing::info!("EXOTEL_MASKING_NUMBERS is empty: masked calls go to support");
        }
    } else {
        tracing::info!(numbers = config.masking_numbers.len(), "masking pool");
    }
}
