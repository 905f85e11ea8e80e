//! Voice ordering sessions: each call's (or API session's) ordering dialog,
//! saved after every turn as the voice crate serialized it, under a version
//! that makes every save a compare-and-swap. Load → turn → save if the
//! version is unchanged; a save that lost (another replica, a retried
//! webhook) runs its turn again on the state that won, so no turn is lost.

use std::marker::PhantomData;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mangwale_core::E164;
use sqlx::{Database, Decode, Encode, Executor, IntoArguments, Postgres, Row, Sqlite, Type};

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::{Result, StoreError, from_ms, to_ms};

/// Where a session's turns come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceChannel {
    /// An Exotel call (`/exotel/ivr/voice/process`): the id is its CallSid.
    Call,
    /// The HTTP protocol (`/voice/sessions`).
    Api,
}

impl VoiceChannel {
    pub fn name(self) -> &'static str {
        match self {
            VoiceChannel::Call => "call",
            VoiceChannel::Api => "api",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "call" => Some(VoiceChannel::Call),
            "api" => Some(VoiceChannel::Api),
            _ => None,
        }
    }
}

/// Where a session stands, for queries and dashboards; the dialog itself
/// says the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceSessionStatus {
    /// The dialog goes on.
    Active,
    /// The dialog ended without an order standing.
    Ended,
    /// The caller was handed to the order desk.
    HandedOff,
    /// The dialog ended with an order placed (and not cancelled).
    Placed,
}

impl VoiceSessionStatus {
    pub fn name(self) -> &'static str {
        match self {
            VoiceSessionStatus::Active => "active",
            VoiceSessionStatus::Ended => "ended",
            VoiceSessionStatus::HandedOff => "handed_off",
            VoiceSessionStatus::Placed => "placed",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "active" => Some(VoiceSessionStatus::Active),
            "ended" => Some(VoiceSessionStatus::Ended),
            "handed_off" => Some(VoiceSessionStatus::HandedOff),
            "placed" => Some(VoiceSessionStatus::Placed),
            _ => None,
        }
    }
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceSession {
    pub session_id: String,
    pub channel: VoiceChannel,
    pub phone: Option<E164>,
    /// The serialized dialog (JSON text); the voice crate reads it.
    pub dialog: String,
    /// Bumped by every save.
    pub version: i64,
    pub status: VoiceSessionStatus,
    /// The dialog, were the caller to drop now, leaves a cart to offer back.
    pub resumable: bool,
    /// The last turn sent with a turn id, and the reply it got (JSON).
    pub last_turn: Option<String>,
    pub last_reply: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a turn changes: the new state, and the turn it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceSessionUpdate {
    pub dialog: String,
    pub status: VoiceSessionStatus,
    pub resumable: bool,
    pub last_turn: Option<String>,
    pub last_reply: Option<String>,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait VoiceSessionStore: Send + Sync {
    /// Creates a session at version 1. False (nothing written) when the id
    /// exists: another replica started the same call first, and the caller
    /// loads that one. `takes_up` names an earlier session of the caller
    /// whose cart this one offers back: it stops being resumable in the same
    /// commit, so a cart is offered by one later call only.
    async fn create_voice_session(&self, session: &VoiceSession, takes_up: Option<&str>) -> Result<bool>;

    async fn voice_session(&self, session_id: &str) -> Result<Option<VoiceSession>>;

    /// Saves a turn if the session is still at `expected_version`; returns
    /// the new version, or `None` when another save came first (the caller
    /// reloads and runs its turn again).
    async fn save_voice_session(
        &self,
        session_id: &str,
        expected_version: i64,
        update: &VoiceSessionUpdate,
    ) -> Result<Option<i64>>;

    /// The caller's most recently updated resumable session updated at or
    /// after `since`, other than `excluding` (the call asking).
    async fn resumable_voice_session(
        &self,
        phone: &E164,
        since: DateTime<Utc>,
        excluding: &str,
    ) -> Result<Option<VoiceSession>>;
}

const COLUMNS: &str = "session_id, channel, phone, dialog, version, status, resumable, last_turn, last_reply, \
                       created_at, updated_at";

/// The statements, written once for both backends: `$N` placeholders
/// (SQLite reads `$N` as its `?N`, by number) and the boolean literals
/// `TRUE`/`FALSE`, which SQLite reads as 1/0.
mod sql {
    pub(super) const INSERT: &str = "INSERT INTO voice_sessions (session_id, channel, phone, dialog, version, status,
                                                             resumable, last_turn, last_reply, created_at, updated_at)
                                     VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9, $10)
                                     ON CONFLICT (session_id) DO NOTHING
                                     RETURNING version";

    pub(super) const TAKE_UP: &str = "UPDATE voice_sessions SET resumable = FALSE WHERE session_id = $1";

    /// The compare-and-swap: only a session still at the expected version
    /// is written, and only then is a row (the new version) returned.
    pub(super) const SAVE: &str = "UPDATE voice_sessions SET dialog = $3, version = version + 1, status = $4,
                                                        resumable = $5, last_turn = $6, last_reply = $7,
                                                        updated_at = $8
                                   WHERE session_id = $1 AND version = $2
                                   RETURNING version";

    pub(super) fn by_id() -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(format!("SELECT {} FROM voice_sessions WHERE session_id = $1", super::COLUMNS))
    }

    pub(super) fn resumable() -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM voice_sessions
             WHERE phone = $1 AND updated_at >= $2 AND resumable = TRUE AND session_id <> $3
             ORDER BY updated_at DESC LIMIT 1",
            super::COLUMNS
        ))
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("voice session {what}: {e}"))
}

