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

/// The job payload for a status callback: what reconciliation needs.
pub fn call_status_payload(callback: &CallStatusCallback) -> Value {
    json!({
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

        let by_custom_field = match text("custom_field").and_then(attempt_id) {
            Some(id) => self.store.call_by_id(id).await.map_err(store_error)?,
            None => None,
        };
        let attempt = match by_custom_field {
            Some(a) => Some(a),
            None => self.store.call_by_sid(call_sid).await.map_err(store_error)?,
        };
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
        let detail = format!("exotel {} {}", event.as_str(), status.as_str());
        let updated = self
            .store
            .update_call(&attempt.id, state, Some(call_sid), Some(&detail), now)
            .await
            .map_err(store_error)?
            .ok_or_else(|| JobError::Transient("attempt vanished".into()))?;
        let mut timeline = NewEvent::new(if state.is_final() { "call_ended" } else { "call_answered" }, now)
            .call(call_sid)
            .channel("call")
            .detail(json!({
                "attempt": attempt.id,
                "purpose": attempt.purpose,
                "status": updated.state.as_str(),
                "exotel_status": status.as_str(),
                "conversation_duration": p.get("conversation_duration"),
                "recording_url": p.get("recording_url"),
            }));
        if let Some(order) = &attempt.order_id {
            timeline = timeline.order(order);
        }
        if let Some(escalation) = &attempt.escalation_id {
            timeline = timeline.escalation(escalation);
        }
        if let Some(party) = &attempt.party {
            timeline = timeline.party(party);
        }
        self.store.record_event(timeline).await.map_err(store_error)?;
        Ok(())
    }
}

pub fn register(worker: &mut Worker, state: &AppState) {
    worker.register(
        CALL_STATUS_JOB,
        Arc::new(ApplyCallStatus { store: state.store.clone(), clock: state.clock.clone() }),
    );
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
