//! One suite, two backends: every test here runs on SQLite, and on PostgreSQL
//! whenever `TEST_DATABASE_URL` is set (CI always sets it).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mangwale_store::test_support::TestDb;
use mangwale_store::{
    CallState, Clock, ConnectOptions, Enqueued, ExotelRequestLog, FailOutcome, InboundEvent, InboundOutcome,
    InboundWriter, Job, JobError, JobHandler, JobObserver, JobState, JobTrouble, ManualClock, NewCall, NewEvent,
    NewJob, RetryPolicy, SystemClock, Worker, WorkerConfig, connect,
};
use mangwale_store::{IdempotencyClaim, StoredResponse};
use mangwale_store::{
    MaskedCall, MaskedCallDirection, MaskedCallOutcome, MaskingOpen, MaskingSession, NewMaskingSession,
};
use serde_json::json;

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = mangwale_store::test_support::TestDb::sqlite().await.expect("sqlite test database");
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = mangwale_store::test_support::TestDb::postgres().await.expect("postgres test database") else {
                        eprintln!("TEST_DATABASE_URL is not set; PostgreSQL conformance skipped");
                        return;
                    };
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

#[path = "conformance/campaign_outcomes.rs"]
mod campaign_outcomes;
#[path = "conformance/campaign_sender.rs"]
mod campaign_sender;
#[path = "conformance/campaign_support.rs"]
mod campaign_support;
#[path = "conformance/campaigns.rs"]
mod campaigns;
#[path = "conformance/ops.rs"]
mod ops;
#[path = "conformance/suppressions.rs"]
mod suppressions;

conformance!(
    enqueue_is_idempotent_by_key,
    claim_takes_only_due_jobs_of_known_kinds,
    only_the_current_lease_finishes_a_job,
    a_job_whose_worker_died_runs_again,
    a_lease_that_expires_on_the_last_attempt_ends_dead,
    a_failing_job_backs_off_and_ends_dead,
    a_permanent_failure_is_dead_at_once,
    a_cancelled_job_never_runs,
    cancelling_a_group_cancels_only_its_pending_jobs,
    a_running_job_cancelled_loses_its_lease,
    two_workers_never_run_the_same_job,
    release_gives_a_job_back_without_an_attempt,
    queue_stats_count_pending_overdue_and_dead,
    next_due_and_prune,
    timeline_is_returned_in_time_order,
    settings_keep_the_first_value,
    enqueue_wakes_a_sleeping_worker,
    shutdown_releases_the_leases_of_unfinished_jobs,
    inbound_events_are_recorded_once,
    unkeyed_follow_ups_are_enqueued_once_per_event,
    the_inbound_writer_groups_concurrent_events,
    call_attempts_move_forward_and_never_leave_a_final_state,
    exotel_requests_are_logged,
    a_group_runs_in_order_when_its_jobs_wait_for_earlier_ones,
    a_ladder_starts_once_with_its_steps_jobs_and_event,
    a_stop_cancels_pending_steps_and_jobs_and_beats_a_later_claim,
    a_step_is_claimed_once_and_a_retry_claims_it_again,
    the_last_final_step_exhausts_the_ladder,
    wrong_ivr_keys_are_counted_per_call_and_menu,
    comms_stats_count_ladders_calls_and_steps,
    the_live_feed_pages_through_every_event,
    idempotency_keys_hold_one_answer_until_they_expire,
    concurrent_claims_of_one_idempotency_key_let_one_through,
    inbound_calls_keep_who_called_and_whether_they_are_on_the_line,
    a_panicking_handler_is_retried_while_other_jobs_keep_flowing,
    dead_jobs_are_counted_by_kind_and_observed,
    a_job_whose_lease_expires_on_its_last_attempt_is_observed_dead_once,
    writer_threads_that_die_are_replaced_and_later_writes_succeed,
    calls_in_progress_are_found_by_the_numbers_they_dial,
    missed_calls_are_recorded_once_and_one_callback_is_open_per_number,
    a_callback_try_is_claimed_linked_and_finished_once,
    missed_call_stats_count_calls_and_callbacks,
    masking_allocation_keeps_a_phone_off_a_number_it_already_holds,
    masking_sessions_reopen_once_end_and_expire,
    concurrent_masking_allocations_never_clash,
    masked_calls_are_kept_and_counted,
    voice_sessions_save_by_compare_and_swap_and_offer_a_dropped_cart_once,
);

fn t0() -> DateTime<Utc> {
    ManualClock::fixed().now()
}

fn kinds(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn at(offset_secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(offset_secs)
}

/// Records every job it runs; fails while `failures` is above zero.
#[derive(Default)]
struct Recorder {
    ran: Mutex<Vec<(String, i64)>>,
    transient_failures: Mutex<u32>,
    permanent: bool,
}

#[async_trait]
impl JobHandler for Recorder {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        self.ran.lock().unwrap().push((job.key.clone().unwrap_or_default(), job.id));
        if self.permanent {
            return Err(JobError::Permanent("bad payload".into()));
        }
        let mut failures = self.transient_failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err(JobError::Transient("provider returned 503".into()));
        }
        Ok(())
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { base: secs(2), max: secs(30), jitter: false }
    }
}

fn worker(db: &TestDb, clock: Arc<ManualClock>, handler: Arc<Recorder>) -> Worker {
    let mut w = Worker::new(db.store.clone(), clock, WorkerConfig { lease: secs(30), ..WorkerConfig::default() });
    w.register("test", handler);
    w
}

async fn enqueue_is_idempotent_by_key(db: &TestDb) {
    let s = &db.store;
    let first = s.enqueue(NewJob::new("test", "k1", json!({"n": 1}), t0())).await.unwrap();
    let second = s.enqueue(NewJob::new("test", "k1", json!({"n": 2}), at(60))).await.unwrap();
    assert!(matches!(first, Enqueued::Created(_)));
    assert_eq!(second, Enqueued::Existing(first.id()));
    let job = s.job_by_key("k1").await.unwrap().unwrap();
    assert_eq!(job.payload, json!({"n": 1}), "the second enqueue changed nothing");
    assert_eq!(job.run_at, t0());
    assert_eq!(job.state, JobState::Pending);
    assert!(s.job_by_key("missing").await.unwrap().is_none());
}

async fn claim_takes_only_due_jobs_of_known_kinds(db: &TestDb) {
    let s = &db.store;
    s.enqueue(NewJob::new("test", "due", json!({}), t0())).await.unwrap();
    s.enqueue(NewJob::new("test", "later", json!({}), at(10))).await.unwrap();
    s.enqueue(NewJob::new("other", "other-kind", json!({}), t0())).await.unwrap();
    let claimed = s.claim(&kinds(&["test"]), "w1", 10, secs(30), t0()).await.unwrap();
    assert_eq!(claimed.iter().map(|j| j.key.as_deref().unwrap_or_default()).collect::<Vec<_>>(), vec!["due"]);
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(claimed[0].state, JobState::Running);
    assert!(
        s.claim(&kinds(&["test"]), "w1", 10, secs(30), t0()).await.unwrap().is_empty(),
        "a leased job is not claimed twice"
    );
    let later = s.claim(&kinds(&["test"]), "w1", 10, secs(30), at(10)).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].key.as_deref(), Some("later"));
}

async fn only_the_current_lease_finishes_a_job(db: &TestDb) {
    let s = &db.store;
    s.enqueue(NewJob::new("test", "k", json!({}), t0())).await.unwrap();
    let job = s.claim(&kinds(&["test"]), "w1", 1, secs(30), t0()).await.unwrap().remove(0);
    let mut stale = job.lease();
    stale.token -= 1;
    assert!(!s.complete(stale, t0()).await.unwrap());
    assert_eq!(s.fail(stale, "x", None, t0()).await.unwrap(), FailOutcome::LeaseLost);
    assert!(s.complete(job.lease(), t0()).await.unwrap());
    assert!(!s.complete(job.lease(), t0()).await.unwrap(), "completing twice is refused");
    assert_eq!(s.job_by_key("k").await.unwrap().unwrap().state, JobState::Done);
}

async fn a_job_whose_worker_died_runs_again(db: &TestDb) {
    let s = &db.store;
    s.enqueue(NewJob::new("test", "k", json!({}), t0())).await.unwrap();
    // The first worker claims and then dies: it never completes.
    let first = s.claim(&kinds(&["test"]), "dead-worker", 1, secs(30), t0()).await.unwrap().remove(0);
    assert!(s.claim(&kinds(&["test"]), "w2", 1, secs(30), at(29)).await.unwrap().is_empty());
    let again = s.claim(&kinds(&["test"]), "w2", 1, secs(30), at(31)).await.unwrap();
    assert_eq!(again.len(), 1, "the expired lease is reclaimed");
    assert_eq!(again[0].id, first.id);
    assert_eq!(again[0].attempts, 2);
    assert!(again[0].lease_token > first.lease_token);
    assert!(!s.complete(first.lease(), at(32)).await.unwrap(), "the dead worker's late completion is fenced off");
    assert!(s.complete(again[0].lease(), at(32)).await.unwrap());

    // And through the worker: the job runs once more after the lease expires.
    let clock = Arc::new(ManualClock::new(at(100)));
    let recorder = Arc::new(Recorder::default());
    let w = worker(db, clock.clone(), recorder.clone());
    s.enqueue(NewJob::new("test", "k2", json!({}), at(100))).await.unwrap();
    s.claim(&kinds(&["test"]), "crashed", 1, secs(30), at(100)).await.unwrap();
    assert_eq!(w.run_until_idle().await.unwrap().claimed, 0);
    clock.advance(secs(31));
    let report = w.run_until_idle().await.unwrap();
    assert_eq!(report.completed, 1);
    assert_eq!(recorder.ran.lock().unwrap().len(), 1);
}

async fn a_lease_that_expires_on_the_last_attempt_ends_dead(db: &TestDb) {
    let s = &db.store;
    s.enqueue(NewJob::new("test", "k", json!({}), t0()).max_attempts(1)).await.unwrap();
    s.claim(&kinds(&["test"]), "w1", 1, secs(30), t0()).await.unwrap();
    assert!(s.claim(&kinds(&["test"]), "w2", 1, secs(30), at(60)).await.unwrap().is_empty(), "not run again");
    let expired = s.expire_last_attempts(at(60)).await.unwrap();
    assert_eq!(expired.iter().map(|j| j.key.as_deref()).collect::<Vec<_>>(), vec![Some("k")]);
    assert!(s.expire_last_attempts(at(61)).await.unwrap().is_empty(), "once");
    let job = s.job_by_key("k").await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Dead);
    assert!(job.last_error.unwrap().contains("lease expired"));
}

