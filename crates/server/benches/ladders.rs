//! Many concurrently active escalation ladders on SQLite: how fast they
//! start, how much memory the service holds with all of them active, and
//! how late their steps fire while they come due at a steady rate. A
//! benchmark, not a test: it asserts nothing.
//!
//!     cargo bench -p mangwale-server --bench ladders
//!
//! BENCH_LADDERS ladders (default 100,000) are started through the
//! orchestrator (`comms::start`: ladder, step rows, step job and timeline
//! event in one transaction each). Their one step, an app push, is due
//! 10 minutes after the ladder starts, and the starts are spaced on the
//! service's clock so that the steps come due at BENCH_RATE per second
//! (default 1,000). Then the clock runs in real time and the production
//! worker fires them: each step is claimed (fenced), sent through the
//! production push client to the in-process FCM simulator over HTTP, and
//! recorded, and the ladder runs out. Lateness is the time from a step's
//! due time to the moment its handler starts.
//!
//! Target: p99 lateness at most 100 ms while firing 1,000 steps per second.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mangwale_core::ladder::LadderKind;
use mangwale_core::{E164, OrderId};
use mangwale_server::comms::{self, LadderRequest};
use mangwale_server::{Config, PrepareOptions};
use mangwale_store::{Clock, Job, JobError, JobHandler, RetryPolicy, Worker, WorkerConfig};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const STEP_AFTER_SECS: i64 = 600;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The service's clock: set by hand while the ladders start (so that their
/// steps fall due at the rate asked for), then real time from a chosen
/// origin.
#[derive(Debug)]
struct BenchClock {
    mode: Mutex<Mode>,
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Fixed(DateTime<Utc>),
    Running { origin: DateTime<Utc>, since: Instant },
}

impl Clock for BenchClock {
    fn now(&self) -> DateTime<Utc> {
        match *self.mode.lock().unwrap() {
            Mode::Fixed(t) => t,
            Mode::Running { origin, since } => origin + chrono::Duration::from_std(since.elapsed()).unwrap_or_default(),
        }
    }
}

impl BenchClock {
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

/// Records each step's lateness, then runs the production step handler.
struct Lateness {
    inner: Arc<dyn JobHandler>,
    clock: Arc<BenchClock>,
    samples: Mutex<Vec<f64>>,
}

#[async_trait]
impl JobHandler for Lateness {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let late = (self.clock.now() - job.run_at).num_microseconds().unwrap_or(0) as f64 / 1000.0;
        self.samples.lock().unwrap().push(late.max(0.0));
        self.inner.run(job).await
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry_policy()
    }
}

/// Resident memory, MiB: in all, and the part that is the process's own
/// (anonymous: heaps, SQLite page caches) rather than pages of the database
/// file mapped by SQLite's memory-mapped reads, which the kernel shares and
/// can drop.
fn rss_mib() -> f64 {
    memory_field("VmRSS:")
}

fn memory_field(name: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(run());
}

