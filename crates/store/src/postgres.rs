//! PostgreSQL implementation: the scale path, many replicas on one database.
//! Jobs are claimed with `FOR UPDATE SKIP LOCKED`; enqueues wake the workers
//! of every replica through `LISTEN/NOTIFY`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::calls::{CallAttempt, CallState, CallStore, ExotelRequestLog, NewCall};
use crate::inbound::{InboundEvent, InboundOutcome, InboundStore};
use crate::jobs::{
    Enqueued, FailOutcome, Job, JobState, JobStore, Lease, NewJob, OVERDUE_AFTER, QueueStats, completed_in_order,
};
use crate::rows::{call_from_row, request_log_from_row};
use crate::timeline::{NewEvent, TimelineEvent, TimelineStore};
use crate::{Backend, ConnectOptions, Result, SettingsStore, Store, StoreError, from_ms, to_ms};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The channel enqueues notify on.
pub(crate) const JOBS_CHANNEL: &str = "mangwale_jobs";
/// The channel the `timeline_events` insert trigger notifies on (migration 0016).
const EVENTS_CHANNEL: &str = "mangwale_events";

#[derive(Debug, Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
    pub(crate) wakeup: Arc<Notify>,
    /// Bumped when any replica records timeline events (and after the
    /// listener reconnects, when one may have been missed).
    events_changed: Arc<tokio::sync::watch::Sender<u64>>,
    listener: CancellationToken,
    /// Single enqueues, committed together (see [`crate::postgres_enqueue`]).
    enqueues: crate::postgres_enqueue::EnqueueBatcher,
}

impl PgStore {
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        let wakeup = Arc::new(Notify::new());
        let store = PgStore {
            enqueues: crate::postgres_enqueue::EnqueueBatcher::spawn(pool.clone(), wakeup.clone()),
            pool,
            wakeup,
            events_changed: Arc::new(tokio::sync::watch::Sender::new(0)),
            listener: CancellationToken::new(),
        };
        if options.migrate {
            store.migrate().await?;
        }
        store.spawn_listener();
        Ok(store)
    }

    /// Forwards notifications from other replicas to this process's workers
    /// and live-feed readers. Reconnects on its own; while it is down,
    /// workers still poll at their idle interval and feed readers at theirs,
    /// so nothing is lost, only later.
    fn spawn_listener(&self) {
        let pool = self.pool.clone();
        let wakeup = self.wakeup.clone();
        let events_changed = self.events_changed.clone();
        let stop = self.listener.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            while !stop.is_cancelled() {
                let mut listener = match PgListener::connect_with(&pool).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "job listener cannot connect; retrying");
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                };
                if let Err(e) = listener.listen_all([JOBS_CHANNEL, EVENTS_CHANNEL]).await {
                    tracing::warn!(error = %e, "job listener cannot LISTEN; retrying");
                    continue;
                }
                backoff = Duration::from_millis(100);
                // A notification may have been missed while reconnecting.
                wakeup.notify_one();
                events_changed.send_modify(|n| *n += 1);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        received = listener.recv() => match received {
                            Ok(n) if n.channel() == EVENTS_CHANNEL => events_changed.send_modify(|n| *n += 1),
                            Ok(_) => wakeup.notify_one(),
                            Err(e) => {
                                tracing::warn!(error = %e, "job listener lost its connection");
                                break;
                            }
                        }
                    }
                }
            }
        });
    }
}

pub(crate) fn job_from_row(row: &PgRow) -> Result<Job> {
    let payload: Json<serde_json::Value> = row.try_get("payload")?;
    let state: String = row.try_get("state")?;
    Ok(Job {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        key: row.try_get("key")?,
        group: row.try_get("group_key")?,
        payload: payload.0,
        state: JobState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("job state {state}")))?,
        attempts: row.try_get::<i64, _>("attempts")? as u32,
        max_attempts: row.try_get::<i64, _>("max_attempts")? as u32,
        run_at: from_ms(row.try_get("run_at")?),
        lease_token: row.try_get("lease_token")?,
        last_error: row.try_get("last_error")?,
        created_at: from_ms(row.try_get("created_at")?),
    })
}

