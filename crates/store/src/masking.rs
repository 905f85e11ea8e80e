//! Number-masking sessions and the calls through them.
//!
//! A session is allocated inside one transaction that first locks the
//! allocation (PostgreSQL: a transaction-scoped advisory lock; SQLite: the
//! process's single writer), so two replicas opening sessions at once see
//! each other's and never hand a phone two sessions on one number while
//! another number is free (see [`mangwale_core::masking::allocate`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mangwale_core::masking::{Holding, Leg, PartyPair, PartyRole, allocate};
use mangwale_core::{E164, OrderId};

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::{Result, StoreError, from_ms, to_ms};

/// A masking session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskingSession {
    pub id: String,
    pub order_id: OrderId,
    pub pair: PartyPair,
    pub masked_number: E164,
    pub party_a: Leg,
    pub party_b: Leg,
    /// The pool could not avoid a phone holding two open sessions on this
    /// number (calls are then resolved by order digits).
    pub shared: bool,
    /// What opened it: `jupiter:rider/assigned`, `api:/masking/create`, ...
    pub source: String,
    pub opened_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub close_reason: Option<String>,
}

impl MaskingSession {
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.closed_at.is_none() && self.expires_at > now
    }

    /// `active`, `ended` (closed on request) or `expired` (TTL or grace over).
    pub fn status(&self, now: DateTime<Utc>) -> &'static str {
        match (self.closed_at, self.expires_at > now) {
            (Some(_), _) => "ended",
            (None, true) => "active",
            (None, false) => "expired",
        }
    }

    /// The caller's leg and their counterpart's, if `phone` is a party.
    pub fn legs_for(&self, phone: &E164) -> Option<(&Leg, &Leg)> {
        if &self.party_a.phone == phone {
            Some((&self.party_a, &self.party_b))
        } else if &self.party_b.phone == phone {
            Some((&self.party_b, &self.party_a))
        } else {
            None
        }
    }

    fn same_parties(&self, a: &Leg, b: &Leg) -> bool {
        (&self.party_a == a && &self.party_b == b) || (&self.party_a == b && &self.party_b == a)
    }
}

/// A session to open.
#[derive(Debug, Clone)]
pub struct NewMaskingSession {
    pub order_id: OrderId,
    pub pair: PartyPair,
    pub party_a: Leg,
    pub party_b: Leg,
    pub source: String,
    pub expires_at: DateTime<Utc>,
}

/// What opening a session did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaskingOpen {
    /// A new session; `replaced` is the order's earlier session of the same
    /// pair with other parties (a reassigned rider), closed in the same
    /// transaction.
    Opened { session: MaskingSession, replaced: Option<Box<MaskingSession>> },
    /// The order already has this pair open with these parties.
    Existing(MaskingSession),
    /// No masked number is configured.
    PoolEmpty,
}

/// Which way a masked call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskedCallDirection {
    /// Someone called a masked number.
    Inbound,
    /// We bridged two parties, showing a masked number.
    Outbound,
}

impl MaskedCallDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            MaskedCallDirection::Inbound => "inbound",
            MaskedCallDirection::Outbound => "outbound",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "inbound" => Ok(MaskedCallDirection::Inbound),
            "outbound" => Ok(MaskedCallDirection::Outbound),
            other => Err(StoreError::Corrupt(format!("masked call direction {other}"))),
        }
    }
}

/// Where a masked call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskedCallOutcome {
    /// Waiting for the caller's order digits.
    Resolving,
    /// The counterpart is being dialled.
    Connecting,
    /// The caller had no open session (or gave no matching order): support.
    NoSession,
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
}

