//! The operations console's analytics of a time range, counted in SQL on
//! both backends: calls per hour, how ladders ended and how fast parties
//! answered, each channel's steps, and the voice-ordering funnel. (Missed
//! calls and campaigns have their own counts: `missed_call_stats`,
//! `campaign_figures`.)

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::{Result, from_ms, to_ms};

/// The upper bounds (seconds, inclusive) of the response-time buckets; a
/// last bucket takes the slower answers.
pub const RESPONSE_BUCKETS: [u32; 5] = [10, 30, 60, 120, 300];

/// Stop actions that are a party's answer (`StopAction::is_response`).
const RESPONSE_ACTIONS: &str = "('accept', 'reject', 'ready', 'extend', 'confirm', 'problem')";

/// Calls that began in one UTC hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourCalls {
    pub hour: DateTime<Utc>,
    /// Our call attempts that Exotel was asked to place (refused ones
    /// excluded).
    pub outbound: u64,
    /// Calls to our numbers: the IVR's incoming calls, missed calls and
    /// calls to a masked number.
    pub inbound: u64,
}

/// How the ladders started in the range ended (so far).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LadderOutcomes {
    pub accepted: u64,
    pub rejected: u64,
    /// Ran out without an answer (customer notices, which expect none, are
    /// not counted).
    pub no_response: u64,
    /// Stopped otherwise: another answer (ready, extend, confirm, problem),
    /// superseded by Jupiter, or cancelled.
    pub stopped: u64,
}

/// One channel's ladder steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSteps {
    pub channel: String,
    /// Steps tried: sent, failed, or of unknown outcome.
    pub sent: u64,
    /// Steps the provider accepted.
    pub succeeded: u64,
    pub failed: u64,
}

/// Voice ordering sessions begun in the range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VoiceFunnel {
    pub sessions: u64,
    /// Sessions in which the caller confirmed a cart and an order was
    /// placed (even if cancelled later in the call).
    pub confirmed: u64,
    /// Sessions that ended with an order standing.
    pub ordered: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analytics {
    /// Every hour of the range, oldest first, zeros included.
    pub calls_per_hour: Vec<HourCalls>,
    pub ladders: LadderOutcomes,
    /// Answers by response time: `(Some(le), n)` counts those within `le`
    /// seconds and above the previous bound, `(None, n)` the slower ones.
    pub response_seconds: Vec<(Option<u32>, u64)>,
    /// By channel name, the deadline timer excluded.
    pub channels: Vec<ChannelSteps>,
    pub voice: VoiceFunnel,
}

#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// The counts of `[from, to)`.
    async fn analytics(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Analytics>;
}

const HOUR_MS: i64 = 3_600_000;

/// Outbound and inbound calls by hour (`$1`, `$2`: the range). Integer
/// division floors the start times (all after 1970) to their UTC hour.
const CALLS_PER_HOUR: &str = "SELECT hour, SUM(outbound) AS outbound, SUM(inbound) AS inbound FROM (
        SELECT (created_at / 3600000) * 3600000 AS hour, 1 AS outbound, 0 AS inbound
        FROM exotel_calls WHERE created_at >= $1 AND created_at < $2 AND state <> 'not-placed'
        UNION ALL
        SELECT (started_at / 3600000) * 3600000, 0, 1 FROM inbound_calls WHERE started_at >= $1 AND started_at < $2
        UNION ALL
        SELECT (at / 3600000) * 3600000, 0, 1 FROM missed_calls WHERE at >= $1 AND at < $2
        UNION ALL
        SELECT (started_at / 3600000) * 3600000, 0, 1 FROM masked_calls
        WHERE direction = 'inbound' AND started_at >= $1 AND started_at < $2
    ) AS calls GROUP BY hour ORDER BY hour";

const CHANNELS: &str = "SELECT s.channel,
        SUM(CASE WHEN s.state IN ('sent', 'failed', 'unknown') THEN 1 ELSE 0 END) AS sent,
        SUM(CASE WHEN s.state = 'sent' THEN 1 ELSE 0 END) AS succeeded,
        SUM(CASE WHEN s.state = 'failed' THEN 1 ELSE 0 END) AS failed
    FROM ladder_steps s JOIN ladders l ON l.escalation_id = s.escalation_id
    WHERE l.started_at >= $1 AND l.started_at < $2 AND s.channel <> 'deadline'
    GROUP BY s.channel ORDER BY s.channel";

/// The voice funnel; `{orders}` is the backend's test that the saved
/// dialog lists an order.
const VOICE: &str = "SELECT COUNT(*) AS sessions,
        COALESCE(SUM(CASE WHEN {orders} THEN 1 ELSE 0 END), 0) AS confirmed,
        COALESCE(SUM(CASE WHEN status = 'placed' THEN 1 ELSE 0 END), 0) AS ordered
    FROM voice_sessions WHERE created_at >= $1 AND created_at < $2";

