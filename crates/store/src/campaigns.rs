//! Marketing campaigns: the campaign, its recipients and one message per
//! recipient and channel.
//!
//! The campaign's state changes only by compare-and-set, so two replicas
//! never both start, pause or finish one campaign. Recipients arrive in
//! batches (one transaction each): a number already in the campaign is
//! counted as a duplicate, not inserted. The sender claims due messages
//! with a fencing token: a claim bumps the message's `fence`, and only the
//! holder of the latest fence may record its outcome, so a sender that
//! stalled past its lease cannot overwrite the work of the one that took
//! the message over.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mangwale_core::campaign::{
    CampaignChannel, CampaignId, CampaignState, CampaignTemplate, MessageChannel, MessageState, Pacing, TemplateKey,
};
use mangwale_core::{E164, Language};
use sqlx::query::Query;
use sqlx::{Database, Decode, Encode, Executor, IntoArguments, Postgres, Row, Sqlite, Type};

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::{Result, StoreError, from_ms, to_ms};

/// A campaign to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaign {
    pub id: CampaignId,
    pub name: String,
    pub template: TemplateKey,
    pub channel: CampaignChannel,
    pub language: Language,
    pub pacing: Pacing,
    pub caller_id: Option<E164>,
    /// The incumbent's `target_audience`, as given (JSON text); kept for
    /// the record, not interpreted.
    pub target_audience: Option<String>,
    /// The incumbent's `schedule`, as given (JSON text).
    pub schedule: Option<String>,
    /// Not to be sent before this time (`schedule.start_at`).
    pub start_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    pub id: CampaignId,
    pub name: String,
    pub template: TemplateKey,
    pub channel: CampaignChannel,
    pub language: Language,
    pub state: CampaignState,
    /// Why it was paused or cancelled (the operator's or the breaker's words).
    pub state_reason: Option<String>,
    pub pacing: Pacing,
    pub caller_id: Option<E164>,
    pub target_audience: Option<String>,
    pub schedule: Option<String>,
    pub start_at: Option<DateTime<Utc>>,
    /// Recipients accepted so far.
    pub recipients: u64,
    /// Numbers given again (in any batch) and not inserted.
    pub duplicates: u64,
    pub created_at: DateTime<Utc>,
    /// The first start.
    pub started_at: Option<DateTime<Utc>>,
    /// The last pause.
    pub paused_at: Option<DateTime<Utc>>,
    /// When it was cancelled or completed.
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl Campaign {
    /// The message channels the campaign sends on.
    pub fn message_channels(&self) -> Vec<MessageChannel> {
        message_channels(self.channel)
    }
}

fn message_channels(channel: CampaignChannel) -> Vec<MessageChannel> {
    let mut out = Vec::with_capacity(2);
    if channel.sends_sms() {
        out.push(MessageChannel::Sms);
    }
    if channel.calls() {
        out.push(MessageChannel::Voice);
    }
    out
}

/// A recipient to add: a number, and what fills the template for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecipient {
    pub phone: E164,
    pub name: Option<String>,
    /// Overrides the campaign's language for this recipient.
    pub language: Option<Language>,
    pub variables: BTreeMap<String, String>,
}

/// What adding a batch of recipients did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    Added {
        accepted: u64,
        /// Numbers already in the campaign (or twice in the batch).
        duplicates: u64,
    },
    /// The campaign is in a state that takes no recipients (see
    /// [`CampaignState::accepts_recipients`]); nothing was written.
    Closed(CampaignState),
    NoCampaign,
}

/// What a compare-and-set of a campaign's state did.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// Changed; the campaign as it now is.
    Done(Box<Campaign>),
    /// The campaign is in this state, not one of those asked for.
    Refused(CampaignState),
    NoCampaign,
}

/// A message the sender claimed: the recipient, and the fence that proves
/// the claim when the outcome is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMessage {
    pub seq: i64,
    pub channel: MessageChannel,
    pub fence: i64,
    /// Tries so far, this one included.
    pub attempts: u32,
    pub phone: E164,
    pub name: Option<String>,
    pub language: Option<Language>,
    pub variables: BTreeMap<String, String>,
}

/// How a claimed message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageOutcome {
    /// A final state (sent, failed, suppressed, ...); to try again later
    /// use [`CampaignStore::requeue_message`].
    pub state: MessageState,
    pub provider_sid: Option<String>,
    pub error: Option<String>,
}

/// One message's standing, for the export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageStatus {
    pub channel: MessageChannel,
    pub state: MessageState,
    pub attempts: u32,
    pub next_at: DateTime<Utc>,
    pub provider_sid: Option<String>,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// A recipient and where each of their messages stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientOutcome {
    pub seq: i64,
    pub phone: E164,
    pub name: Option<String>,
    pub language: Option<Language>,
    pub variables: BTreeMap<String, String>,
    pub messages: Vec<MessageStatus>,
}

/// How many messages of a campaign are in one state on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageCount {
    pub channel: MessageChannel,
    pub state: MessageState,
    pub count: u64,
}

/// Which campaigns a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignFilter {
    pub state: Option<CampaignState>,
    pub template: Option<TemplateKey>,
}

#[async_trait]
pub trait CampaignStore: Send + Sync {
    /// Creates the campaign in state `created`.
    async fn create_campaign(&self, campaign: &NewCampaign) -> Result<Campaign>;

    async fn campaign(&self, id: &CampaignId) -> Result<Option<Campaign>>;

    /// Campaigns newest first, older than `before` when given, at most `limit`.
    async fn list_campaigns(
        &self,
        filter: &CampaignFilter,
        before: Option<&CampaignId>,
        limit: u32,
    ) -> Result<Vec<Campaign>>;