impl MaskedCallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            MaskedCallOutcome::Resolving => "resolving",
            MaskedCallOutcome::Connecting => "connecting",
            MaskedCallOutcome::NoSession => "no_session",
            MaskedCallOutcome::Completed => "completed",
            MaskedCallOutcome::Busy => "busy",
            MaskedCallOutcome::NoAnswer => "no-answer",
            MaskedCallOutcome::Failed => "failed",
            MaskedCallOutcome::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            MaskedCallOutcome::Resolving,
            MaskedCallOutcome::Connecting,
            MaskedCallOutcome::NoSession,
            MaskedCallOutcome::Completed,
            MaskedCallOutcome::Busy,
            MaskedCallOutcome::NoAnswer,
            MaskedCallOutcome::Failed,
            MaskedCallOutcome::Canceled,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// A call through a masked number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskedCall {
    /// The CallSid of an inbound call; `attempt:<id>` of an outbound bridge.
    pub key: String,
    pub direction: MaskedCallDirection,
    pub masked_number: E164,
    pub session_id: Option<String>,
    pub order_id: Option<OrderId>,
    pub caller_role: Option<PartyRole>,
    pub outcome: MaskedCallOutcome,
    pub digit_tries: u32,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Seconds the two parties talked.
    pub duration_secs: Option<u32>,
}

/// Masking figures for analytics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MaskingStats {
    /// Sessions open now.
    pub open_sessions: u64,
    /// Sessions opened in the range.
    pub sessions_opened: u64,
    /// Masked calls started in the range, both ends included (both directions).
    pub calls: u64,
    /// Of those, calls in which the parties talked.
    pub connected: u64,
    /// Of those, inbound calls from someone with no open session.
    pub no_session: u64,
    /// Average seconds talked over the connected calls.
    pub avg_bridge_secs: Option<f64>,
}

#[async_trait]
pub trait MaskingStore: Send + Sync {
    /// Opens a session on a number of `pool` (see the module's allocation
    /// rule), or returns the order's open session of that pair with the same
    /// parties. One transaction.
    async fn masking_open(&self, session: &NewMaskingSession, pool: &[E164], now: DateTime<Utc>)
    -> Result<MaskingOpen>;

    async fn masking_session(&self, id: &str) -> Result<Option<MaskingSession>>;

    /// Every session of the order, newest first.
    async fn masking_sessions_for_order(&self, order_id: &OrderId) -> Result<Vec<MaskingSession>>;

    /// Sessions open at `now`, newest first, at most `limit`.
    async fn masking_open_sessions(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<MaskingSession>>;

    /// Sessions open at `now` on `masked_number` in which `phone` is a party.
    async fn masking_sessions_of_caller(
        &self,
        masked_number: &E164,
        phone: &E164,
        now: DateTime<Utc>,
    ) -> Result<Vec<MaskingSession>>;

    /// Closes the order's open sessions (of `pair` only, when given) now;
    /// returns them as closed.
    async fn masking_end(
        &self,
        order_id: &OrderId,
        pair: Option<PartyPair>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<MaskingSession>>;

    /// Makes the order's open sessions expire at `close_at` at the latest
    /// (a delivered order's grace period); returns them as updated.
    async fn masking_close_at(
        &self,
        order_id: &OrderId,
        close_at: DateTime<Utc>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<MaskingSession>>;

    /// Inserts or replaces a masked call by its key.
    async fn masked_call_put(&self, call: &MaskedCall) -> Result<()>;

    async fn masked_call(&self, key: &str) -> Result<Option<MaskedCall>>;

    async fn masking_stats(&self, from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>) -> Result<MaskingStats>;
}

// -- rows -------------------------------------------------------------------

const SESSION_COLUMNS: &str = "id, order_id, pair, masked_number, party_a_role, party_a_phone, party_b_role, \
                               party_b_phone, shared, source, opened_at, expires_at, closed_at, close_reason";

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: String,
    order_id: String,
    pair: String,
    masked_number: String,
    party_a_role: String,
    party_a_phone: String,
    party_b_role: String,
    party_b_phone: String,
    shared: i64,
    source: String,
    opened_at: i64,
    expires_at: i64,
    closed_at: Option<i64>,
    close_reason: Option<String>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("masking {what}: {e}"))
}

fn leg(role: &str, phone: &str) -> Result<Leg> {
    Ok(Leg {
        role: role.parse().map_err(|e| corrupt("role", e))?,
        phone: E164::parse(phone).map_err(|e| corrupt("phone", e))?,
    })
}

impl TryFrom<SessionRow> for MaskingSession {
    type Error = StoreError;

