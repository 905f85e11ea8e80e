//! Placing calls through the production client against the in-process
//! Exotel simulator, on clocks the test moves.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::http::post_json;
use common::{Setup, TestApp};
use mangwale_core::E164;
use mangwale_server::PrepareOptions;
use mangwale_server::calls::{CallTarget, PlaceCall, place_call};
use mangwale_server::exotel::CallerPurpose;
use mangwale_sim::exotel::{CalleeScript, Endpoint, Fault, SimConfig};
use mangwale_store::{CallState, Clock, ManualClock};

const VENDOR: &str = "+919876543210";
const RIDER: &str = "+919988776655";

async fn app() -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = TestApp::start_setup(Setup {
        clock: clock.clone(),
        prepare: PrepareOptions { exotel_sim: Some(SimConfig::manual(clock.now())), ..PrepareOptions::default() },
        ..Setup::default()
    })
    .await;
    (app, clock)
}

fn bridge(order: &str) -> PlaceCall {
    PlaceCall {
        purpose: "bridge".into(),
        caller: CallerPurpose::Other,
        from: E164::parse(VENDOR).unwrap(),
        target: CallTarget::Bridge(E164::parse(RIDER).unwrap()),
        order_id: Some(order.into()),
        escalation_id: None,
        party: Some("vendor:V-42".into()),
        time_limit: Some(300),
        ring_timeout: Some(30),
    }
}

#[tokio::test]
async fn a_bridge_call_is_placed_and_its_callbacks_complete_the_attempt() {
    let (app, _clock) = app().await;
    let sim = app.state.exotel.sim.clone().unwrap();
    sim.script(VENDOR, CalleeScript::answers_after(Duration::from_secs(2)).stays_for(Duration::from_secs(30))).unwrap();
    sim.script(RIDER, CalleeScript::answers_after(Duration::from_secs(3)).stays_for(Duration::from_secs(20))).unwrap();

    let attempt = place_call(&app.state, bridge("MW-1")).await.unwrap();
    assert_eq!(attempt.state, CallState::Placed);
    let sid = attempt.call_sid.clone().unwrap();
    assert_eq!(sim.calls().len(), 1, "Exotel got one request");
    let received = &sim.received()[0];
    assert_eq!(received.field("CustomField"), Some(format!("c:{}", attempt.id).as_str()));

    // The simulated call plays out; its callbacks reach our route.
    sim.advance(Duration::from_secs(120)).await;
    mangwale_server::build_worker(&app.state).run_until_idle().await.unwrap();
    let done = app.state.store.call_by_id(&attempt.id).await.unwrap().unwrap();
    assert_eq!(done.state, CallState::Completed);
    assert_eq!(done.call_sid.as_deref(), Some(sid.as_str()));
    let kinds: Vec<String> =
        app.state.store.events_for_order("MW-1").await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds.first().map(String::as_str), Some("call_placed"));
    assert_eq!(kinds.last().map(String::as_str), Some("call_ended"));
    assert_eq!(
        kinds.iter().filter(|k| *k == "call_answered").count(),
        2,
        "each leg's answered callback is kept: {kinds:?}"
    );
    let logged =
        app.state.store.exotel_requests_since(chrono::Utc::now() - chrono::Duration::hours(1), 10).await.unwrap();
    assert!(logged.iter().any(|r| r.endpoint == "calls.connect" && r.outcome == "ok"), "the request is recorded");
    app.stop().await;
}

#[tokio::test]
async fn an_ambiguous_request_is_not_retried_and_is_reconciled_by_its_callback() {
    let (app, _clock) = app().await;
    let sim = app.state.exotel.sim.clone().unwrap();
    // Exotel places the call but the connection drops before it answers us.
    sim.inject_fault(Endpoint::CallsConnect, Fault::DropAfterProcessing, 1);
    let attempt = place_call(&app.state, bridge("MW-2")).await.unwrap();
    assert_eq!(attempt.state, CallState::Unknown);
    assert_eq!(sim.calls().len(), 1, "never retried: a retry could ring the vendor twice");

    sim.advance(Duration::from_secs(120)).await;
    mangwale_server::build_worker(&app.state).run_until_idle().await.unwrap();
    let reconciled = app.state.store.call_by_id(&attempt.id).await.unwrap().unwrap();
    assert_eq!(reconciled.state, CallState::Completed, "the terminal callback's CustomField found the attempt");
    assert!(reconciled.call_sid.is_some());
    app.stop().await;
}

