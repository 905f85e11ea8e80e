//! Missed calls and the callbacks they bring: every missed call once (by
//! CallSid), one open callback per number, and the tries of each callback
//! fenced so that a try is placed and finished once, across restarts and
//! replicas.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mangwale_core::E164;
use serde::Serialize;
use sqlx::Row;

use crate::jobs::NewJob;
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::timeline::NewEvent;
use crate::{Result, StoreError, from_ms, to_ms};

/// Where a callback stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackState {
    /// A try is due (its job is queued).
    Scheduled,
    /// A try is placed or being placed; its outcome is awaited.
    Calling,
    /// The caller picked up.
    Answered,
    /// Every try went unanswered.
    GaveUp,
}

impl CallbackState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackState::Scheduled => "scheduled",
            CallbackState::Calling => "calling",
            CallbackState::Answered => "answered",
            CallbackState::GaveUp => "gave_up",
        }
    }

    pub fn parse(s: &str) -> Option<CallbackState> {
        Some(match s {
            "scheduled" => CallbackState::Scheduled,
            "calling" => CallbackState::Calling,
            "answered" => CallbackState::Answered,
            "gave_up" => CallbackState::GaveUp,
            _ => return None,
        })
    }

    pub fn is_open(self) -> bool {
        matches!(self, CallbackState::Scheduled | CallbackState::Calling)
    }
}

/// A callback to a caller who missed us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub id: String,
    pub phone: E164,
    pub state: CallbackState,
    pub first_missed_at: DateTime<Utc>,
    pub missed_count: u32,
    /// Tries claimed so far (the first call is try 1).
    pub tries: u32,
    pub due_at: DateTime<Utc>,
    /// Our call attempt of the current try, once placed.
    pub attempt_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A missed call to record.
#[derive(Debug, Clone)]
pub struct MissedCall {
    pub call_sid: String,
    pub phone: E164,
    pub at: DateTime<Utc>,
}

/// What a missed call does.
#[derive(Debug, Clone)]
pub enum MissedCallPlan {
    /// Brings a callback, its first try's job queued in the same commit.
    NewCallback { id: String, due_at: DateTime<Utc>, first_try: NewJob },
    /// Joins a callback open or recent for the number.
    Join { callback_id: String },
    /// We were on the phone with them: recorded, nothing more.
    Talking,
}

/// What recording a missed call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissedCallRecorded {
    Recorded,
    /// This CallSid was recorded before: nothing changed.
    Duplicate,
    /// [`MissedCallPlan::NewCallback`], but another callback for the number
    /// opened meanwhile: nothing changed; join that one.
    OpenCallbackExists,
}

/// What claiming a try found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryClaim {
    /// The try is ours to place.
    Fresh(Callback),
    /// The try was claimed before and no attempt was recorded for it: the
    /// worker that claimed it stopped, before or after asking Exotel.
    Resumed(Callback),
    /// The callback is finished or on another try.
    Gone,
}

/// How a try ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryEnd {
    Answered,
    /// Another try, due at this time (its job is among the finish's jobs).
    Retry {
        due_at: DateTime<Utc>,
    },
    GaveUp,
}

/// Counts for analytics: missed calls in the range; callbacks by their
/// first missed call in the range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MissedCallStats {
    pub missed_calls: u64,
    pub callbacks: u64,
    /// Callbacks with at least one call placed.
    pub callbacks_placed: u64,
    /// Calls placed over all tries.
    pub callback_calls: u64,
    pub answered: u64,
    pub gave_up: u64,
}

#[async_trait]
pub trait MissedCallStore: Send + Sync {
    /// The number's open callback, else its newest whose first missed call
    /// was at or after `since`.
    async fn callback_for_phone(&self, phone: &E164, since: DateTime<Utc>) -> Result<Option<Callback>>;

    /// Records a missed call, what it does (`plan`) and `event`, in one
    /// transaction.
    async fn record_missed_call(
        &self,
        call: MissedCall,
        plan: MissedCallPlan,
        event: NewEvent,
        now: DateTime<Utc>,
    ) -> Result<MissedCallRecorded>;

    async fn callback(&self, id: &str) -> Result<Option<Callback>>;

    /// The callback whose current try placed this attempt.
    async fn callback_by_attempt(&self, attempt_id: &str) -> Result<Option<Callback>>;

