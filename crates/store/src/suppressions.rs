//! The suppression ledger of campaign compliance: who must not get
//! campaign messages, since when, and why.
//!
//! Append-only. An opt-out (an SMS or WhatsApp STOP, key 9, a missed call
//! to the opt-out number, an operator), a DND report from Exotel or a line
//! of an uploaded DND/NCPR scrub list adds an entry; an operator lifting a
//! suppression adds a removal entry, which lifts every earlier entry of that
//! number. Nothing is updated or deleted, so the ledger is its own audit
//! trail. Whether an entry blocks a message depends on the message's
//! category ([`SuppressionSource::blocks`]).

use std::collections::HashMap;
use std::marker::PhantomData;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mangwale_core::E164;
use mangwale_core::campaign::{SuppressionSource, TemplateCategory};
use sqlx::{Database, Decode, Encode, Executor, IntoArguments, Postgres, Row, Sqlite, Type};

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::{Result, StoreError, from_ms, to_ms};

/// Whether an entry suppresses its number or lifts earlier entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SuppressionAction {
    Add,
    Remove,
}

impl SuppressionAction {
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionAction::Add => "add",
            SuppressionAction::Remove => "remove",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "add" => Some(SuppressionAction::Add),
            "remove" => Some(SuppressionAction::Remove),
            _ => None,
        }
    }
}

/// An entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSuppression {
    pub phone: E164,
    pub source: SuppressionSource,
    pub note: Option<String>,
    /// Who writes it: an operator's label, or the webhook or job.
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// One entry of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressionEntry {
    pub id: i64,
    pub phone: E164,
    pub action: SuppressionAction,
    /// For a removal, the channel it came through.
    pub source: SuppressionSource,
    pub note: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// A source that suppresses a number now, since its earliest entry in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveSuppression {
    pub source: SuppressionSource,
    pub since: DateTime<Utc>,
}

/// The sources suppressing a number now (empty: none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuppressionState {
    pub active: Vec<ActiveSuppression>,
}

impl SuppressionState {
    /// The earliest entry in force that blocks a message of `category`.
    pub fn blocking(&self, category: TemplateCategory) -> Option<ActiveSuppression> {
        self.active.iter().filter(|a| a.source.blocks(category)).min_by_key(|a| a.since).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }
}

/// Which entries a listing returns, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuppressionFilter {
    pub phone: Option<E164>,
    pub source: Option<SuppressionSource>,
    /// Only entries with a smaller id (the cursor of the previous page).
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// Numbers suppressed now, counted by source (a number suppressed by two
/// sources counts under each), and in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuppressionCounts {
    pub by_source: Vec<(SuppressionSource, u64)>,
    pub numbers: u64,
}

/// The most numbers one query asks about (SQLite's bound-parameter limit
/// is far above it; PostgreSQL's too).
pub const STATE_BATCH: usize = 500;

#[async_trait]
pub trait SuppressionStore: Send + Sync {
    /// Appends `entry` unless an entry of the same source already
    /// suppresses the number (a repeated STOP, a re-imported scrub list):
    /// the entry written, or `None`.
    async fn add_suppression(&self, entry: &NewSuppression) -> Result<Option<SuppressionEntry>>;

    /// [`add_suppression`](Self::add_suppression) for many numbers in one
    /// transaction; how many entries were written.
    async fn add_suppressions(&self, entries: &[NewSuppression]) -> Result<u64>;

    /// Appends a removal lifting every earlier entry of the number; `None`
    /// (nothing written) when nothing suppresses it.
    async fn remove_suppression(
        &self,
        phone: &E164,
        source: SuppressionSource,
        note: Option<&str>,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<SuppressionEntry>>;

    /// What suppresses each of `phones` now; numbers nothing suppresses are
    /// absent. Any number of phones (queried in batches of [`STATE_BATCH`]).
    async fn suppression_states(&self, phones: &[E164]) -> Result<HashMap<E164, SuppressionState>>;

    /// Ledger entries, newest first.
    async fn suppression_entries(&self, filter: &SuppressionFilter) -> Result<Vec<SuppressionEntry>>;

    async fn suppression_counts(&self) -> Result<SuppressionCounts>;
}

/// The state of one number.
pub async fn suppression_state<S: SuppressionStore + ?Sized>(store: &S, phone: &E164) -> Result<SuppressionState> {
    let mut states = store.suppression_states(std::slice::from_ref(phone)).await?;
    Ok(states.remove(phone).unwrap_or_default())
}

const COLUMNS: &str = "id, phone, action, source, note, actor, at";

/// Entries in force: additions no later removal of their number lifted.
const IN_FORCE: &str = "s.action = 'add' AND NOT EXISTS (
    SELECT 1 FROM suppressions r WHERE r.phone = s.phone AND r.action = 'remove' AND r.id > s.id)";

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("suppression {what}: {e}"))
}

