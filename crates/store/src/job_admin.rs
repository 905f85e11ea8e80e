//! What operators do with the job queue: list dead jobs, retry or discard
//! one, and see the queue by kind.
//!
//! Retry and discard are compare-and-set on the job's state: of two
//! operators (or two replicas) acting on one dead job, one wins and the
//! other finds it no longer dead. Each writes its timeline event in the same
//! transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use sqlx::Row;

use crate::jobs::{Job, JobState, OVERDUE_AFTER};
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::timeline::NewEvent;
use crate::{Result, StoreError, from_ms, to_ms};

/// A dead job and when it went dead.
#[derive(Debug, Clone)]
pub struct DeadJob {
    pub job: Job,
    pub dead_at: DateTime<Utc>,
}

/// The queue of one job kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindQueue {
    pub kind: String,
    pub pending: u64,
    pub running: u64,
    pub dead: u64,
    /// Pending jobs more than [`OVERDUE_AFTER`] past their due time.
    pub overdue: u64,
    /// The due time of the most overdue pending job, if any is overdue.
    pub oldest_overdue: Option<DateTime<Utc>>,
}

/// The outcome of a retry or a discard.
#[derive(Debug, Clone)]
pub enum DeadJobChange {
    /// The job as it is now.
    Changed(Job),
    /// The job is not dead (any more): nothing was written.
    NotDead(JobState),
    NotFound,
}

#[async_trait]
pub trait JobAdminStore: Send + Sync {
    /// The job with this id, in whatever state.
    async fn job(&self, id: i64) -> Result<Option<Job>>;

    /// Dead jobs with an id above `after`, oldest (lowest id) first.
    async fn dead_jobs(&self, after: i64, limit: u32) -> Result<Vec<DeadJob>>;

    /// Makes a dead job pending and due at `now` with its attempts reset (a
    /// fresh budget), and records `event`; wakes the workers of every
    /// replica.
    async fn retry_dead_job(&self, id: i64, event: NewEvent, now: DateTime<Utc>) -> Result<DeadJobChange>;

    /// Moves a dead job to `discarded` (off the dead list, pruned like a
    /// finished job), and records `event`.
    async fn discard_dead_job(&self, id: i64, event: NewEvent, now: DateTime<Utc>) -> Result<DeadJobChange>;

    /// Pending, running, dead and overdue jobs by kind, in kind order.
    async fn queue_by_kind(&self, now: DateTime<Utc>) -> Result<Vec<KindQueue>>;
}

/// The per-kind counts, the same SQL on both backends (`$1`: the time
/// before which a pending job is overdue). Each branch reads one partial
/// index (`jobs_due`, `jobs_leased`, `jobs_dead`) instead of the whole table.
const QUEUE_BY_KIND: &str = "SELECT kind,
        SUM(pending) AS pending, SUM(running) AS running, SUM(dead) AS dead, SUM(overdue) AS overdue,
        MIN(oldest_overdue) AS oldest_overdue
    FROM (
        SELECT kind, 1 AS pending, 0 AS running, 0 AS dead,
               CASE WHEN run_at < $1 THEN 1 ELSE 0 END AS overdue,
               CASE WHEN run_at < $1 THEN run_at END AS oldest_overdue
        FROM jobs WHERE state = 'pending'
        UNION ALL
        SELECT kind, 0, 1, 0, 0, NULL FROM jobs WHERE state = 'running'
        UNION ALL
        SELECT kind, 0, 0, 1, 0, NULL FROM jobs WHERE state = 'dead'
    ) AS live
    GROUP BY kind ORDER BY kind";

const JOB_COLUMNS: &str =
    "id, kind, key, group_key, payload, state, attempts, max_attempts, run_at, lease_token, last_error, created_at";

fn queue_from_row<R: Row>(row: &R) -> Result<KindQueue>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let count = |name: &str| -> Result<u64> { Ok(row.try_get::<i64, _>(name)?.max(0) as u64) };
    Ok(KindQueue {
        kind: row.try_get("kind")?,
        pending: count("pending")?,
        running: count("running")?,
        dead: count("dead")?,
        overdue: count("overdue")?,
        oldest_overdue: row.try_get::<Option<i64>, _>("oldest_overdue")?.map(from_ms),
    })
}

fn overdue_before(now: DateTime<Utc>) -> i64 {
    to_ms(now) - OVERDUE_AFTER.as_millis() as i64
}

/// What a retry or a discard does to a dead job (SQLite and PostgreSQL
/// alike; `$2` is now).
const RETRY: &str = "UPDATE jobs SET state = 'pending', attempts = 0, run_at = $2, lease_until = NULL,
        locked_by = NULL, updated_at = $2
    WHERE id = $1 AND state = 'dead'";
const DISCARD: &str = "UPDATE jobs SET state = 'discarded', updated_at = $2 WHERE id = $1 AND state = 'dead'";