/// Inserts each job whose key is new, in one statement, and notifies the
/// other replicas' listeners when the transaction commits (Postgres folds
/// the identical notifications of one transaction into one). The ids of
/// the jobs inserted; a job whose key exists is left as it is. The one job
/// insert of every write path.
pub(crate) async fn insert_jobs<'c, E: sqlx::Executor<'c, Database = sqlx::Postgres>>(
    ex: E,
    jobs: &[NewJob],
    now: DateTime<Utc>,
) -> Result<Vec<i64>> {
    Ok(insert_jobs_keyed(ex, jobs, now).await?.into_iter().map(|(id, _)| id).collect())
}

/// Inserts each job whose key is new, in one statement, and wakes every
/// replica's workers; the ids and keys of those inserted, in order.
pub(crate) async fn insert_jobs_keyed<'c, E: sqlx::Executor<'c, Database = sqlx::Postgres>>(
    ex: E,
    jobs: &[NewJob],
    now: DateTime<Utc>,
) -> Result<Vec<(i64, Option<String>)>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<serde_json::Value> = jobs
        .iter()
        .map(|job| {
            serde_json::json!({
                "kind": job.kind, "key": job.key, "group": job.group, "payload": job.payload,
                "max_attempts": job.max_attempts, "run_at": to_ms(job.run_at),
            })
        })
        .collect();
    Ok(sqlx::query_as(
        "WITH ins AS (
             INSERT INTO jobs (kind, key, group_key, payload, state, max_attempts, run_at, created_at, updated_at)
             SELECT j ->> 'kind', j ->> 'key', j ->> 'group', j -> 'payload', 'pending',
                    (j ->> 'max_attempts')::BIGINT, (j ->> 'run_at')::BIGINT, $2, $2
             FROM jsonb_array_elements($1) WITH ORDINALITY AS t(j, n) ORDER BY n
             ON CONFLICT (key) DO NOTHING
             RETURNING id, key)
         SELECT id, key FROM ins, LATERAL (SELECT pg_notify($3, '')) AS notified ORDER BY id",
    )
    .bind(Json(serde_json::Value::Array(rows)))
    .bind(to_ms(now))
    .bind(JOBS_CHANNEL)
    .fetch_all(ex)
    .await?)
}

/// Records timeline events in one statement; their ids, in order. The one
/// timeline insert of every write path.
pub(crate) async fn insert_events<'c, E: sqlx::Executor<'c, Database = sqlx::Postgres>>(
    ex: E,
    events: &[&NewEvent],
) -> Result<Vec<i64>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            serde_json::json!({
                "order_id": e.order_id, "escalation_id": e.escalation_id, "call_sid": e.call_sid,
                "party": e.party, "channel": e.channel, "kind": e.kind, "detail": e.detail, "at": to_ms(e.at),
            })
        })
        .collect();
    Ok(sqlx::query_scalar(
        "INSERT INTO timeline_events (order_id, escalation_id, call_sid, party, channel, kind, detail, at)
         SELECT e ->> 'order_id', e ->> 'escalation_id', e ->> 'call_sid', e ->> 'party', e ->> 'channel',
                e ->> 'kind', e -> 'detail', (e ->> 'at')::BIGINT
         FROM jsonb_array_elements($1) WITH ORDINALITY AS t(e, n) ORDER BY n
         RETURNING id",
    )
    .bind(Json(serde_json::Value::Array(rows)))
    .fetch_all(ex)
    .await?)
}

/// Records one timeline event; its id.
pub(crate) async fn insert_event<'c, E: sqlx::Executor<'c, Database = sqlx::Postgres>>(
    ex: E,
    e: &NewEvent,
) -> Result<i64> {
    insert_events(ex, &[e]).await?.first().copied().ok_or_else(|| StoreError::Corrupt("insert returned no id".into()))
}

