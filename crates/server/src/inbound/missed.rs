//! Missed call → callback, durable.
//!
//! 1. The missed-call route records the call and, in the same commit, a
//!    [`RECEIVED_JOB`].
//! 2. That job records the missed call once (by CallSid) and decides: a
//!    number we are calling back already, or called back within
//!    `MISSED_CALL_WINDOW_MINUTES`, joins that callback; a number we are on
//!    the phone with ([`talking_to`]) gets none; anyone else gets a callback
//!    whose first try ([`TRY_JOB`]) is due `MISSED_CALL_CALLBACK_SECONDS`
//!    after the missed call, moved to the opening of `CALLBACK_HOURS`.
//! 3. A try calls the caller from the new-order number into the inbound flow
//!    (`customer_voice_order`), so they hear their own menu.
//! 4. The try's call ends ([`OUTCOME_JOB`], from the status callback or the
//!    reconciliation): answered ends the callback; busy, no answer or failed
//!    brings the next try [`RETRY_GAP`] later, up to [`TRIES`]; after the
//!    last, an SMS ([`SMS_JOB`]) tells the caller the number to call.
//!
//! Every step is a job; each change of a callback is written with its
//! timeline entry and the job that follows in one transaction, so a restart
//! resumes where it stopped.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mangwale_core::E164;
use mangwale_store::{
    CallAttempt, CallState, Callback, Job, JobError, JobHandler, MissedCall, MissedCallPlan, MissedCallRecorded,
    NewEvent, NewJob, StoreError, TryClaim, TryEnd, Worker,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::calls::{CallTarget, PlaceCall, PlaceCallError, place_call};
use crate::exotel::CallerPurpose;
use crate::state::AppState;

/// Records a missed call and decides what it does.
pub const RECEIVED_JOB: &str = "missed_call.received";
/// One try of a callback.
pub const TRY_JOB: &str = "missed_call.callback";
/// A callback try's call has ended.
pub const OUTCOME_JOB: &str = "missed_call.outcome";
/// The SMS after the last unanswered try.
pub const SMS_JOB: &str = "missed_call.sms";

/// The purpose of a callback's call attempts.
pub const PURPOSE: &str = "missed_callback";
/// The flow a callback plays: the inbound menu, as if they had called us.
pub const CALLBACK_FLOW: &str = "customer_voice_order";
/// Calls per callback: the first and two retries.
pub const TRIES: u32 = 3;
/// Between a try nobody answered and the next.
pub const RETRY_GAP: chrono::Duration = chrono::Duration::minutes(2);
/// How long a callback rings.
pub const RING_SECONDS: u32 = 40;
/// The longest callback call: long enough to place an order.
pub const TIME_LIMIT: u32 = 1800;
/// Attempts older than this are not counted as in progress (a call whose
/// terminal callback was lost must not block callbacks for ever).
const IN_PROGRESS_WITHIN: chrono::Duration = chrono::Duration::hours(1);
/// How long a resumed try waits for a call that may be ringing.
const RESUME_WAIT: chrono::Duration = chrono::Duration::minutes(1);

/// Whether a missed call was made to `OPT_OUT_NUMBER` (Exotel's `To`, or
/// `CallTo` of the Passthru): an opt-out from campaigns, not a request to
/// be called back.
pub fn is_opt_out_call(state: &AppState, params: &mangwale_providers::exotel::params::Params) -> bool {
    let Some(number) = &state.config.opt_out_number else { return false };
    ["To", "CallTo", "to"].iter().filter_map(|k| params.get(k)).any(|to| E164::parse(to).is_ok_and(|to| &to == number))
}

/// The timeline's party for a caller: their masked number.
pub fn party(phone: &E164) -> String {
    format!("caller:{}", phone.masked())
}

/// The follow-up the missed-call route records with the call.
pub fn received_job(call_sid: &str, phone: &E164, at: DateTime<Utc>) -> NewJob {
    NewJob::follow_up(RECEIVED_JOB, json!({"callSid": call_sid, "phone": phone.as_str(), "at": at.to_rfc3339()}), at)
        .max_attempts(20)
}

/// Whether we are on the phone with `phone` now: one of our call attempts
/// to it is still requested, ringing or talking.
pub async fn talking_to(state: &AppState, phone: &E164) -> Result<bool, StoreError> {
    let now = state.clock.now();
    Ok(state.store.call_in_progress_with(phone, now - IN_PROGRESS_WITHIN).await?
        || state.store.active_inbound_call_from(phone, now).await?)
}

/// The job that carries a callback's call outcome on, for an attempt that
/// has ended; `None` for any other attempt.
pub fn outcome_job(attempt: &CallAttempt, now: DateTime<Utc>) -> Option<NewJob> {
    (attempt.purpose == PURPOSE && attempt.state.is_final()).then(|| {
        let payload = json!(OutcomePayload { attempt: attempt.id.clone() });
        NewJob::new(OUTCOME_JOB, format!("{OUTCOME_JOB}:{}", attempt.id), payload, now).max_attempts(20)
    })
}

/// What an [`OUTCOME_JOB`] carries.
#[derive(Serialize, Deserialize)]
struct OutcomePayload {
    /// The callback's call attempt that ended.
    attempt: String,
}

fn try_job(callback_id: &str, try_no: u32, due_at: DateTime<Utc>) -> NewJob {
    let payload = json!(TryPayload { callback_id: callback_id.to_string(), try_no });
    NewJob::new(TRY_JOB, format!("{TRY_JOB}:{callback_id}:{try_no}"), payload, due_at).max_attempts(10)
}

/// What a [`TRY_JOB`] carries.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TryPayload {
    callback_id: String,
    #[serde(rename = "try")]
    try_no: u32,
}

