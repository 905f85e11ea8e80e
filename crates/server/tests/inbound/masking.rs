//! Number masking end to end: sessions opened by Jupiter's events and the
//! API, calls to a masked number played by the Exotel simulator through the
//! `masked_call` flow, and masked bridges.

use std::time::Duration;

use mangwale_core::E164;
use mangwale_sim::exotel::CalleeScript;
use mangwale_sim::jupiter::Signing;
use serde_json::{Value, json};

use crate::common::SimEnv;

const POOL: [&str; 2] = ["+918047110001", "+918047110002"];
const ADMIN: &str = "+919000000001";
/// Demo order 100009: customer 812, rider 501, store 11.
const ORDER: &str = "100009";
const CUSTOMER: &str = "+917165840150";
const RIDER: &str = "+919159389497";
const OTHER_RIDER: &str = "+917350332199";
const THIRD_RIDER: &str = "+919805596255";

async fn env(pool: &[&str]) -> SimEnv {
    let builder = SimEnv::builder().var("ADMIN_SUPPORT_PHONE", ADMIN);
    if pool.is_empty() { builder } else { builder.var("EXOTEL_MASKING_NUMBERS", &pool.join(",")) }.start().await
}

impl SimEnv {
    async fn webhook(&self, event: &str, order: &str) {
        let res =
            self.jupiter.send_webhook(&self.app.base, event, &json!({"order_id": order}), Signing::None).await.unwrap();
        assert_eq!(res.status().as_u16(), 202, "{event}");
        self.run_jobs().await;
    }

    /// A call to `masked` from `caller`, played until it ends.
    async fn call(&self, caller: &str, masked: &str) -> mangwale_sim::exotel::FlowRun {
        let sid = self.exotel.incoming_call(caller, masked, "masked_call").unwrap();
        self.exotel.advance(Duration::from_secs(600)).await;
        self.exotel.flow_run(&sid).unwrap()
    }
}

/// The Connect answer our service gave at `applet`.
fn connect_answer(run: &mangwale_sim::exotel::FlowRun, applet: &str) -> Value {
    let entry = run.entry(applet).unwrap_or_else(|| panic!("{applet} not visited: {:?}", run.path()));
    serde_json::from_str(entry.body().unwrap()).unwrap()
}

fn national(number: &str) -> String {
    E164::parse(number).unwrap().national()
}

fn digits_of(number: &str) -> String {
    number.trim_start_matches("+91").to_string()
}

#[tokio::test]
async fn a_customer_calling_the_masked_number_reaches_the_rider_who_sees_only_the_masked_number() {
    let env = env(&POOL).await;
    env.webhook("rider/assigned", ORDER).await;
    let (status, session) = env.get(&format!("/masking/session/{ORDER}")).await;
    assert_eq!(status, 200, "{session}");
    let masked = session["session"]["maskedNumber"].as_str().unwrap().to_string();
    assert_eq!(masked, POOL[0]);
    assert_eq!(session["session"]["pair"], "customer_rider");
    assert_eq!(session["session"]["partyA"]["type"], "customer");
    assert!(!session.to_string().contains(&digits_of(CUSTOMER)), "no full number in the API: {session}");
    assert!(!session.to_string().contains(&digits_of(RIDER)), "no full number in the API: {session}");

    env.exotel.script(CUSTOMER, CalleeScript::answers_after(Duration::ZERO).never_hangs_up()).unwrap();
    env.exotel
        .script(RIDER, CalleeScript::answers_after(Duration::from_secs(3)).stays_for(Duration::from_secs(40)))
        .unwrap();
    let run = env.call(CUSTOMER, &masked).await;
    assert_eq!(run.path(), ["identify", "route", "connect", "after_connect", "end"]);
    let connect = connect_answer(&run, "connect");
    assert_eq!(connect["destination"]["numbers"], json!([RIDER]));
    assert_eq!(connect["outgoing_phone_number"], national(&masked), "the rider sees the masked number");
    assert!(!connect.to_string().contains(&digits_of(CUSTOMER)), "the customer's number is not sent: {connect}");
    assert_eq!(connect["record"], false, "MASKING_RECORD is off by default");
    let after = run.entry("after_connect").unwrap();
    assert_eq!(after.param("DialCallStatus"), Some("completed"));

    let kinds = env.kinds(ORDER).await;
    for kind in ["masking.session_opened", "masking.call_connecting", "masking.call_ended"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} on the timeline: {kinds:?}");
    }
    let events = env.order_events(ORDER).await;
    let timeline = serde_json::to_string(&events).unwrap();
    assert!(!timeline.contains(&digits_of(CUSTOMER)) && !timeline.contains(&digits_of(RIDER)), "{timeline}");
    let ended = events.iter().find(|e| e.kind == "masking.call_ended").unwrap();
    assert_eq!(ended.detail["outcome"], "completed");
    assert_eq!(ended.detail["durationSecs"], 40);
    assert_eq!(ended.detail["caller"], "customer");

    let (status, analytics) = env.get("/exotel/ivr/analytics").await;
    assert_eq!(status, 200);
    assert_eq!(analytics["masking"]["maskedCalls"], 1, "{analytics}");
    assert_eq!(analytics["masking"]["connected"], 1);
    assert_eq!(analytics["masking"]["avgBridgeDuration"], 40.0);
    let (_, stats) = env.get("/masking/stats").await;
    assert_eq!(stats["activeSessions"], 1, "{stats}");
    env.app.stop().await;
}

