//! Housekeeping jobs, run by the same durable queue as everything else, and
//! the timeline entries of jobs in trouble (a panicking handler, a dead job).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{Duration, Utc};
use mangwale_store::{
    Clock, Job, JobError, JobHandler, JobObserver, JobTrouble, NewEvent, NewJob, Store, StoreError, Worker,
};
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
    worker.observe(Arc::new(TroubleOnTimeline { store: state.store.clone(), clock: state.clock.clone() }));
}

/// Puts a panicking handler or a dead job on the timeline: on its order's
/// timeline where the job concerns one (found from the payload's `orderId`,
/// its ladder's `escalationId` or its call `attempt`), otherwise on the
/// global feed (`/comms/events`).
pub struct TroubleOnTimeline {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl TroubleOnTimeline {
    /// The order (and ladder) a job concerns, if any can be found.
    async fn context(&self, job: &Job) -> (Option<String>, Option<String>) {
        let text = |key: &str| job.payload.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let escalation = text("escalationId");
        if let Some(order) = text("orderId") {
            return (Some(order), escalation);
        }
        if let Some(id) = &escalation
            && let Ok(Some(ladder)) = self.store.ladder(id).await
        {
            return (ladder.order_id, escalation);
        }
        if let Some(attempt) = text("attempt")
            && let Ok(Some(call)) = self.store.call_by_id(&attempt).await
        {
            return (call.order_id, call.escalation_id.or(escalation));
        }
        (None, escalation)
    }
}

#[async_trait]
impl JobObserver for TroubleOnTimeline {
    async fn job_trouble(&self, job: &Job, trouble: JobTrouble, error: &str) {
        let (order, escalation) = self.context(job).await;
        let kind = match trouble {
            JobTrouble::Panicked => "job.panicked",
            JobTrouble::Dead => "job.dead",
        };
        let event = NewEvent::new(kind, self.clock.now())
            .channel("jobs")
            .context(order.as_deref(), escalation.as_deref(), None)
            .detail(json!({
                "jobId": job.id, "job": job.kind, "attempt": job.attempts, "maxAttempts": job.max_attempts,
                "error": error,
            }));
        if let Err(e) = self.store.record_event(event).await {
            // The job itself carries the error; only its timeline entry is lost.
            tracing::error!(error = %e, job_id = job.id, kind = %job.kind, trouble = trouble.as_str(),
                "recording a job's trouble on the timeline failed");
            metrics::counter!("mangwale_timeline_write_errors_total").increment(1);
        }
    }
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
