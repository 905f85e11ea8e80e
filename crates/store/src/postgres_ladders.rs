//! [`LadderStore`] on PostgreSQL. Changes lock the ladder's row
//! (`SELECT … FOR UPDATE`), so a stop and a step claim on two replicas
//! serialise: whichever commits first wins and the other sees its result.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};

use crate::jobs::NewJob;
use crate::ladders::{
    BRIDGE_PURPOSES, CommsStats, Escalation, IVR_PURPOSES, Ladder, LadderRow, LadderStart, LadderStep, LadderStop,
    LadderStore, NewLadder, OnExhausted, StepClaim, StepResult, StepRow, stats_from_rows, stored_json,
};
use crate::postgres::{PgStore, insert_event, insert_jobs};
use crate::timeline::NewEvent;
use crate::{Result, StoreError, to_ms};
use mangwale_core::E164;
use mangwale_core::ladder::{LadderState, StepState, StopAction};

const LADDER_COLUMNS: &str = "escalation_id, kind, order_id, party, phone, language, context, definition, state, \
     started_at, finished_at, stop_action, stop_actor";

fn ladder_from_row(row: &PgRow, steps: Vec<LadderStep>) -> Result<Ladder> {
    let context: Json<serde_json::Value> = row.try_get("context")?;
    let definition: Json<serde_json::Value> = row.try_get("definition")?;
    LadderRow {
        escalation_id: row.try_get("escalation_id")?,
        kind: row.try_get("kind")?,
        order_id: row.try_get("order_id")?,
        party: row.try_get("party")?,
        phone: row.try_get("phone")?,
        language: row.try_get("language")?,
        context: context.0,
        definition: definition.0,
        state: row.try_get("state")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        stop_action: row.try_get("stop_action")?,
        stop_actor: row.try_get("stop_actor")?,
    }
    .decode(steps)
}

fn step_from_row(row: &PgRow) -> Result<LadderStep> {
    StepRow {
        index: row.try_get::<i32, _>("step_index")?.into(),
        channel: row.try_get("channel")?,
        due_at: row.try_get("due_at")?,
        state: row.try_get("state")?,
        attempts: row.try_get::<i32, _>("attempts")?.into(),
        provider_id: row.try_get("provider_id")?,
        detail: row.try_get("detail")?,
        updated_at: row.try_get("updated_at")?,
    }
    .decode()
}

