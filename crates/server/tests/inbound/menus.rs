//! Menus by caller: the inbound flow identifies who calls and plays their
//! menu, against the simulated Exotel (running our flows file) and the
//! simulated Jupiter with the Nashik demo data.

use std::time::Duration;

use mangwale_core::inbound::{CallerKind, Choice};
use mangwale_core::ladder::LadderState;
use mangwale_server::exotel::CallerPurpose;
use mangwale_sim::exotel::CalleeScript;
use serde_json::{Value, json};

use crate::common::SimEnv;

const ORDER_DESK: &str = "+919812300011";
const ADMIN: &str = "+919812300000";

/// Two ExoPhones for masked calls.
const MASKING_POOL: &str = "+912071171001,+912071171002";

async fn env() -> SimEnv {
    SimEnv::builder()
        .var("ORDER_DESK_PHONE", ORDER_DESK)
        .var("ADMIN_SUPPORT_PHONE", ADMIN)
        .var("EXOTEL_MASKING_NUMBERS", MASKING_POOL)
        .start()
        .await
}

impl SimEnv {
    /// `from` calls our inbound number; returns the CallSid.
    fn call_in(&self, from: &str) -> String {
        let exophone = self.app.state.exotel.caller_id(CallerPurpose::Other);
        self.exotel.incoming_call(from, exophone.as_str(), "customer_voice_order").unwrap()
    }

    async fn events_of_kind(&self, kind: &str) -> Vec<mangwale_store::TimelineEvent> {
        self.all_events().await.into_iter().filter(|e| e.kind == kind).collect()
    }

    /// Our answer to the applet `applet_id` of a call's flow, as JSON.
    fn answer(&self, sid: &str, applet_id: &str) -> Value {
        let run = self.exotel.flow_run(sid).unwrap();
        let entry = run.entry(applet_id).unwrap_or_else(|| panic!("{applet_id} not visited: {:?}", run.path()));
        serde_json::from_str(entry.body().unwrap()).unwrap()
    }
}

#[tokio::test]
async fn an_unknown_caller_presses_1_and_is_connected_to_the_order_desk() {
    let env = env().await;
    let caller = "+919000000123";
    // Where the service can hear and speak, 1 goes to the voice bot first;
    // a caller who says nothing there is handed to the order desk.
    let voice_ordering = mangwale_server::inbound::menus::voice_ordering(&env.app.state);
    let script = CalleeScript::answers_after(Duration::from_secs(1)).presses("menu", "1");
    env.exotel.script(caller, script.stays_for(Duration::from_secs(120))).unwrap();
    env.exotel.script(ORDER_DESK, CalleeScript::answers_after(Duration::from_secs(2))).unwrap();
    let sid = env.call_in(caller);
    env.tick(5).await;
    // The same caller again a moment later: known from the cache, no
    // Jupiter round trip.
    env.jupiter.clear_received();
    let again = env.call_in(caller);
    env.tick(5).await;
    assert_eq!(env.exotel.flow_run(&again).unwrap().entry("caller").unwrap().detail["select"], "welcome");
    assert!(env.jupiter.received().is_empty(), "{:?}", env.jupiter.received());
    env.tick(90).await;

    let run = env.exotel.flow_run(&sid).unwrap();
    let to_desk: &[&str] = if voice_ordering { &["route", "bot", "after_bot", "desk"] } else { &["route", "desk"] };
    assert_eq!(run.path()[..5], ["incoming", "caller", "welcome", "menu", "answer"]);
    assert_eq!(run.path()[5..5 + to_desk.len()], *to_desk, "{:?}", run.path());
    assert_eq!(run.entry("caller").unwrap().detail["select"], "welcome");
    assert!(run.entry("menu").unwrap().body().unwrap().contains("parcel"));
    let desk = env.answer(&sid, "desk");
    assert_eq!(desk["destination"]["numbers"], json!([ORDER_DESK]));

    let call = env.app.state.store.inbound_call(&sid).await.unwrap().unwrap();
    assert_eq!((call.kind, call.choice, call.settled), (CallerKind::Unknown, Some(Choice::Food), true));
    let identified = env.events_of_kind("inbound.caller").await;
    assert_eq!(identified.len(), 2);
    assert_eq!(identified[0].detail["kind"], "unknown");
    assert_eq!(identified[0].detail["found"], "looked_up");
    assert_eq!(identified[1].detail["found"], "cached");
    let keys: Vec<_> =
        env.events_of_kind("inbound.key").await.into_iter().filter(|e| e.call_sid.as_deref() == Some(&sid)).collect();
    let select = if voice_ordering { "bot" } else { "desk" };
    assert_eq!((keys[0].detail["choice"].as_str(), keys[0].detail["select"].as_str()), (Some("food"), Some(select)));
    let connects = env.events_of_kind("inbound.connect").await;
    assert_eq!(connects[0].detail["whom"], "order_desk");
    let stored = serde_json::to_string(&env.all_events().await).unwrap();
    assert!(!stored.contains("9000000123") && !stored.contains("9812300011"), "no full number on the timeline");

    env.app.stop().await;
}

