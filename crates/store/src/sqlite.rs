//! SQLite implementation: one file, WAL journal, foreign keys, busy timeout.
//! The default for a single node.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::calls::{CallAttempt, CallState, CallStore, ExotelRequestLog, NewCall};
use crate::inbound::{InboundEvent, InboundOutcome, InboundStore, InboundWriter};
use crate::jobs::{
    Enqueued, FailOutcome, Job, JobState, JobStore, Lease, NewJob, OVERDUE_AFTER, QueueStats, completed_in_order,
};
use crate::rows::{call_from_row, request_log_from_row};
use crate::sqlite_inbound::InboundThread;
use crate::supervise::Components;
use crate::timeline::{NewEvent, TimelineEvent, TimelineStore};
use crate::{Backend, ConnectOptions, Result, SettingsStore, Store, StoreError, from_ms, to_ms};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers.
    pub(crate) pool: SqlitePool,
    /// The one connection that writes. SQLite admits one writer at a time
    /// anyway, and a connection drops its whole page cache whenever another
    /// connection has written; writing through one connection keeps its
    /// cache of the indexes warm from one batch to the next.
    pub(crate) writer: SqlitePool,
    pub(crate) wakeup: Arc<Notify>,
    /// SQLite has one writer at a time. Writers of this process queue here,
    /// in order, instead of in SQLite's busy handler, which sleeps 1, 2, 5,
    /// 10, ... ms between tries and so turns contention into latency. (Other
    /// processes on the same file still meet the busy timeout.)
    pub(crate) write: Arc<tokio::sync::Mutex<()>>,
    /// Stops the background checkpointer.
    background: CancellationToken,
    /// The webhook write path's own connection and thread.
    inbound: InboundThread,
    /// The ladders' writes: their own connection and thread.
    pub(crate) exec: crate::sqlite_exec::SqliteExec,
    /// Hot point lookups, run on the caller's thread.
    readers: Arc<crate::sqlite_read::InlineReaders>,
    /// The supervised writer threads, for health.
    components: Components,
}

const JOB_COLUMNS: &str =
    "id, kind, key, group_key, payload, state, attempts, max_attempts, run_at, lease_token, last_error, created_at";

impl SqliteStore {
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across process crashes in WAL mode; only an
            // OS crash can lose the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory");
        // The pool's readers serve the console, reports and lookups off the
        // hot path (the hot point lookups have their own connections, see
        // `sqlite_read`). They read through the OS's file cache with a page
        // cache of their own of 8 MiB each, not through a memory map: a
        // mapped page a reader touched stays in this process's resident set
        // for each connection that mapped it, so ten readers scanning a
        // database of a few hundred MB held most of it ten times over.
        let readers = connect.clone().pragma("cache_size", "-8192").pragma("mmap_size", "0");
        // The writer maps the file: its reads are of the hot pages.
        let connect = connect.pragma("cache_size", "-16384").pragma("mmap_size", "268435456");
        let path = connect.get_filename().to_path_buf();
        if path.as_os_str() == ":memory:" || url.contains("mode=memory") {
            // The webhook writer opens the file a second time; an in-memory
            // database would be a different one for it.
            return Err(StoreError::UnsupportedUrl(format!("{url}: SQLite must be a file")));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::UnsupportedUrl(format!("cannot create {}: {e}", parent.display())))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.clamp(1, 16))
            .connect_with(readers)
            .await?;
        // The writer never checkpoints the WAL itself (a checkpoint copies
        // pages into the database file and syncs it, which would stall the
        // commit that triggered it); a background task does, see below.
        let writer =
            SqlitePoolOptions::new().max_connections(1).connect_with(connect.pragma("wal_autocheckpoint", "0")).await?;
        let (wakeup, write) = (Arc::new(Notify::new()), Arc::new(tokio::sync::Mutex::new(())));
        let components = Components::new();
        let exec = crate::sqlite_exec::SqliteExec::spawn(&path, "sqlite-ladders", write.clone(), components.clone())?;
        let readers = Arc::new(crate::sqlite_read::InlineReaders::new(&path));
        let inbound = InboundThread::spawn(path, write.clone(), wakeup.clone(), components.clone())?;
        let store = SqliteStore {
            pool,
            writer,
            wakeup,
            write,
            background: CancellationToken::new(),
            inbound,
            exec,
            readers,
            components,
        };
        store.spawn_checkpointer();
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }
}

