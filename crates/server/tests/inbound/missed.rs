//! Missed call → callback, on clocks the tests move: one callback for
//! several missed calls, retries then an SMS, a restart in between, and
//! callback hours.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use mangwale_server::inbound::missed;
use mangwale_sim::exotel::{CallMode, CalleeScript, Endpoint, Fault, SmsStatus};
use mangwale_store::test_support::TestDb;
use mangwale_store::{CallbackState, Clock};
use serde_json::{Value, json};

use crate::common::SimEnv;

const CALLER: &str = "+919876543210";
/// The caller's digits, which no timeline entry may show.
const CALLER_DIGITS: &str = "9876543210";
const DLT_TEMPLATE: &str = "1107160000000000042";
const DLT_TEXT: &str =
    "Mangwale: we tried to call you back {#var#} times but could not reach you. To place an order, call us on {#var#}.";

/// 11:30 in India: inside the default callback hours (08:00-23:00 IST).
fn daytime() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 6, 0, 0).unwrap()
}

/// The sandbox from `at`, on `db` when it restarts.
async fn start_at(at: DateTime<Utc>, db: Option<TestDb>) -> SimEnv {
    SimEnv::builder()
        .at(at)
        .var("EXOTEL_DLT_ENTITY_ID", "1101160000000000001")
        .var("EXOTEL_DLT_TEMPLATE_MISSED_CALL", DLT_TEMPLATE)
        .exotel(|config| config.with_template(DLT_TEMPLATE, DLT_TEXT))
        .phones_first()
        .db(db)
        .start()
        .await
}

