//! What Jupiter's webhooks set in motion for the orchestrator (see
//! `jupiter::events`): start a ladder, stop ladders, tell the rider the
//! order is ready, tell the customer where it is. Each is a job, so a
//! webhook is answered at once and its effects survive restarts.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mangwale_core::ladder::{LadderKind, LadderState, StopAction};
use mangwale_core::{E164, OrderId};
use mangwale_store::{Job, JobError, JobHandler, LadderStart, NewEvent, RetryPolicy};
use serde_json::{Map, Value, json};

use super::LadderRequest;
use crate::jupiter::events::{LADDER_START_JOB, LADDER_STOP_JOB, NOTIFY_CUSTOMER_JOB, NOTIFY_RIDER_READY_JOB};
use crate::state::AppState;

pub fn register(worker: &mut mangwale_store::Worker, state: &AppState) {
    let handler = Arc::new(EventJobs { state: state.clone() });
    for kind in [LADDER_START_JOB, LADDER_STOP_JOB, NOTIFY_RIDER_READY_JOB, NOTIFY_CUSTOMER_JOB] {
        worker.register(kind, handler.clone());
    }
}

struct EventJobs {
    state: AppState,
}

fn transient(e: impl std::fmt::Display) -> JobError {
    JobError::Transient(e.to_string())
}