    /// Claims try `try_no` of a callback: `calling`, if it is `scheduled`
    /// after try `try_no - 1`; or resumed, if `try_no` was claimed and no
    /// attempt recorded.
    async fn claim_callback_try(&self, id: &str, try_no: u32, now: DateTime<Utc>) -> Result<TryClaim>;

    /// Gives a claimed try back (nothing was placed): `scheduled` again,
    /// due at `due_at`. False if the try was not held.
    async fn release_callback_try(
        &self,
        id: &str,
        try_no: u32,
        due_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Records the attempt a try placed, with `event`. False if the try was
    /// not held.
    async fn link_callback_attempt(
        &self,
        id: &str,
        try_no: u32,
        attempt_id: &str,
        event: NewEvent,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Ends try `try_no`: answered, another try due, or given up; with
    /// `event` and `jobs` in the same transaction. False (and nothing
    /// written) if the try was not the current one or is over.
    #[allow(clippy::too_many_arguments)]
    async fn finish_callback_try(
        &self,
        id: &str,
        try_no: u32,
        end: TryEnd,
        event: NewEvent,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    async fn missed_call_stats(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<MissedCallStats>;
}

const COLUMNS: &str =
    "id, phone, state, first_missed_at, missed_count, tries, due_at, attempt_id, created_at, updated_at, finished_at";

/// The columns of [`COLUMNS`], in order, decoded.
#[allow(clippy::too_many_arguments)]
fn decode(
    id: String,
    phone: String,
    state: String,
    first_missed_at: i64,
    missed_count: i64,
    tries: i64,
    due_at: i64,
    attempt_id: Option<String>,
    created_at: i64,
    updated_at: i64,
    finished_at: Option<i64>,
) -> Result<Callback> {
    Ok(Callback {
        phone: E164::parse(&phone).map_err(|e| StoreError::Corrupt(format!("callback {id} phone: {e}")))?,
        state: CallbackState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("callback state {state}")))?,
        first_missed_at: from_ms(first_missed_at),
        missed_count: u32::try_from(missed_count).unwrap_or(u32::MAX),
        tries: u32::try_from(tries).unwrap_or(u32::MAX),
        due_at: from_ms(due_at),
        attempt_id,
        created_at: from_ms(created_at),
        updated_at: from_ms(updated_at),
        finished_at: finished_at.map(from_ms),
        id,
    })
}

fn from_sqlx<R: Row>(row: &R) -> Result<Callback>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    decode(
        row.try_get("id")?,
        row.try_get("phone")?,
        row.try_get("state")?,
        row.try_get("first_missed_at")?,
        row.try_get("missed_count")?,
        row.try_get("tries")?,
        row.try_get("due_at")?,
        row.try_get("attempt_id")?,
        row.try_get("created_at")?,
        row.try_get("updated_at")?,
        row.try_get("finished_at")?,
    )
}

fn from_rusqlite(row: &rusqlite::Row<'_>) -> Result<Callback> {
    decode(
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
    )
}

/// The state and due time a try's end leaves.
fn after(end: TryEnd, due_at: DateTime<Utc>) -> (CallbackState, DateTime<Utc>) {
    match end {
        TryEnd::Answered => (CallbackState::Answered, due_at),
        TryEnd::Retry { due_at } => (CallbackState::Scheduled, due_at),
        TryEnd::GaveUp => (CallbackState::GaveUp, due_at),
    }
}

fn outcome_of(plan: &MissedCallPlan) -> (&'static str, Option<&str>) {
    match plan {
        MissedCallPlan::NewCallback { id, .. } => ("scheduled", Some(id)),
        MissedCallPlan::Join { callback_id } => ("joined", Some(callback_id)),
        MissedCallPlan::Talking => ("talking", None),
    }
}

#[async_trait]
impl MissedCallStore for SqliteStore {
    async fn callback_for_phone(&self, phone: &E164, since: DateTime<Utc>) -> Result<Option<Callback>> {
        let row = sqlx::query(AssertSql::callback_for_phone(COLUMNS, '?'))
            .bind(phone.as_str())
            .bind(to_ms(since))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_sqlx).transpose()
    }

