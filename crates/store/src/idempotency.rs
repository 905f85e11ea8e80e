//! Idempotency keys of internal API requests (`Idempotency-Key`): the first
//! request with a key claims it, runs, and stores its answer; a retry with
//! the same key gets that answer instead of running again (and placing a
//! second real call).
//!
//! The same keys make each SMS the service sends, and the rider's pickup
//! WhatsApp message, at most once (scope `send_once`,
//! `comms::channels::send_at_most_once` in the server): claimed before the
//! provider is asked, completed with its id, released only when it was certainly
//! not sent, and left claimed when its outcome is unknown.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::{Result, StoreError, to_ms};

/// An answer kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key was free (or its earlier use had expired): the caller runs
    /// the request, then completes or releases the key.
    Claimed,
    /// A request with this key is running (or was cut off by a crash before
    /// it answered: it may have acted, so it is never run again).
    InFlight { fingerprint: String },
    /// A request with this key has run; its answer.
    Completed { fingerprint: String, response: StoredResponse },
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` within `scope` (the route) for a request whose
    /// `fingerprint` identifies its content, until `expires_at`. A key whose
    /// earlier use expired is claimed afresh.
    async fn idempotency_claim(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<IdempotencyClaim>;

    /// Stores the answer of a claimed key; false if the key was not claimed.
    async fn idempotency_complete(
        &self,
        scope: &str,
        key: &str,
        response: &StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Gives a claimed key up without an answer (the request did nothing), so
    /// that a retry runs it again.
    async fn idempotency_release(&self, scope: &str, key: &str) -> Result<()>;

    /// Deletes keys that expired before `now`.
    async fn prune_idempotency(&self, now: DateTime<Utc>) -> Result<u64>;
}

/// A row that was not claimed.
fn existing(
    state: &str,
    fingerprint: String,
    status: Option<i64>,
    content_type: Option<String>,
    body: Option<Vec<u8>>,
) -> Result<IdempotencyClaim> {
    match state {
        "running" => Ok(IdempotencyClaim::InFlight { fingerprint }),
        "done" => {
            let status = status
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(|| StoreError::Corrupt("idempotency key done without a status".into()))?;
            Ok(IdempotencyClaim::Completed {
                fingerprint,
                response: StoredResponse { status, content_type, body: body.unwrap_or_default() },
            })
        }
        other => Err(StoreError::Corrupt(format!("idempotency key state {other}"))),
    }
}

/// How often a claim is retried when the row it found vanished in between
/// (released by the request that held it).
const CLAIM_TRIES: usize = 3;

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn idempotency_claim(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<IdempotencyClaim> {
        // Under the process's write lock the insert and the read that follows
        // see the same row.
        let _write = self.write.lock().await;
        // Insert, or take over a row whose time is up; RETURNING yields a row
        // only when this request now holds the key.
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, state, created_at, updated_at, expires_at)
             VALUES (?1, ?2, ?3, 'running', ?4, ?4, ?5)
             ON CONFLICT (scope, key) DO UPDATE SET
                 fingerprint = excluded.fingerprint, state = 'running', status = NULL, content_type = NULL,
                 body = NULL, created_at = excluded.created_at, updated_at = excluded.updated_at,
                 expires_at = excluded.expires_at
             WHERE idempotency_keys.expires_at <= excluded.created_at
             RETURNING key",
        )
        .bind(scope)
        .bind(key)
        .bind(fingerprint)
        .bind(to_ms(now))
        .bind(to_ms(expires_at))
        .fetch_all(&self.writer)
        .await?;
        if !claimed.is_empty() {
            return Ok(IdempotencyClaim::Claimed);
        }
        let row = sqlx::query(
            "SELECT fingerprint, state, status, content_type, body FROM idempotency_keys WHERE scope = ?1 AND key = ?2",
        )
        .bind(scope)
        .bind(key)
        .fetch_one(&self.writer)
        .await?;
        existing(
            &row.try_get::<String, _>("state")?,
            row.try_get("fingerprint")?,
            row.try_get("status")?,
            row.try_get("content_type")?,
            row.try_get("body")?,
        )
    }

    async fn idempotency_complete(
        &self,
        scope: &str,
        key: &str,
        response: &StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let _write = self.write.lock().await;
        let done = sqlx::query(
            "UPDATE idempotency_keys SET state = 'done', status = ?3, content_type = ?4, body = ?5, updated_at = ?6
             WHERE scope = ?1 AND key = ?2 AND state = 'running'",
        )
        .bind(scope)
        .bind(key)
        .bind(i64::from(response.status))
        .bind(&response.content_type)
        .bind(&response.body)
        .bind(to_ms(now))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn idempotency_release(&self, scope: &str, key: &str) -> Result<()> {
        let _write = self.write.lock().await;
        sqlx::query("DELETE FROM idempotency_keys WHERE scope = ?1 AND key = ?2 AND state = 'running'")
            .bind(scope)
            .bind(key)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn prune_idempotency(&self, now: DateTime<Utc>) -> Result<u64> {
        let _write = self.write.lock().await;
        let pruned = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= ?1")
            .bind(to_ms(now))
            .execute(&self.writer)
            .await?;
        Ok(pruned.rows_affected())
    }
}

#[async_trait]
impl IdempotencyStore for PgStore {
    async fn idempotency_claim(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<IdempotencyClaim> {
        for _ in 0..CLAIM_TRIES {
            // Insert, or take over a row whose time is up; RETURNING yields a
            // row only when this request now holds the key. A concurrent
            // claim of the same key waits on the row lock and then sees it
            // taken.
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys (scope, key, fingerprint, state, created_at, updated_at, expires_at)
                 VALUES ($1, $2, $3, 'running', $4, $4, $5)
                 ON CONFLICT (scope, key) DO UPDATE SET
                     fingerprint = excluded.fingerprint, state = 'running', status = NULL, content_type = NULL,
                     body = NULL, created_at = excluded.created_at, updated_at = excluded.updated_at,
                     expires_at = excluded.expires_at
                 WHERE idempotency_keys.expires_at <= excluded.created_at
                 RETURNING key",
            )
            .bind(scope)
            .bind(key)
            .bind(fingerprint)
            .bind(to_ms(now))
            .bind(to_ms(expires_at))
            .fetch_optional(&self.pool)
            .await?;
            if claimed.is_some() {
                return Ok(IdempotencyClaim::Claimed);
            }
            let row = sqlx::query(
                "SELECT fingerprint, state, status, content_type, body FROM idempotency_keys
                 WHERE scope = $1 AND key = $2",
            )
            .bind(scope)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
            // None: released between the two statements; claim again.
            if let Some(row) = row {
                return existing(
                    &row.try_get::<String, _>("state")?,
                    row.try_get("fingerprint")?,
                    row.try_get::<Option<i32>, _>("status")?.map(i64::from),
                    row.try_get("content_type")?,
                    row.try_get("body")?,
                );
            }
        }
        Err(StoreError::Unavailable(format!("idempotency key {key} kept changing while being claimed")))
    }

    async fn idempotency_complete(
        &self,
        scope: &str,
        key: &str,
        response: &StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE idempotency_keys SET state = 'done', status = $3, content_type = $4, body = $5, updated_at = $6
             WHERE scope = $1 AND key = $2 AND state = 'running'",
        )
        .bind(scope)
        .bind(key)
        .bind(i32::from(response.status))
        .bind(&response.content_type)
        .bind(&response.body)
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn idempotency_release(&self, scope: &str, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND state = 'running'")
            .bind(scope)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn prune_idempotency(&self, now: DateTime<Utc>) -> Result<u64> {
        let pruned = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
            .bind(to_ms(now))
            .execute(&self.pool)
            .await?;
        Ok(pruned.rows_affected())
    }
}