fn source(name: &str) -> Result<SuppressionSource> {
    SuppressionSource::parse(name).ok_or_else(|| corrupt("source", format!("'{name}'")))
}

fn from_row<'r, R: Row>(row: &'r R) -> Result<SuppressionEntry>
where
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let phone: String = row.try_get("phone")?;
    let action: String = row.try_get("action")?;
    let src: String = row.try_get("source")?;
    Ok(SuppressionEntry {
        id: row.try_get("id")?,
        phone: E164::parse(&phone).map_err(|e| corrupt("phone", e))?,
        action: SuppressionAction::parse(&action).ok_or_else(|| corrupt("action", format!("'{action}'")))?,
        source: source(&src)?,
        note: row.try_get("note")?,
        actor: row.try_get("actor")?,
        at: from_ms(row.try_get("at")?),
    })
}

/// `?1, ?2, …` (SQLite) or `$1, $2, …` (PostgreSQL) for `n` values.
fn placeholders(n: usize, sigil: char) -> String {
    (1..=n).map(|i| format!("{sigil}{i}")).collect::<Vec<_>>().join(", ")
}

fn states_sql(n: usize, sigil: char) -> String {
    format!(
        "SELECT s.phone, s.source, MIN(s.at) AS since FROM suppressions s
         WHERE s.phone IN ({}) AND {IN_FORCE}
         GROUP BY s.phone, s.source",
        placeholders(n, sigil)
    )
}

fn collect_states<'r, R: Row>(rows: &'r [R], into: &mut HashMap<E164, SuppressionState>) -> Result<()>
where
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    for row in rows {
        let phone: String = row.try_get("phone")?;
        let phone = E164::parse(&phone).map_err(|e| corrupt("phone", e))?;
        let src: String = row.try_get("source")?;
        let since: i64 = row.try_get("since")?;
        into.entry(phone).or_default().active.push(ActiveSuppression { source: source(&src)?, since: from_ms(since) });
    }
    for state in into.values_mut() {
        state.active.sort_by_key(|a| (a.since, a.source.as_str()));
    }
    Ok(())
}

fn entries_sql(filter: &SuppressionFilter, sigil: char) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut binds = Vec::new();
    if let Some(phone) = &filter.phone {
        binds.push(phone.as_str().to_string());
        clauses.push(format!("phone = {sigil}{}", binds.len()));
    }
    if let Some(source) = filter.source {
        binds.push(source.as_str().to_string());
        clauses.push(format!("source = {sigil}{}", binds.len()));
    }
    let mut sql = format!("SELECT {COLUMNS} FROM suppressions");
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    // The cursor and limit are numbers: bound after the text values.
    let cursor = if clauses.is_empty() { " WHERE" } else { " AND" };
    if filter.before_id.is_some() {
        sql.push_str(&format!("{cursor} id < {sigil}{}", binds.len() + 1));
    }
    sql.push_str(&format!(
        " ORDER BY id DESC LIMIT {sigil}{}",
        binds.len() + 1 + usize::from(filter.before_id.is_some())
    ));
    (sql, binds)
}

/// Adds `entry` unless a same-source entry is in force (SQL shared by both
/// backends up to the placeholder sigil).
fn add_sql(sigil: char) -> String {
    let p = |i: u8| format!("{sigil}{i}");
    format!(
        "INSERT INTO suppressions (phone, action, source, note, actor, at)
         SELECT {p1}, 'add', {p2}, {p3}, {p4}, {p5}
         WHERE NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.phone = {p1} AND s.source = {p2} AND {IN_FORCE})
         RETURNING {COLUMNS}",
        p1 = p(1),
        p2 = p(2),
        p3 = p(3),
        p4 = p(4),
        p5 = p(5),
    )
}