async fn a_failing_job_backs_off_and_ends_dead(db: &TestDb) {
    let clock = Arc::new(ManualClock::new(t0()));
    let recorder = Arc::new(Recorder { transient_failures: Mutex::new(u32::MAX), ..Recorder::default() });
    let w = worker(db, clock.clone(), recorder.clone());
    db.store.enqueue(NewJob::new("test", "k", json!({}), t0()).max_attempts(3)).await.unwrap();

    assert_eq!(w.run_until_idle().await.unwrap().retrying, 1);
    let job = db.store.job_by_key("k").await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Pending);
    assert_eq!(job.run_at, at(2), "first retry after the base delay");
    assert_eq!(job.last_error.as_deref(), Some("provider returned 503"));

    clock.advance(secs(1));
    assert_eq!(w.run_until_idle().await.unwrap().claimed, 0, "not before its backoff");
    clock.advance(secs(1));
    assert_eq!(w.run_until_idle().await.unwrap().retrying, 1);
    assert_eq!(db.store.job_by_key("k").await.unwrap().unwrap().run_at, at(2 + 4), "the delay doubles");

    clock.advance(secs(4));
    assert_eq!(w.run_until_idle().await.unwrap().dead, 1);
    let job = db.store.job_by_key("k").await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Dead);
    assert_eq!(job.attempts, 3);
    assert_eq!(db.store.queue_stats(clock.now()).await.unwrap().dead, 1, "dead jobs are kept and counted");
    clock.advance(secs(3600));
    assert_eq!(w.run_until_idle().await.unwrap().claimed, 0, "a dead job never runs again");
    assert_eq!(recorder.ran.lock().unwrap().len(), 3);
}

async fn a_permanent_failure_is_dead_at_once(db: &TestDb) {
    let clock = Arc::new(ManualClock::new(t0()));
    let recorder = Arc::new(Recorder { permanent: true, ..Recorder::default() });
    let w = worker(db, clock, recorder);
    db.store.enqueue(NewJob::new("test", "k", json!({}), t0())).await.unwrap();
    assert_eq!(w.run_until_idle().await.unwrap().dead, 1);
    let job = db.store.job_by_key("k").await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Dead, 1));
}

async fn a_cancelled_job_never_runs(db: &TestDb) {
    let clock = Arc::new(ManualClock::new(t0()));
    let recorder = Arc::new(Recorder::default());
    let w = worker(db, clock.clone(), recorder.clone());
    db.store.enqueue(NewJob::new("test", "k", json!({}), at(5))).await.unwrap();
    assert!(db.store.cancel_key("k", t0()).await.unwrap());
    assert!(!db.store.cancel_key("k", t0()).await.unwrap(), "cancelling twice is a no-op");
    assert!(!db.store.cancel_key("unknown", t0()).await.unwrap());
    clock.advance(secs(60));
    assert_eq!(w.run_until_idle().await.unwrap().claimed, 0);
    assert!(recorder.ran.lock().unwrap().is_empty());
    assert_eq!(db.store.job_by_key("k").await.unwrap().unwrap().state, JobState::Cancelled);
    // Its key stays taken: a retried start of the same step does not revive it.
    let again = db.store.enqueue(NewJob::new("test", "k", json!({}), at(5))).await.unwrap();
    assert!(matches!(again, Enqueued::Existing(_)));
}

async fn cancelling_a_group_cancels_only_its_pending_jobs(db: &TestDb) {
    let s = &db.store;
    for step in 0..3 {
        s.enqueue(NewJob::new("test", format!("ladder-1:{step}"), json!({}), at(step * 60)).in_group("ladder-1"))
            .await
            .unwrap();
    }
    s.enqueue(NewJob::new("test", "ladder-2:0", json!({}), t0()).in_group("ladder-2")).await.unwrap();
    let first = s.claim(&kinds(&["test"]), "w", 1, secs(30), t0()).await.unwrap().remove(0);
    assert!(s.complete(first.lease(), t0()).await.unwrap());
    assert_eq!(s.cancel_group("ladder-1", t0()).await.unwrap(), 2, "the done step stays done");
    assert_eq!(s.job_by_key("ladder-1:0").await.unwrap().unwrap().state, JobState::Done);
    assert_eq!(s.job_by_key("ladder-1:2").await.unwrap().unwrap().state, JobState::Cancelled);
    assert_eq!(s.job_by_key("ladder-2:0").await.unwrap().unwrap().state, JobState::Pending);
    assert_eq!(s.cancel_group("nobody", t0()).await.unwrap(), 0);
}

async fn a_running_job_cancelled_loses_its_lease(db: &TestDb) {
    let s = &db.store;
    s.enqueue(NewJob::new("test", "k", json!({}), t0())).await.unwrap();
    let job = s.claim(&kinds(&["test"]), "w", 1, secs(30), t0()).await.unwrap().remove(0);
    assert!(s.cancel_key("k", t0()).await.unwrap());
    assert!(!s.complete(job.lease(), t0()).await.unwrap());
    assert_eq!(s.job_by_key("k").await.unwrap().unwrap().state, JobState::Cancelled);
    assert!(s.claim(&kinds(&["test"]), "w", 1, secs(30), at(3600)).await.unwrap().is_empty());
}

async fn two_workers_never_run_the_same_job(db: &TestDb) {
    const JOBS: usize = 400;
    let now = Utc::now();
    for i in 0..JOBS {
        db.store.enqueue(NewJob::new("test", format!("job-{i}"), json!({"i": i}), now)).await.unwrap();
    }
    // A second pool on the same database, as a second replica would have.
    let other = connect(&db.url, &ConnectOptions { max_connections: 4, migrate: false }).await.unwrap();
    let runs = Arc::new(Mutex::new(Vec::new()));
    struct Shared(Arc<Mutex<Vec<i64>>>);
    #[async_trait]
    impl JobHandler for Shared {
        async fn run(&self, job: &Job) -> Result<(), JobError> {
            tokio::task::yield_now().await;
            self.0.lock().unwrap().push(job.id);
            Ok(())
        }
    }
    let make = |store: Arc<dyn mangwale_store::Store>, name: &str| {
        let mut w = Worker::new(
            store,
            Arc::new(SystemClock),
            WorkerConfig { name: name.into(), batch_size: 16, ..WorkerConfig::default() },
        );
        w.register("test", Arc::new(Shared(runs.clone())));
        w
    };
    let a = make(db.store.clone(), "a");
    let b = make(other.clone(), "b");
    let (ra, rb) = tokio::join!(a.run_until_idle(), b.run_until_idle());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    other.close().await;
    let runs = runs.lock().unwrap();
    let distinct: HashSet<_> = runs.iter().copied().collect();
    assert_eq!(runs.len(), JOBS, "every job ran exactly once (a: {}, b: {})", ra.completed, rb.completed);
    assert_eq!(distinct.len(), JOBS);
    assert_eq!(ra.completed + rb.completed, JOBS);
}

async fn release_gives_a_job_back_without_an_attempt(db: &TestDb) {
    let s = &db.store;
    s.enqueue(NewJob::new("test", "k", json!({}), t0())).await.unwrap();
    let job = s.claim(&kinds(&["test"]), "w", 1, secs(30), t0()).await.unwrap().remove(0);
    assert!(s.release(job.lease(), t0()).await.unwrap());
    let again = s.claim(&kinds(&["test"]), "w", 1, secs(30), t0()).await.unwrap().remove(0);
    assert_eq!(again.attempts, 1);
    assert!(!s.release(job.lease(), t0()).await.unwrap(), "an old lease cannot release");
}

async fn queue_stats_count_pending_overdue_and_dead(db: &TestDb) {
    let s = &db.store;
    s.enqueue(NewJob::new("test", "overdue", json!({}), at(-10))).await.unwrap();
    s.enqueue(NewJob::new("test", "due-now", json!({}), t0())).await.unwrap();
    s.enqueue(NewJob::new("test", "future", json!({}), at(60))).await.unwrap();
    s.enqueue(NewJob::new("other", "dies", json!({}), at(-1)).max_attempts(1)).await.unwrap();
    let dying = s.claim(&kinds(&["other"]), "w", 1, secs(30), t0()).await.unwrap().remove(0);
    assert_eq!(s.fail(dying.lease(), "boom", Some(at(5)), t0()).await.unwrap(), FailOutcome::Dead);
    let stats = s.queue_stats(t0()).await.unwrap();
    assert_eq!((stats.pending, stats.overdue, stats.running, stats.dead), (3, 1, 0, 1));
    assert_eq!(stats.lag_ms, 10_000);
}

async fn next_due_and_prune(db: &TestDb) {
    let s = &db.store;
    assert_eq!(s.next_due(&kinds(&["test"])).await.unwrap(), None);
    s.enqueue(NewJob::new("test", "a", json!({}), at(30))).await.unwrap();
    s.enqueue(NewJob::new("test", "b", json!({}), at(10))).await.unwrap();
    s.enqueue(NewJob::new("other", "c", json!({}), at(1))).await.unwrap();
    assert_eq!(s.next_due(&kinds(&["test"])).await.unwrap(), Some(at(10)));
    let job = s.claim(&kinds(&["test"]), "w", 1, secs(30), at(10)).await.unwrap().remove(0);
    s.complete(job.lease(), at(10)).await.unwrap();
    s.cancel_key("a", at(11)).await.unwrap();
    assert_eq!(s.prune_finished(at(11)).await.unwrap(), 1, "only what finished before the cut-off");
    assert_eq!(s.prune_finished(at(12)).await.unwrap(), 1);
    assert!(s.job_by_key("b").await.unwrap().is_none());
    assert!(s.job_by_key("c").await.unwrap().is_some(), "pending jobs are never pruned");
}

async fn timeline_is_returned_in_time_order(db: &TestDb) {
    let s = &db.store;
    s.record_event(NewEvent::new("step_sent", at(60)).order("MW-1").channel("whatsapp").party("vendor:V-42"))
        .await
        .unwrap();
    s.record_event(
        NewEvent::new("ladder_started", t0())
            .order("MW-1")
            .escalation("vendor_order_MW-1")
            .detail(json!({"type": "vendor.new_order", "steps": 5})),
    )
    .await
    .unwrap();
    s.record_event(NewEvent::new("dtmf", at(60)).order("MW-1").call("c5797dcb").detail(json!({"digits": "1"})))
        .await
        .unwrap();
    s.record_event(NewEvent::new("step_sent", t0()).order("MW-2")).await.unwrap();
    let events = s.events_for_order("MW-1").await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["ladder_started", "step_sent", "dtmf"], "time order, ties in recording order");
    assert_eq!(events[0].detail, json!({"type": "vendor.new_order", "steps": 5}));
    assert_eq!(events[0].escalation_id.as_deref(), Some("vendor_order_MW-1"));
    assert_eq!(events[1].channel.as_deref(), Some("whatsapp"));
    assert_eq!(events[2].call_sid.as_deref(), Some("c5797dcb"));
    assert_eq!(events[0].at, t0());
    assert!(s.events_for_order("MW-404").await.unwrap().is_empty());
}

async fn settings_keep_the_first_value(db: &TestDb) {
    let s = &db.store;
    assert_eq!(s.setting_get_or_insert("dev_api_key", "first").await.unwrap(), "first");
    assert_eq!(s.setting_get_or_insert("dev_api_key", "second").await.unwrap(), "first");
}