#[tokio::test]
async fn a_call_whose_fate_never_arrives_counts_as_not_reached() {
    let (app, clock) = app().await;
    let sim = app.state.exotel.sim.clone().unwrap();
    // The connection drops before Exotel did anything: no callback will come.
    sim.inject_fault(Endpoint::CallsConnect, Fault::Drop, 1);
    let attempt = place_call(&app.state, bridge("MW-3")).await.unwrap();
    assert_eq!(attempt.state, CallState::Unknown);
    let worker = mangwale_server::build_worker(&app.state);
    worker.run_until_idle().await.unwrap();
    assert_eq!(app.state.store.call_by_id(&attempt.id).await.unwrap().unwrap().state, CallState::Unknown);
    clock.advance(mangwale_server::calls::RECONCILE_AFTER + Duration::from_secs(1));
    assert_eq!(worker.run_until_idle().await.unwrap().completed, 1);
    let failed = app.state.store.call_by_id(&attempt.id).await.unwrap().unwrap();
    assert_eq!(failed.state, CallState::Failed);
    let events = app.state.store.events_for_order("MW-3").await.unwrap();
    assert_eq!(events.last().unwrap().kind, "call_ended");
    assert_eq!(events.last().unwrap().detail["status"], "failed");
    app.stop().await;
}

#[tokio::test]
async fn a_flow_call_uses_the_purposes_caller_id_and_the_flows_app_id() {
    let did = "+918047110001";
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = TestApp::start_setup(Setup {
        vars: vec![("EXOTEL_DID_NEW_ORDER".into(), did.into()), ("EXOTEL_REGION".into(), "in".into())],
        clock: clock.clone(),
        prepare: PrepareOptions { exotel_sim: Some(SimConfig::manual(clock.now())), ..PrepareOptions::default() },
        ..Setup::default()
    })
    .await;
    let sim = app.state.exotel.sim.clone().unwrap();
    let call = PlaceCall {
        purpose: "vendor_ivr".into(),
        caller: CallerPurpose::NewOrder,
        target: CallTarget::Flow("vendor_new_order".into()),
        ..bridge("MW-4")
    };
    let attempt = place_call(&app.state, call).await.unwrap();
    assert_eq!(attempt.state, CallState::Placed);
    let request = &sim.received()[0];
    assert_eq!(request.field("CallerId"), Some("08047110001"), "the New Order DID, in Exotel's national form");
    let url = request.field("Url").unwrap();
    assert!(url.starts_with("http://my.in.exotel.com/"), "the flow host follows EXOTEL_REGION: {url}");
    assert!(url.ends_with("/exoml/start_voice/vendor_new_order"));
    assert_eq!(request.field("To"), None);
    // Exotel documents only StatusCallback for flow calls.
    assert!(request.field("StatusCallback").is_some_and(|u| u.contains("/exotel/webhooks/call-status")));
    assert!(request.form.iter().all(|(k, _)| !k.starts_with("StatusCallbackEvents")), "{:?}", request.form);
    app.stop().await;
}