/// The job's payload as `T`; any other payload fails the job for good.
fn payload<T: DeserializeOwned>(job: &Job, what: &str) -> Result<T, JobError> {
    serde_json::from_value(job.payload.clone())
        .map_err(|e| JobError::Permanent(format!("not a {what} ({e}): {}", job.payload)))
}

fn store_error(e: StoreError) -> JobError {
    JobError::Transient(e.to_string())
}

fn event(kind: &str, phone: &E164, at: DateTime<Utc>, detail: Value) -> NewEvent {
    NewEvent::new(kind, at).party(party(phone)).channel("missed_call").detail(detail)
}

fn counter(name: &'static str, outcome: &'static str) {
    metrics::counter!(name, "outcome" => outcome).increment(1);
}

pub fn register(worker: &mut Worker, state: &AppState) {
    worker.register(RECEIVED_JOB, Arc::new(Received { state: state.clone() }));
    worker.register(TRY_JOB, Arc::new(Try { state: state.clone() }));
    worker.register(OUTCOME_JOB, Arc::new(Outcome { state: state.clone() }));
    worker.register(SMS_JOB, Arc::new(Sms { state: state.clone() }));
}

struct Received {
    state: AppState,
}

#[async_trait]
impl JobHandler for Received {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        // The payload holds the caller's number: the error names the job only.
        let bad = || JobError::Permanent(format!("not a missed call (job {})", job.id));
        let p = &job.payload;
        let call_sid = p["callSid"].as_str().ok_or_else(bad)?.to_string();
        let phone = p["phone"].as_str().and_then(|p| E164::parse(p).ok()).ok_or_else(bad)?;
        let at = p["at"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(bad)?;
        let state = &self.state;
        // Who missed-called, for the timeline (the callback itself hears
        // the caller's own menu, identified afresh on that call).
        let caller = super::caller::who_is(state, &phone).await.caller;
        let caller_detail = json!({"kind": caller.kind.name(), "partyId": caller.party_id,
                                   "orderId": caller.menu_order().map(|o| o.as_str().to_string())});
        let window = chrono::Duration::from_std(state.config.missed_call_window).unwrap_or_default();
        let delay = chrono::Duration::from_std(state.config.missed_call_callback_delay).unwrap_or_default();
        // A callback that opens between our read and our write makes the
        // write do nothing: read again and join it.
        for _ in 0..3 {
            let now = state.clock.now();
            let existing = state.store.callback_for_phone(&phone, at - window).await.map_err(store_error)?;
            let (plan, kind, detail, outcome) = match existing {
                Some(callback) => (
                    MissedCallPlan::Join { callback_id: callback.id.clone() },
                    "missed_call.joined",
                    json!({"callSid": call_sid, "callbackId": callback.id, "callbackState": callback.state,
                           "missedCalls": callback.missed_count + 1}),
                    "joined",
                ),
                None if talking_to(state, &phone).await.map_err(store_error)? => (
                    MissedCallPlan::Talking,
                    "missed_call.while_talking",
                    json!({"callSid": call_sid, "reason": "we are on the phone with them"}),
                    "talking",
                ),
                None => {
                    let id = uuid::Uuid::new_v4().simple().to_string();
                    let due_at = state.config.callback_hours.next_allowed(at + delay);
                    let detail = json!({"callSid": call_sid, "callbackId": id, "dueAt": due_at,
                                        "outsideHours": due_at > at + delay});
                    let first_try = try_job(&id, 1, due_at);
                    (
                        MissedCallPlan::NewCallback { id, due_at, first_try },
                        "missed_call.callback_scheduled",
                        detail,
                        "scheduled",
                    )
                }
            };
            let mut detail = detail;
            detail["caller"] = caller_detail.clone();
            let call = MissedCall { call_sid: call_sid.clone(), phone: phone.clone(), at };
            let recorded = state
                .store
                .record_missed_call(call, plan, event(kind, &phone, now, detail), now)
                .await
                .map_err(store_error)?;
            match recorded {
                MissedCallRecorded::Recorded => {
                    counter("mangwale_missed_calls_total", outcome);
                    tracing::info!(call_sid, caller = %phone.masked(), outcome, "missed call recorded");
                    return Ok(());
                }
                MissedCallRecorded::Duplicate => return Ok(()),
                MissedCallRecorded::OpenCallbackExists => continue,
            }
        }
        Err(JobError::Transient("the caller's callback kept changing".into()))
    }
}

