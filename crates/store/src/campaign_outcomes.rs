//! What happened to campaign messages after they were sent: the campaign
//! calls (what each speaks, whom it called, which message it is for) and
//! the moves Exotel's reports make (delivered, answered, pressed 1, opted
//! out, failed, queued again after a busy or unanswered call), plus the
//! campaign figures of the analytics.
//!
//! Every move is a compare-and-set on the message's state: it applies only
//! from the states the caller names, so a report Exotel repeats, or one
//! that arrives after a later state, changes nothing. One generic body
//! serves SQLite and PostgreSQL.

use std::marker::PhantomData;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mangwale_core::campaign::{
    CampaignId, MessageChannel, MessageState, SuppressionSource, TemplateCategory, TemplateKey,
};
use mangwale_core::{E164, Language};
use sqlx::{Database, Decode, Encode, Executor, IntoArguments, Postgres, Row, Sqlite, Type};

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::{Result, StoreError, from_ms, to_ms};

/// One message of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageRef {
    pub campaign: CampaignId,
    pub channel: MessageChannel,
    pub seq: i64,
}

/// A campaign call about to be placed: a message's, or a single call
/// (`POST /campaigns/send/voice`, no message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCampaignCall {
    /// The call attempt's id (`calls.id`), chosen before the call is placed.
    pub attempt_id: String,
    /// The campaign and recipient sequence; `None` for a single call.
    pub message: Option<(CampaignId, i64)>,
    pub template: TemplateKey,
    pub category: TemplateCategory,
    pub language: Language,
    pub phone: E164,
    /// The rendered voice text the call speaks.
    pub text: String,
    pub at: DateTime<Utc>,
}

/// A campaign call as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignCall {
    pub attempt_id: String,
    pub message: Option<(CampaignId, i64)>,
    /// 1 for a message's first call, 2 for its first retry, ...
    pub ordinal: u32,
    pub template: TemplateKey,
    pub category: TemplateCategory,
    pub language: Language,
    pub phone: E164,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

impl CampaignCall {
    /// The voice message this call is for (none for a single call).
    pub fn message_ref(&self) -> Option<MessageRef> {
        self.message.as_ref().map(|(campaign, seq)| MessageRef {
            campaign: campaign.clone(),
            channel: MessageChannel::Voice,
            seq: *seq,
        })
    }
}

/// Campaign figures over a period, for `/exotel/ivr/analytics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignFigures {
    /// Messages whose state last changed in the period, by channel and state.
    pub messages: Vec<(MessageChannel, MessageState, u64)>,
    /// Suppression entries added in the period, by source.
    pub opt_outs: Vec<(SuppressionSource, u64)>,
    /// Campaign calls placed in the period (messages' and single ones).
    pub calls: u64,
}

#[async_trait]
pub trait CampaignOutcomeStore: Send + Sync {
    /// Records a campaign call before it is placed. Its ordinal is one more
    /// than the message's latest call (1 for a single call).
    async fn add_campaign_call(&self, call: &NewCampaignCall) -> Result<CampaignCall>;

    /// The campaign call of a call attempt.
    async fn campaign_call(&self, attempt_id: &str) -> Result<Option<CampaignCall>>;

    /// Removes a campaign call that was certainly not placed (Exotel refused
    /// the request), so that it does not count as one of the message's calls.
    async fn forget_campaign_call(&self, attempt_id: &str) -> Result<()>;

    /// The highest ordinal of the message's calls (its latest call).
    async fn latest_call_ordinal(&self, campaign: &CampaignId, seq: i64) -> Result<Option<u32>>;

