//! [`LadderStore`] on SQLite. Every change is one `BEGIN IMMEDIATE`
//! transaction on the writer connection, behind the store's write lock.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::jobs::NewJob;
use crate::ladders::{
    BRIDGE_PURPOSES, CommsStats, Escalation, IVR_PURPOSES, Ladder, LadderStart, LadderStep, LadderStop, LadderStore,
    NewLadder, OnExhausted, StepClaim, StepResult, stats_from_rows,
};
use crate::sqlite::SqliteStore;
use crate::timeline::NewEvent;
use crate::{Result, StoreError, to_ms};
use mangwale_core::ladder::{LadderState, StepState, StopAction};

const LADDER_COLUMNS: &str = "escalation_id, kind, order_id, party, phone, language, context, definition, state, \
     started_at, finished_at, stop_action, stop_actor";

fn json(text: String, what: &str) -> Result<serde_json::Value> {
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("ladder {what}: {e}")))
}

/// The ladder just inserted, as `load` would read it back.
fn started(ladder: NewLadder) -> Ladder {
    let steps = ladder
        .steps
        .iter()
        .map(|s| LadderStep {
            index: s.index,
            channel: s.channel,
            due_at: s.due_at,
            state: StepState::Pending,
            attempts: 0,
            provider_id: None,
            detail: None,
            updated_at: ladder.started_at,
        })
        .collect();
    Ladder {
        escalation_id: ladder.escalation_id,
        kind: ladder.kind,
        order_id: ladder.order_id,
        party: ladder.party,
        phone: ladder.phone,
        language: ladder.language,
        context: ladder.context,
        definition: ladder.definition,
        state: LadderState::Active,
        started_at: ladder.started_at,
        finished_at: None,
        stop_action: None,
        stop_actor: None,
        steps,
    }
}

#[async_trait]
impl LadderStore for SqliteStore {
    async fn start_ladder(&self, ladder: NewLadder, jobs: Vec<NewJob>, event: NewEvent) -> Result<LadderStart> {
        let ladder = Arc::new(ladder);
        let inserted = {
            let ladder = ladder.clone();
            self.exec.run(move |conn| rs::start(conn, &ladder, &jobs, &event)).await?
        };
        if !inserted {
            let existing = self
                .ladder(&ladder.escalation_id)
                .await?
                .ok_or_else(|| StoreError::Corrupt("ladder vanished".into()))?;
            return Ok(LadderStart::Existing(existing));
        }
        self.wakeup.notify_one();
        let ladder = Arc::try_unwrap(ladder).unwrap_or_else(|shared| (*shared).clone());
        Ok(LadderStart::Started(started(ladder)))
    }

    async fn stop_ladder(
        &self,
        escalation_id: &str,
        action: StopAction,
        actor: &str,
        job_group: &str,
        event: NewEvent,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
    ) -> Result<LadderStop> {
        let (id, action, actor, group) = (escalation_id.to_string(), action, actor.to_string(), job_group.to_string());
        let outcome =
            self.exec.run(move |conn| rs::stop(conn, &id, action, &actor, &group, &event, &jobs, now)).await?;
        if matches!(outcome, LadderStop::Stopped(_)) {
            self.wakeup.notify_one();
        }
        Ok(outcome)
    }

    async fn claim_step(&self, escalation_id: &str, index: u32, now: DateTime<Utc>) -> Result<StepClaim> {
        let id = escalation_id.to_string();
        self.exec.run(move |conn| rs::claim(conn, &id, index, now)).await
    }

    async fn finish_step(
        &self,
        escalation_id: &str,
        index: u32,
        result: StepResult,
        event: NewEvent,
        jobs: Vec<NewJob>,
        on_exhausted: OnExhausted,
        now: DateTime<Utc>,
    ) -> Result<Option<LadderState>> {
        let id = escalation_id.to_string();
        let enqueues = !jobs.is_empty();
        let state =
            self.exec.run(move |conn| rs::finish(conn, &id, index, &result, &event, &jobs, &on_exhausted, now)).await?;
        if enqueues || state == Some(LadderState::Exhausted) {
            self.wakeup.notify_one();
        }
        Ok(state)
    }