    async fn record_missed_call(
        &self,
        call: MissedCall,
        plan: MissedCallPlan,
        event: NewEvent,
        now: DateTime<Utc>,
    ) -> Result<MissedCallRecorded> {
        let recorded = self
            .exec
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let (outcome, callback_id) = outcome_of(&plan);
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO missed_calls (call_sid, phone, at, outcome, callback_id)
                         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (call_sid) DO NOTHING",
                    )?
                    .execute(rusqlite::params![
                        call.call_sid,
                        call.phone.as_str(),
                        to_ms(call.at),
                        outcome,
                        callback_id
                    ])?;
                if inserted == 0 {
                    return Ok(MissedCallRecorded::Duplicate);
                }
                match &plan {
                    MissedCallPlan::NewCallback { id, due_at, first_try } => {
                        let opened = tx
                            .prepare_cached(
                                "INSERT INTO missed_call_callbacks
                                     (id, phone, state, first_missed_at, missed_count, tries, due_at, created_at,
                                      updated_at)
                                 VALUES (?1, ?2, 'scheduled', ?3, 1, 0, ?4, ?5, ?5)
                                 ON CONFLICT (phone) WHERE state IN ('scheduled', 'calling') DO NOTHING",
                            )?
                            .execute(rusqlite::params![
                                id,
                                call.phone.as_str(),
                                to_ms(call.at),
                                to_ms(*due_at),
                                to_ms(now)
                            ])?;
                        if opened == 0 {
                            // Dropping the transaction rolls the missed call back.
                            return Ok(MissedCallRecorded::OpenCallbackExists);
                        }
                        crate::sqlite_writes::insert_jobs(&tx, std::slice::from_ref(first_try), now)?;
                    }
                    MissedCallPlan::Join { callback_id } => {
                        tx.prepare_cached(
                            "UPDATE missed_call_callbacks SET missed_count = missed_count + 1, updated_at = ?2
                             WHERE id = ?1",
                        )?
                        .execute(rusqlite::params![callback_id, to_ms(now)])?;
                    }
                    MissedCallPlan::Talking => {}
                }
                crate::sqlite_writes::insert_event(&tx, &event)?;
                tx.commit()?;
                Ok(MissedCallRecorded::Recorded)
            })
            .await?;
        if recorded == MissedCallRecorded::Recorded {
            self.wakeup.notify_one();
        }
        Ok(recorded)
    }

    async fn callback(&self, id: &str) -> Result<Option<Callback>> {
        let row = sqlx::query(AssertSql::callback_by("id", COLUMNS, '?')).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(from_sqlx).transpose()
    }

    async fn callback_by_attempt(&self, attempt_id: &str) -> Result<Option<Callback>> {
        let row = sqlx::query(AssertSql::callback_by("attempt_id", COLUMNS, '?'))
            .bind(attempt_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_sqlx).transpose()
    }

    async fn claim_callback_try(&self, id: &str, try_no: u32, now: DateTime<Utc>) -> Result<TryClaim> {
        let id = id.to_string();
        self.exec
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let found = {
                    let mut select =
                        tx.prepare_cached(&format!("SELECT {COLUMNS} FROM missed_call_callbacks WHERE id = ?1"))?;
                    let mut rows = select.query(rusqlite::params![id])?;
                    match rows.next()? {
                        Some(row) => Some(from_rusqlite(row)?),
                        None => None,
                    }
                };
                let Some(callback) = found else { return Ok(TryClaim::Gone) };
                let claim = match claim_of(&callback, try_no) {
                    Claimable::Fresh => {
                        tx.prepare_cached(
                            "UPDATE missed_call_callbacks SET state = 'calling', tries = ?2, attempt_id = NULL,
                                 updated_at = ?3
                             WHERE id = ?1",
                        )?
                        .execute(rusqlite::params![id, i64::from(try_no), to_ms(now)])?;
                        TryClaim::Fresh(Callback {
                            state: CallbackState::Calling,
                            tries: try_no,
                            attempt_id: None,
                            updated_at: now,
                            ..callback
                        })
                    }
                    Claimable::Resumed => TryClaim::Resumed(callback),
                    Claimable::No => TryClaim::Gone,
                };
                tx.commit()?;
                Ok(claim)
            })
            .await
    }

    async fn release_callback_try(
        &self,
        id: &str,
        try_no: u32,
        due_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let id = id.to_string();
        self.exec
            .run(move |conn| {
                let released = conn
                    .prepare_cached(
                        "UPDATE missed_call_callbacks SET state = 'scheduled', tries = ?2 - 1, due_at = ?3,
                             updated_at = ?4
                         WHERE id = ?1 AND state = 'calling' AND tries = ?2 AND attempt_id IS NULL",
                    )?
                    .execute(rusqlite::params![id, i64::from(try_no), to_ms(due_at), to_ms(now)])?;
                Ok(released == 1)
            })
            .await
    }

    async fn link_callback_attempt(
        &self,
        id: &str,
        try_no: u32,
        attempt_id: &str,
        event: NewEvent,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let (id, attempt_id) = (id.to_string(), attempt_id.to_string());
        self.exec
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let linked = tx
                    .prepare_cached(
                        "UPDATE missed_call_callbacks SET attempt_id = ?3, updated_at = ?4
                         WHERE id = ?1 AND state = 'calling' AND tries = ?2",
                    )?
                    .execute(rusqlite::params![id, i64::from(try_no), attempt_id, to_ms(now)])?;
                if linked == 0 {
                    return Ok(false);
                }
                crate::sqlite_writes::insert_event(&tx, &event)?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    async fn finish_callback_try(
        &self,
        id: &str,
        try_no: u32,
        end: TryEnd,
        event: NewEvent,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let id = id.to_string();
        let (state, due_at) = after(end, now);
        let finished_at = (!state.is_open()).then(|| to_ms(now));
        let finished = self
            .exec
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let changed = tx
                    .prepare_cached(
                        "UPDATE missed_call_callbacks SET state = ?3, due_at = ?4, finished_at = ?5, updated_at = ?6
                         WHERE id = ?1 AND state = 'calling' AND tries = ?2",
                    )?
                    .execute(rusqlite::params![
                        id,
                        i64::from(try_no),
                        state.as_str(),
                        to_ms(due_at),
                        finished_at,
                        to_ms(now)
                    ])?;
                if changed == 0 {
                    return Ok(false);
                }
                crate::sqlite_writes::insert_event(&tx, &event)?;
                crate::sqlite_writes::insert_jobs(&tx, &jobs, now)?;
                tx.commit()?;
                Ok(true)
            })
            .await?;
        if finished {
            self.wakeup.notify_one();
        }
        Ok(finished)
    }

    async fn missed_call_stats(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<MissedCallStats> {
        let missed = sqlx::query(AssertSql::missed_count('?')).bind(to_ms(from)).bind(to_ms(to)).fetch_one(&self.pool);
        let missed = missed.await?;
        let callbacks = sqlx::query(AssertSql::callback_counts('?'))
            .bind(to_ms(from))
            .bind(to_ms(to))
            .fetch_one(&self.pool)
            .await?;
        stats(missed.try_get::<Option<i64>, _>(0)?, &callbacks)
    }
}