/// Ladder outcomes and response-time buckets in one statement.
fn ladders_sql() -> String {
    let duration = "(finished_at - started_at)";
    let mut buckets = String::new();
    let mut lower: Option<u32> = None;
    for (i, le) in RESPONSE_BUCKETS.iter().enumerate() {
        let above = lower.map(|l| format!(" AND {duration} > {}", i64::from(l) * 1000)).unwrap_or_default();
        buckets.push_str(&format!(
            ",\n COALESCE(SUM(CASE WHEN stop_action IN {RESPONSE_ACTIONS} AND {duration} <= {}{above} THEN 1 ELSE 0 END), 0) AS b{i}",
            i64::from(*le) * 1000
        ));
        lower = Some(*le);
    }
    let last = lower.map(|l| i64::from(l) * 1000).unwrap_or(0);
    format!(
        "SELECT
            COALESCE(SUM(CASE WHEN stop_action = 'accept' THEN 1 ELSE 0 END), 0) AS accepted,
            COALESCE(SUM(CASE WHEN stop_action = 'reject' THEN 1 ELSE 0 END), 0) AS rejected,
            COALESCE(SUM(CASE WHEN state = 'exhausted' AND kind NOT LIKE 'customer%' THEN 1 ELSE 0 END), 0) AS exhausted,
            COALESCE(SUM(CASE WHEN state = 'stopped' AND stop_action NOT IN ('accept', 'reject') THEN 1 ELSE 0 END), 0)
                AS stopped{buckets},
            COALESCE(SUM(CASE WHEN stop_action IN {RESPONSE_ACTIONS} AND {duration} > {last} THEN 1 ELSE 0 END), 0)
                AS slower
         FROM ladders WHERE started_at >= $1 AND started_at < $2"
    )
}

fn count<R: Row>(row: &R, name: &str) -> Result<u64>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(row.try_get::<i64, _>(name)?.max(0) as u64)
}

/// The statements' rows, decoded the same way on both backends.
fn assemble<R: Row>(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    hours: &[R],
    ladders: &R,
    channels: &[R],
    voice: &R,
) -> Result<Analytics>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut by_hour = std::collections::BTreeMap::new();
    for row in hours {
        by_hour.insert(row.try_get::<i64, _>("hour")?, (count(row, "outbound")?, count(row, "inbound")?));
    }
    let first = to_ms(from).div_euclid(HOUR_MS) * HOUR_MS;
    let calls_per_hour = (first..to_ms(to))
        .step_by(HOUR_MS as usize)
        .map(|hour| {
            let (outbound, inbound) = by_hour.get(&hour).copied().unwrap_or((0, 0));
            HourCalls { hour: from_ms(hour), outbound, inbound }
        })
        .collect();
    let mut response_seconds = Vec::with_capacity(RESPONSE_BUCKETS.len() + 1);
    for (i, le) in RESPONSE_BUCKETS.iter().enumerate() {
        response_seconds.push((Some(*le), count(ladders, &format!("b{i}"))?));
    }
    response_seconds.push((None, count(ladders, "slower")?));
    Ok(Analytics {
        calls_per_hour,
        ladders: LadderOutcomes {
            accepted: count(ladders, "accepted")?,
            rejected: count(ladders, "rejected")?,
            no_response: count(ladders, "exhausted")?,
            stopped: count(ladders, "stopped")?,
        },
        response_seconds,
        channels: channels
            .iter()
            .map(|row| {
                Ok(ChannelSteps {
                    channel: row.try_get("channel")?,
                    sent: count(row, "sent")?,
                    succeeded: count(row, "succeeded")?,
                    failed: count(row, "failed")?,
                })
            })
            .collect::<Result<_>>()?,
        voice: VoiceFunnel {
            sessions: count(voice, "sessions")?,
            confirmed: count(voice, "confirmed")?,
            ordered: count(voice, "ordered")?,
        },
    })
}

#[async_trait]
impl AnalyticsStore for SqliteStore {
    async fn analytics(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Analytics> {
        let sqlite = |sql: &str| sql.replace('$', "?");
        let (f, t) = (to_ms(from), to_ms(to));
        let hours =
            sqlx::query(sqlx::AssertSqlSafe(sqlite(CALLS_PER_HOUR))).bind(f).bind(t).fetch_all(&self.pool).await?;
        let ladders =
            sqlx::query(sqlx::AssertSqlSafe(sqlite(&ladders_sql()))).bind(f).bind(t).fetch_one(&self.pool).await?;
        let channels = sqlx::query(sqlx::AssertSqlSafe(sqlite(CHANNELS))).bind(f).bind(t).fetch_all(&self.pool).await?;
        let voice = VOICE.replace("{orders}", "json_array_length(dialog, '$.orders') > 0");
        // The `$` of the JSON path stays: only the placeholders change.
        let voice = voice.replace("$1", "?1").replace("$2", "?2");
        let voice = sqlx::query(sqlx::AssertSqlSafe(voice)).bind(f).bind(t).fetch_one(&self.pool).await?;
        assemble(from, to, &hours, &ladders, &channels, &voice)
    }
}

#[async_trait]
impl AnalyticsStore for PgStore {
    async fn analytics(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Analytics> {
        let (f, t) = (to_ms(from), to_ms(to));
        let hours = sqlx::query(CALLS_PER_HOUR).bind(f).bind(t).fetch_all(&self.pool).await?;
        let ladders = sqlx::query(sqlx::AssertSqlSafe(ladders_sql())).bind(f).bind(t).fetch_one(&self.pool).await?;
        let channels = sqlx::query(CHANNELS).bind(f).bind(t).fetch_all(&self.pool).await?;
        let voice =
            VOICE.replace("{orders}", "jsonb_array_length(COALESCE(dialog::jsonb -> 'orders', '[]'::jsonb)) > 0");
        let voice = sqlx::query(sqlx::AssertSqlSafe(voice)).bind(f).bind(t).fetch_one(&self.pool).await?;
        assemble(from, to, &hours, &ladders, &channels, &voice)
    }
}