    fn try_from(r: SessionRow) -> Result<Self> {
        Ok(MaskingSession {
            order_id: OrderId::parse(&r.order_id).map_err(|e| corrupt("order id", e))?,
            pair: r.pair.parse().map_err(|e| corrupt("pair", e))?,
            masked_number: E164::parse(&r.masked_number).map_err(|e| corrupt("number", e))?,
            party_a: leg(&r.party_a_role, &r.party_a_phone)?,
            party_b: leg(&r.party_b_role, &r.party_b_phone)?,
            shared: r.shared != 0,
            source: r.source,
            opened_at: from_ms(r.opened_at),
            expires_at: from_ms(r.expires_at),
            closed_at: r.closed_at.map(from_ms),
            close_reason: r.close_reason,
            id: r.id,
        })
    }
}

fn sessions(rows: Vec<SessionRow>) -> Result<Vec<MaskingSession>> {
    rows.into_iter().map(MaskingSession::try_from).collect()
}

const CALL_COLUMNS: &str = "key, direction, masked_number, session_id, order_id, caller_role, outcome, digit_tries, \
                            started_at, ended_at, duration_secs";

#[derive(sqlx::FromRow)]
struct CallRow {
    key: String,
    direction: String,
    masked_number: String,
    session_id: Option<String>,
    order_id: Option<String>,
    caller_role: Option<String>,
    outcome: String,
    digit_tries: i64,
    started_at: i64,
    ended_at: Option<i64>,
    duration_secs: Option<i64>,
}

impl TryFrom<CallRow> for MaskedCall {
    type Error = StoreError;