#[tokio::test]
async fn a_rider_calling_after_the_session_closed_is_offered_support() {
    let env = env(&POOL).await;
    env.webhook("rider/assigned", ORDER).await;
    let (_, session) = env.get(&format!("/masking/session/{ORDER}")).await;
    let masked = session["session"]["maskedNumber"].as_str().unwrap().to_string();
    env.webhook("order/delivered", ORDER).await;
    assert!(env.kinds(ORDER).await.iter().any(|k| k == "masking.closing"));

    // Within the grace period the rider still reaches the customer.
    env.exotel.script(RIDER, CalleeScript::answers_after(Duration::ZERO).never_hangs_up()).unwrap();
    let run = env.call(RIDER, &masked).await;
    assert_eq!(connect_answer(&run, "connect")["destination"]["numbers"], json!([CUSTOMER]));

    // After it, the session is closed: a short message, then support.
    env.clock.advance(Duration::from_secs(30 * 60 + 1));
    let (status, _) = env.get(&format!("/masking/session/{ORDER}")).await;
    assert_eq!(status, 404, "no active session after the grace");
    let run = env.call(RIDER, &masked).await;
    assert_eq!(run.path(), ["identify", "route", "no_session", "support", "end"]);
    assert!(run.entry("no_session").unwrap().body().unwrap().contains("support"));
    let support = connect_answer(&run, "support");
    assert_eq!(support["destination"]["numbers"], json!([ADMIN]));
    assert!(!support.to_string().contains(&digits_of(CUSTOMER)), "the customer's number is not dialled");
    let (_, analytics) = env.get("/exotel/ivr/analytics").await;
    assert_eq!(analytics["masking"]["noSession"], 1, "{analytics}");
    env.app.stop().await;
}