fn remove_sql(sigil: char) -> String {
    let p = |i: u8| format!("{sigil}{i}");
    format!(
        "INSERT INTO suppressions (phone, action, source, note, actor, at)
         SELECT {p1}, 'remove', {p2}, {p3}, {p4}, {p5}
         WHERE EXISTS (SELECT 1 FROM suppressions s WHERE s.phone = {p1} AND {IN_FORCE})
         RETURNING {COLUMNS}",
        p1 = p(1),
        p2 = p(2),
        p3 = p(3),
        p4 = p(4),
        p5 = p(5),
    )
}

const COUNTS_SQL: &str = "SELECT s.source, COUNT(DISTINCT s.phone) AS n FROM suppressions s WHERE s.action = 'add' \
     AND NOT EXISTS (SELECT 1 FROM suppressions r WHERE r.phone = s.phone AND r.action = 'remove' AND r.id > s.id) \
     GROUP BY s.source";
const NUMBERS_SQL: &str = "SELECT COUNT(DISTINCT s.phone) AS n FROM suppressions s WHERE s.action = 'add' \
     AND NOT EXISTS (SELECT 1 FROM suppressions r WHERE r.phone = s.phone AND r.action = 'remove' AND r.id > s.id)";

fn counts_from<'r, R: Row>(rows: &'r [R], numbers: i64) -> Result<SuppressionCounts>
where
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut by_source = Vec::new();
    for row in rows {
        let src: String = row.try_get("source")?;
        let n: i64 = row.try_get("n")?;
        by_source.push((source(&src)?, u64::try_from(n).unwrap_or(0)));
    }
    by_source.sort_by_key(|(s, _)| s.as_str());
    Ok(SuppressionCounts { by_source, numbers: u64::try_from(numbers).unwrap_or(0) })
}

/// The one body of [`SuppressionStore`] for both backends (sqlx's SQLite
/// driver reads `$N` placeholders too). The backends differ only in how a
/// write is serialised per number, which their impls below say.
struct Ledger<DB>(PhantomData<DB>);

impl<DB> Ledger<DB>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Decode<'r, DB>,
    for<'r> &'r str: sqlx::ColumnIndex<DB::Row>,
{
    async fn add<'c>(conn: impl Executor<'c, Database = DB>, e: &NewSuppression) -> Result<Option<SuppressionEntry>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(add_sql('$')))
            .bind(e.phone.as_str())
            .bind(e.source.as_str())
            .bind(e.note.as_deref())
            .bind(e.actor.as_str())
            .bind(to_ms(e.at))
            .fetch_optional(conn)
            .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    async fn remove<'c>(conn: impl Executor<'c, Database = DB>, r: Removal<'_>) -> Result<Option<SuppressionEntry>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(remove_sql('$')))
            .bind(r.phone.as_str())
            .bind(r.source.as_str())
            .bind(r.note)
            .bind(r.actor)
            .bind(to_ms(r.at))
            .fetch_optional(conn)
            .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    async fn states(pool: &sqlx::Pool<DB>, phones: &[E164]) -> Result<HashMap<E164, SuppressionState>>
    where
        for<'c> &'c sqlx::Pool<DB>: Executor<'c, Database = DB>,
    {
        let mut states = HashMap::new();
        for chunk in phones.chunks(STATE_BATCH) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(states_sql(chunk.len(), '$')));
            for phone in chunk {
                query = query.bind(phone.as_str());
            }
            let rows = query.fetch_all(pool).await?;
            collect_states(&rows, &mut states)?;
        }
        Ok(states)
    }

    async fn entries(pool: &sqlx::Pool<DB>, filter: &SuppressionFilter) -> Result<Vec<SuppressionEntry>>
    where
        for<'c> &'c sqlx::Pool<DB>: Executor<'c, Database = DB>,
    {
        let (sql, binds) = entries_sql(filter, '$');
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in &binds {
            query = query.bind(b.as_str());
        }
        if let Some(id) = filter.before_id {
            query = query.bind(id);
        }
        let rows = query.bind(i64::from(filter.limit)).fetch_all(pool).await?;
        rows.iter().map(from_row).collect()
    }

    async fn counts(pool: &sqlx::Pool<DB>) -> Result<SuppressionCounts>
    where
        for<'c> &'c sqlx::Pool<DB>: Executor<'c, Database = DB>,
    {
        let rows = sqlx::query(COUNTS_SQL).fetch_all(pool).await?;
        let numbers: i64 = sqlx::query(NUMBERS_SQL).fetch_one(pool).await?.try_get("n")?;
        counts_from(&rows, numbers)
    }
}

