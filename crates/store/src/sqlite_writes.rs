//! The job and timeline inserts of SQLite: the one copy that every write
//! path uses (the ladders' thread, the webhook thread, single enqueues and
//! events), run on a writer thread's rusqlite connection, usually inside
//! the caller's transaction.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use crate::jobs::NewJob;
use crate::timeline::NewEvent;
use crate::{Result, to_ms};

/// Inserts each job whose key is new; the ids of those inserted, in order.
/// A job whose key exists is left as it is.
pub(crate) fn insert_jobs(conn: &Connection, jobs: &[NewJob], now: DateTime<Utc>) -> Result<Vec<i64>> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO jobs (kind, key, group_key, payload, state, max_attempts, run_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?7)
         ON CONFLICT (key) DO NOTHING
         RETURNING id",
    )?;
    let mut ids = Vec::with_capacity(jobs.len());
    for job in jobs {
        let mut rows = insert.query(params![
            job.kind,
            job.key,
            job.group,
            job.payload.to_string(),
            i64::from(job.max_attempts),
            to_ms(job.run_at),
            to_ms(now)
        ])?;
        if let Some(row) = rows.next()? {
            ids.push(row.get(0)?);
        }
    }
    Ok(ids)
}

/// Records a timeline event; its id.
pub(crate) fn insert_event(conn: &Connection, e: &NewEvent) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO timeline_events (order_id, escalation_id, call_sid, party, channel, kind, detail, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        )?
        .query_row(
            params![
                e.order_id,
                e.escalation_id,
                e.call_sid,
                e.party,
                e.channel,
                e.kind,
                e.detail.to_string(),
                to_ms(e.at)
            ],
            |row| row.get(0),
        )?)
}