async fn enqueue_wakes_a_sleeping_worker(db: &TestDb) {
    let recorder = Arc::new(Recorder::default());
    let mut w = Worker::new(
        db.store.clone(),
        Arc::new(SystemClock),
        // A poll interval far longer than the test: only the wake-up can make
        // the job run in time.
        WorkerConfig { idle_poll: secs(3600), ..WorkerConfig::default() },
    );
    w.register("test", recorder.clone());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let w = Arc::new(w);
    let running = tokio::spawn({
        let (w, shutdown) = (w.clone(), shutdown.clone());
        async move { w.run(shutdown).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    db.store.enqueue(NewJob::new("test", "wake", json!({}), Utc::now())).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while recorder.ran.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the worker was not woken");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    running.await.unwrap();
}

async fn shutdown_releases_the_leases_of_unfinished_jobs(db: &TestDb) {
    struct Stuck;
    #[async_trait]
    impl JobHandler for Stuck {
        async fn run(&self, _job: &Job) -> Result<(), JobError> {
            std::future::pending::<()>().await;
            Ok(())
        }
    }
    let mut w = Worker::new(
        db.store.clone(),
        Arc::new(SystemClock),
        WorkerConfig { shutdown_grace: Duration::from_millis(50), ..WorkerConfig::default() },
    );
    w.register("test", Arc::new(Stuck));
    db.store.enqueue(NewJob::new("test", "stuck", json!({}), Utc::now())).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let w = Arc::new(w);
    let running = tokio::spawn({
        let (w, shutdown) = (w.clone(), shutdown.clone());
        async move { w.run(shutdown).await }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while db.store.job_by_key("stuck").await.unwrap().unwrap().state != JobState::Running {
        assert!(tokio::time::Instant::now() < deadline, "the job was never claimed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), running).await.expect("the worker stops").unwrap();
    let job = db.store.job_by_key("stuck").await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Pending, "released for another worker");
    assert_eq!(job.attempts, 0, "a released claim does not count as an attempt");
}

/// Replicas on PostgreSQL wake each other through LISTEN/NOTIFY: a job
/// enqueued through one pool wakes a worker sleeping on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_enqueue_on_another_replica_wakes_a_sleeping_worker() {
    let Some(db) = TestDb::postgres().await.expect("postgres test database") else {
        eprintln!("TEST_DATABASE_URL is not set; PostgreSQL wake-up test skipped");
        return;
    };
    let replica = connect(&db.url, &ConnectOptions { max_connections: 2, migrate: false }).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let mut w = Worker::new(
        db.store.clone(),
        Arc::new(SystemClock),
        WorkerConfig { idle_poll: secs(3600), ..WorkerConfig::default() },
    );
    w.register("test", recorder.clone());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let w = Arc::new(w);
    let running = tokio::spawn({
        let (w, shutdown) = (w.clone(), shutdown.clone());
        async move { w.run(shutdown).await }
    });
    // Let the worker reach its long sleep and the listener subscribe.
    tokio::time::sleep(Duration::from_millis(300)).await;
    replica.enqueue(NewJob::new("test", "from-replica", json!({}), Utc::now())).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while recorder.ran.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the notification did not wake the worker");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    running.await.unwrap();
    replica.close().await;
    db.cleanup().await;
}

fn callback(key: &str, order: &str) -> InboundEvent {
    InboundEvent {
        dedup_key: key.to_string(),
        source: "exotel.call_status".to_string(),
        event: NewEvent::new("call_status", t0()).order(order).detail(json!({"key": key})),
        jobs: vec![NewJob::new("test", format!("follow-up:{key}"), json!({}), t0())],
    }
}

async fn inbound_events_are_recorded_once(db: &TestDb) {
    let s = &db.store;
    let batch = [callback("a", "MW-1"), callback("b", "MW-1"), callback("a", "MW-1")];
    let outcomes = s.record_inbound(&batch, t0()).await.unwrap();
    assert_eq!(outcomes, vec![InboundOutcome::Recorded, InboundOutcome::Recorded, InboundOutcome::Duplicate]);
    let again = s.record_inbound(&[callback("b", "MW-1"), callback("c", "MW-1")], t0()).await.unwrap();
    assert_eq!(again, vec![InboundOutcome::Duplicate, InboundOutcome::Recorded]);
    let events = s.events_for_order("MW-1").await.unwrap();
    assert_eq!(events.len(), 3, "one timeline entry per distinct event");
    assert_eq!(events[0].detail, json!({"key": "a"}));
    assert_eq!((events[0].kind.as_str(), events[0].at), ("call_status", t0()));
    let job = s.job_by_key("follow-up:a").await.unwrap().unwrap();
    assert_eq!((job.kind.as_str(), job.payload.clone(), job.max_attempts, job.run_at), ("test", json!({}), 10, t0()));
    assert!(s.job_by_key("follow-up:a").await.unwrap().is_some());
    assert!(s.job_by_key("follow-up:c").await.unwrap().is_some());
    assert_eq!(s.queue_stats(t0()).await.unwrap().pending, 3, "follow-ups only for new events");
    // Keys are forgotten once old enough; then the same event is new again.
    assert_eq!(s.prune_inbound(t0()).await.unwrap(), 0, "only keys received before the cut-off");
    assert_eq!(s.prune_inbound(at(1)).await.unwrap(), 3);
    let later = s.record_inbound(&[callback("a", "MW-1")], at(2)).await.unwrap();
    assert_eq!(later, vec![InboundOutcome::Recorded]);
}

/// A follow-up without an idempotency key of its own is guarded by the
/// event's key: one job per distinct event, and it runs like any other.
async fn unkeyed_follow_ups_are_enqueued_once_per_event(db: &TestDb) {
    let s = &db.store;
    let event = |key: &str| InboundEvent {
        jobs: vec![NewJob::follow_up("test", json!({"event": key}), t0())],
        ..callback(key, "MW-2")
    };
    let outcomes = s.record_inbound(&[event("x"), event("x"), event("y")], t0()).await.unwrap();
    assert_eq!(outcomes, vec![InboundOutcome::Recorded, InboundOutcome::Duplicate, InboundOutcome::Recorded]);
    s.record_inbound(&[event("y")], t0()).await.unwrap();
    let claimed = s.claim(&["test".to_string()], "w", 10, Duration::from_secs(30), t0()).await.unwrap();
    let mut payloads: Vec<_> = claimed.iter().map(|j| (j.key.clone(), j.payload["event"].clone())).collect();
    payloads.sort_by_key(|(_, event)| event.to_string());
    assert_eq!(payloads, vec![(None, json!("x")), (None, json!("y"))]);
}

async fn the_inbound_writer_groups_concurrent_events(db: &TestDb) {
    let writer = InboundWriter::spawn(db.store.clone(), 2, 64);
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let writer = writer.clone();
            // Every event arrives twice, as Exotel's retries would.
            tokio::spawn(async move { writer.record(callback(&format!("k{}", i / 2), "MW-9")).await.unwrap() })
        })
        .collect();
    let mut recorded = 0;
    for task in tasks {
        if task.await.unwrap() == InboundOutcome::Recorded {
            recorded += 1;
        }
    }
    assert_eq!(recorded, 150);
    assert_eq!(db.store.events_for_order("MW-9").await.unwrap().len(), 150);
}

async fn call_attempts_move_forward_and_never_leave_a_final_state(db: &TestDb) {
    let s = &db.store;
    let call = NewCall {
        id: "att-1".into(),
        purpose: "vendor_ivr".into(),
        order_id: Some("MW-1".into()),
        escalation_id: Some("vendor_order_MW-1".into()),
        party: Some("vendor:V-42".into()),
        to_masked: "+9198xxxxx210".into(),
        to: None,
        bridge_to: None,
    };
    let reconcile = NewJob::new("exotel.reconcile_call", "reconcile:att-1", json!({"attempt": "att-1"}), at(600));
    s.create_call(call, Some(reconcile), t0()).await.unwrap();
    assert_eq!(s.call_by_id("att-1").await.unwrap().unwrap().state, CallState::Requested);
    let job = s.job_by_key("reconcile:att-1").await.unwrap().expect("the reconcile job, written with the attempt");
    assert_eq!((job.state, job.payload["attempt"].as_str()), (JobState::Pending, Some("att-1")));
    // A second attempt with the same id fails whole: no second job either.
    let again = NewCall {
        id: "att-1".into(),
        purpose: "ring".into(),
        order_id: None,
        escalation_id: None,
        party: None,
        to_masked: "x".into(),
        to: None,
        bridge_to: None,
    };
    let second = NewJob::new("exotel.reconcile_call", "reconcile:att-1-again", json!({}), at(600));
    assert!(s.create_call(again, Some(second), t0()).await.is_err());
    assert!(s.job_by_key("reconcile:att-1-again").await.unwrap().is_none(), "nothing half-written");
    assert_eq!(s.unresolved_calls(at(1), 10).await.unwrap().len(), 1);
    let unknown =
        s.update_call("att-1", CallState::Unknown, None, Some("connect timed out"), at(1)).await.unwrap().unwrap();
    assert_eq!((unknown.state, unknown.detail.as_deref()), (CallState::Unknown, Some("connect timed out")));
    // The terminal callback reconciles it and tells us its CallSid.
    let done = s.update_call("att-1", CallState::Completed, Some("sid-1"), None, at(60)).await.unwrap().unwrap();
    assert_eq!((done.state, done.call_sid.as_deref()), (CallState::Completed, Some("sid-1")));
    let late = s.update_call("att-1", CallState::InProgress, Some("sid-other"), None, at(61)).await.unwrap().unwrap();
    assert_eq!(late.state, CallState::Completed, "a late answered callback changes nothing");
    assert_eq!(late.call_sid.as_deref(), Some("sid-1"));
    assert_eq!(s.call_by_sid("sid-1").await.unwrap().unwrap().id, "att-1");
    // A callback finds its attempt by the custom field first, then by CallSid.
    let by_field = s.call_for_callback(Some("att-1"), "sid-unknown").await.unwrap().unwrap();
    assert_eq!(by_field.id, "att-1");
    assert_eq!(s.call_for_callback(Some("no-such-attempt"), "sid-1").await.unwrap().unwrap().id, "att-1");
    assert_eq!(s.call_for_callback(None, "sid-1").await.unwrap().unwrap().id, "att-1");
    assert!(s.call_for_callback(Some("no-such-attempt"), "sid-unknown").await.unwrap().is_none());
    assert!(s.call_for_callback(None, "sid-unknown").await.unwrap().is_none());
    assert!(s.update_call("nope", CallState::Placed, None, None, t0()).await.unwrap().is_none());
    assert!(s.unresolved_calls(at(3600), 10).await.unwrap().is_empty());
}

async fn exotel_requests_are_logged(db: &TestDb) {
    let s = &db.store;
    let entry = ExotelRequestLog {
        endpoint: "calls.connect".into(),
        method: "POST".into(),
        attempt: 1,
        http_status: Some(429),
        outcome: "transient".into(),
        code: None,
        message: Some("Too many requests".into()),
        sid: None,
        custom_field: Some("c:att-1".into()),
        duration_ms: 12,
        at: t0(),
    };
    s.log_exotel_request(&entry).await.unwrap();
    s.log_exotel_request(&ExotelRequestLog {
        attempt: 2,
        http_status: Some(200),
        outcome: "ok".into(),
        sid: Some("sid".into()),
        at: at(1),
        ..entry.clone()
    })
    .await
    .unwrap();
    let logged = s.exotel_requests_since(t0(), 10).await.unwrap();
    assert_eq!(logged.len(), 2);
    assert_eq!(logged[0], entry);
    assert_eq!(logged[1].sid.as_deref(), Some("sid"));
}

/// Runs a job only when no earlier job of its group is unfinished; otherwise
/// defers it (without using an attempt) until one second later. The first
/// job of the group fails once.
struct InOrder {
    store: Arc<dyn mangwale_store::Store>,
    clock: Arc<ManualClock>,
    ran: Mutex<Vec<String>>,
    fail_first: Mutex<bool>,
}

#[async_trait]
impl JobHandler for InOrder {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let group = job.group.as_deref().unwrap_or_default();
        if self.store.earlier_unfinished(group, job.id).await.map_err(|e| JobError::Transient(e.to_string()))?.is_some()
        {
            return Err(JobError::Defer(self.clock.now() + chrono::Duration::seconds(1)));
        }
        let key = job.key.clone().unwrap_or_default();
        if key == "o1-a" && std::mem::take(&mut *self.fail_first.lock().unwrap()) {
            return Err(JobError::Transient("upstream down".into()));
        }
        self.ran.lock().unwrap().push(key);
        Ok(())
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { base: secs(5), max: secs(5), jitter: false }
    }
}

async fn a_group_runs_in_order_when_its_jobs_wait_for_earlier_ones(db: &TestDb) {
    let s = &db.store;
    let clock = Arc::new(ManualClock::fixed());
    for key in ["o1-a", "o1-b", "o1-c"] {
        s.enqueue(NewJob::new("ordered", key, json!({}), t0()).in_group("order:1")).await.unwrap();
    }
    s.enqueue(NewJob::new("ordered", "o2-a", json!({}), t0()).in_group("order:2")).await.unwrap();
    let handler = Arc::new(InOrder {
        store: s.clone(),
        clock: clock.clone(),
        ran: Mutex::new(Vec::new()),
        fail_first: Mutex::new(true),
    });
    let mut w = Worker::new(s.clone(), clock.clone(), WorkerConfig { lease: secs(30), ..WorkerConfig::default() });
    w.register("ordered", handler.clone());

    let report = w.run_until_idle().await.unwrap();
    assert_eq!(handler.ran.lock().unwrap().clone(), vec!["o2-a"], "order 1 waits for its failed first job");
    assert_eq!((report.retrying, report.deferred), (1, 2));
    let waiting = s.job_by_key("o1-b").await.unwrap().unwrap();
    assert_eq!((waiting.state, waiting.attempts), (JobState::Pending, 0), "deferring used no attempt");

    // Past the first job's retry, the group drains in order (a job claimed in
    // the same batch as its predecessor waits one more second).
    for _ in 0..8 {
        clock.advance(secs(1));
        w.run_until_idle().await.unwrap();
    }
    assert_eq!(handler.ran.lock().unwrap().clone(), vec!["o2-a", "o1-a", "o1-b", "o1-c"]);
    assert!(s.earlier_unfinished("order:1", i64::MAX).await.unwrap().is_none());
}

fn new_ladder(id: &str, order: &str, steps: &[(&str, i64)]) -> (mangwale_store::NewLadder, Vec<NewJob>) {
    let ladder = mangwale_store::NewLadder {
        escalation_id: id.to_string(),
        kind: mangwale_core::ladder::LadderKind::VendorNewOrder,
        order_id: Some(order.to_string()),
        party: "vendor:V-42".into(),
        phone: Some(mangwale_core::E164::parse("+919876543210").unwrap()),
        language: mangwale_core::Language::Hi,
        context: mangwale_core::ladder::LadderContext {
            amount: Some(mangwale_core::ladder::Money::from_paise(32_500)),
            items: Some("Poha x1".into()),
            ..Default::default()
        },
        definition: mangwale_core::ladder::LadderBook::defaults()
            .get(mangwale_core::ladder::LadderKind::VendorNewOrder)
            .clone(),
        steps: steps
            .iter()
            .enumerate()
            .map(|(i, (channel, after))| mangwale_store::NewLadderStep {
                index: i as u32,
                channel: mangwale_core::ladder::Channel::parse(channel).unwrap(),
                due_at: at(*after),
            })
            .collect(),
        started_at: t0(),
    };
    let jobs = steps
        .iter()
        .enumerate()
        .map(|(i, (_, after))| {
            NewJob::new("ladder.step", format!("ladder:{id}:{i}"), json!({"escalation": id, "step": i}), at(*after))
                .in_group(format!("ladder:{id}"))
        })
        .collect();
    (ladder, jobs)
}

fn step_result(state: mangwale_core::ladder::StepState, provider_id: Option<&str>) -> mangwale_store::StepResult {
    mangwale_store::StepResult { state, provider_id: provider_id.map(str::to_string), detail: None }
}

async fn a_ladder_starts_once_with_its_steps_jobs_and_event(db: &TestDb) {
    use mangwale_core::ladder::{LadderState, StepState};
    use mangwale_store::LadderStart;
    let (ladder, jobs) = new_ladder("vendor_order_MW-1", "MW-1", &[("app_push", 0), ("whatsapp", 60), ("ivr", 180)]);
    let started = db
        .store
        .start_ladder(ladder.clone(), jobs.clone(), NewEvent::new("ladder.started", t0()).order("MW-1"))
        .await
        .unwrap();
    let LadderStart::Started(started) = started else { panic!("{started:?}") };
    assert_eq!(started.state, LadderState::Active);
    assert_eq!(started.phone.as_ref().map(|p| p.as_str()), Some("+919876543210"));
    assert_eq!(started.context.amount.map(|a| a.paise()), Some(32_500));
    assert_eq!(started.definition.steps.len(), 5, "the definition as it started");
    let steps: Vec<(u32, &str, StepState)> =
        started.steps.iter().map(|s| (s.index, s.channel.name(), s.state)).collect();
    assert_eq!(
        steps,
        [(0, "app_push", StepState::Pending), (1, "whatsapp", StepState::Pending), (2, "ivr", StepState::Pending)]
    );
    assert_eq!(started.steps[2].due_at, at(180));
    let job = db.store.job_by_key("ladder:vendor_order_MW-1:2").await.unwrap().unwrap();
    assert_eq!((job.run_at, job.group.as_deref()), (at(180), Some("ladder:vendor_order_MW-1")));

    let again = db.store.start_ladder(ladder, jobs, NewEvent::new("ladder.started", t0()).order("MW-1")).await.unwrap();
    assert_eq!(again, LadderStart::Existing(started.clone()), "a duplicate start returns the running ladder");
    assert_eq!(db.store.events_for_order("MW-1").await.unwrap().len(), 1, "and writes nothing");
    assert_eq!(db.store.ladder("vendor_order_MW-1").await.unwrap(), Some(started));
    assert_eq!(db.store.ladders_for_order("MW-1").await.unwrap().len(), 1);
    assert_eq!(db.store.ladder("nope").await.unwrap(), None);
}

async fn a_stop_cancels_pending_steps_and_jobs_and_beats_a_later_claim(db: &TestDb) {
    use mangwale_core::ladder::{LadderState, StepState};
    use mangwale_store::{LadderStop, StepClaim};
    let id = "vendor_order_MW-2";
    let (ladder, jobs) = new_ladder(id, "MW-2", &[("app_push", 0), ("whatsapp", 60)]);
    db.store.start_ladder(ladder, jobs, NewEvent::new("ladder.started", t0()).order("MW-2")).await.unwrap();
    let StepClaim::Claimed(_) = db.store.claim_step(id, 0, t0()).await.unwrap() else { panic!("step 0") };
    db.store
        .finish_step(
            id,
            0,
            step_result(StepState::Sent, Some("push-1")),
            NewEvent::new("ladder.step_sent", t0()).order("MW-2"),
            vec![],
            Default::default(),
            t0(),
        )
        .await
        .unwrap();
    let stop = NewEvent::new("ladder.stopped", at(30)).order("MW-2");
    let stopped = db
        .store
        .stop_ladder(
            id,
            mangwale_core::ladder::StopAction::Accept,
            "vendor:V-42",
            &format!("ladder:{id}"),
            stop.clone(),
            vec![NewJob::new("jupiter.outbox", "answer:MW-2".to_string(), json!({}), at(30))],
            at(30),
        )
        .await
        .unwrap();
    let LadderStop::Stopped(stopped) = stopped else { panic!("{stopped:?}") };
    assert_eq!(
        (stopped.state, stopped.stop_action.map(|a| a.name()), stopped.stop_actor.as_deref()),
        (LadderState::Stopped, Some("accept"), Some("vendor:V-42"))
    );
    assert_eq!(stopped.finished_at, Some(at(30)));
    assert_eq!(stopped.steps[0].state, StepState::Sent, "a sent step stays sent");
    assert_eq!(stopped.steps[0].provider_id.as_deref(), Some("push-1"));
    assert_eq!(stopped.steps[1].state, StepState::Canceled);
    assert_eq!(db.store.job_by_key(&format!("ladder:{id}:1")).await.unwrap().unwrap().state, JobState::Cancelled);
    assert!(db.store.job_by_key("answer:MW-2").await.unwrap().is_some(), "the answer's jobs commit with the stop");
    assert!(
        matches!(db.store.claim_step(id, 1, at(60)).await.unwrap(), StepClaim::LadderFinished(_)),
        "no step after a stop"
    );
    assert!(matches!(
        db.store.stop_ladder(id, mangwale_core::ladder::StopAction::Reject, "x", "g", stop.clone(), vec![NewJob::new("jupiter.outbox", "answer:again".to_string(), json!({}), at(40))], at(40)).await.unwrap(),
        LadderStop::AlreadyFinished(l) if l.stop_action.map(|a| a.name()) == Some("accept")
    ));
    assert!(db.store.job_by_key("answer:again").await.unwrap().is_none(), "a second answer sets nothing in motion");
    assert_eq!(
        db.store
            .stop_ladder("unknown", mangwale_core::ladder::StopAction::Accept, "x", "g", stop, vec![], at(40))
            .await
            .unwrap(),
        LadderStop::NotFound
    );
    let kinds: Vec<String> = db.store.events_for_order("MW-2").await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["ladder.started", "ladder.step_sent", "ladder.stopped"]);
}

async fn a_step_is_claimed_once_and_a_retry_claims_it_again(db: &TestDb) {
    use mangwale_core::ladder::StepState;
    use mangwale_store::StepClaim;
    let id = "rider_assign_MW-3";
    let (ladder, jobs) = new_ladder(id, "MW-3", &[("whatsapp", 0), ("ring", 30)]);
    db.store.start_ladder(ladder, jobs, NewEvent::new("ladder.started", t0())).await.unwrap();
    let StepClaim::Claimed(claimed) = db.store.claim_step(id, 0, t0()).await.unwrap() else { panic!() };
    assert_eq!((claimed.steps[0].state, claimed.steps[0].attempts), (StepState::Sending, 1));
    assert_eq!(
        db.store.claim_step(id, 0, t0()).await.unwrap(),
        StepClaim::NotPending(StepState::Sending),
        "never twice"
    );
    let retry = mangwale_store::StepResult { state: StepState::Pending, provider_id: None, detail: Some("503".into()) };
    db.store
        .finish_step(id, 0, retry, NewEvent::new("ladder.step_failed", t0()), vec![], Default::default(), t0())
        .await
        .unwrap();
    let StepClaim::Claimed(again) = db.store.claim_step(id, 0, at(5)).await.unwrap() else { panic!() };
    assert_eq!(again.steps[0].attempts, 2);
    assert_eq!(db.store.claim_step(id, 9, t0()).await.unwrap(), StepClaim::NotFound);
    assert_eq!(db.store.claim_step("nope", 0, t0()).await.unwrap(), StepClaim::NotFound);
}

async fn the_last_final_step_exhausts_the_ladder(db: &TestDb) {
    use mangwale_core::ladder::{LadderState, StepState};
    let id = "rider_assign_MW-4";
    let (ladder, jobs) = new_ladder(id, "MW-4", &[("whatsapp", 0), ("ivr", 30)]);
    db.store.start_ladder(ladder, jobs, NewEvent::new("ladder.started", t0()).order("MW-4")).await.unwrap();
    let exhausted = || mangwale_store::OnExhausted {
        event: Some(NewEvent::new("ladder.exhausted", at(30)).order("MW-4")),
        jobs: vec![NewJob::new("jupiter.outbox", "exhausted:MW-4".to_string(), json!({}), at(30))],
    };
    db.store.claim_step(id, 0, t0()).await.unwrap();
    let after = db
        .store
        .finish_step(
            id,
            0,
            step_result(StepState::Failed, None),
            NewEvent::new("ladder.step_failed", t0()).order("MW-4"),
            vec![],
            exhausted(),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(after, Some(LadderState::Active));
    db.store.claim_step(id, 1, at(30)).await.unwrap();
    let after = db
        .store
        .finish_step(
            id,
            1,
            step_result(StepState::Sent, Some("call-1")),
            NewEvent::new("ladder.step_sent", at(30)).order("MW-4"),
            vec![],
            exhausted(),
            at(30),
        )
        .await
        .unwrap();
    assert_eq!(after, Some(LadderState::Exhausted));
    let after = db.store.ladder(id).await.unwrap().unwrap();
    assert_eq!((after.state, after.finished_at), (LadderState::Exhausted, Some(at(30))));
    let missing = db
        .store
        .finish_step("nope", 0, step_result(StepState::Sent, None), NewEvent::new("x", t0()), vec![], exhausted(), t0())
        .await
        .unwrap();
    assert_eq!(missing, None);
    assert!(db.store.job_by_key("exhausted:MW-4").await.unwrap().is_some());
    let kinds: Vec<String> = db.store.events_for_order("MW-4").await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds.last().map(String::as_str), Some("ladder.exhausted"));
}

async fn wrong_ivr_keys_are_counted_per_call_and_menu(db: &TestDb) {
    assert_eq!(db.store.ivr_wrong_keys("CA1", "vendor_new_order").await.unwrap(), 0);
    assert_eq!(db.store.ivr_invalid_key("CA1", "vendor_new_order", t0()).await.unwrap(), 1);
    assert_eq!(db.store.ivr_invalid_key("CA1", "vendor_new_order", t0()).await.unwrap(), 2);
    assert_eq!(db.store.ivr_invalid_key("CA1", "vendor_prep_time", t0()).await.unwrap(), 1);
    assert_eq!(db.store.ivr_invalid_key("CA2", "vendor_new_order", t0()).await.unwrap(), 1);
    assert_eq!(db.store.ivr_invalid_key("CA1", "vendor_new_order", t0()).await.unwrap(), 3);
    assert_eq!(db.store.ivr_wrong_keys("CA1", "vendor_new_order").await.unwrap(), 3);
    assert_eq!(db.store.ivr_wrong_keys("CA2", "vendor_prep_time").await.unwrap(), 0);
}

async fn comms_stats_count_ladders_calls_and_steps(db: &TestDb) {
    use mangwale_core::ladder::StepState;
    use mangwale_core::ladder::StopAction;
    for (n, action) in [(1, Some(StopAction::Accept)), (2, Some(StopAction::Reject)), (3, None)] {
        let id = format!("vendor_order_S-{n}");
        let (ladder, jobs) = new_ladder(&id, &format!("S-{n}"), &[("app_push", 0)]);
        db.store.start_ladder(ladder, jobs, NewEvent::new("ladder.started", t0())).await.unwrap();
        db.store.claim_step(&id, 0, t0()).await.unwrap();
        if let Some(action) = action {
            db.store
                .stop_ladder(
                    &id,
                    action,
                    "vendor:V-42",
                    &format!("ladder:{id}"),
                    NewEvent::new("ladder.stopped", at(40)),
                    vec![],
                    at(40),
                )
                .await
                .unwrap();
        }
        db.store
            .finish_step(
                &id,
                0,
                step_result(StepState::Sent, Some("p")),
                NewEvent::new("ladder.step_sent", t0()),
                vec![],
                Default::default(),
                at(1),
            )
            .await
            .unwrap();
    }
    db.store
        .create_call(
            NewCall {
                id: "c1".into(),
                purpose: "ivr".into(),
                order_id: None,
                escalation_id: None,
                party: None,
                to_masked: "+9198xxxxx210".into(),
                to: None,
                bridge_to: None,
            },
            None,
            t0(),
        )
        .await
        .unwrap();
    db.store.update_call("c1", CallState::Completed, Some("sid1"), None, t0()).await.unwrap();
    db.store
        .create_call(
            NewCall {
                id: "c2".into(),
                purpose: "admin_bridge".into(),
                order_id: None,
                escalation_id: None,
                party: None,
                to_masked: "x".into(),
                to: None,
                bridge_to: None,
            },
            None,
            t0(),
        )
        .await
        .unwrap();
    let stats = db.store.comms_stats(at(-10), at(100)).await.unwrap();
    assert_eq!((stats.ladders, stats.vendors_notified, stats.accepted, stats.rejected), (3, 3, 1, 1));
    assert_eq!(stats.no_response, 1, "the third ran out: its only step was final");
    assert_eq!(stats.avg_response_secs, Some(40.0));
    assert_eq!((stats.calls, stats.calls_answered, stats.ivr_calls, stats.bridges), (2, 1, 1, 1));
    assert_eq!(stats.steps_sent.get("app_push"), Some(&3));
    let empty = db.store.comms_stats(at(1000), at(2000)).await.unwrap();
    assert_eq!((empty.ladders, empty.calls, empty.avg_response_secs), (0, 0, None));
}

async fn the_live_feed_pages_through_every_event(db: &TestDb) {
    for i in 0..5 {
        let mut event = NewEvent::new(format!("kind.{i}"), at(i));
        if i % 2 == 0 {
            event = event.order(format!("F-{i}"));
        }
        db.store.record_event(event).await.unwrap();
    }
    let first = db.store.events_after(0, 3).await.unwrap();
    assert_eq!(first.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["kind.0", "kind.1", "kind.2"]);
    let rest = db.store.events_after(first[2].id, 10).await.unwrap();
    assert_eq!(rest.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["kind.3", "kind.4"]);
    assert!(db.store.events_after(rest[1].id, 10).await.unwrap().is_empty());
}

fn stored(status: u16, body: &str) -> StoredResponse {
    StoredResponse { status, content_type: Some("application/json".into()), body: body.as_bytes().to_vec() }
}

async fn idempotency_keys_hold_one_answer_until_they_expire(db: &TestDb) {
    let s = &db.store;
    let scope = "POST /comms/bridge";
    let day = at(86_400);
    assert_eq!(s.idempotency_claim(scope, "k1", "fp-a", t0(), day).await.unwrap(), IdempotencyClaim::Claimed);
    // While it runs, a retry (with the same body or another) finds it running.
    let running = IdempotencyClaim::InFlight { fingerprint: "fp-a".into() };
    assert_eq!(s.idempotency_claim(scope, "k1", "fp-a", at(1), day).await.unwrap(), running);
    assert_eq!(s.idempotency_claim(scope, "k1", "fp-b", at(1), day).await.unwrap(), running);
    let answer = stored(200, r#"{"success":true,"callSid":"sid-1"}"#);
    assert!(s.idempotency_complete(scope, "k1", &answer, at(2)).await.unwrap());
    assert!(!s.idempotency_complete(scope, "k1", &stored(500, "{}"), at(3)).await.unwrap(), "answered once");
    let done = IdempotencyClaim::Completed { fingerprint: "fp-a".into(), response: answer.clone() };
    assert_eq!(s.idempotency_claim(scope, "k1", "fp-a", at(4), day).await.unwrap(), done);
    // Releasing an answered key changes nothing.
    s.idempotency_release(scope, "k1").await.unwrap();
    assert_eq!(s.idempotency_claim(scope, "k1", "fp-a", at(5), day).await.unwrap(), done);
    // Keys are per route.
    assert_eq!(
        s.idempotency_claim("POST /exotel/ivr/notify/vendor/order", "k1", "fp-a", at(5), day).await.unwrap(),
        IdempotencyClaim::Claimed
    );
    // A released key runs again.
    assert_eq!(s.idempotency_claim(scope, "k2", "fp-c", t0(), day).await.unwrap(), IdempotencyClaim::Claimed);
    s.idempotency_release(scope, "k2").await.unwrap();
    assert_eq!(s.idempotency_claim(scope, "k2", "fp-d", at(1), day).await.unwrap(), IdempotencyClaim::Claimed);
    // An empty body and binary bytes come back as they went in.
    let empty = StoredResponse { status: 204, content_type: None, body: Vec::new() };
    assert!(s.idempotency_complete(scope, "k2", &empty, at(2)).await.unwrap());
    assert_eq!(
        s.idempotency_claim(scope, "k2", "fp-d", at(3), day).await.unwrap(),
        IdempotencyClaim::Completed { fingerprint: "fp-d".into(), response: empty }
    );
    // Once expired, a key is free again, and pruning forgets it.
    assert_eq!(s.idempotency_claim(scope, "k1", "fp-z", day, at(2 * 86_400)).await.unwrap(), IdempotencyClaim::Claimed);
    assert_eq!(s.prune_idempotency(at(86_401)).await.unwrap(), 2, "k2 and the other route's k1 expired");
    assert_eq!(
        s.idempotency_claim(scope, "k1", "fp-a", at(86_402), at(3 * 86_400)).await.unwrap(),
        IdempotencyClaim::InFlight { fingerprint: "fp-z".into() }
    );
}

async fn concurrent_claims_of_one_idempotency_key_let_one_through(db: &TestDb) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            store.idempotency_claim("POST /comms/bridge", "same", "fp", at(i), at(86_400)).await.unwrap()
        }));
    }
    let mut claimed = 0;
    for task in tasks {
        match task.await.unwrap() {
            IdempotencyClaim::Claimed => claimed += 1,
            IdempotencyClaim::InFlight { fingerprint } => assert_eq!(fingerprint, "fp"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(claimed, 1, "exactly one request runs");
}

/// Panics on its first `panics` runs, then succeeds.
struct Panicky {
    panics: Mutex<u32>,
    ran: Mutex<u32>,
}

#[async_trait]
impl JobHandler for Panicky {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        *self.ran.lock().unwrap() += 1;
        let panic_now = {
            let mut panics = self.panics.lock().unwrap();
            let now = *panics > 0;
            *panics = panics.saturating_sub(1);
            now
        };
        if panic_now {
            panic!("index out of bounds: the len is 0 but the index is 3");
        }
        Ok(())
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { base: secs(2), max: secs(30), jitter: false }
    }
}

/// Remembers what a worker reported through [`JobObserver`].
#[derive(Default)]
struct Troubles(Mutex<Vec<(String, JobTrouble, String)>>);

#[async_trait]
impl JobObserver for Troubles {
    async fn job_trouble(&self, job: &Job, trouble: JobTrouble, error: &str) {
        self.0.lock().unwrap().push((job.key.clone().unwrap_or_default(), trouble, error.to_string()));
    }
}

async fn a_panicking_handler_is_retried_while_other_jobs_keep_flowing(db: &TestDb) {
    let clock = Arc::new(ManualClock::new(t0()));
    let panicky = Arc::new(Panicky { panics: Mutex::new(2), ran: Mutex::new(0) });
    let recorder = Arc::new(Recorder::default());
    let troubles = Arc::new(Troubles::default());
    let mut w =
        Worker::new(db.store.clone(), clock.clone(), WorkerConfig { lease: secs(30), ..WorkerConfig::default() });
    w.register("panicky", panicky.clone()).register("test", recorder.clone()).observe(troubles.clone());
    db.store.enqueue(NewJob::new("panicky", "p", json!({}), t0()).max_attempts(5)).await.unwrap();
    for n in 0..5 {
        db.store.enqueue(NewJob::new("test", format!("t{n}"), json!({}), t0())).await.unwrap();
    }

    // The panic is one failed attempt of its job; the batch it ran in ends
    // normally and the other jobs of the batch complete.
    let report = w.run_until_idle().await.unwrap();
    assert_eq!((report.completed, report.retrying, report.dead), (5, 1, 0), "{report:?}");
    let job = db.store.job_by_key("p").await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts, job.run_at), (JobState::Pending, 1, at(2)), "retried after its backoff");
    assert_eq!(
        job.last_error.as_deref(),
        Some("handler panicked: index out of bounds: the len is 0 but the index is 3"),
        "the panic message is the job's last error"
    );

    // Jobs enqueued later still run: the worker is alive.
    db.store.enqueue(NewJob::new("test", "later", json!({}), t0())).await.unwrap();
    assert_eq!(w.run_until_idle().await.unwrap().completed, 1);

    clock.advance(secs(2));
    assert_eq!(w.run_until_idle().await.unwrap().retrying, 1, "it panics again");
    clock.advance(secs(4));
    assert_eq!(w.run_until_idle().await.unwrap().completed, 1, "then succeeds");
    assert_eq!(db.store.job_by_key("p").await.unwrap().unwrap().state, JobState::Done);
    assert_eq!(*panicky.ran.lock().unwrap(), 3);
    assert_eq!(recorder.ran.lock().unwrap().len(), 6);
    let seen = troubles.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "each panic is reported: {seen:?}");
    assert!(seen.iter().all(|(key, trouble, error)| key == "p"
        && *trouble == JobTrouble::Panicked
        && error.contains("index out of bounds")));
}

