//! Voice ordering end to end (issue 11): a caller's words through
//! `/exotel/ivr/voice/process`, the dialog saved per call, the order placed
//! in the simulated Jupiter once, and the store's vendor ladder started;
//! and the same dialog over `/voice/sessions`.

use mangwale_core::ladder::LadderState;
use mangwale_sim::jupiter::{JupiterFault, Target};
use serde_json::{Value, json};

use crate::common::SimEnv;

const ORDER_DESK: &str = "+919812300011";
/// Rahul Kulkarni of the demo data: a home address on College Road.
const RAHUL: &str = "+917207687342";
/// Godavari Misal House.
const GODAVARI: u64 = 7;

async fn env() -> SimEnv {
    SimEnv::builder().var("ORDER_DESK_PHONE", ORDER_DESK).start().await
}

impl SimEnv {
    /// One turn of a call: the caller's words, our answer.
    async fn say(&self, call_sid: &str, text: &str) -> Value {
        let body = json!({"call_sid": call_sid, "from_phone": RAHUL, "text": text, "context": "customer_order"});
        let (status, answer) = self.post("/exotel/ivr/voice/process", body).await;
        assert_eq!(status, 200, "{text:?}: {answer}");
        answer
    }

    /// Orders the simulated Jupiter holds beyond the demo data's.
    fn created_orders(&self) -> Vec<mangwale_sim::jupiter::DemoOrder> {
        let demo = mangwale_sim::jupiter::DemoData::nashik().unwrap();
        self.jupiter.data().orders.into_iter().filter(|o| demo.order(o.id).is_none()).collect()
    }

    /// Everything up to the payment question: the store and the cart
    /// (two plates of misal and a cutting chai), read back, confirmed, and
    /// the saved address taken.
    async fn order_up_to_payment(&self, call_sid: &str) {
        let store = self.say(call_sid, "godavari se").await;
        assert_eq!(
            (store["expects"].as_str(), store["cart"]["store_id"].as_str()),
            (Some("items"), Some("7")),
            "{store}"
        );
        let first = self.say(call_sid, "do plate misal aur ek cutting chai").await;
        assert_eq!(first["expects"], "items", "{first}");
        let lines = first["cart"]["lines"].as_array().unwrap();
        let quantities: Vec<(&str, u64)> =
            lines.iter().map(|l| (l["item_id"].as_str().unwrap(), l["quantity"].as_u64().unwrap_or(0))).collect();
        assert_eq!(quantities, [("7001", 2), ("7012", 1)], "{first}");
        let read_back = self.say(call_sid, "bas itna hi").await;
        assert_eq!(read_back["expects"], "confirm", "{read_back}");
        let confirmed = self.say(call_sid, "haan").await;
        assert_eq!(confirmed["expects"], "address", "{confirmed}");
        let address = self.say(call_sid, "haan").await;
        assert_eq!(address["expects"], "payment", "{address}");
    }
}

fn quantity(line: &Value) -> Value {
    line["quantity"].clone()
}

