//! Jupiter's webhooks end to end: signed by the Jupiter simulator, received
//! by the service, acted on by the job workers against the same simulator.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Setup, TestApp};
use mangwale_server::jupiter::events::{LADDER_START_JOB, LADDER_STOP_JOB, WebhookEvent};
use mangwale_server::jupiter::outbox::{self, OutboxMessage};
use mangwale_sim::jupiter::{JupiterFault, JupiterSim, Signing, Target};
use mangwale_store::{Clock, JobState, ManualClock, TimelineEvent};
use serde_json::{Value, json};

const SECRET: &str = "mangwale-exotel-webhook-secret";

async fn app(secret: Option<&str>) -> (TestApp, Arc<ManualClock>, JupiterSim) {
    app_with(secret, &[]).await
}

async fn app_with(secret: Option<&str>, extra: &[(&str, &str)]) -> (TestApp, Arc<ManualClock>, JupiterSim) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let mut vars = secret.map(|s| vec![("JUPITER_WEBHOOK_SECRET".to_string(), s.to_string())]).unwrap_or_default();
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let app = TestApp::start_setup(Setup { vars, clock: clock.clone(), ..Setup::default() }).await;
    let sim = app.state.jupiter.sim.clone().expect("sandbox runs the Jupiter simulator");
    // Start-up schedules the daily maintenance job concurrently with the
    // test; scheduling it here (idempotent) makes job counts deterministic.
    mangwale_server::maintenance::schedule(&app.state).await.unwrap();
    (app, clock, sim)
}

/// An order of the demo data, as Jupiter would name it in a webhook.
fn demo_order(sim: &JupiterSim) -> String {
    sim.data().orders[0].id.to_string()
}

async fn timeline(app: &TestApp, order: &str) -> Vec<TimelineEvent> {
    app.state.store.events_for_order(order).await.unwrap()
}