async fn dead_jobs_are_counted_by_kind_and_observed(db: &TestDb) {
    let clock = Arc::new(ManualClock::new(t0()));
    let recorder = Arc::new(Recorder { permanent: true, ..Recorder::default() });
    let troubles = Arc::new(Troubles::default());
    let mut w =
        Worker::new(db.store.clone(), clock.clone(), WorkerConfig { lease: secs(30), ..WorkerConfig::default() });
    w.register("test", recorder).register("other", Arc::new(Recorder { permanent: true, ..Recorder::default() }));
    w.observe(troubles.clone());
    for key in ["a", "b"] {
        db.store.enqueue(NewJob::new("test", key, json!({}), t0())).await.unwrap();
    }
    db.store.enqueue(NewJob::new("other", "c", json!({}), t0())).await.unwrap();
    assert_eq!(w.run_until_idle().await.unwrap().dead, 3);
    assert_eq!(db.store.dead_by_kind(t0()).await.unwrap(), vec![("other".to_string(), 1), ("test".to_string(), 2)]);
    assert!(db.store.dead_by_kind(at(1)).await.unwrap().is_empty(), "only jobs dead since the given time");
    let mut seen: Vec<_> = troubles.0.lock().unwrap().iter().map(|(k, t, e)| (k.clone(), *t, e.clone())).collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(seen, ["a", "b", "c"].map(|k| (k.to_string(), JobTrouble::Dead, "bad payload".to_string())).to_vec());
}