#[tokio::test]
async fn a_caller_orders_two_misal_and_a_cutting_chai_cash_on_delivery_and_the_store_is_called() {
    let env = env().await;
    let call = "CA-voice-order-1";
    env.order_up_to_payment(call).await;
    let placed = env.say(call, "cash").await;
    assert_eq!(placed["expects"], "anything_else", "{placed}");
    let orders = placed["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{placed}");
    let order_id = orders[0]["order_id"].as_str().unwrap().to_string();

    // In Jupiter: the lines, priced from its catalog, and cash on delivery.
    let created = env.created_orders();
    assert_eq!(created.len(), 1);
    let order = &created[0];
    assert_eq!((order.id.to_string(), order.store_id), (order_id.clone(), GODAVARI));
    let lines: Vec<(u64, f64)> = order.items.iter().map(|l| (l.item_id, l.quantity)).collect();
    assert_eq!(lines, [(7001, 2.0), (7012, 1.0)]);
    let items: f64 = order.items.iter().map(|l| l.price * l.quantity).sum();
    assert_eq!(items, 152.0, "two misal at 70 and a chai at 12");
    assert_eq!(order.order_amount, 172.0, "and the delivery charge");
    assert_eq!((order.payment_method.as_str(), order.status.as_str()), ("cash_on_delivery", "pending"));
    assert!(order.delivery_address.address.contains("College Road"), "the saved address");
    assert_eq!(orders[0]["total"], json!(172));
    // The caller heard 152 read back; the new total says the difference.
    let said = placed["agent"].as_str().unwrap();
    assert!(said.contains("ek sau bahattar") && said.contains("bees rupaye delivery charge"), "{said}");

    // The vendor ladder starts through the orchestrator's job.
    env.run_jobs().await;
    let ladder = env.ladder(&format!("vendor_order_{order_id}")).await;
    assert_eq!(ladder.state, LadderState::Active);
    assert_eq!(ladder.phone.as_ref().map(|p| p.as_str()), Some("+918751892109"), "Godavari's phone");

    // Confirming again places nothing more, and starts no second ladder.
    let again = env.say(call, "haan confirm karo").await;
    assert_eq!(again["orders"].as_array().unwrap().len(), 1, "{again}");
    env.run_jobs().await;
    assert_eq!(env.created_orders().len(), 1);
    let ladders = env.app.state.store.ladders_for_order(&order_id).await.unwrap();
    assert_eq!(ladders.len(), 1);

    // Every turn is on the timeline: the order's once it exists.
    let kinds = env.kinds(&order_id).await;
    for kind in ["voice.order_placed", "voice.turn", "ladder.started"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    let call_turns = env.all_events().await.into_iter().filter(|e| e.kind == "voice.turn").count();
    assert_eq!(call_turns, 8, "the greeting and seven turns");
    let session = env.app.state.store.voice_session(call).await.unwrap().unwrap();
    assert!(!session.resumable, "a placed cart is not offered again");
}

#[tokio::test]
async fn a_turn_run_again_after_a_crash_places_one_order_and_starts_one_ladder() {
    let env = env().await;
    let call = "CA-voice-crash";
    env.order_up_to_payment(call).await;
    let before = env.app.state.store.voice_session(call).await.unwrap().unwrap();
    let placed = env.say(call, "cash").await;
    let order_id = placed["orders"][0]["order_id"].as_str().unwrap().to_string();
    // The replica crashed after Jupiter took the order but before the turn
    // was saved: the state is the one before the turn, and Exotel retries.
    let now = env.app.state.store.voice_session(call).await.unwrap().unwrap();
    let lost = mangwale_store::VoiceSessionUpdate {
        dialog: before.dialog.clone(),
        status: before.status,
        resumable: before.resumable,
        last_turn: None,
        last_reply: None,
        at: now.updated_at,
    };
    assert!(env.app.state.store.save_voice_session(call, now.version, &lost).await.unwrap().is_some());
    let retried = env.say(call, "cash").await;
    assert_eq!(retried["orders"][0]["order_id"].as_str(), Some(order_id.as_str()), "{retried}");
    env.run_jobs().await;
    assert_eq!(env.created_orders().len(), 1, "the idempotency key held");
    assert_eq!(env.app.state.store.ladders_for_order(&order_id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_caller_who_dropped_is_offered_the_cart_on_calling_back_within_30_minutes() {
    let env = env().await;
    env.say("CA-voice-drop", "godavari se").await;
    let first = env.say("CA-voice-drop", "do plate misal").await;
    assert_eq!(first["cart"]["lines"].as_array().unwrap().len(), 1, "{first}");
    // The call drops; Rahul calls again ten minutes later.
    env.clock.advance(std::time::Duration::from_secs(600));
    let back = env.say("CA-voice-back", "hello").await;
    assert_eq!(back["expects"], "resume", "{back}");
    let held: Vec<_> = env.all_events().await.into_iter().filter(|e| e.kind == "voice.words_held").collect();
    assert_eq!(held[0].detail["caller"], json!({"say": "hello"}), "the words before the offer are kept");
    assert_eq!(back["cart"]["lines"][0]["item_id"], "7001");
    assert_eq!(quantity(&back["cart"]["lines"][0]), json!(2));
    let yes = env.say("CA-voice-back", "haan").await;
    assert_eq!(yes["expects"], "confirm", "{yes}");
    let store = &env.app.state.store;
    assert!(!store.voice_session("CA-voice-drop").await.unwrap().unwrap().resumable, "taken up once");
    // That call drops too: the next one is offered the cart of the latest.
    let third = env.say("CA-voice-third", "hello").await;
    assert_eq!(third["expects"], "resume", "{third}");
    let resumed: Vec<Value> =
        env.all_events().await.into_iter().filter(|e| e.kind == "voice.resumed").map(|e| e.detail).collect();
    assert_eq!(resumed, [json!({"earlierSession": "CA-voice-drop"}), json!({"earlierSession": "CA-voice-back"})]);

    // Past 30 minutes an unfinished cart is not offered.
    env.say("CA-voice-later-1", "godavari se").await;
    env.say("CA-voice-later-1", "ek vada pav").await;
    env.clock.advance(std::time::Duration::from_secs(31 * 60));
    let late = env.say("CA-voice-later-2", "hello").await;
    assert_ne!(late["expects"], "resume", "{late}");
}

#[tokio::test]
async fn an_order_jupiter_refuses_hands_the_caller_to_the_order_desk_and_starts_no_ladder() {
    let env = env().await;
    let call = "CA-voice-refused";
    env.order_up_to_payment(call).await;
    env.jupiter.inject_fault(Target::Jupiter, "/api/order/create", JupiterFault::Status(422), 1);
    let refused = env.say(call, "cash").await;
    assert_eq!(refused["handoff"], json!({"to": "order_desk", "reason": "order_failed"}), "{refused}");
    assert_eq!(refused["connect"]["destination"]["numbers"], json!([ORDER_DESK]), "{refused}");
    assert!(refused["orders"].as_array().unwrap().is_empty());
    env.run_jobs().await;
    assert!(env.created_orders().is_empty());
    let events = env.all_events().await;
    assert!(!events.iter().any(|e| e.kind == "ladder.started"), "no ladder");
    let failed: Vec<_> = events.iter().filter(|e| e.kind == "voice.order_failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].call_sid.as_deref(), Some(call));
    assert_eq!(failed[0].detail["cart"]["lines"].as_array().unwrap().len(), 2, "the cart is kept on the timeline");
    assert!(events.iter().any(|e| e.kind == "voice.connect"));
}

#[tokio::test]
async fn bad_requests_name_the_field_and_an_empty_utterance_is_a_turn() {
    let env = env().await;
    let cases = [
        (json!({"from_phone": RAHUL, "text": "hi"}), "call_sid"),
        (json!({"call_sid": "CA-bad", "from_phone": "12", "text": "hi"}), "from_phone"),
        (json!({"call_sid": "CA-bad", "from_phone": RAHUL}), "text"),
        (json!({"call_sid": "CA-bad", "text": 5}), "text"),
    ];
    for (body, field) in cases {
        let (status, answer) = env.post("/exotel/ivr/voice/process", body.clone()).await;
        assert_eq!((status, answer["error"]["field"].as_str()), (400, Some(field)), "{body}: {answer}");
    }
    let body = json!({"call_sid": "CA-bad", "from_phone": RAHUL, "recording_url": "https://x.example/r.mp3"});
    let (status, answer) = env.post("/exotel/ivr/voice/process", body).await;
    // Not one of Exotel's recording hosts: nothing is fetched, the caller
    // is sent to the order desk (docs/speech.md, "The record path"), and no
    // dialog starts.
    assert_eq!((status, answer["recording"]["error"].as_str()), (200, Some("recording_url_refused")), "{answer}");
    assert_eq!(answer["connect"]["destination"]["numbers"], json!([ORDER_DESK]), "{answer}");
    assert!(env.app.state.store.voice_session("CA-bad").await.unwrap().is_none(), "nothing started");

    let empty = env.say("CA-voice-empty", "").await;
    assert_eq!((empty["expects"].as_str(), empty["ended"].as_bool()), (Some("store"), Some(false)), "{empty}");
    let unauthorised = env
        .app
        .http
        .post(format!("{}/exotel/ivr/voice/process", env.app.base))
        .json(&json!({"call_sid": "CA-x", "text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status().as_u16(), 401);
}

#[tokio::test]
async fn the_dialog_over_http_sessions() {
    let env = env().await;
    let (status, started) = env.post("/voice/sessions", json!({"store_id": GODAVARI, "language": "hi-en"})).await;
    assert_eq!(status, 201, "{started}");
    assert_eq!(started["expects"], "items");
    assert!(started["agent"].as_str().unwrap().contains("Godavari"), "{started}");
    let id = started["sessionId"].as_str().unwrap().to_string();
    let turns = format!("/voice/sessions/{id}/turns");
    let (status, added) = env.post(&turns, json!({"say": "do plate misal aur ek cutting chai"})).await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["cart"]["lines"].as_array().unwrap().len(), 2, "{added}");
    assert!(added["cart"]["total"].as_f64().unwrap() > 0.0);
    let (_, again) = env.post(&turns, json!({"say": "bas", "turn": "t3"})).await;
    let (_, replayed) = env.post(&turns, json!({"say": "bas", "turn": "t3"})).await;
    assert_eq!((again["expects"].clone(), replayed["duplicate"].clone()), (json!("confirm"), json!(true)));
    assert_eq!(replayed["agent"], again["agent"], "a retried turn id is answered, not run again");
    let (_, ended) = env.post(&turns, json!({"hangup": true})).await;
    assert_eq!(ended["ended"], true, "{ended}");

    for (body, field) in [
        (json!({}), "say"),
        (json!({"say": "x", "dtmf": "1"}), "say"),
        (json!({"dtmf": "one"}), "dtmf"),
        (json!({"hangup": false}), "hangup"),
    ] {
        let (status, answer) = env.post(&turns, body.clone()).await;
        assert_eq!((status, answer["error"]["field"].as_str()), (400, Some(field)), "{body}: {answer}");
    }
    let (status, _) = env.post("/voice/sessions/vs_nobody/turns", json!({"say": "hi"})).await;
    assert_eq!(status, 404);
    for (body, field) in [
        (json!({}), "store_id"),
        (json!({"store_id": 9999}), "store_id"),
        (json!({"store_id": 7, "language": "fr"}), "language"),
        (json!({"phone": "12"}), "phone"),
    ] {
        let (status, answer) = env.post("/voice/sessions", body.clone()).await;
        assert_eq!((status, answer["error"]["field"].as_str()), (400, Some(field)), "{body}: {answer}");
    }
}

#[tokio::test]
async fn paying_by_upi_sends_jupiters_link_by_sms_once() {
    let env = env().await;
    let call = "CA-voice-upi";
    env.order_up_to_payment(call).await;
    let placed = env.say(call, "upi link bhejo").await;
    let order = &placed["orders"][0];
    assert_eq!(order["payment"], json!({"method": "upi_link", "via": "sms"}), "{placed}");
    let id = order["order_id"].as_str().unwrap();
    assert_eq!(env.jupiter.order(id).unwrap().payment_method, "digital_payment");
    let sms: Vec<_> = env.exotel.sms_messages().into_iter().filter(|m| m.to.as_str() == RAHUL).collect();
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert!(sms[0].body.contains("upi://pay?") && sms[0].body.contains(id), "{}", sms[0].body);
    assert!(env.kinds(id).await.iter().any(|k| k == "voice.payment_link_sent"));
}

#[tokio::test]
async fn turns_of_one_session_that_race_are_both_kept() {
    let env = env().await;
    let (_, started) = env.post("/voice/sessions", json!({"store_id": GODAVARI, "language": "hi-en"})).await;
    let turns = format!("/voice/sessions/{}/turns", started["sessionId"].as_str().unwrap());
    let (misal, chai) = tokio::join!(
        env.post(&turns, json!({"say": "do plate misal"})),
        env.post(&turns, json!({"say": "ek cutting chai"}))
    );
    assert_eq!((misal.0, chai.0), (200, 200), "{misal:?} {chai:?}");
    let (_, after) = env.post(&turns, json!({"say": "bas"})).await;
    let mut items: Vec<&str> =
        after["cart"]["lines"].as_array().unwrap().iter().map(|l| l["item_id"].as_str().unwrap()).collect();
    items.sort();
    assert_eq!(items, ["7001", "7012"], "neither turn was lost: {after}");
}
