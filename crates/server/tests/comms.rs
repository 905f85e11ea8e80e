//! The orchestrator end to end: ladders started over the API, their steps
//! sent by the workers through the production clients to the Exotel,
//! WhatsApp, push and Jupiter simulators over real HTTP, on clocks the test
//! moves; answers given on the simulated phone's keypad or WhatsApp.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{SimEnv, SimEnvBuilder};
use mangwale_core::E164;
use mangwale_core::ladder::{LadderState, StepState};
use mangwale_sim::exotel::{CalleeScript, Endpoint, Fault};
use mangwale_sim::whatsapp::RecipientScript;
use mangwale_store::{Clock, ManualClock};
use serde_json::{Value, json};

const VENDOR: &str = "+919876543210";
const ADMIN: &str = "+919812300000";

/// The sandbox on a manual clock starting now.
async fn env() -> SimEnv {
    env_with(Arc::new(ManualClock::new(chrono::Utc::now())), None).await
}

/// The sandbox on `clock`, on `db` when it restarts.
async fn env_with(clock: Arc<ManualClock>, db: Option<mangwale_store::test_support::TestDb>) -> SimEnv {
    sandbox(clock, db).start().await
}

fn sandbox(clock: Arc<ManualClock>, db: Option<mangwale_store::test_support::TestDb>) -> SimEnvBuilder {
    SimEnv::builder().var("ADMIN_SUPPORT_PHONE", ADMIN).clock(clock).whatsapp().db(db).maintenance()
}

impl SimEnv {
    /// A demo order Jupiter knows.
    fn order(&self) -> String {
        self.jupiter.data().orders[0].id.to_string()
    }

    async fn timeline(&self, order: &str) -> Value {
        self.get(&format!("/comms/timeline/{order}")).await.1
    }
}

fn vendor_order(order: &str) -> Value {
    json!({
        "order_id": order, "vendor_id": "V-42", "vendor_phone": VENDOR, "vendor_name": "Krishna Kirana",
        "amount": 325, "items": "Poha x1, Milk 500ml", "payment_mode": "cod", "city": "Nashik", "language": "hi"
    })
}

fn step_states(ladder: &mangwale_store::Ladder) -> Vec<(&str, StepState)> {
    ladder.steps.iter().map(|s| (s.channel.name(), s.state)).collect()
}

