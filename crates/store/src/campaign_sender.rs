//! What the campaign sender keeps besides the messages themselves: pacing
//! limiters shared by every replica, each campaign's breaker record, and
//! the few questions it asks about a campaign's messages and calls.
//!
//! A limiter is a row of the generic cell-rate algorithm
//! ([`mangwale_core::campaign_send::grant_slots`]): a reservation reads
//! its `tat` under a row lock (PostgreSQL `FOR UPDATE`; SQLite's single
//! writer), computes the grant and writes the new `tat` in the same
//! transaction, so replicas together never take more slots than the rate
//! allows.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mangwale_core::campaign::{CampaignId, MessageChannel};
use mangwale_core::campaign_send::{SlotGrant, grant_slots};
use sqlx::Row;

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::{Result, from_ms, to_ms};

/// A limiter's rate: slots `interval` µs apart, each takeable up to
/// `tolerance` µs before it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub interval: i64,
    pub tolerance: i64,
}

/// A campaign's breaker record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BreakerRecord {
    /// The last sends, oldest first: `1` went through, `0` failed.
    pub recent: String,
    pub tripped_at: Option<DateTime<Utc>>,
    /// Why it last tripped.
    pub reason: Option<String>,
}

#[async_trait]
pub trait CampaignSendStore: Send + Sync {
    /// Takes up to `want` slots of limiter `name` at `now` (a limiter not
    /// seen before starts with its first slot open).
    async fn reserve_slots(&self, name: &str, rate: Rate, want: u32, now: DateTime<Utc>) -> Result<SlotGrant>;

    /// Gives back the last `unused` slots of `grant` if nobody has taken a
    /// slot of the limiter since (its `tat` is still the grant's); whether
    /// they were given back.
    async fn return_slots(&self, name: &str, rate: Rate, grant: &SlotGrant, unused: u32) -> Result<bool>;

    /// Takes one slot whatever the limiter says (a call that must not
    /// wait, which the paced calls then leave room for).
    async fn force_slot(&self, name: &str, rate: Rate, now: DateTime<Utc>) -> Result<()>;

    /// Appends `outcomes` (`1`/`0` per send) to the campaign's breaker
    /// record, keeping the last `keep`; the record as it now is.
    async fn record_sends(&self, id: &CampaignId, outcomes: &str, keep: usize, now: DateTime<Utc>) -> Result<String>;

    /// Marks the breaker tripped with `reason` and empties its record, so
    /// that a resumed campaign is judged on its sends after the resume.
    async fn trip_breaker(&self, id: &CampaignId, reason: &str, now: DateTime<Utc>) -> Result<()>;

    async fn breaker(&self, id: &CampaignId) -> Result<Option<BreakerRecord>>;

    /// Whether any message of the campaign is queued or being sent.
    async fn has_unfinished_messages(&self, id: &CampaignId) -> Result<bool>;

    /// When the next message of a channel is due: the earliest `next_at`
    /// of its queued messages and of its claims' leases.
    async fn next_message_at(&self, id: &CampaignId, channel: MessageChannel) -> Result<Option<DateTime<Utc>>>;

    /// The campaign's calls that are not over (requested, placed, unknown
    /// or in progress): those whose party is `campaign:<id>:<seq>`.
    async fn campaign_calls_in_flight(&self, id: &CampaignId) -> Result<u64>;

    /// The provider sid each of `seqs` holds (those without one are absent).
    async fn provider_sids(
        &self,
        id: &CampaignId,
        channel: MessageChannel,
        seqs: &[i64],
    ) -> Result<HashMap<i64, String>>;
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The party range of a campaign's calls: `campaign:<id>:` up to (not
/// including) `campaign:<id>;` (`;` follows `:`).
fn party_range(id: &CampaignId) -> (String, String) {
    (format!("campaign:{id}:"), format!("campaign:{id};"))
}

const OPEN_CALLS_SQL: &str = "SELECT COUNT(*) FROM exotel_calls
     WHERE purpose = 'campaign' AND state IN ('requested', 'placed', 'unknown', 'in-progress')
       AND party >= $1 AND party < $2";

const UNFINISHED_SQL: &str = "SELECT EXISTS (SELECT 1 FROM campaign_messages
     WHERE campaign_id = $1 AND channel IN ('sms', 'voice') AND state IN ('queued', 'sending'))";

/// Two index seeks (a MIN over one state each).
const NEXT_AT_SQL: &str = "SELECT
     (SELECT MIN(next_at) FROM campaign_messages WHERE campaign_id = $1 AND channel = $2 AND state = 'queued') AS q,
     (SELECT MIN(next_at) FROM campaign_messages WHERE campaign_id = $1 AND channel = $2 AND state = 'sending') AS s";

const BREAKER_SQL: &str = "SELECT recent, tripped_at, reason FROM campaign_breakers WHERE campaign_id = $1";

