//! Inbound calls: who called (vendor, rider, customer or unknown, as
//! identified at the flow's first Passthru), the order their menu is about,
//! their last choice, and whether they are still on the line. Later applet
//! requests of the same call read the record here, on whichever replica
//! they land.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mangwale_core::inbound::{CallerKind, Choice};
use mangwale_core::{E164, Language, OrderId};
use sqlx::Row;

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::{Result, StoreError, from_ms, to_ms};

/// One inbound call, by its CallSid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundCall {
    pub call_sid: String,
    /// `None` when Exotel sent no `CallFrom`.
    pub phone: Option<E164>,
    pub kind: CallerKind,
    /// The store, rider or customer id in Jupiter.
    pub party_id: Option<u64>,
    pub language: Language,
    /// The order the caller's menu is about.
    pub order_id: Option<OrderId>,
    /// Vendor: how many orders wait for acceptance.
    pub pending_orders: u32,
    /// False: answered from what was known at the lookup deadline.
    pub settled: bool,
    /// The caller's last choice at a menu.
    pub choice: Option<Choice>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// On the line at least until then, unless ended.
    pub active_until: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait InboundCallStore: Send + Sync {
    /// Records who is calling on `call.call_sid`: the first identification
    /// creates the row; a later one (the background lookup finishing)
    /// replaces what was identified and keeps `started_at`, the choice and
    /// the end.
    async fn save_inbound_call(&self, call: &InboundCall) -> Result<()>;

    async fn inbound_call(&self, call_sid: &str) -> Result<Option<InboundCall>>;

    /// Notes the caller's choice; false when the call is unknown.
    async fn set_inbound_choice(&self, call_sid: &str, choice: Choice, at: DateTime<Utc>) -> Result<bool>;

    /// The caller is on the line at least until `until` (an applet request,
    /// a Connect); never moves it back. False when the call is unknown.
    async fn extend_inbound_call(&self, call_sid: &str, until: DateTime<Utc>, at: DateTime<Utc>) -> Result<bool>;

    /// The call ended (its goodbye was said); false when unknown.
    async fn end_inbound_call(&self, call_sid: &str, at: DateTime<Utc>) -> Result<bool>;

    /// Whether `phone` is on an inbound call with us at `now`.
    async fn active_inbound_call_from(&self, phone: &E164, now: DateTime<Utc>) -> Result<bool>;
}

const COLUMNS: &str = "call_sid, phone, kind, party_id, language, order_id, pending_orders, settled, choice, \
                       prep_minutes, started_at, updated_at, active_until, ended_at";

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("inbound call {what}: {e}"))
}

/// The row's columns, read the same way on both backends.
struct Raw {
    call_sid: String,
    phone: Option<String>,
    kind: String,
    party_id: Option<i64>,
    language: String,
    order_id: Option<String>,
    pending_orders: i64,
    settled: bool,
    choice: Option<String>,
    prep_minutes: Option<i64>,
    started_at: i64,
    updated_at: i64,
    active_until: i64,
    ended_at: Option<i64>,
}

impl Raw {
    fn from_row<'r, R: Row>(row: &'r R) -> Result<Raw>
    where
        &'r str: sqlx::ColumnIndex<R>,
        String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(Raw {
            call_sid: row.try_get("call_sid")?,
            phone: row.try_get("phone")?,
            kind: row.try_get("kind")?,
            party_id: row.try_get("party_id")?,
            language: row.try_get("language")?,
            order_id: row.try_get("order_id")?,
            pending_orders: row.try_get("pending_orders")?,
            settled: row.try_get("settled")?,
            choice: row.try_get("choice")?,
            prep_minutes: row.try_get("prep_minutes")?,
            started_at: row.try_get("started_at")?,
            updated_at: row.try_get("updated_at")?,
            active_until: row.try_get("active_until")?,
            ended_at: row.try_get("ended_at")?,
        })
    }

    fn into_call(self) -> Result<InboundCall> {
        let minutes = self.prep_minutes.and_then(|m| u32::try_from(m).ok());
        Ok(InboundCall {
            phone: self.phone.as_deref().map(E164::parse).transpose().map_err(|e| corrupt("phone", e))?,
            kind: self.kind.parse().map_err(|e| corrupt("kind", e))?,
            party_id: self.party_id.map(|id| u64::try_from(id).map_err(|e| corrupt("party id", e))).transpose()?,
            language: self.language.parse().map_err(|e| corrupt("language", e))?,
            order_id: self.order_id.as_deref().map(OrderId::parse).transpose().map_err(|e| corrupt("order id", e))?,
            pending_orders: u32::try_from(self.pending_orders).unwrap_or(0),
            settled: self.settled,
            choice: match self.choice {
                Some(name) => {
                    Some(Choice::from_name(&name, minutes).ok_or_else(|| corrupt("choice", format!("'{name}'")))?)
                }
                None => None,
            },
            started_at: from_ms(self.started_at),
            updated_at: from_ms(self.updated_at),
            active_until: from_ms(self.active_until),
            ended_at: self.ended_at.map(from_ms),
            call_sid: self.call_sid,
        })
    }
}

fn party_id(call: &InboundCall) -> Option<i64> {
    call.party_id.and_then(|id| i64::try_from(id).ok())
}

