//! The durable job queue: the basis of every timer and side effect.
//!
//! A job is enqueued with a due time and a unique idempotency key, claimed by a
//! worker under a lease, then completed, failed (retried with backoff until it
//! is dead) or cancelled. Every claim bumps the job's fencing token, so a
//! worker that lost its lease can no longer change the job.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::Notify;

use crate::Result;

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Which handler runs it (`ladder_step`, `jupiter_outbox`, ...).
    pub kind: String,
    /// Idempotency key: a second enqueue with the same key is a no-op. None
    /// only for a follow-up that an enclosing once-only write (an inbound
    /// event's deduplication) already guards.
    pub key: Option<String>,
    /// Jobs sharing a group can be cancelled together.
    pub group: Option<String>,
    pub payload: Value,
    pub run_at: DateTime<Utc>,
    pub max_attempts: u32,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, key: impl Into<String>, payload: Value, run_at: DateTime<Utc>) -> Self {
        NewJob { kind: kind.into(), key: Some(key.into()), group: None, payload, run_at, max_attempts: 10 }
    }

    /// A job without an idempotency key, for [`crate::InboundEvent::jobs`]:
    /// the event's deduplication key already makes it once-only, and a key of
    /// its own would cost a randomly placed index page per event.
    pub fn follow_up(kind: impl Into<String>, payload: Value, run_at: DateTime<Utc>) -> Self {
        NewJob { kind: kind.into(), key: None, group: None, payload, run_at, max_attempts: 10 }
    }

    pub fn in_group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
}

/// The outcome of an enqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Created(i64),
    /// A job with the same key already existed (in any state); nothing changed.
    Existing(i64),
}

impl Enqueued {
    pub fn id(self) -> i64 {
        match self {
            Enqueued::Created(id) | Enqueued::Existing(id) => id,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Running,
    Done,
    Dead,
    Cancelled,
    /// A dead job an operator gave up on: off the dead list, pruned like a
    /// finished job.
    Discarded,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
            JobState::Discarded => "discarded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => JobState::Pending,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "dead" => JobState::Dead,
            "cancelled" => JobState::Cancelled,
            "discarded" => JobState::Discarded,
            _ => return None,
        })
    }
}

/// A stored job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub key: Option<String>,
    pub group: Option<String>,
    pub payload: Value,
    pub state: JobState,
    /// Claims so far, including the current one.
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at: DateTime<Utc>,
    /// Fencing token of the current (or last) claim.
    pub lease_token: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Job {
    /// The lease a worker holds on this job after claiming it.
    pub fn lease(&self) -> Lease {
        Lease { job_id: self.id, token: self.lease_token }
    }
}

/// Proof of a claim: only the holder of the current token may finish the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub job_id: i64,
    pub token: i64,
}

/// What happened to a failed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Pending again, due at the given time.
    Retrying,
    /// Out of attempts (or permanently failed): kept and counted as dead.
    Dead,
    /// The lease was no longer ours (expired and reclaimed, or cancelled).
    LeaseLost,
}

/// Queue figures for health and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    pub pending: u64,
    /// Pending jobs whose due time is more than [`OVERDUE_AFTER`] in the past.
    pub overdue: u64,
    pub running: u64,
    pub dead: u64,
    /// How late the most overdue pending job is, in milliseconds.
    pub lag_ms: u64,
}

/// A due job not started within this long counts as overdue.
pub const OVERDUE_AFTER: Duration = Duration::from_secs(1);

#[async_trait]
pub trait JobStore: Send + Sync {
    /// Adds a job unless one with the same key exists, and wakes workers.
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued>;

    /// Claims up to `limit` due jobs of the given kinds for `lease`: pending
    /// jobs whose time has come, and running jobs whose lease has expired
    /// (their worker died). Each claim counts as an attempt and gets a new
    /// fencing token. Jobs whose lease expired on their last attempt are
    /// left to [`JobStore::expire_last_attempts`].
    async fn claim(
        &self,
        kinds: &[String],
        worker: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<Job>>;

    /// Marks dead, and returns, the running jobs whose lease expired on their
    /// last attempt (their worker died mid-run and no attempt is left), so
    /// the worker can report each one (`claim` passes them over).
    async fn expire_last_attempts(&self, now: DateTime<Utc>) -> Result<Vec<Job>>;

    /// Marks a claimed job done. False if the lease was lost.
    async fn complete(&self, lease: Lease, now: DateTime<Utc>) -> Result<bool> {
        Ok(self.complete_many(&[lease], now).await?.first().copied().unwrap_or(false))
    }

    /// Marks claimed jobs done in one statement (a worker's batch finishes
    /// together): for each lease, in order, whether it was still held.
    async fn complete_many(&self, leases: &[Lease], now: DateTime<Utc>) -> Result<Vec<bool>>;

    /// Records a failure: pending again at `retry_at`, or dead when `retry_at`
    /// is `None` or the job has used all its attempts.
    async fn fail(
        &self,
        lease: Lease,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<FailOutcome>;

    /// Gives a claimed job back without counting the attempt (graceful
    /// shutdown). False if the lease was lost.
    async fn release(&self, lease: Lease, now: DateTime<Utc>) -> Result<bool>;

    /// Cancels the pending or running job with this key. A running job's
    /// worker then loses its lease. True if a job was cancelled.
    async fn cancel_key(&self, key: &str, now: DateTime<Utc>) -> Result<bool>;

    /// Cancels every pending or running job of a group; returns how many.
    async fn cancel_group(&self, group: &str, now: DateTime<Utc>) -> Result<u64>;

    /// Gives a claimed job back, due again at `run_at`, without counting the
    /// attempt: the job could not run yet (an earlier job of its group is
    /// unfinished), which is not a failure. False if the lease was lost.
    async fn defer(&self, lease: Lease, run_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool>;

    /// The earliest pending or running job of `group` enqueued before job
    /// `id`, if any: what a job that must run in its group's order waits for.
    async fn earlier_unfinished(&self, group: &str, id: i64) -> Result<Option<Job>>;

    /// The job with this key, in whatever state.
    async fn job_by_key(&self, key: &str) -> Result<Option<Job>>;

    /// When the next pending job of these kinds is due (possibly in the past).
    async fn next_due(&self, kinds: &[String]) -> Result<Option<DateTime<Utc>>>;

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats>;

    /// Deletes done, cancelled and discarded jobs last changed before
    /// `before`; their idempotency keys become free again.
    async fn prune_finished(&self, before: DateTime<Utc>) -> Result<u64>;

    /// Signalled whenever a job may have become due sooner than a sleeping
    /// worker expects: on every enqueue in this process, and (PostgreSQL) on
    /// every enqueue by another replica.
    fn wakeup(&self) -> Arc<Notify>;
}

/// For each lease, in order, whether its job is among `done`.
pub(crate) fn completed_in_order(leases: &[Lease], done: &[i64]) -> Vec<bool> {
    let done: std::collections::HashSet<i64> = done.iter().copied().collect();
    leases.iter().map(|l| done.contains(&l.job_id)).collect()
}
