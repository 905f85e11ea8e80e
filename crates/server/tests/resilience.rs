//! Failures contained: a panicking job handler, a dead SQLite writer thread,
//! a background part that cannot be restarted, dead jobs; and the chaos test:
//! ladders running on the controlled clock while Exotel fails for ten
//! simulated minutes.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{API_KEY, Setup, SimEnv, TestApp};
use mangwale_core::ladder::{Channel, LadderState, StepState};
use mangwale_sim::exotel::{CalleeScript, Endpoint, Fault, SimConfig};
use mangwale_store::{Clock, Job, JobError, JobHandler, ManualClock, NewJob};
use serde_json::{Value, json};

const ADMIN: &str = "+919812300000";

struct Panics;

#[async_trait]
impl JobHandler for Panics {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        if job.attempts < 3 {
            panic!("attempt {} fell over", job.attempts);
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_panicking_handler_is_retried_and_its_panic_reaches_the_order_timeline() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = TestApp::start_setup(Setup { clock: clock.clone(), ..Setup::default() }).await;
    let mut worker = mangwale_server::build_worker(&app.state);
    worker.register("test.panics", Arc::new(Panics));
    let store = &app.state.store;
    store.enqueue(NewJob::new("test.panics", "p", json!({"orderId": "MW-2025-001234"}), clock.now())).await.unwrap();

    let report = worker.run_until_idle().await.unwrap();
    assert_eq!(report.retrying, 1, "{report:?}");
    let job = store.job_by_key("p").await.unwrap().unwrap();
    assert_eq!(job.last_error.as_deref(), Some("handler panicked: attempt 1 fell over"));
    for _ in 0..2 {
        clock.advance(Duration::from_secs(10));
        worker.run_until_idle().await.unwrap();
    }
    assert_eq!(store.job_by_key("p").await.unwrap().unwrap().state, mangwale_store::JobState::Done);
    let events = store.events_for_order("MW-2025-001234").await.unwrap();
    let panics: Vec<_> = events.iter().filter(|e| e.kind == "job.panicked").collect();
    assert_eq!(panics.len(), 2, "{events:?}");
    assert_eq!(panics[0].detail["error"], "handler panicked: attempt 1 fell over");
    assert_eq!(panics[0].detail["job"], "test.panics");
    let metrics = app.state.metrics.render();
    assert!(metrics.contains("mangwale_job_panics_total{kind=\"test.panics\"}"), "{metrics}");
    app.stop().await;
}

#[tokio::test]
async fn a_dead_job_is_on_the_timeline_counted_and_makes_health_degraded() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = TestApp::start_setup(Setup { clock: clock.clone(), ..Setup::default() }).await;
    let order = "MW-2025-001234";
    // An outbox message Jupiter can never take: a permanent failure.
    let job = NewJob::new("jupiter.outbox", "bad", json!({"orderId": order, "op": "no_such_op"}), clock.now());
    app.state.store.enqueue(job).await.unwrap();
    let report = mangwale_server::build_worker(&app.state).run_until_idle().await.unwrap();
    assert_eq!(report.dead, 1, "{report:?}");

    let events = app.state.store.events_for_order(order).await.unwrap();
    let dead: Vec<_> = events.iter().filter(|e| e.kind == "job.dead").collect();
    assert_eq!(dead.len(), 1, "{events:?}");
    assert_eq!(dead[0].detail["job"], "jupiter.outbox");

    app.state.health.probe_once().await;
    let (status, health) = app.get("/health", None).await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["queue"]["deadByKind"], json!({"jupiter.outbox": 1}));
    let metrics = app.state.metrics.render();
    assert!(metrics.contains("mangwale_jobs_dead_total{kind=\"jupiter.outbox\"}"), "{metrics}");

    // A day later the dead job no longer makes the service degraded; it is
    // still counted in the queue figures.
    clock.advance(Duration::from_secs(25 * 3600));
    app.state.health.probe_once().await;
    let (_, health) = app.get("/health", None).await;
    assert_eq!(health["queue"]["deadByKind"], json!({}), "{health}");
    assert_eq!(health["queue"]["dead"], 1);
    app.stop().await;
}