    async fn count_campaigns(&self, filter: &CampaignFilter) -> Result<u64>;

    /// Moves the campaign to `to` if it is in one of `from` (compare-and-set),
    /// recording `reason` and the time (first start, last pause, finish).
    /// Moving to `cancelled` also cancels its queued messages, in the same
    /// transaction.
    async fn transition_campaign(
        &self,
        id: &CampaignId,
        from: &[CampaignState],
        to: CampaignState,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Transition>;

    /// Adds a batch of recipients in one transaction, with one queued
    /// message per channel of the campaign (due at `now`), if the campaign
    /// takes recipients; numbers already in the campaign are counted, not
    /// inserted.
    async fn add_recipients(&self, id: &CampaignId, batch: Vec<NewRecipient>, now: DateTime<Utc>) -> Result<Intake>;

    /// Claims up to `limit` due messages of one channel: queued ones whose
    /// `next_at` has come, and first those in `sending` whose claim's lease
    /// ran out (their sender died). Each becomes `sending` until
    /// `now + lease`, with a new fence and one more attempt.
    async fn claim_messages(
        &self,
        id: &CampaignId,
        channel: MessageChannel,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedMessage>>;

    /// Records a claimed message's final outcome (sent, failed, suppressed,
    /// ...) if `fence` is still its latest claim; false otherwise (another
    /// sender took it over), and for a non-final state.
    async fn finish_message(
        &self,
        id: &CampaignId,
        channel: MessageChannel,
        seq: i64,
        fence: i64,
        outcome: &MessageOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Gives a claimed message back to the queue, due at `at` (a retry, the
    /// promotional window), fenced like [`CampaignStore::finish_message`].
    #[allow(clippy::too_many_arguments)]
    async fn requeue_message(
        &self,
        id: &CampaignId,
        channel: MessageChannel,
        seq: i64,
        fence: i64,
        at: DateTime<Utc>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Messages by channel and state (states with none are left out).
    async fn message_counts(&self, id: &CampaignId) -> Result<Vec<MessageCount>>;

    /// Queued messages of a channel due at `now`.
    async fn count_due(&self, id: &CampaignId, channel: MessageChannel, now: DateTime<Utc>) -> Result<u64>;

    /// Recipients after sequence `after_seq`, in order, at most `limit`,
    /// with their messages: keyset pages for the export.
    async fn recipients_page(&self, id: &CampaignId, after_seq: i64, limit: u32) -> Result<Vec<RecipientOutcome>>;

    /// Cancels every queued message of the campaign; how many.
    async fn cancel_queued(&self, id: &CampaignId, now: DateTime<Utc>) -> Result<u64>;

    /// The languages recipients override the campaign's with, each once.
    async fn recipient_languages(&self, id: &CampaignId) -> Result<Vec<Language>>;

    /// Adds or replaces a custom template (checked by the caller).
    async fn put_custom_template(&self, template: &CampaignTemplate, now: DateTime<Utc>) -> Result<()>;

    /// Every custom template, by key.
    async fn custom_templates(&self) -> Result<Vec<CampaignTemplate>>;
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("campaign {what}: {e}"))
}

const CAMPAIGN_COLUMNS: &str = "id, name, template_key, channel, language, state, state_reason, sms_per_second, \
     calls_per_second, max_concurrent_calls, caller_id, target_audience, schedule, start_at, recipients, duplicates, \
     created_at, started_at, paused_at, finished_at, updated_at";

fn campaign_from_row<'r, R: Row>(row: &'r R) -> Result<Campaign>
where
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let text = |name: &'static str| -> Result<String> { Ok(row.try_get::<String, _>(name)?) };
    let time =
        |name: &'static str| -> Result<Option<DateTime<Utc>>> { Ok(row.try_get::<Option<i64>, _>(name)?.map(from_ms)) };
    let state = text("state")?;
    let caller_id: Option<String> = row.try_get("caller_id")?;
    Ok(Campaign {
        id: CampaignId::parse(&text("id")?).map_err(|e| corrupt("id", e))?,
        name: text("name")?,
        template: TemplateKey::parse(&text("template_key")?).map_err(|e| corrupt("template", e))?,
        channel: text("channel")?.parse().map_err(|e| corrupt("channel", e))?,
        language: text("language")?.parse().map_err(|e| corrupt("language", e))?,
        state: CampaignState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
        state_reason: row.try_get("state_reason")?,
        pacing: Pacing {
            sms_per_second: row.try_get("sms_per_second")?,
            calls_per_second: row.try_get("calls_per_second")?,
            max_concurrent_calls: row.try_get::<i64, _>("max_concurrent_calls")?.clamp(0, i64::from(u32::MAX)) as u32,
        },
        caller_id: caller_id.as_deref().map(E164::parse).transpose().map_err(|e| corrupt("caller id", e))?,
        target_audience: row.try_get("target_audience")?,
        schedule: row.try_get("schedule")?,
        start_at: time("start_at")?,
        recipients: row.try_get::<i64, _>("recipients")?.max(0) as u64,
        duplicates: row.try_get::<i64, _>("duplicates")?.max(0) as u64,
        created_at: from_ms(row.try_get("created_at")?),
        started_at: time("started_at")?,
        paused_at: time("paused_at")?,
        finished_at: time("finished_at")?,
        updated_at: from_ms(row.try_get("updated_at")?),
    })
}

fn channel_of(s: &str) -> Result<MessageChannel> {
    match s {
        "sms" => Ok(MessageChannel::Sms),
        "voice" => Ok(MessageChannel::Voice),
        other => Err(corrupt("message channel", other)),
    }
}

fn message_state_of(s: &str) -> Result<MessageState> {
    MessageState::parse(s).ok_or_else(|| corrupt("message state", s))
}

fn variables_json(v: &BTreeMap<String, String>) -> Option<String> {
    (!v.is_empty()).then(|| serde_json::to_string(v).expect("a map of strings serialises"))
}

fn variables_of(v: Option<&str>) -> Result<BTreeMap<String, String>> {
    match v {
        None => Ok(BTreeMap::new()),
        Some(text) => serde_json::from_str(text).map_err(|e| corrupt("variables", e)),
    }
}

fn language_of(v: Option<&str>) -> Result<Option<Language>> {
    v.map(|l| l.parse::<Language>()).transpose().map_err(|e| corrupt("language", e))
}

/// A recipient row's columns, read the same way from both backends.
struct RecipientRow {
    seq: i64,
    phone: String,
    name: Option<String>,
    language: Option<String>,
    variables: Option<String>,
}

fn recipient_from_row<'r, R: Row>(row: &'r R) -> Result<RecipientRow>
where
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(RecipientRow {
        seq: row.try_get("seq")?,
        phone: row.try_get("phone")?,
        name: row.try_get("name")?,
        language: row.try_get("language")?,
        variables: row.try_get("variables")?,
    })
}