#[async_trait]
impl InboundCallStore for SqliteStore {
    async fn save_inbound_call(&self, call: &InboundCall) -> Result<()> {
        let _write = self.write.lock().await;
        sqlx::query(
            "INSERT INTO inbound_calls (call_sid, phone, kind, party_id, language, order_id, pending_orders, settled,
                                        started_at, updated_at, active_until)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (call_sid) DO UPDATE SET
                 phone = excluded.phone, kind = excluded.kind, party_id = excluded.party_id,
                 language = excluded.language, order_id = excluded.order_id,
                 pending_orders = excluded.pending_orders, settled = excluded.settled,
                 updated_at = excluded.updated_at,
                 active_until = MAX(inbound_calls.active_until, excluded.active_until)",
        )
        .bind(&call.call_sid)
        .bind(call.phone.as_ref().map(E164::as_str))
        .bind(call.kind.name())
        .bind(party_id(call))
        .bind(call.language.code())
        .bind(call.order_id.as_ref().map(OrderId::as_str))
        .bind(i64::from(call.pending_orders))
        .bind(call.settled)
        .bind(to_ms(call.started_at))
        .bind(to_ms(call.updated_at))
        .bind(to_ms(call.active_until))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn inbound_call(&self, call_sid: &str) -> Result<Option<InboundCall>> {
        let sql = format!("SELECT {COLUMNS} FROM inbound_calls WHERE call_sid = ?1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(call_sid).fetch_optional(&self.pool).await?;
        row.map(|r| Raw::from_row(&r)?.into_call()).transpose()
    }

    async fn set_inbound_choice(&self, call_sid: &str, choice: Choice, at: DateTime<Utc>) -> Result<bool> {
        let _write = self.write.lock().await;
        let done =
            sqlx::query("UPDATE inbound_calls SET choice = ?2, prep_minutes = ?3, updated_at = ?4 WHERE call_sid = ?1")
                .bind(call_sid)
                .bind(choice.name())
                .bind(choice.minutes().map(i64::from))
                .bind(to_ms(at))
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn extend_inbound_call(&self, call_sid: &str, until: DateTime<Utc>, at: DateTime<Utc>) -> Result<bool> {
        let _write = self.write.lock().await;
        let done = sqlx::query(
            "UPDATE inbound_calls SET active_until = MAX(active_until, ?2), updated_at = ?3 WHERE call_sid = ?1",
        )
        .bind(call_sid)
        .bind(to_ms(until))
        .bind(to_ms(at))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn end_inbound_call(&self, call_sid: &str, at: DateTime<Utc>) -> Result<bool> {
        let _write = self.write.lock().await;
        let done = sqlx::query(
            "UPDATE inbound_calls SET ended_at = COALESCE(ended_at, ?2), updated_at = ?2 WHERE call_sid = ?1",
        )
        .bind(call_sid)
        .bind(to_ms(at))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn active_inbound_call_from(&self, phone: &E164, now: DateTime<Utc>) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM inbound_calls WHERE phone = ?1 AND active_until > ?2 AND ended_at IS NULL LIMIT 1",
        )
        .bind(phone.as_str())
        .bind(to_ms(now))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}

#[async_trait]
impl InboundCallStore for PgStore {
    async fn save_inbound_call(&self, call: &InboundCall) -> Result<()> {
        sqlx::query(
            "INSERT INTO inbound_calls (call_sid, phone, kind, party_id, language, order_id, pending_orders, settled,
                                        started_at, updated_at, active_until)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (call_sid) DO UPDATE SET
                 phone = excluded.phone, kind = excluded.kind, party_id = excluded.party_id,
                 language = excluded.language, order_id = excluded.order_id,
                 pending_orders = excluded.pending_orders, settled = excluded.settled,
                 updated_at = excluded.updated_at,
                 active_until = GREATEST(inbound_calls.active_until, excluded.active_until)",
        )
        .bind(&call.call_sid)
        .bind(call.phone.as_ref().map(E164::as_str))
        .bind(call.kind.name())
        .bind(party_id(call))
        .bind(call.language.code())
        .bind(call.order_id.as_ref().map(OrderId::as_str))
        .bind(i64::from(call.pending_orders))
        .bind(call.settled)
        .bind(to_ms(call.started_at))
        .bind(to_ms(call.updated_at))
        .bind(to_ms(call.active_until))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn inbound_call(&self, call_sid: &str) -> Result<Option<InboundCall>> {
        let sql = format!("SELECT {COLUMNS} FROM inbound_calls WHERE call_sid = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(call_sid).fetch_optional(&self.pool).await?;
        row.map(|r| Raw::from_row(&r)?.into_call()).transpose()
    }

    async fn set_inbound_choice(&self, call_sid: &str, choice: Choice, at: DateTime<Utc>) -> Result<bool> {
        let done =
            sqlx::query("UPDATE inbound_calls SET choice = $2, prep_minutes = $3, updated_at = $4 WHERE call_sid = $1")
                .bind(call_sid)
                .bind(choice.name())
                .bind(choice.minutes().map(i64::from))
                .bind(to_ms(at))
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn extend_inbound_call(&self, call_sid: &str, until: DateTime<Utc>, at: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE inbound_calls SET active_until = GREATEST(active_until, $2), updated_at = $3 WHERE call_sid = $1",
        )
        .bind(call_sid)
        .bind(to_ms(until))
        .bind(to_ms(at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn end_inbound_call(&self, call_sid: &str, at: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE inbound_calls SET ended_at = COALESCE(ended_at, $2), updated_at = $2 WHERE call_sid = $1",
        )
        .bind(call_sid)
        .bind(to_ms(at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn active_inbound_call_from(&self, phone: &E164, now: DateTime<Utc>) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM inbound_calls WHERE phone = $1 AND active_until > $2 AND ended_at IS NULL LIMIT 1",
        )
        .bind(phone.as_str())
        .bind(to_ms(now))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}
