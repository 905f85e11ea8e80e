//! The job worker: claims due jobs, runs their handlers, records the outcome.
//!
//! Production runs [`Worker::run`], which sleeps until the next job is due or
//! an enqueue wakes it. Tests call [`Worker::run_once`] or
//! [`Worker::run_until_idle`] and move a manual clock instead of sleeping.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::Result;
use crate::clock::Clock;
use crate::jobs::{FailOutcome, Job, JobStore, Lease};

/// Why a handler did not finish its job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Worth retrying later (timeouts, 5xx, rate limits).
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying cannot help (bad data, 4xx); the job goes dead at once.
    #[error("permanent: {0}")]
    Permanent(String),
    /// Not a failure: the job cannot run before this time (an earlier job of
    /// its group is unfinished). It is given back without using an attempt.
    #[error("deferred until {0}")]
    Defer(chrono::DateTime<chrono::Utc>),
}

/// Exponential backoff between attempts of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
    /// Spread retries over [delay/2, delay] so that jobs failing together do
    /// not retry together.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base: Duration::from_secs(2), max: Duration::from_secs(600), jitter: true }
    }
}

impl RetryPolicy {
    /// The delay before retrying after the given (1-based) attempt failed.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let delay = self.base.saturating_mul(1u32 << exp).min(self.max);
        if self.jitter && !delay.is_zero() {
            let half = delay / 2;
            half + Duration::from_millis(rand::rng().random_range(0..=half.as_millis() as u64))
        } else {
            delay
        }
    }
}

/// What went wrong with a job, for a [`JobObserver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobTrouble {
    /// Its handler panicked; the attempt counts as a transient failure.
    Panicked,
    /// It will not run again (out of attempts, or a permanent failure).
    Dead,
}

impl JobTrouble {
    pub fn as_str(self) -> &'static str {
        match self {
            JobTrouble::Panicked => "panicked",
            JobTrouble::Dead => "dead",
        }
    }
}

/// Told about a job's trouble after it is recorded on the job, so that it
/// also reaches the timeline (where the job concerns an order). Whatever it
/// does, it must not fail the job: errors are its own to log.
#[async_trait]
pub trait JobObserver: Send + Sync {
    async fn job_trouble(&self, job: &Job, trouble: JobTrouble, error: &str);
}

/// Runs jobs of one kind.
#[async_trait]
pub trait JobHandler: Send + Sync {
    async fn run(&self, job: &Job) -> Result<(), JobError>;

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default()
    }
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Identifies this worker in the job table (`locked_by`).
    pub name: String,
    /// Jobs claimed (and run concurrently) at once.
    pub batch_size: u32,
    /// Batches in flight at once: while one batch's jobs run and are
    /// recorded, the next is already being claimed, so the round trips of
    /// claim and completion overlap instead of adding up. Up to
    /// `batch_size * batches_in_flight` handlers run at once.
    pub batches_in_flight: u32,
    /// How long a claim lasts. A handler is cut off at 80% of it, so that a
    /// slow handler is not still running when another worker reclaims its job.
    pub lease: Duration,
    /// Longest sleep between checks, which bounds how late an expired lease
    /// is noticed.
    pub idle_poll: Duration,
    /// How long in-flight handlers may finish after shutdown is requested;
    /// the leases of those still running are then released.
    pub shutdown_grace: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            name: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            batch_size: 64,
            batches_in_flight: 2,
            lease: Duration::from_secs(60),
            idle_poll: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// What one or more batches did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunReport {
    pub claimed: usize,
    pub completed: usize,
    pub retrying: usize,
    /// Given back to wait for an earlier job of their group.
    pub deferred: usize,
    pub dead: usize,
    /// Finished after the lease was lost (cancelled or reclaimed meanwhile).
    pub lease_lost: usize,
    /// Given back unfinished at shutdown.
    pub released: usize,
    /// The outcome could not be written; the lease will expire and the job
    /// runs again.
    pub store_errors: usize,
}

impl RunReport {
    fn add(&mut self, other: RunReport) {
        self.claimed += other.claimed;
        self.completed += other.completed;
        self.retrying += other.retrying;
        self.deferred += other.deferred;
        self.dead += other.dead;
        self.lease_lost += other.lease_lost;
        self.released += other.released;
        self.store_errors += other.store_errors;
    }
}

/// How a handler's run ended, before its success is recorded.
enum Ran {
    Succeeded,
    Settled(Outcome),
}