    /// Moves the message to `to` if it is in one of `from` (compare-and-set),
    /// making it due at `next_at` when given (else keeping when it was due)
    /// and recording `error` and the provider's sid when given. True if it
    /// moved. The one write behind [`Self::move_message`] and
    /// [`Self::retry_message`].
    #[allow(clippy::too_many_arguments)]
    async fn move_message_due(
        &self,
        message: &MessageRef,
        from: &[MessageState],
        to: MessageState,
        next_at: Option<DateTime<Utc>>,
        provider_sid: Option<&str>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Moves the message to `to` if it is in one of `from` (compare-and-set),
    /// recording `error` and, when given, the provider's sid. True if it moved.
    #[allow(clippy::too_many_arguments)]
    async fn move_message(
        &self,
        message: &MessageRef,
        from: &[MessageState],
        to: MessageState,
        provider_sid: Option<&str>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.move_message_due(message, from, to, None, provider_sid, error, now).await
    }

    /// Queues the message again, due at `at`, if it is in one of `from`
    /// (a busy or unanswered call's retry), recording the sid of the call
    /// that ended (the retry's send key holds it). True if it moved.
    #[allow(clippy::too_many_arguments)]
    async fn retry_message(
        &self,
        message: &MessageRef,
        from: &[MessageState],
        at: DateTime<Utc>,
        provider_sid: Option<&str>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.move_message_due(message, from, MessageState::Queued, Some(at), provider_sid, Some(error), now).await
    }

    /// The message Exotel knows by `sid` on `channel`, and its state.
    async fn message_by_sid(&self, channel: MessageChannel, sid: &str) -> Result<Option<(MessageRef, MessageState)>>;

    /// The campaign figures of `[from, to)`.
    async fn campaign_figures(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<CampaignFigures>;
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("campaign outcome {what}: {e}"))
}

fn channel_of(s: &str) -> Result<MessageChannel> {
    match s {
        "sms" => Ok(MessageChannel::Sms),
        "voice" => Ok(MessageChannel::Voice),
        other => Err(corrupt("channel", other)),
    }
}

const CALL_COLUMNS: &str =
    "attempt_id, campaign_id, seq, ordinal, template_key, category, language, phone, text, created_at";

fn call_from_row<'r, R: Row>(row: &'r R) -> Result<CampaignCall>
where
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let campaign: Option<String> = row.try_get("campaign_id")?;
    let seq: Option<i64> = row.try_get("seq")?;
    let message = match (campaign, seq) {
        (Some(c), Some(seq)) => Some((CampaignId::parse(&c).map_err(|e| corrupt("campaign id", e))?, seq)),
        _ => None,
    };
    let text = |name: &'static str| -> Result<String> { Ok(row.try_get::<String, _>(name)?) };
    Ok(CampaignCall {
        attempt_id: text("attempt_id")?,
        message,
        ordinal: u32::try_from(row.try_get::<i64, _>("ordinal")?).unwrap_or(0),
        template: TemplateKey::parse(&text("template_key")?).map_err(|e| corrupt("template", e))?,
        category: text("category")?.parse().map_err(|e| corrupt("category", e))?,
        language: text("language")?.parse().map_err(|e| corrupt("language", e))?,
        phone: E164::parse(&text("phone")?).map_err(|e| corrupt("phone", e))?,
        text: text("text")?,
        created_at: from_ms(row.try_get("created_at")?),
    })
}

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The one body of [`CampaignOutcomeStore`] for both backends (sqlx's
/// SQLite driver reads `$N` placeholders too). The backends differ only in
/// how writes are serialised, which their impls below say.
struct Outcomes<DB>(PhantomData<DB>);

impl<DB> Outcomes<DB>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'c> &'c sqlx::Pool<DB>: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Decode<'r, DB>,
    for<'r> &'r str: sqlx::ColumnIndex<DB::Row>,
{
    /// The ordinal is computed in the INSERT itself; the backends serialise
    /// writes of one message (SQLite's one writer, PostgreSQL's advisory
    /// lock), so two calls of a message never get the same one.
    async fn add_call<'c>(conn: impl Executor<'c, Database = DB>, c: &NewCampaignCall) -> Result<CampaignCall> {
        let (campaign, seq) = match &c.message {
            Some((campaign, seq)) => (Some(campaign.as_str()), Some(*seq)),
            None => (None, None),
        };
        let sql = format!(
            "INSERT INTO campaign_calls ({CALL_COLUMNS})
             SELECT $1, $2, $3,
                    CASE WHEN $2 IS NULL THEN 1 ELSE COALESCE(
                        (SELECT MAX(ordinal) FROM campaign_calls WHERE campaign_id = $2 AND seq = $3), 0) + 1 END,
                    $4, $5, $6, $7, $8, $9
             RETURNING {CALL_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(c.attempt_id.as_str())
            .bind(campaign)
            .bind(seq)
            .bind(c.template.as_str())
            .bind(c.category.as_str())
            .bind(c.language.code())
            .bind(c.phone.as_str())
            .bind(c.text.as_str())
            .bind(to_ms(c.at))
            .fetch_one(conn)
            .await?;
        call_from_row(&row)
    }

    async fn call(pool: &sqlx::Pool<DB>, attempt_id: &str) -> Result<Option<CampaignCall>> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM campaign_calls WHERE attempt_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(attempt_id).fetch_optional(pool).await?;
        row.map(|r| call_from_row(&r)).transpose()
    }

    async fn forget<'c>(conn: impl Executor<'c, Database = DB>, attempt_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM campaign_calls WHERE attempt_id = $1").bind(attempt_id).execute(conn).await?;
        Ok(())
    }

    async fn latest_ordinal(pool: &sqlx::Pool<DB>, campaign: &CampaignId, seq: i64) -> Result<Option<u32>> {
        let row = sqlx::query("SELECT MAX(ordinal) AS n FROM campaign_calls WHERE campaign_id = $1 AND seq = $2")
            .bind(campaign.as_str())
            .bind(seq)
            .fetch_one(pool)
            .await?;
        let n: Option<i64> = row.try_get("n")?;
        Ok(n.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    #[allow(clippy::too_many_arguments)]
    async fn move_to<'c>(
        conn: impl Executor<'c, Database = DB>,
        m: &MessageRef,
        from: &[MessageState],
        to: MessageState,
        next_at: Option<DateTime<Utc>>,
        provider_sid: Option<&str>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        if from.is_empty() {
            return Ok(false);
        }
        // A requeue sets when the message is due; a final move keeps it.
        let sql = format!(
            "UPDATE campaign_messages
             SET state = $4, next_at = COALESCE($5, next_at), provider_sid = COALESCE($6, provider_sid),
                 last_error = COALESCE($7, last_error), updated_at = $8
             WHERE campaign_id = $1 AND channel = $2 AND seq = $3 AND state IN ({})
             RETURNING seq",
            placeholders(9, from.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(m.campaign.as_str())
            .bind(m.channel.as_str())
            .bind(m.seq)
            .bind(to.as_str())
            .bind(next_at.map(to_ms))
            .bind(provider_sid)
            .bind(error)
            .bind(to_ms(now));
        for state in from {
            query = query.bind(state.as_str());
        }
        Ok(query.fetch_optional(conn).await?.is_some())
    }

    async fn by_sid(
        pool: &sqlx::Pool<DB>,
        channel: MessageChannel,
        sid: &str,
    ) -> Result<Option<(MessageRef, MessageState)>> {
        let row = sqlx::query(
            "SELECT campaign_id, seq, state FROM campaign_messages WHERE provider_sid = $1 AND channel = $2 LIMIT 1",
        )
        .bind(sid)
        .bind(channel.as_str())
        .fetch_optional(pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let campaign: String = row.try_get("campaign_id")?;
        let state: String = row.try_get("state")?;
        Ok(Some((
            MessageRef {
                campaign: CampaignId::parse(&campaign).map_err(|e| corrupt("campaign id", e))?,
                channel,
                seq: row.try_get("seq")?,
            },
            MessageState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
        )))
    }

    async fn figures(pool: &sqlx::Pool<DB>, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<CampaignFigures> {
        let (from, to) = (to_ms(from), to_ms(to));
        let rows = sqlx::query(
            "SELECT channel, state, COUNT(*) AS n FROM campaign_messages
             WHERE updated_at >= $1 AND updated_at < $2 GROUP BY channel, state",
        )
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?;
        let mut messages = Vec::new();
        for row in &rows {
            let channel: String = row.try_get("channel")?;
            let state: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            messages.push((
                channel_of(&channel)?,
                MessageState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
                u64::try_from(n).unwrap_or(0),
            ));
        }
        messages.sort_by_key(|(c, s, _)| (c.as_str(), s.as_str()));
        let rows = sqlx::query(
            "SELECT source, COUNT(*) AS n FROM suppressions
             WHERE action = 'add' AND at >= $1 AND at < $2 GROUP BY source",
        )
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?;
        let mut opt_outs = Vec::new();
        for row in &rows {
            let source: String = row.try_get("source")?;
            let n: i64 = row.try_get("n")?;
            let source = SuppressionSource::parse(&source).ok_or_else(|| corrupt("source", &source))?;
            opt_outs.push((source, u64::try_from(n).unwrap_or(0)));
        }
        opt_outs.sort_by_key(|(s, _)| s.as_str());
        let calls: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM campaign_calls WHERE created_at >= $1 AND created_at < $2")
                .bind(from)
                .bind(to)
                .fetch_one(pool)
                .await?
                .try_get("n")?;
        Ok(CampaignFigures { messages, opt_outs, calls: u64::try_from(calls).unwrap_or(0) })
    }
}

/// Serialises PostgreSQL's new calls of one message, so that two never take
/// the same ordinal (SQLite has one writer).
async fn pg_lock_message(tx: &mut sqlx::PgConnection, campaign: &CampaignId, seq: i64) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("campaign_call:{}:{seq}", campaign.as_str()))
        .execute(tx)
        .await?;
    Ok(())
}

#[async_trait]
impl CampaignOutcomeStore for SqliteStore {
    async fn add_campaign_call(&self, call: &NewCampaignCall) -> Result<CampaignCall> {
        let _write = self.write.lock().await;
        Outcomes::<Sqlite>::add_call(&self.writer, call).await
    }

    async fn campaign_call(&self, attempt_id: &str) -> Result<Option<CampaignCall>> {
        Outcomes::<Sqlite>::call(&self.pool, attempt_id).await
    }

    async fn forget_campaign_call(&self, attempt_id: &str) -> Result<()> {
        let _write = self.write.lock().await;
        Outcomes::<Sqlite>::forget(&self.writer, attempt_id).await
    }

    async fn latest_call_ordinal(&self, campaign: &CampaignId, seq: i64) -> Result<Option<u32>> {
        Outcomes::<Sqlite>::latest_ordinal(&self.pool, campaign, seq).await
    }

    async fn move_message_due(
        &self,
        message: &MessageRef,
        from: &[MessageState],
        to: MessageState,
        next_at: Option<DateTime<Utc>>,
        provider_sid: Option<&str>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let _write = self.write.lock().await;
        Outcomes::<Sqlite>::move_to(&self.writer, message, from, to, next_at, provider_sid, error, now).await
    }

    async fn message_by_sid(&self, channel: MessageChannel, sid: &str) -> Result<Option<(MessageRef, MessageState)>> {
        Outcomes::<Sqlite>::by_sid(&self.pool, channel, sid).await
    }

    async fn campaign_figures(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<CampaignFigures> {
        Outcomes::<Sqlite>::figures(&self.pool, from, to).await
    }
}

#[async_trait]
impl CampaignOutcomeStore for PgStore {
    async fn add_campaign_call(&self, call: &NewCampaignCall) -> Result<CampaignCall> {
        let mut tx = self.pool.begin().await?;
        if let Some((campaign, seq)) = &call.message {
            pg_lock_message(&mut tx, campaign, *seq).await?;
        }
        let stored = Outcomes::<Postgres>::add_call(&mut *tx, call).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn campaign_call(&self, attempt_id: &str) -> Result<Option<CampaignCall>> {
        Outcomes::<Postgres>::call(&self.pool, attempt_id).await
    }

    async fn forget_campaign_call(&self, attempt_id: &str) -> Result<()> {
        Outcomes::<Postgres>::forget(&self.pool, attempt_id).await
    }

    async fn latest_call_ordinal(&self, campaign: &CampaignId, seq: i64) -> Result<Option<u32>> {
        Outcomes::<Postgres>::latest_ordinal(&self.pool, campaign, seq).await
    }

    async fn move_message_due(
        &self,
        message: &MessageRef,
        from: &[MessageState],
        to: MessageState,
        next_at: Option<DateTime<Utc>>,
        provider_sid: Option<&str>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        Outcomes::<Postgres>::move_to(&self.pool, message, from, to, next_at, provider_sid, error, now).await
    }

    async fn message_by_sid(&self, channel: MessageChannel, sid: &str) -> Result<Option<(MessageRef, MessageState)>> {
        Outcomes::<Postgres>::by_sid(&self.pool, channel, sid).await
    }

    async fn campaign_figures(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<CampaignFigures> {
        Outcomes::<Postgres>::figures(&self.pool, from, to).await
    }
}