fn message_status_from_row<'r, R: Row>(row: &'r R) -> Result<(i64, MessageStatus)>
where
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let channel: String = row.try_get("channel")?;
    let state: String = row.try_get("state")?;
    Ok((
        row.try_get("seq")?,
        MessageStatus {
            channel: channel_of(&channel)?,
            state: message_state_of(&state)?,
            attempts: row.try_get::<i64, _>("attempts")?.max(0) as u32,
            next_at: from_ms(row.try_get("next_at")?),
            provider_sid: row.try_get("provider_sid")?,
            last_error: row.try_get("last_error")?,
            updated_at: from_ms(row.try_get("updated_at")?),
        },
    ))
}

/// Joins a page of recipients with their messages (both in seq order).
fn outcomes(recipients: Vec<RecipientRow>, mut messages: Vec<(i64, MessageStatus)>) -> Result<Vec<RecipientOutcome>> {
    messages.sort_by_key(|(seq, m)| (*seq, m.channel));
    let mut messages = messages.into_iter().peekable();
    recipients
        .into_iter()
        .map(|r| {
            let mut mine = Vec::new();
            while let Some((seq, _)) = messages.peek() {
                if *seq < r.seq {
                    messages.next();
                } else if *seq == r.seq {
                    mine.push(messages.next().expect("peeked").1);
                } else {
                    break;
                }
            }
            Ok(RecipientOutcome {
                seq: r.seq,
                phone: E164::parse(&r.phone).map_err(|e| corrupt("recipient phone", e))?,
                name: r.name,
                language: language_of(r.language.as_deref())?,
                variables: variables_of(r.variables.as_deref())?,
                messages: mine,
            })
        })
        .collect()
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> i64 {
    to_ms(now) + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)
}

fn template_from_json(text: &str) -> Result<CampaignTemplate> {
    serde_json::from_str(text).map_err(|e| corrupt("custom template", e))
}

/// How many recipient rows one multi-row INSERT of the SQLite intake
/// carries (6 parameters each, far below SQLite's 32766).
const SQLITE_INSERT_ROWS: usize = 200;

/// The SQLite intake, on the store's writer thread: one IMMEDIATE
/// transaction per batch, multi-row INSERTs through cached statements.
fn sqlite_add_recipients(
    conn: &mut rusqlite::Connection,
    id: &CampaignId,
    batch: &[NewRecipient],
    now: DateTime<Utc>,
) -> Result<Intake> {
    use rusqlite::{OptionalExtension, TransactionBehavior, params};
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: Option<(String, String, i64)> = tx
        .prepare_cached("SELECT state, channel, next_seq FROM campaigns WHERE id = ?1")?
        .query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((state, channel, first_seq)) = found else {
        return Ok(Intake::NoCampaign);
    };
    let state = CampaignState::parse(&state).ok_or_else(|| corrupt("state", &state))?;
    if !state.accepts_recipients() {
        return Ok(Intake::Closed(state));
    }
    let channel: CampaignChannel = channel.parse().map_err(|e| corrupt("channel", e))?;
    let mut accepted = 0u64;
    for (n, chunk) in batch.chunks(SQLITE_INSERT_ROWS).enumerate() {
        let offset = n * SQLITE_INSERT_ROWS;
        let mut sql = String::from(
            "INSERT INTO campaign_recipients (campaign_id, seq, phone, name, language, variables) VALUES ",
        );
        for i in 0..chunk.len() {
            let p = 2 + i * 5;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("(?1,?{},?{},?{},?{},?{})", p, p + 1, p + 2, p + 3, p + 4));
        }
        sql.push_str(" ON CONFLICT DO NOTHING");
        let mut insert = tx.prepare_cached(&sql)?;
        insert.raw_bind_parameter(1, id.as_str())?;
        for (i, r) in chunk.iter().enumerate() {
            let p = 2 + i * 5;
            insert.raw_bind_parameter(p, first_seq + (offset + i) as i64)?;
            insert.raw_bind_parameter(p + 1, r.phone.as_str())?;
            insert.raw_bind_parameter(p + 2, r.name.as_deref())?;
            insert.raw_bind_parameter(p + 3, r.language.map(Language::code))?;
            insert.raw_bind_parameter(p + 4, variables_json(&r.variables))?;
        }
        accepted += insert.raw_execute()? as u64;
    }
    let end_seq = first_seq + batch.len() as i64;
    for ch in message_channels(channel) {
        tx.prepare_cached(
            "INSERT INTO campaign_messages (campaign_id, channel, seq, state, next_at, updated_at)
             SELECT campaign_id, ?2, seq, 'queued', ?3, ?3 FROM campaign_recipients
             WHERE campaign_id = ?1 AND seq >= ?4 AND seq < ?5",
        )?
        .execute(params![id.as_str(), ch.as_str(), to_ms(now), first_seq, end_seq])?;
    }
    let duplicates = batch.len() as u64 - accepted;
    tx.prepare_cached(
        "UPDATE campaigns SET next_seq = ?2, recipients = recipients + ?3, duplicates = duplicates + ?4,
                              updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![id.as_str(), end_seq, accepted as i64, duplicates as i64, to_ms(now)])?;
    tx.commit()?;
    Ok(Intake::Added { accepted, duplicates })
}