struct Try {
    state: AppState,
}

#[async_trait]
impl JobHandler for Try {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let TryPayload { callback_id, try_no } = payload(job, "callback try")?;
        let id = callback_id.as_str();
        let state = &self.state;
        let now = state.clock.now();
        // Due inside the hours, but run late (the service was down): wait
        // for the next opening rather than ring at night.
        let allowed = state.config.callback_hours.next_allowed(now);
        if allowed > now {
            tracing::info!(callback = id, until = %allowed, "callback outside callback hours; deferred");
            return Err(JobError::Defer(allowed));
        }
        let (callback, resumed) = match state.store.claim_callback_try(id, try_no, now).await.map_err(store_error)? {
            TryClaim::Fresh(callback) => (callback, false),
            TryClaim::Resumed(callback) => (callback, true),
            TryClaim::Gone => return Ok(()),
        };
        if talking_to(state, &callback.phone).await.map_err(store_error)? {
            if resumed {
                // The call an earlier run placed may be ringing: its end
                // decides; if it was never placed, this run places it after.
                return Err(JobError::Defer(now + RESUME_WAIT));
            }
            let due_at = now + RETRY_GAP;
            state.store.release_callback_try(id, try_no, due_at, now).await.map_err(store_error)?;
            let detail = json!({"callbackId": id, "try": try_no, "dueAt": due_at,
                                "reason": "we are on the phone with them"});
            state
                .store
                .record_event(event("missed_call.callback_postponed", &callback.phone, now, detail))
                .await
                .map_err(store_error)?;
            counter("mangwale_missed_call_callbacks_total", "postponed");
            return Err(JobError::Defer(due_at));
        }
        self.place(&callback, try_no, job.attempts >= job.max_attempts).await
    }
}

