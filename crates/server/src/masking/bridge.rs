//! Outbound masked bridges (`POST /exotel/ivr/bridge/masked`): a
//! `Calls/connect` between two parties of an order, both seeing the masked
//! number of their session, so either can call it back later and reach the
//! other. `POST /exotel/ivr/bridge/admin` places its bridge to support
//! through the same call path.

use std::sync::Arc;

use mangwale_core::masking::{Leg, PartyPair};
use mangwale_core::{E164, OrderId};
use mangwale_store::{CallAttempt, CallState, MaskedCall, MaskedCallDirection, MaskedCallOutcome, MaskingOpen, Store};

use super::open_session;
use crate::calls::{CallTarget, PlaceCall, PlaceCallError, place_call, place_call_showing};
use crate::error::{AppError, AppResult};
use crate::exotel::CallerPurpose;
use crate::state::AppState;

/// The call attempt purpose of a masked bridge.
pub const MASKED_BRIDGE: &str = "masked_bridge";
/// The call attempt purpose of a bridge to support.
pub const ADMIN_BRIDGE: &str = "admin_bridge";

/// The key of an outbound masked call: its attempt.
pub fn call_key(attempt_id: &str) -> String {
    format!("attempt:{attempt_id}")
}

fn placing_error(e: PlaceCallError) -> AppError {
    match e {
        PlaceCallError::Permanent(m) => AppError::BadGateway { code: "exotel_refused", message: m },
        PlaceCallError::Transient(m) => AppError::Unavailable { code: "exotel_unavailable", message: m },
        PlaceCallError::Store(e) => AppError::from(e),
    }
}

/// A placed masked bridge.
pub struct PlacedBridge {
    pub attempt: CallAttempt,
    pub session: mangwale_store::MaskingSession,
}

/// Bridges `first` (dialled first) and `second` of the order through their
/// session's masked number (opened now if needed).
pub async fn masked_bridge(
    state: &AppState,
    order: &OrderId,
    first: Leg,
    second: Leg,
    time_limit: u32,
) -> AppResult<PlacedBridge> {
    let pair = PartyPair::of(first.role, second.role).ok_or_else(|| {
        AppError::invalid("party_b_phone", format!("party_b_phone: both parties are the order's {}", first.role))
    })?;
    let (a, b) =
        if pair.roles().0 == first.role { (first.clone(), second.clone()) } else { (second.clone(), first.clone()) };
    let session = match open_session(state, order, pair, a, b, "api:bridge/masked", None).await? {
        MaskingOpen::Opened { session, .. } | MaskingOpen::Existing(session) => session,
        MaskingOpen::PoolEmpty => {
            return Err(AppError::Unavailable {
                code: "masking_pool_empty",
                message: "EXOTEL_MASKING_NUMBERS is empty: no masked number to bridge through".into(),
            });
        }
    };
    let call = PlaceCall {
        purpose: MASKED_BRIDGE.into(),
        caller: CallerPurpose::Other,
        from: first.phone.clone(),
        target: CallTarget::Bridge(second.phone.clone()),
        order_id: Some(order.as_str().to_string()),
        escalation_id: None,
        party: Some(format!("{}_{}", first.role, second.role)),
        time_limit: Some(time_limit),
        ring_timeout: Some(45),
    };
    let attempt = place_call_showing(state, call, session.masked_number.clone()).await.map_err(placing_error)?;
    state
        .store
        .masked_call_put(&MaskedCall {
            key: call_key(&attempt.id),
            direction: MaskedCallDirection::Outbound,
            masked_number: session.masked_number.clone(),
            session_id: Some(session.id.clone()),
            order_id: Some(order.clone()),
            caller_role: Some(first.role),
            outcome: MaskedCallOutcome::Connecting,
            digit_tries: 0,
            started_at: state.clock.now(),
            ended_at: None,
            duration_secs: None,
        })
        .await?;
    Ok(PlacedBridge { attempt, session })
}

/// Bridges `caller` to support (`ADMIN_SUPPORT_PHONE`), the caller seeing
/// our main number.
pub async fn admin_bridge(
    state: &AppState,
    order: Option<&OrderId>,
    caller: &E164,
    context: Option<&str>,
) -> AppResult<CallAttempt> {
    let admin = state.config.admin_support_phone.clone().ok_or_else(|| AppError::Unavailable {
        code: "admin_support_unset",
        message: "ADMIN_SUPPORT_PHONE is not set: there is no one to bridge to".into(),
    })?;
    let call = PlaceCall {
        purpose: ADMIN_BRIDGE.into(),
        caller: CallerPurpose::Other,
        from: caller.clone(),
        target: CallTarget::Bridge(admin),
        order_id: order.map(|o| o.as_str().to_string()),
        escalation_id: None,
        party: Some(format!("{}_admin", context.unwrap_or("caller"))),
        time_limit: Some(super::MAX_CONVERSATION_SECS),
        ring_timeout: Some(45),
    };
    place_call(state, call).await.map_err(placing_error)
}

/// The end of a masked bridge, from its call's status callback: outcome and
/// seconds talked on the masked call.
pub async fn bridge_ended(
    store: &Arc<dyn Store>,
    attempt_id: &str,
    state: CallState,
    conversation_secs: Option<u32>,
    at: chrono::DateTime<chrono::Utc>,
) -> mangwale_store::Result<()> {
    let Some(mut call) = store.masked_call(&call_key(attempt_id)).await? else {
        return Ok(());
    };
    call.outcome = match state {
        CallState::Completed => MaskedCallOutcome::Completed,
        CallState::Busy => MaskedCallOutcome::Busy,
        CallState::NoAnswer => MaskedCallOutcome::NoAnswer,
        CallState::Canceled => MaskedCallOutcome::Canceled,
        _ => MaskedCallOutcome::Failed,
    };
    call.duration_secs = Some(conversation_secs.unwrap_or(0));
    call.ended_at = Some(at);
    store.masked_call_put(&call).await
}