/// The whole loop in sandbox: our client places an IVR call, the simulator
/// runs the vendor new-order flow against our applet URLs with Exotel's GET
/// parameters, the vendor presses 1, and the call's callbacks complete the
/// attempt.
#[tokio::test]
async fn the_simulator_runs_our_vendor_flow_against_our_applet_urls() {
    let (app, _clock) = app().await;
    let sim = app.state.exotel.sim.clone().unwrap();
    sim.script(
        VENDOR,
        CalleeScript::answers_after(Duration::from_secs(3)).stays_for(Duration::from_secs(120)).presses("menu", "1"),
    )
    .unwrap();
    let call = PlaceCall {
        purpose: "vendor_ivr".into(),
        caller: CallerPurpose::NewOrder,
        target: CallTarget::Flow("vendor_new_order".into()),
        ..bridge("MW-5")
    };
    let attempt = place_call(&app.state, call).await.unwrap();
    sim.advance(Duration::from_secs(300)).await;

    let sid = attempt.call_sid.clone().unwrap();
    let log = sim.flow_log(&sid);
    let applets: Vec<&str> = log.iter().map(|e| e.applet_id.as_str()).collect();
    assert_eq!(applets, vec!["announce", "menu", "answer", "route", "goodbye", "end"], "{log:#?}");
    let answer = log.iter().find(|e| e.applet_id == "answer").unwrap();
    assert_eq!(answer.param("digits"), Some("\"1\""), "Exotel quotes the digits");
    assert_eq!(answer.param("CustomField"), Some(format!("c:{}", attempt.id).as_str()));
    assert!(log.iter().all(|e| e.error.is_none()), "every applet URL answered: {log:#?}");
    let announce = &log[0];
    assert_eq!(announce.requests[0].method, "HEAD", "Exotel probes a Greeting URL with HEAD first");
    assert!(announce.requests[0].params.is_empty());
    let route = log.iter().find(|e| e.applet_id == "route").unwrap();
    assert_eq!(route.detail["select"], "done");

    mangwale_server::build_worker(&app.state).run_until_idle().await.unwrap();
    let done = app.state.store.call_by_id(&attempt.id).await.unwrap().unwrap();
    assert_eq!(done.state, CallState::Completed);
    app.stop().await;
}

/// An SMS we send names our delivery-report route; Exotel's DND rejection
/// comes back there and lands on the timeline of the ladder's order.
#[tokio::test]
async fn a_dnd_rejected_sms_reaches_the_orders_timeline() {
    use mangwale_providers::exotel::client::{SendSms, SmsType};

    let admin = "+919822000111";
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let mut sim_config = SimConfig::manual(clock.now());
    sim_config.dnd_numbers.push(E164::parse(admin).unwrap());
    let app = TestApp::start_setup(Setup {
        clock: clock.clone(),
        prepare: PrepareOptions { exotel_sim: Some(sim_config), ..PrepareOptions::default() },
        ..Setup::default()
    })
    .await;
    let sim = app.state.exotel.sim.clone().unwrap();
    let body = serde_json::json!({
        "order_id": "MW-2025-001234", "vendor_id": "V-42", "vendor_phone": VENDOR, "vendor_name": "Krishna Kirana",
        "amount": 325, "items": "Poha x1", "payment_mode": "cod", "city": "Nashik", "language": "hi"
    });
    let started = post_json(&app.http, format!("{}/comms/notify/vendor/order", app.base), common::API_KEY, &body).await;
    let escalation = started["escalationId"].as_str().unwrap().to_string();

    // DND scrubbing applies to promotional SMS, so this one is sent as such.
    let sms = SendSms {
        sms_type: Some(SmsType::Promotional),
        custom_field: Some(format!("l:{escalation}")),
        ..SendSms::new(sim.config().exophones[0].national(), E164::parse(admin).unwrap(), "Mangwale alert")
    };
    let sent = app.state.exotel.client.send_sms(&sms).await.unwrap();
    let request = sim.received().into_iter().find(|r| r.path.ends_with("/Sms/send.json")).unwrap();
    let callback = request.field("StatusCallback").unwrap();
    assert!(callback.contains("/exotel/webhooks/sms-status?token="), "{callback}");
    sim.advance(Duration::from_secs(30)).await;

    let timeline = app.state.store.events_for_order("MW-2025-001234").await.unwrap();
    let report = timeline.iter().find(|e| e.kind == "exotel.sms_status").expect("the report is on the timeline");
    assert_eq!(report.escalation_id.as_deref(), Some(escalation.as_str()));
    assert_eq!(report.detail["sms_sid"], sent.sid);
    assert_eq!(report.detail["status"], "failed_dnd");
    assert_eq!(report.detail["detailed_status"], "FAILED_REJECTED_DND");
    app.stop().await;
}