/// The one body of [`VoiceSessionStore`] for both backends, over any
/// database that encodes and decodes the session's columns. The backends
/// differ only in how a write is entered, which their impls below say.
struct Sessions<DB>(PhantomData<DB>);

impl<DB> Sessions<DB>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Decode<'r, DB>,
    for<'r> &'r str: sqlx::ColumnIndex<DB::Row>,
{
    /// Inserts `s` (at version 1) and, when it was new, makes `takes_up`
    /// not resumable, on `conn` (the caller's transaction).
    async fn create(conn: &mut DB::Connection, s: &VoiceSession, takes_up: Option<&str>) -> Result<bool> {
        // A row comes back only when the insert was not a conflict.
        let inserted = sqlx::query(sql::INSERT)
            .bind(s.session_id.as_str())
            .bind(s.channel.name())
            .bind(s.phone.as_ref().map(E164::as_str))
            .bind(s.dialog.as_str())
            .bind(s.status.name())
            .bind(s.resumable)
            .bind(s.last_turn.as_deref())
            .bind(s.last_reply.as_deref())
            .bind(to_ms(s.created_at))
            .bind(to_ms(s.updated_at))
            .fetch_optional(&mut *conn)
            .await?
            .is_some();
        if inserted && let Some(earlier) = takes_up {
            sqlx::query(sql::TAKE_UP).bind(earlier).execute(&mut *conn).await?;
        }
        Ok(inserted)
    }

    async fn get<'c>(reader: impl Executor<'c, Database = DB>, session_id: &str) -> Result<Option<VoiceSession>> {
        let row = sqlx::query(sql::by_id()).bind(session_id).fetch_optional(reader).await?;
        row.map(|r| from_row(&r)).transpose()
    }

    async fn save<'c>(
        writer: impl Executor<'c, Database = DB>,
        session_id: &str,
        expected_version: i64,
        u: &VoiceSessionUpdate,
    ) -> Result<Option<i64>> {
        let done = sqlx::query(sql::SAVE)
            .bind(session_id)
            .bind(expected_version)
            .bind(u.dialog.as_str())
            .bind(u.status.name())
            .bind(u.resumable)
            .bind(u.last_turn.as_deref())
            .bind(u.last_reply.as_deref())
            .bind(to_ms(u.at))
            .fetch_optional(writer)
            .await?;
        done.map(|row| row.try_get::<i64, _>("version")).transpose().map_err(Into::into)
    }

    async fn resumable<'c>(
        reader: impl Executor<'c, Database = DB>,
        phone: &E164,
        since: DateTime<Utc>,
        excluding: &str,
    ) -> Result<Option<VoiceSession>> {
        let row = sqlx::query(sql::resumable())
            .bind(phone.as_str())
            .bind(to_ms(since))
            .bind(excluding)
            .fetch_optional(reader)
            .await?;
        row.map(|r| from_row(&r)).transpose()
    }
}

