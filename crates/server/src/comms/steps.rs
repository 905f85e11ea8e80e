//! The `ladder.step` job: one step of one ladder, sent at most once.
//!
//! 1. Claim: the step becomes `sending` only if the ladder is still active
//!    and the step pending (one transaction; a stop that committed first
//!    wins). A step found `sending` means an earlier worker died mid-send:
//!    it may have gone out, so it is not sent again but counted unknown.
//! 2. Send through the channel's client.
//! 3. Record: sent (with the provider's id), failed, skipped, or pending
//!    again for a retry of a transient failure; and the timeline entry, in
//!    the same transaction. The last final step of an unanswered ladder
//!    exhausts it and tells Jupiter.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mangwale_core::E164;
use mangwale_core::ladder::{CallerKind, Channel, StepState};
use mangwale_store::{Job, JobError, JobHandler, Ladder, NewEvent, OnExhausted, RetryPolicy, StepClaim, StepResult};
use serde_json::{Value, json};

use super::channels::{self, Sent, SentOnce};
use crate::calls::{CallTarget, PlaceCall, PlaceCallError, place_call};
use crate::exotel::CallerPurpose;
use crate::jupiter::outbox;
use crate::state::AppState;

/// How long a ring rings before Exotel gives up: long enough to be seen,
/// short enough to be a nudge. Picking up plays the IVR.
pub const RING_SECONDS: u32 = 20;
/// How long the IVR call rings.
pub const IVR_RING_SECONDS: u32 = 40;
/// The longest IVR call.
pub const IVR_TIME_LIMIT: u32 = 300;
/// The longest admin bridge.
pub const ADMIN_BRIDGE_LIMIT: u32 = 1800;
/// How long the last step of a ladder may be retried after it was due (the
/// others, until the next step is due).
pub const LAST_STEP_WINDOW: chrono::Duration = chrono::Duration::minutes(5);

pub struct StepHandler {
    state: AppState,
}

/// Alerts admin about a ladder outside its schedule (a party reported a
/// problem): SMS, bridge call and Jupiter event, as the `admin` step does.
pub const ADMIN_JOB: &str = "ladder.admin";

pub fn register(worker: &mut mangwale_store::Worker, state: &AppState) {
    worker.register(super::STEP_JOB, Arc::new(StepHandler { state: state.clone() }));
    worker.register(ADMIN_JOB, Arc::new(AdminHandler { state: state.clone() }));
}

struct AdminHandler {
    state: AppState,
}

#[async_trait]
impl JobHandler for AdminHandler {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let bad = || JobError::Permanent(format!("not an admin alert: {}", job.payload));
        let escalation_id = job.payload["escalationId"].as_str().ok_or_else(bad)?;
        let state = &self.state;
        let Some(ladder) = state.store.ladder(escalation_id).await.map_err(store_error)? else { return Ok(()) };
        let sent = admin(state, &ladder, Some("reported a problem"), &format!("job:{}", job.id)).await;
        let now = state.clock.now();
        let (kind, detail) = match &sent {
            Sent::Sent { provider_id, detail } => {
                ("admin.alerted", merge(detail.clone(), json!({"providerId": provider_id})))
            }
            Sent::Failed { message, transient: true } | Sent::Throttled { message, .. }
                if job.attempts < job.max_attempts =>
            {
                return Err(JobError::Transient(message.clone()));
            }
            Sent::Failed { message, .. } | Sent::Throttled { message, .. } | Sent::Skipped(message) => {
                ("admin.alert_failed", json!({"error": message}))
            }
            // The SMS may have gone out and the bridge could not be placed.
            Sent::Unknown(message) => ("admin.alert_unknown", json!({"error": message})),
        };
        let event = NewEvent::new(kind, now)
            .escalation(&ladder.escalation_id)
            .channel("admin")
            .context(ladder.order_id.as_deref(), None, Some(&ladder.party))
            .detail(merge(json!({"reason": job.payload["reason"]}), detail));
        state.store.record_event(event).await.map_err(store_error)?;
        Ok(())
    }
}