    // Reads go through the writer thread too: one way of reading a ladder,
    // and it sees every write the moment it is made.
    async fn ladder(&self, escalation_id: &str) -> Result<Option<Ladder>> {
        let id = escalation_id.to_string();
        self.exec.run(move |conn| rs::load(conn, &id)).await
    }

    async fn ladders_for_order(&self, order_id: &str) -> Result<Vec<Ladder>> {
        let order = order_id.to_string();
        self.exec.run(move |conn| rs::for_order(conn, &order)).await
    }

    async fn active_ladders(&self, limit: u32) -> Result<Vec<Ladder>> {
        self.exec.run(move |conn| rs::active(conn, limit)).await
    }

    async fn escalate_step(
        &self,
        escalation_id: &str,
        index: u32,
        job_key: &str,
        event: NewEvent,
        now: DateTime<Utc>,
    ) -> Result<Escalation> {
        let (id, key) = (escalation_id.to_string(), job_key.to_string());
        let outcome = self.exec.run(move |conn| rs::escalate(conn, &id, index, &key, &event, now)).await?;
        if matches!(outcome, Escalation::Escalated { .. }) {
            self.wakeup.notify_one();
        }
        Ok(outcome)
    }

    async fn ivr_invalid_key(&self, call_sid: &str, menu: &str, now: DateTime<Utc>) -> Result<u32> {
        let _write = self.write.lock().await;
        let count: i64 = sqlx::query_scalar(
            "INSERT INTO ivr_invalid_keys (call_sid, menu, count, updated_at) VALUES (?1, ?2, 1, ?3)
             ON CONFLICT (call_sid, menu) DO UPDATE SET count = count + 1, updated_at = excluded.updated_at
             RETURNING count",
        )
        .bind(call_sid)
        .bind(menu)
        .bind(to_ms(now))
        .fetch_all(&self.writer)
        .await?
        .into_iter()
        .next()
        .unwrap_or(1);
        Ok(count as u32)
    }

    async fn ivr_wrong_keys(&self, call_sid: &str, menu: &str) -> Result<u32> {
        let count: Option<i64> =
            sqlx::query_scalar("SELECT count FROM ivr_invalid_keys WHERE call_sid = ?1 AND menu = ?2")
                .bind(call_sid)
                .bind(menu)
                .fetch_optional(&self.pool)
                .await?;
        Ok(count.unwrap_or(0) as u32)
    }

    async fn comms_stats(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<CommsStats> {
        let (from, to) = (to_ms(from), to_ms(to));
        let calls = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS calls,
                    COALESCE(SUM(state IN ('completed', 'in-progress')), 0) AS answered,
                    COALESCE(SUM(purpose IN {IVR_PURPOSES}), 0) AS ivr,
                    COALESCE(SUM(purpose IN {BRIDGE_PURPOSES}), 0) AS bridges
             FROM exotel_calls WHERE created_at >= ?1 AND created_at < ?2"
        )))
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        let ladders = sqlx::query(
            "SELECT COUNT(*) AS ladders,
                    COALESCE(SUM(kind = 'vendor_new_order'), 0) AS vendors,
                    COALESCE(SUM(stop_action = 'accept'), 0) AS accepted,
                    COALESCE(SUM(stop_action = 'reject'), 0) AS rejected,
                    COALESCE(SUM(state = 'exhausted' AND kind NOT LIKE 'customer%'), 0) AS exhausted,
                    COALESCE(SUM(state = 'active'), 0) AS active,
                    AVG(CASE WHEN stop_action IN ('accept', 'reject', 'ready', 'extend', 'confirm', 'problem')
                             THEN (finished_at - started_at) / 1000.0 END) AS avg_response
             FROM ladders WHERE started_at >= ?1 AND started_at < ?2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        let steps = sqlx::query(
            "SELECT s.channel, SUM(s.state = 'sent') AS sent, SUM(s.state = 'failed') AS failed
             FROM ladder_steps s JOIN ladders l ON l.escalation_id = s.escalation_id
             WHERE l.started_at >= ?1 AND l.started_at < ?2 GROUP BY s.channel",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        stats_from_rows(&calls, &ladders, &steps)
    }
}

