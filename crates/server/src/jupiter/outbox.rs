//! What we tell Jupiter (updateOrderStatus, notifyJupiter) goes through the
//! durable job queue: retried until delivered, in order for each order,
//! never dropped. The incumbent fired these and logged failures away.
//!
//! Order: every message of an order is a job of the group `jupiter:<order>`,
//! and a job whose group has an earlier unfinished job waits for it
//! ([`JobError::Defer`], which uses no attempt). So "confirmed" can never
//! overtake "prep time 20 minutes" however the retries fall.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mangwale_core::OrderId;
use mangwale_store::{Job, JobError, JobHandler, NewEvent, NewJob, RetryPolicy, Store};
use serde_json::{Value, json};

use crate::state::AppState;

pub const OUTBOX_JOB: &str = "jupiter.outbox";

/// Enough attempts for about a week of Jupiter being down at the capped
/// backoff: a message is given up (dead, counted, on the timeline) only
/// after that, never silently.
const MAX_ATTEMPTS: u32 = 2_000;

/// A message for Jupiter.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxMessage {
    /// `POST /api/order/status`.
    OrderStatus { status: String, metadata: Value },
    /// `POST /api/notifications/ivr-event`.
    Event { event_type: String, data: Value },
}

impl OutboxMessage {
    pub(crate) fn payload(&self, order_id: &str) -> Value {
        match self {
            OutboxMessage::OrderStatus { status, metadata } => {
                json!({"orderId": order_id, "op": "order_status", "status": status, "metadata": metadata})
            }
            OutboxMessage::Event { event_type, data } => {
                json!({"orderId": order_id, "op": "event", "type": event_type, "data": data})
            }
        }
    }

    fn from_payload(payload: &Value) -> Option<(String, OutboxMessage)> {
        let order_id = payload.get("orderId")?.as_str()?.to_string();
        let message = match payload.get("op")?.as_str()? {
            "order_status" => OutboxMessage::OrderStatus {
                status: payload.get("status")?.as_str()?.to_string(),
                metadata: payload.get("metadata").cloned().unwrap_or(Value::Null),
            },
            "event" => OutboxMessage::Event {
                event_type: payload.get("type")?.as_str()?.to_string(),
                data: payload.get("data").cloned().unwrap_or(Value::Null),
            },
            _ => return None,
        };
        Some((order_id, message))
    }

    fn describe(&self) -> String {
        match self {
            OutboxMessage::OrderStatus { status, .. } => format!("order status {status}"),
            OutboxMessage::Event { event_type, .. } => format!("event {event_type}"),
        }
    }
}

/// The ordering group of an order's messages.
pub fn group(order_id: &str) -> String {
    format!("jupiter:{order_id}")
}

/// The job that delivers `message`. `key` makes the enqueue idempotent (the
/// cause of the message: an IVR answer, a webhook).
pub fn job(order_id: &str, message: &OutboxMessage, key: String, now: DateTime<Utc>) -> NewJob {
    NewJob::new(OUTBOX_JOB, key, message.payload(order_id), now).in_group(group(order_id)).max_attempts(MAX_ATTEMPTS)
}

/// A notifyJupiter event about an order: `data` gains the order id and our
/// source, as the incumbent sent them.
pub fn event(event_type: &str, order_id: &str, mut data: Value) -> OutboxMessage {
    if let Value::Object(map) = &mut data {
        map.entry("orderId").or_insert_with(|| json!(order_id));
    }
    OutboxMessage::Event { event_type: event_type.to_string(), data }
}

pub struct OutboxHandler {
    state: AppState,
}

pub fn register(worker: &mut mangwale_store::Worker, state: &AppState) {
    worker.register(OUTBOX_JOB, Arc::new(OutboxHandler { state: state.clone() }));
}

#[async_trait]
impl JobHandler for OutboxHandler {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let store: &dyn Store = self.state.store.as_ref();
        let now = self.state.clock.now();
        if let Some(group) = &job.group
            && let Some(earlier) =
                store.earlier_unfinished(group, job.id).await.map_err(|e| JobError::Transient(e.to_string()))?
        {
            // Wait for the earlier message: until its retry is due, and at
            // least a second (it may be running right now).
            let at_least = now + chrono::Duration::seconds(1);
            return Err(JobError::Defer(earlier.run_at.max(at_least)));
        }
        let (order_id, message) = OutboxMessage::from_payload(&job.payload)
            .ok_or_else(|| JobError::Permanent(format!("not an outbox message: {}", job.payload)))?;
        let client = &self.state.jupiter.client;
        let sent = match &message {
            OutboxMessage::OrderStatus { status, metadata } => match OrderId::parse(&order_id) {
                Ok(id) => client.update_order_status(&id, status, metadata.clone()).await,
                Err(e) => return Err(JobError::Permanent(format!("order id {order_id}: {e}"))),
            },
            OutboxMessage::Event { event_type, data } => client.notify(event_type, data.clone()).await,
        };
        let label = match &message {
            OutboxMessage::OrderStatus { .. } => "order_status",
            OutboxMessage::Event { .. } => "event",
        };
        match sent {
            Ok(()) => {
                metrics::counter!("mangwale_jupiter_outbox_delivered_total", "op" => label).increment(1);
                let event = NewEvent::new("jupiter.outbox_delivered", now)
                    .order(&order_id)
                    .channel("jupiter")
                    .detail(json!({"message": message.describe(), "attempt": job.attempts,
                        "payload": crate::exotel_params::mask_json(job.payload.clone())}));
                // The message is delivered; a failure to note it is logged,
                // not a reason to send it again.
                if let Err(e) = store.record_event(event).await {
                    tracing::warn!(error = %e, order_id, "noting a delivered Jupiter message failed");
                }
                Ok(())
            }
            Err(e) => {
                let transient = e.is_transient();
                metrics::counter!("mangwale_jupiter_outbox_failures_total", "op" => label,
                    "class" => if transient { "transient" } else { "permanent" })
                .increment(1);
                let last = !transient || job.attempts >= job.max_attempts;
                let event = NewEvent::new("jupiter.outbox_failed", now)
                    .order(&order_id)
                    .channel("jupiter")
                    .detail(json!({"message": message.describe(), "attempt": job.attempts, "error": e.message(),
                           "willRetry": !last}));
                if let Err(store_error) = store.record_event(event).await {
                    tracing::warn!(error = %store_error, order_id, "noting a failed Jupiter message failed");
                }
                if transient { Err(JobError::Transient(e.message())) } else { Err(JobError::Permanent(e.message())) }
            }
        }
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { base: Duration::from_secs(2), max: Duration::from_secs(300), jitter: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        for message in [
            OutboxMessage::OrderStatus { status: "confirmed".into(), metadata: json!({"prepTimeMinutes": 20}) },
            event("reassign_vendor", "MW-1", json!({"reason": "closed"})),
        ] {
            let payload = message.payload("MW-1");
            assert_eq!(OutboxMessage::from_payload(&payload), Some(("MW-1".to_string(), message)));
        }
        assert_eq!(OutboxMessage::from_payload(&json!({"orderId": "1", "op": "other"})), None);
        let OutboxMessage::Event { data, .. } = event("x", "7", json!({})) else { unreachable!() };
        assert_eq!(data, json!({"orderId": "7"}));
    }
}
