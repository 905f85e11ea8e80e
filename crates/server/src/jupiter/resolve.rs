//! The `jupiter.event` job: before a webhook's order actions run (a ladder
//! starts, a rider is told, Jupiter is asked to reassign), the order is
//! looked up in Jupiter. Jupiter down: the job retries until it is back, so
//! nothing is lost. An order Jupiter does not know: nothing starts, and the
//! timeline says why.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mangwale_core::OrderId;
use mangwale_store::{Job, JobError, JobHandler, NewEvent, NewJob, RetryPolicy};
use serde_json::{Value, json};

use super::events::{Action, RESOLVE_JOB, WebhookEvent};
use super::outbox;
use crate::state::AppState;

/// About a day of retries at the capped backoff.
pub const MAX_ATTEMPTS: u32 = 500;

pub fn payload(event: WebhookEvent, order_id: &str, body: &Value, dedup: &str) -> Value {
    json!({"event": event.path(), "orderId": order_id, "body": body, "dedup": dedup})
}

pub struct ResolveHandler {
    state: AppState,
}

pub fn register(worker: &mut mangwale_store::Worker, state: &AppState) {
    worker.register(RESOLVE_JOB, Arc::new(ResolveHandler { state: state.clone() }));
}

#[async_trait]
impl JobHandler for ResolveHandler {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let bad = || JobError::Permanent(format!("not a Jupiter event payload: {}", job.payload));
        let event = job.payload["event"].as_str().and_then(WebhookEvent::from_path).ok_or_else(bad)?;
        let order_id = job.payload["orderId"].as_str().and_then(|id| OrderId::parse(id).ok()).ok_or_else(bad)?;
        let dedup = job.payload["dedup"].as_str().ok_or_else(bad)?;
        let body = &job.payload["body"];
        let actions: Vec<Action> = event.actions().iter().copied().filter(|a| a.needs_order()).collect();
        let names: Vec<String> = actions.iter().map(|a| a.name()).collect();
        let now = self.state.clock.now();
        let note = |kind: &str, detail: Value| {
            NewEvent::new(kind, now).order(order_id.as_str()).channel("jupiter").detail(detail)
        };
        let store = &self.state.store;

        match self.state.jupiter.client.order(&order_id).await {
            Ok(Some(_order)) => {
                for action in &actions {
                    let (kind, action_payload) = action.job(event, order_id.as_str(), body);
                    let mut next = NewJob::new(kind, format!("{dedup}:{}", action.name()), action_payload, now)
                        .max_attempts(if kind == outbox::OUTBOX_JOB { 2_000 } else { 50 });
                    if kind == outbox::OUTBOX_JOB {
                        next = next.in_group(outbox::group(order_id.as_str()));
                    }
                    store.enqueue(next).await.map_err(|e| JobError::Transient(e.to_string()))?;
                }
                store
                    .record_event(note("jupiter.event_applied", json!({"event": event.path(), "actions": names})))
                    .await
                    .map_err(|e| JobError::Transient(e.to_string()))?;
                Ok(())
            }
            Ok(None) => {
                metrics::counter!("mangwale_jupiter_unknown_orders_total", "event" => event.path()).increment(1);
                store
                    .record_event(note(
                        "jupiter.order_unknown",
                        json!({"event": event.path(), "notDone": names,
                               "reason": format!("Jupiter does not know order {order_id}, so nothing was started")}),
                    ))
                    .await
                    .map_err(|e| JobError::Transient(e.to_string()))?;
                Ok(())
            }
            Err(e) => {
                let transient = e.is_transient();
                // The first failure and the last one go on the timeline; the
                // retries in between are in the metrics.
                if job.attempts == 1 || !transient || job.attempts >= job.max_attempts {
                    let detail = json!({"event": event.path(), "waiting": names, "error": e.message(),
                                        "willRetry": transient && job.attempts < job.max_attempts});
                    if let Err(store_error) = store.record_event(note("jupiter.lookup_failed", detail)).await {
                        tracing::warn!(error = %store_error, "noting a failed order lookup failed");
                    }
                }
                if transient { Err(JobError::Transient(e.message())) } else { Err(JobError::Permanent(e.message())) }
            }
        }
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { base: Duration::from_secs(2), max: Duration::from_secs(180), jitter: true }
    }
}
