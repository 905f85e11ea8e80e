//! Job queue benchmark: throughput and lateness of the production worker loop.
//!
//! Run with `cargo bench -p mangwale-store --bench job_queue`. SQLite always;
//! PostgreSQL too when `TEST_DATABASE_URL` is set. It asserts nothing: it
//! prints measurements and how they compare with the targets.
//!
//! Environment:
//! - `BENCH_JOBS`: jobs per phase (default 100000).
//! - `BENCH_RATE`: due rate of the lateness phase, jobs/s (default 5000).
//! - `BENCH_WORKERS`: worker counts of the throughput phase, such as `1,2` (default `1`).
//! - `BENCH_BATCH`: worker batch size (default: `WorkerConfig::default()`).
//! - `BENCH_ENQUEUE_CONCURRENCY`: concurrent enqueues (default 16).
//! - `BENCH_LATENESS`: `0` skips the lateness phase.
//! - `BENCH_DRAIN_LIMIT_S`: longest throughput drain, seconds (default 30);
//!   a slower backend is then measured over the jobs it completed by then.
//!
//! 1. Throughput: enqueue N jobs all due now, then run `Worker::run` with a
//!    handler that does nothing until all N are completed (or the drain
//!    limit passes). `e+c+c/s` is 1 / (1/enqueue rate + 1/complete rate):
//!    N / (enqueue time + drain time) when all were completed.
//! 2. Lateness: enqueue N jobs due evenly over a window in the future
//!    (N / rate seconds, opening once enqueueing should be done), run
//!    `Worker::run` and record how late each handler starts relative to its
//!    job's `run_at`. The phase ends 10 s after the last job is due; a job not
//!    started by then counts as late as it was then, and a percentile that
//!    falls on such a job is printed as a lower bound (`>=`).
//!
//! Each backend's store is opened with `ConnectOptions::default()`, the
//! production pool size.
//!
//! The store is wrapped in a pass-through that times each store call the
//! worker makes, so that a missed target can be traced to a call.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use mangwale_store::test_support::TestDb;
use mangwale_store::{
    Clock, ConnectOptions, Enqueued, FailOutcome, Job, JobError, JobHandler, JobStore, Lease, NewJob, QueueStats,
    Store, SystemClock, Worker, WorkerConfig, connect,
};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const KIND: &str = "bench";
/// Issue 15's targets: completed jobs per second with one worker, and
/// PostgreSQL's enqueue rate, and lateness p99 on both backends.
const TARGET_SQLITE_COMPLETE_PER_S: f64 = 30_000.0;
const TARGET_POSTGRES_PER_S: f64 = 15_000.0;
const TARGET_P99_MS: f64 = 10.0;
/// How long after the last job is due the lateness phase still waits.
const LATENESS_GRACE: Duration = Duration::from_secs(10);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone)]
struct Settings {
    jobs: usize,
    rate: f64,
    workers: Vec<usize>,
    batch_size: Option<u32>,
    enqueue_concurrency: usize,
    lateness: bool,
    drain_limit: Duration,
}

impl Settings {
    fn from_env() -> Self {
        fn var<T: std::str::FromStr>(name: &str) -> Option<T> {
            std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
        }
        let workers = std::env::var("BENCH_WORKERS")
            .ok()
            .map(|v| v.split(',').filter_map(|w| w.trim().parse().ok()).filter(|&w| w > 0).collect::<Vec<usize>>())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| vec![1]);
        Settings {
            jobs: var("BENCH_JOBS").filter(|&n| n > 0).unwrap_or(100_000),
            rate: var("BENCH_RATE").filter(|&r: &f64| r > 0.0).unwrap_or(5_000.0),
            workers,
            batch_size: var("BENCH_BATCH").filter(|&b| b > 0),
            enqueue_concurrency: var("BENCH_ENQUEUE_CONCURRENCY").filter(|&c| c > 0).unwrap_or(16),
            lateness: var::<u8>("BENCH_LATENESS") != Some(0),
            drain_limit: Duration::from_secs_f64(var("BENCH_DRAIN_LIMIT_S").filter(|&s: &f64| s > 0.0).unwrap_or(30.0)),
        }
    }

    fn worker_config(&self) -> WorkerConfig {
        let mut config = WorkerConfig::default();
        if let Some(b) = self.batch_size {
            config.batch_size = b;
        }
        config
    }

    fn window(&self) -> Duration {
        Duration::from_secs_f64(self.jobs as f64 / self.rate)
    }
}