fn store_error(e: mangwale_store::StoreError) -> JobError {
    JobError::Transient(e.to_string())
}

#[async_trait]
impl JobHandler for StepHandler {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let bad = || JobError::Permanent(format!("not a ladder step: {}", job.payload));
        let escalation_id = job.payload["escalationId"].as_str().ok_or_else(bad)?;
        let index = job.payload["step"].as_u64().ok_or_else(bad)? as u32;
        let state = &self.state;
        let now = state.clock.now();
        let ladder = match state.store.claim_step(escalation_id, index, now).await.map_err(store_error)? {
            StepClaim::Claimed(ladder) => ladder,
            // Stopped or exhausted: the fencing did its work.
            StepClaim::LadderFinished(_) | StepClaim::NotFound => return Ok(()),
            StepClaim::NotPending(StepState::Sending) => {
                let Some(ladder) = state.store.ladder(escalation_id).await.map_err(store_error)? else { return Ok(()) };
                let channel = channel_name(step_channel(&ladder, index));
                let detail = "a worker stopped while sending this step; it may have gone out, so it is not sent again";
                metrics::counter!("mangwale_ladder_steps_total", "channel" => channel, "outcome" => "unknown")
                    .increment(1);
                let event = step_event(&ladder, index, channel, "ladder.step_unknown", json!({"reason": detail}), now);
                let result = StepResult { state: StepState::Unknown, provider_id: None, detail: Some(detail.into()) };
                finish(state, &ladder, index, result, event).await?;
                return Ok(());
            }
            StepClaim::NotPending(_) => return Ok(()),
        };
        let channel = step_channel(&ladder, index);
        let window_end = window_end(&ladder, index);
        let sent = match channel {
            // A retry after the step's window would reach the party after
            // the next step (or long after the ladder's end): it is given up.
            _ if job.attempts > 1 && now >= window_end => Sent::Failed {
                message: format!("not retried: its window closed at {}", window_end.to_rfc3339()),
                transient: false,
            },
            Some(channel) => send(state, &ladder, index, channel).await,
            None => Sent::Skipped(format!("the ladder has no step {index}")),
        };
        let channel_name = channel_name(channel);
        let now = state.clock.now();
        let (result, kind, detail, retry) = match sent {
            Sent::Sent { provider_id, detail } => (
                StepResult { state: StepState::Sent, provider_id: Some(provider_id.clone()), detail: None },
                "ladder.step_sent",
                merge(detail, json!({"providerId": provider_id})),
                None,
            ),
            Sent::Skipped(reason) => (
                StepResult { state: StepState::Skipped, provider_id: None, detail: Some(reason.clone()) },
                "ladder.step_skipped",
                json!({"reason": reason}),
                None,
            ),
            // It may have gone out: never sent again, counted unknown.
            Sent::Unknown(reason) => (
                StepResult { state: StepState::Unknown, provider_id: None, detail: Some(reason.clone()) },
                "ladder.step_unknown",
                json!({"reason": reason}),
                None,
            ),
            Sent::Failed { message, transient } => {
                let will_retry = transient && job.attempts < job.max_attempts && now < window_end;
                let state_after = if will_retry { StepState::Pending } else { StepState::Failed };
                (
                    StepResult { state: state_after, provider_id: None, detail: Some(message.clone()) },
                    "ladder.step_failed",
                    json!({"error": message, "attempt": job.attempts, "willRetry": will_retry}),
                    will_retry.then_some(JobError::Transient(message)),
                )
            }
            // The provider set the earliest retry (WhatsApp 131056: 6 s;
            // FCM QUOTA_EXCEEDED: 60 s): the job waits that long.
            Sent::Throttled { message, wait } => {
                let will_retry = job.attempts < job.max_attempts;
                let state_after = if will_retry { StepState::Pending } else { StepState::Failed };
                let due = ladder.steps.iter().find(|s| s.index == index).map_or(now, |s| s.due_at);
                (
                    StepResult { state: state_after, provider_id: None, detail: Some(message.clone()) },
                    "ladder.step_failed",
                    json!({"error": message, "attempt": job.attempts, "willRetry": will_retry,
                           "retryAfterSeconds": wait.as_secs_f64()}),
                    will_retry.then(|| channels::throttled(message, wait, due, now)),
                )
            }
        };
        let outcome = match result.state {
            StepState::Sent => "sent",
            StepState::Skipped => "skipped",
            StepState::Unknown => "unknown",
            StepState::Pending => "retry",
            _ => "failed",
        };
        metrics::counter!("mangwale_ladder_steps_total", "channel" => channel_name, "outcome" => outcome).increment(1);
        let kind = if channel == Some(Channel::Deadline) { "ladder.deadline_passed" } else { kind };
        let event = step_event(&ladder, index, channel_name, kind, detail, now);
        finish(state, &ladder, index, result, event).await?;
        match retry {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { base: Duration::from_secs(5), max: Duration::from_secs(30), jitter: true }
    }
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

/// Until when a step may be retried: the next step's due time, or
/// [`LAST_STEP_WINDOW`] after the last step was due.
fn window_end(ladder: &Ladder, index: u32) -> chrono::DateTime<chrono::Utc> {
    let due = ladder.steps.iter().find(|s| s.index == index).map(|s| s.due_at);
    // Steps due together (a WhatsApp and a ring at once) do not close each
    // other's window.
    let next =
        ladder.steps.iter().filter(|s| s.index > index && due.is_none_or(|d| s.due_at > d)).map(|s| s.due_at).min();
    match (next, due) {
        (Some(next), _) => next,
        (None, Some(due)) => due + LAST_STEP_WINDOW,
        (None, None) => ladder.started_at + LAST_STEP_WINDOW,
    }
}

fn step_channel(ladder: &Ladder, index: u32) -> Option<Channel> {
    ladder.steps.iter().find(|s| s.index == index).map(|s| s.channel)
}

/// The channel's name for events and metrics; `none` for a step the ladder
/// does not have.
fn channel_name(channel: Option<Channel>) -> &'static str {
    channel.map(Channel::name).unwrap_or("none")
}