/// A flow call whose `Calls/connect` answer was lost: its status callback
/// has only Exotel's four default fields (no `CustomField`), so the flow's
/// first applet request, which carries it, links the attempt to its CallSid.
#[tokio::test]
async fn an_ambiguous_flow_call_is_linked_by_its_applets_and_reconciled() {
    let (app, _clock) = app().await;
    let sim = app.state.exotel.sim.clone().unwrap();
    sim.script(VENDOR, CalleeScript::answers_after(Duration::from_secs(3)).stays_for(Duration::from_secs(60))).unwrap();
    sim.inject_fault(Endpoint::CallsConnect, Fault::DropAfterProcessing, 1);
    let call = PlaceCall {
        purpose: "vendor_ivr".into(),
        caller: CallerPurpose::NewOrder,
        target: CallTarget::Flow("vendor_new_order".into()),
        ..bridge("MW-6")
    };
    let attempt = place_call(&app.state, call).await.unwrap();
    assert_eq!(attempt.state, CallState::Unknown);
    sim.advance(Duration::from_secs(300)).await;
    mangwale_server::build_worker(&app.state).run_until_idle().await.unwrap();
    let done = app.state.store.call_by_id(&attempt.id).await.unwrap().unwrap();
    assert_eq!(done.call_sid.as_deref(), Some(sim.calls()[0].sid.as_str()));
    assert_eq!(done.state, CallState::Completed);
    app.stop().await;
}