/// What the two backends write differently: the claim (PostgreSQL's skips
/// rows another replica has locked), and how a list is bound as one
/// parameter (a PostgreSQL array; a JSON array SQLite reads with
/// `json_each`). Everything else is one SQL text for both (sqlx's SQLite
/// driver reads `$N` placeholders too).
trait Dialect: Database {
    /// Claims due messages of one campaign, channel and state: binds $1
    /// campaign, $2 channel, $3 state, $4 now, $5 lease end, $6 limit;
    /// returns `seq, fence, attempts`.
    const CLAIM: &'static str;

    /// `column` is one of the list bound at `param`.
    fn one_of(column: &str, param: &str) -> String;

    fn bind_texts<'q>(query: Query<'q, Self, Self::Arguments>, values: &[&str]) -> Query<'q, Self, Self::Arguments>;

    fn bind_ints<'q>(query: Query<'q, Self, Self::Arguments>, values: &[i64]) -> Query<'q, Self, Self::Arguments>;

    /// How many rows a statement changed (sqlx has no trait for it).
    fn rows_affected(done: &Self::QueryResult) -> u64;
}

impl Dialect for Sqlite {
    // SQLite has one writer: the claim runs in an IMMEDIATE transaction.
    const CLAIM: &'static str = "UPDATE campaign_messages
         SET state = 'sending', fence = fence + 1, attempts = attempts + 1, next_at = $5, updated_at = $4
         WHERE campaign_id = $1 AND channel = $2 AND seq IN (
             SELECT seq FROM campaign_messages
             WHERE campaign_id = $1 AND channel = $2 AND state = $3 AND next_at <= $4
             ORDER BY next_at LIMIT $6)
         RETURNING seq, fence, attempts";

    fn one_of(column: &str, param: &str) -> String {
        format!("{column} IN (SELECT value FROM json_each({param}))")
    }

    fn bind_texts<'q>(query: Query<'q, Self, Self::Arguments>, values: &[&str]) -> Query<'q, Self, Self::Arguments> {
        query.bind(serde_json::to_string(values).expect("a list of strings serialises"))
    }

    fn bind_ints<'q>(query: Query<'q, Self, Self::Arguments>, values: &[i64]) -> Query<'q, Self, Self::Arguments> {
        query.bind(serde_json::to_string(values).expect("a list of numbers serialises"))
    }

    fn rows_affected(done: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
}

impl Dialect for Postgres {
    // SKIP LOCKED lets replicas claim side by side.
    const CLAIM: &'static str = "WITH due AS (
             SELECT seq FROM campaign_messages
             WHERE campaign_id = $1 AND channel = $2 AND state = $3 AND next_at <= $4
             ORDER BY next_at LIMIT $6 FOR UPDATE SKIP LOCKED)
         UPDATE campaign_messages m
         SET state = 'sending', fence = m.fence + 1, attempts = m.attempts + 1, next_at = $5, updated_at = $4
         FROM due WHERE m.campaign_id = $1 AND m.channel = $2 AND m.seq = due.seq
         RETURNING m.seq, m.fence, m.attempts";

    fn one_of(column: &str, param: &str) -> String {
        format!("{column} = ANY({param})")
    }

    fn bind_texts<'q>(query: Query<'q, Self, Self::Arguments>, values: &[&str]) -> Query<'q, Self, Self::Arguments> {
        query.bind(values.to_vec())
    }

    fn bind_ints<'q>(query: Query<'q, Self, Self::Arguments>, values: &[i64]) -> Query<'q, Self, Self::Arguments> {
        query.bind(values.to_vec())
    }

    fn rows_affected(done: &sqlx::postgres::PgQueryResult) -> u64 {
        done.rows_affected()
    }
}

/// The time column a move to `to` stamps ($4 is the time): `started_at`
/// keeps the first start, the others the latest.
fn stamp_sql(to: CampaignState) -> &'static str {
    match to {
        CampaignState::Running => ", started_at = COALESCE(started_at, $4)",
        CampaignState::Paused => ", paused_at = $4",
        CampaignState::Cancelled | CampaignState::Completed => ", finished_at = $4",
        CampaignState::Created => "",
    }
}

const CANCEL_QUEUED: &str = "UPDATE campaign_messages SET state = 'cancelled', updated_at = $2
     WHERE campaign_id = $1 AND channel IN ('sms', 'voice') AND state = 'queued'";

/// The one body of [`CampaignStore`] for both backends, up to the
/// [`Dialect`]. The backends' impls below say how a write is serialised
/// (SQLite's one writer; PostgreSQL's transactions and row locks) and keep
/// their own bulk intake.
struct Campaigns<DB>(PhantomData<DB>);