impl SqliteStore {
    /// Moves committed WAL pages into the database file every
    /// [`CHECKPOINT_EVERY`], off the write path. PASSIVE never waits for
    /// readers or the writer; what it cannot copy now it copies next time.
    ///
    /// Under steady writes a concurrent checkpoint never catches up with the
    /// last frame, so SQLite never starts the WAL over and the file grows
    /// (every commit then extends it, which costs the kernel block
    /// allocation and zeroing). So once the WAL passes [`WAL_RESTART_FRAMES`]
    /// the checkpointer pauses this process's writers briefly and copies the
    /// few frames written since its first pass; the next commit then writes
    /// from the start of the WAL again.
    fn spawn_checkpointer(&self) {
        let (pool, writer, write, stop) =
            (self.pool.clone(), self.writer.clone(), self.write.clone(), self.background.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(CHECKPOINT_EVERY) => {}
                }
                let frames = match checkpoint(&pool).await {
                    Ok(frames) => frames,
                    Err(e) => {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                        metrics::counter!("mangwale_sqlite_checkpoint_failures_total").increment(1);
                        continue;
                    }
                };
                if frames >= WAL_RESTART_FRAMES {
                    let _paused = write.lock().await;
                    if let Err(e) = checkpoint(&writer).await {
                        tracing::warn!(error = %e, "WAL catch-up checkpoint failed");
                        metrics::counter!("mangwale_sqlite_checkpoint_failures_total").increment(1);
                    }
                }
            }
        });
    }
}

/// A PASSIVE checkpoint; the WAL's length in frames.
async fn checkpoint(pool: &SqlitePool) -> Result<i64> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(pool).await?;
    Ok(row.try_get::<i64, _>(1)?)
}

/// The WAL length (4 KiB frames, so 16 MiB) past which the checkpointer
/// makes SQLite start the WAL over.
const WAL_RESTART_FRAMES: i64 = 4096;

/// How often the WAL is checkpointed in the background.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

pub(crate) fn job_from_row(row: &SqliteRow) -> Result<Job> {
    let payload: String = row.try_get("payload")?;
    let state: String = row.try_get("state")?;
    Ok(Job {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        key: row.try_get("key")?,
        group: row.try_get("group_key")?,
        payload: serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(format!("job payload: {e}")))?,
        state: JobState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("job state {state}")))?,
        attempts: row.try_get::<i64, _>("attempts")? as u32,
        max_attempts: row.try_get::<i64, _>("max_attempts")? as u32,
        run_at: from_ms(row.try_get("run_at")?),
        lease_token: row.try_get("lease_token")?,
        last_error: row.try_get("last_error")?,
        created_at: from_ms(row.try_get("created_at")?),
    })
}

/// A job row as the writer thread's connection reads it (columns in the
/// order of the claim's `RETURNING`); parsed into a [`Job`] off the thread.
struct RawJob {
    id: i64,
    kind: String,
    key: Option<String>,
    group: Option<String>,
    payload: String,
    state: String,
    attempts: i64,
    max_attempts: i64,
    run_at: i64,
    lease_token: i64,
    last_error: Option<String>,
    created_at: i64,
}

impl RawJob {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawJob> {
        Ok(RawJob {
            id: row.get(0)?,
            kind: row.get(1)?,
            key: row.get(2)?,
            group: row.get(3)?,
            payload: row.get(4)?,
            state: row.get(5)?,
            attempts: row.get(6)?,
            max_attempts: row.get(7)?,
            run_at: row.get(8)?,
            lease_token: row.get(9)?,
            last_error: row.get(10)?,
            created_at: row.get(11)?,
        })
    }

    fn into_job(self) -> Result<Job> {
        Ok(Job {
            id: self.id,
            kind: self.kind,
            key: self.key,
            group: self.group,
            payload: serde_json::from_str(&self.payload)
                .map_err(|e| StoreError::Corrupt(format!("job payload: {e}")))?,
            state: JobState::parse(&self.state)
                .ok_or_else(|| StoreError::Corrupt(format!("job state {}", self.state)))?,
            attempts: self.attempts as u32,
            max_attempts: self.max_attempts as u32,
            run_at: from_ms(self.run_at),
            lease_token: self.lease_token,
            last_error: self.last_error,
            created_at: from_ms(self.created_at),
        })
    }
}