#[tokio::test]
async fn a_phone_gets_a_second_number_while_one_is_free_and_order_digits_resolve_a_shared_one() {
    let env = env(&POOL).await;
    // The same customer has three orders, each with its own rider.
    let base = env.jupiter.order(ORDER).unwrap();
    for (id, rider) in [(200001, 502), (200002, 503)] {
        let mut order = base.clone();
        order.id = id;
        order.reference = None;
        order.rider_id = Some(rider);
        env.jupiter.add_order(order);
    }
    let mut numbers = Vec::new();
    for order in [ORDER, "200001", "200002"] {
        let (status, answer) = env.post("/masking/customer-rider", json!({"orderId": order})).await;
        assert_eq!(status, 201, "{answer}");
        numbers.push((answer["maskedNumber"].as_str().unwrap().to_string(), answer["session"]["shared"].clone()));
    }
    // Two numbers: the customer's first two sessions are kept apart; the
    // third has to share one.
    assert_eq!(numbers[0], (POOL[0].to_string(), json!(false)));
    assert_eq!(numbers[1], (POOL[1].to_string(), json!(false)));
    assert_eq!(numbers[2].1, json!(true));
    let shared = numbers[2].0.clone();
    let (status, again) = env.post("/masking/customer-rider", json!({"orderId": "200002"})).await;
    assert_eq!((status, &again["existing"]), (200, &json!(true)), "{again}");

    // On the shared number the customer is asked for the order's last digits.
    env.exotel
        .script(CUSTOMER, CalleeScript::answers_after(Duration::ZERO).never_hangs_up().presses("ask_order", "0002#"))
        .unwrap();
    let run = env.call(CUSTOMER, &shared).await;
    assert_eq!(
        run.path(),
        ["identify", "route", "ask_order", "order_answer", "order_route", "connect", "after_connect", "end"]
    );
    assert_eq!(connect_answer(&run, "connect")["destination"]["numbers"], json!([THIRD_RIDER]));
    assert_eq!(connect_answer(&run, "connect")["outgoing_phone_number"], national(&shared));

    // Wrong digits twice: support.
    env.exotel
        .script(
            CUSTOMER,
            CalleeScript::answers_after(Duration::ZERO).never_hangs_up().presses("#1", "7777#").presses("#2", "8888#"),
        )
        .unwrap();
    let run = env.call(CUSTOMER, &shared).await;
    assert_eq!(run.path().last(), Some(&"end"));
    assert!(run.path().contains(&"support"), "{:?}", run.path());

    // The rider of the other session on that number is not asked: only one
    // session of theirs is there.
    let first_on_shared = if shared == POOL[0] { RIDER } else { OTHER_RIDER };
    env.exotel
        .script(CUSTOMER, CalleeScript::answers_after(Duration::from_secs(2)).stays_for(Duration::from_secs(30)))
        .unwrap();
    env.exotel.script(first_on_shared, CalleeScript::answers_after(Duration::ZERO).never_hangs_up()).unwrap();
    let run = env.call(first_on_shared, &shared).await;
    assert_eq!(run.path(), ["identify", "route", "connect", "after_connect", "end"]);
    assert_eq!(connect_answer(&run, "connect")["destination"]["numbers"], json!([CUSTOMER]));
    env.app.stop().await;
}