impl Try {
    /// Places the try's call. On the job's last attempt a transient failure
    /// ends the try like a call nobody answered (the next try, or the SMS),
    /// so a callback never stays open behind a dead job.
    async fn place(&self, callback: &Callback, try_no: u32, last_attempt: bool) -> Result<(), JobError> {
        let state = &self.state;
        let request = PlaceCall {
            purpose: PURPOSE.into(),
            caller: CallerPurpose::NewOrder,
            from: callback.phone.clone(),
            target: CallTarget::Flow(CALLBACK_FLOW.into()),
            order_id: None,
            escalation_id: None,
            party: Some(party(&callback.phone)),
            time_limit: Some(TIME_LIMIT),
            ring_timeout: Some(RING_SECONDS),
        };
        let caller_id = state.exotel.caller_id(CallerPurpose::NewOrder);
        match place_call(state, request).await {
            Ok(attempt) => {
                let now = state.clock.now();
                let detail = json!({"callbackId": callback.id, "try": try_no, "attempt": attempt.id,
                                    "callState": attempt.state.as_str(), "flow": CALLBACK_FLOW,
                                    "to": callback.phone.masked(), "callerId": caller_id.masked()});
                let mut placed = event("missed_call.callback_placed", &callback.phone, now, detail);
                if let Some(sid) = &attempt.call_sid {
                    placed = placed.call(sid);
                }
                state
                    .store
                    .link_callback_attempt(&callback.id, try_no, &attempt.id, placed, now)
                    .await
                    .map_err(store_error)?;
                counter("mangwale_missed_call_callbacks_total", "placed");
                Ok(())
            }
            Err(PlaceCallError::Permanent(message)) => {
                counter("mangwale_missed_call_callbacks_total", "not_placed");
                end_try(state, callback, try_no, None, &message).await
            }
            Err(e) if last_attempt => {
                counter("mangwale_missed_call_callbacks_total", "not_placed");
                end_try(state, callback, try_no, None, &format!("not placed after every retry: {e}")).await
            }
            Err(e) => {
                // Nothing rang: the try is given back and the job retried.
                let now = state.clock.now();
                state.store.release_callback_try(&callback.id, try_no, now, now).await.map_err(store_error)?;
                Err(JobError::Transient(e.to_string()))
            }
        }
    }
}

/// Ends try `try_no`: answered (`answered_by` is the call attempt that was
/// answered), else the next try, else giving up and the SMS.
async fn end_try(
    state: &AppState,
    callback: &Callback,
    try_no: u32,
    answered_by: Option<&CallAttempt>,
    status: &str,
) -> Result<(), JobError> {
    let now = state.clock.now();
    let phone = &callback.phone;
    // A provider's error text may echo the number dialled.
    let status = mangwale_core::mask_phone_numbers(status);
    let base = json!({"callbackId": callback.id, "try": try_no, "status": status});
    let (end, kind, detail, jobs, outcome) = match answered_by {
        Some(attempt) => (
            TryEnd::Answered,
            "missed_call.callback_answered",
            merge(
                base,
                json!({"attempt": attempt.id, "minutesAfterFirstMissedCall":
                               (now - callback.first_missed_at).num_seconds() as f64 / 60.0}),
            ),
            Vec::new(),
            "answered",
        ),
        None if try_no < TRIES => {
            let due_at = state.config.callback_hours.next_allowed(now + RETRY_GAP);
            (
                TryEnd::Retry { due_at },
                "missed_call.callback_retry_scheduled",
                merge(base, json!({"nextTry": try_no + 1, "dueAt": due_at})),
                vec![try_job(&callback.id, try_no + 1, due_at)],
                "retry",
            )
        }
        None => (
            TryEnd::GaveUp,
            "missed_call.callback_gave_up",
            merge(base, json!({"tries": try_no, "then": "sms"})),
            vec![
                NewJob::new(SMS_JOB, format!("{SMS_JOB}:{}", callback.id), json!({"callbackId": callback.id}), now)
                    .max_attempts(6),
            ],
            "gave_up",
        ),
    };
    let finished = state
        .store
        .finish_callback_try(&callback.id, try_no, end, event(kind, phone, now, detail), jobs, now)
        .await
        .map_err(store_error)?;
    if finished {
        counter("mangwale_missed_call_callbacks_total", outcome);
    }
    Ok(())
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

struct Outcome {
    state: AppState,
}

#[async_trait]
impl JobHandler for Outcome {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let OutcomePayload { attempt } = payload(job, "callback outcome")?;
        let attempt_id = attempt.as_str();
        let state = &self.state;
        let Some(attempt) = state.store.call_by_id(attempt_id).await.map_err(store_error)? else {
            return Err(JobError::Permanent(format!("no call attempt {attempt_id}")));
        };
        let Some(callback) = state.store.callback_by_attempt(attempt_id).await.map_err(store_error)? else {
            // The try links its attempt right after Exotel accepts the call;
            // a call that ended before that is caught on a later run.
            return Err(JobError::Transient(format!("attempt {attempt_id} is not linked to its callback yet")));
        };
        if callback.state != mangwale_store::CallbackState::Calling {
            return Ok(());
        }
        let answered = (attempt.state == CallState::Completed).then_some(&attempt);
        end_try(state, &callback, callback.tries, answered, attempt.state.as_str()).await
    }
}