/// Whether a callback's try `try_no` may be claimed.
enum Claimable {
    Fresh,
    Resumed,
    No,
}

fn claim_of(callback: &Callback, try_no: u32) -> Claimable {
    match callback.state {
        CallbackState::Scheduled if callback.tries + 1 == try_no => Claimable::Fresh,
        CallbackState::Calling if callback.tries == try_no && callback.attempt_id.is_none() => Claimable::Resumed,
        _ => Claimable::No,
    }
}

fn stats<R: Row>(missed: Option<i64>, callbacks: &R) -> Result<MissedCallStats>
where
    for<'a> usize: sqlx::ColumnIndex<R>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let count = |i: usize| -> Result<u64> { Ok(callbacks.try_get::<Option<i64>, _>(i)?.unwrap_or(0).max(0) as u64) };
    Ok(MissedCallStats {
        missed_calls: missed.unwrap_or(0).max(0) as u64,
        callbacks: count(0)?,
        callbacks_placed: count(1)?,
        callback_calls: count(2)?,
        answered: count(3)?,
        gave_up: count(4)?,
    })
}

/// The statements both backends share, with their placeholder style.
struct AssertSql;

impl AssertSql {
    fn placeholders(sql: &str, style: char) -> sqlx::AssertSqlSafe<String> {
        let sql = if style == '$' { sql.replace('?', "$") } else { sql.to_string() };
        sqlx::AssertSqlSafe(sql)
    }