#[tokio::test]
async fn masked_bridges_show_the_session_number_and_bad_requests_name_the_field() {
    let env = env(&POOL).await;
    let bad = |answer: &Value, field: &str| {
        assert_eq!(answer["error"]["field"], field, "{answer}");
    };
    let (status, answer) = env.post("/masking/customer-rider", json!({"orderId": "999999"})).await;
    assert_eq!(status, 400);
    bad(&answer, "orderId");
    let (status, answer) = env.post("/masking/customer-rider", json!({})).await;
    assert_eq!(status, 400);
    bad(&answer, "orderId");
    let (status, answer) =
        env.post("/masking/create", json!({"orderId": ORDER, "partyA": "12ab", "partyB": RIDER})).await;
    assert_eq!(status, 400);
    bad(&answer, "partyA");
    let (status, answer) = env
        .post("/masking/create", json!({"orderId": ORDER, "partyA": CUSTOMER, "partyB": RIDER, "partyBType": "admin"}))
        .await;
    assert_eq!(status, 400);
    bad(&answer, "partyBType");
    let (status, answer) = env.post("/masking/end", json!({"orderId": ORDER})).await;
    assert_eq!(status, 404, "{answer}");
    let (status, _) = env.get(&format!("/masking/session/{ORDER}")).await;
    assert_eq!(status, 404);
    let (status, answer) = env
        .post(
            "/exotel/ivr/bridge/masked",
            json!({"order_id": ORDER, "party_a_phone": CUSTOMER, "party_b_phone": "98-x"}),
        )
        .await;
    assert_eq!(status, 400);
    bad(&answer, "party_b_phone");
    let (status, answer) = env
        .post(
            "/exotel/ivr/bridge/masked",
            json!({"order_id": ORDER, "party_a_phone": CUSTOMER, "party_b_phone": ADMIN}),
        )
        .await;
    assert_eq!(status, 400, "not a party of the order");
    bad(&answer, "party_b_phone");
    let (status, _) = env.app.get("/masking/active", None).await;
    assert_eq!(status, 401, "API key required");

    // A masked bridge: the customer first, then the rider, both seeing the
    // session's number.
    let (status, answer) = env
        .post(
            "/exotel/ivr/bridge/masked",
            json!({"order_id": ORDER, "party_a_phone": CUSTOMER, "party_b_phone": RIDER, "context": "delivery", "time_limit": 600}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["maskedNumber"], POOL[0]);
    let request = env.exotel.received().into_iter().find(|r| r.field("To").is_some()).unwrap();
    assert_eq!(E164::parse(request.field("CallerId").unwrap()).unwrap().as_str(), POOL[0]);
    let (_, active) = env.get("/masking/active").await;
    assert_eq!(active["sessions"].as_array().unwrap().len(), 1, "{active}");
    env.exotel.advance(Duration::from_secs(120)).await;
    env.run_jobs().await;
    let (_, analytics) = env.get("/exotel/ivr/analytics").await;
    assert_eq!(analytics["masking"]["maskedCalls"], 1, "{analytics}");

    let (status, answer) = env
        .post("/exotel/ivr/bridge/admin", json!({"caller_phone": RIDER, "order_id": ORDER, "context": "pickup"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = env.post("/exotel/ivr/bridge/admin", json!({"caller_phone": "x"})).await;
    assert_eq!(status, 400);
    bad(&answer, "caller_phone");

    // Ending the session: the number no longer reaches the rider.
    let (status, answer) = env.post("/masking/end", json!({"orderId": ORDER, "reason": "support_closed"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["session"]["status"], "ended");
    env.exotel.script(CUSTOMER, CalleeScript::answers_after(Duration::ZERO).never_hangs_up()).unwrap();
    let run = env.call(CUSTOMER, POOL[0]).await;
    assert!(run.path().contains(&"support"), "{:?}", run.path());
    env.app.stop().await;
}

#[tokio::test]
async fn an_empty_pool_sends_masked_calls_to_support() {
    let env = env(&[]).await;
    let (status, answer) = env.post("/masking/customer-rider", json!({"orderId": ORDER})).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "masking_pool_empty");
    env.webhook("rider/assigned", ORDER).await;
    assert!(env.kinds(ORDER).await.iter().any(|k| k == "masking.pool_empty"));
    let exophone = env.exotel.config().exophones[0].as_str().to_string();
    env.exotel.script(CUSTOMER, CalleeScript::answers_after(Duration::ZERO).never_hangs_up()).unwrap();
    let run = env.call(CUSTOMER, &exophone).await;
    assert_eq!(run.path(), ["identify", "route", "no_session", "support", "end"]);
    env.app.stop().await;
}

/// Each pair route opens its own pair's session, with the incumbent's
/// message.
#[tokio::test]
async fn each_pair_route_opens_the_session_of_its_pair() {
    let env = env(&POOL).await;
    for (path, pair, message) in [
        (
            "/masking/customer-rider",
            "customer_rider",
            "Customer and rider can now call each other using the masked number",
        ),
        (
            "/masking/customer-vendor",
            "customer_vendor",
            "Customer and vendor can now call each other using the masked number",
        ),
        ("/masking/rider-vendor", "rider_vendor", "Rider and vendor can now call each other using the masked number"),
    ] {
        let (status, answer) = env.post(path, json!({"orderId": ORDER})).await;
        assert_eq!(status, 201, "{path}: {answer}");
        assert_eq!((&answer["session"]["pair"], &answer["message"]), (&json!(pair), &json!(message)), "{path}");
    }
    let sources: Vec<Value> =
        env.details(ORDER, "masking.session_opened").await.into_iter().map(|d| d["source"].clone()).collect();
    assert_eq!(
        sources,
        [
            json!("api:/masking/customer-rider"),
            json!("api:/masking/customer-vendor"),
            json!("api:/masking/rider-vendor")
        ]
    );
    env.app.stop().await;
}