async fn run() {
    let ladders = env_u64("BENCH_LADDERS", 100_000);
    let rate = env_u64("BENCH_RATE", 1_000).max(1);
    let dir = tempfile::tempdir().unwrap();
    let ladder_file = dir.path().join("ladders.toml");
    // The built-in ladders, with customer_status reduced to one app push
    // ten minutes after the start.
    let defaults = mangwale_core::ladder::DEFAULT_LADDERS_TOML;
    let section = defaults.find("[customer_status]").expect("customer_status is a built-in ladder");
    let steps = section + defaults[section..].find("steps = [").expect("its steps");
    let end = steps + defaults[steps..].find("\n]").expect("the end of its steps") + 2;
    let definitions = format!(
        "{}steps = [\n  {{ channel = \"app_push\", after = {STEP_AFTER_SECS} }},\n]{}",
        &defaults[..steps],
        &defaults[end..]
    );
    assert!(definitions.contains(&format!("after = {STEP_AFTER_SECS}")), "the bench ladder is defined");
    std::fs::write(&ladder_file, definitions).unwrap();
    let vars = vec![
        ("DATABASE_URL".to_string(), format!("sqlite:{}", dir.path().join("bench.db").display())),
        ("API_KEYS".to_string(), "bench-api-key-0123456789".to_string()),
        ("EXOTEL_WEBHOOK_TOKEN".to_string(), "bench-webhook-token-0123456789".to_string()),
        ("LADDERS_FILE".to_string(), ladder_file.display().to_string()),
        ("LOG_FORMAT".to_string(), "text".to_string()),
    ];
    let config = Config::from_vars(vars).unwrap();
    let t0 = Utc::now();
    let clock = Arc::new(BenchClock { mode: Mutex::new(Mode::Fixed(t0)) });
    let state = mangwale_server::prepare_with(config, clock.clone(), PrepareOptions::default()).await.unwrap();
    let rss_before = rss_mib();

    // Start: ladder i starts at t0 + i/rate, so its step is due at
    // t0 + 600 s + i/rate.
    println!("ladders: {ladders}, steps due at {rate}/s, SQLite");
    let started = Instant::now();
    for i in 0..ladders {
        let at = t0 + chrono::Duration::microseconds((i as i64) * 1_000_000 / rate as i64);
        clock.set(Mode::Fixed(at));
        let mut request =
            LadderRequest::new(LadderKind::CustomerStatus, OrderId::parse(&format!("B-{i}")).unwrap(), "bench");
        request.party_id = Some(format!("C{i}"));
        request.phone = Some(E164::parse(&format!("+9191{:08}", i % 100_000_000)).unwrap());
        request.context.status = Some("picked_up".into());
        comms::start(&state, request).await.unwrap();
    }
    let start_secs = started.elapsed().as_secs_f64();
    let rss_active = rss_mib();
    let stats = state.store.comms_stats(t0 - chrono::Duration::hours(1), t0 + chrono::Duration::days(1)).await.unwrap();
    println!(
        "started {ladders} ladders in {start_secs:.1} s: {:.0} ladders/s; active now: {}",
        ladders as f64 / start_secs,
        stats.active
    );
    println!("resident memory: {rss_before:.0} MiB before, {rss_active:.0} MiB with every ladder active");

    // Fire: the clock now runs from one second before the first step.
    let first_due = t0 + chrono::Duration::seconds(STEP_AFTER_SECS);
    let lateness = Arc::new(Lateness {
        inner: comms::steps::handler(&state),
        clock: clock.clone(),
        samples: Mutex::new(Vec::with_capacity(ladders as usize)),
    });
    let mut worker = Worker::new(state.store.clone(), clock.clone(), WorkerConfig::default());
    worker.register(comms::STEP_JOB, lateness.clone());
    let worker = Arc::new(worker);
    let stop = CancellationToken::new();
    clock.set(Mode::Running { origin: first_due - chrono::Duration::seconds(1), since: Instant::now() });
    let firing = Instant::now();
    let task = tokio::spawn({
        let (worker, stop) = (worker.clone(), stop.clone());
        async move { worker.run(stop).await }
    });
    let deadline = Duration::from_secs(ladders / rate + 120);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let fired = lateness.samples.lock().unwrap().len() as u64;
        if fired >= ladders || firing.elapsed() > deadline {
            break;
        }
    }
    let fire_secs = firing.elapsed().as_secs_f64() - 1.0;
    stop.cancel();
    let _ = task.await;
    let mut samples = lateness.samples.lock().unwrap().clone();
    samples.sort_by(f64::total_cmp);
    let stats = state.store.comms_stats(t0 - chrono::Duration::hours(1), t0 + chrono::Duration::days(1)).await.unwrap();
    println!(
        "fired {} steps in {fire_secs:.1} s: {:.0} steps/s (due at {rate}/s); sent {}, failed {}, ladders still active {}",
        samples.len(),
        samples.len() as f64 / fire_secs.max(0.001),
        stats.steps_sent.values().sum::<u64>(),
        stats.steps_failed,
        stats.active
    );
    println!(
        "step lateness: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 <= 100 ms: {})",
        percentile(&samples, 0.50),
        percentile(&samples, 0.90),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or(0.0),
        if percentile(&samples, 0.99) <= 100.0 && samples.len() as u64 >= ladders { "met" } else { "MISSED" }
    );
    println!(
        "resident memory after firing: {:.0} MiB ({:.0} MiB anonymous, {:.0} MiB of mapped database file)",
        rss_mib(),
        memory_field("RssAnon:"),
        memory_field("RssFile:")
    );
}