    fn callback_for_phone(columns: &str, style: char) -> sqlx::AssertSqlSafe<String> {
        // The open one first (there is at most one), else the newest.
        Self::placeholders(
            &format!(
                "SELECT {columns} FROM missed_call_callbacks
                 WHERE phone = ?1 AND (state IN ('scheduled', 'calling') OR first_missed_at >= ?2)
                 ORDER BY CASE WHEN state IN ('scheduled', 'calling') THEN 0 ELSE 1 END, first_missed_at DESC
                 LIMIT 1"
            ),
            style,
        )
    }

    fn callback_by(key: &str, columns: &str, style: char) -> sqlx::AssertSqlSafe<String> {
        Self::placeholders(&format!("SELECT {columns} FROM missed_call_callbacks WHERE {key} = ?1"), style)
    }

    fn missed_count(style: char) -> sqlx::AssertSqlSafe<String> {
        Self::placeholders("SELECT CAST(COUNT(*) AS BIGINT) FROM missed_calls WHERE at >= ?1 AND at < ?2", style)
    }

    fn callback_counts(style: char) -> sqlx::AssertSqlSafe<String> {
        Self::placeholders(
            // PostgreSQL sums BIGINTs into NUMERIC: cast back.
            "SELECT CAST(COUNT(*) AS BIGINT),
                    CAST(SUM(CASE WHEN tries > 0 THEN 1 ELSE 0 END) AS BIGINT),
                    CAST(SUM(tries) AS BIGINT),
                    CAST(SUM(CASE WHEN state = 'answered' THEN 1 ELSE 0 END) AS BIGINT),
                    CAST(SUM(CASE WHEN state = 'gave_up' THEN 1 ELSE 0 END) AS BIGINT)
             FROM missed_call_callbacks WHERE first_missed_at >= ?1 AND first_missed_at < ?2",
            style,
        )
    }
}