fn kinds_json(kinds: &[String]) -> String {
    serde_json::Value::from(kinds.to_vec()).to_string()
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued> {
        let now = Utc::now();
        let (job, inserted) = self
            .exec
            .run(move |conn| {
                let inserted = crate::sqlite_writes::insert_jobs(conn, std::slice::from_ref(&job), now)?;
                Ok((job, inserted.first().copied()))
            })
            .await?;
        match inserted {
            Some(id) => {
                self.wakeup.notify_one();
                Ok(Enqueued::Created(id))
            }
            None => {
                let key =
                    job.key.as_deref().ok_or_else(|| StoreError::Corrupt("an unkeyed job was not inserted".into()))?;
                let id: i64 =
                    sqlx::query_scalar("SELECT id FROM jobs WHERE key = ?1").bind(key).fetch_one(&self.writer).await?;
                Ok(Enqueued::Existing(id))
            }
        }
    }

    async fn claim(
        &self,
        kinds: &[String],
        worker: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<Job>> {
        let now_ms = to_ms(now);
        let lease_until = now_ms + lease.as_millis() as i64;
        let kinds = kinds_json(kinds);
        let worker = worker.to_string();
        // On the writer thread's own connection: the claimed rows come back
        // straight from SQLite, not one by one through the async driver's
        // channel (half the cost of a claim of 64 when they did).
        let mut jobs = self
            .exec
            .run(move |conn| {
                // IMMEDIATE takes the write lock up front, so two processes
                // on the same file serialise here instead of both reading
                // the same due rows.
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let rows = {
                    let mut claim = tx.prepare_cached(
                        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_token = lease_token + 1,
                                lease_until = ?2, locked_by = ?3, updated_at = ?1
                         WHERE id IN (
                             -- Two branches, each read in index order and cut at the limit,
                             -- rather than one OR that makes SQLite gather and sort every
                             -- due row before taking a handful.
                             SELECT id FROM (
                                 SELECT id, run_at FROM (
                                     SELECT id, run_at FROM jobs
                                     WHERE state = 'pending' AND run_at <= ?1 AND kind IN (SELECT value FROM json_each(?4))
                                     ORDER BY run_at, id LIMIT ?5)
                                 UNION ALL
                                 SELECT id, run_at FROM (
                                     SELECT id, run_at FROM jobs
                                     WHERE state = 'running' AND lease_until < ?1 AND attempts < max_attempts AND kind IN (SELECT value FROM json_each(?4))
                                     ORDER BY run_at, id LIMIT ?5)
                                 ORDER BY run_at, id LIMIT ?5))
                         RETURNING id, kind, key, group_key, payload, state, attempts, max_attempts, run_at, lease_token,
                                   last_error, created_at",
                    )?;
                    let rows = claim.query_map(
                        rusqlite::params![now_ms, lease_until, worker, kinds, i64::from(limit)],
                        RawJob::from_row,
                    )?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()?
                };
                tx.commit()?;
                Ok(rows)
            })
            .await?
            .into_iter()
            .map(RawJob::into_job)
            .collect::<Result<Vec<_>>>()?;
        jobs.sort_by_key(|j| (j.run_at, j.id));
        Ok(jobs)
    }

    async fn expire_last_attempts(&self, now: DateTime<Utc>) -> Result<Vec<Job>> {
        let _write = self.write.lock().await;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET state = 'dead', last_error = 'lease expired on the last attempt',
                    lease_until = NULL, locked_by = NULL, updated_at = ?1
             WHERE state = 'running' AND lease_until < ?1 AND attempts >= max_attempts
             RETURNING {JOB_COLUMNS}"
        )))
        .bind(to_ms(now))
        .fetch_all(&self.writer)
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn complete_many(&self, leases: &[Lease], now: DateTime<Utc>) -> Result<Vec<bool>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        // The leases travel as one JSON object {id: token}: one statement
        // for the batch, each row found by its primary key.
        let tokens: serde_json::Map<String, serde_json::Value> =
            leases.iter().map(|l| (l.job_id.to_string(), l.token.into())).collect();
        let tokens = serde_json::Value::Object(tokens).to_string();
        let now_ms = to_ms(now);
        let done: Vec<i64> = self
            .exec
            .run(move |conn| {
                let mut complete = conn.prepare_cached(
                    "UPDATE jobs SET state = 'done', lease_until = NULL, locked_by = NULL, updated_at = ?2
                     WHERE id IN (SELECT CAST(key AS INTEGER) FROM json_each(?1))
                       AND lease_token = json_extract(?1, '$.\"' || id || '\"') AND state = 'running'
                     RETURNING id",
                )?;
                let done = complete.query_map(rusqlite::params![tokens, now_ms], |row| row.get(0))?;
                Ok(done.collect::<rusqlite::Result<Vec<i64>>>()?)
            })
            .await?;
        Ok(completed_in_order(leases, &done))
    }

    async fn fail(
        &self,
        lease: Lease,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<FailOutcome> {
        let _write = self.write.lock().await;
        let state: Option<String> = sqlx::query_scalar(
            "UPDATE jobs SET
                 state = CASE WHEN ?3 IS NULL OR attempts >= max_attempts THEN 'dead' ELSE 'pending' END,
                 run_at = COALESCE(?3, run_at),
                 last_error = ?4, lease_until = NULL, locked_by = NULL, updated_at = ?5
             WHERE id = ?1 AND lease_token = ?2 AND state = 'running'
             RETURNING state",
        )
        .bind(lease.job_id)
        .bind(lease.token)
        .bind(retry_at.map(to_ms))
        .bind(error)
        .bind(to_ms(now))
        .fetch_all(&self.writer)
        .await?
        .into_iter()
        .next();
        Ok(match state.as_deref() {
            None => FailOutcome::LeaseLost,
            Some("dead") => FailOutcome::Dead,
            Some(_) => FailOutcome::Retrying,
        })
    }

    async fn release(&self, lease: Lease, now: DateTime<Utc>) -> Result<bool> {
        let _write = self.write.lock().await;
        let released = sqlx::query(
            "UPDATE jobs SET state = 'pending', attempts = attempts - 1, lease_until = NULL, locked_by = NULL,
                    updated_at = ?3
             WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
        )
        .bind(lease.job_id)
        .bind(lease.token)
        .bind(to_ms(now))
        .execute(&self.writer)
        .await?;
        if released.rows_affected() == 1 {
            self.wakeup.notify_one();
        }
        Ok(released.rows_affected() == 1)
    }

    async fn defer(&self, lease: Lease, run_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool> {
        let _write = self.write.lock().await;
        let deferred = sqlx::query(
            "UPDATE jobs SET state = 'pending', attempts = attempts - 1, run_at = ?3, lease_until = NULL,
                    locked_by = NULL, updated_at = ?4
             WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
        )
        .bind(lease.job_id)
        .bind(lease.token)
        .bind(to_ms(run_at))
        .bind(to_ms(now))
        .execute(&self.writer)
        .await?;
        if deferred.rows_affected() == 1 {
            self.wakeup.notify_one();
        }
        Ok(deferred.rows_affected() == 1)
    }

    async fn earlier_unfinished(&self, group: &str, id: i64) -> Result<Option<Job>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE group_key = ?1 AND id < ?2 AND state IN ('pending', 'running') ORDER BY id LIMIT 1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(group).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn cancel_key(&self, key: &str, now: DateTime<Utc>) -> Result<bool> {
        let _write = self.write.lock().await;
        let cancelled = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', lease_until = NULL, locked_by = NULL, updated_at = ?2
             WHERE key = ?1 AND state IN ('pending', 'running')",
        )
        .bind(key)
        .bind(to_ms(now))
        .execute(&self.writer)
        .await?;
        Ok(cancelled.rows_affected() == 1)
    }

    async fn cancel_group(&self, group: &str, now: DateTime<Utc>) -> Result<u64> {
        let _write = self.write.lock().await;
        let cancelled = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', lease_until = NULL, locked_by = NULL, updated_at = ?2
             WHERE group_key = ?1 AND state IN ('pending', 'running')",
        )
        .bind(group)
        .bind(to_ms(now))
        .execute(&self.writer)
        .await?;
        Ok(cancelled.rows_affected())
    }

    async fn job_by_key(&self, key: &str) -> Result<Option<Job>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE key = ?1")))
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn next_due(&self, kinds: &[String]) -> Result<Option<DateTime<Utc>>> {
        let kinds = kinds_json(kinds);
        let next: Option<i64> = self.readers.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT MIN(run_at) FROM jobs
                     WHERE state = 'pending' AND kind IN (SELECT value FROM json_each(?1))",
                )?
                .query_row([kinds], |row| row.get(0))?)
        })?;
        Ok(next.map(from_ms))
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats> {
        let now_ms = to_ms(now);
        let overdue_before = now_ms - OVERDUE_AFTER.as_millis() as i64;
        let row = sqlx::query(
            "SELECT
                 (SELECT COUNT(*) FROM jobs WHERE state = 'pending') AS pending,
                 (SELECT COUNT(*) FROM jobs WHERE state = 'pending' AND run_at < ?1) AS overdue,
                 (SELECT MIN(run_at) FROM jobs WHERE state = 'pending') AS oldest,
                 (SELECT COUNT(*) FROM jobs WHERE state = 'running') AS running,
                 (SELECT COUNT(*) FROM jobs WHERE state = 'dead') AS dead",
        )
        .bind(overdue_before)
        .fetch_one(&self.pool)
        .await?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        Ok(QueueStats {
            pending: row.try_get::<i64, _>("pending")? as u64,
            overdue: row.try_get::<i64, _>("overdue")? as u64,
            running: row.try_get::<i64, _>("running")? as u64,
            dead: row.try_get::<i64, _>("dead")? as u64,
            lag_ms: oldest.map(|t| (now_ms - t).max(0) as u64).unwrap_or(0),
        })
    }

    async fn prune_finished(&self, before: DateTime<Utc>) -> Result<u64> {
        let _write = self.write.lock().await;
        let pruned =
            sqlx::query("DELETE FROM jobs WHERE state IN ('done', 'cancelled', 'discarded') AND updated_at < ?1")
                .bind(to_ms(before))
                .execute(&self.writer)
                .await?;
        Ok(pruned.rows_affected())
    }

    fn wakeup(&self) -> Arc<Notify> {
        self.wakeup.clone()
    }
}