impl<DB> Campaigns<DB>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'c> &'c sqlx::Pool<DB>: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Decode<'r, DB> + Type<DB>,
    for<'r> &'r str: sqlx::ColumnIndex<DB::Row>,
{
    async fn create<'c>(conn: impl Executor<'c, Database = DB>, c: &NewCampaign) -> Result<Campaign> {
        let sql = format!(
            "INSERT INTO campaigns (id, name, template_key, channel, language, state, sms_per_second,
                                    calls_per_second, max_concurrent_calls, caller_id, target_audience, schedule,
                                    start_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'created', $6, $7, $8, $9, $10, $11, $12, $13, $13)
             RETURNING {CAMPAIGN_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(c.id.as_str())
            .bind(c.name.as_str())
            .bind(c.template.as_str())
            .bind(c.channel.as_str())
            .bind(c.language.code())
            .bind(c.pacing.sms_per_second)
            .bind(c.pacing.calls_per_second)
            .bind(i64::from(c.pacing.max_concurrent_calls))
            .bind(c.caller_id.as_ref().map(E164::as_str))
            .bind(c.target_audience.as_deref())
            .bind(c.schedule.as_deref())
            .bind(c.start_at.map(to_ms))
            .bind(to_ms(c.created_at))
            .fetch_one(conn)
            .await?;
        campaign_from_row(&row)
    }

    async fn get(pool: &sqlx::Pool<DB>, id: &CampaignId) -> Result<Option<Campaign>> {
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.as_str()).fetch_optional(pool).await?;
        row.map(|r| campaign_from_row(&r)).transpose()
    }

    async fn list(
        pool: &sqlx::Pool<DB>,
        filter: &CampaignFilter,
        before: Option<&CampaignId>,
        limit: u32,
    ) -> Result<Vec<Campaign>> {
        let sql = format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns
             WHERE (CAST($1 AS TEXT) IS NULL OR state = $1) AND (CAST($2 AS TEXT) IS NULL OR template_key = $2)
               AND (CAST($3 AS TEXT) IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(filter.state.map(CampaignState::as_str))
            .bind(filter.template.as_ref().map(TemplateKey::as_str))
            .bind(before.map(CampaignId::as_str))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
        rows.iter().map(campaign_from_row).collect()
    }

    async fn count(pool: &sqlx::Pool<DB>, filter: &CampaignFilter) -> Result<u64> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM campaigns
             WHERE (CAST($1 AS TEXT) IS NULL OR state = $1) AND (CAST($2 AS TEXT) IS NULL OR template_key = $2)",
        )
        .bind(filter.state.map(CampaignState::as_str))
        .bind(filter.template.as_ref().map(TemplateKey::as_str))
        .fetch_one(pool)
        .await?
        .try_get("n")?;
        Ok(n.max(0) as u64)
    }

    /// The compare-and-set, in the caller's transaction: the campaign as
    /// it now is, or `None` if it is not in one of `from` (or not at all).
    async fn transition(
        tx: &mut DB::Connection,
        id: &CampaignId,
        from: &[CampaignState],
        to: CampaignState,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Campaign>> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let sql = format!(
            "UPDATE campaigns SET state = $2, state_reason = $3, updated_at = $4{stamp}
             WHERE id = $1 AND {from} RETURNING {CAMPAIGN_COLUMNS}",
            stamp = stamp_sql(to),
            from = DB::one_of("state", "$5"),
        );
        let query =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.as_str()).bind(to.as_str()).bind(reason).bind(to_ms(now));
        let row = DB::bind_texts(query, &from).fetch_optional(&mut *tx).await?;
        if row.is_some() && to == CampaignState::Cancelled {
            Self::cancel_queued(&mut *tx, id, now).await?;
        }
        row.map(|r| campaign_from_row(&r)).transpose()
    }

    /// Claims in the caller's transaction: `(seq, fence, attempts)`.
    async fn claim(
        tx: &mut DB::Connection,
        id: &CampaignId,
        channel: MessageChannel,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<(i64, i64, i64)>> {
        let mut claimed: Vec<(i64, i64, i64)> = Vec::new();
        // Expired claims first: their recipients have waited longest.
        for state in ["sending", "queued"] {
            let left = i64::from(limit) - claimed.len() as i64;
            if left <= 0 {
                break;
            }
            let rows = sqlx::query(DB::CLAIM)
                .bind(id.as_str())
                .bind(channel.as_str())
                .bind(state)
                .bind(to_ms(now))
                .bind(lease_end(now, lease))
                .bind(left)
                .fetch_all(&mut *tx)
                .await?;
            for r in rows {
                claimed.push((r.try_get("seq")?, r.try_get("fence")?, r.try_get("attempts")?));
            }
        }
        Ok(claimed)
    }

    /// The claimed messages with their recipients.
    async fn claimed(
        pool: &sqlx::Pool<DB>,
        id: &CampaignId,
        channel: MessageChannel,
        claimed: Vec<(i64, i64, i64)>,
    ) -> Result<Vec<ClaimedMessage>> {
        let seqs: Vec<i64> = claimed.iter().map(|c| c.0).collect();
        let sql = format!(
            "SELECT seq, phone, name, language, variables FROM campaign_recipients
             WHERE campaign_id = $1 AND {}",
            DB::one_of("seq", "$2")
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.as_str());
        let rows = DB::bind_ints(query, &seqs).fetch_all(pool).await?;
        let recipients = rows.iter().map(recipient_from_row).collect::<Result<Vec<_>>>()?;
        claimed_messages(channel, claimed, recipients)
    }

    async fn finish<'c>(
        conn: impl Executor<'c, Database = DB>,
        id: &CampaignId,
        channel: MessageChannel,
        seq: i64,
        fence: i64,
        outcome: &MessageOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        if !outcome.state.is_final() {
            return Ok(false);
        }
        let done = sqlx::query(
            "UPDATE campaign_messages SET state = $5, provider_sid = COALESCE($6, provider_sid), last_error = $7,
                                          updated_at = $8
             WHERE campaign_id = $1 AND channel = $2 AND seq = $3 AND fence = $4 AND state = 'sending'",
        )
        .bind(id.as_str())
        .bind(channel.as_str())
        .bind(seq)
        .bind(fence)
        .bind(outcome.state.as_str())
        .bind(outcome.provider_sid.as_deref())
        .bind(outcome.error.as_deref())
        .bind(to_ms(now))
        .execute(conn)
        .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    #[allow(clippy::too_many_arguments)]
    async fn requeue<'c>(
        conn: impl Executor<'c, Database = DB>,
        id: &CampaignId,
        channel: MessageChannel,
        seq: i64,
        fence: i64,
        at: DateTime<Utc>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE campaign_messages SET state = 'queued', next_at = $5, last_error = COALESCE($6, last_error),
                                          updated_at = $7
             WHERE campaign_id = $1 AND channel = $2 AND seq = $3 AND fence = $4 AND state = 'sending'",
        )
        .bind(id.as_str())
        .bind(channel.as_str())
        .bind(seq)
        .bind(fence)
        .bind(to_ms(at))
        .bind(error)
        .bind(to_ms(now))
        .execute(conn)
        .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn message_counts(pool: &sqlx::Pool<DB>, id: &CampaignId) -> Result<Vec<MessageCount>> {
        let rows = sqlx::query(
            "SELECT channel, state, COUNT(*) AS n FROM campaign_messages WHERE campaign_id = $1
             GROUP BY channel, state",
        )
        .bind(id.as_str())
        .fetch_all(pool)
        .await?;
        rows.iter().map(count_from_row).collect()
    }

    async fn count_due(
        pool: &sqlx::Pool<DB>,
        id: &CampaignId,
        channel: MessageChannel,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM campaign_messages
             WHERE campaign_id = $1 AND channel = $2 AND state = 'queued' AND next_at <= $3",
        )
        .bind(id.as_str())
        .bind(channel.as_str())
        .bind(to_ms(now))
        .fetch_one(pool)
        .await?
        .try_get("n")?;
        Ok(n.max(0) as u64)
    }

    async fn recipient_languages(pool: &sqlx::Pool<DB>, id: &CampaignId) -> Result<Vec<Language>> {
        let rows = sqlx::query(
            "SELECT DISTINCT language FROM campaign_recipients WHERE campaign_id = $1 AND language IS NOT NULL",
        )
        .bind(id.as_str())
        .fetch_all(pool)
        .await?;
        let mut languages = Vec::new();
        for row in &rows {
            let code: String = row.try_get("language")?;
            languages.extend(language_of(Some(&code))?);
        }
        Ok(languages)
    }

    async fn recipients_page(
        pool: &sqlx::Pool<DB>,
        id: &CampaignId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<RecipientOutcome>> {
        let rows = sqlx::query(
            "SELECT seq, phone, name, language, variables FROM campaign_recipients
             WHERE campaign_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(id.as_str())
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
        let recipients = rows.iter().map(recipient_from_row).collect::<Result<Vec<_>>>()?;
        let (Some(first), Some(last)) = (recipients.first().map(|r| r.seq), recipients.last().map(|r| r.seq)) else {
            return Ok(Vec::new());
        };
        let mut messages = Vec::new();
        // One range per channel: the key is (campaign, channel, seq).
        for ch in [MessageChannel::Sms, MessageChannel::Voice] {
            let rows = sqlx::query(
                "SELECT seq, channel, state, attempts, next_at, provider_sid, last_error, updated_at
                 FROM campaign_messages WHERE campaign_id = $1 AND channel = $2 AND seq >= $3 AND seq <= $4",
            )
            .bind(id.as_str())
            .bind(ch.as_str())
            .bind(first)
            .bind(last)
            .fetch_all(pool)
            .await?;
            for r in &rows {
                messages.push(message_status_from_row(r)?);
            }
        }
        outcomes(recipients, messages)
    }

    async fn cancel_queued<'c>(
        conn: impl Executor<'c, Database = DB>,
        id: &CampaignId,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let done = sqlx::query(CANCEL_QUEUED).bind(id.as_str()).bind(to_ms(now)).execute(conn).await?;
        Ok(DB::rows_affected(&done))
    }

    async fn put_template<'c>(
        conn: impl Executor<'c, Database = DB>,
        t: &CampaignTemplate,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let json = serde_json::to_string(t).map_err(|e| corrupt("custom template", e))?;
        sqlx::query(
            "INSERT INTO campaign_templates (key, template, created_at, updated_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT (key) DO UPDATE SET template = excluded.template, updated_at = excluded.updated_at",
        )
        .bind(t.key.as_str())
        .bind(json.as_str())
        .bind(to_ms(now))
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn templates(pool: &sqlx::Pool<DB>) -> Result<Vec<CampaignTemplate>> {
        let rows = sqlx::query("SELECT template FROM campaign_templates ORDER BY key").fetch_all(pool).await?;
        rows.iter().map(|r| template_from_json(&r.try_get::<String, _>("template")?)).collect()
    }
}