/// Time spent in one kind of store call.
#[derive(Default)]
struct CallStat {
    /// Duration of each call, in microseconds.
    micros: Mutex<Vec<u64>>,
}

impl CallStat {
    fn record(&self, started: Instant) {
        let micros = started.elapsed().as_micros() as u64;
        self.micros.lock().unwrap_or_else(|e| e.into_inner()).push(micros);
    }

    fn calls(&self) -> usize {
        self.micros.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn line(&self, name: &str, wall: Duration) -> Option<String> {
        let mut micros = self.micros.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if micros.is_empty() {
            return None;
        }
        micros.sort_unstable();
        let calls = micros.len();
        let total_s = micros.iter().sum::<u64>() as f64 / 1e6;
        let ms = |p: f64| micros[percentile_index(calls, p)] as f64 / 1e3;
        let share = 100.0 * total_s / wall.as_secs_f64().max(1e-9);
        Some(format!(
            "    {name:<9} {calls:>7} calls  mean {:>7.2}  p50 {:>7.2}  p99 {:>7.2}  max {:>7.1} ms  \
             sum {total_s:>6.2} s = {share:>4.0}% of wall",
            total_s * 1e3 / calls as f64,
            ms(50.0),
            ms(99.0),
            ms(100.0),
        ))
    }
}

/// The index of the `p`th percentile in a sorted sample of `len` values.
fn percentile_index(len: usize, p: f64) -> usize {
    (((p / 100.0) * (len.saturating_sub(1)) as f64).round() as usize).min(len.saturating_sub(1))
}

/// A pass-through store that times the calls the worker makes and signals
/// when the expected number of jobs has been completed.
struct Profiled {
    inner: Arc<dyn Store>,
    claim: CallStat,
    claimed_jobs: AtomicU64,
    empty_claims: AtomicU64,
    complete: CallStat,
    next_due: CallStat,
    fail: CallStat,
    release: CallStat,
    completed: AtomicUsize,
    expected: usize,
    all_done_at: OnceLock<Instant>,
    all_done: Notify,
}

impl Profiled {
    fn new(inner: Arc<dyn Store>, expected: usize) -> Self {
        Profiled {
            inner,
            claim: CallStat::default(),
            claimed_jobs: AtomicU64::new(0),
            empty_claims: AtomicU64::new(0),
            complete: CallStat::default(),
            next_due: CallStat::default(),
            fail: CallStat::default(),
            release: CallStat::default(),
            completed: AtomicUsize::new(0),
            expected,
            all_done_at: OnceLock::new(),
            all_done: Notify::new(),
        }
    }

    fn completed(&self) -> usize {
        self.completed.load(Ordering::Relaxed)
    }

    fn print(&self, wall: Duration) {
        let claims = self.claim.calls();
        let claimed = self.claimed_jobs.load(Ordering::Relaxed);
        let empty = self.empty_claims.load(Ordering::Relaxed);
        let per_claim = if claims > 0 { claimed as f64 / claims as f64 } else { 0.0 };
        println!(
            "  store calls over {:.2} s: {claimed} jobs claimed in {claims} claims ({per_claim:.1} per claim, {empty} empty)",
            wall.as_secs_f64()
        );
        for (name, stat) in [
            ("claim", &self.claim),
            ("complete", &self.complete),
            ("next_due", &self.next_due),
            ("fail", &self.fail),
            ("release", &self.release),
        ] {
            if let Some(line) = stat.line(name, wall) {
                println!("{line}");
            }
        }
    }
}

#[async_trait]
impl JobStore for Profiled {
    async fn enqueue(&self, job: NewJob) -> mangwale_store::Result<Enqueued> {
        self.inner.enqueue(job).await
    }

