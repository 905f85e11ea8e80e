//! A call to a masked number: the `masked_call` flow.
//!
//! The flow's first Passthru (`step=identify`) finds the caller's open
//! sessions on the dialled number: exactly one selects `connect`, several
//! (a pool too small to keep them apart) select `ask_order`, none selects
//! `support`. `ask_order` is a Gather for the order's last digits, read by
//! the Passthru `step=order_digits`. The Connect (`flow=masked_call`) dials
//! the counterpart of the session chosen for the CallSid, showing the masked
//! number; the Passthru after it records the outcome. What was decided is
//! stored per CallSid, so any replica answers the later applets of a call.

use mangwale_core::masking::orders_ending_with;
use mangwale_core::{E164, OrderId};
use mangwale_providers::exotel::applet::{Connect, Gather, Prompt, SwitchCase};
use mangwale_providers::exotel::inbound::{AppletRequest, CallStatus};
use mangwale_store::{MaskedCall, MaskedCallDirection, MaskedCallOutcome, MaskingSession, NewEvent};
use serde_json::{Value, json};

use super::{dial, support_connect};
use crate::error::AppResult;
use crate::state::AppState;

/// The flow's id in `flows/exotel-flows.toml`.
pub const FLOW: &str = "masked_call";

/// Wrong order digits allowed before the caller is sent to support.
const DIGIT_TRIES: u32 = 2;

/// What the Switch after a Passthru of this flow does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Connect,
    AskOrder,
    Support,
}

impl Next {
    pub fn select(self) -> SwitchCase {
        SwitchCase::new(match self {
            Next::Connect => "connect",
            Next::AskOrder => "ask_order",
            Next::Support => "support",
        })
    }
}

fn next_of(call: &MaskedCall) -> Next {
    match call.outcome {
        MaskedCallOutcome::Resolving => Next::AskOrder,
        MaskedCallOutcome::NoSession => Next::Support,
        _ => Next::Connect,
    }
}

/// The caller's open sessions on the number they dialled.
async fn sessions_of(state: &AppState, request: &AppletRequest) -> AppResult<Vec<MaskingSession>> {
    match (&request.from, &request.to) {
        (Some(from), Some(to)) => Ok(state.store.masking_sessions_of_caller(to, from, state.clock.now()).await?),
        _ => Ok(Vec::new()),
    }
}

fn new_call(request: &AppletRequest, masked: &E164, now: chrono::DateTime<chrono::Utc>) -> MaskedCall {
    MaskedCall {
        key: request.call_sid.clone(),
        direction: MaskedCallDirection::Inbound,
        masked_number: masked.clone(),
        session_id: None,
        order_id: None,
        caller_role: None,
        outcome: MaskedCallOutcome::NoSession,
        digit_tries: 0,
        started_at: now,
        ended_at: None,
        duration_secs: None,
    }
}

/// Ties the call to `session` (the caller will be connected) and puts it on
/// the order's timeline.
async fn choose(
    state: &AppState,
    request: &AppletRequest,
    mut call: MaskedCall,
    session: &MaskingSession,
) -> AppResult<()> {
    let caller = request.from.as_ref().and_then(|from| session.legs_for(from));
    call.session_id = Some(session.id.clone());
    call.order_id = Some(session.order_id.clone());
    call.caller_role = caller.map(|(me, _)| me.role);
    call.outcome = MaskedCallOutcome::Connecting;
    state.store.masked_call_put(&call).await?;
    let detail = json!({
        "sessionId": session.id, "maskedNumber": session.masked_number.as_str(),
        "caller": caller.map(|(me, _)| me.role.as_str()), "callee": caller.map(|(_, other)| other.role.as_str()),
        "digitTries": call.digit_tries,
    });
    record(state, request, Some(&session.order_id), "masking.call_connecting", detail).await
}