/// The webhook body's fields as ladder context: Jupiter's snake_case names
/// to ours. Items may be a list of `{name, quantity}`.
pub fn context_from_webhook(body: &Value) -> Map<String, Value> {
    let mut context = Map::new();
    let text = |k: &str| body.get(k).filter(|v| !v.is_null()).cloned();
    for (from, to) in [
        ("amount", "amount"),
        ("payment_method", "paymentMode"),
        ("reason", "reason"),
        ("map_link", "mapLink"),
        ("pickup_address", "pickupAddress"),
        ("drop_address", "dropAddress"),
        ("new_address", "newAddress"),
        ("address", "newAddress"),
        ("prep_time", "minutesRemaining"),
        ("minutes_remaining", "minutesRemaining"),
        ("eta_minutes", "etaMinutes"),
    ] {
        if let Some(v) = text(from)
            && !context.contains_key(to)
        {
            let v = match v {
                Value::Object(o) => o.get("address").cloned().unwrap_or(Value::Null),
                other => other,
            };
            if !v.is_null() {
                context.insert(to.to_string(), v);
            }
        }
    }
    if let Some(items) = body.get("items") {
        let summary = match items {
            Value::String(s) => Some(s.clone()),
            Value::Array(list) => Some(
                list.iter()
                    .filter_map(|i| {
                        let name = i.get("name")?.as_str()?;
                        let quantity = i.get("quantity").and_then(Value::as_u64).unwrap_or(1);
                        Some(format!("{name} x{quantity}"))
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            _ => None,
        };
        if let Some(summary) = summary.filter(|s| !s.is_empty()) {
            context.insert("items".into(), json!(summary));
        }
    }
    context
}

fn party_id(body: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match body.get(*k)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

#[async_trait]
impl JobHandler for EventJobs {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let bad = || JobError::Permanent(format!("bad payload for {}: {}", job.kind, job.payload));
        let p = &job.payload;
        let order_id = p["orderId"].as_str().and_then(|o| OrderId::parse(o).ok()).ok_or_else(bad)?;
        let source =
            p.get("source").or_else(|| p.get("actor")).and_then(Value::as_str).unwrap_or("jupiter").to_string();
        match job.kind.as_str() {
            LADDER_START_JOB => {
                let kind: LadderKind = p["ladder"].as_str().and_then(|l| l.parse().ok()).ok_or_else(bad)?;
                let body = &p["context"];
                let mut request = LadderRequest::new(kind, order_id.clone(), source);
                request.context = context_from_webhook(body);
                request.party_id = match kind {
                    LadderKind::VendorNewOrder | LadderKind::VendorReminder => {
                        party_id(body, &["store_id", "vendor_id"])
                    }
                    _ => party_id(body, &["rider_id", "delivery_man_id"]),
                };
                // A start we scheduled ourselves (a reminder extended) knows
                // the party's phone and language already.
                request.phone = p["phone"].as_str().and_then(|ph| E164::parse(ph).ok());
                if let Some(language) = p["language"].as_str().and_then(|l| l.parse().ok()) {
                    request.language = language;
                }
                self.start(request, job).await
            }
            LADDER_STOP_JOB => {
                let action = match p["outcome"].as_str() {
                    Some("accepted") => StopAction::Accept,
                    Some("rejected") => StopAction::Reject,
                    _ => StopAction::Superseded,
                };
                // Every active ladder of the order of the named kinds: reruns
                // (`rider_assign_<order>-2`) and single IVR calls included.
                let kinds: Option<Vec<String>> =
                    p["ladders"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect());
                let all = p["all"].as_bool() == Some(true);
                let ladders = self.state.store.ladders_for_order(order_id.as_str()).await.map_err(transient)?;
                let mut ids: Vec<String> = ladders
                    .into_iter()
                    .filter(|l| l.state == LadderState::Active)
                    .filter(|l| all || kinds.as_ref().is_some_and(|k| k.contains(&l.kind)))
                    .map(|l| l.escalation_id)
                    .collect();
                if !all && kinds.is_none() {
                    ids = p["escalationIds"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                        .unwrap_or_default();
                }
                for id in ids {
                    super::stop(&self.state, &id, action, &source, "jupiter", Vec::new()).await.map_err(transient)?;
                }
                Ok(())
            }
            NOTIFY_RIDER_READY_JOB => self.rider_ready(&order_id, &source, job.created_at).await,
            NOTIFY_CUSTOMER_JOB => {
                let mut request = LadderRequest::new(LadderKind::CustomerStatus, order_id, source);
                request.context.insert("status".into(), p["status"].clone());
                self.start(request, job).await
            }
            other => Err(JobError::Permanent(format!("no handler for {other}"))),
        }
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { base: Duration::from_secs(2), max: Duration::from_secs(120), jitter: true }
    }
}

impl EventJobs {
    async fn start(&self, mut request: LadderRequest, job: &Job) -> Result<(), JobError> {
        let state = &self.state;
        let now = state.clock.now();
        if super::needs_jupiter(&request) {
            match super::fill_from_jupiter(state, &mut request).await {
                Ok(true) => {}
                Ok(false) => return self.not_started(&request, "Jupiter does not know the order").await,
                Err(e) if e.is_transient() && job.attempts < job.max_attempts => return Err(transient(e.message())),
                Err(e) => return self.not_started(&request, &format!("Jupiter: {}", e.message())).await,
            }
        }
        if request.phone.is_none() {
            return self.not_started(&request, "the order names no phone number for the party").await;
        }
        match super::start(state, request.clone()).await.map_err(transient)? {
            LadderStart::Started(_) => Ok(()),
            LadderStart::Existing(existing) => {
                let event = NewEvent::new("ladder.already_running", now)
                    .escalation(&existing.escalation_id)
                    .order(request.order_id.as_str())
                    .channel("comms")
                    .detail(json!({"source": request.source, "state": existing.state.name()}));
                state.store.record_event(event).await.map_err(transient)?;
                Ok(())
            }
        }
    }

    async fn not_started(&self, request: &LadderRequest, reason: &str) -> Result<(), JobError> {
        metrics::counter!("mangwale_ladders_not_started_total", "ladder" => request.kind.name()).increment(1);
        let event = NewEvent::new("ladder.not_started", self.state.clock.now())
            .order(request.order_id.as_str())
            .channel("comms")
            .detail(json!({"ladder": request.kind.name(), "source": request.source, "reason": reason}));
        self.state.store.record_event(event).await.map_err(transient)?;
        Ok(())
    }

    /// "Order ready": the assigned rider gets an app push (and the order's
    /// timeline says so, or why not).
    async fn rider_ready(
        &self,
        order_id: &OrderId,
        source: &str,
        job_created: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), JobError> {
        let state = &self.state;
        let order = match state.jupiter.client.order(order_id).await {
            Ok(order) => order,
            Err(e) if e.is_transient() => return Err(transient(e.message())),
            Err(e) => return Err(JobError::Permanent(e.message())),
        };
        let rider = order.as_ref().and_then(|o| o.rider.clone());
        let store_name = order.as_ref().and_then(|o| o.store.as_ref().map(|s| s.name.clone())).unwrap_or_default();
        let now = state.clock.now();
        let event = match rider.as_ref().and_then(|r| r.id) {
            Some(rider_id) => {
                let title = "Order ready for pickup".to_string();
                let body = format!("Order {order_id} is ready at {store_name}.");
                let phone: Option<&E164> = rider.as_ref().and_then(|r| r.phone.as_ref());
                match super::channels::push_to(state, "rider", &rider_id.to_string(), &title, &body, order_id.as_str(), None).await {
                    super::channels::Sent::Sent { provider_id, .. } => NewEvent::new("notify.rider_ready", now)
                        .detail(json!({"providerId": provider_id, "rider": rider_id, "to": phone.map(E164::masked), "source": source})),
                    super::channels::Sent::Failed { message, transient: true } => return Err(JobError::Transient(message)),
                    super::channels::Sent::Throttled { message, wait } => {
                        return Err(super::channels::throttled(message, wait, job_created, now));
                    }
                    super::channels::Sent::Failed { message, .. }
                    | super::channels::Sent::Skipped(message)
                    | super::channels::Sent::Unknown(message) => {
                        NewEvent::new("notify.rider_ready_failed", now).detail(json!({"error": message, "rider": rider_id}))
                    }
                }
            }
            None => NewEvent::new("notify.rider_ready_failed", now)
                .detail(json!({"error": "the order has no rider yet", "source": source})),
        };
        state.store.record_event(event.order(order_id.as_str()).channel("app_push")).await.map_err(transient)?;
        Ok(())
    }
}