fn step_event(
    ladder: &Ladder,
    index: u32,
    channel: &str,
    kind: &str,
    detail: Value,
    now: chrono::DateTime<chrono::Utc>,
) -> NewEvent {
    NewEvent::new(kind, now)
        .escalation(&ladder.escalation_id)
        .channel(channel)
        .context(ladder.order_id.as_deref(), None, Some(&ladder.party))
        .detail(merge(json!({"step": index, "ladder": ladder.kind}), detail))
}

async fn finish(
    state: &AppState,
    ladder: &Ladder,
    index: u32,
    result: StepResult,
    event: NewEvent,
) -> Result<(), JobError> {
    let now = state.clock.now();
    let exhausted = NewEvent::new("ladder.exhausted", now)
        .escalation(&ladder.escalation_id)
        .channel("comms")
        .context(ladder.order_id.as_deref(), None, Some(&ladder.party))
        .detail(json!({"ladder": ladder.kind, "reason": "every step was tried and nobody answered"}));
    let mut on_exhausted = OnExhausted { event: Some(exhausted), jobs: Vec::new() };
    // Notices (customer ladders) have nothing to answer: running out is
    // their normal end, and Jupiter is not told.
    let answerable = !super::answers::buttons(ladder.kind).is_empty();
    if let Some(order) = ladder.order_id.as_ref().filter(|_| answerable) {
        let message = outbox::event(
            "ladder_exhausted",
            order,
            json!({"escalationId": ladder.escalation_id, "ladder": ladder.kind, "party": ladder.party}),
        );
        on_exhausted.jobs.push(outbox::job(order, &message, format!("exhausted:{}", ladder.escalation_id), now));
    }
    let after = state
        .store
        .finish_step(&ladder.escalation_id, index, result, event, Vec::new(), on_exhausted, now)
        .await
        .map_err(store_error)?;
    if after == Some(mangwale_core::ladder::LadderState::Exhausted) {
        metrics::counter!("mangwale_ladders_exhausted_total", "ladder" => ladder.kind.name()).increment(1);
    }
    Ok(())
}