async fn writer_threads_that_die_are_replaced_and_later_writes_succeed(db: &TestDb) {
    let s = &db.store;
    let writer = InboundWriter::spawn(s.clone(), 2, 64);
    assert_eq!(writer.record(callback("before", "MW-9")).await.unwrap(), InboundOutcome::Recorded);
    // SQLite's webhook and ladder writer threads panic (a no-op on
    // PostgreSQL, which has no writer threads of its own).
    s.crash_writers_for_test().await;
    // The events after the crash are committed by the new threads, through
    // the same handles.
    for n in 0..20 {
        let event = callback(&format!("after-{n}"), "MW-9");
        assert_eq!(writer.record(event).await.unwrap(), InboundOutcome::Recorded, "event {n}");
    }
    assert_eq!(s.record_inbound(&[callback("batch", "MW-9")], t0()).await.unwrap(), vec![InboundOutcome::Recorded]);
    assert!(s.ladder("missing").await.unwrap().is_none(), "the ladder writer answers again");
    assert_eq!(s.events_for_order("MW-9").await.unwrap().len(), 22);
    let components = s.components().snapshot();
    if s.backend() == mangwale_store::Backend::Sqlite {
        for name in ["sqlite-inbound", "sqlite-ladders"] {
            let state = &components[name];
            assert_eq!(state.restarts, 1, "{name}: {state:?}");
            assert!(!state.failed);
            assert!(state.last_error.as_deref().unwrap_or("").contains("crash requested by a test"), "{state:?}");
        }
    } else {
        assert!(components.is_empty());
    }
}