enum Outcome {
    Completed,
    Retrying,
    Deferred,
    Dead,
    LeaseLost,
    StoreError,
}

pub struct Worker {
    store: Arc<dyn JobStore>,
    clock: Arc<dyn Clock>,
    handlers: HashMap<String, Arc<dyn JobHandler>>,
    kinds: Vec<String>,
    config: WorkerConfig,
    observer: Option<Arc<dyn JobObserver>>,
    /// When this worker last looked for expired last attempts.
    last_expiry_sweep: std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
}

/// How often a worker looks for leases that expired on a job's last
/// attempt. Leases last seconds to minutes, so looking before every claim
/// (a write, on SQLite a turn of the write lock) only cost throughput.
const EXPIRY_SWEEP_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

impl Worker {
    pub fn new(store: Arc<dyn JobStore>, clock: Arc<dyn Clock>, config: WorkerConfig) -> Self {
        Worker {
            store,
            clock,
            handlers: HashMap::new(),
            kinds: Vec::new(),
            config,
            observer: None,
            last_expiry_sweep: std::sync::Mutex::new(None),
        }
    }

    /// Sets who hears of panicking handlers and dead jobs.
    pub fn observe(&mut self, observer: Arc<dyn JobObserver>) -> &mut Self {
        self.observer = Some(observer);
        self
    }

    /// Registers the handler of a job kind. Only registered kinds are claimed,
    /// so replicas of different versions can share one queue.
    pub fn register(&mut self, kind: &str, handler: Arc<dyn JobHandler>) -> &mut Self {
        if self.handlers.insert(kind.to_string(), handler).is_none() {
            self.kinds.push(kind.to_string());
        }
        self
    }

    pub fn kinds(&self) -> &[String] {
        &self.kinds
    }

    /// Claims one batch of due jobs and runs it to the end.
    pub async fn run_once(&self) -> Result<RunReport> {
        self.run_batch(&CancellationToken::new()).await
    }

    /// Runs batches until no job is due at the current clock time.
    pub async fn run_until_idle(&self) -> Result<RunReport> {
        let mut total = RunReport::default();
        loop {
            let report = self.run_batch(&CancellationToken::new()).await?;
            total.add(report);
            if report.claimed == 0 {
                return Ok(total);
            }
        }
    }

    /// Runs until `shutdown` is cancelled, sleeping until the next job is due
    /// or an enqueue wakes it; [`WorkerConfig::batches_in_flight`] claim
    /// loops share the work.
    pub async fn run(&self, shutdown: CancellationToken) {
        if self.kinds.is_empty() {
            return;
        }
        let loops = (0..self.config.batches_in_flight.max(1)).map(|_| self.claim_loop(&shutdown));
        futures::future::join_all(loops).await;
    }