/// The ladder writes as rusqlite statements, run on the store's writer
/// thread ([`crate::sqlite_exec`]).
mod rs {
    use chrono::{DateTime, Utc};
    use mangwale_core::E164;
    use mangwale_core::ladder::{LadderState, StepState, StopAction};
    use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

    use super::{LADDER_COLUMNS, json};
    use crate::jobs::NewJob;
    use crate::ladders::{
        Escalation, Ladder, LadderRow, LadderStop, NewLadder, OnExhausted, StepClaim, StepResult, StepRow,
        ladder_state, stored_json,
    };
    use crate::sqlite_writes::{insert_event, insert_jobs};
    use crate::timeline::NewEvent;
    use crate::{Result, to_ms};

    pub(super) fn load(conn: &Connection, escalation_id: &str) -> Result<Option<Ladder>> {
        let mut steps = conn.prepare_cached(
            "SELECT step_index, channel, due_at, state, attempts, provider_id, detail, updated_at
             FROM ladder_steps WHERE escalation_id = ?1 ORDER BY step_index",
        )?;
        let steps = steps
            .query_map(params![escalation_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, i64>(7)?,
                ))
            })?
            .map(|row| {
                let (index, channel, due_at, state, attempts, provider_id, detail, updated_at) = row?;
                StepRow { index, channel, due_at, state, attempts, provider_id, detail, updated_at }.decode()
            })
            .collect::<Result<Vec<_>>>()?;
        let mut ladder =
            conn.prepare_cached(&format!("SELECT {LADDER_COLUMNS} FROM ladders WHERE escalation_id = ?1"))?;
        let row = ladder
            .query_row(params![escalation_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, i64>(9)?,
                    r.get::<_, Option<i64>>(10)?,
                    r.get::<_, Option<String>>(11)?,
                    r.get::<_, Option<String>>(12)?,
                ))
            })
            .optional()?;
        let Some((
            escalation_id,
            kind,
            order_id,
            party,
            phone,
            language,
            context,
            definition,
            state,
            started_at,
            finished_at,
            stop_action,
            stop_actor,
        )) = row
        else {
            return Ok(None);
        };
        let row = LadderRow {
            escalation_id,
            kind,
            order_id,
            party,
            phone,
            language,
            context: json(context, "context")?,
            definition: json(definition, "definition")?,
            state,
            started_at,
            finished_at,
            stop_action,
            stop_actor,
        };
        row.decode(steps).map(Some)
    }

    /// Every ladder of an order, oldest first.
    pub(super) fn for_order(conn: &Connection, order_id: &str) -> Result<Vec<Ladder>> {
        let ids: Vec<String> = conn
            .prepare_cached("SELECT escalation_id FROM ladders WHERE order_id = ?1 ORDER BY started_at, escalation_id")?
            .query_map(params![order_id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        load_all(conn, ids)
    }

    /// The ladders of `ids`, in that order (an id since deleted is skipped).
    fn load_all(conn: &Connection, ids: Vec<String>) -> Result<Vec<Ladder>> {
        let mut ladders = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(ladder) = load(conn, &id)? {
                ladders.push(ladder);
            }
        }
        Ok(ladders)
    }

    /// Active ladders, newest first (the partial index `ladders_active`).
    pub(super) fn active(conn: &Connection, limit: u32) -> Result<Vec<Ladder>> {
        let ids: Vec<String> = conn
            .prepare_cached(
                "SELECT escalation_id FROM ladders WHERE state = 'active'
                 ORDER BY started_at DESC, escalation_id DESC LIMIT ?1",
            )?
            .query_map(params![i64::from(limit)], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        load_all(conn, ids)
    }

    /// See [`crate::LadderStore::escalate_step`]. The immediate transaction
    /// holds the write lock from the checks to the commit, so nothing
    /// changes the ladder, the step or the job in between.
    pub(super) fn escalate(
        conn: &mut Connection,
        escalation_id: &str,
        index: u32,
        job_key: &str,
        event: &NewEvent,
        now: DateTime<Utc>,
    ) -> Result<Escalation> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(ladder) = load(&tx, escalation_id)? else { return Ok(Escalation::NotFound) };
        if ladder.state != LadderState::Active {
            return Ok(Escalation::LadderFinished(ladder.state));
        }
        let Some(step) = ladder.steps.iter().find(|s| s.index == index) else { return Ok(Escalation::NoSuchStep) };
        if step.state != StepState::Pending {
            return Ok(Escalation::StepNotPending(step.state));
        }
        let at = to_ms(now);
        let run_at: Option<i64> = tx
            .prepare_cached(
                "UPDATE jobs SET run_at = MIN(run_at, ?2), updated_at = ?2 WHERE key = ?1 AND state = 'pending'
                 RETURNING run_at",
            )?
            .query_row(params![job_key, at], |r| r.get(0))
            .optional()?;
        let Some(run_at) = run_at else { return Ok(Escalation::JobNotPending) };
        tx.prepare_cached(
            "UPDATE ladder_steps SET due_at = MIN(due_at, ?3), updated_at = ?3 WHERE escalation_id = ?1 AND step_index = ?2",
        )?
        .execute(params![escalation_id, i64::from(index), at])?;
        insert_event(&tx, event)?;
        tx.commit()?;
        Ok(Escalation::Escalated { run_at: crate::from_ms(run_at) })
    }

    /// False: a ladder with this id exists; nothing was written.
    pub(super) fn start(conn: &mut Connection, ladder: &NewLadder, jobs: &[NewJob], event: &NewEvent) -> Result<bool> {
        let now = ladder.started_at;
        let (context, definition) = stored_json(ladder)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx
            .prepare_cached(
                "INSERT INTO ladders (escalation_id, kind, order_id, party, phone, language, context, definition, state,
                                      started_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'active', ?9, ?9)
                 ON CONFLICT (escalation_id) DO NOTHING",
            )?
            .execute(params![
                ladder.escalation_id,
                ladder.kind.name(),
                ladder.order_id,
                ladder.party,
                ladder.phone.as_ref().map(E164::as_str),
                ladder.language.code(),
                context.to_string(),
                definition.to_string(),
                to_ms(now)
            ])?;
        if inserted == 0 {
            return Ok(false);
        }
        {
            let mut step = tx.prepare_cached(
                "INSERT INTO ladder_steps (escalation_id, step_index, channel, due_at, state, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
            )?;
            for s in &ladder.steps {
                step.execute(params![
                    ladder.escalation_id,
                    i64::from(s.index),
                    s.channel.name(),
                    to_ms(s.due_at),
                    to_ms(now)
                ])?;
            }
        }
        insert_jobs(&tx, jobs, now)?;
        insert_event(&tx, event)?;
        tx.commit()?;
        Ok(true)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn stop(
        conn: &mut Connection,
        escalation_id: &str,
        action: StopAction,
        actor: &str,
        job_group: &str,
        event: &NewEvent,
        jobs: &[NewJob],
        now: DateTime<Utc>,
    ) -> Result<LadderStop> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(ladder) = load(&tx, escalation_id)? else { return Ok(LadderStop::NotFound) };
        if ladder.state != LadderState::Active {
            return Ok(LadderStop::AlreadyFinished(ladder));
        }
        let at = to_ms(now);
        tx.prepare_cached(
            "UPDATE ladders SET state = 'stopped', finished_at = ?2, stop_action = ?3, stop_actor = ?4, updated_at = ?2
             WHERE escalation_id = ?1",
        )?
        .execute(params![escalation_id, at, action.name(), actor])?;
        tx.prepare_cached(
            "UPDATE ladder_steps SET state = 'canceled', updated_at = ?2 WHERE escalation_id = ?1 AND state = 'pending'",
        )?
        .execute(params![escalation_id, at])?;
        tx.prepare_cached(
            "UPDATE jobs SET state = 'cancelled', lease_until = NULL, locked_by = NULL, updated_at = ?2
             WHERE group_key = ?1 AND state IN ('pending', 'running')",
        )?
        .execute(params![job_group, at])?;
        insert_event(&tx, event)?;
        insert_jobs(&tx, jobs, now)?;
        let stopped = load(&tx, escalation_id)?;
        tx.commit()?;
        Ok(stopped.map(LadderStop::Stopped).unwrap_or(LadderStop::NotFound))
    }

    /// The fencing in one statement: the step becomes `sending` only while
    /// it is pending and its ladder active; a stop commits either before it
    /// (no row changes) or after (the step is already taken).
    pub(super) fn claim(
        conn: &mut Connection,
        escalation_id: &str,
        index: u32,
        now: DateTime<Utc>,
    ) -> Result<StepClaim> {
        let claimed = conn
            .prepare_cached(
                "UPDATE ladder_steps SET state = 'sending', attempts = attempts + 1, updated_at = ?3
                 WHERE escalation_id = ?1 AND step_index = ?2 AND state = 'pending'
                   AND (SELECT state FROM ladders WHERE escalation_id = ?1) = 'active'",
            )?
            .execute(params![escalation_id, i64::from(index), to_ms(now)])?
            == 1;
        let Some(ladder) = load(conn, escalation_id)? else { return Ok(StepClaim::NotFound) };
        if claimed {
            return Ok(StepClaim::Claimed(ladder));
        }
        if ladder.state != LadderState::Active {
            return Ok(StepClaim::LadderFinished(ladder));
        }
        Ok(match ladder.steps.iter().find(|s| s.index == index) {
            Some(step) => StepClaim::NotPending(step.state),
            None => StepClaim::NotFound,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn finish(
        conn: &mut Connection,
        escalation_id: &str,
        index: u32,
        result: &StepResult,
        event: &NewEvent,
        jobs: &[NewJob],
        on_exhausted: &OnExhausted,
        now: DateTime<Utc>,
    ) -> Result<Option<LadderState>> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let at = to_ms(now);
        let updated = tx
            .prepare_cached(
                "UPDATE ladder_steps SET state = ?3, provider_id = COALESCE(?4, provider_id), detail = ?5, updated_at = ?6
                 WHERE escalation_id = ?1 AND step_index = ?2",
            )?
            .execute(params![escalation_id, i64::from(index), result.state.name(), result.provider_id, result.detail, at])?;
        if updated == 0 {
            return Ok(None);
        }
        insert_event(&tx, event)?;
        insert_jobs(&tx, jobs, now)?;
        // Exhausted: active, and no step left to send.
        let exhausted = result.state != StepState::Pending
            && tx
                .prepare_cached(
                    "UPDATE ladders SET state = 'exhausted', finished_at = ?2, updated_at = ?2
                     WHERE escalation_id = ?1 AND state = 'active'
                       AND NOT EXISTS (SELECT 1 FROM ladder_steps
                                       WHERE escalation_id = ?1 AND state IN ('pending', 'sending'))",
                )?
                .execute(params![escalation_id, at])?
                == 1;
        let state = if exhausted {
            if let Some(event) = &on_exhausted.event {
                insert_event(&tx, event)?;
            }
            insert_jobs(&tx, &on_exhausted.jobs, now)?;
            LadderState::Exhausted
        } else {
            let state: String = tx
                .prepare_cached("SELECT state FROM ladders WHERE escalation_id = ?1")?
                .query_row(params![escalation_id], |r| r.get(0))?;
            ladder_state(&state)?
        };
        tx.commit()?;
        Ok(Some(state))
    }
}