async fn a_job_whose_lease_expires_on_its_last_attempt_is_observed_dead_once(db: &TestDb) {
    let clock = Arc::new(ManualClock::new(t0()));
    let troubles = Arc::new(Troubles::default());
    let mut w =
        Worker::new(db.store.clone(), clock.clone(), WorkerConfig { lease: secs(30), ..WorkerConfig::default() });
    w.register("test", Arc::new(Recorder::default()));
    w.observe(troubles.clone());
    db.store.enqueue(NewJob::new("test", "k", json!({}), t0()).max_attempts(1)).await.unwrap();
    // A worker claims the job's only attempt and dies with it.
    db.store.claim(&kinds(&["test"]), "crashed", 1, secs(30), t0()).await.unwrap();
    clock.advance(secs(31));
    assert_eq!(w.run_until_idle().await.unwrap().dead, 1);
    assert_eq!(w.run_until_idle().await.unwrap().dead, 0, "reported once");
    assert_eq!(db.store.job_by_key("k").await.unwrap().unwrap().state, JobState::Dead);
    let seen: Vec<_> = troubles.0.lock().unwrap().iter().map(|(k, t, e)| (k.clone(), *t, e.clone())).collect();
    assert_eq!(seen, vec![("k".to_string(), JobTrouble::Dead, "lease expired on the last attempt".to_string())]);
}

fn phone(text: &str) -> mangwale_core::E164 {
    mangwale_core::E164::parse(text).unwrap()
}

async fn calls_in_progress_are_found_by_the_numbers_they_dial(db: &TestDb) {
    let s = &db.store;
    let (caller, rider, other) = (phone("+919876543210"), phone("+919988776655"), phone("+919811122233"));
    let bridge = NewCall {
        id: "att-b".into(),
        purpose: "bridge".into(),
        order_id: None,
        escalation_id: None,
        party: None,
        to_masked: caller.masked(),
        to: Some(caller.clone()),
        bridge_to: Some(rider.clone()),
    };
    s.create_call(bridge, None, t0()).await.unwrap();
    assert!(s.call_in_progress_with(&caller, t0()).await.unwrap(), "the first leg");
    assert!(s.call_in_progress_with(&rider, t0()).await.unwrap(), "the bridged leg");
    assert!(!s.call_in_progress_with(&other, t0()).await.unwrap());
    assert!(!s.call_in_progress_with(&caller, at(1)).await.unwrap(), "older attempts are not counted");
    s.update_call("att-b", CallState::InProgress, Some("sid-b"), None, at(5)).await.unwrap();
    assert!(s.call_in_progress_with(&rider, t0()).await.unwrap());
    s.update_call("att-b", CallState::Completed, None, None, at(60)).await.unwrap();
    assert!(!s.call_in_progress_with(&caller, t0()).await.unwrap(), "an ended call is not in progress");
}

fn missed(call_sid: &str, caller: &mangwale_core::E164, at_secs: i64) -> mangwale_store::MissedCall {
    mangwale_store::MissedCall { call_sid: call_sid.into(), phone: caller.clone(), at: at(at_secs) }
}

fn new_callback(id: &str, due_secs: i64) -> mangwale_store::MissedCallPlan {
    mangwale_store::MissedCallPlan::NewCallback {
        id: id.into(),
        due_at: at(due_secs),
        first_try: NewJob::new("missed_call.callback", format!("try:{id}:1"), json!({"callbackId": id}), at(due_secs)),
    }
}

async fn missed_calls_are_recorded_once_and_one_callback_is_open_per_number(db: &TestDb) {
    use mangwale_store::{CallbackState, MissedCallPlan, MissedCallRecorded};
    let s = &db.store;
    let caller = phone("+919876543210");
    let ev = |kind: &str| NewEvent::new(kind, t0()).party("caller:+9198xxxxx210");
    assert_eq!(
        s.record_missed_call(missed("m1", &caller, 0), new_callback("cb1", 30), ev("scheduled"), t0()).await.unwrap(),
        MissedCallRecorded::Recorded
    );
    let job = s.job_by_key("try:cb1:1").await.unwrap().expect("the first try, written with the callback");
    assert_eq!(job.run_at, at(30));
    let cb = s.callback("cb1").await.unwrap().unwrap();
    assert_eq!((cb.state, cb.missed_count, cb.tries, cb.due_at), (CallbackState::Scheduled, 1, 0, at(30)));
    assert_eq!(cb.phone, caller);
    // The same CallSid again: nothing.
    assert_eq!(
        s.record_missed_call(missed("m1", &caller, 0), new_callback("cb-dup", 30), ev("x"), t0()).await.unwrap(),
        MissedCallRecorded::Duplicate
    );
    // A second callback for a number with an open one is refused whole.
    assert_eq!(
        s.record_missed_call(missed("m2", &caller, 10), new_callback("cb2", 40), ev("x"), t0()).await.unwrap(),
        MissedCallRecorded::OpenCallbackExists
    );
    assert!(s.callback("cb2").await.unwrap().is_none());
    assert!(s.job_by_key("try:cb2:1").await.unwrap().is_none(), "nothing half-written");
    let found = s.callback_for_phone(&caller, at(10_000)).await.unwrap().expect("the open one, whatever the window");
    assert_eq!(found.id, "cb1");
    let join = MissedCallPlan::Join { callback_id: "cb1".into() };
    assert_eq!(
        s.record_missed_call(missed("m2", &caller, 10), join, ev("joined"), t0()).await.unwrap(),
        MissedCallRecorded::Recorded
    );
    assert_eq!(s.callback("cb1").await.unwrap().unwrap().missed_count, 2);
    let kinds: Vec<String> = s.events_after(0, 100).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec!["scheduled", "joined"], "events only of what was recorded");
    assert!(s.callback_for_phone(&phone("+919811122233"), t0()).await.unwrap().is_none());

    // Once it ended, a callback is found only within the window.
    s.claim_callback_try("cb1", 1, at(30)).await.unwrap();
    let answered = mangwale_store::TryEnd::Answered;
    assert!(s.finish_callback_try("cb1", 1, answered, ev("answered"), Vec::new(), at(90)).await.unwrap());
    assert_eq!(s.callback_for_phone(&caller, at(-60)).await.unwrap().map(|c| c.id).as_deref(), Some("cb1"));
    assert!(s.callback_for_phone(&caller, at(1)).await.unwrap().is_none(), "outside the window");
    // And a new one may open.
    assert_eq!(
        s.record_missed_call(missed("m3", &caller, 900), new_callback("cb3", 930), ev("scheduled"), at(900))
            .await
            .unwrap(),
        MissedCallRecorded::Recorded
    );
}