#[tokio::test]
async fn a_vendor_calls_in_and_accepts_the_pending_order_with_1_so_its_ladder_stops() {
    let env = env().await;
    let data = env.jupiter.data();
    let order = data.orders.iter().find(|o| o.status == "pending").unwrap().clone();
    let store = data.store(order.store_id).unwrap().clone();
    let body = json!({
        "order_id": order.id.to_string(), "vendor_id": store.id.to_string(), "vendor_phone": store.phone,
        "vendor_name": store.name, "amount": 325, "items": "Misal Pav x2", "payment_mode": "cod", "language": "hi"
    });
    let (status, started) = env.post("/comms/notify/vendor/order", body).await;
    assert_eq!(status, 200, "{started}");
    env.run_jobs().await;
    let ladder_id = format!("vendor_order_{}", order.id);

    env.exotel
        .script(store.phone.as_str(), CalleeScript::answers_after(Duration::from_secs(1)).presses("vendor_menu", "1"))
        .unwrap();
    let sid = env.call_in(&store.phone);
    env.tick(45).await;

    let run = env.exotel.flow_run(&sid).unwrap();
    assert_eq!(
        run.path(),
        ["incoming", "caller", "vendor_orders", "vendor_menu", "vendor_answer", "vendor_route", "goodbye", "end"]
    );
    let said = run.entry("vendor_orders").unwrap().body().unwrap().to_string();
    assert!(said.contains(&format!("Sabse purana order {}", order.id)), "{said}");
    assert!(run.entry("goodbye").unwrap().body().unwrap().contains("accept"), "the vendor hears it was accepted");

    let ladder = env.app.state.store.ladder(&ladder_id).await.unwrap().unwrap();
    assert_eq!(ladder.state, LadderState::Stopped);
    assert_eq!(ladder.stop_action.map(|a| a.name()), Some("accept"));
    let updates = env.jupiter.status_updates();
    assert!(updates.iter().any(|u| u["status"] == "confirmed" && u["orderId"] == json!(order.id)), "{updates:?}");
    let call = env.app.state.store.inbound_call(&sid).await.unwrap().unwrap();
    assert_eq!((call.kind, call.choice), (CallerKind::Vendor, Some(Choice::AcceptOldest)));
    assert!(call.ended_at.is_some(), "the goodbye ends the call");
    let keys = env.events_of_kind("inbound.key").await;
    assert_eq!(keys[0].detail["applied"], "stopped");
    env.app.stop().await;
}