#[tokio::test]
async fn the_vendor_presses_1_at_the_ivr_step_and_the_order_is_confirmed_in_jupiter() {
    let env = env().await;
    let order = env.order();
    // Rings 30 s before picking up: the 20 s ring goes unanswered, the IVR
    // call (40 s) is answered, and the vendor presses 1 at the menu.
    env.exotel
        .script(
            VENDOR,
            CalleeScript::answers_after(Duration::from_secs(30))
                .stays_for(Duration::from_secs(90))
                .presses("menu", "1"),
        )
        .unwrap();
    let (status, answer) = env.post("/comms/notify/vendor/order", vendor_order(&order)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], true);
    let id = format!("vendor_order_{order}");
    assert_eq!(answer["escalationId"], id.as_str());

    env.run_jobs().await;
    assert_eq!(step_states(&env.ladder(&id).await)[0], ("app_push", StepState::Sent));
    env.tick(60).await;
    assert_eq!(step_states(&env.ladder(&id).await)[1], ("whatsapp", StepState::Sent));
    let sent = env.whatsapp.messages();
    assert_eq!(sent.len(), 1);
    env.tick(60).await;
    env.tick(60).await;
    env.tick(90).await;

    let ladder = env.ladder(&id).await;
    assert_eq!(ladder.state, LadderState::Stopped, "{:?}", step_states(&ladder));
    assert_eq!(
        (ladder.stop_action.map(|a| a.name()), ladder.stop_actor.as_deref()),
        (Some("accept"), Some("vendor:V-42"))
    );
    assert_eq!(
        step_states(&ladder),
        [
            ("app_push", StepState::Sent),
            ("whatsapp", StepState::Sent),
            ("ring", StepState::Sent),
            ("ivr", StepState::Sent),
            ("admin", StepState::Canceled),
            ("deadline", StepState::Canceled),
        ]
    );
    let updates = env.jupiter.status_updates();
    assert!(
        updates.iter().any(|u| u["status"] == "confirmed" && u["orderId"].to_string().contains(&order)),
        "{updates:?}"
    );
    assert!(env.jupiter.notifications().iter().any(|n| n["type"] == "vendor_accepted"));

    // The ring call came from the new-order DID with our CustomField, the
    // IVR call ran the vendor flow and heard the order.
    let calls = env.exotel.calls();
    assert_eq!(calls.len(), 2, "ring and IVR");
    let ivr = &calls[1];
    let log = env.exotel.flow_log(&ivr.sid);
    let announce = log.iter().find(|e| e.applet_id == "announce").expect("the announcement");
    assert!(announce.detail.to_string().contains("Amount 325 rupees"), "{:?}", announce.detail);

    // Nothing fires after the stop, not even at the admin step's time.
    env.tick(120).await;
    assert!(env.exotel.sms_messages().is_empty(), "admin was never alerted");
    let kinds = env.kinds(&order).await;
    for kind in ["ladder.started", "ladder.step_sent", "ivr.key", "ladder.stopped", "jupiter.outbox_delivered"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing from {kinds:?}");
    }
    let timeline = env.timeline(&order).await;
    assert_eq!(timeline["summary"]["totalNotifications"], 4);
    assert_eq!(timeline["summary"]["escalationsTriggered"], 1);
    assert!(timeline["summary"]["avgResponseTime"].as_f64().unwrap() > 180.0);
    env.app.stop().await;
}

#[tokio::test]
async fn a_vendor_who_never_answers_reaches_admin_at_5_minutes() {
    let env = env().await;
    let order = env.order();
    env.exotel.script(VENDOR, CalleeScript::no_answer()).unwrap();
    env.exotel
        .script(ADMIN, CalleeScript::answers_after(Duration::from_secs(2)).stays_for(Duration::from_secs(30)))
        .unwrap();
    env.post("/comms/notify/vendor/order", vendor_order(&order)).await;
    env.run_jobs().await;
    env.tick(295).await;
    assert!(env.exotel.sms_messages().is_empty(), "not before 5 minutes");
    env.tick(10).await;
    let id = format!("vendor_order_{order}");
    let ladder = env.ladder(&id).await;
    assert_eq!(step_states(&ladder)[4], ("admin", StepState::Sent));
    assert_eq!(ladder.state, LadderState::Active, "the IVR call may still be answered");
    env.tick(240).await;
    let ladder = env.ladder(&id).await;
    assert_eq!(ladder.state, LadderState::Exhausted, "no answer by the deadline (IVR at 180 s + 6 min)");
    let sms = env.exotel.sms_messages();
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].to.as_str(), ADMIN);
    assert!(sms[0].body.contains(&order));
    let bridge =
        env.exotel.calls().into_iter().find(|c| c.from.as_str() == ADMIN).expect("admin is bridged to the vendor");
    assert_eq!(bridge.to.as_ref().map(E164::as_str), Some(VENDOR));
    let notes = env.jupiter.notifications();
    assert!(notes.iter().any(|n| n["type"] == "escalation_admin"), "{notes:?}");
    assert!(notes.iter().any(|n| n["type"] == "ladder_exhausted"));
    assert!(env.kinds(&order).await.iter().any(|k| k == "ladder.exhausted"));
    // The admin alert is on the live event feed.
    let (status, feed) = env.get("/comms/events?after=0&limit=1000").await;
    assert_eq!(status, 200);
    let alert =
        feed["events"].as_array().unwrap().iter().find(|e| e["kind"] == "ladder.step_sent" && e["channel"] == "admin");
    assert!(alert.is_some_and(|a| a["detail"]["sms"]["outcome"] == "sent"), "{feed}");
    let (status, e) = env.get("/comms/events?limit=0").await;
    assert_eq!((status, e["error"]["field"].as_str()), (400, Some("limit")));
    let (_, analytics) = env.get("/exotel/ivr/analytics").await;
    assert_eq!(analytics["vendorsNotified"], 1);
    assert_eq!(analytics["noResponse"], 1);
    assert!(analytics["calls"].as_u64().unwrap() >= 3, "{analytics}");
    env.app.stop().await;
}