#[async_trait]
impl CampaignStore for SqliteStore {
    async fn create_campaign(&self, c: &NewCampaign) -> Result<Campaign> {
        let _write = self.write.lock().await;
        Campaigns::<Sqlite>::create(&self.writer, c).await
    }

    async fn campaign(&self, id: &CampaignId) -> Result<Option<Campaign>> {
        Campaigns::<Sqlite>::get(&self.pool, id).await
    }

    async fn list_campaigns(
        &self,
        filter: &CampaignFilter,
        before: Option<&CampaignId>,
        limit: u32,
    ) -> Result<Vec<Campaign>> {
        Campaigns::<Sqlite>::list(&self.pool, filter, before, limit).await
    }

    async fn count_campaigns(&self, filter: &CampaignFilter) -> Result<u64> {
        Campaigns::<Sqlite>::count(&self.pool, filter).await
    }

    async fn transition_campaign(
        &self,
        id: &CampaignId,
        from: &[CampaignState],
        to: CampaignState,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Transition> {
        let done = {
            let _write = self.write.lock().await;
            let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
            let done = Campaigns::<Sqlite>::transition(&mut *tx, id, from, to, reason, now).await?;
            tx.commit().await?;
            done
        };
        refused_or_done(self, id, done).await
    }

    async fn add_recipients(&self, id: &CampaignId, batch: Vec<NewRecipient>, now: DateTime<Utc>) -> Result<Intake> {
        let id = id.clone();
        self.exec.run(move |conn| sqlite_add_recipients(conn, &id, &batch, now)).await
    }

    async fn claim_messages(
        &self,
        id: &CampaignId,
        channel: MessageChannel,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedMessage>> {
        let claimed = {
            let _write = self.write.lock().await;
            let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
            let claimed = Campaigns::<Sqlite>::claim(&mut *tx, id, channel, now, lease, limit).await?;
            tx.commit().await?;
            claimed
        };
        Campaigns::<Sqlite>::claimed(&self.pool, id, channel, claimed).await
    }

    async fn finish_message(
        &self,
        id: &CampaignId,
        channel: MessageChannel,
        seq: i64,
        fence: i64,
        outcome: &MessageOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let _write = self.write.lock().await;
        Campaigns::<Sqlite>::finish(&self.writer, id, channel, seq, fence, outcome, now).await
    }

    async fn requeue_message(
        &self,
        id: &CampaignId,
        channel: MessageChannel,
        seq: i64,
        fence: i64,
        at: DateTime<Utc>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let _write = self.write.lock().await;
        Campaigns::<Sqlite>::requeue(&self.writer, id, channel, seq, fence, at, error, now).await
    }

    async fn message_counts(&self, id: &CampaignId) -> Result<Vec<MessageCount>> {
        Campaigns::<Sqlite>::message_counts(&self.pool, id).await
    }

    async fn count_due(&self, id: &CampaignId, channel: MessageChannel, now: DateTime<Utc>) -> Result<u64> {
        Campaigns::<Sqlite>::count_due(&self.pool, id, channel, now).await
    }

    async fn recipients_page(&self, id: &CampaignId, after_seq: i64, limit: u32) -> Result<Vec<RecipientOutcome>> {
        Campaigns::<Sqlite>::recipients_page(&self.pool, id, after_seq, limit).await
    }

    async fn cancel_queued(&self, id: &CampaignId, now: DateTime<Utc>) -> Result<u64> {
        let _write = self.write.lock().await;
        Campaigns::<Sqlite>::cancel_queued(&self.writer, id, now).await
    }

    async fn recipient_languages(&self, id: &CampaignId) -> Result<Vec<Language>> {
        Campaigns::<Sqlite>::recipient_languages(&self.pool, id).await
    }

    async fn put_custom_template(&self, t: &CampaignTemplate, now: DateTime<Utc>) -> Result<()> {
        let _write = self.write.lock().await;
        Campaigns::<Sqlite>::put_template(&self.writer, t, now).await
    }

    async fn custom_templates(&self) -> Result<Vec<CampaignTemplate>> {
        Campaigns::<Sqlite>::templates(&self.pool).await
    }
}

/// A transition's answer: done, or why not (read after the compare-and-set
/// found nothing to change).
async fn refused_or_done<S: CampaignStore + ?Sized>(
    store: &S,
    id: &CampaignId,
    done: Option<Campaign>,
) -> Result<Transition> {
    Ok(match done {
        Some(c) => Transition::Done(Box::new(c)),
        None => match store.campaign(id).await? {
            Some(c) => Transition::Refused(c.state),
            None => Transition::NoCampaign,
        },
    })
}

fn count_from_row<'r, R: Row>(row: &'r R) -> Result<MessageCount>
where
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let channel: String = row.try_get("channel")?;
    let state: String = row.try_get("state")?;
    Ok(MessageCount {
        channel: channel_of(&channel)?,
        state: message_state_of(&state)?,
        count: row.try_get::<i64, _>("n")?.max(0) as u64,
    })
}