fn event_from_row(row: &SqliteRow) -> Result<TimelineEvent> {
    let detail: String = row.try_get("detail")?;
    Ok(TimelineEvent {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        escalation_id: row.try_get("escalation_id")?,
        call_sid: row.try_get("call_sid")?,
        party: row.try_get("party")?,
        channel: row.try_get("channel")?,
        kind: row.try_get("kind")?,
        detail: serde_json::from_str(&detail).map_err(|e| StoreError::Corrupt(format!("event detail: {e}")))?,
        at: from_ms(row.try_get("at")?),
    })
}

#[async_trait]
impl TimelineStore for SqliteStore {
    async fn record_event(&self, e: NewEvent) -> Result<i64> {
        self.exec.run(move |conn| crate::sqlite_writes::insert_event(conn, &e)).await
    }

    async fn events_for_order(&self, order_id: &str) -> Result<Vec<TimelineEvent>> {
        let rows = sqlx::query(
            "SELECT id, order_id, escalation_id, call_sid, party, channel, kind, detail, at
             FROM timeline_events WHERE order_id = ?1 ORDER BY at, id",
        )
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn events_after(&self, after_id: i64, limit: u32) -> Result<Vec<TimelineEvent>> {
        let rows = sqlx::query(
            "SELECT id, order_id, escalation_id, call_sid, party, channel, kind, detail, at
             FROM timeline_events WHERE id > ?1 ORDER BY id LIMIT ?2",
        )
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn events_by_ids(&self, ids: &[i64]) -> Result<Vec<TimelineEvent>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The ids travel as one JSON array: one statement however many.
        let rows = sqlx::query(
            "SELECT id, order_id, escalation_id, call_sid, party, channel, kind, detail, at
             FROM timeline_events WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id",
        )
        .bind(serde_json::to_string(ids).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn latest_event_id(&self) -> Result<i64> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM timeline_events").fetch_one(&self.pool).await?;
        Ok(id.unwrap_or(0))
    }
}

#[async_trait]
impl InboundStore for SqliteStore {
    async fn record_inbound(&self, batch: &[InboundEvent], now: DateTime<Utc>) -> Result<Vec<InboundOutcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.inbound.record(batch.to_vec(), now).await
    }

    async fn prune_inbound(&self, before: DateTime<Utc>) -> Result<u64> {
        let _write = self.write.lock().await;
        let pruned = sqlx::query("DELETE FROM inbound_events WHERE received_at < ?1")
            .bind(to_ms(before))
            .execute(&self.writer)
            .await?;
        Ok(pruned.rows_affected())
    }

    fn dedicated_writer(&self) -> Option<InboundWriter> {
        Some(InboundWriter::sqlite(self.inbound.sender()))
    }
}

#[async_trait]
impl CallStore for SqliteStore {
    async fn create_call(&self, call: NewCall, reconcile: Option<NewJob>, now: DateTime<Utc>) -> Result<()> {
        // On the writer thread, so that the reconcile job goes through the
        // one job insert (`sqlite_writes`) in the same transaction.
        let enqueued = self
            .exec
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                tx.prepare_cached(
                    "INSERT INTO exotel_calls (id, purpose, order_id, escalation_id, party, to_masked, to_digest,
                                               bridge_digest, state, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'requested', ?9, ?9)",
                )?
                .execute(rusqlite::params![
                    call.id,
                    call.purpose,
                    call.order_id,
                    call.escalation_id,
                    call.party,
                    call.to_masked,
                    call.to.as_ref().map(crate::calls::phone_digest),
                    call.bridge_to.as_ref().map(crate::calls::phone_digest),
                    to_ms(now)
                ])?;
                let enqueued = !crate::sqlite_writes::insert_jobs(&tx, reconcile.as_slice(), now)?.is_empty();
                tx.commit()?;
                Ok(enqueued)
            })
            .await?;
        if enqueued {
            self.wakeup.notify_one();
        }
        Ok(())
    }

    async fn update_call(
        &self,
        id: &str,
        state: CallState,
        call_sid: Option<&str>,
        detail: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<CallAttempt>> {
        let _write = self.write.lock().await;
        // A final state is never left: callbacks can arrive out of order.
        let row = sqlx::query(
            "UPDATE exotel_calls SET
                 state = CASE WHEN state IN ('not-placed', 'completed', 'busy', 'failed', 'no-answer', 'canceled') THEN state ELSE ?2 END,
                 call_sid = COALESCE(call_sid, ?3),
                 detail = COALESCE(?4, detail),
                 updated_at = ?5
             WHERE id = ?1
             RETURNING id, call_sid, purpose, order_id, escalation_id, party, to_masked, state, detail, created_at, updated_at",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(call_sid)
        .bind(detail)
        .bind(to_ms(now))
        .fetch_all(&self.writer)
        .await?;
        row.first().map(call_from_row).transpose()
    }

    async fn call_by_id(&self, id: &str) -> Result<Option<CallAttempt>> {
        let row = sqlx::query("SELECT id, call_sid, purpose, order_id, escalation_id, party, to_masked, state, detail, created_at, updated_at FROM exotel_calls WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(call_from_row).transpose()
    }

    async fn call_by_sid(&self, call_sid: &str) -> Result<Option<CallAttempt>> {
        let row = sqlx::query("SELECT id, call_sid, purpose, order_id, escalation_id, party, to_masked, state, detail, created_at, updated_at FROM exotel_calls WHERE call_sid = ?1")
            .bind(call_sid)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(call_from_row).transpose()
    }

    async fn call_for_callback(&self, attempt_id: Option<&str>, call_sid: &str) -> Result<Option<CallAttempt>> {
        self.readers.read(|conn| {
            let mut lookup = conn.prepare_cached(
                "SELECT id, call_sid, purpose, order_id, escalation_id, party, to_masked, state, detail,
                        created_at, updated_at FROM (
                     SELECT *, 0 AS preference FROM exotel_calls WHERE id = ?1
                     UNION ALL
                     SELECT *, 1 AS preference FROM exotel_calls WHERE call_sid = ?2)
                 ORDER BY preference LIMIT 1",
            )?;
            let mut rows = lookup.query(rusqlite::params![attempt_id, call_sid])?;
            let Some(row) = rows.next()? else { return Ok(None) };
            let state: String = row.get(7)?;
            Ok(Some(CallAttempt {
                id: row.get(0)?,
                call_sid: row.get(1)?,
                purpose: row.get(2)?,
                order_id: row.get(3)?,
                escalation_id: row.get(4)?,
                party: row.get(5)?,
                to_masked: row.get(6)?,
                state: CallState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("call state {state}")))?,
                detail: row.get(8)?,
                created_at: from_ms(row.get(9)?),
                updated_at: from_ms(row.get(10)?),
            }))
        })
    }

    async fn call_in_progress_with(&self, phone: &mangwale_core::E164, since: DateTime<Utc>) -> Result<bool> {
        // Two index lookups (one per leg) rather than an OR the planner
        // would scan for.
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM exotel_calls
             WHERE to_digest = ?1 AND created_at >= ?2 AND state IN ('requested', 'placed', 'unknown', 'in-progress')
             UNION ALL
             SELECT 1 FROM exotel_calls
             WHERE bridge_digest = ?1 AND created_at >= ?2 AND state IN ('requested', 'placed', 'unknown', 'in-progress')
             LIMIT 1",
        )
        .bind(crate::calls::phone_digest(phone))
        .bind(to_ms(since))
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    async fn unresolved_calls(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<CallAttempt>> {
        let rows = sqlx::query(
            "SELECT id, call_sid, purpose, order_id, escalation_id, party, to_masked, state, detail, created_at, updated_at FROM exotel_calls
             WHERE state IN ('requested', 'unknown') AND updated_at < ?1
             ORDER BY updated_at LIMIT ?2",
        )
        .bind(to_ms(before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(call_from_row).collect()
    }

    async fn active_calls(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<CallAttempt>> {
        // Served by the partial index `exotel_calls_active`.
        let rows = sqlx::query(
            "SELECT id, call_sid, purpose, order_id, escalation_id, party, to_masked, state, detail, created_at, updated_at
             FROM exotel_calls
             WHERE state IN ('requested', 'placed', 'unknown', 'in-progress') AND created_at >= ?1
             ORDER BY created_at DESC, id DESC LIMIT ?2",
        )
        .bind(to_ms(since))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(call_from_row).collect()
    }

    async fn log_exotel_request(&self, e: &ExotelRequestLog) -> Result<()> {
        let _write = self.write.lock().await;
        sqlx::query(
            "INSERT INTO exotel_requests
                 (endpoint, method, attempt, http_status, outcome, code, message, sid, custom_field, duration_ms, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .bind(&e.endpoint)
        .bind(&e.method)
        .bind(i64::from(e.attempt))
        .bind(e.http_status.map(i64::from))
        .bind(&e.outcome)
        .bind(e.code)
        .bind(&e.message)
        .bind(&e.sid)
        .bind(&e.custom_field)
        .bind(e.duration_ms as i64)
        .bind(to_ms(e.at))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn exotel_requests_since(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<ExotelRequestLog>> {
        let rows = sqlx::query(
            "SELECT endpoint, method, attempt, http_status, outcome, code, message, sid, custom_field, duration_ms, at
             FROM exotel_requests WHERE at >= ?1 ORDER BY at, id LIMIT ?2",
        )
        .bind(to_ms(since))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(request_log_from_row).collect()
    }
}

#[async_trait]
impl SettingsStore for SqliteStore {
    async fn setting_get_or_insert(&self, key: &str, value: &str) -> Result<String> {
        let _write = self.write.lock().await;
        sqlx::query("INSERT INTO settings (key, value, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .bind(to_ms(Utc::now()))
            .execute(&self.writer)
            .await?;
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = ?1").bind(key).fetch_one(&self.writer).await?)
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn overdue_by_kind(&self, now: DateTime<Utc>) -> Result<Vec<(String, u64)>> {
        let before = to_ms(now) - OVERDUE_AFTER.as_millis() as i64;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT kind, COUNT(*) FROM jobs WHERE state = 'pending' AND run_at < ?1 GROUP BY kind ORDER BY kind",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(kind, n)| (kind, n as u64)).collect())
    }

    async fn dead_by_kind(&self, since: DateTime<Utc>) -> Result<Vec<(String, u64)>> {
        // Served by the partial index `jobs_dead (updated_at)`.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT kind, COUNT(*) FROM jobs WHERE state = 'dead' AND updated_at >= ?1 GROUP BY kind ORDER BY kind",
        )
        .bind(to_ms(since))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(kind, n)| (kind, n as u64)).collect())
    }

    fn components(&self) -> Components {
        self.components.clone()
    }

    async fn crash_writers_for_test(&self) {
        self.inbound.crash_for_test().await;
        self.exec.crash_for_test().await;
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    async fn close(&self) {
        self.background.cancel();
        self.writer.close().await;
        self.pool.close().await;
    }
}