/// Exotel sends the admin SMS but the connection drops before its answer,
/// and the bridge call is refused with a 503: the step is retried for the
/// bridge only, and admin gets one SMS.
#[tokio::test]
async fn an_admin_sms_whose_answer_was_lost_is_not_sent_again_when_the_bridge_is_retried() {
    // Without the Exotel client's own retries: one request per job attempt,
    // so a fault of count 1 fails exactly one.
    let env = sandbox(Arc::new(ManualClock::new(chrono::Utc::now())), None).exotel_retries(0).start().await;
    let order = env.order();
    env.exotel.script(VENDOR, CalleeScript::no_answer()).unwrap();
    env.post("/comms/notify/vendor/order", vendor_order(&order)).await;
    env.run_jobs().await;
    env.tick(295).await;
    assert!(env.exotel.sms_messages().is_empty(), "not before 5 minutes");
    env.exotel.inject_fault(Endpoint::SmsSend, Fault::DropAfterProcessing, 1);
    env.exotel.inject_fault(Endpoint::CallsConnect, Fault::status(503), 1);
    // The admin step, and its retry (5 to 30 s later).
    env.tick(60).await;

    let id = format!("vendor_order_{order}");
    let ladder = env.ladder(&id).await;
    let admin = ladder.steps.iter().find(|s| s.channel.name() == "admin").unwrap();
    assert_eq!((admin.state, admin.attempts), (StepState::Sent, 2), "{admin:?}");
    let sms = env.exotel.sms_messages();
    assert_eq!(sms.len(), 1, "one admin SMS: {sms:?}");
    let sms_requests = env.exotel.received().into_iter().filter(|r| r.endpoint == Some(Endpoint::SmsSend)).count();
    assert_eq!(sms_requests, 1, "the retry did not ask Exotel again");
    assert!(env.exotel.calls().iter().any(|c| c.from.as_str() == ADMIN), "the retry placed the bridge");

    let events = env.app.state.store.events_for_order(&order).await.unwrap();
    let admin_events: Vec<_> = events.iter().filter(|e| e.channel.as_deref() == Some("admin")).collect();
    let failed = admin_events.iter().find(|e| e.kind == "ladder.step_failed").expect("the first attempt");
    assert_eq!(failed.detail["willRetry"], true, "{failed:?}");
    assert!(failed.detail["error"].as_str().unwrap().contains("SMS outcome unknown"), "{failed:?}");
    let sent = admin_events.iter().find(|e| e.kind == "ladder.step_sent").expect("the retry");
    assert_eq!(sent.detail["sms"]["outcome"], "unknown", "{sent:?}");
    assert_eq!(sent.detail["bridge"]["placed"], true, "{sent:?}");
    env.app.stop().await;
}

#[tokio::test]
async fn the_vendor_chooses_3_then_2_and_jupiter_gets_20_minutes() {
    let env = env().await;
    let order = env.order();
    env.exotel
        .script(
            VENDOR,
            CalleeScript::answers_after(Duration::from_secs(2))
                .stays_for(Duration::from_secs(120))
                .presses("menu", "3")
                .presses("prep_menu", "2"),
        )
        .unwrap();
    let (status, answer) = env.post("/exotel/ivr/notify/vendor/order", vendor_order(&order)).await;
    assert_eq!(status, 200, "{answer}");
    env.run_jobs().await;
    env.tick(60).await;
    let updates = env.jupiter.status_updates();
    let call = &env.exotel.calls()[0];
    let log = env.exotel.flow_log(&call.sid);
    let kinds = env.kinds(&order).await;
    let prep = updates
        .iter()
        .find(|u| u["status"] == "processing")
        .unwrap_or_else(|| panic!("the preparation time reached Jupiter: {updates:?} {log:#?} {kinds:?}"));
    assert_eq!(prep["metadata"]["prepTimeMinutes"], 20);
    let ladder = env.ladder(answer["escalationId"].as_str().unwrap()).await;
    assert_eq!((ladder.state, ladder.stop_action.map(|a| a.name())), (LadderState::Stopped, Some("accept")));
    let call = &env.exotel.calls()[0];
    let applets: Vec<String> = env.exotel.flow_log(&call.sid).iter().map(|e| e.applet_id.clone()).collect();
    assert!(applets.windows(2).any(|w| w[0] == "route" && w[1] == "prep_menu"), "{applets:?}");
    env.app.stop().await;
}

