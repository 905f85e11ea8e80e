//! The operations API over HTTP: dead jobs retried (and run again by the
//! worker) or discarded, the queue, the configuration with its secrets
//! hidden, the live board (prompts in the party's language, escalate now,
//! calls in progress) and the analytics, with their 4xx answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use mangwale_store::{Clock, Job, JobError, JobHandler, NewJob};
use serde_json::{Value, json};

use crate::common::{API_KEY, SimEnv, TestApp};

async fn post(app: &TestApp, path: &str) -> (u16, Value) {
    let res = app.http.post(format!("{}{path}", app.base)).header("X-API-Key", API_KEY).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    app.get(path, Some(API_KEY)).await
}

/// Fails permanently while `failures` is above zero, then succeeds.
#[derive(Default)]
struct Flaky {
    failures: AtomicU32,
    runs: AtomicU32,
}

#[async_trait]
impl JobHandler for Flaky {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            return Err(JobError::Permanent("Jupiter answered 422: order unknown".into()));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_dead_job_retried_runs_again_and_one_discarded_is_gone_for_good() {
    let app = TestApp::start(&[]).await;
    let flaky = Arc::new(Flaky { failures: AtomicU32::new(2), ..Flaky::default() });
    let mut worker = mangwale_server::build_worker(&app.state);
    worker.register("test.flaky", flaky.clone());
    let now = chrono::Utc::now();
    let store = &app.state.store;
    let first = store
        .enqueue(NewJob::new("test.flaky", "flaky-1", json!({"orderId": "MW-77"}), now).max_attempts(3))
        .await
        .unwrap()
        .id();
    let second =
        store.enqueue(NewJob::new("test.flaky", "flaky-2", json!({}), now).max_attempts(3)).await.unwrap().id();
    worker.run_until_idle().await.unwrap();
    assert_eq!(flaky.runs.load(Ordering::SeqCst), 2, "both ran once and went dead");
    app.state.health.probe_once().await;
    assert_eq!(app.get("/health", None).await.1["queue"]["dead"], 2);

    let (status, page) = get(&app, "/ops/jobs/dead?limit=1").await;
    assert_eq!(status, 200, "{page}");
    let job = &page["jobs"][0];
    assert_eq!(
        (job["id"].as_i64(), job["kind"].as_str(), job["key"].as_str()),
        (Some(first), Some("test.flaky"), Some("flaky-1"))
    );
    assert_eq!(
        (job["attempts"].as_u64(), job["orderId"].as_str(), job["group"].as_str()),
        (Some(1), Some("MW-77"), None)
    );
    assert_eq!(job["lastError"], "Jupiter answered 422: order unknown");
    assert!(job["deadAt"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().is_ok());
    assert_eq!(page["next"], first, "a full page: there may be more");
    let (_, rest) = get(&app, &format!("/ops/jobs/dead?after={first}")).await;
    assert_eq!(rest["jobs"].as_array().unwrap().len(), 1);
    assert_eq!((rest["jobs"][0]["id"].as_i64(), &rest["next"]), (Some(second), &Value::Null));

    let (_, queue) = get(&app, "/ops/queue").await;
    let kind = queue["kinds"].as_array().unwrap().iter().find(|k| k["kind"] == "test.flaky").unwrap().clone();
    assert_eq!(
        (kind["dead"].as_u64(), kind["pending"].as_u64(), &kind["oldestOverdueSeconds"]),
        (Some(2), Some(0), &Value::Null)
    );
    assert_eq!(queue["totals"]["dead"], 2);

    // Retry: due now with a fresh budget; a second retry finds it not dead.
    let (status, retried) = post(&app, &format!("/ops/jobs/{first}/retry")).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!((retried["id"].as_i64(), retried["state"].as_str()), (Some(first), Some("pending")));
    assert!(retried["runAt"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap() <= chrono::Utc::now());
    let (status, again) = post(&app, &format!("/ops/jobs/{first}/retry")).await;
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("job_not_dead")), "{again}");
    let (status, _) = post(&app, &format!("/ops/jobs/{first}/discard")).await;
    assert_eq!(status, 409, "a pending job cannot be discarded");
    let health = app.get("/health", None).await.1;
    assert_eq!(health["queue"]["dead"], 1, "the count drops at once: {health}");
    let events = store.events_for_order("MW-77").await.unwrap();
    let event = events.iter().find(|e| e.kind == "job_retried").expect("the retry is on the order's timeline");
    assert_eq!((event.detail["jobId"].as_i64(), event.channel.as_deref()), (Some(first), Some("ops")));

    // The worker runs it again, and this time it succeeds.
    let report = worker.run_until_idle().await.unwrap();
    assert_eq!((report.completed, flaky.runs.load(Ordering::SeqCst)), (1, 3));
    assert_eq!(store.job(first).await.unwrap().unwrap().state, mangwale_store::JobState::Done);