async fn a_callback_try_is_claimed_linked_and_finished_once(db: &TestDb) {
    use mangwale_store::{CallbackState, TryClaim, TryEnd};
    let s = &db.store;
    let caller = phone("+919876543210");
    let ev = |kind: &str| NewEvent::new(kind, t0());
    s.record_missed_call(missed("m1", &caller, 0), new_callback("cb1", 30), ev("scheduled"), t0()).await.unwrap();
    assert_eq!(s.claim_callback_try("cb1", 2, at(30)).await.unwrap(), TryClaim::Gone, "not try 2 before try 1");
    let TryClaim::Fresh(cb) = s.claim_callback_try("cb1", 1, at(30)).await.unwrap() else { panic!("fresh claim") };
    assert_eq!((cb.state, cb.tries), (CallbackState::Calling, 1));
    // A worker that died before recording its attempt: the try resumes.
    assert!(matches!(s.claim_callback_try("cb1", 1, at(31)).await.unwrap(), TryClaim::Resumed(_)));
    // Given back (nothing rang), it is claimed fresh again.
    assert!(s.release_callback_try("cb1", 1, at(35), at(32)).await.unwrap());
    let back = s.callback("cb1").await.unwrap().unwrap();
    assert_eq!((back.state, back.tries, back.due_at), (CallbackState::Scheduled, 0, at(35)));
    assert!(matches!(s.claim_callback_try("cb1", 1, at(35)).await.unwrap(), TryClaim::Fresh(_)));
    assert!(s.link_callback_attempt("cb1", 1, "att-1", ev("placed"), at(36)).await.unwrap());
    assert!(!s.link_callback_attempt("cb1", 2, "att-x", ev("placed"), at(36)).await.unwrap(), "not the current try");
    assert_eq!(s.claim_callback_try("cb1", 1, at(40)).await.unwrap(), TryClaim::Gone, "placed: never again");
    assert!(!s.release_callback_try("cb1", 1, at(40), at(40)).await.unwrap(), "a placed try is not given back");
    assert_eq!(s.callback_by_attempt("att-1").await.unwrap().map(|c| c.id).as_deref(), Some("cb1"));

    let retry = NewJob::new("missed_call.callback", "try:cb1:2", json!({"callbackId": "cb1"}), at(160));
    let end = TryEnd::Retry { due_at: at(160) };
    assert!(s.finish_callback_try("cb1", 1, end, ev("retry"), vec![retry], at(40)).await.unwrap());
    assert!(!s.finish_callback_try("cb1", 1, TryEnd::GaveUp, ev("again"), Vec::new(), at(41)).await.unwrap());
    assert_eq!(s.job_by_key("try:cb1:2").await.unwrap().unwrap().run_at, at(160));
    let cb = s.callback("cb1").await.unwrap().unwrap();
    assert_eq!((cb.state, cb.tries, cb.due_at, cb.finished_at), (CallbackState::Scheduled, 1, at(160), None));

    assert!(matches!(s.claim_callback_try("cb1", 2, at(160)).await.unwrap(), TryClaim::Fresh(_)));
    let sms = NewJob::new("missed_call.sms", "sms:cb1", json!({"callbackId": "cb1"}), at(200));
    assert!(s.finish_callback_try("cb1", 2, TryEnd::GaveUp, ev("gave_up"), vec![sms], at(200)).await.unwrap());
    let cb = s.callback("cb1").await.unwrap().unwrap();
    assert_eq!((cb.state, cb.finished_at), (CallbackState::GaveUp, Some(at(200))));
    assert!(s.job_by_key("sms:cb1").await.unwrap().is_some());
    let kinds: Vec<String> = s.events_after(0, 100).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec!["scheduled", "placed", "retry", "gave_up"]);
}

async fn missed_call_stats_count_calls_and_callbacks(db: &TestDb) {
    use mangwale_store::{MissedCallPlan, TryEnd};
    let s = &db.store;
    let (a, b, c) = (phone("+919876543210"), phone("+919988776655"), phone("+919811122233"));
    let ev = || NewEvent::new("e", t0());
    s.record_missed_call(missed("a1", &a, 0), new_callback("ca", 30), ev(), t0()).await.unwrap();
    let join = MissedCallPlan::Join { callback_id: "ca".into() };
    s.record_missed_call(missed("a2", &a, 5), join, ev(), t0()).await.unwrap();
    s.record_missed_call(missed("b1", &b, 10), new_callback("cb", 40), ev(), t0()).await.unwrap();
    s.record_missed_call(missed("c1", &c, 20), MissedCallPlan::Talking, ev(), t0()).await.unwrap();
    s.claim_callback_try("ca", 1, at(30)).await.unwrap();
    s.finish_callback_try("ca", 1, TryEnd::Answered, ev(), Vec::new(), at(60)).await.unwrap();
    for try_no in 1..=3 {
        s.claim_callback_try("cb", try_no, at(40)).await.unwrap();
        let end = if try_no < 3 { TryEnd::Retry { due_at: at(40) } } else { TryEnd::GaveUp };
        s.finish_callback_try("cb", try_no, end, ev(), Vec::new(), at(50)).await.unwrap();
    }
    let stats = s.missed_call_stats(at(-1), at(3600)).await.unwrap();
    assert_eq!(
        stats,
        mangwale_store::MissedCallStats {
            missed_calls: 4,
            callbacks: 2,
            callbacks_placed: 2,
            callback_calls: 4,
            answered: 1,
            gave_up: 1
        }
    );
    assert_eq!(s.missed_call_stats(at(15), at(3600)).await.unwrap().missed_calls, 1, "by the calls' time");
    assert_eq!(s.missed_call_stats(at(3600), at(7200)).await.unwrap(), mangwale_store::MissedCallStats::default());
}

// -- masking ------------------------------------------------------------------

fn masking_leg(role: mangwale_core::masking::PartyRole, p: &str) -> mangwale_core::masking::Leg {
    mangwale_core::masking::Leg { role, phone: phone(p) }
}

fn new_session(order: &str, pair: mangwale_core::masking::PartyPair, a: &str, b: &str) -> NewMaskingSession {
    let (ra, rb) = pair.roles();
    NewMaskingSession {
        order_id: mangwale_core::OrderId::parse(order).unwrap(),
        pair,
        party_a: masking_leg(ra, a),
        party_b: masking_leg(rb, b),
        source: "test".into(),
        expires_at: at(7200),
    }
}

fn opened(outcome: MaskingOpen) -> MaskingSession {
    match outcome {
        MaskingOpen::Opened { session, .. } => session,
        other => panic!("expected a new session, got {other:?}"),
    }
}

const POOL: [&str; 2] = ["+918000000001", "+918000000002"];
const CUSTOMER: &str = "+919800000001";
const RIDER: &str = "+919800000002";
const VENDOR: &str = "+919800000003";

async fn masking_allocation_keeps_a_phone_off_a_number_it_already_holds(db: &TestDb) {
    use mangwale_core::masking::PartyPair::*;
    let s = &db.store;
    let pool: Vec<_> = POOL.iter().map(|p| phone(p)).collect();
    let first =
        opened(s.masking_open(&new_session("MW-1", CustomerRider, CUSTOMER, RIDER), &pool, t0()).await.unwrap());
    assert_eq!(first.masked_number, pool[0]);
    assert!(!first.shared);
    // The customer's second session goes to the other number.
    let second =
        opened(s.masking_open(&new_session("MW-1", CustomerVendor, CUSTOMER, VENDOR), &pool, at(1)).await.unwrap());
    assert_eq!(second.masked_number, pool[1]);
    assert!(!second.shared);
    // The rider's session with the vendor: both numbers hold one of them, so
    // it is shared on the least held.
    let third = opened(s.masking_open(&new_session("MW-1", RiderVendor, RIDER, VENDOR), &pool, at(2)).await.unwrap());
    assert!(third.shared);
    // A caller finds their sessions by the number they dialled.
    let on_first = s.masking_sessions_of_caller(&pool[0], &phone(CUSTOMER), at(3)).await.unwrap();
    assert_eq!(on_first.iter().map(|x| &x.id).collect::<Vec<_>>(), vec![&first.id]);
    assert_eq!(on_first[0].legs_for(&phone(CUSTOMER)).unwrap().1.phone, phone(RIDER));
    assert!(s.masking_sessions_of_caller(&pool[0], &phone("+919800000099"), at(3)).await.unwrap().is_empty());
    // An empty pool opens nothing.
    assert_eq!(
        s.masking_open(&new_session("MW-2", CustomerRider, "+919800000011", RIDER), &[], at(4)).await.unwrap(),
        MaskingOpen::PoolEmpty
    );
    assert_eq!(s.masking_open_sessions(at(5), 10).await.unwrap().len(), 3);
}

async fn masking_sessions_reopen_once_end_and_expire(db: &TestDb) {
    use mangwale_core::masking::PartyPair::*;
    let s = &db.store;
    let pool: Vec<_> = POOL.iter().map(|p| phone(p)).collect();
    let order = mangwale_core::OrderId::parse("MW-7").unwrap();
    let first =
        opened(s.masking_open(&new_session("MW-7", CustomerRider, CUSTOMER, RIDER), &pool, t0()).await.unwrap());
    // The same parties again: the same session.
    assert_eq!(
        s.masking_open(&new_session("MW-7", CustomerRider, CUSTOMER, RIDER), &pool, at(1)).await.unwrap(),
        MaskingOpen::Existing(first.clone())
    );
    // Another rider: the old session is replaced in the same transaction.
    let outcome =
        s.masking_open(&new_session("MW-7", CustomerRider, CUSTOMER, "+919800000004"), &pool, at(2)).await.unwrap();
    let MaskingOpen::Opened { session: second, replaced: Some(replaced) } = outcome else { panic!("{outcome:?}") };
    assert_eq!(replaced.id, first.id);
    assert_eq!(s.masking_session(&first.id).await.unwrap().unwrap().status(at(3)), "ended");
    assert_eq!(s.masking_session(&second.id).await.unwrap().unwrap().status(at(3)), "active");
    // Delivered: open until the grace is over, then expired.
    let closing = s.masking_close_at(&order, at(600), "order_delivered", at(10)).await.unwrap();
    assert_eq!(closing.len(), 1);
    assert_eq!(closing[0].expires_at, at(600));
    let later = s.masking_session(&second.id).await.unwrap().unwrap();
    assert!(later.is_open(at(599)));
    assert_eq!(later.status(at(600)), "expired");
    assert!(s.masking_sessions_of_caller(&second.masked_number, &phone(CUSTOMER), at(600)).await.unwrap().is_empty());
    // Ending closes what is open, and only that.
    let vendor =
        opened(s.masking_open(&new_session("MW-7", CustomerVendor, CUSTOMER, VENDOR), &pool, at(20)).await.unwrap());
    let ended = s.masking_end(&order, None, "api", at(30)).await.unwrap();
    let ended_ids: HashSet<&String> = ended.iter().map(|x| &x.id).collect();
    assert_eq!(ended_ids, HashSet::from([&second.id, &vendor.id]));
    assert_eq!(ended.len(), 2);
    assert!(ended.iter().all(|x| x.closed_at == Some(at(30))));
    assert!(s.masking_end(&order, None, "api", at(31)).await.unwrap().is_empty());
    assert_eq!(s.masking_sessions_for_order(&order).await.unwrap().len(), 3);
    // A session past its TTL is not open either.
    let ttl =
        opened(s.masking_open(&new_session("MW-8", CustomerRider, CUSTOMER, RIDER), &pool, at(40)).await.unwrap());
    assert_eq!(ttl.status(at(7200)), "expired");
    assert!(s.masking_open_sessions(at(7200), 10).await.unwrap().is_empty());
}