impl SqliteStore {
    /// Runs `change` ([`RETRY`] or [`DISCARD`]) with `event` on the writer
    /// thread, in one immediate transaction.
    async fn change_dead_job(
        &self,
        id: i64,
        change: &'static str,
        event: NewEvent,
        now: DateTime<Utc>,
    ) -> Result<DeadJobChange> {
        let state = self
            .exec
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let changed = tx.prepare_cached(&change.replace('$', "?"))?.execute(params![id, to_ms(now)])?;
                if changed == 0 {
                    let state: Option<String> = tx
                        .prepare_cached("SELECT state FROM jobs WHERE id = ?1")?
                        .query_row(params![id], |r| r.get(0))
                        .optional()?;
                    return Ok(Err(state));
                }
                crate::sqlite_writes::insert_event(&tx, &event)?;
                tx.commit()?;
                Ok(Ok(()))
            })
            .await?;
        match state {
            Ok(()) => {
                self.wakeup.notify_one();
                let job = self.job(id).await?.ok_or_else(|| StoreError::Corrupt(format!("job {id} vanished")))?;
                Ok(DeadJobChange::Changed(job))
            }
            Err(None) => Ok(DeadJobChange::NotFound),
            Err(Some(state)) => Ok(DeadJobChange::NotDead(
                JobState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("job state {state}")))?,
            )),
        }
    }
}

#[async_trait]
impl JobAdminStore for SqliteStore {
    async fn job(&self, id: i64) -> Result<Option<Job>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(crate::sqlite::job_from_row).transpose()
    }

    async fn dead_jobs(&self, after: i64, limit: u32) -> Result<Vec<DeadJob>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS}, updated_at FROM jobs WHERE state = 'dead' AND id > ?1 ORDER BY id LIMIT ?2"
        )))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeadJob { job: crate::sqlite::job_from_row(row)?, dead_at: from_ms(row.try_get("updated_at")?) })
            })
            .collect()
    }

    async fn retry_dead_job(&self, id: i64, event: NewEvent, now: DateTime<Utc>) -> Result<DeadJobChange> {
        self.change_dead_job(id, RETRY, event, now).await
    }

    async fn discard_dead_job(&self, id: i64, event: NewEvent, now: DateTime<Utc>) -> Result<DeadJobChange> {
        self.change_dead_job(id, DISCARD, event, now).await
    }

    async fn queue_by_kind(&self, now: DateTime<Utc>) -> Result<Vec<KindQueue>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(QUEUE_BY_KIND.replace('$', "?")))
            .bind(overdue_before(now))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(queue_from_row).collect()
    }
}

impl PgStore {
    async fn change_dead_job(
        &self,
        id: i64,
        change: &'static str,
        event: NewEvent,
        now: DateTime<Utc>,
    ) -> Result<DeadJobChange> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(change).bind(id).bind(to_ms(now)).execute(&mut *tx).await?.rows_affected();
        if changed == 0 {
            tx.rollback().await?;
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
            return Ok(match state {
                None => DeadJobChange::NotFound,
                Some(state) => DeadJobChange::NotDead(
                    JobState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("job state {state}")))?,
                ),
            });
        }
        crate::postgres::insert_event(&mut *tx, &event).await?;
        // A retried job is due now: the workers of every replica hear of it
        // when this commits.
        sqlx::query("SELECT pg_notify($1, '')").bind(crate::postgres::JOBS_CHANNEL).execute(&mut *tx).await?;
        tx.commit().await?;
        self.wakeup.notify_one();
        let job = self.job(id).await?.ok_or_else(|| StoreError::Corrupt(format!("job {id} vanished")))?;
        Ok(DeadJobChange::Changed(job))
    }
}

#[async_trait]
impl JobAdminStore for PgStore {
    async fn job(&self, id: i64) -> Result<Option<Job>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(crate::postgres::job_from_row).transpose()
    }

    async fn dead_jobs(&self, after: i64, limit: u32) -> Result<Vec<DeadJob>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS}, updated_at FROM jobs WHERE state = 'dead' AND id > $1 ORDER BY id LIMIT $2"
        )))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeadJob { job: crate::postgres::job_from_row(row)?, dead_at: from_ms(row.try_get("updated_at")?) })
            })
            .collect()
    }

    async fn retry_dead_job(&self, id: i64, event: NewEvent, now: DateTime<Utc>) -> Result<DeadJobChange> {
        self.change_dead_job(id, RETRY, event, now).await
    }

    async fn discard_dead_job(&self, id: i64, event: NewEvent, now: DateTime<Utc>) -> Result<DeadJobChange> {
        self.change_dead_job(id, DISCARD, event, now).await
    }

    async fn queue_by_kind(&self, now: DateTime<Utc>) -> Result<Vec<KindQueue>> {
        let rows = sqlx::query(QUEUE_BY_KIND).bind(overdue_before(now)).fetch_all(&self.pool).await?;
        rows.iter().map(queue_from_row).collect()
    }
}