    // Discard: off the list and the counts, never run again.
    let (status, discarded) = post(&app, &format!("/ops/jobs/{second}/discard")).await;
    assert_eq!(status, 200, "{discarded}");
    assert_eq!(discarded, json!({"id": second, "state": "discarded"}));
    let (status, _) = post(&app, &format!("/ops/jobs/{second}/retry")).await;
    assert_eq!(status, 409, "a discarded job is not dead");
    assert_eq!(get(&app, "/ops/jobs/dead").await.1, json!({"jobs": [], "next": null}));
    assert_eq!(app.get("/health", None).await.1["queue"]["dead"], 0);
    worker.run_until_idle().await.unwrap();
    assert_eq!(flaky.runs.load(Ordering::SeqCst), 3);
    let metrics = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("mangwale_ops_job_actions_total{action=\"retry\",kind=\"test.flaky\"}"), "{metrics}");
    assert!(metrics.contains("mangwale_ops_job_actions_total{action=\"discard\",kind=\"test.flaky\"}"));
    app.stop().await;
}

#[tokio::test]
async fn ops_routes_need_a_key_and_name_the_bad_field() {
    let app = TestApp::start(&[]).await;
    for path in
        ["/ops/queue", "/ops/jobs/dead", "/ops/config", "/ops/ladders/active", "/ops/calls/active", "/ops/analytics"]
    {
        assert_eq!(app.get(path, None).await.0, 401, "{path}");
    }
    let res = app.http.post(format!("{}/ops/jobs/1/retry", app.base)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    for (path, field) in [
        ("/ops/jobs/dead?limit=0", "limit"),
        ("/ops/jobs/dead?limit=501", "limit"),
        ("/ops/jobs/dead?after=-1", "after"),
        ("/ops/jobs/dead?after=x", "after"),
        ("/ops/ladders/active?limit=many", "limit"),
        ("/ops/calls/active?limit=0", "limit"),
        ("/ops/analytics?from=yesterday", "from"),
        ("/ops/analytics?to=soon", "to"),
        ("/ops/analytics?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("/ops/analytics?from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("/ops/analytics?from=2026-01-01T00:00:00Z&to=2026-02-15T00:00:00Z", "from"),
    ] {
        let (status, body) = get(&app, path).await;
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some(field)), "{path}: {body}");
    }
    for path in ["/ops/jobs/abc/retry", "/ops/jobs/0/discard"] {
        let (status, body) = post(&app, path).await;
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some("id")), "{path}: {body}");
    }
    for path in ["/ops/jobs/987654/retry", "/ops/jobs/987654/discard", "/comms/escalations/no_such_ladder/escalate"] {
        assert_eq!(post(&app, path).await.0, 404, "{path}");
    }
    let (status, analytics) = get(&app, "/ops/analytics?from=2026-01-01T00:00:00Z&to=2026-01-31T00:00:00Z").await;
    assert_eq!(status, 200, "30 days are allowed: {analytics}");
    assert_eq!(analytics["callsPerHour"].as_array().unwrap().len(), 30 * 24);
    app.stop().await;
}

#[tokio::test]
async fn the_configuration_shows_secrets_only_as_set() {
    let app = TestApp::start(&[("JUPITER_API_KEY", "jupiter-secret-key-0001")]).await;
    let (status, config) = get(&app, "/ops/config").await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(config["mode"], "sandbox");
    let variables = config["variables"].as_array().unwrap();
    let find = |name: &str| variables.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("{name}")).clone();
    assert_eq!(find("API_KEYS"), json!({"name": "API_KEYS", "value": "set", "secret": true}));
    assert_eq!(find("JUPITER_API_KEY")["value"], "set");
    assert_eq!(find("EXOTEL_API_TOKEN")["value"], "not set");
    assert_eq!(find("MODE"), json!({"name": "MODE", "value": "sandbox", "secret": false}));
    let text = config.to_string();
    for secret in [API_KEY, crate::common::TOKEN, "jupiter-secret-key-0001"] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
    app.stop().await;
}

const VENDOR: &str = "+919876543210";