/// Joins the claimed messages with their recipients, in claim order.
fn claimed_messages(
    channel: MessageChannel,
    claimed: Vec<(i64, i64, i64)>,
    recipients: Vec<RecipientRow>,
) -> Result<Vec<ClaimedMessage>> {
    let mut by_seq: BTreeMap<i64, RecipientRow> = recipients.into_iter().map(|r| (r.seq, r)).collect();
    claimed
        .into_iter()
        .map(|(seq, fence, attempts)| {
            let r = by_seq.remove(&seq).ok_or_else(|| corrupt("message", format!("recipient {seq} is missing")))?;
            Ok(ClaimedMessage {
                seq,
                channel,
                fence,
                attempts: attempts.max(0) as u32,
                phone: E164::parse(&r.phone).map_err(|e| corrupt("recipient phone", e))?,
                name: r.name,
                language: language_of(r.language.as_deref())?,
                variables: variables_of(r.variables.as_deref())?,
            })
        })
        .collect()
}

#[async_trait]
impl CampaignStore for PgStore {
    async fn create_campaign(&self, c: &NewCampaign) -> Result<Campaign> {
        Campaigns::<Postgres>::create(&self.pool, c).await
    }

    async fn campaign(&self, id: &CampaignId) -> Result<Option<Campaign>> {
        Campaigns::<Postgres>::get(&self.pool, id).await
    }