fn from_row<'r, R: Row>(row: &'r R) -> Result<VoiceSession>
where
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let channel: String = row.try_get("channel")?;
    let status: String = row.try_get("status")?;
    let phone: Option<String> = row.try_get("phone")?;
    Ok(VoiceSession {
        session_id: row.try_get("session_id")?,
        channel: VoiceChannel::parse(&channel).ok_or_else(|| corrupt("channel", format!("'{channel}'")))?,
        phone: phone.as_deref().map(E164::parse).transpose().map_err(|e| corrupt("phone", e))?,
        dialog: row.try_get("dialog")?,
        version: row.try_get("version")?,
        status: VoiceSessionStatus::parse(&status).ok_or_else(|| corrupt("status", format!("'{status}'")))?,
        resumable: row.try_get("resumable")?,
        last_turn: row.try_get("last_turn")?,
        last_reply: row.try_get("last_reply")?,
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
    })
}

/// SQLite: writes queue on this process's write lock and go through the one
/// writer connection (`BEGIN IMMEDIATE`: the write lock is taken at once).
#[async_trait]
impl VoiceSessionStore for SqliteStore {
    async fn create_voice_session(&self, s: &VoiceSession, takes_up: Option<&str>) -> Result<bool> {
        let _write = self.write.lock().await;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let inserted = Sessions::<Sqlite>::create(&mut *tx, s, takes_up).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn voice_session(&self, session_id: &str) -> Result<Option<VoiceSession>> {
        Sessions::<Sqlite>::get(&self.pool, session_id).await
    }

    async fn save_voice_session(
        &self,
        session_id: &str,
        expected_version: i64,
        u: &VoiceSessionUpdate,
    ) -> Result<Option<i64>> {
        let _write = self.write.lock().await;
        Sessions::<Sqlite>::save(&self.writer, session_id, expected_version, u).await
    }

    async fn resumable_voice_session(
        &self,
        phone: &E164,
        since: DateTime<Utc>,
        excluding: &str,
    ) -> Result<Option<VoiceSession>> {
        Sessions::<Sqlite>::resumable(&self.pool, phone, since, excluding).await
    }
}

#[async_trait]
impl VoiceSessionStore for PgStore {
    async fn create_voice_session(&self, s: &VoiceSession, takes_up: Option<&str>) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let inserted = Sessions::<Postgres>::create(&mut *tx, s, takes_up).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn voice_session(&self, session_id: &str) -> Result<Option<VoiceSession>> {
        Sessions::<Postgres>::get(&self.pool, session_id).await
    }

    async fn save_voice_session(
        &self,
        session_id: &str,
        expected_version: i64,
        u: &VoiceSessionUpdate,
    ) -> Result<Option<i64>> {
        Sessions::<Postgres>::save(&self.pool, session_id, expected_version, u).await
    }

    async fn resumable_voice_session(
        &self,
        phone: &E164,
        since: DateTime<Utc>,
        excluding: &str,
    ) -> Result<Option<VoiceSession>> {
        Sessions::<Postgres>::resumable(&self.pool, phone, since, excluding).await
    }
}