#[tokio::test]
async fn a_writer_thread_that_dies_is_replaced_and_the_webhooks_after_it_succeed() {
    let app = TestApp::start(&[]).await;
    let url = app.exotel_url("/exotel/webhooks/call-status");
    let callback =
        |n: u32| format!("CallSid=crash-{n}&EventType=terminal&Status=completed&Legs%5B0%5D%5BStatus%5D=completed");
    let post = |n: u32| {
        app.http.post(&url).header("content-type", "application/x-www-form-urlencoded").body(callback(n)).send()
    };
    assert_eq!(post(0).await.unwrap().status().as_u16(), 200);
    app.state.store.crash_writers_for_test().await;
    for n in 1..=20 {
        let res = post(n).await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "callback {n}: {}", res.text().await.unwrap_or_default());
    }
    let (status, health) = app.get("/health", None).await;
    assert_ne!(status, 503, "{health}");
    assert_eq!(health["components"]["sqlite-inbound"]["restarts"], 1, "{health}");
    assert_eq!(health["components"]["sqlite-ladders"]["restarts"], 1, "{health}");
    assert_eq!(health["failedComponents"], json!([]));
    let metrics = app.state.metrics.render();
    assert!(metrics.contains("mangwale_component_restarts_total{component=\"sqlite-inbound\"}"), "{metrics}");
    app.stop().await;
}

#[tokio::test]
async fn health_answers_503_naming_a_component_that_cannot_be_restarted() {
    let app = TestApp::start_with_workers(&[]).await;
    let (_, health) = app.get("/health", None).await;
    assert_eq!(health["components"]["worker"]["failed"], false, "{health}");
    assert_eq!(health["components"]["health-probe"]["failed"], false, "{health}");
    assert_eq!(health["components"]["campaign-sender"]["failed"], false, "{health}");
    app.state.health.components().failed(mangwale_server::WORKER, "panicked: test");
    let (status, health) = app.get("/health", None).await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "down");
    assert_eq!(health["failedComponents"], json!(["worker"]));
    assert_eq!(health["components"]["worker"]["lastError"], "panicked: test");
    app.stop().await;
}

#[tokio::test]
async fn a_supervised_task_that_panics_is_restarted_until_its_budget_is_spent() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let components = mangwale_store::Components::new();
    let stop = tokio_util::sync::CancellationToken::new();
    let starts = Arc::new(AtomicU32::new(0));
    let task = mangwale_server::supervise("flaky", components.clone(), stop.clone(), {
        let starts = starts.clone();
        move || {
            let n = starts.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    panic!("start {n} fell over");
                }
                std::future::pending::<()>().await
            }
        }
    });
    while starts.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let state = components.snapshot()["flaky"].clone();
    assert_eq!((state.restarts, state.failed), (2, false), "{state:?}");
    stop.cancel();

    let always = mangwale_server::supervise(
        "broken",
        components.clone(),
        tokio_util::sync::CancellationToken::new(),
        || async { panic!("always") },
    );
    always.await.unwrap();
    assert_eq!(components.failed_names(), vec!["broken".to_string()]);
    assert_eq!(components.snapshot()["broken"].restarts, u64::from(mangwale_store::supervise::MAX_RESTARTS));
    drop(task);
}

// ---------------------------------------------------------------------------
// Chaos: Exotel fails for ten simulated minutes while ladders run.
// ---------------------------------------------------------------------------

/// Ladders of the chaos test; `CHAOS_LADDERS` overrides (docs/benchmarks.md
/// runs 1,000).
fn chaos_ladders() -> usize {
    std::env::var("CHAOS_LADDERS").ok().and_then(|v| v.parse().ok()).unwrap_or(100)
}

const TICK: u64 = 10;
/// Ladders start during the first 11 minutes...
const START_WINDOW: u64 = 660;
/// ...and Exotel fails from the first minute to the eleventh.
const OUTAGE: (u64, u64) = (60, 660);