/// A removal entry's fields.
#[derive(Clone, Copy)]
struct Removal<'a> {
    phone: &'a E164,
    source: SuppressionSource,
    note: Option<&'a str>,
    actor: &'a str,
    at: DateTime<Utc>,
}

/// Serialises PostgreSQL writes of one number, so that two concurrent STOPs
/// of one number cannot both find no entry in force and both append
/// (SQLite has one writer).
async fn pg_lock_number(tx: &mut sqlx::PgConnection, phone: &E164) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(phone.as_str()).execute(tx).await?;
    Ok(())
}

#[async_trait]
impl SuppressionStore for SqliteStore {
    async fn add_suppression(&self, e: &NewSuppression) -> Result<Option<SuppressionEntry>> {
        let _write = self.write.lock().await;
        Ledger::<Sqlite>::add(&self.writer, e).await
    }

    async fn add_suppressions(&self, entries: &[NewSuppression]) -> Result<u64> {
        let _write = self.write.lock().await;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut written = 0;
        for e in entries {
            written += u64::from(Ledger::<Sqlite>::add(&mut *tx, e).await?.is_some());
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn remove_suppression(
        &self,
        phone: &E164,
        source: SuppressionSource,
        note: Option<&str>,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<SuppressionEntry>> {
        let _write = self.write.lock().await;
        Ledger::<Sqlite>::remove(&self.writer, Removal { phone, source, note, actor, at }).await
    }

    async fn suppression_states(&self, phones: &[E164]) -> Result<HashMap<E164, SuppressionState>> {
        Ledger::<Sqlite>::states(&self.pool, phones).await
    }

    async fn suppression_entries(&self, filter: &SuppressionFilter) -> Result<Vec<SuppressionEntry>> {
        Ledger::<Sqlite>::entries(&self.pool, filter).await
    }

    async fn suppression_counts(&self) -> Result<SuppressionCounts> {
        Ledger::<Sqlite>::counts(&self.pool).await
    }
}

#[async_trait]
impl SuppressionStore for PgStore {
    async fn add_suppression(&self, e: &NewSuppression) -> Result<Option<SuppressionEntry>> {
        let mut tx = self.pool.begin().await?;
        pg_lock_number(&mut tx, &e.phone).await?;
        let entry = Ledger::<Postgres>::add(&mut *tx, e).await?;
        tx.commit().await?;
        Ok(entry)
    }

    async fn add_suppressions(&self, entries: &[NewSuppression]) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut written = 0;
        for e in entries {
            pg_lock_number(&mut tx, &e.phone).await?;
            written += u64::from(Ledger::<Postgres>::add(&mut *tx, e).await?.is_some());
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn remove_suppression(
        &self,
        phone: &E164,
        source: SuppressionSource,
        note: Option<&str>,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<SuppressionEntry>> {
        let mut tx = self.pool.begin().await?;
        pg_lock_number(&mut tx, phone).await?;
        let entry = Ledger::<Postgres>::remove(&mut *tx, Removal { phone, source, note, actor, at }).await?;
        tx.commit().await?;
        Ok(entry)
    }

    async fn suppression_states(&self, phones: &[E164]) -> Result<HashMap<E164, SuppressionState>> {
        Ledger::<Postgres>::states(&self.pool, phones).await
    }

    async fn suppression_entries(&self, filter: &SuppressionFilter) -> Result<Vec<SuppressionEntry>> {
        Ledger::<Postgres>::entries(&self.pool, filter).await
    }

    async fn suppression_counts(&self) -> Result<SuppressionCounts> {
        Ledger::<Postgres>::counts(&self.pool).await
    }
}