#[tokio::test]
async fn a_whatsapp_accept_button_stops_the_ladder_before_the_ring() {
    let env = env().await;
    let order = env.order();
    env.whatsapp.script(
        &E164::parse(VENDOR).unwrap(),
        RecipientScript::ReplyButton { index: 0, after: Duration::from_secs(10) },
    );
    env.post("/comms/notify/vendor/order", vendor_order(&order)).await;
    env.run_jobs().await;
    env.tick(90).await;
    let ladder = env.ladder(&format!("vendor_order_{order}")).await;
    assert_eq!((ladder.state, ladder.stop_action.map(|a| a.name())), (LadderState::Stopped, Some("accept")));
    assert_eq!(step_states(&ladder)[2], ("ring", StepState::Canceled));
    env.tick(120).await;
    assert!(env.exotel.calls().is_empty(), "no ring, no IVR after the answer");
    assert!(env.jupiter.status_updates().iter().any(|u| u["status"] == "confirmed"));
    assert!(env.kinds(&order).await.iter().any(|k| k == "whatsapp.reply"));
    env.app.stop().await;
}

#[tokio::test]
async fn a_restart_mid_ladder_carries_on_and_sends_no_step_twice() {
    let env = env().await;
    let order = env.order();
    env.exotel.script(VENDOR, CalleeScript::no_answer()).unwrap();
    env.post("/comms/notify/vendor/order", vendor_order(&order)).await;
    env.run_jobs().await;
    env.tick(65).await;
    let clock = env.clock.clone();
    let db = env.app.stop_keeping_db().await;

    let env = env_with(clock, Some(db)).await;
    env.exotel.script(VENDOR, CalleeScript::no_answer()).unwrap();
    env.tick(480).await;
    let ladder = env.ladder(&format!("vendor_order_{order}")).await;
    assert_eq!(ladder.state, LadderState::Exhausted, "{:?}", step_states(&ladder));
    assert!(ladder.steps.iter().all(|s| s.state == StepState::Sent && s.attempts == 1), "{:?}", ladder.steps);
    let events = env.order_events(&order).await;
    let sent: Vec<u64> =
        events.iter().filter(|e| e.kind == "ladder.step_sent").filter_map(|e| e.detail["step"].as_u64()).collect();
    assert_eq!(sent, [0, 1, 2, 3, 4], "each step once, in order, across the restart");
    env.app.stop().await;
}

#[tokio::test]
async fn a_step_claimed_by_a_worker_that_died_is_never_sent_twice() {
    let env = env().await;
    let order = env.order();
    env.post("/comms/notify/vendor/order", vendor_order(&order)).await;
    let id = format!("vendor_order_{order}");
    // A worker marked step 0 sending, then the process died.
    env.app.state.store.claim_step(&id, 0, env.clock.now()).await.unwrap();
    env.run_jobs().await;
    let ladder = env.ladder(&id).await;
    assert_eq!(step_states(&ladder)[0], ("app_push", StepState::Unknown));
    assert!(env.app.state.channels.push_sim.as_ref().unwrap().deliveries().is_empty(), "not sent again");
    assert!(env.kinds(&order).await.iter().any(|k| k == "ladder.step_unknown"));
    env.app.stop().await;
}