/// The faults of one tick of the outage: mostly 5xx answers (no effect),
/// which the client retries and then the job queue; every fourth tick
/// "timeouts" too: connections closed without an answer, before or after
/// the request took effect.
fn outage_faults(tick: u64) -> Vec<(Fault, u32)> {
    let server_errors = [Fault::status(500), Fault::status(503), Fault::status(504)];
    let timeouts = [Fault::DropAfterProcessing, Fault::status(500), Fault::Drop, Fault::status(503)];
    let cycle: &[Fault] = if tick.is_multiple_of(4) { &timeouts } else { &server_errors };
    let mut faults: Vec<(Fault, u32)> = (0..60).map(|i| (cycle[(i + tick as usize) % cycle.len()], 1)).collect();
    faults.push((Fault::status(503), u32::MAX));
    faults
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_exotel_fails_for_ten_minutes_and_no_step_is_lost_or_sent_twice() {
    let n = chaos_ladders();
    let started_real = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    // The vendor ladder on Exotel only: ring at once, IVR a minute later,
    // admin (SMS and bridge) at three minutes.
    let ladders = mangwale_core::ladder::DEFAULT_LADDERS_TOML.replace(
        "steps = [\n  { channel = \"app_push\", after = 0 },\n  { channel = \"whatsapp\", after = 60 },\n  { channel = \"ring\", after = 120 },\n  { channel = \"ivr\", after = 180 },\n  { channel = \"admin\", after = 300 },\n]",
        "steps = [\n  { channel = \"ring\", after = 0 },\n  { channel = \"ivr\", after = 60 },\n  { channel = \"admin\", after = 180 },\n]",
    );
    assert!(ladders.contains("{ channel = \"ivr\", after = 60 }"), "the chaos ladder is defined");
    let file = dir.path().join("ladders.toml");
    std::fs::write(&file, ladders).unwrap();

    let env = SimEnv::builder()
        .var("ADMIN_SUPPORT_PHONE", ADMIN)
        .var("LADDERS_FILE", &file.display().to_string())
        .var("EXOTEL_VOICE_PER_MINUTE", "10000")
        // The client's rate limiters wait in real time: a low SMS budget
        // would make the test wait for the admin steps' retries.
        .var("EXOTEL_SMS_PER_MINUTE", "10000")
        .exotel(|config| SimConfig {
            voice_rate_limit_per_minute: 1_000_000,
            max_log_entries: 1_000_000,
            default_script: CalleeScript::no_answer(),
            ..config
        })
        .whatsapp()
        .exotel_retries(3)
        .start()
        .await;
    let (app, clock, exotel) = (&env.app, &env.clock, &env.exotel);
    let t0 = clock.now();

    let mut escalations: Vec<(String, String)> = Vec::with_capacity(n);
    let total_ticks = (START_WINDOW + 180 + 300 + 60) / TICK;
    let mut next = 0usize;
    for tick in 0..total_ticks {
        let elapsed = tick * TICK;
        // This tick's share of the ladders.
        let due = if elapsed >= START_WINDOW { n } else { (n as u64 * elapsed / START_WINDOW) as usize + 1 };
        while next < due.min(n) {
            let order = format!("CHAOS-{next:05}");
            let body = json!({
                "order_id": order, "vendor_id": format!("V-{next}"),
                "vendor_phone": format!("+9198{:08}", 10_000_000 + next), "amount": 100,
                "items": "Poha x1", "language": "hi"
            });
            let res = app
                .http
                .post(format!("{}/comms/notify/vendor/order", app.base))
                .header("X-API-Key", API_KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let answer: Value = res.json().await.unwrap();
            assert_eq!(status, 200, "{answer}");
            escalations.push((order, answer["escalationId"].as_str().unwrap().to_string()));
            next += 1;
        }
        if elapsed >= OUTAGE.0 && elapsed < OUTAGE.1 {
            exotel.clear_faults();
            for (fault, times) in outage_faults(tick) {
                exotel.inject_fault(Endpoint::Any, fault, times);
            }
        } else if elapsed == OUTAGE.1 {
            exotel.clear_faults();
        }
        env.run_jobs().await;
        clock.advance(Duration::from_secs(TICK));
        exotel.advance(Duration::from_secs(TICK)).await;
        env.run_jobs().await;
    }
    exotel.clear_faults();

    // Every ladder ran to its end; every step is final.
    let store = &app.state.store;
    let calls = exotel.calls();
    let sms = exotel.sms_messages();
    // (escalation, purpose) -> (call sid, attempt id) of each call placed.
    let mut calls_by_step: HashMap<(String, String), Vec<(String, String)>> = HashMap::new();
    for call in &calls {
        let attempt = call.custom_field.as_deref().and_then(mangwale_server::calls::attempt_id).expect("our call");
        let attempt = store.call_by_id(attempt).await.unwrap().expect("every call has its attempt");
        let key = (attempt.escalation_id.clone().unwrap_or_default(), attempt.purpose.clone());
        calls_by_step.entry(key).or_default().push((call.sid.clone(), attempt.id.clone()));
    }
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for (order, id) in &escalations {
        let ladder = store.ladder(id).await.unwrap().expect("the ladder");
        assert_ne!(ladder.state, LadderState::Active, "{id} still active: {ladder:?}");
        let timeline = store.events_for_order(order).await.unwrap();
        for step in &ladder.steps {
            let purpose = match step.channel.name() {
                "ring" => "ring",
                "ivr" => "ivr",
                "admin" => "admin_bridge",
                // The deadline after the last call sends nothing.
                _ => "none",
            };
            let placed = calls_by_step.get(&(id.clone(), purpose.to_string())).map(Vec::len).unwrap_or(0);
            // None sent twice.
            assert!(placed <= 1, "{id} step {}: {placed} calls", step.index);
            if step.channel == Channel::Admin {
                let texts = sms.iter().filter(|m| m.body.contains(order.as_str())).count();
                assert!(texts <= 1, "{id}: {texts} admin SMS");
            }
            let events: Vec<_> = timeline
                .iter()
                .filter(|e| e.escalation_id.as_deref() == Some(id) && e.detail["step"] == json!(step.index))
                .collect();
            let last = events.last().unwrap_or_else(|| panic!("{id} step {} is not on the timeline", step.index));
            // Each failed attempt that was retried is on the timeline.
            let retried = events.iter().filter(|e| e.kind == "ladder.step_failed" && e.detail["willRetry"] == true);
            assert_eq!(retried.count() as u32, step.attempts.saturating_sub(1), "{id} step {}: {events:?}", step.index);
            let window_end = ladder
                .steps
                .iter()
                .filter(|s| s.due_at > step.due_at)
                .map(|s| s.due_at)
                .min()
                .unwrap_or(step.due_at + mangwale_server::comms::steps::LAST_STEP_WINDOW);
            let outcome = match step.state {
                StepState::Sent => {
                    let kind =
                        if step.channel == Channel::Deadline { "ladder.deadline_passed" } else { "ladder.step_sent" };
                    assert_eq!(last.kind, kind, "{id} step {}", step.index);
                    // Inside its window (the tick that ran it may end up to
                    // one tick after the window's last retry started).
                    assert!(step.updated_at <= window_end + chrono::Duration::seconds(TICK as i64), "{id}: {step:?}");
                    // The call it records is the one placed (by sid, or by
                    // attempt when the answer was lost).
                    let provider_id = step.provider_id.clone().unwrap_or_default();
                    if let Some(placed) = calls_by_step.get(&(id.clone(), purpose.to_string())) {
                        let (sid, attempt) = &placed[0];
                        assert!(
                            step.channel == Channel::Admin || provider_id == *sid || provider_id == *attempt,
                            "{id} step {}: {provider_id} is not {sid} / {attempt}",
                            step.index
                        );
                    }
                    // A lost answer: the call may or may not exist, and is
                    // never placed again (its status callback will tell).
                    // (The step then records the attempt id: there was no sid.)
                    let lost = store.call_by_id(&provider_id).await.unwrap().is_some();
                    match (lost, step.attempts > 1) {
                        (true, _) => "sent, answer lost",
                        (false, true) => "sent after retries",
                        (false, false) => "sent",
                    }
                }
                StepState::Failed => {
                    assert_eq!(last.kind, "ladder.step_failed", "{id} step {}", step.index);
                    assert_eq!(last.detail["willRetry"], false);
                    assert_eq!(placed, 0, "{id} step {}: failed, yet a call went out", step.index);
                    "failed"
                }
                StepState::Unknown => {
                    assert_eq!(last.kind, "ladder.step_unknown", "{id} step {}", step.index);
                    "unknown"
                }
                other => panic!("{id} step {} ended {other:?}", step.index),
            };
            *outcomes.entry(format!("{}: {outcome}", step.channel.name())).or_default() += 1;
        }
    }
    let requests = exotel.received();
    let faulted = requests.iter().filter(|r| r.fault.is_some()).count();
    eprintln!(
        "chaos: {n} ladders, {} Exotel requests ({faulted} faulted), {} calls, {} SMS, outcomes {outcomes:?}, {:.1} s",
        requests.len(),
        calls.len(),
        sms.len(),
        started_real.elapsed().as_secs_f64()
    );
    assert!(faulted > 0, "the outage happened");
    let _ = t0;
    env.app.stop().await;
}