struct Sms {
    state: AppState,
}

/// The SMS's text (register it as the DLT template,
/// `EXOTEL_DLT_TEMPLATE_MISSED_CALL`; docs/comms.md).
pub fn sms_text(tries: u32, number: &E164) -> String {
    format!(
        "Mangwale: we tried to call you back {tries} times but could not reach you. To place an order, call us on {}.",
        number.as_str()
    )
}

#[async_trait]
impl JobHandler for Sms {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        use crate::comms::channels::{SentOnce, SmsPurpose, send_sms_once};
        use mangwale_providers::exotel::client::SendSms;

        let bad = || JobError::Permanent(format!("not a callback SMS: {}", job.payload));
        let id = job.payload["callbackId"].as_str().ok_or_else(bad)?;
        let state = &self.state;
        let Some(callback) = state.store.callback(id).await.map_err(store_error)? else {
            return Err(JobError::Permanent(format!("no callback {id}")));
        };
        let number = state.exotel.caller_id(CallerPurpose::NewOrder);
        let from = state.config.exotel_sms_sender.clone().unwrap_or_else(|| number.national());
        let mut sms = SendSms::new(from, callback.phone.clone(), sms_text(callback.tries, &number));
        sms.dlt_entity_id = state.config.exotel_dlt_entity_id.clone();
        sms.dlt_template_id = state.config.exotel_dlt_template_missed_call.clone();
        sms.custom_field = Some(format!("m:{id}"));
        let sent = send_sms_once(state, SmsPurpose::MissedCall, id, &sms).await;
        let now = state.clock.now();
        let (kind, detail, outcome) = match sent {
            SentOnce::Sent { id: sid, earlier } => (
                "missed_call.sms_sent",
                json!({"callbackId": id, "smsSid": sid, "earlier": earlier, "to": callback.phone.masked(),
                       "number": number.masked()}),
                "sent",
            ),
            SentOnce::NotSent { message, transient: true, .. } if job.attempts < job.max_attempts => {
                return Err(JobError::Transient(message));
            }
            SentOnce::NotSent { message, .. } => {
                ("missed_call.sms_failed", json!({"callbackId": id, "error": message}), "failed")
            }
            // It may have gone out: never sent again. Its status callback,
            // if any, follows on the timeline.
            SentOnce::Unknown { message } => (
                "missed_call.sms_unknown",
                json!({"callbackId": id, "error": message, "to": callback.phone.masked()}),
                "unknown",
            ),
        };
        state.store.record_event(event(kind, &callback.phone, now, detail)).await.map_err(store_error)?;
        counter("mangwale_missed_call_sms_total", outcome);
        Ok(())
    }
}