#[async_trait]
impl MissedCallStore for PgStore {
    async fn callback_for_phone(&self, phone: &E164, since: DateTime<Utc>) -> Result<Option<Callback>> {
        let row = sqlx::query(AssertSql::callback_for_phone(COLUMNS, '$'))
            .bind(phone.as_str())
            .bind(to_ms(since))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_sqlx).transpose()
    }

    async fn record_missed_call(
        &self,
        call: MissedCall,
        plan: MissedCallPlan,
        event: NewEvent,
        now: DateTime<Utc>,
    ) -> Result<MissedCallRecorded> {
        let mut tx = self.pool.begin().await?;
        let (outcome, callback_id) = outcome_of(&plan);
        let inserted = sqlx::query(
            "INSERT INTO missed_calls (call_sid, phone, at, outcome, callback_id)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (call_sid) DO NOTHING",
        )
        .bind(&call.call_sid)
        .bind(call.phone.as_str())
        .bind(to_ms(call.at))
        .bind(outcome)
        .bind(callback_id)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(MissedCallRecorded::Duplicate);
        }
        let mut enqueued = false;
        match &plan {
            MissedCallPlan::NewCallback { id, due_at, first_try } => {
                // A concurrent insert for the same number waits on the
                // unique index and then does nothing.
                let opened = sqlx::query(
                    "INSERT INTO missed_call_callbacks
                         (id, phone, state, first_missed_at, missed_count, tries, due_at, created_at, updated_at)
                     VALUES ($1, $2, 'scheduled', $3, 1, 0, $4, $5, $5)
                     ON CONFLICT (phone) WHERE state IN ('scheduled', 'calling') DO NOTHING",
                )
                .bind(id)
                .bind(call.phone.as_str())
                .bind(to_ms(call.at))
                .bind(to_ms(*due_at))
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await?;
                if opened.rows_affected() == 0 {
                    return Ok(MissedCallRecorded::OpenCallbackExists);
                }
                enqueued =
                    !crate::postgres::insert_jobs(&mut *tx, std::slice::from_ref(first_try), now).await?.is_empty();
            }
            MissedCallPlan::Join { callback_id } => {
                sqlx::query(
                    "UPDATE missed_call_callbacks SET missed_count = missed_count + 1, updated_at = $2 WHERE id = $1",
                )
                .bind(callback_id)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await?;
            }
            MissedCallPlan::Talking => {}
        }
        crate::postgres::insert_event(&mut *tx, &event).await?;
        tx.commit().await?;
        if enqueued {
            self.wakeup.notify_one();
        }
        Ok(MissedCallRecorded::Recorded)
    }

    async fn callback(&self, id: &str) -> Result<Option<Callback>> {
        let row = sqlx::query(AssertSql::callback_by("id", COLUMNS, '$')).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(from_sqlx).transpose()
    }

    async fn callback_by_attempt(&self, attempt_id: &str) -> Result<Option<Callback>> {
        let row = sqlx::query(AssertSql::callback_by("attempt_id", COLUMNS, '$'))
            .bind(attempt_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_sqlx).transpose()
    }

    async fn claim_callback_try(&self, id: &str, try_no: u32, now: DateTime<Utc>) -> Result<TryClaim> {
        let mut tx = self.pool.begin().await?;
        // The row lock holds off a concurrent claim until this one commits.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM missed_call_callbacks WHERE id = $1 FOR UPDATE"
        )))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(callback) = row.as_ref().map(from_sqlx).transpose()? else { return Ok(TryClaim::Gone) };
        let claim = match claim_of(&callback, try_no) {
            Claimable::Fresh => {
                sqlx::query(
                    "UPDATE missed_call_callbacks SET state = 'calling', tries = $2, attempt_id = NULL, updated_at = $3
                     WHERE id = $1",
                )
                .bind(id)
                .bind(i64::from(try_no))
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await?;
                TryClaim::Fresh(Callback {
                    state: CallbackState::Calling,
                    tries: try_no,
                    attempt_id: None,
                    updated_at: now,
                    ..callback
                })
            }
            Claimable::Resumed => TryClaim::Resumed(callback),
            Claimable::No => TryClaim::Gone,
        };
        tx.commit().await?;
        Ok(claim)
    }

    async fn release_callback_try(
        &self,
        id: &str,
        try_no: u32,
        due_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let released = sqlx::query(
            "UPDATE missed_call_callbacks SET state = 'scheduled', tries = $2 - 1, due_at = $3, updated_at = $4
             WHERE id = $1 AND state = 'calling' AND tries = $2 AND attempt_id IS NULL",
        )
        .bind(id)
        .bind(i64::from(try_no))
        .bind(to_ms(due_at))
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(released.rows_affected() == 1)
    }

    async fn link_callback_attempt(
        &self,
        id: &str,
        try_no: u32,
        attempt_id: &str,
        event: NewEvent,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let linked = sqlx::query(
            "UPDATE missed_call_callbacks SET attempt_id = $3, updated_at = $4
             WHERE id = $1 AND state = 'calling' AND tries = $2",
        )
        .bind(id)
        .bind(i64::from(try_no))
        .bind(attempt_id)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        if linked.rows_affected() == 0 {
            return Ok(false);
        }
        crate::postgres::insert_event(&mut *tx, &event).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn finish_callback_try(
        &self,
        id: &str,
        try_no: u32,
        end: TryEnd,
        event: NewEvent,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let (state, due_at) = after(end, now);
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE missed_call_callbacks SET state = $3, due_at = $4, finished_at = $5, updated_at = $6
             WHERE id = $1 AND state = 'calling' AND tries = $2",
        )
        .bind(id)
        .bind(i64::from(try_no))
        .bind(state.as_str())
        .bind(to_ms(due_at))
        .bind((!state.is_open()).then(|| to_ms(now)))
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() == 0 {
            return Ok(false);
        }
        crate::postgres::insert_event(&mut *tx, &event).await?;
        let enqueued = !crate::postgres::insert_jobs(&mut *tx, &jobs, now).await?.is_empty();
        tx.commit().await?;
        if enqueued {
            self.wakeup.notify_one();
        }
        Ok(true)
    }

    async fn missed_call_stats(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<MissedCallStats> {
        let missed =
            sqlx::query(AssertSql::missed_count('$')).bind(to_ms(from)).bind(to_ms(to)).fetch_one(&self.pool).await?;
        let callbacks = sqlx::query(AssertSql::callback_counts('$'))
            .bind(to_ms(from))
            .bind(to_ms(to))
            .fetch_one(&self.pool)
            .await?;
        stats(missed.try_get::<Option<i64>, _>(0)?, &callbacks)
    }
}