    async fn claim(
        &self,
        kinds: &[String],
        worker: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> mangwale_store::Result<Vec<Job>> {
        let started = Instant::now();
        let jobs = self.inner.claim(kinds, worker, limit, lease, now).await;
        self.claim.record(started);
        if let Ok(jobs) = &jobs {
            self.claimed_jobs.fetch_add(jobs.len() as u64, Ordering::Relaxed);
            if jobs.is_empty() {
                self.empty_claims.fetch_add(1, Ordering::Relaxed);
            }
        }
        jobs
    }

    async fn expire_last_attempts(&self, now: DateTime<Utc>) -> mangwale_store::Result<Vec<Job>> {
        self.inner.expire_last_attempts(now).await
    }

    async fn complete_many(&self, leases: &[Lease], now: DateTime<Utc>) -> mangwale_store::Result<Vec<bool>> {
        let started = Instant::now();
        let done = self.inner.complete_many(leases, now).await;
        self.complete.record(started);
        if let Ok(done) = &done {
            let finished = done.iter().filter(|d| **d).count();
            let n = self.completed.fetch_add(finished, Ordering::AcqRel) + finished;
            if finished > 0 && n >= self.expected && n - finished < self.expected {
                let _ = self.all_done_at.set(Instant::now());
                self.all_done.notify_one();
            }
        }
        done
    }

    async fn fail(
        &self,
        lease: Lease,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> mangwale_store::Result<FailOutcome> {
        let started = Instant::now();
        let outcome = self.inner.fail(lease, error, retry_at, now).await;
        self.fail.record(started);
        outcome
    }

    async fn release(&self, lease: Lease, now: DateTime<Utc>) -> mangwale_store::Result<bool> {
        let started = Instant::now();
        let released = self.inner.release(lease, now).await;
        self.release.record(started);
        released
    }

    async fn defer(&self, lease: Lease, run_at: DateTime<Utc>, now: DateTime<Utc>) -> mangwale_store::Result<bool> {
        self.inner.defer(lease, run_at, now).await
    }

    async fn earlier_unfinished(&self, group: &str, id: i64) -> mangwale_store::Result<Option<Job>> {
        self.inner.earlier_unfinished(group, id).await
    }

    async fn cancel_key(&self, key: &str, now: DateTime<Utc>) -> mangwale_store::Result<bool> {
        self.inner.cancel_key(key, now).await
    }

    async fn cancel_group(&self, group: &str, now: DateTime<Utc>) -> mangwale_store::Result<u64> {
        self.inner.cancel_group(group, now).await
    }

    async fn job_by_key(&self, key: &str) -> mangwale_store::Result<Option<Job>> {
        self.inner.job_by_key(key).await
    }

    async fn next_due(&self, kinds: &[String]) -> mangwale_store::Result<Option<DateTime<Utc>>> {
        let started = Instant::now();
        let next = self.inner.next_due(kinds).await;
        self.next_due.record(started);
        next
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> mangwale_store::Result<QueueStats> {
        self.inner.queue_stats(now).await
    }

    async fn prune_finished(&self, before: DateTime<Utc>) -> mangwale_store::Result<u64> {
        self.inner.prune_finished(before).await
    }

    fn wakeup(&self) -> Arc<Notify> {
        self.inner.wakeup()
    }
}

/// Does nothing: the throughput phase measures the queue alone.
struct Noop;

#[async_trait]
impl JobHandler for Noop {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        Ok(())
    }
}

/// Records how late each job's handler starts.
struct LatenessRecorder {
    /// (job index, lateness in microseconds), in start order.
    samples: Mutex<Vec<(usize, i64)>>,
}

#[async_trait]
impl JobHandler for LatenessRecorder {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let late = (Utc::now() - job.run_at).num_microseconds().unwrap_or(i64::MAX);
        let index = job.payload["i"].as_u64().unwrap_or(u64::MAX) as usize;
        self.samples.lock().unwrap_or_else(|e| e.into_inner()).push((index, late));
        Ok(())
    }
}

/// Enqueues jobs with bounded concurrency; returns how long it took.
async fn enqueue_all(
    store: &Arc<dyn Store>,
    jobs: impl Iterator<Item = NewJob>,
    concurrency: usize,
) -> Result<Duration, BoxError> {
    let started = Instant::now();
    futures::stream::iter(jobs)
        .map(|job| {
            let store = store.clone();
            async move { store.enqueue(job).await }
        })
        .buffer_unordered(concurrency)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(started.elapsed())
}

/// Production worker loops running on a profiled store.
struct Workers {
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    started: Instant,
}

impl Workers {
    fn start(store: &Arc<Profiled>, handler: Arc<dyn JobHandler>, workers: usize, settings: &Settings) -> Self {
        let shutdown = CancellationToken::new();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let started = Instant::now();
        let tasks = (0..workers)
            .map(|_| {
                let mut worker = Worker::new(store.clone(), clock.clone(), settings.worker_config());
                worker.register(KIND, handler.clone());
                let shutdown = shutdown.clone();
                tokio::spawn(async move { worker.run(shutdown).await })
            })
            .collect();
        Workers { shutdown, tasks, started }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Waits until the store has completed all its expected jobs or `limit`
/// passes. Returns when that happened, whether all were done, and how many.
async fn wait_done(store: &Profiled, limit: Duration) -> (Instant, bool, usize) {
    let finished = tokio::time::timeout(limit, store.all_done.notified()).await.is_ok();
    let end = store.all_done_at.get().copied().unwrap_or_else(Instant::now);
    (end, finished, store.completed())
}

struct ThroughputResult {
    workers: usize,
    enqueue_per_s: f64,
    complete_per_s: f64,
    combined_per_s: f64,
    completed: usize,
    finished: bool,
}

async fn throughput(
    store: &Arc<dyn Store>,
    settings: &Settings,
    workers: usize,
    tag: &str,
) -> Result<ThroughputResult, BoxError> {
    let n = settings.jobs;
    let jobs = (0..n).map(|i| NewJob::new(KIND, format!("{tag}-{i}"), json!({ "i": i }), Utc::now()));
    let enqueue_time = enqueue_all(store, jobs, settings.enqueue_concurrency).await?;
    let profiled = Arc::new(Profiled::new(store.clone(), n));
    let running = Workers::start(&profiled, Arc::new(Noop), workers, settings);
    let (end, finished, completed) = wait_done(&profiled, settings.drain_limit).await;
    let drain_time = end.saturating_duration_since(running.started);
    running.stop().await;
    println!(
        "{} throughput, {workers} worker(s): enqueued {n} in {:.2} s, completed {completed} in {:.2} s{}",
        store.backend().name(),
        enqueue_time.as_secs_f64(),
        drain_time.as_secs_f64(),
        if finished { "" } else { " (stopped at the time limit)" }
    );
    profiled.print(drain_time);
    let enqueue_per_s = n as f64 / enqueue_time.as_secs_f64().max(1e-9);
    let complete_per_s = completed as f64 / drain_time.as_secs_f64().max(1e-9);
    Ok(ThroughputResult {
        workers,
        enqueue_per_s,
        complete_per_s,
        // Jobs per second through enqueue, claim and complete in turn; equal to
        // N / (enqueue time + drain time) when all N were completed.
        combined_per_s: 1.0 / (1.0 / enqueue_per_s + 1.0 / complete_per_s.max(1e-9)),
        completed,
        finished,
    })
}

/// A lateness percentile in milliseconds; `censored` when it is a job that had
/// not started by the time limit, whose lateness is then at least this.
#[derive(Clone, Copy)]
struct Late {
    ms: f64,
    censored: bool,
}

impl Late {
    fn show(self) -> String {
        if self.ms.is_nan() {
            "-".to_string()
        } else if self.censored {
            format!(">={:.0}", self.ms)
        } else {
            format!("{:.1}", self.ms)
        }
    }
}

struct LatenessResult {
    p50: Late,
    p99: Late,
    max: Late,
    rate: f64,
    completed: usize,
    finished: bool,
}

async fn lateness(store: &Arc<dyn Store>, settings: &Settings, enqueue_per_s: f64) -> Result<LatenessResult, BoxError> {
    let n = settings.jobs;
    let window = settings.window();
    // Open the window once enqueueing should be over, with a margin.
    let lead = Duration::from_secs_f64(n as f64 / enqueue_per_s.max(1.0) * 1.2 + 1.5);
    let start = Utc::now() + chrono::Duration::from_std(lead)?;
    let step = window.as_secs_f64() / n as f64;
    // Due times as stored (milliseconds).
    let run_at = |i: usize| {
        let t = start + chrono::Duration::from_std(Duration::from_secs_f64(step * i as f64)).unwrap_or_default();
        DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
    };
    let jobs = (0..n).map(|i| NewJob::new(KIND, format!("late-{i}"), json!({ "i": i }), run_at(i)));
    let enqueue_time = enqueue_all(store, jobs, settings.enqueue_concurrency).await?;
    // The window's opening as an `Instant`, to time the run against it.
    let until_open = start - Utc::now();
    let window_open = match until_open.to_std() {
        Ok(ahead) => Instant::now() + ahead,
        Err(_) => {
            let behind = (-until_open).to_std().unwrap_or_default();
            println!(
                "  warning: enqueueing ended {} ms after the window opened; the first jobs were late before any \
                 worker ran",
                behind.as_millis()
            );
            Instant::now().checked_sub(behind).unwrap_or_else(Instant::now)
        }
    };
    let recorder = Arc::new(LatenessRecorder { samples: Mutex::new(Vec::with_capacity(n)) });
    let profiled = Arc::new(Profiled::new(store.clone(), n));
    let running = Workers::start(&profiled, recorder.clone(), 1, settings);
    let cutoff = window_open + window + LATENESS_GRACE;
    let (end, finished, completed) = wait_done(&profiled, cutoff.saturating_duration_since(Instant::now())).await;
    let cutoff_at = Utc::now();
    let started_jobs = std::mem::take(&mut *recorder.samples.lock().unwrap_or_else(|e| e.into_inner()));
    let run_time = end.saturating_duration_since(running.started);
    running.stop().await;
    let span = end.saturating_duration_since(window_open);
    println!(
        "{} lateness, 1 worker: enqueued {n} in {:.2} s, due over {:.1} s; completed {completed} {:.2} s after the \
         window opened{}",
        store.backend().name(),
        enqueue_time.as_secs_f64(),
        window.as_secs_f64(),
        span.as_secs_f64(),
        if finished { "" } else { " (stopped at the time limit)" }
    );
    profiled.print(run_time);
    // Jobs not started by the time limit count as late as they were then.
    let mut started = vec![false; n];
    let mut samples: Vec<(i64, bool)> = Vec::with_capacity(n);
    for (index, late) in started_jobs {
        if let Some(seen) = started.get_mut(index) {
            *seen = true;
        }
        samples.push((late, false));
    }
    for (i, _) in started.iter().enumerate().filter(|(_, seen)| !**seen) {
        samples.push(((cutoff_at - run_at(i)).num_microseconds().unwrap_or(i64::MAX), true));
    }
    samples.sort_unstable();
    let pct = |p: f64| match samples.get(percentile_index(samples.len(), p)) {
        Some(&(micros, censored)) => Late { ms: micros as f64 / 1e3, censored },
        None => Late { ms: f64::NAN, censored: false },
    };
    Ok(LatenessResult {
        p50: pct(50.0),
        p99: pct(99.0),
        max: pct(100.0),
        rate: completed as f64 / span.as_secs_f64().max(1e-9),
        completed,
        finished,
    })
}

/// A store on the test database with the production pool size
/// (`ConnectOptions::default()`); `TestDb::postgres` itself opens a smaller
/// pool, which would make the two backends incomparable.
async fn bench_store(db: &TestDb) -> Result<Arc<dyn Store>, BoxError> {
    Ok(connect(&db.url, &ConnectOptions { migrate: false, ..ConnectOptions::default() }).await?)
}

struct BackendResult {
    backend: &'static str,
    throughput: Vec<ThroughputResult>,
    lateness: Option<LatenessResult>,
}

async fn bench_backend(
    backend: &'static str,
    settings: &Settings,
    open: impl AsyncFn() -> Result<Option<TestDb>, BoxError>,
) -> Result<Option<BackendResult>, BoxError> {
    let mut result = BackendResult { backend, throughput: Vec::new(), lateness: None };
    for &workers in &settings.workers {
        let Some(db) = open().await? else {
            return Ok(None);
        };
        let r = match bench_store(&db).await {
            Ok(store) => {
                let r = throughput(&store, settings, workers, &format!("tp{workers}")).await;
                store.close().await;
                r
            }
            Err(e) => Err(e),
        };
        db.cleanup().await;
        result.throughput.push(r?);
    }
    if !settings.lateness {
        return Ok(Some(result));
    }
    let enqueue_per_s = result.throughput.iter().map(|t| t.enqueue_per_s).fold(f64::INFINITY, f64::min);
    let enqueue_per_s = if enqueue_per_s.is_finite() { enqueue_per_s } else { 2_000.0 };
    let Some(db) = open().await? else {
        return Ok(None);
    };
    let r = match bench_store(&db).await {
        Ok(store) => {
            let r = lateness(&store, settings, enqueue_per_s).await;
            store.close().await;
            r
        }
        Err(e) => Err(e),
    };
    db.cleanup().await;
    result.lateness = Some(r?);
    Ok(Some(result))
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn print_report(settings: &Settings, results: &[BackendResult], postgres_skipped: bool) {
    println!();
    println!(
        "job queue benchmark: N = {} jobs per phase, lateness at {:.0} jobs/s over {:.1} s, batch_size {}, \
         {} enqueue tasks, {} CPUs",
        settings.jobs,
        settings.rate,
        settings.window().as_secs_f64(),
        settings.worker_config().batch_size,
        settings.enqueue_concurrency,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    );
    println!();
    println!(
        "{:<9} {:>7} {:>10} {:>11} {:>9}   {:>12} {:>10} {:>10} {:>11}",
        "backend", "workers", "enqueue/s", "complete/s", "e+c+c/s", "lateness p50", "p99", "max", "late rate/s"
    );
    let mut notes = Vec::new();
    for r in results {
        for (i, t) in r.throughput.iter().enumerate() {
            if !t.finished {
                notes.push(format!(
                    "{} {} worker(s): the drain stopped at its {:.0} s limit with {} of {} jobs completed; \
                     complete/s is over those",
                    r.backend,
                    t.workers,
                    settings.drain_limit.as_secs_f64(),
                    t.completed,
                    settings.jobs
                ));
            }
            let late = match (&r.lateness, i) {
                (Some(l), 0) => {
                    format!("{:>9} ms {:>7} ms {:>7} ms {:>11.0}", l.p50.show(), l.p99.show(), l.max.show(), l.rate)
                }
                _ => format!("{:>12} {:>10} {:>10} {:>11}", "-", "-", "-", "-"),
            };
            println!(
                "{:<9} {:>7} {:>10.0} {:>11.0} {:>9.0}   {late}",
                r.backend, t.workers, t.enqueue_per_s, t.complete_per_s, t.combined_per_s
            );
        }
        if let Some(l) = r.lateness.as_ref().filter(|l| !l.finished) {
            notes.push(format!(
                "{} lateness: {} of {} jobs completed by {} s after the last was due; the rest count as late as \
                 they were then (>= marks such a lower bound)",
                r.backend,
                l.completed,
                settings.jobs,
                LATENESS_GRACE.as_secs()
            ));
        }
    }
    if postgres_skipped {
        println!("postgres  skipped: TEST_DATABASE_URL is not set");
    }
    for note in notes {
        println!("  note: {note}");
    }
    println!();
    println!("targets:");
    for result in results {
        let backend = result.backend;
        if let Some(t) = result.throughput.iter().find(|t| t.workers == 1).or(result.throughput.first()) {
            let complete_target =
                if backend == "sqlite" { TARGET_SQLITE_COMPLETE_PER_S } else { TARGET_POSTGRES_PER_S };
            println!(
                "  {backend:<8} completed jobs/s ({} worker) >= {complete_target:.0}: {:>9.0}     {}",
                t.workers,
                t.complete_per_s,
                verdict(t.complete_per_s >= complete_target)
            );
            if backend == "postgres" {
                println!(
                    "  {backend:<8} enqueued jobs/s >= {TARGET_POSTGRES_PER_S:.0}:            {:>9.0}     {}",
                    t.enqueue_per_s,
                    verdict(t.enqueue_per_s >= TARGET_POSTGRES_PER_S)
                );
            }
        }
        if let Some(l) = &result.lateness {
            println!(
                "  {backend:<8} lateness p99 <= {TARGET_P99_MS:.0} ms:                {:>9} ms  {}",
                l.p99.show(),
                verdict(!l.p99.censored && l.p99.ms <= TARGET_P99_MS)
            );
        }
    }
}

async fn run(settings: Settings) -> Result<(), BoxError> {
    let mut results = Vec::new();
    let sqlite = bench_backend("sqlite", &settings, async || Ok(Some(TestDb::sqlite().await?))).await?;
    results.extend(sqlite);
    let postgres = bench_backend("postgres", &settings, async || Ok(TestDb::postgres().await?)).await?;
    let postgres_skipped = postgres.is_none();
    results.extend(postgres);
    print_report(&settings, &results, postgres_skipped);
    Ok(())
}

fn main() {
    let settings = Settings::from_env();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(settings)) {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}