/// The caller has no open session (or named none): support.
async fn to_support(state: &AppState, request: &AppletRequest, mut call: MaskedCall, reason: &str) -> AppResult<()> {
    call.outcome = MaskedCallOutcome::NoSession;
    call.ended_at = Some(state.clock.now());
    state.store.masked_call_put(&call).await?;
    metrics::counter!("mangwale_masked_calls_total", "outcome" => "no_session").increment(1);
    let detail = json!({"maskedNumber": call.masked_number.as_str(), "reason": reason,
                        "support": state.config.admin_support_phone.is_some()});
    record(state, request, None, "masking.call_no_session", detail).await
}

async fn record(
    state: &AppState,
    request: &AppletRequest,
    order: Option<&OrderId>,
    kind: &str,
    detail: Value,
) -> AppResult<()> {
    let mut event = NewEvent::new(kind, state.clock.now()).call(&request.call_sid).channel("masking").detail(detail);
    if let Some(order) = order {
        event = event.order(order.as_str());
    }
    if let Some(from) = &request.from {
        event = event.party(format!("caller:{}", from.masked()));
    }
    state.store.record_event(event).await?;
    Ok(())
}

/// `step=identify`: whom the caller means.
pub async fn identify(state: &AppState, request: &AppletRequest) -> AppResult<Next> {
    if let Some(call) = state.store.masked_call(&request.call_sid).await? {
        return Ok(next_of(&call));
    }
    let Some(masked) = request.to.clone() else {
        tracing::warn!(call_sid = %request.call_sid, "masked call without the number dialled");
        return Ok(Next::Support);
    };
    let call = new_call(request, &masked, state.clock.now());
    let sessions = sessions_of(state, request).await?;
    match sessions.as_slice() {
        [] => {
            let reason = if state.config.masking_numbers.is_empty() {
                "EXOTEL_MASKING_NUMBERS is empty"
            } else if request.from.is_none() {
                "the caller's number is withheld"
            } else {
                "no open session of the caller on this number"
            };
            to_support(state, request, call, reason).await?;
            Ok(Next::Support)
        }
        [session] => {
            choose(state, request, call, session).await?;
            Ok(Next::Connect)
        }
        several => {
            let call = MaskedCall { outcome: MaskedCallOutcome::Resolving, ..call };
            state.store.masked_call_put(&call).await?;
            let orders: Vec<&str> = several.iter().map(|s| s.order_id.as_str()).collect();
            let detail = json!({"maskedNumber": masked.as_str(), "sessions": several.len(), "orders": orders});
            record(state, request, None, "masking.call_ambiguous", detail).await?;
            Ok(Next::AskOrder)
        }
    }
}

/// `step=order_digits`: the caller's last digits of the order pick the
/// session; wrong or no digits ask again, then go to support.
pub async fn order_digits(state: &AppState, request: &AppletRequest) -> AppResult<Next> {
    let Some(call) = state.store.masked_call(&request.call_sid).await? else {
        return identify(state, request).await;
    };
    if call.outcome != MaskedCallOutcome::Resolving {
        return Ok(next_of(&call));
    }
    let sessions = sessions_of(state, request).await?;
    let orders: Vec<OrderId> = sessions.iter().map(|s| s.order_id.clone()).collect();
    let matched = orders_ending_with(request.digits.as_deref().unwrap_or(""), &orders);
    let chosen = match matched.as_slice() {
        [first, rest @ ..] if rest.iter().all(|o| o == first) => sessions.iter().find(|s| &s.order_id == *first),
        _ => None,
    };
    if let Some(session) = chosen {
        choose(state, request, call, session).await?;
        return Ok(Next::Connect);
    }
    let call = MaskedCall { digit_tries: call.digit_tries + 1, ..call };
    if call.digit_tries >= DIGIT_TRIES || sessions.is_empty() {
        to_support(state, request, call, "the order digits named none of the caller's sessions").await?;
        return Ok(Next::Support);
    }
    state.store.masked_call_put(&call).await?;
    Ok(Next::AskOrder)
}