/// Loads a ladder; `lock` takes its row lock for the rest of the transaction.
async fn load(conn: &mut PgConnection, escalation_id: &str, lock: bool) -> Result<Option<Ladder>> {
    let suffix = if lock { " FOR UPDATE" } else { "" };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {LADDER_COLUMNS} FROM ladders WHERE escalation_id = $1{suffix}"
    )))
    .bind(escalation_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let steps = sqlx::query(
        "SELECT step_index, channel, due_at, state, attempts, provider_id, detail, updated_at
         FROM ladder_steps WHERE escalation_id = $1 ORDER BY step_index",
    )
    .bind(escalation_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(step_from_row)
    .collect::<Result<Vec<_>>>()?;
    Ok(Some(ladder_from_row(&row, steps)?))
}

fn vanished() -> StoreError {
    StoreError::Corrupt("ladder vanished".into())
}

#[async_trait]
impl LadderStore for PgStore {
    async fn start_ladder(&self, ladder: NewLadder, jobs: Vec<NewJob>, event: NewEvent) -> Result<LadderStart> {
        let now = ladder.started_at;
        let (context, definition) = stored_json(&ladder)?;
        let mut tx = self.pool.begin().await?;
        // ON CONFLICT: two replicas starting the same escalation id at once
        // both succeed, one of them with the other's ladder.
        let inserted = sqlx::query(
            "INSERT INTO ladders (escalation_id, kind, order_id, party, phone, language, context, definition, state,
                                  started_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $9)
             ON CONFLICT (escalation_id) DO NOTHING",
        )
        .bind(&ladder.escalation_id)
        .bind(ladder.kind.name())
        .bind(&ladder.order_id)
        .bind(&ladder.party)
        .bind(ladder.phone.as_ref().map(E164::as_str))
        .bind(ladder.language.code())
        .bind(Json(&context))
        .bind(Json(&definition))
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await?;
            let mut conn = self.pool.acquire().await?;
            let existing = load(&mut conn, &ladder.escalation_id, false).await?.ok_or_else(vanished)?;
            return Ok(LadderStart::Existing(existing));
        }
        for step in &ladder.steps {
            sqlx::query(
                "INSERT INTO ladder_steps (escalation_id, step_index, channel, due_at, state, updated_at)
                 VALUES ($1, $2, $3, $4, 'pending', $5)",
            )
            .bind(&ladder.escalation_id)
            .bind(step.index as i32)
            .bind(step.channel.name())
            .bind(to_ms(step.due_at))
            .bind(to_ms(now))
            .execute(&mut *tx)
            .await?;
        }
        insert_jobs(&mut *tx, &jobs, now).await?;
        insert_event(&mut *tx, &event).await?;
        let started = load(&mut tx, &ladder.escalation_id, false).await?.ok_or_else(vanished)?;
        tx.commit().await?;
        self.wakeup.notify_one();
        Ok(LadderStart::Started(started))
    }

    #[allow(clippy::too_many_arguments)]
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
        let mut tx = self.pool.begin().await?;
        let Some(ladder) = load(&mut tx, escalation_id, true).await? else {
            tx.rollback().await?;
            return Ok(LadderStop::NotFound);
        };
        if ladder.state != LadderState::Active {
            tx.rollback().await?;
            return Ok(LadderStop::AlreadyFinished(ladder));
        }
        sqlx::query(
            "UPDATE ladders SET state = 'stopped', finished_at = $2, stop_action = $3, stop_actor = $4, updated_at = $2
             WHERE escalation_id = $1",
        )
        .bind(escalation_id)
        .bind(to_ms(now))
        .bind(action.name())
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE ladder_steps SET state = 'canceled', updated_at = $2 WHERE escalation_id = $1 AND state = 'pending'",
        )
        .bind(escalation_id)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE jobs SET state = 'cancelled', lease_until = NULL, locked_by = NULL, updated_at = $2
             WHERE group_key = $1 AND state IN ('pending', 'running')",
        )
        .bind(job_group)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        insert_event(&mut *tx, &event).await?;
        insert_jobs(&mut *tx, &jobs, now).await?;
        let stopped = load(&mut tx, escalation_id, false).await?.ok_or_else(vanished)?;
        tx.commit().await?;
        Ok(LadderStop::Stopped(stopped))
    }

    async fn claim_step(&self, escalation_id: &str, index: u32, now: DateTime<Utc>) -> Result<StepClaim> {
        let mut tx = self.pool.begin().await?;
        let Some(ladder) = load(&mut tx, escalation_id, true).await? else {
            tx.rollback().await?;
            return Ok(StepClaim::NotFound);
        };
        if ladder.state != LadderState::Active {
            tx.rollback().await?;
            return Ok(StepClaim::LadderFinished(ladder));
        }
        let Some(step) = ladder.steps.iter().find(|s| s.index == index) else {
            tx.rollback().await?;
            return Ok(StepClaim::NotFound);
        };
        if step.state != StepState::Pending {
            let state = step.state;
            tx.rollback().await?;
            return Ok(StepClaim::NotPending(state));
        }
        sqlx::query(
            "UPDATE ladder_steps SET state = 'sending', attempts = attempts + 1, updated_at = $3
             WHERE escalation_id = $1 AND step_index = $2 AND state = 'pending'",
        )
        .bind(escalation_id)
        .bind(index as i32)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        let claimed = load(&mut tx, escalation_id, false).await?.ok_or_else(vanished)?;
        tx.commit().await?;
        Ok(StepClaim::Claimed(claimed))
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
        let mut tx = self.pool.begin().await?;
        if load(&mut tx, escalation_id, true).await?.is_none() {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query(
            "UPDATE ladder_steps SET state = $3, provider_id = COALESCE($4, provider_id), detail = $5, updated_at = $6
             WHERE escalation_id = $1 AND step_index = $2",
        )
        .bind(escalation_id)
        .bind(index as i32)
        .bind(result.state.name())
        .bind(&result.provider_id)
        .bind(&result.detail)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        insert_event(&mut *tx, &event).await?;
        insert_jobs(&mut *tx, &jobs, now).await?;
        let ladder = load(&mut tx, escalation_id, false).await?.ok_or_else(vanished)?;
        let state = if ladder.state == LadderState::Active && ladder.steps.iter().all(|s| s.state.is_final()) {
            sqlx::query(
                "UPDATE ladders SET state = 'exhausted', finished_at = $2, updated_at = $2
                 WHERE escalation_id = $1 AND state = 'active'",
            )
            .bind(escalation_id)
            .bind(to_ms(now))
            .execute(&mut *tx)
            .await?;
            if let Some(event) = &on_exhausted.event {
                insert_event(&mut *tx, event).await?;
            }
            insert_jobs(&mut *tx, &on_exhausted.jobs, now).await?;
            LadderState::Exhausted
        } else {
            ladder.state
        };
        tx.commit().await?;
        self.wakeup.notify_one();
        Ok(Some(state))
    }

    async fn ladder(&self, escalation_id: &str) -> Result<Option<Ladder>> {
        let mut conn = self.pool.acquire().await?;
        load(&mut conn, escalation_id, false).await
    }

    async fn ladders_for_order(&self, order_id: &str) -> Result<Vec<Ladder>> {
        let mut conn = self.pool.acquire().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT escalation_id FROM ladders WHERE order_id = $1 ORDER BY started_at, escalation_id",
        )
        .bind(order_id)
        .fetch_all(&mut *conn)
        .await?;
        let mut ladders = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(ladder) = load(&mut conn, &id, false).await? {
                ladders.push(ladder);
            }
        }
        Ok(ladders)
    }

    async fn active_ladders(&self, limit: u32) -> Result<Vec<Ladder>> {
        // Two statements (the ladders, then all their steps) rather than
        // two per ladder.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LADDER_COLUMNS} FROM ladders WHERE state = 'active'
             ORDER BY started_at DESC, escalation_id DESC LIMIT $1"
        )))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let ids: Vec<String> = rows.iter().map(|r| r.try_get("escalation_id")).collect::<Result<_, _>>()?;
        let mut steps: std::collections::HashMap<String, Vec<LadderStep>> = std::collections::HashMap::new();
        for row in sqlx::query(
            "SELECT escalation_id, step_index, channel, due_at, state, attempts, provider_id, detail, updated_at
             FROM ladder_steps WHERE escalation_id = ANY($1) ORDER BY escalation_id, step_index",
        )
        .bind(&ids[..])
        .fetch_all(&self.pool)
        .await?
        {
            steps.entry(row.try_get("escalation_id")?).or_default().push(step_from_row(&row)?);
        }
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("escalation_id")?;
                ladder_from_row(row, steps.remove(&id).unwrap_or_default())
            })
            .collect()
    }

    async fn escalate_step(
        &self,
        escalation_id: &str,
        index: u32,
        job_key: &str,
        event: NewEvent,
        now: DateTime<Utc>,
    ) -> Result<Escalation> {
        let mut tx = self.pool.begin().await?;
        // The ladder's row lock serialises this with a stop or a step claim
        // on any replica; the job's row is changed only while pending.
        let Some(ladder) = load(&mut tx, escalation_id, true).await? else {
            tx.rollback().await?;
            return Ok(Escalation::NotFound);
        };
        if ladder.state != LadderState::Active {
            tx.rollback().await?;
            return Ok(Escalation::LadderFinished(ladder.state));
        }
        let Some(step) = ladder.steps.iter().find(|s| s.index == index) else {
            tx.rollback().await?;
            return Ok(Escalation::NoSuchStep);
        };
        if step.state != StepState::Pending {
            tx.rollback().await?;
            return Ok(Escalation::StepNotPending(step.state));
        }
        let at = to_ms(now);
        let run_at: Option<i64> = sqlx::query_scalar(
            "UPDATE jobs SET run_at = LEAST(run_at, $2), updated_at = $2 WHERE key = $1 AND state = 'pending'
             RETURNING run_at",
        )
        .bind(job_key)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(run_at) = run_at else {
            tx.rollback().await?;
            return Ok(Escalation::JobNotPending);
        };
        sqlx::query(
            "UPDATE ladder_steps SET due_at = LEAST(due_at, $3), updated_at = $3
             WHERE escalation_id = $1 AND step_index = $2",
        )
        .bind(escalation_id)
        .bind(index as i32)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        insert_event(&mut *tx, &event).await?;
        // Wakes the workers of every replica when this commits.
        sqlx::query("SELECT pg_notify($1, '')").bind(crate::postgres::JOBS_CHANNEL).execute(&mut *tx).await?;
        tx.commit().await?;
        self.wakeup.notify_one();
        Ok(Escalation::Escalated { run_at: crate::from_ms(run_at) })
    }

    async fn ivr_invalid_key(&self, call_sid: &str, menu: &str, now: DateTime<Utc>) -> Result<u32> {
        let count: i32 = sqlx::query_scalar(
            "INSERT INTO ivr_invalid_keys (call_sid, menu, count, updated_at) VALUES ($1, $2, 1, $3)
             ON CONFLICT (call_sid, menu) DO UPDATE SET count = ivr_invalid_keys.count + 1,
                                                        updated_at = excluded.updated_at
             RETURNING count",
        )
        .bind(call_sid)
        .bind(menu)
        .bind(to_ms(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(count as u32)
    }

    async fn ivr_wrong_keys(&self, call_sid: &str, menu: &str) -> Result<u32> {
        let count: Option<i32> =
            sqlx::query_scalar("SELECT count FROM ivr_invalid_keys WHERE call_sid = $1 AND menu = $2")
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
                    COUNT(*) FILTER (WHERE state IN ('completed', 'in-progress')) AS answered,
                    COUNT(*) FILTER (WHERE purpose IN {IVR_PURPOSES}) AS ivr,
                    COUNT(*) FILTER (WHERE purpose IN {BRIDGE_PURPOSES}) AS bridges
             FROM exotel_calls WHERE created_at >= $1 AND created_at < $2"
        )))
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        let ladders = sqlx::query(
            "SELECT COUNT(*) AS ladders,
                    COUNT(*) FILTER (WHERE kind = 'vendor_new_order') AS vendors,
                    COUNT(*) FILTER (WHERE stop_action = 'accept') AS accepted,
                    COUNT(*) FILTER (WHERE stop_action = 'reject') AS rejected,
                    COUNT(*) FILTER (WHERE state = 'exhausted' AND kind NOT LIKE 'customer%') AS exhausted,
                    COUNT(*) FILTER (WHERE state = 'active') AS active,
                    AVG((finished_at - started_at) / 1000.0) FILTER (
                        WHERE stop_action IN ('accept', 'reject', 'ready', 'extend', 'confirm', 'problem'))::float8
                        AS avg_response
             FROM ladders WHERE started_at >= $1 AND started_at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        let steps = sqlx::query(
            "SELECT s.channel, COUNT(*) FILTER (WHERE s.state = 'sent') AS sent,
                    COUNT(*) FILTER (WHERE s.state = 'failed') AS failed
             FROM ladder_steps s JOIN ladders l ON l.escalation_id = s.escalation_id
             WHERE l.started_at >= $1 AND l.started_at < $2 GROUP BY s.channel",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        stats_from_rows(&calls, &ladders, &steps)
    }
}