/// Sends one step on its channel.
async fn send(state: &AppState, ladder: &Ladder, index: u32, channel: Channel) -> Sent {
    match channel {
        Channel::AppPush => channels::send_push(state, ladder).await,
        Channel::WhatsApp => channels::send_whatsapp(state, ladder).await,
        Channel::Ring => call(state, ladder, "ring", RING_SECONDS, 120).await,
        Channel::Ivr => call(state, ladder, "ivr", IVR_RING_SECONDS, IVR_TIME_LIMIT).await,
        Channel::Admin => admin(state, ladder, None, &format!("{}:{index}", ladder.escalation_id)).await,
        Channel::Sms => channels::send_ladder_sms(state, ladder, index).await,
        Channel::Deadline => Sent::Sent {
            provider_id: "deadline".into(),
            detail: json!({"reason": "the last call was not answered in time"}),
        },
    }
}

pub fn caller_purpose(kind: CallerKind) -> CallerPurpose {
    match kind {
        CallerKind::NewOrder => CallerPurpose::NewOrder,
        CallerKind::Reminder => CallerPurpose::Reminder,
        CallerKind::Address => CallerPurpose::Address,
        CallerKind::Default => CallerPurpose::Other,
    }
}

fn phone(ladder: &Ladder) -> Option<E164> {
    ladder.phone.clone()
}

fn call_failed(e: PlaceCallError) -> Sent {
    match e {
        PlaceCallError::Permanent(message) => Sent::Failed { message, transient: false },
        other => Sent::Failed { message: other.to_string(), transient: true },
    }
}

/// A ring or IVR call into the ladder's flow, from the purpose's caller id.
async fn call(state: &AppState, ladder: &Ladder, purpose: &str, ring: u32, limit: u32) -> Sent {
    let def = &ladder.definition;
    let Some(flow) = def.ivr_flow.clone() else { return Sent::Skipped("this ladder has no IVR flow".into()) };
    let Some(to) = phone(ladder) else { return Sent::Skipped("no phone number for the party".into()) };
    let request = PlaceCall {
        purpose: purpose.to_string(),
        caller: caller_purpose(def.caller),
        from: to.clone(),
        target: CallTarget::Flow(flow.clone()),
        order_id: ladder.order_id.clone(),
        escalation_id: Some(ladder.escalation_id.clone()),
        party: Some(ladder.party.clone()),
        time_limit: Some(limit),
        ring_timeout: Some(ring),
    };
    match place_call(state, request).await {
        Ok(attempt) => Sent::Sent {
            provider_id: attempt.call_sid.clone().unwrap_or_else(|| attempt.id.clone()),
            detail: json!({"attempt": attempt.id, "flow": flow, "to": to.masked(), "callState": attempt.state.as_str(),
                           "callerId": state.exotel.caller_id(caller_purpose(def.caller)).masked()}),
        },
        Err(e) => call_failed(e),
    }
}

