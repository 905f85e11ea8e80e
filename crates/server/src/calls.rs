//! Our outbound call attempts: what a status callback means for them.
//!
//! Every call we place gets an attempt id that travels to Exotel inside
//! `CustomField` (`c:<id>`). The status callback brings it back (on the
//! terminal event) together with the CallSid, which also identifies the
//! attempt for the events that carry no CustomField.

use std::sync::Arc;

use async_trait::async_trait;
use mangwale_providers::exotel::inbound::{CallStatus, CallStatusCallback, CallbackEvent};
use mangwale_store::{CallState, Clock, Job, JobError, JobHandler, NewEvent, Store, Worker};
use serde_json::{Value, json};

use crate::state::AppState;

/// Follow-up of every voice status callback.
pub const CALL_STATUS_JOB: &str = "exotel.call_status";

/// `CustomField` for an attempt.
pub fn custom_field(attempt_id: &str) -> String {
    format!("c:{attempt_id}")
}

/// The attempt id in a `CustomField` we set, if it is one of ours.
pub fn attempt_id(custom_field: &str) -> Option<&str> {
    custom_field.strip_prefix("c:").filter(|id| !id.is_empty() && id.len() <= 64)
}

/// The job payload for a status callback: what reconciliation needs. `at`
/// is when Exotel says it happened, so that the timeline keeps the call's own
/// order even when its callbacks are processed together.
pub fn call_status_payload(callback: &CallStatusCallback, received: chrono::DateTime<chrono::Utc>) -> Value {
    let at = match callback.event {
        CallbackEvent::Terminal => callback.end_time.or(callback.date_updated),
        _ => callback.date_updated.or(callback.start_time),
    };
    json!({
        "at": at.unwrap_or(received).to_rfc3339(),
        "call_sid": callback.call_sid,
        "status": callback.status.as_str(),
        "event": callback.event.as_str(),
        "custom_field": callback.custom_field,
        "conversation_duration": callback.conversation_duration,
        "recording_url": callback.recording_url,
    })
}

/// Our state for Exotel's status on an event.
fn state_for(event: &CallbackEvent, status: &CallStatus) -> Option<CallState> {
    Some(match status {
        CallStatus::InProgress | CallStatus::Ringing | CallStatus::Queued => CallState::InProgress,
        CallStatus::Completed => CallState::Completed,
        CallStatus::Busy => CallState::Busy,
        CallStatus::Failed => CallState::Failed,
        CallStatus::NoAnswer => CallState::NoAnswer,
        CallStatus::Canceled => CallState::Canceled,
        CallStatus::Other(_) if *event == CallbackEvent::Terminal => CallState::Failed,
        CallStatus::Other(_) => return None,
    })
}

/// Applies a status callback to the attempt it belongs to and records what
/// happened on the order's timeline.
pub struct ApplyCallStatus {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

#[async_trait]
impl JobHandler for ApplyCallStatus {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let p = &job.payload;
        let text = |k: &str| p.get(k).and_then(Value::as_str);
        let call_sid = text("call_sid").ok_or_else(|| JobError::Permanent("payload without call_sid".into()))?;
        let event = CallbackEvent::parse(text("event").unwrap_or("terminal"));
        let status = CallStatus::parse(text("status").unwrap_or(""));
        let store_error = |e: mangwale_store::StoreError| JobError::Transient(e.to_string());