    /// Claims and runs batch after batch until `shutdown` is cancelled.
    async fn claim_loop(&self, shutdown: &CancellationToken) {
        let wakeup = self.store.wakeup();
        let mut error_backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            let claimed = match self.run_batch(shutdown).await {
                Ok(report) => {
                    error_backoff = Duration::from_millis(100);
                    report.claimed
                }
                Err(e) => {
                    tracing::error!(error = %e, worker = %self.config.name, "claiming jobs failed");
                    metrics::counter!("mangwale_job_claim_errors_total").increment(1);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(error_backoff) => {}
                    }
                    error_backoff = (error_backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if claimed >= self.config.batch_size as usize {
                continue;
            }
            let wait = match self.store.next_due(&self.kinds).await {
                Ok(Some(due)) => (due - self.clock.now()).to_std().unwrap_or(Duration::ZERO).min(self.config.idle_poll),
                Ok(None) | Err(_) => self.config.idle_poll,
            };
            // A due job we could not claim is held by another replica's open
            // transaction; give it a moment instead of spinning.
            let wait = if claimed == 0 { wait.max(Duration::from_millis(2)) } else { wait };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = wakeup.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn run_batch(&self, shutdown: &CancellationToken) -> Result<RunReport> {
        let now = self.clock.now();
        let expired = if self.expiry_sweep_due(now) { self.store.expire_last_attempts(now).await? } else { Vec::new() };
        for job in &expired {
            let error = job.last_error.as_deref().unwrap_or("lease expired on the last attempt");
            tracing::error!(job_id = job.id, kind = %job.kind, attempt = job.attempts, error, "job is dead");
            metrics::counter!("mangwale_jobs_dead_total", "kind" => job.kind.clone()).increment(1);
            if let Some(observer) = &self.observer {
                observer.job_trouble(job, JobTrouble::Dead, error).await;
            }
        }
        let jobs =
            self.store.claim(&self.kinds, &self.config.name, self.config.batch_size, self.config.lease, now).await?;
        let mut report = RunReport { claimed: jobs.len(), dead: expired.len(), ..RunReport::default() };
        if jobs.is_empty() {
            return Ok(report);
        }
        let mut unfinished: HashMap<i64, Lease> = jobs.iter().map(|j| (j.id, j.lease())).collect();
        // Handlers that finish together are recorded together: every
        // success ready at the same moment is completed in one statement.
        let batch = self.config.batch_size.max(1) as usize;
        let mut running =
            jobs.into_iter().map(|job| self.execute(job)).collect::<FuturesUnordered<_>>().ready_chunks(batch);
        let grace = async {
            shutdown.cancelled().await;
            tokio::time::sleep(self.config.shutdown_grace).await;
        };
        tokio::pin!(grace);
        // Completions are recorded beside the handlers still running, never
        // instead of polling them: a handler may hold the store's write
        // lock that the completion needs.
        let mut settling = FuturesUnordered::new();
        let mut all_ran = false;
        while !(all_ran && settling.is_empty()) {
            tokio::select! {
                next = running.next(), if !all_ran => match next {
                    Some(ran) => settling.push(self.settle(ran)),
                    None => all_ran = true,
                },
                Some(settled) = settling.next(), if !settling.is_empty() => {
                    for (id, outcome) in settled {
                        unfinished.remove(&id);
                        match outcome {
                            Outcome::Completed => report.completed += 1,
                            Outcome::Retrying => report.retrying += 1,
                            Outcome::Deferred => report.deferred += 1,
                            Outcome::Dead => report.dead += 1,
                            Outcome::LeaseLost => report.lease_lost += 1,
                            Outcome::StoreError => report.store_errors += 1,
                        }
                    }
                }
                _ = &mut grace => break,
            }
        }
        drop(running);
        for lease in unfinished.into_values() {
            match self.store.release(lease, self.clock.now()).await {
                Ok(_) => report.released += 1,
                Err(e) => tracing::warn!(error = %e, job_id = lease.job_id, "releasing a lease at shutdown failed"),
            }
        }
        Ok(report)
    }

    /// Whether to look for expired last attempts now: at most every
    /// [`EXPIRY_SWEEP_EVERY`] of the worker's clock (and whenever the clock
    /// went back).
    fn expiry_sweep_due(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        let mut last = self.last_expiry_sweep.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|at| now - at >= EXPIRY_SWEEP_EVERY || now < at);
        if due {
            *last = Some(now);
        }
        due
    }

    /// Completes the successes among `ran` in one store call, and records
    /// every job's outcome.
    async fn settle(&self, ran: Vec<(Job, Ran)>) -> Vec<(i64, Outcome)> {
        let succeeded: Vec<Lease> =
            ran.iter().filter(|(_, r)| matches!(r, Ran::Succeeded)).map(|(job, _)| job.lease()).collect();
        let mut completed = match self.store.complete_many(&succeeded, self.clock.now()).await {
            Ok(done) => {
                done.into_iter().map(|held| if held { Outcome::Completed } else { Outcome::LeaseLost }).collect()
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = succeeded.len(), "recording completed jobs failed");
                succeeded.iter().map(|_| Outcome::StoreError).collect::<Vec<_>>()
            }
        }
        .into_iter();
        ran.into_iter()
            .map(|(job, ran)| {
                let outcome = match ran {
                    Ran::Succeeded => completed.next().unwrap_or(Outcome::StoreError),
                    Ran::Settled(outcome) => outcome,
                };
                let label = match outcome {
                    Outcome::Completed => "completed",
                    Outcome::Retrying => "retrying",
                    Outcome::Deferred => "deferred",
                    Outcome::Dead => "dead",
                    Outcome::LeaseLost => "lease_lost",
                    Outcome::StoreError => "store_error",
                };
                metrics::counter!("mangwale_jobs_finished_total", "kind" => job.kind, "outcome" => label).increment(1);
                (job.id, outcome)
            })
            .collect()
    }

    /// Runs a job's handler and records a failure or deferral; a success is
    /// left to [`Worker::settle`].
    async fn execute(&self, job: Job) -> (Job, Ran) {
        let started = self.clock.now();
        let kind = job.kind.clone();
        let lateness = (started - job.run_at).to_std().unwrap_or(Duration::ZERO);
        metrics::histogram!("mangwale_job_lateness_seconds", "kind" => kind.clone()).record(lateness.as_secs_f64());
        let Some(handler) = self.handlers.get(&job.kind) else {
            // Unreachable: only registered kinds are claimed.
            let outcome = self.record_failure(&job, "no handler for this kind", None).await;
            return (job, Ran::Settled(outcome));
        };
        let timer = Instant::now();
        // A panicking handler is a failed attempt of its job, not the end of
        // the worker: the panic is caught here, recorded on the job (its last
        // error) and retried like any transient failure.
        let run = std::panic::AssertUnwindSafe(handler.run(&job)).catch_unwind();
        let mut panicked = None;
        let result = match tokio::time::timeout(self.config.lease.mul_f32(0.8), run).await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => {
                let message = crate::supervise::panic_message(panic.as_ref());
                tracing::error!(job_id = job.id, kind = %kind, attempt = job.attempts, panic = %message, "job handler panicked");
                metrics::counter!("mangwale_job_panics_total", "kind" => kind.clone()).increment(1);
                let error = format!("handler panicked: {message}");
                panicked = Some(error.clone());
                Err(JobError::Transient(error))
            }
            Err(_) => Err(JobError::Transient("handler timed out".into())),
        };
        metrics::histogram!("mangwale_job_duration_seconds", "kind" => kind.clone())
            .record(timer.elapsed().as_secs_f64());
        let outcome = match result {
            Ok(()) => return (job, Ran::Succeeded),
            Err(JobError::Transient(msg)) => {
                let retry_at = self.clock.now()
                    + chrono::Duration::from_std(handler.retry_policy().delay(job.attempts)).unwrap_or_default();
                self.record_failure(&job, &msg, Some(retry_at)).await
            }
            Err(JobError::Permanent(msg)) => self.record_failure(&job, &msg, None).await,
            Err(JobError::Defer(until)) => match self.store.defer(job.lease(), until, self.clock.now()).await {
                Ok(true) => Outcome::Deferred,
                Ok(false) => Outcome::LeaseLost,
                Err(e) => {
                    tracing::error!(error = %e, job_id = job.id, kind = %kind, "deferring a job failed");
                    Outcome::StoreError
                }
            },
        };
        if let (Some(error), Some(observer)) = (&panicked, &self.observer) {
            observer.job_trouble(&job, JobTrouble::Panicked, error).await;
        }
        (job, Ran::Settled(outcome))
    }