#[tokio::test]
async fn a_customer_with_an_active_order_presses_1_and_reaches_the_rider_through_a_masked_number() {
    let env = env().await;
    let data = env.jupiter.data();
    let order = data.orders.iter().find(|o| o.status == "picked_up" && o.rider_id.is_some()).unwrap().clone();
    let customer = data.customer(order.customer_id).unwrap().clone();
    let rider = data.rider(order.rider_id.unwrap()).unwrap().clone();
    env.exotel
        .script(
            customer.phone.as_str(),
            CalleeScript::answers_after(Duration::from_secs(1))
                .presses("order_menu", "1")
                .stays_for(Duration::from_secs(300)),
        )
        .unwrap();
    // The rider talks for 45 s, then hangs up.
    let rider_script = CalleeScript::answers_after(Duration::from_secs(2)).stays_for(Duration::from_secs(45));
    env.exotel.script(rider.phone.as_str(), rider_script).unwrap();
    let sid = env.call_in(&customer.phone);
    env.tick(90).await;

    let run = env.exotel.flow_run(&sid).unwrap();
    assert_eq!(run.path()[..6], ["incoming", "caller", "order_status", "order_menu", "order_answer", "order_route"]);
    let status = run.entry("order_status").unwrap().body().unwrap().to_string();
    assert!(status.contains(&rider.f_name) && status.contains("minute"), "the status read out: {status}");
    let connect = env.answer(&sid, "connect_rider");
    assert_eq!(connect["destination"]["numbers"], json!([rider.phone]), "the rider is dialled");
    let shown = connect["outgoing_phone_number"].as_str().unwrap();
    let national = |e164: &str| format!("0{}", e164.trim_start_matches("+91"));
    assert_ne!(shown, national(&customer.phone), "the rider never sees the customer's number");
    assert_ne!(shown, national(&rider.phone));
    let masked = mangwale_core::E164::parse(shown).unwrap();
    assert!(env.app.state.config.masking_numbers.contains(&masked), "a masking number is shown: {shown}");
    // What the simulated network did: the rider's phone rang showing that
    // number, and the two were connected.
    let run = env.exotel.flow_run(&sid).unwrap();
    let dialled = run.connects.iter().find(|c| c.applet_id == "connect_rider").expect("the Connect was dialled");
    assert_eq!(dialled.caller_id, shown, "the rider sees the masked number");
    assert_eq!(dialled.connected.as_deref(), Some(national(&rider.phone).as_str()));
    let stored = serde_json::to_string(&env.all_events().await).unwrap();
    for real in [&customer.phone, &rider.phone] {
        assert!(!stored.contains(real.trim_start_matches("+91")), "no full number on the timeline");
    }
    let call = env.app.state.store.inbound_call(&sid).await.unwrap().unwrap();
    assert_eq!((call.kind, call.choice), (CallerKind::Customer, Some(Choice::TalkToRider)));
    assert_eq!(call.order_id.map(|o| o.to_string()), Some(order.id.to_string()));
    // The masked conversation is counted with the masked calls, with how it
    // ended (the goodbye after the Connect carries DialCallStatus).
    env.tick(60).await;
    let run = env.exotel.flow_run(&sid).unwrap();
    let path = run.path();
    assert_eq!(path[path.len() - 4..], ["connect_rider", "after_masked", "goodbye", "end"], "the call ended: {path:?}");
    let ended = env.events_of_kind("masking.call_ended").await;
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(
        (ended[0].detail["outcome"].as_str(), ended[0].detail["caller"].as_str()),
        (Some("completed"), Some("customer"))
    );
    assert_eq!(ended[0].order_id.as_deref(), Some(order.id.to_string().as_str()));
    let (status, analytics) = env.app.get("/exotel/ivr/analytics", Some(crate::common::API_KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(
        (analytics["masking"]["maskedCalls"].as_u64(), analytics["masking"]["connected"].as_u64()),
        (Some(1), Some(1)),
        "{analytics}"
    );
    env.app.stop().await;
}

#[tokio::test]
async fn a_passthru_without_callfrom_is_an_unknown_caller() {
    let env = env().await;
    let url = env.app.exotel_url("/exotel/ivr/incoming?flow=customer_voice_order&CallSid=no-from-1&CallTo=08047112233");
    let res = env.app.http.get(&url).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain");
    assert_eq!(res.text().await.unwrap(), r#"{"select":"welcome"}"#);
    let call = env.app.state.store.inbound_call("no-from-1").await.unwrap().unwrap();
    assert_eq!((call.kind, call.phone), (CallerKind::Unknown, None));
    assert_eq!(env.events_of_kind("inbound.caller").await[0].detail["found"], "no_number");
    // Its HEAD says the same type.
    let head = env.app.http.head(&url).send().await.unwrap();
    assert_eq!(head.headers()["content-type"], "text/plain");
    env.app.stop().await;
}

#[tokio::test]
async fn a_rider_hears_the_delivery_and_the_menu_rules_hold_wrong_key_star_then_the_shop() {
    let env = env().await;
    let data = env.jupiter.data();
    let order = data.orders.iter().find(|o| o.status == "picked_up" && o.rider_id.is_some()).unwrap().clone();
    let rider = data.rider(order.rider_id.unwrap()).unwrap().clone();
    let store = data.store(order.store_id).unwrap().clone();
    let script = CalleeScript::answers_after(Duration::from_secs(1))
        .stays_for(Duration::from_secs(600))
        .presses("rider_menu", "9")
        .presses("rider_menu", "*")
        .presses("rider_menu", "2");
    env.exotel.script(rider.phone.as_str(), script).unwrap();
    env.exotel.script(store.phone.as_str(), CalleeScript::answers_after(Duration::from_secs(2))).unwrap();
    let sid = env.call_in(&rider.phone);
    env.tick(150).await;

    let run = env.exotel.flow_run(&sid).unwrap();
    let menu = ["rider_menu", "rider_answer", "rider_route"];
    let mut expected = vec!["incoming", "caller", "rider_delivery"];
    for _ in 0..3 {
        expected.extend(menu);
    }
    expected.extend(["connect_vendor", "after_masked", "goodbye", "end"]);
    assert_eq!(run.path(), expected);
    let delivery = run.entry("rider_delivery").unwrap().body().unwrap().to_string();
    assert!(delivery.contains(&order.id.to_string()) && delivery.contains(&store.name), "{delivery}");
    let plays: Vec<String> = run
        .entries
        .iter()
        .filter(|e| e.applet_id == "rider_menu")
        .map(|e| serde_json::from_str::<Value>(e.body().unwrap()).unwrap()["gather_prompt"]["text"].to_string())
        .collect();
    assert!(!plays[0].contains("Galat") && plays[1].contains("Galat button"), "{plays:?}");
    let selects: Vec<_> =
        run.entries.iter().filter(|e| e.applet_id == "rider_route").map(|e| e.detail["select"].clone()).collect();
    assert_eq!(selects, [json!("repeat"), json!("repeat"), json!("connect_vendor")]);
    assert_eq!(env.answer(&sid, "connect_vendor")["destination"]["numbers"], json!([store.phone]));
    let keys = env.events_of_kind("inbound.key").await;
    let choices: Vec<_> = keys.iter().map(|k| (k.detail["choice"].clone(), k.detail["wrongKeys"].clone())).collect();
    assert_eq!(
        choices,
        [(json!("invalid"), json!(1)), (json!("repeat"), json!(1)), (json!("talk_to_vendor"), json!(1))]
    );
    env.app.stop().await;
}