        let by_custom_field = text("custom_field").and_then(attempt_id);
        let attempt = self.store.call_for_callback(by_custom_field, call_sid).await.map_err(store_error)?;
        let Some(attempt) = attempt else {
            // Not a call we placed (an inbound call's callback, or one from
            // another system on the account): it is on the timeline already.
            tracing::info!(call_sid, "status callback for a call we did not place");
            return Ok(());
        };
        let Some(state) = state_for(&event, &status) else {
            return Ok(());
        };
        let now = self.clock.now();
        let happened = text("at")
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or(now);
        let detail = format!("exotel {} {}", event.as_str(), status.as_str());
        let updated = self
            .store
            .update_call(&attempt.id, state, Some(call_sid), Some(&detail), now)
            .await
            .map_err(store_error)?
            .ok_or_else(|| JobError::Transient("attempt vanished".into()))?;
        let timeline = NewEvent::new(if state.is_final() { "call_ended" } else { "call_answered" }, happened)
            .call(call_sid)
            .channel("call")
            .detail(json!({
                "attempt": attempt.id,
                "purpose": attempt.purpose,
                "status": updated.state.as_str(),
                "exotel_status": status.as_str(),
                "conversation_duration": p.get("conversation_duration"),
                "recording_url": p.get("recording_url"),
            }))
            .context(attempt.order_id.as_deref(), attempt.escalation_id.as_deref(), attempt.party.as_deref());
        self.store.record_event(timeline).await.map_err(store_error)?;
        follow_up(self.store.as_ref(), &updated, now).await.map_err(store_error)?;
        if attempt.purpose == crate::masking::bridge::MASKED_BRIDGE && updated.state.is_final() {
            let talked = p.get("conversation_duration").and_then(Value::as_u64).and_then(|d| u32::try_from(d).ok());
            crate::masking::bridge::bridge_ended(&self.store, &attempt.id, updated.state, talked, happened)
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }
}

/// What a call's progress sets in motion for its purpose: a missed-call
/// callback's next step, a campaign message's outcome.
async fn follow_up(
    store: &dyn Store,
    attempt: &mangwale_store::CallAttempt,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), mangwale_store::StoreError> {
    if let Some(job) = crate::inbound::missed::outcome_job(attempt, now) {
        store.enqueue(job).await?;
    }
    crate::campaigns::call::call_status(store, attempt, now).await
}

pub fn register(worker: &mut Worker, state: &AppState) {
    worker.register(
        CALL_STATUS_JOB,
        Arc::new(ApplyCallStatus { store: state.store.clone(), clock: state.clock.clone() }),
    );
    worker.register(RECONCILE_JOB, Arc::new(ReconcileCall { store: state.store.clone(), clock: state.clock.clone() }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_field_round_trip() {
        let cf = custom_field("0f3a");
        assert_eq!(attempt_id(&cf), Some("0f3a"));
        assert_eq!(attempt_id("order_4711"), None);
        assert_eq!(attempt_id("c:"), None);
    }

    #[test]
    fn statuses_map_to_states() {
        assert_eq!(state_for(&CallbackEvent::Answered, &CallStatus::InProgress), Some(CallState::InProgress));
        assert_eq!(state_for(&CallbackEvent::Terminal, &CallStatus::NoAnswer), Some(CallState::NoAnswer));
        assert_eq!(state_for(&CallbackEvent::Terminal, &CallStatus::Other("weird".into())), Some(CallState::Failed));
        assert_eq!(state_for(&CallbackEvent::Answered, &CallStatus::Other("weird".into())), None);
    }
}

/// Checks, some time after a call was requested, that we learnt its fate; a
/// call that never produced a status callback is counted as not reached.
pub const RECONCILE_JOB: &str = "exotel.reconcile_call";

/// How long a call's outcome may stay unknown before it counts as failed.
pub const RECONCILE_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// What to call: the first number Exotel dials, and what follows once it
/// answers.
#[derive(Debug, Clone)]
pub enum CallTarget {
    /// Run one of our flows (`flows/exotel-flows.toml`) by its id.
    Flow(String),
    /// Connect to a second number (bridge, masked call, admin).
    Bridge(mangwale_core::E164),
}

/// A call to place.
#[derive(Debug, Clone)]
pub struct PlaceCall {
    /// `vendor_ivr`, `ring`, `bridge`, `callback`, ...
    pub purpose: String,
    pub caller: crate::exotel::CallerPurpose,
    /// Dialled first.
    pub from: mangwale_core::E164,
    pub target: CallTarget,
    pub order_id: Option<String>,
    pub escalation_id: Option<String>,
    pub party: Option<String>,
    /// Longest call, seconds.
    pub time_limit: Option<u32>,
    /// Ring timeout of each leg, seconds (a "ring" is a short call).
    pub ring_timeout: Option<u32>,
}

/// Why a call could not be placed.
#[derive(Debug, thiserror::Error)]
pub enum PlaceCallError {
    /// Worth trying again later (Exotel busy or unreachable, rate limit).
    #[error("transient: {0}")]
    Transient(String),
    /// Exotel refused it or it is invalid; trying again will not help.
    #[error("permanent: {0}")]
    Permanent(String),
    #[error("store: {0}")]
    Store(#[from] mangwale_store::StoreError),
}

impl From<PlaceCallError> for JobError {
    fn from(e: PlaceCallError) -> Self {
        match e {
            PlaceCallError::Permanent(m) => JobError::Permanent(m),
            other => JobError::Transient(other.to_string()),
        }
    }
}

/// Places a call through Exotel and records the attempt.
///
/// The attempt is stored (with a reconciliation job) before Exotel is asked,
/// so a crash in between leaves a trace that is resolved later. An ambiguous
/// answer (the request may have gone through) is never retried: the attempt
/// is marked unknown and reconciled from its status callback, which carries
/// the attempt id in `CustomField`.
pub async fn place_call(state: &AppState, call: PlaceCall) -> Result<mangwale_store::CallAttempt, PlaceCallError> {
    let caller_id = state.exotel.caller_id(call.caller);
    place_call_showing(state, call, caller_id).await
}

/// [`place_call`] showing `caller_id` (an ExoPhone of the account) instead
/// of the one `call.caller` picks: masked bridges show the session's masked
/// number.
pub async fn place_call_showing(
    state: &AppState,
    call: PlaceCall,
    caller_id: mangwale_core::E164,
) -> Result<mangwale_store::CallAttempt, PlaceCallError> {
    place_call_as(state, call, caller_id, new_attempt_id()).await
}

/// A fresh call attempt id.
pub fn new_attempt_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// [`place_call_showing`] under an attempt id the caller chose (from
/// [`new_attempt_id`]), so that what the call's applets need can be stored
/// under it before Exotel is asked (the campaign call's text).
pub async fn place_call_as(
    state: &AppState,
    call: PlaceCall,
    caller_id: mangwale_core::E164,
    attempt_id: String,
) -> Result<mangwale_store::CallAttempt, PlaceCallError> {
    use mangwale_providers::exotel::client::{
        CallOptions, ConnectToFlow, ConnectTwoNumbers, FlowTarget, StatusCallback,
    };

    let store = &state.store;
    let now = state.clock.now();
    // The attempt and its reconciliation are one write: an attempt without
    // it would stay `requested` forever if we crashed in between.
    let reconcile = mangwale_store::NewJob::new(
        RECONCILE_JOB,
        format!("{RECONCILE_JOB}:{attempt_id}"),
        json!({"attempt": attempt_id}),
        now + chrono::Duration::from_std(RECONCILE_AFTER).unwrap_or_default(),
    )
    .max_attempts(20);
    store
        .create_call(
            mangwale_store::NewCall {
                id: attempt_id.clone(),
                purpose: call.purpose.clone(),
                order_id: call.order_id.clone(),
                escalation_id: call.escalation_id.clone(),
                party: call.party.clone(),
                to_masked: call.from.masked(),
                to: Some(call.from.clone()),
                bridge_to: match &call.target {
                    CallTarget::Bridge(to) => Some(to.clone()),
                    CallTarget::Flow(_) => None,
                },
            },
            Some(reconcile),
            now,
        )
        .await?;

    let callback_url = state
        .config
        .public_base_url
        .join(&format!("exotel/webhooks/call-status?token={}", state.credentials.webhook_token.expose()))
        .map_err(|e| PlaceCallError::Permanent(format!("callback URL: {e}")))?;
    let mut options = CallOptions::new(caller_id);
    options.custom_field = Some(custom_field(&attempt_id));
    options.status_callback = Some(StatusCallback::terminal_and_answered(callback_url));
    options.time_limit = call.time_limit;
    options.time_out = call.ring_timeout;

    crate::campaigns::sender::count_voice_request(state, &call.purpose).await;
    let client = &state.exotel.client;
    let result = match &call.target {
        CallTarget::Bridge(to) => {
            let request = ConnectTwoNumbers { from: call.from.clone(), to: to.clone(), wait_url: None, options };
            client.connect_two_numbers(&request).await
        }
        CallTarget::Flow(flow) => {
            let app_id = state.exotel.app_id(flow).ok_or_else(|| {
                PlaceCallError::Permanent(format!("no Exotel app id for flow {flow} (set EXOTEL_APP_IDS)"))
            })?;
            let request = ConnectToFlow { from: call.from.clone(), flow: FlowTarget::AppId(app_id), options };
            client.connect_to_flow(&request).await
        }
    };

    let now = state.clock.now();
    let event = |kind: &str, detail: Value| {
        NewEvent::new(kind, now).channel("call").detail(detail).context(
            call.order_id.as_deref(),
            call.escalation_id.as_deref(),
            call.party.as_deref(),
        )
    };
    match result {
        Ok(placed) => {
            let attempt = store
                .update_call(&attempt_id, CallState::Placed, Some(&placed.sid), None, now)
                .await?
                .ok_or_else(|| PlaceCallError::Permanent("attempt vanished".into()))?;
            store
                .record_event(
                    event(
                        "call_placed",
                        json!({"attempt": attempt_id, "purpose": call.purpose, "to": call.from.masked()}),
                    )
                    .call(&placed.sid),
                )
                .await?;
            Ok(attempt)
        }
        Err(e) if e.is_ambiguous() => {
            tracing::warn!(attempt = %attempt_id, error = %e.message(), "call request outcome unknown; awaiting its callback");
            let attempt = store
                .update_call(&attempt_id, CallState::Unknown, None, Some(e.message()), now)
                .await?
                .ok_or_else(|| PlaceCallError::Permanent("attempt vanished".into()))?;
            store
                .record_event(event(
                    "call_unknown",
                    json!({"attempt": attempt_id, "purpose": call.purpose, "error": e.message()}),
                ))
                .await?;
            Ok(attempt)
        }
        Err(e) => {
            store.update_call(&attempt_id, CallState::NotPlaced, None, Some(e.message()), now).await?;
            store
                .record_event(event(
                    "call_not_placed",
                    json!({"attempt": attempt_id, "purpose": call.purpose, "error": e.message(), "transient": e.is_transient()}),
                ))
                .await?;
            Err(if e.is_transient() {
                PlaceCallError::Transient(e.message().to_string())
            } else {
                PlaceCallError::Permanent(e.message().to_string())
            })
        }
    }
}

/// Resolves an attempt whose outcome we never learnt.
pub struct ReconcileCall {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

#[async_trait]
impl JobHandler for ReconcileCall {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let id = job
            .payload
            .get("attempt")
            .and_then(Value::as_str)
            .ok_or_else(|| JobError::Permanent("payload without attempt".into()))?;
        let store_error = |e: mangwale_store::StoreError| JobError::Transient(e.to_string());
        let Some(attempt) = self.store.call_by_id(id).await.map_err(store_error)? else {
            return Ok(());
        };
        if !matches!(attempt.state, CallState::Requested | CallState::Unknown) {
            return Ok(());
        }
        let now = self.clock.now();
        let detail = "no status callback arrived; counted as not reached";
        let updated =
            self.store.update_call(id, CallState::Failed, None, Some(detail), now).await.map_err(store_error)?;
        let event = NewEvent::new("call_ended", now)
            .channel("call")
            .detail(json!({"attempt": id, "purpose": attempt.purpose, "status": "failed", "reason": detail}))
            .context(attempt.order_id.as_deref(), attempt.escalation_id.as_deref(), attempt.party.as_deref());
        self.store.record_event(event).await.map_err(store_error)?;
        if let Some(updated) = updated {
            follow_up(self.store.as_ref(), &updated, now).await.map_err(store_error)?;
        }
        metrics::counter!("mangwale_exotel_calls_unreconciled_total").increment(1);
        Ok(())
    }
}