#[tokio::test]
async fn the_live_board_shows_ladders_in_the_party_language_and_escalates_now() {
    let env = SimEnv::builder().var("ADMIN_SUPPORT_PHONE", "+919812300000").start().await;
    let order = env.jupiter.data().orders[0].id.to_string();
    let (status, started) = env
        .post(
            "/comms/notify/vendor/order",
            json!({"order_id": order, "vendor_id": "V-1", "vendor_phone": VENDOR, "vendor_name": "Krishna Kirana",
                   "amount": 325, "items": "Poha x1", "payment_mode": "cod", "language": "mr"}),
        )
        .await;
    assert_eq!(status, 200, "{started}");
    let id = started["escalationId"].as_str().unwrap().to_string();
    env.run_jobs().await;

    let (status, board) = env.get("/ops/ladders/active").await;
    assert_eq!(status, 200, "{board}");
    let ladder = &board["ladders"][0];
    assert_eq!(board["ladders"].as_array().unwrap().len(), 1);
    assert_eq!(
        (ladder["escalationId"].as_str(), ladder["orderId"].as_str()),
        (Some(id.as_str()), Some(order.as_str()))
    );
    assert_eq!((ladder["party"].as_str(), ladder["partyName"].as_str()), (Some("vendor:V-1"), Some("Krishna Kirana")));
    assert_eq!(
        (ladder["language"].as_str(), ladder["kind"].as_str(), ladder["state"].as_str()),
        (Some("mr"), Some("vendor_new_order"), Some("active"))
    );
    let steps = ladder["steps"].as_array().unwrap();
    let channels: Vec<&str> = steps.iter().map(|s| s["channel"].as_str().unwrap()).collect();
    assert_eq!(channels, ["app_push", "whatsapp", "ring", "ivr", "admin", "deadline"]);
    assert_eq!((steps[0]["state"].as_str(), steps[1]["state"].as_str()), (Some("sent"), Some("pending")));
    assert_eq!(ladder["nextStepAt"], steps[1]["dueAt"]);
    let ivr = steps[3]["prompt"].as_str().unwrap();
    assert!(ivr.starts_with("Mangwale kadun nava order. Rakkam 325 rupaye. Items: Poha x1."), "in Marathi: {ivr}");
    assert!(ivr.contains("Swikarnyasathi 1"), "{ivr}");
    assert!(steps[1]["prompt"].as_str().unwrap().starts_with("vendor_new_order (mr): "), "{}", steps[1]["prompt"]);
    assert!(steps[4]["prompt"].as_str().unwrap().contains("vendor:V-1 has not responded"));
    assert_eq!(steps[5]["prompt"], Value::Null, "the deadline says nothing");

    // Escalate: the WhatsApp step is due now, not in a minute.
    let (status, escalated) = env.post(&format!("/comms/escalations/{id}/escalate"), json!({})).await;
    assert_eq!(status, 200, "{escalated}");
    assert_eq!((escalated["escalationId"].as_str(), escalated["stepIndex"].as_u64()), (Some(id.as_str()), Some(1)));
    let run_at = escalated["runAt"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    assert_eq!(run_at.timestamp_millis(), env.clock.now().timestamp_millis(), "now, not when it was due");
    env.run_jobs().await;
    assert_eq!(env.whatsapp.messages().len(), 1, "sent without the clock moving");
    assert!(env.kinds(&order).await.iter().any(|k| k == "escalated_now"));
    // And the ring: a call in progress on the board, the number masked.
    let (_, escalated) = env.post(&format!("/comms/escalations/{id}/escalate"), json!({})).await;
    assert_eq!(escalated["stepIndex"], 2);
    env.run_jobs().await;
    let (status, calls) = env.get("/ops/calls/active").await;
    assert_eq!(status, 200, "{calls}");
    let call = &calls["calls"][0];
    assert_eq!(
        (call["purpose"].as_str(), call["orderId"].as_str(), call["party"].as_str()),
        (Some("ring"), Some(order.as_str()), Some("vendor:V-1"))
    );
    assert_eq!(call["to"], "+9198xxxxx210");
    assert!(call["callSid"].is_string() && call["startedAt"].is_string(), "{call}");
    assert!(!calls.to_string().contains(VENDOR), "no full number");

    // The vendor accepts: nothing left to escalate, and the analytics count it.
    let (status, _) =
        env.post("/comms/stop", json!({"escalation_id": id, "action": "accept", "actor": "vendor:V-1"})).await;
    assert_eq!(status, 200);
    let (status, refused) = env.post(&format!("/comms/escalations/{id}/escalate"), json!({})).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("ladder_not_active")), "{refused}");
    assert_eq!(env.get("/ops/ladders/active").await.1, json!({"ladders": []}));
    // The default range ends now: move past the instant everything happened.
    env.clock.advance(std::time::Duration::from_secs(1));
    let (status, analytics) = env.get("/ops/analytics").await;
    assert_eq!(status, 200, "{analytics}");
    assert_eq!(analytics["ladderOutcomes"], json!({"accepted": 1, "rejected": 0, "noResponse": 0, "stopped": 0}));
    let answered: u64 =
        analytics["responseSeconds"].as_array().unwrap().iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(
        (answered, analytics["responseSeconds"][0]["count"].as_u64()),
        (1, Some(1)),
        "answered within 10 s of the start"
    );
    assert_eq!(analytics["responseSeconds"][5], json!({"le": null, "count": 0}));
    let push = analytics["channels"].as_array().unwrap().iter().find(|c| c["channel"] == "app_push").unwrap().clone();
    assert_eq!(push, json!({"channel": "app_push", "sent": 1, "succeeded": 1, "failed": 0}));
    let outbound: u64 =
        analytics["callsPerHour"].as_array().unwrap().iter().map(|h| h["outbound"].as_u64().unwrap()).sum();
    assert_eq!(outbound, 1, "the ring");
    for key in ["missedCalls", "voiceOrders", "campaigns"] {
        assert!(analytics[key].is_object(), "{key}: {analytics}");
    }
    env.app.stop().await;
}