    async fn list_campaigns(
        &self,
        filter: &CampaignFilter,
        before: Option<&CampaignId>,
        limit: u32,
    ) -> Result<Vec<Campaign>> {
        Campaigns::<Postgres>::list(&self.pool, filter, before, limit).await
    }

    async fn count_campaigns(&self, filter: &CampaignFilter) -> Result<u64> {
        Campaigns::<Postgres>::count(&self.pool, filter).await
    }

    async fn transition_campaign(
        &self,
        id: &CampaignId,
        from: &[CampaignState],
        to: CampaignState,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Transition> {
        let mut tx = self.pool.begin().await?;
        let done = Campaigns::<Postgres>::transition(&mut *tx, id, from, to, reason, now).await?;
        tx.commit().await?;
        refused_or_done(self, id, done).await
    }

    async fn add_recipients(&self, id: &CampaignId, batch: Vec<NewRecipient>, now: DateTime<Utc>) -> Result<Intake> {
        let mut tx = self.pool.begin().await?;
        // The row lock orders concurrent batches and a racing start.
        let row = sqlx::query("SELECT state, channel, next_seq FROM campaigns WHERE id = $1 FOR UPDATE")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(Intake::NoCampaign);
        };
        let state: String = row.try_get("state")?;
        let state = CampaignState::parse(&state).ok_or_else(|| corrupt("state", &state))?;
        if !state.accepts_recipients() {
            return Ok(Intake::Closed(state));
        }
        let channel: CampaignChannel =
            row.try_get::<String, _>("channel")?.parse().map_err(|e| corrupt("channel", e))?;
        let first_seq: i64 = row.try_get("next_seq")?;
        let end_seq = first_seq + batch.len() as i64;
        let seqs: Vec<i64> = (first_seq..end_seq).collect();
        let phones: Vec<&str> = batch.iter().map(|r| r.phone.as_str()).collect();
        let names: Vec<Option<&str>> = batch.iter().map(|r| r.name.as_deref()).collect();
        let languages: Vec<Option<&str>> = batch.iter().map(|r| r.language.map(Language::code)).collect();
        let variables: Vec<Option<String>> = batch.iter().map(|r| variables_json(&r.variables)).collect();
        let accepted = sqlx::query(
            "INSERT INTO campaign_recipients (campaign_id, seq, phone, name, language, variables)
             SELECT $1::text, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(id.as_str())
        .bind(&seqs)
        .bind(&phones)
        .bind(&names)
        .bind(&languages)
        .bind(&variables)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        for ch in message_channels(channel) {
            sqlx::query(
                "INSERT INTO campaign_messages (campaign_id, channel, seq, state, next_at, updated_at)
                 SELECT campaign_id, $2, seq, 'queued', $3, $3 FROM campaign_recipients
                 WHERE campaign_id = $1 AND seq >= $4 AND seq < $5",
            )
            .bind(id.as_str())
            .bind(ch.as_str())
            .bind(to_ms(now))
            .bind(first_seq)
            .bind(end_seq)
            .execute(&mut *tx)
            .await?;
        }
        let duplicates = batch.len() as u64 - accepted;
        sqlx::query(
            "UPDATE campaigns SET next_seq = $2, recipients = recipients + $3, duplicates = duplicates + $4,
                                  updated_at = $5 WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(end_seq)
        .bind(accepted as i64)
        .bind(duplicates as i64)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Intake::Added { accepted, duplicates })
    }

    async fn claim_messages(
        &self,
        id: &CampaignId,
        channel: MessageChannel,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedMessage>> {
        let mut tx = self.pool.begin().await?;
        let claimed = Campaigns::<Postgres>::claim(&mut *tx, id, channel, now, lease, limit).await?;
        tx.commit().await?;
        Campaigns::<Postgres>::claimed(&self.pool, id, channel, claimed).await
    }

    async fn finish_message(
        &self,
        id: &CampaignId,
        channel: MessageChannel,
        seq: i64,
        fence: i64,
        outcome: &MessageOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        Campaigns::<Postgres>::finish(&self.pool, id, channel, seq, fence, outcome, now).await
    }

    async fn requeue_message(
        &self,
        id: &CampaignId,
        channel: MessageChannel,
        seq: i64,
        fence: i64,
        at: DateTime<Utc>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        Campaigns::<Postgres>::requeue(&self.pool, id, channel, seq, fence, at, error, now).await
    }

    async fn message_counts(&self, id: &CampaignId) -> Result<Vec<MessageCount>> {
        Campaigns::<Postgres>::message_counts(&self.pool, id).await
    }

    async fn count_due(&self, id: &CampaignId, channel: MessageChannel, now: DateTime<Utc>) -> Result<u64> {
        Campaigns::<Postgres>::count_due(&self.pool, id, channel, now).await
    }

    async fn recipients_page(&self, id: &CampaignId, after_seq: i64, limit: u32) -> Result<Vec<RecipientOutcome>> {
        Campaigns::<Postgres>::recipients_page(&self.pool, id, after_seq, limit).await
    }

    async fn cancel_queued(&self, id: &CampaignId, now: DateTime<Utc>) -> Result<u64> {
        Campaigns::<Postgres>::cancel_queued(&self.pool, id, now).await
    }

    async fn recipient_languages(&self, id: &CampaignId) -> Result<Vec<Language>> {
        Campaigns::<Postgres>::recipient_languages(&self.pool, id).await
    }

    async fn put_custom_template(&self, t: &CampaignTemplate, now: DateTime<Utc>) -> Result<()> {
        Campaigns::<Postgres>::put_template(&self.pool, t, now).await
    }

    async fn custom_templates(&self) -> Result<Vec<CampaignTemplate>> {
        Campaigns::<Postgres>::templates(&self.pool).await
    }
}