const TRIP_SQL: &str = "INSERT INTO campaign_breakers (campaign_id, recent, tripped_at, reason, updated_at)
     VALUES ($1, '', $2, $3, $2)
     ON CONFLICT (campaign_id) DO UPDATE SET recent = '', tripped_at = $2, reason = $3, updated_at = $2";

fn next_at_of(q: Option<i64>, s: Option<i64>) -> Option<DateTime<Utc>> {
    match (q, s) {
        (Some(a), Some(b)) => Some(from_ms(a.min(b))),
        (a, b) => a.or(b).map(from_ms),
    }
}

fn breaker_of(recent: String, tripped_at: Option<i64>, reason: Option<String>) -> BreakerRecord {
    BreakerRecord { recent, tripped_at: tripped_at.map(from_ms), reason }
}

#[async_trait]
impl CampaignSendStore for SqliteStore {
    async fn reserve_slots(&self, name: &str, rate: Rate, want: u32, now: DateTime<Utc>) -> Result<SlotGrant> {
        let _write = self.write.lock().await;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let tat: Option<i64> = sqlx::query_scalar("SELECT tat FROM rate_limiters WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let grant = grant_slots(tat.unwrap_or(i64::MIN), micros(now), rate.interval, rate.tolerance, want);
        if grant.granted > 0 {
            sqlx::query(
                "INSERT INTO rate_limiters (name, tat, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET tat = $2, updated_at = $3",
            )
            .bind(name)
            .bind(grant.tat)
            .bind(to_ms(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(grant)
    }

    async fn return_slots(&self, name: &str, rate: Rate, grant: &SlotGrant, unused: u32) -> Result<bool> {
        if unused == 0 {
            return Ok(false);
        }
        let _write = self.write.lock().await;
        let done = sqlx::query("UPDATE rate_limiters SET tat = tat - $3 WHERE name = $1 AND tat = $2")
            .bind(name)
            .bind(grant.tat)
            .bind(i64::from(unused.min(grant.granted)) * rate.interval)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn force_slot(&self, name: &str, rate: Rate, now: DateTime<Utc>) -> Result<()> {
        let _write = self.write.lock().await;
        sqlx::query(
            "INSERT INTO rate_limiters (name, tat, updated_at) VALUES ($1, $2 + $3, $4)
             ON CONFLICT (name) DO UPDATE SET tat = MAX(rate_limiters.tat, $2) + $3, updated_at = $4",
        )
        .bind(name)
        .bind(micros(now))
        .bind(rate.interval)
        .bind(to_ms(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn record_sends(&self, id: &CampaignId, outcomes: &str, keep: usize, now: DateTime<Utc>) -> Result<String> {
        let _write = self.write.lock().await;
        let recent: String = sqlx::query_scalar(
            "INSERT INTO campaign_breakers (campaign_id, recent, updated_at) VALUES ($1, substr($2, -$3), $4)
             ON CONFLICT (campaign_id) DO UPDATE SET recent = substr(campaign_breakers.recent || $2, -$3),
                                                     updated_at = $4
             RETURNING recent",
        )
        .bind(id.as_str())
        .bind(outcomes)
        .bind(keep.max(1) as i64)
        .bind(to_ms(now))
        .fetch_one(&self.writer)
        .await?;
        Ok(recent)
    }

    async fn trip_breaker(&self, id: &CampaignId, reason: &str, now: DateTime<Utc>) -> Result<()> {
        let _write = self.write.lock().await;
        sqlx::query(TRIP_SQL).bind(id.as_str()).bind(to_ms(now)).bind(reason).execute(&self.writer).await?;
        Ok(())
    }

    async fn breaker(&self, id: &CampaignId) -> Result<Option<BreakerRecord>> {
        let row = sqlx::query(BREAKER_SQL).bind(id.as_str()).fetch_optional(&self.pool).await?;
        row.map(|r| Ok(breaker_of(r.try_get("recent")?, r.try_get("tripped_at")?, r.try_get("reason")?))).transpose()
    }

    async fn has_unfinished_messages(&self, id: &CampaignId) -> Result<bool> {
        let any: i64 = sqlx::query_scalar(UNFINISHED_SQL).bind(id.as_str()).fetch_one(&self.pool).await?;
        Ok(any != 0)
    }

    async fn next_message_at(&self, id: &CampaignId, channel: MessageChannel) -> Result<Option<DateTime<Utc>>> {
        let row = sqlx::query(NEXT_AT_SQL).bind(id.as_str()).bind(channel.as_str()).fetch_one(&self.pool).await?;
        Ok(next_at_of(row.try_get("q")?, row.try_get("s")?))
    }

    async fn campaign_calls_in_flight(&self, id: &CampaignId) -> Result<u64> {
        let (from, to) = party_range(id);
        let n: i64 = sqlx::query_scalar(OPEN_CALLS_SQL).bind(from).bind(to).fetch_one(&self.pool).await?;
        Ok(n.max(0) as u64)
    }

    async fn provider_sids(
        &self,
        id: &CampaignId,
        channel: MessageChannel,
        seqs: &[i64],
    ) -> Result<HashMap<i64, String>> {
        let seqs = serde_json::to_string(seqs).expect("numbers serialise");
        let rows = sqlx::query(
            "SELECT seq, provider_sid FROM campaign_messages
             WHERE campaign_id = $1 AND channel = $2 AND seq IN (SELECT value FROM json_each($3))
               AND provider_sid IS NOT NULL",
        )
        .bind(id.as_str())
        .bind(channel.as_str())
        .bind(seqs)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("seq")?, r.try_get("provider_sid")?))).collect()
    }
}

#[async_trait]
impl CampaignSendStore for PgStore {
    async fn reserve_slots(&self, name: &str, rate: Rate, want: u32, now: DateTime<Utc>) -> Result<SlotGrant> {
        let mut tx = self.pool.begin().await?;
        // The row exists before it is locked, so two first reservations
        // of a limiter queue on its lock rather than both reading none.
        sqlx::query(
            "INSERT INTO rate_limiters (name, tat, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(i64::MIN)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        let tat: i64 = sqlx::query_scalar("SELECT tat FROM rate_limiters WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        let grant = grant_slots(tat, micros(now), rate.interval, rate.tolerance, want);
        if grant.granted > 0 {
            sqlx::query("UPDATE rate_limiters SET tat = $2, updated_at = $3 WHERE name = $1")
                .bind(name)
                .bind(grant.tat)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(grant)
    }

    async fn return_slots(&self, name: &str, rate: Rate, grant: &SlotGrant, unused: u32) -> Result<bool> {
        if unused == 0 {
            return Ok(false);
        }
        let done = sqlx::query("UPDATE rate_limiters SET tat = tat - $3 WHERE name = $1 AND tat = $2")
            .bind(name)
            .bind(grant.tat)
            .bind(i64::from(unused.min(grant.granted)) * rate.interval)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn force_slot(&self, name: &str, rate: Rate, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO rate_limiters (name, tat, updated_at) VALUES ($1, $2 + $3, $4)
             ON CONFLICT (name) DO UPDATE SET tat = GREATEST(rate_limiters.tat, $2) + $3, updated_at = $4",
        )
        .bind(name)
        .bind(micros(now))
        .bind(rate.interval)
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn record_sends(&self, id: &CampaignId, outcomes: &str, keep: usize, now: DateTime<Utc>) -> Result<String> {
        let recent: String = sqlx::query_scalar(
            "INSERT INTO campaign_breakers (campaign_id, recent, updated_at) VALUES ($1, right($2, $3), $4)
             ON CONFLICT (campaign_id) DO UPDATE SET recent = right(campaign_breakers.recent || $2, $3),
                                                     updated_at = $4
             RETURNING recent",
        )
        .bind(id.as_str())
        .bind(outcomes)
        .bind(i32::try_from(keep.max(1)).unwrap_or(i32::MAX))
        .bind(to_ms(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(recent)
    }

    async fn trip_breaker(&self, id: &CampaignId, reason: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(TRIP_SQL).bind(id.as_str()).bind(to_ms(now)).bind(reason).execute(&self.pool).await?;
        Ok(())
    }

    async fn breaker(&self, id: &CampaignId) -> Result<Option<BreakerRecord>> {
        let row = sqlx::query(BREAKER_SQL).bind(id.as_str()).fetch_optional(&self.pool).await?;
        row.map(|r| Ok(breaker_of(r.try_get("recent")?, r.try_get("tripped_at")?, r.try_get("reason")?))).transpose()
    }

    async fn has_unfinished_messages(&self, id: &CampaignId) -> Result<bool> {
        let any: bool = sqlx::query_scalar(UNFINISHED_SQL).bind(id.as_str()).fetch_one(&self.pool).await?;
        Ok(any)
    }

    async fn next_message_at(&self, id: &CampaignId, channel: MessageChannel) -> Result<Option<DateTime<Utc>>> {
        let row = sqlx::query(NEXT_AT_SQL).bind(id.as_str()).bind(channel.as_str()).fetch_one(&self.pool).await?;
        Ok(next_at_of(row.try_get("q")?, row.try_get("s")?))
    }

    async fn campaign_calls_in_flight(&self, id: &CampaignId) -> Result<u64> {
        let (from, to) = party_range(id);
        let n: i64 = sqlx::query_scalar(OPEN_CALLS_SQL).bind(from).bind(to).fetch_one(&self.pool).await?;
        Ok(n.max(0) as u64)
    }

    async fn provider_sids(
        &self,
        id: &CampaignId,
        channel: MessageChannel,
        seqs: &[i64],
    ) -> Result<HashMap<i64, String>> {
        let rows = sqlx::query(
            "SELECT seq, provider_sid FROM campaign_messages
             WHERE campaign_id = $1 AND channel = $2 AND seq = ANY($3) AND provider_sid IS NOT NULL",
        )
        .bind(id.as_str())
        .bind(channel.as_str())
        .bind(seqs)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("seq")?, r.try_get("provider_sid")?))).collect()
    }
}