    fn try_from(r: CallRow) -> Result<Self> {
        Ok(MaskedCall {
            direction: MaskedCallDirection::parse(&r.direction)?,
            masked_number: E164::parse(&r.masked_number).map_err(|e| corrupt("number", e))?,
            session_id: r.session_id,
            order_id: r.order_id.map(|o| OrderId::parse(&o)).transpose().map_err(|e| corrupt("order id", e))?,
            caller_role: r.caller_role.map(|c| c.parse()).transpose().map_err(|e| corrupt("role", e))?,
            outcome: MaskedCallOutcome::parse(&r.outcome).ok_or_else(|| corrupt("outcome", &r.outcome))?,
            digit_tries: u32::try_from(r.digit_tries).unwrap_or(0),
            started_at: from_ms(r.started_at),
            ended_at: r.ended_at.map(from_ms),
            duration_secs: r.duration_secs.and_then(|d| u32::try_from(d).ok()),
            key: r.key,
        })
    }
}

/// What the allocation transaction writes, decided from the open sessions.
enum Plan {
    Existing(MaskingSession),
    PoolEmpty,
    Open { session: MaskingSession, replaced: Option<Box<MaskingSession>> },
}

fn plan(open: &[MaskingSession], new: &NewMaskingSession, pool: &[E164], now: DateTime<Utc>) -> Plan {
    let same_pair = open.iter().find(|s| s.order_id == new.order_id && s.pair == new.pair);
    if let Some(existing) = same_pair.filter(|s| s.same_parties(&new.party_a, &new.party_b)) {
        return Plan::Existing(existing.clone());
    }
    let others: Vec<Holding<'_>> = open
        .iter()
        .filter(|s| Some(&s.id) != same_pair.map(|p| &p.id))
        .map(|s| Holding { masked_number: &s.masked_number, phones: [&s.party_a.phone, &s.party_b.phone] })
        .collect();
    let Some(allocation) = allocate(pool, &others, &new.party_a.phone, &new.party_b.phone) else {
        return Plan::PoolEmpty;
    };
    let session = MaskingSession {
        id: uuid::Uuid::new_v4().simple().to_string(),
        order_id: new.order_id.clone(),
        pair: new.pair,
        masked_number: allocation.number,
        party_a: new.party_a.clone(),
        party_b: new.party_b.clone(),
        shared: allocation.shared,
        source: new.source.clone(),
        opened_at: now,
        expires_at: new.expires_at,
        closed_at: None,
        close_reason: None,
    };
    let replaced = same_pair.cloned().map(|mut s| {
        s.closed_at = Some(now);
        s.close_reason = Some("replaced".into());
        Box::new(s)
    });
    Plan::Open { session, replaced }
}

fn stats_from(open: i64, opened: i64, calls: i64, connected: i64, no_session: i64, avg: Option<f64>) -> MaskingStats {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    MaskingStats {
        open_sessions: n(open),
        sessions_opened: n(opened),
        calls: n(calls),
        connected: n(connected),
        no_session: n(no_session),
        avg_bridge_secs: avg,
    }
}

// -- SQLite -----------------------------------------------------------------

#[async_trait]
impl MaskingStore for SqliteStore {
    async fn masking_open(&self, new: &NewMaskingSession, pool: &[E164], now: DateTime<Utc>) -> Result<MaskingOpen> {
        // The process's one writer holds the allocation; IMMEDIATE takes the
        // database's write lock before the read, so another process's
        // allocation waits (busy timeout) instead of racing this one.
        let _write = self.write.lock().await;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let open: Vec<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM masking_sessions WHERE closed_at IS NULL AND expires_at > ?1"
        )))
        .bind(to_ms(now))
        .fetch_all(&mut *tx)
        .await?;
        let open = sessions(open)?;
        let (session, replaced) = match plan(&open, new, pool, now) {
            Plan::Existing(s) => return Ok(MaskingOpen::Existing(s)),
            Plan::PoolEmpty => return Ok(MaskingOpen::PoolEmpty),
            Plan::Open { session, replaced } => (session, replaced),
        };
        if let Some(old) = &replaced {
            sqlx::query("UPDATE masking_sessions SET closed_at = ?2, close_reason = 'replaced' WHERE id = ?1")
                .bind(&old.id)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO masking_sessions (id, order_id, pair, masked_number, party_a_role, party_a_phone,
                 party_b_role, party_b_phone, shared, source, opened_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .bind(&session.id)
        .bind(session.order_id.as_str())
        .bind(session.pair.as_str())
        .bind(session.masked_number.as_str())
        .bind(session.party_a.role.as_str())
        .bind(session.party_a.phone.as_str())
        .bind(session.party_b.role.as_str())
        .bind(session.party_b.phone.as_str())
        .bind(i64::from(session.shared))
        .bind(&session.source)
        .bind(to_ms(session.opened_at))
        .bind(to_ms(session.expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(MaskingOpen::Opened { session, replaced })
    }

    async fn masking_session(&self, id: &str) -> Result<Option<MaskingSession>> {
        let row: Option<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM masking_sessions WHERE id = ?1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(MaskingSession::try_from).transpose()
    }

    async fn masking_sessions_for_order(&self, order_id: &OrderId) -> Result<Vec<MaskingSession>> {
        let rows: Vec<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM masking_sessions WHERE order_id = ?1 ORDER BY opened_at DESC, id"
        )))
        .bind(order_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        sessions(rows)
    }

    async fn masking_open_sessions(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<MaskingSession>> {
        let rows: Vec<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM masking_sessions WHERE closed_at IS NULL AND expires_at > ?1
             ORDER BY opened_at DESC, id LIMIT ?2"
        )))
        .bind(to_ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        sessions(rows)
    }

    async fn masking_sessions_of_caller(
        &self,
        masked_number: &E164,
        phone: &E164,
        now: DateTime<Utc>,
    ) -> Result<Vec<MaskingSession>> {
        let rows: Vec<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM masking_sessions
             WHERE masked_number = ?1 AND closed_at IS NULL AND expires_at > ?3
               AND (party_a_phone = ?2 OR party_b_phone = ?2)
             ORDER BY opened_at DESC, id"
        )))
        .bind(masked_number.as_str())
        .bind(phone.as_str())
        .bind(to_ms(now))
        .fetch_all(&self.pool)
        .await?;
        sessions(rows)
    }

    async fn masking_end(
        &self,
        order_id: &OrderId,
        pair: Option<PartyPair>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<MaskingSession>> {
        let _write = self.write.lock().await;
        let rows: Vec<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE masking_sessions SET closed_at = ?3, close_reason = ?4
             WHERE order_id = ?1 AND (?2 IS NULL OR pair = ?2) AND closed_at IS NULL AND expires_at > ?3
             RETURNING {SESSION_COLUMNS}"
        )))
        .bind(order_id.as_str())
        .bind(pair.map(PartyPair::as_str))
        .bind(to_ms(now))
        .bind(reason)
        .fetch_all(&self.writer)
        .await?;
        sessions(rows)
    }

    async fn masking_close_at(
        &self,
        order_id: &OrderId,
        close_at: DateTime<Utc>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<MaskingSession>> {
        let _write = self.write.lock().await;
        let rows: Vec<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE masking_sessions SET expires_at = MIN(expires_at, ?2), close_reason = ?3
             WHERE order_id = ?1 AND closed_at IS NULL AND expires_at > ?4
             RETURNING {SESSION_COLUMNS}"
        )))
        .bind(order_id.as_str())
        .bind(to_ms(close_at))
        .bind(reason)
        .bind(to_ms(now))
        .fetch_all(&self.writer)
        .await?;
        sessions(rows)
    }

    async fn masked_call_put(&self, call: &MaskedCall) -> Result<()> {
        let _write = self.write.lock().await;
        sqlx::query(
            "INSERT INTO masked_calls (key, direction, masked_number, session_id, order_id, caller_role, outcome,
                 digit_tries, started_at, ended_at, duration_secs)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (key) DO UPDATE SET session_id = excluded.session_id, order_id = excluded.order_id,
                 caller_role = excluded.caller_role, outcome = excluded.outcome,
                 digit_tries = excluded.digit_tries, ended_at = excluded.ended_at,
                 duration_secs = excluded.duration_secs",
        )
        .bind(&call.key)
        .bind(call.direction.as_str())
        .bind(call.masked_number.as_str())
        .bind(&call.session_id)
        .bind(call.order_id.as_ref().map(OrderId::as_str))
        .bind(call.caller_role.map(PartyRole::as_str))
        .bind(call.outcome.as_str())
        .bind(i64::from(call.digit_tries))
        .bind(to_ms(call.started_at))
        .bind(call.ended_at.map(to_ms))
        .bind(call.duration_secs.map(i64::from))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn masked_call(&self, key: &str) -> Result<Option<MaskedCall>> {
        let row: Option<CallRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {CALL_COLUMNS} FROM masked_calls WHERE key = ?1")))
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        row.map(MaskedCall::try_from).transpose()
    }

    async fn masking_stats(&self, from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>) -> Result<MaskingStats> {
        let (open, opened): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN closed_at IS NULL AND expires_at > ?3 THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN opened_at >= ?1 AND opened_at <= ?2 THEN 1 ELSE 0 END), 0)
             FROM masking_sessions",
        )
        .bind(to_ms(from))
        .bind(to_ms(to))
        .bind(to_ms(now))
        .fetch_one(&self.pool)
        .await?;
        let (calls, connected, no_session, avg): (i64, i64, i64, Option<f64>) = sqlx::query_as(
            "SELECT COUNT(*),
                    COALESCE(SUM(CASE WHEN outcome = 'completed' THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN outcome = 'no_session' THEN 1 ELSE 0 END), 0),
                    AVG(CASE WHEN outcome = 'completed' THEN CAST(duration_secs AS REAL) END)
             FROM masked_calls WHERE started_at >= ?1 AND started_at <= ?2",
        )
        .bind(to_ms(from))
        .bind(to_ms(to))
        .fetch_one(&self.pool)
        .await?;
        Ok(stats_from(open, opened, calls, connected, no_session, avg))
    }
}