#[tokio::test]
async fn a_duplicate_start_returns_the_running_ladder() {
    let env = env().await;
    let order = env.order();
    let (_, first) = env.post("/comms/notify/vendor/order", vendor_order(&order)).await;
    let (status, second) = env.post("/comms/notify/vendor/order", vendor_order(&order)).await;
    assert_eq!(status, 200);
    assert_eq!(second["escalationId"], first["escalationId"]);
    assert_eq!((first["duplicate"].as_bool(), second["duplicate"].as_bool()), (Some(false), Some(true)));
    let starts = env.kinds(&order).await.iter().filter(|k| *k == "ladder.started").count();
    assert_eq!(starts, 1);
    env.app.stop().await;
}

#[tokio::test]
async fn a_stop_racing_a_due_step_wins_even_over_a_claimed_job() {
    let env = env().await;
    let order = env.order();
    env.post("/comms/notify/vendor/order", vendor_order(&order)).await;
    env.run_jobs().await;
    env.clock.advance(Duration::from_secs(60));
    // A worker has claimed the WhatsApp step's job (it is due) ...
    let claimed = env
        .app
        .state
        .store
        .claim(&["ladder.step".to_string()], "racer", 1, Duration::from_secs(60), env.clock.now())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // ... when the vendor's answer arrives.
    let id = format!("vendor_order_{order}");
    let (status, stopped) =
        env.post("/comms/stop", json!({"escalation_id": id, "action": "accept", "actor": "vendor:V-42"})).await;
    assert_eq!((status, stopped["stopped"].as_bool()), (200, Some(true)), "{stopped}");
    // The claimed job runs after the stop and sends nothing.
    let handler = mangwale_server::comms::steps::handler(&env.app.state);
    handler.run(&claimed[0]).await.unwrap();
    assert!(env.whatsapp.messages().is_empty(), "no step after a stop");
    let ladder = env.ladder(&id).await;
    assert_eq!(step_states(&ladder)[1], ("whatsapp", StepState::Canceled));
    let (status, again) = env.post("/comms/stop", json!({"escalation_id": id, "action": "reject"})).await;
    assert_eq!((status, again["stopped"].as_bool(), again["action"].as_str()), (200, Some(false), Some("accept")));
    env.app.stop().await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_changes_nothing() {
    let env = env().await;
    let order = env.order();
    let (status, e) = env.post("/comms/escalations", json!({"type": "vendor_teleport", "order_id": order})).await;
    assert_eq!((status, e["error"]["field"].as_str()), (400, Some("type")));
    let mut body = vendor_order(&order);
    body["vendor_phone"] = json!("12ab");
    let (status, e) = env.post("/comms/notify/vendor/order", body).await;
    assert_eq!((status, e["error"]["field"].as_str()), (400, Some("vendor_phone")));
    let (status, e) = env.post("/comms/notify/vendor/order", json!({"vendor_phone": VENDOR})).await;
    assert_eq!((status, e["error"]["field"].as_str()), (400, Some("order_id")));
    // Each route reads its own fields, and names the one that is wrong.
    let mut body = vendor_order(&order);
    body["amount"] = json!("ten");
    let (status, e) = env.post("/comms/notify/vendor/order", body).await;
    assert_eq!((status, e["error"]["field"].as_str()), (400, Some("amount")));
    let delay = json!({"order_id": order, "customer_phone": VENDOR, "delay_minutes": -5});
    let (status, e) = env.post("/comms/notify/customer/delay", delay).await;
    assert_eq!((status, e["error"]["field"].as_str()), (400, Some("delay_minutes")));
    let status_body =
        json!({"type": "customer_status", "order_id": order, "customer_phone": VENDOR, "eta_minutes": [1]});
    let (status, e) = env.post("/comms/escalations", status_body).await;
    assert_eq!((status, e["error"]["field"].as_str()), (400, Some("eta_minutes")));
    let (status, e) = env.post("/comms/stop", json!({"escalation_id": "vendor_order_nope"})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, e) = env.post("/comms/stop", json!({"escalation_id": "x", "action": "dance"})).await;
    assert_eq!((status, e["error"]["field"].as_str()), (400, Some("action")));
    assert!(env.app.state.store.ladders_for_order(&order).await.unwrap().is_empty());

    // A key press on a call we did not place: 200, hang up, nothing else.
    let res = env
        .app
        .http
        .get(env.app.exotel_url(
            "/exotel/ivr/dtmf?flow=vendor_new_order&step=menu&CallSid=notours123&digits=%221%22&CustomField=c:unknown",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["select"], "done");
    assert!(env.jupiter.status_updates().is_empty());
    env.app.stop().await;
}

#[tokio::test]
async fn missing_fields_are_filled_from_jupiter() {
    let env = env().await;
    let demo = env.jupiter.data().orders[0].clone();
    let store = env.jupiter.data().store(demo.store_id).cloned().unwrap();
    let (status, answer) = env.post("/comms/notify/vendor/order", json!({"order_id": demo.id})).await;
    assert_eq!(status, 200, "{answer}");
    let ladder = env.ladder(answer["escalationId"].as_str().unwrap()).await;
    assert_eq!(ladder.phone.as_ref().map(|p| p.as_str()), Some(store.phone.as_str()));
    assert_eq!(ladder.party, format!("vendor:{}", store.id));
    assert_eq!(ladder.context.amount.map(|a| a.rupees()), Some(demo.order_amount));
    let (status, e) = env.post("/comms/notify/vendor/order", json!({"order_id": "999999999"})).await;
    assert_eq!(status, 404, "{e}");
    env.app.stop().await;
}

#[tokio::test]
async fn a_reassigned_order_gets_a_new_run_of_a_finished_ladder() {
    let env = env().await;
    let order = env.order();
    let body = json!({"order_id": order, "rider_id": "R-15", "rider_phone": "+919988776655", "pickup_address": "Shop 12, College Road",
                      "drop_address": "Flat 4B, Shivaji Nagar", "amount": 325});
    let (_, first) = env.post("/comms/notify/rider/assign", body.clone()).await;
    let id = first["escalationId"].as_str().unwrap().to_string();
    assert_eq!(id, format!("rider_assign_{order}"));
    env.post("/comms/stop", json!({"escalation_id": id, "action": "reject", "actor": "rider:R-15"})).await;
    let mut second_rider = body.clone();
    second_rider["rider_id"] = json!("R-16");
    second_rider["rider_phone"] = json!("+919988776656");
    let (status, second) = env.post("/comms/notify/rider/assign", second_rider).await;
    assert_eq!(status, 200);
    assert_eq!(second["escalationId"], format!("rider_assign_{order}-2"));
    assert_eq!((second["duplicate"].as_bool(), second["state"].as_str()), (Some(false), Some("active")));
    let ladder = env.ladder(&format!("rider_assign_{order}-2")).await;
    assert_eq!(ladder.party, "rider:R-16");
    // Jupiter's rider/accepted stops the running one, whatever its id.
    let sim = env.jupiter.clone();
    let res = sim
        .send_webhook(
            &env.app.base,
            "rider/accepted",
            &json!({"order_id": order}),
            mangwale_sim::jupiter::Signing::None,
        )
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
    env.run_jobs().await;
    let ladder = env.ladder(&format!("rider_assign_{order}-2")).await;
    assert_eq!((ladder.state, ladder.stop_action.map(|a| a.name())), (LadderState::Stopped, Some("accept")));
    env.app.stop().await;
}

#[tokio::test]
async fn a_whatsapp_problem_on_an_address_change_brings_in_admin() {
    let env = env().await;
    let order = env.order();
    let rider = "+919988776655";
    env.whatsapp
        .script(&E164::parse(rider).unwrap(), RecipientScript::ReplyButton { index: 1, after: Duration::from_secs(5) });
    env.exotel
        .script(ADMIN, CalleeScript::answers_after(Duration::from_secs(2)).stays_for(Duration::from_secs(30)))
        .unwrap();
    let body =
        json!({"order_id": order, "rider_id": "R-15", "rider_phone": rider, "new_address": "Flat 7C, Mumbai Naka"});
    let (status, answer) = env.post("/comms/notify/rider/address-update", body).await;
    assert_eq!(status, 200, "{answer}");
    env.run_jobs().await;
    env.tick(20).await;
    let ladder = env.ladder(answer["escalationId"].as_str().unwrap()).await;
    assert_eq!((ladder.state, ladder.stop_action.map(|a| a.name())), (LadderState::Stopped, Some("problem")));
    assert!(env.exotel.sms_messages().iter().any(|m| m.to.as_str() == ADMIN), "admin got the SMS");
    assert!(env.exotel.calls().iter().any(|c| c.from.as_str() == ADMIN), "and a bridge to the rider");
    assert!(env.jupiter.notifications().iter().any(|n| n["type"] == "address_problem"));
    assert!(env.kinds(&order).await.iter().any(|k| k == "admin.alerted"));
    env.app.stop().await;
}

#[tokio::test]
async fn ten_more_minutes_brings_the_reminder_back_ten_minutes_later() {
    let env = env().await;
    let order = env.order();
    env.exotel
        .script(
            VENDOR,
            CalleeScript::answers_after(Duration::from_secs(2)).stays_for(Duration::from_secs(60)).presses("menu", "2"),
        )
        .unwrap();
    let body = json!({"order_id": order, "vendor_id": "V-42", "vendor_phone": VENDOR, "minutes_remaining": 5});
    let (status, answer) = env.post("/exotel/ivr/notify/vendor/reminder", body).await;
    assert_eq!(status, 200, "{answer}");
    env.run_jobs().await;
    env.tick(60).await;
    let first = env.ladder(answer["escalationId"].as_str().unwrap()).await;
    assert_eq!(first.stop_action.map(|a| a.name()), Some("extend"));
    assert!(env.jupiter.notifications().iter().any(|n| n["type"] == "prep_time_extended"));
    let again = format!("vendor_reminder_{order}");
    assert!(env.app.state.store.ladder(&again).await.unwrap().is_none(), "not before ten minutes");
    env.tick(560).await;
    let ladder = env.ladder(&again).await;
    assert_eq!((ladder.state, ladder.party.as_str()), (LadderState::Active, "vendor:V-42"));
    assert_eq!(ladder.phone.as_ref().map(|p| p.as_str()), Some(VENDOR));
    assert_eq!(step_states(&ladder)[0], ("app_push", StepState::Sent));
    env.app.stop().await;
}

#[tokio::test]
async fn a_wrong_key_is_answered_with_the_menu_again_then_the_right_key_counts() {
    let env = env().await;
    let order = env.order();
    env.exotel
        .script(
            VENDOR,
            CalleeScript::answers_after(Duration::from_secs(2))
                .stays_for(Duration::from_secs(120))
                .presses("menu", "9")
                .presses("menu", "1"),
        )
        .unwrap();
    let (_, answer) = env.post("/exotel/ivr/notify/vendor/order", vendor_order(&order)).await;
    env.run_jobs().await;
    env.tick(60).await;
    let ladder = env.ladder(answer["escalationId"].as_str().unwrap()).await;
    assert_eq!(ladder.stop_action.map(|a| a.name()), Some("accept"));
    let call = &env.exotel.calls()[0];
    let menus: Vec<String> = env
        .exotel
        .flow_log(&call.sid)
        .iter()
        .filter(|e| e.applet_id == "menu")
        .map(|e| e.requests.last().and_then(|r| r.response.as_ref()).map(|r| r.body.clone()).unwrap_or_default())
        .collect();
    assert_eq!(menus.len(), 2, "the menu twice");
    assert!(!menus[0].contains("Galat button"));
    assert!(menus[1].starts_with("{\"gather_prompt\":{\"text\":\"Galat button."), "{}", menus[1]);
    env.app.stop().await;
}
