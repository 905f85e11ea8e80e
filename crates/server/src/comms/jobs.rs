//! What Jupiter's webhooks set in motion for the orchestrator (see
//! `jupiter::events`): start a ladder, stop ladders, tell the rider the
//! order is ready, tell the customer where it is. Each is a job, so a
//! webhook is answered at once and its effects survive restarts.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mangwale_core::context::{lenient, non_blank};
use mangwale_core::ladder::{LadderContext, Money, PaymentMode};
use mangwale_core::ladder::{LadderKind, LadderState, StopAction};
use mangwale_core::{E164, OrderId};
use mangwale_store::{Job, JobError, JobHandler, LadderStart, NewEvent, RetryPolicy};
use serde::Deserialize;
use serde_json::{Value, json};

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

/// The fields of a Jupiter webhook body that a ladder speaks, under
/// Jupiter's names. Each is read on its own: a value Jupiter sent in a form
/// we cannot read is absent, and Jupiter's order fills it (see
/// [`super::needs_jupiter`]), as it does for values Jupiter left out.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WebhookFields {
    #[serde(deserialize_with = "lenient::loose")]
    amount: Option<Money>,
    #[serde(deserialize_with = "lenient::loose_text")]
    payment_method: Option<String>,
    #[serde(deserialize_with = "lenient::loose_text")]
    reason: Option<String>,
    #[serde(deserialize_with = "lenient::loose_text")]
    map_link: Option<String>,
    #[serde(deserialize_with = "address")]
    pickup_address: Option<String>,
    #[serde(deserialize_with = "address")]
    drop_address: Option<String>,
    #[serde(deserialize_with = "address")]
    new_address: Option<String>,
    /// The new address, as the address-changed event names it.
    #[serde(deserialize_with = "address")]
    address: Option<String>,
    #[serde(deserialize_with = "lenient::loose_minutes")]
    prep_time: Option<u32>,
    #[serde(deserialize_with = "lenient::loose_minutes")]
    minutes_remaining: Option<u32>,
    #[serde(deserialize_with = "lenient::loose_minutes")]
    eta_minutes: Option<u32>,
    #[serde(deserialize_with = "items")]
    items: Option<String>,
    #[serde(deserialize_with = "lenient::loose_text")]
    store_id: Option<String>,
    #[serde(deserialize_with = "lenient::loose_text")]
    vendor_id: Option<String>,
    #[serde(deserialize_with = "lenient::loose_text")]
    rider_id: Option<String>,
    #[serde(deserialize_with = "lenient::loose_text")]
    delivery_man_id: Option<String>,
}

/// An address as text or as Jupiter's `{address, latitude, longitude}`.
fn address<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Address {
        Text(String),
        Located { address: String },
        Other(serde::de::IgnoredAny),
    }
    Ok(match Address::deserialize(d)? {
        Address::Text(t) | Address::Located { address: t } => non_blank(t),
        Address::Other(_) => None,
    })
}

/// Items as text, or a list of `{name, quantity}` (`Poha x1, Milk x2`).
fn items<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Item {
        Line {
            name: String,
            #[serde(default)]
            quantity: Option<u64>,
        },
        Other(serde::de::IgnoredAny),
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Items {
        Text(String),
        List(Vec<Item>),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Items::deserialize(d)? {
        Items::Text(t) => non_blank(t),
        Items::List(list) => non_blank(
            list.into_iter()
                .filter_map(|item| match item {
                    Item::Line { name, quantity } => Some(format!("{name} x{}", quantity.unwrap_or(1))),
                    Item::Other(_) => None,
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Items::Other(_) => None,
    })
}

impl WebhookFields {
    fn read(body: &Value) -> WebhookFields {
        // Every field reads leniently, so only a body that is not an object
        // fails, and that has nothing to give.
        WebhookFields::deserialize(body).unwrap_or_default()
    }

    /// The ladder context; where Jupiter names a value twice, the first
    /// name wins (`new_address` over `address`, `prep_time` over
    /// `minutes_remaining`).
    fn context(&self) -> LadderContext {
        LadderContext {
            amount: self.amount,
            payment_mode: self.payment_method.as_deref().and_then(PaymentMode::parse),
            reason: self.reason.clone(),
            map_link: self.map_link.clone(),
            pickup_address: self.pickup_address.clone(),
            drop_address: self.drop_address.clone(),
            new_address: self.new_address.clone().or_else(|| self.address.clone()),
            minutes_remaining: self.prep_time.or(self.minutes_remaining),
            eta_minutes: self.eta_minutes,
            items: self.items.clone(),
            ..LadderContext::default()
        }
    }

    /// The party's id in Jupiter for a ladder of `kind`.
    fn party_id(&self, kind: LadderKind) -> Option<String> {
        match kind {
            LadderKind::VendorNewOrder | LadderKind::VendorReminder => {
                self.store_id.clone().or_else(|| self.vendor_id.clone())
            }
            _ => self.rider_id.clone().or_else(|| self.delivery_man_id.clone()),
        }
    }
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
                let fields = WebhookFields::read(&p["context"]);
                let mut request = LadderRequest::new(kind, order_id.clone(), source);
                request.context = fields.context();
                request.party_id = fields.party_id(kind);
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
                let kinds: Option<Vec<LadderKind>> =
                    p["ladders"].as_array().map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect());
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
                request.context.status = p["status"].as_str().and_then(non_blank);
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