    async fn record_failure(&self, job: &Job, error: &str, retry_at: Option<chrono::DateTime<chrono::Utc>>) -> Outcome {
        match self.store.fail(job.lease(), error, retry_at, self.clock.now()).await {
            Ok(FailOutcome::Retrying) => {
                tracing::warn!(job_id = job.id, kind = %job.kind, attempt = job.attempts, error, "job failed; will retry");
                Outcome::Retrying
            }
            Ok(FailOutcome::Dead) => {
                tracing::error!(job_id = job.id, kind = %job.kind, attempt = job.attempts, error, "job is dead");
                metrics::counter!("mangwale_jobs_dead_total", "kind" => job.kind.clone()).increment(1);
                if let Some(observer) = &self.observer {
                    observer.job_trouble(job, JobTrouble::Dead, error).await;
                }
                Outcome::Dead
            }
            Ok(FailOutcome::LeaseLost) => Outcome::LeaseLost,
            Err(e) => {
                tracing::error!(error = %e, job_id = job.id, "recording a failed job failed");
                Outcome::StoreError
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy { base: Duration::from_secs(2), max: Duration::from_secs(60), jitter: false };
        assert_eq!(p.delay(1), Duration::from_secs(2));
        assert_eq!(p.delay(2), Duration::from_secs(4));
        assert_eq!(p.delay(5), Duration::from_secs(32));
        assert_eq!(p.delay(6), Duration::from_secs(60));
        assert_eq!(p.delay(100), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_within_half_and_full_delay() {
        let p = RetryPolicy { base: Duration::from_secs(2), max: Duration::from_secs(60), jitter: true };
        for attempt in 1..10 {
            let full = RetryPolicy { jitter: false, ..p }.delay(attempt);
            let d = p.delay(attempt);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
    }
}