async fn post_with_key(app: &TestApp, path: &str, key: Option<&str>, body: &serde_json::Value) -> reqwest::Response {
    let mut request = app.http.post(format!("{}{path}", app.base)).header("X-API-Key", common::API_KEY).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

fn bridge_body(order: &str) -> serde_json::Value {
    serde_json::json!({
        "order_id": order, "reason": "rider cannot find the shop",
        "party_a": {"type": "vendor", "phone": VENDOR}, "party_b": {"type": "rider", "phone": RIDER},
    })
}

#[tokio::test]
async fn a_retried_bridge_with_the_same_idempotency_key_places_one_call() {
    let (app, _clock) = app().await;
    let sim = app.state.exotel.sim.clone().unwrap();
    let first = post_with_key(&app, "/comms/bridge", Some("bridge-MW-9-1"), &bridge_body("MW-9")).await;
    assert_eq!(first.status().as_u16(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(sim.calls().len(), 1);

    // The client did not get the answer and retries: same answer, no call.
    let again = post_with_key(&app, "/comms/bridge", Some("bridge-MW-9-1"), &bridge_body("MW-9")).await;
    assert_eq!(again.status().as_u16(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["content-type"], "application/json");
    assert_eq!(again.json::<serde_json::Value>().await.unwrap(), first);
    assert_eq!(sim.calls().len(), 1, "no second call");

    // The same key with another body is refused, naming the header.
    let other = post_with_key(&app, "/comms/bridge", Some("bridge-MW-9-1"), &bridge_body("MW-10")).await;
    assert_eq!(other.status().as_u16(), 422);
    let error: serde_json::Value = other.json().await.unwrap();
    assert_eq!(
        (error["error"]["code"].as_str(), error["error"]["field"].as_str()),
        (Some("idempotency_key_reused"), Some("Idempotency-Key"))
    );
    // A bad key is a 400 naming it; nothing is called.
    let bad = post_with_key(&app, "/comms/bridge", Some(&"k".repeat(300)), &bridge_body("MW-9")).await;
    assert_eq!(bad.status().as_u16(), 400);
    assert_eq!(bad.json::<serde_json::Value>().await.unwrap()["error"]["field"], "Idempotency-Key");
    assert_eq!(sim.calls().len(), 1);

    // A validation error is kept like any other answer.
    let invalid = serde_json::json!({"party_a": {"phone": "12"}, "party_b": {"phone": RIDER}});
    let refused = post_with_key(&app, "/comms/bridge", Some("bad-phone"), &invalid).await;
    assert_eq!(refused.status().as_u16(), 400);
    let refused_again = post_with_key(&app, "/comms/bridge", Some("bad-phone"), &invalid).await;
    assert_eq!(
        (refused_again.status().as_u16(), &refused_again.headers()["idempotent-replayed"]),
        (400, &"true".parse().unwrap())
    );

    // Without the header every request runs, as before.
    assert_eq!(post_with_key(&app, "/comms/bridge", None, &bridge_body("MW-9")).await.status().as_u16(), 200);
    assert_eq!(sim.calls().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_duplicates_of_a_bridge_place_one_call() {
    let (app, _clock) = app().await;
    let sim = app.state.exotel.sim.clone().unwrap();
    // Exotel takes a second to answer, so the duplicate arrives while the
    // first request is still running.
    sim.inject_fault(Endpoint::CallsConnect, Fault::delay(Duration::from_secs(1)), 1);
    let body = bridge_body("MW-11");
    let (a, b) = tokio::join!(post_with_key(&app, "/comms/bridge", Some("dup-1"), &body), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        post_with_key(&app, "/comms/bridge", Some("dup-1"), &body).await
    });
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "one runs, the duplicate is told to retry");
    let busy = if a.status().as_u16() == 409 { a } else { b };
    assert_eq!(busy.headers()["retry-after"], "1");
    assert_eq!(busy.json::<serde_json::Value>().await.unwrap()["error"]["code"], "idempotency_key_in_use");
    assert_eq!(sim.calls().len(), 1);
    let later = post_with_key(&app, "/comms/bridge", Some("dup-1"), &body).await;
    assert_eq!((later.status().as_u16(), &later.headers()["idempotent-replayed"]), (200, &"true".parse().unwrap()));
    assert_eq!(sim.calls().len(), 1, "never a second call");
    app.stop().await;
}

#[tokio::test]
async fn an_ivr_notify_retried_with_its_idempotency_key_gets_the_same_answer() {
    let (app, _clock) = app().await;
    let jupiter = app.state.jupiter.sim.clone().unwrap();
    let order = jupiter.data().orders[0].id.to_string();
    let body = serde_json::json!({"order_id": order, "vendor_id": "V-42", "vendor_phone": VENDOR});
    let path = "/exotel/ivr/notify/vendor/order";
    let first = post_with_key(&app, path, Some("ivr-1"), &body).await;
    assert_eq!(first.status().as_u16(), 200);
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(first["duplicate"], false, "{first}");
    let again = post_with_key(&app, path, Some("ivr-1"), &body).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<serde_json::Value>().await.unwrap(), first, "the stored answer, not a new one");
    let other = serde_json::json!({"order_id": order, "vendor_id": "V-43", "vendor_phone": VENDOR});
    assert_eq!(post_with_key(&app, path, Some("ivr-1"), &other).await.status().as_u16(), 422);
    app.stop().await;
}

#[tokio::test]
async fn a_503_is_not_kept_so_the_retry_with_the_same_key_places_the_call() {
    let (app, _clock) = app().await;
    let sim = app.state.exotel.sim.clone().unwrap();
    // Exotel is unavailable through every retry of the client: nothing rang.
    sim.inject_fault(Endpoint::CallsConnect, Fault::status(503), 4);
    let body = bridge_body("MW-12");
    let down = post_with_key(&app, "/comms/bridge", Some("retry-me"), &body).await;
    assert_eq!(down.status().as_u16(), 503);
    assert_eq!(sim.calls().len(), 0);
    let retry = post_with_key(&app, "/comms/bridge", Some("retry-me"), &body).await;
    assert_eq!(retry.status().as_u16(), 200);
    assert!(retry.headers().get("idempotent-replayed").is_none(), "it ran");
    assert_eq!(sim.calls().len(), 1);
    let again = post_with_key(&app, "/comms/bridge", Some("retry-me"), &body).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(sim.calls().len(), 1);
    app.stop().await;
}