// -- PostgreSQL -------------------------------------------------------------

/// The advisory lock every allocation transaction takes, so that allocations
/// on different replicas run one after another.
const ALLOCATION_LOCK: i64 = 0x6d61_736b; // "mask"

#[async_trait]
impl MaskingStore for PgStore {
    async fn masking_open(&self, new: &NewMaskingSession, pool: &[E164], now: DateTime<Utc>) -> Result<MaskingOpen> {
        let mut tx = self.pool.begin().await?;
        // Held until commit or rollback: a concurrent allocation waits here
        // and then reads this one's session.
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(ALLOCATION_LOCK).execute(&mut *tx).await?;
        let open: Vec<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM masking_sessions WHERE closed_at IS NULL AND expires_at > $1"
        )))
        .bind(to_ms(now))
        .fetch_all(&mut *tx)
        .await?;
        let open = sessions(open)?;
        let (session, replaced) = match plan(&open, new, pool, now) {
            Plan::Existing(s) => return Ok(MaskingOpen::Existing(s)),
            Plan::PoolEmpty => return Ok(MaskingOpen::PoolEmpty),
            Plan::Open { session, replaced } => (session, replaced),
        };
        if let Some(old) = &replaced {
            sqlx::query("UPDATE masking_sessions SET closed_at = $2, close_reason = 'replaced' WHERE id = $1")
                .bind(&old.id)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO masking_sessions (id, order_id, pair, masked_number, party_a_role, party_a_phone,
                 party_b_role, party_b_phone, shared, source, opened_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&session.id)
        .bind(session.order_id.as_str())
        .bind(session.pair.as_str())
        .bind(session.masked_number.as_str())
        .bind(session.party_a.role.as_str())
        .bind(session.party_a.phone.as_str())
        .bind(session.party_b.role.as_str())
        .bind(session.party_b.phone.as_str())
        .bind(i64::from(session.shared))
        .bind(&session.source)
        .bind(to_ms(session.opened_at))
        .bind(to_ms(session.expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(MaskingOpen::Opened { session, replaced })
    }

    async fn masking_session(&self, id: &str) -> Result<Option<MaskingSession>> {
        let row: Option<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM masking_sessions WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(MaskingSession::try_from).transpose()
    }

    async fn masking_sessions_for_order(&self, order_id: &OrderId) -> Result<Vec<MaskingSession>> {
        let rows: Vec<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM masking_sessions WHERE order_id = $1 ORDER BY opened_at DESC, id"
        )))
        .bind(order_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        sessions(rows)
    }

    async fn masking_open_sessions(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<MaskingSession>> {
        let rows: Vec<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM masking_sessions WHERE closed_at IS NULL AND expires_at > $1
             ORDER BY opened_at DESC, id LIMIT $2"
        )))
        .bind(to_ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        sessions(rows)
    }

    async fn masking_sessions_of_caller(
        &self,
        masked_number: &E164,
        phone: &E164,
        now: DateTime<Utc>,
    ) -> Result<Vec<MaskingSession>> {
        let rows: Vec<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM masking_sessions
             WHERE masked_number = $1 AND closed_at IS NULL AND expires_at > $3
               AND (party_a_phone = $2 OR party_b_phone = $2)
             ORDER BY opened_at DESC, id"
        )))
        .bind(masked_number.as_str())
        .bind(phone.as_str())
        .bind(to_ms(now))
        .fetch_all(&self.pool)
        .await?;
        sessions(rows)
    }

    async fn masking_end(
        &self,
        order_id: &OrderId,
        pair: Option<PartyPair>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<MaskingSession>> {
        let rows: Vec<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE masking_sessions SET closed_at = $3, close_reason = $4
             WHERE order_id = $1 AND ($2::TEXT IS NULL OR pair = $2) AND closed_at IS NULL AND expires_at > $3
             RETURNING {SESSION_COLUMNS}"
        )))
        .bind(order_id.as_str())
        .bind(pair.map(PartyPair::as_str))
        .bind(to_ms(now))
        .bind(reason)
        .fetch_all(&self.pool)
        .await?;
        sessions(rows)
    }

    async fn masking_close_at(
        &self,
        order_id: &OrderId,
        close_at: DateTime<Utc>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<MaskingSession>> {
        let rows: Vec<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE masking_sessions SET expires_at = LEAST(expires_at, $2), close_reason = $3
             WHERE order_id = $1 AND closed_at IS NULL AND expires_at > $4
             RETURNING {SESSION_COLUMNS}"
        )))
        .bind(order_id.as_str())
        .bind(to_ms(close_at))
        .bind(reason)
        .bind(to_ms(now))
        .fetch_all(&self.pool)
        .await?;
        sessions(rows)
    }

    async fn masked_call_put(&self, call: &MaskedCall) -> Result<()> {
        sqlx::query(
            "INSERT INTO masked_calls (key, direction, masked_number, session_id, order_id, caller_role, outcome,
                 digit_tries, started_at, ended_at, duration_secs)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (key) DO UPDATE SET session_id = excluded.session_id, order_id = excluded.order_id,
                 caller_role = excluded.caller_role, outcome = excluded.outcome,
                 digit_tries = excluded.digit_tries, ended_at = excluded.ended_at,
                 duration_secs = excluded.duration_secs",
        )
        .bind(&call.key)
        .bind(call.direction.as_str())
        .bind(call.masked_number.as_str())
        .bind(&call.session_id)
        .bind(call.order_id.as_ref().map(OrderId::as_str))
        .bind(call.caller_role.map(PartyRole::as_str))
        .bind(call.outcome.as_str())
        .bind(i64::from(call.digit_tries))
        .bind(to_ms(call.started_at))
        .bind(call.ended_at.map(to_ms))
        .bind(call.duration_secs.map(i64::from))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn masked_call(&self, key: &str) -> Result<Option<MaskedCall>> {
        let row: Option<CallRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {CALL_COLUMNS} FROM masked_calls WHERE key = $1")))
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        row.map(MaskedCall::try_from).transpose()
    }

    async fn masking_stats(&self, from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>) -> Result<MaskingStats> {
        let (open, opened): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*) FILTER (WHERE closed_at IS NULL AND expires_at > $3),
                    COUNT(*) FILTER (WHERE opened_at >= $1 AND opened_at <= $2)
             FROM masking_sessions",
        )
        .bind(to_ms(from))
        .bind(to_ms(to))
        .bind(to_ms(now))
        .fetch_one(&self.pool)
        .await?;
        let (calls, connected, no_session, avg): (i64, i64, i64, Option<f64>) = sqlx::query_as(
            "SELECT COUNT(*),
                    COUNT(*) FILTER (WHERE outcome = 'completed'),
                    COUNT(*) FILTER (WHERE outcome = 'no_session'),
                    AVG(duration_secs::DOUBLE PRECISION) FILTER (WHERE outcome = 'completed')
             FROM masked_calls WHERE started_at >= $1 AND started_at <= $2",
        )
        .bind(to_ms(from))
        .bind(to_ms(to))
        .fetch_one(&self.pool)
        .await?;
        Ok(stats_from(open, opened, calls, connected, no_session, avg))
    }
}
