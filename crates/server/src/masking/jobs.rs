//! The `masking.open` and `masking.close` jobs Jupiter's webhooks enqueue
//! (see `jupiter::events`): `rider/assigned` opens the customer–rider
//! session, `order/delivered` closes the order's sessions once the grace
//! period (`MASKING_GRACE_MINUTES`) is over.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mangwale_core::OrderId;
use mangwale_core::masking::PartyPair;
use mangwale_store::{Job, JobError, JobHandler, MaskingOpen, NewEvent, RetryPolicy};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{OrderLookup, leg_of, open_session, order, session_json};
use crate::error::AppError;
use crate::jupiter::events::{MASKING_CLOSE_JOB, MASKING_OPEN_JOB};
use crate::state::AppState;

pub fn register(worker: &mut mangwale_store::Worker, state: &AppState) {
    worker.register(MASKING_OPEN_JOB, Arc::new(OpenJob { state: state.clone() }));
    worker.register(MASKING_CLOSE_JOB, Arc::new(CloseJob { state: state.clone() }));
}

/// `{"orderId", "pair", "source", "context"}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpenPayload {
    order_id: OrderId,
    #[serde(default = "customer_rider")]
    pair: String,
    #[serde(default)]
    source: Option<String>,
}

fn customer_rider() -> String {
    PartyPair::CustomerRider.as_str().to_string()
}

/// `{"orderId", "source"}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClosePayload {
    order_id: OrderId,
    #[serde(default)]
    source: Option<String>,
}

fn store_error(e: impl std::fmt::Display) -> JobError {
    JobError::Transient(e.to_string())
}

fn app_error(e: AppError) -> JobError {
    JobError::Transient(e.to_string())
}

struct OpenJob {
    state: AppState,
}

#[async_trait]
impl JobHandler for OpenJob {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let payload: OpenPayload = serde_json::from_value(job.payload.clone())
            .map_err(|e| JobError::Permanent(format!("not a masking.open payload: {e}")))?;
        let pair: PartyPair = payload.pair.parse().map_err(|e| JobError::Permanent(format!("pair: {e}")))?;
        let source = payload.source.unwrap_or_else(|| "job".into());
        let state = &self.state;
        let now = state.clock.now();
        let not_opened = |reason: String| {
            NewEvent::new("masking.not_opened", now)
                .order(payload.order_id.as_str())
                .channel("masking")
                .detail(json!({"pair": pair.as_str(), "source": source, "reason": reason}))
        };
        let order = match order(state, &payload.order_id).await {
            Ok(order) => order,
            Err(OrderLookup::Unknown) => {
                let reason = format!("Jupiter does not know order {}", payload.order_id);
                state.store.record_event(not_opened(reason)).await.map_err(store_error)?;
                return Ok(());
            }
            Err(OrderLookup::Unavailable(m)) => return Err(JobError::Transient(m)),
            Err(OrderLookup::Failed(m)) => return Err(JobError::Permanent(m)),
        };
        let (ra, rb) = pair.roles();
        let (a, b) = match (leg_of(&order, ra), leg_of(&order, rb)) {
            (Some(a), Some(b)) => (a, b),
            (a, _) => {
                let missing = if a.is_none() { ra } else { rb };
                // Jupiter may not show a just-assigned rider yet: a few
                // retries, then the reason on the timeline.
                if job.attempts < 4 {
                    return Err(JobError::Transient(format!("order {} has no {missing} phone yet", order.id)));
                }
                let reason = format!("order {} has no {missing} phone number", order.id);
                state.store.record_event(not_opened(reason)).await.map_err(store_error)?;
                return Ok(());
            }
        };
        let outcome = open_session(state, &payload.order_id, pair, a, b, &source, None).await.map_err(app_error)?;
        if let MaskingOpen::Opened { session, .. } = outcome {
            tracing::info!(order_id = %session.order_id, pair = pair.as_str(), masked = %session.masked_number, "masking session opened");
        }
        Ok(())
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { base: Duration::from_secs(5), max: Duration::from_secs(180), jitter: true }
    }
}

struct CloseJob {
    state: AppState,
}

#[async_trait]
impl JobHandler for CloseJob {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let payload: ClosePayload = serde_json::from_value(job.payload.clone())
            .map_err(|e| JobError::Permanent(format!("not a masking.close payload: {e}")))?;
        let state = &self.state;
        let now = state.clock.now();
        // The grace runs from the delivery (the job is due when the webhook
        // arrives; a retry moves that by its backoff only).
        let grace = chrono::Duration::from_std(state.config.masking_grace).unwrap_or_default();
        let close_at = (job.run_at.min(now) + grace).max(now);
        let closing = state
            .store
            .masking_close_at(&payload.order_id, close_at, "order_delivered", now)
            .await
            .map_err(store_error)?;
        let detail = json!({
            "closeAt": close_at,
            "sessions": closing.iter().map(|s| session_json(s, now)).collect::<Vec<Value>>(),
            "source": payload.source,
        });
        let event =
            NewEvent::new("masking.closing", now).order(payload.order_id.as_str()).channel("masking").detail(detail);
        state.store.record_event(event).await.map_err(store_error)?;
        Ok(())
    }
}
