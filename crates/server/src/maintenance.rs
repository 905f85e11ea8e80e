//! Housekeeping jobs, run by the same durable queue as everything else.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{Duration, Utc};
use mangwale_store::{Clock, Job, JobError, JobHandler, NewJob, Store, StoreError, Worker};
use serde_json::json;

use crate::state::AppState;

pub const PRUNE_JOBS: &str = "maintenance.prune_jobs";

/// Finished jobs are kept this long (for audits and idempotency), then pruned.
pub const KEEP_FINISHED_JOBS: Duration = Duration::days(7);

/// Prunes finished jobs, week-old webhook deduplication keys and expired
/// `Idempotency-Key`s once a day,
/// then schedules the next day's run.
pub struct PruneJobs {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

#[async_trait]
impl JobHandler for PruneJobs {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        let now = self.clock.now();
        let pruned = self
            .store
            .prune_finished(now - KEEP_FINISHED_JOBS)
            .await
            .map_err(|e| JobError::Transient(e.to_string()))?;
        let forgotten =
            self.store.prune_inbound(now - KEEP_FINISHED_JOBS).await.map_err(|e| JobError::Transient(e.to_string()))?;
        let expired = self.store.prune_idempotency(now).await.map_err(|e| JobError::Transient(e.to_string()))?;
        tracing::info!(pruned, forgotten, expired, "pruned finished jobs, old deduplication and idempotency keys");
        enqueue_prune(self.store.as_ref(), now + Duration::days(1))
            .await
            .map_err(|e| JobError::Transient(e.to_string()))
    }
}

pub fn register(worker: &mut Worker, state: &AppState) {
    worker.register(PRUNE_JOBS, Arc::new(PruneJobs { store: state.store.clone(), clock: state.clock.clone() }));
}

/// Makes sure today's prune is scheduled; idempotent across restarts and
/// replicas thanks to the date in its key.
pub async fn schedule(state: &AppState) -> Result<(), StoreError> {
    enqueue_prune(state.store.as_ref(), state.clock.now()).await
}

async fn enqueue_prune(store: &dyn Store, at: chrono::DateTime<Utc>) -> Result<(), StoreError> {
    let key = format!("{PRUNE_JOBS}:{}", at.format("%Y-%m-%d"));
    store.enqueue(NewJob::new(PRUNE_JOBS, key, json!({}), at).max_attempts(5)).await.map(|_| ())
}