#[async_trait]
impl JobStore for PgStore {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued> {
        self.enqueues.enqueue(job).await
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
        // See migration 0017 for why this is a function with pinned plans.
        let rows = sqlx::query(
            "SELECT id, kind, key, group_key, payload, state, attempts, max_attempts, run_at, lease_token,
                    last_error, created_at
             FROM mangwale_claim_jobs($1, $2, $3, $4, $5)",
        )
        .bind(now_ms)
        .bind(lease_until)
        .bind(worker)
        .bind(kinds)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut jobs = rows.iter().map(job_from_row).collect::<Result<Vec<_>>>()?;
        jobs.sort_by_key(|j| (j.run_at, j.id));
        Ok(jobs)
    }

    async fn expire_last_attempts(&self, now: DateTime<Utc>) -> Result<Vec<Job>> {
        let rows = sqlx::query(
            "UPDATE jobs SET state = 'dead', last_error = 'lease expired on the last attempt',
                    lease_until = NULL, locked_by = NULL, updated_at = $1
             WHERE state = 'running' AND lease_until < $1 AND attempts >= max_attempts
             RETURNING id, kind, key, group_key, payload, state, attempts, max_attempts, run_at, lease_token,
                       last_error, created_at",
        )
        .bind(to_ms(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn complete_many(&self, leases: &[Lease], now: DateTime<Utc>) -> Result<Vec<bool>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = leases.iter().map(|l| l.job_id).collect();
        let tokens: Vec<i64> = leases.iter().map(|l| l.token).collect();
        // Each row by its primary key, whatever the statistics say: see
        // migration 0017.
        let done: Vec<i64> = sqlx::query_scalar("SELECT mangwale_complete_jobs($1, $2, $3)")
            .bind(&ids)
            .bind(&tokens)
            .bind(to_ms(now))
            .fetch_all(&self.pool)
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
        let state: Option<String> = sqlx::query_scalar(
            "UPDATE jobs SET
                 state = CASE WHEN $3::BIGINT IS NULL OR attempts >= max_attempts THEN 'dead' ELSE 'pending' END,
                 run_at = COALESCE($3::BIGINT, run_at),
                 last_error = $4, lease_until = NULL, locked_by = NULL, updated_at = $5
             WHERE id = $1 AND lease_token = $2 AND state = 'running'
             RETURNING state",
        )
        .bind(lease.job_id)
        .bind(lease.token)
        .bind(retry_at.map(to_ms))
        .bind(error)
        .bind(to_ms(now))
        .fetch_optional(&self.pool)
        .await?;
        Ok(match state.as_deref() {
            None => FailOutcome::LeaseLost,
            Some("dead") => FailOutcome::Dead,
            Some(_) => FailOutcome::Retrying,
        })
    }

    async fn release(&self, lease: Lease, now: DateTime<Utc>) -> Result<bool> {
        let released = sqlx::query(
            "UPDATE jobs SET state = 'pending', attempts = attempts - 1, lease_until = NULL, locked_by = NULL,
                    updated_at = $3
             WHERE id = $1 AND lease_token = $2 AND state = 'running'",
        )
        .bind(lease.job_id)
        .bind(lease.token)
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(released.rows_affected() == 1)
    }

    async fn defer(&self, lease: Lease, run_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool> {
        let deferred = sqlx::query(
            "UPDATE jobs SET state = 'pending', attempts = attempts - 1, run_at = $3, lease_until = NULL,
                    locked_by = NULL, updated_at = $4
             WHERE id = $1 AND lease_token = $2 AND state = 'running'",
        )
        .bind(lease.job_id)
        .bind(lease.token)
        .bind(to_ms(run_at))
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(deferred.rows_affected() == 1)
    }

    async fn earlier_unfinished(&self, group: &str, id: i64) -> Result<Option<Job>> {
        let row = sqlx::query(
            "SELECT id, kind, key, group_key, payload, state, attempts, max_attempts, run_at, lease_token,
                    last_error, created_at
             FROM jobs
             WHERE group_key = $1 AND id < $2 AND state IN ('pending', 'running') ORDER BY id LIMIT 1",
        )
        .bind(group)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn cancel_key(&self, key: &str, now: DateTime<Utc>) -> Result<bool> {
        let cancelled = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', lease_until = NULL, locked_by = NULL, updated_at = $2
             WHERE key = $1 AND state IN ('pending', 'running')",
        )
        .bind(key)
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(cancelled.rows_affected() == 1)
    }

    async fn cancel_group(&self, group: &str, now: DateTime<Utc>) -> Result<u64> {
        let cancelled = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', lease_until = NULL, locked_by = NULL, updated_at = $2
             WHERE group_key = $1 AND state IN ('pending', 'running')",
        )
        .bind(group)
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(cancelled.rows_affected())
    }

    async fn job_by_key(&self, key: &str) -> Result<Option<Job>> {
        let row = sqlx::query(
            "SELECT id, kind, key, group_key, payload, state, attempts, max_attempts, run_at, lease_token,
                    last_error, created_at
             FROM jobs WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn next_due(&self, kinds: &[String]) -> Result<Option<DateTime<Utc>>> {
        let next: Option<i64> =
            sqlx::query_scalar("SELECT MIN(run_at) FROM jobs WHERE state = 'pending' AND kind = ANY($1)")
                .bind(kinds)
                .fetch_one(&self.pool)
                .await?;
        Ok(next.map(from_ms))
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats> {
        let now_ms = to_ms(now);
        let overdue_before = now_ms - OVERDUE_AFTER.as_millis() as i64;
        let row = sqlx::query(
            "SELECT
                 (SELECT COUNT(*) FROM jobs WHERE state = 'pending') AS pending,
                 (SELECT COUNT(*) FROM jobs WHERE state = 'pending' AND run_at < $1) AS overdue,
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
        let pruned =
            sqlx::query("DELETE FROM jobs WHERE state IN ('done', 'cancelled', 'discarded') AND updated_at < $1")
                .bind(to_ms(before))
                .execute(&self.pool)
                .await?;
        Ok(pruned.rows_affected())
    }

    fn wakeup(&self) -> Arc<Notify> {
        self.wakeup.clone()
    }
}

fn event_from_row(row: &PgRow) -> Result<TimelineEvent> {
    let detail: Json<serde_json::Value> = row.try_get("detail")?;
    Ok(TimelineEvent {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        escalation_id: row.try_get("escalation_id")?,
        call_sid: row.try_get("call_sid")?,
        party: row.try_get("party")?,
        channel: row.try_get("channel")?,
        kind: row.try_get("kind")?,
        detail: detail.0,
        at: from_ms(row.try_get("at")?),
    })
}

#[async_trait]
impl TimelineStore for PgStore {
    async fn record_event(&self, e: NewEvent) -> Result<i64> {
        insert_event(&self.pool, &e).await
    }

    async fn events_for_order(&self, order_id: &str) -> Result<Vec<TimelineEvent>> {
        let rows = sqlx::query(
            "SELECT id, order_id, escalation_id, call_sid, party, channel, kind, detail, at
             FROM timeline_events WHERE order_id = $1 ORDER BY at, id",
        )
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn events_after(&self, after_id: i64, limit: u32) -> Result<Vec<TimelineEvent>> {
        let rows = sqlx::query(
            "SELECT id, order_id, escalation_id, call_sid, party, channel, kind, detail, at
             FROM timeline_events WHERE id > $1 ORDER BY id LIMIT $2",
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
        let rows = sqlx::query(
            "SELECT id, order_id, escalation_id, call_sid, party, channel, kind, detail, at
             FROM timeline_events WHERE id = ANY($1) ORDER BY id",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn latest_event_id(&self) -> Result<i64> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM timeline_events").fetch_one(&self.pool).await?;
        Ok(id.unwrap_or(0))
    }

    fn event_notifications(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.events_changed.subscribe())
    }
}

#[async_trait]
impl InboundStore for PgStore {
    async fn record_inbound(&self, batch: &[InboundEvent], now: DateTime<Utc>) -> Result<Vec<InboundOutcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // One statement per table for the whole batch, however large: the
        // batch travels as a JSON array. Keys are inserted in sorted order so
        // that concurrent batches (other writers, other replicas) lock them
        // in the same order and cannot deadlock.
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by(|a, b| batch[*a].dedup_key.cmp(&batch[*b].dedup_key).then(a.cmp(b)));
        let keys: Vec<serde_json::Value> =
            order.iter().map(|&i| serde_json::json!({"k": batch[i].dedup_key, "s": batch[i].source})).collect();
        let mut tx = self.pool.begin().await?;
        let fresh: Vec<String> = sqlx::query_scalar(
            "INSERT INTO inbound_events (key, source, received_at)
             SELECT e ->> 'k', e ->> 's', $2 FROM jsonb_array_elements($1) AS e
             ON CONFLICT (key) DO NOTHING
             RETURNING key",
        )
        .bind(Json(serde_json::Value::Array(keys)))
        .bind(to_ms(now))
        .fetch_all(&mut *tx)
        .await?;
        let fresh: std::collections::HashSet<String> = fresh.into_iter().collect();
        let mut outcomes = vec![InboundOutcome::Duplicate; batch.len()];
        let mut claimed = std::collections::HashSet::new();
        let mut events = Vec::new();
        let mut jobs = Vec::new();
        for (index, inbound) in batch.iter().enumerate() {
            if !fresh.contains(&inbound.dedup_key) || !claimed.insert(inbound.dedup_key.as_str()) {
                continue;
            }
            outcomes[index] = InboundOutcome::Recorded;
            events.push(&inbound.event);
            jobs.extend(inbound.jobs.iter().cloned());
        }
        insert_events(&mut *tx, &events).await?;
        let enqueued = !insert_jobs(&mut *tx, &jobs, now).await?.is_empty();
        tx.commit().await?;
        if enqueued {
            self.wakeup.notify_one();
        }
        Ok(outcomes)
    }

    async fn prune_inbound(&self, before: DateTime<Utc>) -> Result<u64> {
        let pruned = sqlx::query("DELETE FROM inbound_events WHERE received_at < $1")
            .bind(to_ms(before))
            .execute(&self.pool)
            .await?;
        Ok(pruned.rows_affected())
    }
}

#[async_trait]
impl CallStore for PgStore {
    async fn create_call(&self, call: NewCall, reconcile: Option<NewJob>, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO exotel_calls (id, purpose, order_id, escalation_id, party, to_masked, to_digest, bridge_digest,
                                       state, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'requested', $9, $9)",
        )
        .bind(&call.id)
        .bind(&call.purpose)
        .bind(&call.order_id)
        .bind(&call.escalation_id)
        .bind(&call.party)
        .bind(&call.to_masked)
        .bind(call.to.as_ref().map(crate::calls::phone_digest))
        .bind(call.bridge_to.as_ref().map(crate::calls::phone_digest))
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        let enqueued = !insert_jobs(&mut *tx, reconcile.as_slice(), now).await?.is_empty();
        tx.commit().await?;
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
        // A final state is never left: callbacks can arrive out of order.
        let row = sqlx::query(
            "UPDATE exotel_calls SET
                 state = CASE WHEN state IN ('not-placed', 'completed', 'busy', 'failed', 'no-answer', 'canceled') THEN state ELSE $2 END,
                 call_sid = COALESCE(call_sid, $3),
                 detail = COALESCE($4, detail),
                 updated_at = $5
             WHERE id = $1
             RETURNING id, call_sid, purpose, order_id, escalation_id, party, to_masked, state, detail, created_at, updated_at",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(call_sid)
        .bind(detail)
        .bind(to_ms(now))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(call_from_row).transpose()
    }

    async fn call_by_id(&self, id: &str) -> Result<Option<CallAttempt>> {
        let row = sqlx::query("SELECT id, call_sid, purpose, order_id, escalation_id, party, to_masked, state, detail, created_at, updated_at FROM exotel_calls WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(call_from_row).transpose()
    }

    async fn call_by_sid(&self, call_sid: &str) -> Result<Option<CallAttempt>> {
        let row = sqlx::query("SELECT id, call_sid, purpose, order_id, escalation_id, party, to_masked, state, detail, created_at, updated_at FROM exotel_calls WHERE call_sid = $1")
            .bind(call_sid)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(call_from_row).transpose()
    }

    async fn call_for_callback(&self, attempt_id: Option<&str>, call_sid: &str) -> Result<Option<CallAttempt>> {
        let row = sqlx::query(
            "SELECT id, call_sid, purpose, order_id, escalation_id, party, to_masked, state, detail, created_at, updated_at FROM (
                 SELECT id, call_sid, purpose, order_id, escalation_id, party, to_masked, state, detail, created_at, updated_at, 0 AS preference FROM exotel_calls WHERE id = $1
                 UNION ALL
                 SELECT id, call_sid, purpose, order_id, escalation_id, party, to_masked, state, detail, created_at, updated_at, 1 AS preference FROM exotel_calls WHERE call_sid = $2) AS named
             ORDER BY preference LIMIT 1",
        )
        .bind(attempt_id)
        .bind(call_sid)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(call_from_row).transpose()
    }

    async fn call_in_progress_with(&self, phone: &mangwale_core::E164, since: DateTime<Utc>) -> Result<bool> {
        // Two index lookups (one per leg) rather than an OR the planner
        // would scan for.
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM exotel_calls
             WHERE to_digest = $1 AND created_at >= $2 AND state IN ('requested', 'placed', 'unknown', 'in-progress')
             UNION ALL
             SELECT 1 FROM exotel_calls
             WHERE bridge_digest = $1 AND created_at >= $2 AND state IN ('requested', 'placed', 'unknown', 'in-progress')
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
             WHERE state IN ('requested', 'unknown') AND updated_at < $1
             ORDER BY updated_at LIMIT $2",
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
             WHERE state IN ('requested', 'placed', 'unknown', 'in-progress') AND created_at >= $1
             ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(to_ms(since))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(call_from_row).collect()
    }

    async fn log_exotel_request(&self, e: &ExotelRequestLog) -> Result<()> {
        sqlx::query(
            "INSERT INTO exotel_requests
                 (endpoint, method, attempt, http_status, outcome, code, message, sid, custom_field, duration_ms, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn exotel_requests_since(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<ExotelRequestLog>> {
        let rows = sqlx::query(
            "SELECT endpoint, method, attempt, http_status, outcome, code, message, sid, custom_field, duration_ms, at
             FROM exotel_requests WHERE at >= $1 ORDER BY at, id LIMIT $2",
        )
        .bind(to_ms(since))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(request_log_from_row).collect()
    }
}

#[async_trait]
impl SettingsStore for PgStore {
    async fn setting_get_or_insert(&self, key: &str, value: &str) -> Result<String> {
        sqlx::query("INSERT INTO settings (key, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .bind(to_ms(Utc::now()))
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(key).fetch_one(&self.pool).await?)
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn overdue_by_kind(&self, now: DateTime<Utc>) -> Result<Vec<(String, u64)>> {
        let before = to_ms(now) - OVERDUE_AFTER.as_millis() as i64;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT kind, COUNT(*) FROM jobs WHERE state = 'pending' AND run_at < $1 GROUP BY kind ORDER BY kind",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(kind, n)| (kind, n as u64)).collect())
    }

    async fn dead_by_kind(&self, since: DateTime<Utc>) -> Result<Vec<(String, u64)>> {
        // Served by the partial index `jobs_dead (updated_at)`.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT kind, COUNT(*) FROM jobs WHERE state = 'dead' AND updated_at >= $1 GROUP BY kind ORDER BY kind",
        )
        .bind(to_ms(since))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(kind, n)| (kind, n as u64)).collect())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.listener.cancel();
        self.pool.close().await;
    }
}