/// The admin step: an SMS to admin support, a bridge call between admin and
/// the party, and an event to Jupiter. Sent if either the SMS or the bridge
/// went out; retried while the bridge failed transiently and the SMS did
/// not go out. `sms_key` makes the SMS at most once across retries: an SMS
/// whose outcome is unknown (Exotel's answer was lost) is not sent again,
/// only the bridge is retried.
async fn admin(state: &AppState, ladder: &Ladder, reason: Option<&str>, sms_key: &str) -> Sent {
    let order = ladder.order_id.clone().unwrap_or_default();
    let now = state.clock.now();
    if !order.is_empty() {
        // Jupiter hears of it whatever happens to the SMS and the call; the
        // key makes a retried step enqueue it once.
        let message = outbox::event(
            "escalation_admin",
            &order,
            json!({"escalationId": ladder.escalation_id, "ladder": ladder.kind, "party": ladder.party}),
        );
        let job = outbox::job(&order, &message, format!("admin:{}", ladder.escalation_id), now);
        if let Err(e) = state.store.enqueue(job).await {
            return Sent::Failed { message: format!("queueing the Jupiter event: {e}"), transient: true };
        }
    }
    let Some(admin) = state.config.admin_support_phone.clone() else {
        return Sent::Failed { message: "ADMIN_SUPPORT_PHONE is not set: nobody to alert".into(), transient: false };
    };
    let body = admin_alert_text(ladder, reason);
    let sms = channels::send_sms(state, &admin, &body, ladder, sms_key).await;
    let bridge = match phone(ladder) {
        Some(party) => {
            let request = PlaceCall {
                purpose: "admin_bridge".into(),
                caller: CallerPurpose::Other,
                from: admin.clone(),
                target: CallTarget::Bridge(party),
                order_id: ladder.order_id.clone(),
                escalation_id: Some(ladder.escalation_id.clone()),
                party: Some(ladder.party.clone()),
                time_limit: Some(ADMIN_BRIDGE_LIMIT),
                ring_timeout: Some(45),
            };
            Some(place_call(state, request).await)
        }
        None => None,
    };
    let sms_detail = match &sms {
        SentOnce::Sent { id: sid, earlier } => json!({"outcome": "sent", "sid": sid, "earlier": earlier}),
        SentOnce::NotSent { message, .. } => json!({"outcome": "not_sent", "error": message}),
        SentOnce::Unknown { message } => json!({"outcome": "unknown", "error": message}),
    };
    let (bridge_id, bridge_detail, bridge_transient) = match &bridge {
        Some(Ok(attempt)) => (
            Some(attempt.call_sid.clone().unwrap_or_else(|| attempt.id.clone())),
            json!({"placed": true, "attempt": attempt.id}),
            false,
        ),
        Some(Err(e)) => {
            (None, json!({"placed": false, "error": e.to_string()}), !matches!(e, PlaceCallError::Permanent(_)))
        }
        None => (None, json!({"placed": false, "error": "no phone number for the party"}), false),
    };
    let detail = json!({"admin": admin.masked(), "sms": sms_detail, "bridge": bridge_detail});
    let bridge_error = &detail["bridge"]["error"];
    match (sms, bridge_id) {
        (_, Some(id)) => Sent::Sent { provider_id: id, detail },
        (SentOnce::Sent { id: sid, .. }, None) => Sent::Sent { provider_id: sid, detail },
        // The SMS is never sent again; only a bridge that failed
        // transiently is worth another attempt.
        (SentOnce::Unknown { message }, None) if bridge_transient => Sent::Failed {
            message: format!("admin alert: SMS outcome unknown ({message}), not sent again; bridge: {bridge_error}"),
            transient: true,
        },
        (SentOnce::Unknown { message }, None) => {
            Sent::Unknown(format!("admin alert: SMS outcome unknown ({message}); bridge: {bridge_error}"))
        }
        (SentOnce::NotSent { message, transient, .. }, None) => Sent::Failed {
            message: format!("admin alert failed: SMS: {message}; bridge: {bridge_error}"),
            transient: transient || bridge_transient,
        },
    }
}

/// The admin alert SMS of a ladder: who has not responded (or `reason`),
/// on which order.
pub(crate) fn admin_alert_text(ladder: &Ladder, reason: Option<&str>) -> String {
    format!(
        "Mangwale alert: {} {} on order {} ({}). Connecting you now.",
        ladder.party,
        reason.unwrap_or("has not responded"),
        ladder.order_id.as_deref().filter(|o| !o.is_empty()).unwrap_or("-"),
        ladder.kind.name()
    )
}

/// The step handler on its own, for tests that run a claimed job by hand.
pub fn handler(state: &AppState) -> Arc<dyn JobHandler> {
    Arc::new(StepHandler { state: state.clone() })
}
