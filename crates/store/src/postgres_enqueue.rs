//! Single enqueues on PostgreSQL, committed together. Every `enqueue` call
//! of the process goes to one task, which inserts whatever calls are waiting
//! in one multi-row statement (one transaction, one WAL flush, one
//! notification) while earlier ones commit: a group commit. Sixteen callers
//! enqueueing one job each cost one commit, not sixteen; a lone caller waits
//! for nothing but its own statement.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinSet;

use crate::jobs::{Enqueued, NewJob};
use crate::{Result, StoreError};

/// Most jobs in one statement.
const MAX_BATCH: usize = 256;
/// Statements in flight at once; callers arriving meanwhile form the next.
const MAX_IN_FLIGHT: usize = 1;

type Request = (NewJob, oneshot::Sender<Result<Enqueued>>);

#[derive(Debug, Clone)]
pub(crate) struct EnqueueBatcher {
    requests: mpsc::UnboundedSender<Request>,
}

impl EnqueueBatcher {
    /// Starts the task; it ends when the batcher is dropped.
    pub(crate) fn spawn(pool: PgPool, wakeup: Arc<Notify>) -> EnqueueBatcher {
        let (requests, mut incoming) = mpsc::unbounded_channel::<Request>();
        tokio::spawn(async move {
            let mut in_flight = JoinSet::new();
            loop {
                if in_flight.len() >= MAX_IN_FLIGHT {
                    in_flight.join_next().await;
                    continue;
                }
                let first = tokio::select! {
                    request = incoming.recv() => match request {
                        Some(request) => request,
                        None => break,
                    },
                    Some(_) = in_flight.join_next(), if !in_flight.is_empty() => continue,
                };
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match incoming.try_recv() {
                        Ok(request) => batch.push(request),
                        Err(_) => break,
                    }
                }
                let (pool, wakeup) = (pool.clone(), wakeup.clone());
                in_flight.spawn(async move { insert_batch(&pool, &wakeup, batch).await });
            }
            while in_flight.join_next().await.is_some() {}
        });
        EnqueueBatcher { requests }
    }

    pub(crate) async fn enqueue(&self, job: NewJob) -> Result<Enqueued> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the enqueue task has stopped".into());
        self.requests.send((job, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Inserts a batch and answers each caller. If the statement fails, each
/// job is tried on its own, so that one job the database refuses (say, a
/// payload with a NUL character) fails only its own caller.
async fn insert_batch(pool: &PgPool, wakeup: &Notify, batch: Vec<Request>) {
    let (jobs, replies): (Vec<NewJob>, Vec<_>) = batch.into_iter().unzip();
    let now = Utc::now();
    match enqueue_all(pool, &jobs, now).await {
        Ok(outcomes) => {
            if outcomes.iter().any(|o| matches!(o, Enqueued::Created(_))) {
                wakeup.notify_one();
            }
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(_) if jobs.len() > 1 => {
            for (job, reply) in jobs.into_iter().zip(replies) {
                let outcome = enqueue_all(pool, std::slice::from_ref(&job), now).await.map(|mut o| o.remove(0));
                if matches!(outcome, Ok(Enqueued::Created(_))) {
                    wakeup.notify_one();
                }
                let _ = reply.send(outcome);
            }
        }
        Err(e) => {
            let _ = replies.into_iter().next().map(|reply| reply.send(Err(e)));
        }
    }
}

/// Inserts `jobs` in one statement; for each, in order, whether it was
/// created or its key was already taken (by an earlier job of the batch, or
/// by a job already in the table).
async fn enqueue_all(pool: &PgPool, jobs: &[NewJob], now: DateTime<Utc>) -> Result<Vec<Enqueued>> {
    let inserted = crate::postgres::insert_jobs_keyed(pool, jobs, now).await?;
    let mut unkeyed = inserted.iter().filter(|(_, key)| key.is_none()).map(|(id, _)| *id);
    let by_key: HashMap<&str, i64> =
        inserted.iter().filter_map(|(id, key)| key.as_deref().map(|key| (key, *id))).collect();
    let taken: Vec<String> = jobs
        .iter()
        .filter_map(|job| job.key.as_deref())
        .filter(|key| !by_key.contains_key(key))
        .map(str::to_string)
        .collect();
    let existing: HashMap<String, i64> = if taken.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, (String, i64)>("SELECT key, id FROM jobs WHERE key = ANY($1)")
            .bind(&taken)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect()
    };
    let mut created_keys = HashSet::new();
    jobs.iter()
        .map(|job| match job.key.as_deref() {
            None => unkeyed
                .next()
                .map(Enqueued::Created)
                .ok_or_else(|| StoreError::Corrupt("an unkeyed job was not inserted".into())),
            Some(key) => match by_key.get(key) {
                Some(&id) if created_keys.insert(key) => Ok(Enqueued::Created(id)),
                Some(&id) => Ok(Enqueued::Existing(id)),
                None => existing
                    .get(key)
                    .map(|&id| Enqueued::Existing(id))
                    .ok_or_else(|| StoreError::Corrupt(format!("job key {key} neither inserted nor found"))),
            },
        })
        .collect()
}