impl SimEnv {
    fn t(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The caller rings the missed-call number, and the flow's Passthru
    /// reaches our route.
    async fn missed_call(&self) {
        let exophone = self.exotel.config().exophones[0].clone();
        self.exotel.incoming_call(CALLER, exophone, "missed_call").unwrap();
        self.exotel.run_due().await;
        self.run_jobs().await;
    }

    /// Our calls to the caller (flow calls), oldest first.
    fn callbacks(&self) -> Vec<mangwale_sim::exotel::Call> {
        let mut calls: Vec<_> = self
            .exotel
            .calls()
            .into_iter()
            .filter(|c| c.from.as_str() == CALLER && matches!(c.mode, CallMode::Flow { .. }))
            .collect();
        calls.sort_by_key(|c| c.created_at);
        calls
    }

    async fn callback(&self) -> mangwale_store::Callback {
        let caller = mangwale_core::E164::parse(CALLER).unwrap();
        self.app.state.store.callback_for_phone(&caller, self.t() - chrono::Duration::days(2)).await.unwrap().unwrap()
    }

    async fn missed_call_kinds(&self) -> Vec<String> {
        self.all_events().await.into_iter().filter(|e| e.kind.starts_with("missed_call.")).map(|e| e.kind).collect()
    }

    async fn analytics(&self) -> Value {
        let from = (self.t() - chrono::Duration::hours(12)).to_rfc3339();
        let path = format!("/exotel/ivr/analytics?from={}", urlencode(&from));
        let (status, body) = self.get(&path).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// No timeline entry shows the caller's number.
    async fn assert_masked(&self) {
        for event in self.all_events().await {
            let text = serde_json::to_string(&(&event.detail, &event.party)).unwrap();
            assert!(!text.contains(CALLER_DIGITS), "{} shows the caller's number: {text}", event.kind);
        }
    }
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn three_missed_calls_in_two_minutes_bring_one_callback_30_s_after_the_first() {
    let env = start_at(daytime(), None).await;
    env.exotel
        .script(CALLER, CalleeScript::answers_after(Duration::from_secs(3)).stays_for(Duration::from_secs(20)))
        .unwrap();
    let first = env.t();
    env.missed_call().await;
    env.tick(50).await;
    env.missed_call().await;
    env.tick(50).await;
    env.missed_call().await;
    assert_eq!(env.t() - first, chrono::Duration::seconds(100), "three missed calls within two minutes");
    env.tick(300).await;

    let calls = env.callbacks();
    assert_eq!(calls.len(), 1, "one callback: {calls:#?}");
    assert_eq!(calls[0].created_at - first, chrono::Duration::seconds(30));
    assert_eq!(calls[0].caller_id, env.app.state.exotel.caller_id(mangwale_server::exotel::CallerPurpose::NewOrder));
    let CallMode::Flow { flow_id, .. } = &calls[0].mode else { unreachable!() };
    assert_eq!(flow_id.as_deref(), Some(missed::CALLBACK_FLOW), "the caller hears their own menu");
    let applets: Vec<String> = env.exotel.flow_log(&calls[0].sid).into_iter().map(|e| e.applet_id).collect();
    assert_eq!(applets.first().map(String::as_str), Some("incoming"), "{applets:?}");

    let callback = env.callback().await;
    assert_eq!((callback.state, callback.missed_count, callback.tries), (CallbackState::Answered, 3, 1));
    assert_eq!(
        env.missed_call_kinds().await,
        vec![
            "missed_call.callback_scheduled",
            "missed_call.callback_placed",
            "missed_call.joined",
            "missed_call.callback_answered",
            "missed_call.joined",
        ]
    );
    let analytics = env.analytics().await;
    assert_eq!(
        (
            &analytics["missedCalls"],
            &analytics["callbacksPlaced"],
            &analytics["callbacksAnswered"],
            &analytics["callbacksGaveUp"]
        ),
        (&json!(3), &json!(1), &json!(1), &json!(0)),
        "{analytics}"
    );
    env.assert_masked().await;
    env.app.stop().await;
}

#[tokio::test]
async fn a_callback_not_answered_or_busy_is_retried_twice_2_minutes_apart_then_texted() {
    let env = start_at(daytime(), None).await;
    env.exotel.script(CALLER, CalleeScript::no_answer()).unwrap();
    let first = env.t();
    env.missed_call().await;
    env.tick(100).await;
    assert_eq!(env.callbacks().len(), 1);
    // Busy for the retries.
    env.exotel.script(CALLER, CalleeScript::busy()).unwrap();
    env.tick(800).await;

    let calls = env.callbacks();
    assert_eq!(calls.len(), 3, "the first call and two retries: {calls:#?}");
    assert_eq!(calls[0].created_at - first, chrono::Duration::seconds(30));
    for pair in calls.windows(2) {
        let ended = pair[0].ended_at.expect("the unanswered call ended");
        let gap = pair[1].created_at - ended;
        assert!(
            gap >= chrono::Duration::minutes(2) && gap < chrono::Duration::minutes(2) + chrono::Duration::seconds(10),
            "a retry comes 2 minutes after the call before ended: {gap}"
        );
    }
    let sms: Vec<_> = env.exotel.sms_messages().into_iter().filter(|m| m.to.as_str() == CALLER).collect();
    assert_eq!(sms.len(), 1, "{sms:#?}");
    let number = env.app.state.exotel.caller_id(mangwale_server::exotel::CallerPurpose::NewOrder);
    assert_eq!(sms[0].body, missed::sms_text(3, &number));
    assert!(sms[0].body.contains(number.as_str()), "the SMS names the new-order number");
    assert_eq!(sms[0].dlt_template_id.as_deref(), Some(DLT_TEMPLATE));
    assert!(sms[0].status_callback.as_deref().is_some_and(|u| u.contains("/exotel/webhooks/sms-status")));
    assert_eq!(sms[0].status, SmsStatus::Sent, "the DLT template accepts it");

    let callback = env.callback().await;
    assert_eq!((callback.state, callback.tries), (CallbackState::GaveUp, 3));
    let report = env.all_events().await.into_iter().find(|e| e.kind == "exotel.sms_status").expect("the SMS's report");
    assert_eq!(report.party, Some(missed::party(&callback.phone)), "on the caller's timeline");
    assert_eq!(
        env.missed_call_kinds().await,
        vec![
            "missed_call.callback_scheduled",
            "missed_call.callback_placed",
            "missed_call.callback_retry_scheduled",
            "missed_call.callback_placed",
            "missed_call.callback_retry_scheduled",
            "missed_call.callback_placed",
            "missed_call.callback_gave_up",
            "missed_call.sms_sent",
        ]
    );
    let statuses: Vec<Value> = env
        .all_events()
        .await
        .into_iter()
        .filter(|e| e.kind == "missed_call.callback_retry_scheduled" || e.kind == "missed_call.callback_gave_up")
        .map(|e| e.detail["status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!("no-answer"), json!("busy"), json!("busy")]);
    let analytics = env.analytics().await;
    assert_eq!(
        (
            &analytics["missedCalls"],
            &analytics["callbackCalls"],
            &analytics["callbacksAnswered"],
            &analytics["callbacksGaveUp"]
        ),
        (&json!(1), &json!(3), &json!(0), &json!(1)),
        "{analytics}"
    );
    env.assert_masked().await;
    env.app.stop().await;
}

/// Exotel sends the SMS after the last try, but the connection drops before
/// its answer: the timeline says its outcome is unknown, not that it failed,
/// and it is not sent again, even by another run of the job.
#[tokio::test]
async fn a_missed_call_sms_whose_answer_was_lost_is_reported_unknown_and_not_sent_again() {
    let env = start_at(daytime(), None).await;
    env.exotel.script(CALLER, CalleeScript::no_answer()).unwrap();
    env.exotel.inject_fault(Endpoint::SmsSend, Fault::DropAfterProcessing, 1);
    env.missed_call().await;
    env.tick(900).await;
    assert_eq!(env.callbacks().len(), 3);
    let kinds = env.missed_call_kinds().await;
    assert_eq!(kinds.last().map(String::as_str), Some("missed_call.sms_unknown"), "{kinds:?}");

    // The job run again (a redelivery): the SMS is not sent a second time.
    let callback = env.callback().await;
    let rerun = mangwale_store::NewJob::new(missed::SMS_JOB, "rerun", json!({"callbackId": callback.id}), env.t());
    env.app.state.store.enqueue(rerun).await.unwrap();
    env.run_jobs().await;
    let sms: Vec<_> = env.exotel.sms_messages().into_iter().filter(|m| m.to.as_str() == CALLER).collect();
    assert_eq!(sms.len(), 1, "{sms:#?}");
    let sms_requests = env.exotel.received().into_iter().filter(|r| r.endpoint == Some(Endpoint::SmsSend)).count();
    assert_eq!(sms_requests, 1, "the rerun did not ask Exotel again");
    let unknown = env.all_events().await.into_iter().filter(|e| e.kind == "missed_call.sms_unknown").count();
    assert_eq!(unknown, 2, "each run reports the unknown outcome");
    env.assert_masked().await;
    env.app.stop().await;
}

/// The seed's JSON body, then a restart before the callback is due: the
/// new process calls back, once.
#[tokio::test]
async fn a_restart_between_a_missed_call_and_its_callback_still_calls_back_once() {
    let env = start_at(daytime(), None).await;
    let first = env.t();
    let res = env
        .app
        .http
        .post(env.app.exotel_url("/exotel/ivr/missed-call"))
        .json(&json!({"From": CALLER, "To": "+918069000000", "CallType": "missed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    env.run_jobs().await;
    env.tick(10).await;
    assert!(env.callbacks().is_empty());
    let db = env.app.stop_keeping_db().await;

    let env = start_at(first + chrono::Duration::seconds(15), Some(db)).await;
    env.exotel
        .script(CALLER, CalleeScript::answers_after(Duration::from_secs(3)).stays_for(Duration::from_secs(20)))
        .unwrap();
    env.tick(300).await;
    let calls = env.callbacks();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0].created_at - first, chrono::Duration::seconds(30));
    assert_eq!(env.callback().await.state, CallbackState::Answered);
    env.assert_masked().await;
    env.app.stop().await;
}

#[tokio::test]
async fn a_missed_call_outside_callback_hours_is_called_back_at_opening() {
    // 23:30 in India; the hours open again at 08:00 IST (02:30 UTC).
    let night = Utc.with_ymd_and_hms(2026, 12, 5, 18, 0, 0).unwrap();
    let opening = Utc.with_ymd_and_hms(2026, 12, 6, 2, 30, 0).unwrap();
    let env = start_at(night, None).await;
    env.exotel
        .script(CALLER, CalleeScript::answers_after(Duration::from_secs(3)).stays_for(Duration::from_secs(20)))
        .unwrap();
    env.missed_call().await;
    env.tick(120).await;
    assert!(env.callbacks().is_empty(), "nobody is called at night");
    let scheduled = env.all_events().await.into_iter().find(|e| e.kind == "missed_call.callback_scheduled").unwrap();
    assert_eq!(scheduled.detail["outsideHours"], true);
    assert_eq!(env.callback().await.due_at, opening);

    let before = opening - chrono::Duration::seconds(20);
    env.clock.set(before);
    env.exotel.advance_to(before).await;
    env.tick(60).await;
    let calls = env.callbacks();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0].created_at, opening);
    env.app.stop().await;
}

/// A missed call from someone we are on the phone with brings no callback.
#[tokio::test]
async fn a_missed_call_while_we_are_calling_them_brings_no_callback() {
    use mangwale_server::calls::{CallTarget, PlaceCall, place_call};
    let env = start_at(daytime(), None).await;
    env.exotel
        .script(CALLER, CalleeScript::answers_after(Duration::from_secs(3)).stays_for(Duration::from_secs(60)))
        .unwrap();
    let call = PlaceCall {
        purpose: "bridge".into(),
        caller: mangwale_server::exotel::CallerPurpose::Other,
        from: mangwale_core::E164::parse("+919988776655").unwrap(),
        target: CallTarget::Bridge(mangwale_core::E164::parse(CALLER).unwrap()),
        order_id: None,
        escalation_id: None,
        party: None,
        time_limit: Some(300),
        ring_timeout: Some(30),
    };
    place_call(&env.app.state, call).await.unwrap();
    let caller = mangwale_core::E164::parse(CALLER).unwrap();
    assert!(missed::talking_to(&env.app.state, &caller).await.unwrap());
    env.missed_call().await;
    env.tick(120).await;
    assert!(env.callbacks().is_empty());
    assert_eq!(env.missed_call_kinds().await, vec!["missed_call.while_talking"]);
    assert_eq!(env.analytics().await["missedCalls"], 1);
    env.app.stop().await;
}