/// The Gather of `step=ask_order`.
pub fn ask_order() -> Gather {
    Gather {
        gather_prompt: Prompt::Text(
            "Is number par aapke ek se zyada order chal rahe hain. Kripya apne order number ke aakhri chaar ank \
             dabayein, phir hash dabayein."
                .into(),
        ),
        max_input_digits: 8,
        finish_on_key: "#".into(),
        input_timeout: 6,
        repeat_menu: 1,
        repeat_gather_prompt: Some(Prompt::Text("Kripya order number ke aakhri chaar ank dabayein.".into())),
    }
}

/// The Greeting of `step=no_session`.
pub fn no_session_text(state: &AppState) -> String {
    let first = "Yeh number abhi aapke kisi chalu order se juda nahi hai.";
    if state.config.admin_support_phone.is_some() {
        format!("{first} Hum aapko Mangwale support se jod rahe hain.")
    } else {
        format!("{first} Madad ke liye Mangwale app mein support se sampark karein. Dhanyavaad.")
    }
}

/// The Connect of the flow: `step=support` dials support; otherwise the
/// counterpart of the session chosen for this call. A Connect reached with
/// nothing chosen (a dashboard flow without the Passthru) decides here.
pub async fn connect(state: &AppState, request: &AppletRequest, step: &str) -> AppResult<Connect> {
    if step == "support" {
        return Ok(support_connect(state));
    }
    let call = match state.store.masked_call(&request.call_sid).await? {
        Some(call) => call,
        None => match identify(state, request).await? {
            Next::Connect => match state.store.masked_call(&request.call_sid).await? {
                Some(call) => call,
                None => return Ok(support_connect(state)),
            },
            Next::AskOrder | Next::Support => return Ok(support_connect(state)),
        },
    };
    let session = match &call.session_id {
        Some(id) if call.outcome == MaskedCallOutcome::Connecting => state.store.masking_session(id).await?,
        _ => None,
    };
    let counterpart = session.as_ref().and_then(|s| {
        let from = request.from.as_ref()?;
        s.legs_for(from).map(|(_, other)| other.phone.clone())
    });
    match (session, counterpart) {
        (Some(session), Some(callee)) => {
            metrics::counter!("mangwale_masked_calls_total", "outcome" => "connecting").increment(1);
            Ok(dial(state, &callee, &session))
        }
        _ => Ok(support_connect(state)),
    }
}

/// `step=after_connect`: how the masked conversation ended (Exotel's
/// `DialCallStatus` and `DialCallDuration`), on the call and the timeline.
pub async fn after_connect(state: &AppState, request: &AppletRequest) -> AppResult<()> {
    let Some(mut call) = state.store.masked_call(&request.call_sid).await? else {
        return Ok(());
    };
    if call.outcome != MaskedCallOutcome::Connecting {
        return Ok(());
    }
    call.outcome = match request.dial_call_status.as_ref() {
        Some(CallStatus::Completed) => MaskedCallOutcome::Completed,
        Some(CallStatus::Busy) => MaskedCallOutcome::Busy,
        Some(CallStatus::Canceled) => MaskedCallOutcome::Canceled,
        Some(CallStatus::Failed) => MaskedCallOutcome::Failed,
        _ => MaskedCallOutcome::NoAnswer,
    };
    call.duration_secs = Some(request.dial_call_duration.unwrap_or(0));
    call.ended_at = Some(state.clock.now());
    state.store.masked_call_put(&call).await?;
    metrics::counter!("mangwale_masked_calls_total", "outcome" => call.outcome.as_str()).increment(1);
    let detail = json!({
        "sessionId": call.session_id, "maskedNumber": call.masked_number.as_str(),
        "caller": call.caller_role.map(|r| r.as_str()), "outcome": call.outcome.as_str(),
        "durationSecs": call.duration_secs, "recorded": request.recording_url.is_some(),
    });
    record(state, request, call.order_id.as_ref(), "masking.call_ended", detail).await
}