fn kinds(events: &[TimelineEvent]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

/// Pending jobs, of which the daily maintenance job scheduled at start-up
/// is one.
async fn pending(app: &TestApp, at: chrono::DateTime<chrono::Utc>) -> u64 {
    app.state.store.queue_stats(at).await.unwrap().pending
}

async fn run_jobs(app: &TestApp) {
    mangwale_server::build_worker(&app.state).run_until_idle().await.unwrap();
}

async fn send(app: &TestApp, sim: &JupiterSim, event: &str, body: &Value, signing: Signing) -> (u16, Value) {
    let res = sim.send_webhook(&app.base, event, body, signing).await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_event_with_a_valid_signature_is_recorded_with_its_actions() {
    let (app, _clock, sim) = app(Some(SECRET)).await;
    let order = demo_order(&sim);
    for event in WebhookEvent::ALL {
        let body = json!({"order_id": order.parse::<u64>().unwrap(), "event": event.path()});
        let (status, answer) = send(&app, &sim, event.path(), &body, Signing::Secret(SECRET.into())).await;
        assert_eq!(status, 202, "{}: {answer}", event.path());
        assert_eq!(answer["duplicate"], false);
        assert_eq!(answer["orderId"], order.as_str());
        assert!(!answer["actions"].as_array().unwrap().is_empty());
    }
    let events = timeline(&app, &order).await;
    for event in WebhookEvent::ALL {
        assert!(kinds(&events).contains(&event.timeline_kind().as_str()), "{}", event.timeline_kind());
    }
    // Stops are enqueued at once; starts wait for Jupiter to confirm the order.
    let stats = app.state.store.queue_stats(chrono::Utc::now() + chrono::Duration::hours(1)).await.unwrap();
    assert!(stats.pending >= 10, "{stats:?}");
    app.stop().await;
}

#[tokio::test]
async fn missing_wrong_and_replayed_signatures() {
    let (app, clock, sim) = app(Some(SECRET)).await;
    let order = demo_order(&sim);
    let body = json!({"order_id": order, "store_id": 1, "amount": 325});
    let baseline = pending(&app, clock.now()).await;

    let (status, answer) = send(&app, &sim, "order/new", &body, Signing::None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("unauthorized")));
    let (status, _) = send(&app, &sim, "order/new", &body, Signing::Secret("not-the-secret-at-all".into())).await;
    assert_eq!(status, 401);
    // A signature over other bytes (the same JSON, re-serialised) fails too.
    let res = app
        .http
        .post(format!("{}/webhooks/jupiter/order/new", app.base))
        .header("content-type", "application/json")
        .header(
            "x-jupiter-signature",
            mangwale_server::jupiter::signature::sign(SECRET, None, None, body.to_string().as_bytes()),
        )
        .body(serde_json::to_string_pretty(&body).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    assert!(timeline(&app, &order).await.is_empty(), "nothing happened");
    assert_eq!(pending(&app, clock.now()).await, baseline);

    let (status, first) = send(&app, &sim, "order/new", &body, Signing::Secret(SECRET.into())).await;
    assert_eq!((status, &first["duplicate"]), (202, &json!(false)));
    let (status, again) = send(&app, &sim, "order/new", &body, Signing::Secret(SECRET.into())).await;
    assert_eq!((status, &again["duplicate"]), (202, &json!(true)), "a redelivery is acknowledged");
    assert_eq!(again["actions"], json!([]));
    assert_eq!(timeline(&app, &order).await.len(), 1);

    // With a timestamp the signature covers it, and an old one is refused.
    let fresh = clock.now().timestamp();
    let body2 = json!({"order_id": order, "reason": "closed"});
    let (status, _) =
        send(&app, &sim, "order/rejected", &body2, Signing::SecretWithTimestamp(SECRET.into(), fresh)).await;
    assert_eq!(status, 202);
    let stale = clock.now().timestamp() - 600;
    let body3 = json!({"order_id": order, "rider_id": 3});
    let (status, _) =
        send(&app, &sim, "rider/assigned", &body3, Signing::SecretWithTimestamp(SECRET.into(), stale)).await;
    assert_eq!(status, 401);
    assert_eq!(timeline(&app, &order).await.len(), 2);
    app.stop().await;
}

/// Posts `body` with exactly these headers, as a captured request would be
/// resent.
async fn post_raw(app: &TestApp, event: &str, body: &[u8], headers: &[(&str, String)]) -> (u16, Value) {
    let mut request = app
        .http
        .post(format!("{}/webhooks/jupiter/{event}", app.base))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let res = request.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_captured_request_resent_with_a_new_event_id_does_not_act_again() {
    use mangwale_server::jupiter::signature::sign;
    let (app, clock, sim) = app(Some(SECRET)).await;
    let order = demo_order(&sim);
    let body = json!({"order_id": order, "store_id": 1}).to_string().into_bytes();
    let ts = clock.now().timestamp();

    // Signed over the timestamp and body only: the event id beside it is not
    // covered, so changing it changes nothing.
    let signature = sign(SECRET, Some(ts), None, &body);
    let headers = |id: &str| {
        vec![
            ("x-jupiter-timestamp", ts.to_string()),
            ("x-jupiter-signature", signature.clone()),
            ("x-jupiter-event-id", id.to_string()),
        ]
    };
    let (status, first) = post_raw(&app, "order/new", &body, &headers("evt-1")).await;
    assert_eq!((status, &first["duplicate"]), (202, &json!(false)), "{first}");
    let (status, replay) = post_raw(&app, "order/new", &body, &headers("evt-2")).await;
    assert_eq!((status, &replay["duplicate"]), (202, &json!(true)), "{replay}");
    assert_eq!(replay["actions"], json!([]));
    let (status, replay) =
        post_raw(&app, "order/new", &body, &[headers("x")[0].clone(), headers("x")[1].clone()]).await;
    assert_eq!((status, &replay["duplicate"]), (202, &json!(true)), "without any event id: {replay}");
    assert_eq!(timeline(&app, &order).await.len(), 1, "one event acted");

    // A signed event id is the key: a new id needs a new signature, and the
    // old signature does not verify with a new id.
    let (status, _) = send(
        &app,
        &sim,
        "order/ready",
        &json!({"order_id": order}),
        Signing::SecretWithEventId(SECRET.into(), ts, "evt-10".into()),
    )
    .await;
    assert_eq!(status, 202);
    let ready = json!({"order_id": order}).to_string().into_bytes();
    let signed_id = sign(SECRET, Some(ts), Some("evt-10"), &ready);
    let forged = vec![
        ("x-jupiter-timestamp", ts.to_string()),
        ("x-jupiter-signature", signed_id.clone()),
        ("x-jupiter-event-id", "evt-11".to_string()),
    ];
    assert_eq!(post_raw(&app, "order/ready", &ready, &forged).await.0, 401);
    let resent = vec![
        ("x-jupiter-timestamp", ts.to_string()),
        ("x-jupiter-signature", signed_id),
        ("x-jupiter-event-id", "evt-10".to_string()),
    ];
    let (status, again) = post_raw(&app, "order/ready", &ready, &resent).await;
    assert_eq!((status, &again["duplicate"]), (202, &json!(true)), "{again}");
    assert_eq!(timeline(&app, &order).await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn phone_numbers_sent_as_json_numbers_are_masked_on_the_timeline() {
    let (app, _clock, sim) = app(Some(SECRET)).await;
    let order = demo_order(&sim);
    let body = json!({"order_id": order, "customer_phone": 919876543210u64, "vendor_phone": "+919822012345",
                      "amount": 325});
    let (status, _) = send(&app, &sim, "order/new", &body, Signing::Secret(SECRET.into())).await;
    assert_eq!(status, 202);
    let events = timeline(&app, &order).await;
    let stored = &events[0].detail["body"];
    assert_eq!(stored["customer_phone"], "9198xxxxx210", "{stored}");
    assert_eq!(stored["vendor_phone"], "+9198xxxxx345");
    assert_eq!(stored["amount"], 325);
    assert!(!serde_json::to_string(&events).unwrap().contains("9876543210"));
    app.stop().await;
}

#[tokio::test]
async fn a_required_timestamp_refuses_requests_without_one_or_with_a_stale_one() {
    let (app, clock, sim) = app_with(Some(SECRET), &[("JUPITER_REQUIRE_TIMESTAMP", "true")]).await;
    let order = demo_order(&sim);
    let baseline = pending(&app, clock.now()).await;
    let body = json!({"order_id": order, "store_id": 1});
    let (status, answer) = send(&app, &sim, "order/new", &body, Signing::Secret(SECRET.into())).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("unauthorized")), "no timestamp");
    let stale = clock.now().timestamp() - 301;
    let (status, _) = send(&app, &sim, "order/new", &body, Signing::SecretWithTimestamp(SECRET.into(), stale)).await;
    assert_eq!(status, 401, "older than 5 minutes");
    assert!(timeline(&app, &order).await.is_empty(), "nothing happened");
    assert_eq!(pending(&app, clock.now()).await, baseline);
    let fresh = clock.now().timestamp();
    let (status, _) = send(&app, &sim, "order/new", &body, Signing::SecretWithTimestamp(SECRET.into(), fresh)).await;
    assert_eq!(status, 202);
    let (_, health) = app.get("/webhooks/jupiter/health", None).await;
    assert_eq!(health["timestampRequired"], true);
    app.stop().await;
}

#[tokio::test]
async fn bad_bodies_name_the_field_and_change_nothing() {
    let (app, clock, sim) = app(None).await;
    let baseline = pending(&app, clock.now()).await;
    let post = |body: &'static str| {
        app.http
            .post(format!("{}/webhooks/jupiter/order/new", app.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let res = post("{not json").await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let res = post(r#"{"store_id": 5}"#).await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let error: Value = res.json().await.unwrap();
    assert_eq!(error["error"]["field"], "order_id");
    let res = post(r#"{"order_id": "no spaces allowed"}"#).await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let res = app.http.post(format!("{}/webhooks/jupiter/order/teleported", app.base)).body("{}").send().await.unwrap();
    assert_eq!(res.status().as_u16(), 404);
    assert_eq!(pending(&app, clock.now()).await, baseline, "nothing was enqueued");
    // Without a secret (sandbox) an unsigned event is accepted, and the
    // health route says signatures are not required.
    let (status, _) = send(&app, &sim, "order/accepted", &json!({"order_id": 5}), Signing::None).await;
    assert_eq!(status, 202);
    let (status, health) = app.get("/webhooks/jupiter/health", None).await;
    assert_eq!((status, &health["signatureRequired"]), (200, &json!(false)));
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_order_is_accepted_and_the_timeline_says_why_nothing_started() {
    let (app, _clock, sim) = app(Some(SECRET)).await;
    let body = json!({"order_id": 987_654_321, "store_id": 1});
    let (status, _) = send(&app, &sim, "order/new", &body, Signing::Secret(SECRET.into())).await;
    assert_eq!(status, 202);
    run_jobs(&app).await;
    let events = timeline(&app, "987654321").await;
    assert_eq!(kinds(&events), ["jupiter.order_new", "jupiter.order_unknown"]);
    assert!(events[1].detail["reason"].as_str().unwrap().contains("does not know order 987654321"));
    let start_key = format!("{}:start:vendor_new_order", events[0].detail["dedup"].as_str().unwrap());
    assert!(app.state.store.job_by_key(&start_key).await.unwrap().is_none(), "no ladder for an unknown order");
    app.stop().await;
}

#[tokio::test]
async fn jupiter_down_during_a_webhook_delays_its_effects_and_loses_nothing() {
    let (app, clock, sim) = app(Some(SECRET)).await;
    let order = demo_order(&sim);
    sim.set_down(Target::Jupiter, true);
    sim.set_down(Target::Php, true);
    let (status, _) =
        send(&app, &sim, "order/new", &json!({"order_id": order, "store_id": 1}), Signing::Secret(SECRET.into())).await;
    assert_eq!(status, 202, "accepted while Jupiter is down");
    run_jobs(&app).await;
    assert_eq!(kinds(&timeline(&app, &order).await), ["jupiter.order_new", "jupiter.lookup_failed"]);
    assert!(app.state.store.ladder(&format!("vendor_order_{order}")).await.unwrap().is_none(), "nothing started yet");

    sim.set_down(Target::Jupiter, false);
    sim.set_down(Target::Php, false);
    clock.advance(Duration::from_secs(10));
    run_jobs(&app).await;
    let events = timeline(&app, &order).await;
    assert!(kinds(&events).contains(&"jupiter.event_applied"), "{:?}", kinds(&events));
    let start_key = format!("{}:start:vendor_new_order", events[0].detail["dedup"].as_str().unwrap());
    let start = app.state.store.job_by_key(&start_key).await.unwrap().expect("the ladder start, once Jupiter is back");
    assert_eq!((start.kind.as_str(), start.state), (LADDER_START_JOB, JobState::Done));
    assert_eq!(start.payload["escalationId"], format!("vendor_order_{order}"));
    let ladder = app.state.store.ladder(&format!("vendor_order_{order}")).await.unwrap().expect("the vendor ladder");
    assert_eq!(ladder.state, mangwale_core::ladder::LadderState::Active);
    assert!(ladder.phone.is_some(), "the vendor's phone came from Jupiter's order");
    assert!(kinds(&timeline(&app, &order).await).contains(&"ladder.started"));
    app.stop().await;
}

#[tokio::test]
async fn a_rejection_stops_the_ladder_and_asks_jupiter_to_reassign() {
    let (app, _clock, sim) = app(Some(SECRET)).await;
    let order = demo_order(&sim);
    let baseline = pending(&app, chrono::Utc::now()).await;
    let body = json!({"order_id": order, "reason": "shop closed"});
    let (status, answer) = send(&app, &sim, "order/rejected", &body, Signing::Secret(SECRET.into())).await;
    assert_eq!(status, 202);
    assert_eq!(answer["actions"], json!(["stop:vendor_new_order", "jupiter:reassign_vendor"]));
    run_jobs(&app).await;
    let notifications = sim.notifications();
    let reassign = notifications.iter().find(|n| n["type"] == "reassign_vendor").expect("Jupiter was told");
    assert_eq!(reassign["data"]["orderId"], order.as_str());
    assert_eq!(reassign["data"]["reason"], "shop closed");
    assert_eq!(reassign["source"], "exotel-service");
    assert!(kinds(&timeline(&app, &order).await).contains(&"jupiter.outbox_delivered"));
    assert_eq!(pending(&app, chrono::Utc::now()).await, baseline, "the ladder stop ran (there was no ladder)");
    let _ = LADDER_STOP_JOB;
    app.stop().await;
}

#[tokio::test]
async fn messages_to_jupiter_are_retried_until_delivered_in_order_for_each_order() {
    let (app, clock, sim) = app(None).await;
    let order = demo_order(&sim);
    sim.inject_fault(Target::Jupiter, "/api/order/status", JupiterFault::Status(503), 2);
    let first = OutboxMessage::OrderStatus { status: "processing".into(), metadata: json!({"prepTimeMinutes": 20}) };
    let second = OutboxMessage::OrderStatus { status: "confirmed".into(), metadata: json!({}) };
    for (key, message) in [("m1", &first), ("m2", &second)] {
        app.state.store.enqueue(outbox::job(&order, message, key.into(), clock.now())).await.unwrap();
    }
    run_jobs(&app).await;
    assert!(sim.status_updates().is_empty(), "the first failed; the second waits behind it");
    for _ in 0..30 {
        clock.advance(Duration::from_secs(5));
        run_jobs(&app).await;
    }
    let statuses: Vec<Value> = sim.status_updates().iter().map(|u| u["status"].clone()).collect();
    assert_eq!(statuses, [json!("processing"), json!("confirmed")], "delivered, in order");
    assert_eq!(sim.status_updates()[0]["source"], "exotel-ivr");
    let events = timeline(&app, &order).await;
    assert!(kinds(&events).contains(&"jupiter.outbox_failed"), "failures are on the timeline");
    assert_eq!(kinds(&events).iter().filter(|k| **k == "jupiter.outbox_delivered").count(), 2);
    let job = app.state.store.job_by_key("m2").await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Done);
    app.stop().await;
}

#[tokio::test]
async fn jobs_no_handler_runs_yet_are_reported_not_counted_as_late() {
    let (app, clock, _sim) = app(None).await;
    // A job of a feature this build does not have yet.
    let job = mangwale_store::NewJob::new("voice_order.start", "future-1", json!({}), clock.now());
    app.state.store.enqueue(job).await.unwrap();
    run_jobs(&app).await;
    clock.advance(Duration::from_secs(2));
    let worker = mangwale_server::build_worker(&app.state);
    app.state.health.set_handled_kinds(worker.kinds());
    app.state.health.probe_once().await;
    let (status, health) = app.get("/health", None).await;
    assert_eq!(status, 200);
    assert_eq!(health["queue"]["awaitingHandler"]["voice_order.start"], 1, "{health}");
    assert_eq!(health["status"], "ok", "a job waiting for a feature is not a late job: {health}");
    app.stop().await;
}