async fn concurrent_masking_allocations_never_clash(db: &TestDb) {
    use mangwale_core::masking::PartyPair::*;
    let pool: Vec<_> = (1..=4).map(|i| phone(&format!("+91800000000{i}"))).collect();
    // Another replica: a second connection to the same database.
    let other = connect(&db.url, &ConnectOptions { migrate: false, ..ConnectOptions::default() }).await.unwrap();
    let stores = [db.store.clone(), other.clone()];
    let mut tasks = Vec::new();
    // One customer, four orders at once, each with its own rider: every
    // session must land on a different number.
    for i in 0..4 {
        let store = stores[i % 2].clone();
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let new = new_session(&format!("MW-C{i}"), CustomerRider, CUSTOMER, &format!("+91980000010{i}"));
            opened(store.masking_open(&new, &pool, t0()).await.unwrap())
        }));
    }
    let mut numbers = HashSet::new();
    for task in tasks {
        let session = task.await.unwrap();
        assert!(!session.shared);
        assert!(numbers.insert(session.masked_number.clone()), "two sessions of one phone on one number");
    }
    other.close().await;
}

async fn masked_calls_are_kept_and_counted(db: &TestDb) {
    use mangwale_core::masking::PartyPair::*;
    let s = &db.store;
    let pool: Vec<_> = POOL.iter().map(|p| phone(p)).collect();
    let session =
        opened(s.masking_open(&new_session("MW-9", CustomerRider, CUSTOMER, RIDER), &pool, t0()).await.unwrap());
    let mut call = MaskedCall {
        key: "sid-1".into(),
        direction: MaskedCallDirection::Inbound,
        masked_number: session.masked_number.clone(),
        session_id: Some(session.id.clone()),
        order_id: Some(session.order_id.clone()),
        caller_role: Some(mangwale_core::masking::PartyRole::Customer),
        outcome: MaskedCallOutcome::Connecting,
        digit_tries: 0,
        started_at: at(10),
        ended_at: None,
        duration_secs: None,
    };
    s.masked_call_put(&call).await.unwrap();
    assert_eq!(s.masked_call("sid-1").await.unwrap(), Some(call.clone()));
    call.outcome = MaskedCallOutcome::Completed;
    call.ended_at = Some(at(100));
    call.duration_secs = Some(80);
    s.masked_call_put(&call).await.unwrap();
    assert_eq!(s.masked_call("sid-1").await.unwrap(), Some(call.clone()));
    let other = MaskedCall {
        key: "sid-2".into(),
        session_id: None,
        order_id: None,
        caller_role: None,
        outcome: MaskedCallOutcome::NoSession,
        duration_secs: None,
        ended_at: None,
        started_at: at(20),
        ..call.clone()
    };
    s.masked_call_put(&other).await.unwrap();
    s.masked_call_put(&MaskedCall { key: "sid-3".into(), duration_secs: Some(40), ..call.clone() }).await.unwrap();
    let stats = s.masking_stats(t0(), at(3600), at(50)).await.unwrap();
    assert_eq!((stats.open_sessions, stats.sessions_opened), (1, 1));
    assert_eq!((stats.calls, stats.connected, stats.no_session), (3, 2, 1));
    assert_eq!(stats.avg_bridge_secs, Some(60.0));
    assert_eq!(s.masking_stats(at(3600), at(7200), at(50)).await.unwrap().calls, 0);
}

async fn inbound_calls_keep_who_called_and_whether_they_are_on_the_line(db: &TestDb) {
    use mangwale_core::inbound::{CallerKind, Choice};
    use mangwale_core::{E164, Language, OrderId};
    use mangwale_store::InboundCall;

    let phone = E164::parse("+919876543210").unwrap();
    let minutes = chrono::Duration::minutes;
    let first = InboundCall {
        call_sid: "CA-in-1".into(),
        phone: Some(phone.clone()),
        kind: CallerKind::Unknown,
        party_id: None,
        language: Language::Hi,
        order_id: None,
        pending_orders: 0,
        settled: false,
        choice: None,
        started_at: t0(),
        updated_at: t0(),
        active_until: t0() + minutes(2),
        ended_at: None,
    };
    assert!(!db.store.active_inbound_call_from(&phone, t0()).await.unwrap());
    db.store.save_inbound_call(&first).await.unwrap();
    assert_eq!(db.store.inbound_call("CA-in-1").await.unwrap(), Some(first.clone()));
    assert!(db.store.active_inbound_call_from(&phone, t0() + minutes(1)).await.unwrap());
    assert!(!db.store.active_inbound_call_from(&phone, t0() + minutes(2)).await.unwrap(), "silent too long");

    // The background lookup finishes: the caller is a vendor. The start and
    // a later active_until stay.
    assert!(db.store.extend_inbound_call("CA-in-1", t0() + minutes(30), t0() + minutes(1)).await.unwrap());
    let settled = InboundCall {
        kind: CallerKind::Vendor,
        party_id: Some(7),
        language: Language::Mr,
        order_id: Some(OrderId::parse("100001").unwrap()),
        pending_orders: 2,
        settled: true,
        started_at: t0() + minutes(1),
        updated_at: t0() + minutes(1),
        ..first.clone()
    };
    db.store.save_inbound_call(&settled).await.unwrap();
    assert!(db.store.set_inbound_choice("CA-in-1", Choice::PrepTime(20), t0() + minutes(2)).await.unwrap());
    let stored = db.store.inbound_call("CA-in-1").await.unwrap().unwrap();
    assert_eq!((stored.kind, stored.party_id, stored.pending_orders), (CallerKind::Vendor, Some(7), 2));
    assert_eq!((stored.started_at, stored.active_until), (t0(), t0() + minutes(30)));
    assert_eq!(stored.choice, Some(Choice::PrepTime(20)));
    assert!(db.store.active_inbound_call_from(&phone, t0() + minutes(10)).await.unwrap());

    assert!(db.store.end_inbound_call("CA-in-1", t0() + minutes(3)).await.unwrap());
    assert!(!db.store.active_inbound_call_from(&phone, t0() + minutes(4)).await.unwrap());
    assert!(!db.store.end_inbound_call("CA-nope", t0()).await.unwrap());
    assert!(!db.store.set_inbound_choice("CA-nope", Choice::Food, t0()).await.unwrap());
    assert_eq!(db.store.inbound_call("CA-nope").await.unwrap(), None);

    // No CallFrom: recorded, never "on the line" for any number.
    let anonymous = InboundCall { call_sid: "CA-in-2".into(), phone: None, ..first };
    db.store.save_inbound_call(&anonymous).await.unwrap();
    assert_eq!(db.store.inbound_call("CA-in-2").await.unwrap().unwrap().phone, None);
}

async fn voice_sessions_save_by_compare_and_swap_and_offer_a_dropped_cart_once(db: &TestDb) {
    use mangwale_core::E164;
    use mangwale_store::{VoiceChannel, VoiceSession, VoiceSessionStatus, VoiceSessionUpdate};

    let s = &db.store;
    let phone = E164::parse("+919876543210").unwrap();
    let minutes = chrono::Duration::minutes;
    let first = VoiceSession {
        session_id: "CA-voice-1".into(),
        channel: VoiceChannel::Call,
        phone: Some(phone.clone()),
        dialog: r#"{"cart":[]}"#.into(),
        version: 1,
        status: VoiceSessionStatus::Active,
        resumable: false,
        last_turn: None,
        last_reply: None,
        created_at: t0(),
        updated_at: t0(),
    };
    assert!(s.create_voice_session(&first, None).await.unwrap());
    assert!(!s.create_voice_session(&first, None).await.unwrap(), "a second start of the same call loads the first");
    assert_eq!(s.voice_session("CA-voice-1").await.unwrap(), Some(first.clone()));
    assert_eq!(s.voice_session("CA-nobody").await.unwrap(), None);

    // Two turns loaded version 1; the first save wins, the second must reload.
    let turn = |dialog: &str, at| VoiceSessionUpdate {
        dialog: dialog.into(),
        status: VoiceSessionStatus::Active,
        resumable: true,
        last_turn: Some("2".into()),
        last_reply: Some(r#"{"agent":"..."}"#.into()),
        at,
    };
    assert_eq!(
        s.save_voice_session("CA-voice-1", 1, &turn(r#"{"cart":[1]}"#, t0() + minutes(1))).await.unwrap(),
        Some(2)
    );
    assert_eq!(s.save_voice_session("CA-voice-1", 1, &turn(r#"{"cart":[2]}"#, t0() + minutes(1))).await.unwrap(), None);
    let saved = s.voice_session("CA-voice-1").await.unwrap().unwrap();
    assert_eq!((saved.version, saved.dialog.as_str(), saved.resumable), (2, r#"{"cart":[1]}"#, true));
    assert_eq!((saved.last_turn.as_deref(), saved.updated_at), (Some("2"), t0() + minutes(1)));
    assert_eq!(s.save_voice_session("CA-nobody", 1, &turn("{}", t0())).await.unwrap(), None);

    // The caller drops and calls back: the cart is offered within 30 minutes.
    let since = |now: DateTime<Utc>| now - minutes(30);
    let back = t0() + minutes(20);
    let found = s.resumable_voice_session(&phone, since(back), "CA-voice-2").await.unwrap();
    assert_eq!(found.map(|f| f.session_id), Some("CA-voice-1".into()));
    assert_eq!(s.resumable_voice_session(&phone, since(t0() + minutes(40)), "CA-voice-2").await.unwrap(), None);
    assert_eq!(s.resumable_voice_session(&phone, since(back), "CA-voice-1").await.unwrap(), None, "not its own");
    let other = E164::parse("+919822012345").unwrap();
    assert_eq!(s.resumable_voice_session(&other, since(back), "CA-voice-2").await.unwrap(), None);

    // The call that takes the cart up makes it no longer on offer.
    let second = VoiceSession { session_id: "CA-voice-2".into(), created_at: back, updated_at: back, ..first.clone() };
    assert!(s.create_voice_session(&second, Some("CA-voice-1")).await.unwrap());
    assert_eq!(s.resumable_voice_session(&phone, since(back), "CA-voice-3").await.unwrap(), None);
    let placed = VoiceSessionUpdate { status: VoiceSessionStatus::Placed, resumable: false, ..turn("{}", back) };
    assert_eq!(s.save_voice_session("CA-voice-2", 1, &placed).await.unwrap(), Some(2));
    assert_eq!(s.voice_session("CA-voice-2").await.unwrap().unwrap().status, VoiceSessionStatus::Placed);
}
