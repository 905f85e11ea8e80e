//! "Rider accepts → gets pickup location" (the seed's rider flow): when a
//! rider accepts a delivery (IVR key 1, the WhatsApp Accept button, or
//! Jupiter's `rider/accepted`), they are sent the vendor's name and address,
//! a map link, the order number and the items: by WhatsApp, else SMS, else
//! app push. At the same moment the rider's masked sessions with the vendor
//! and the customer are opened (`masking.open` jobs).
//!
//! The send is a job ([`PICKUP_JOB`]): a provider that is down is retried
//! with backoff, and each channel tried goes on the order's timeline.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mangwale_core::context::non_blank;
use mangwale_core::ladder::LadderKind;
use mangwale_core::{E164, Language, OrderId};
use mangwale_providers::exotel::client::SendSms;
use mangwale_providers::whatsapp::TemplateMessage;
use mangwale_store::{Job, JobError, JobHandler, Ladder, NewEvent, NewJob, RetryPolicy};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::channels::{self, Sent, SentOnce, SmsPurpose};
use crate::jupiter::events::{MASKING_OPEN_JOB, PartyPair, masking_open_payload};
use crate::state::AppState;

/// Sends the rider who accepted the pickup location.
pub const PICKUP_JOB: &str = "notify.rider_pickup";
/// The WhatsApp template of the pickup location (see docs/comms.md).
pub const PICKUP_TEMPLATE: &str = "rider_pickup";
/// Attempts of the pickup job (transient failures of every channel, or
/// Jupiter down while details are missing).
pub const PICKUP_ATTEMPTS: u32 = 8;
/// Attempts of a `masking.open` job enqueued on an accept.
const MASKING_ATTEMPTS: u32 = 50;

/// The payload of a [`PICKUP_JOB`]: who accepted which order, and what is
/// already known of the pickup (the rest comes from Jupiter's order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PickupRequest {
    pub order_id: OrderId,
    /// The rider's id in Jupiter.
    pub rider_id: Option<String>,
    pub rider_phone: Option<E164>,
    pub language: Option<Language>,
    /// `ivr`, `whatsapp`, `jupiter:rider/accepted`.
    pub source: String,
    pub escalation_id: Option<String>,
    pub vendor_name: Option<String>,
    pub vendor_address: Option<String>,
    pub items: Option<String>,
}

/// What the rider is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct PickupDetails {
    pub order_id: OrderId,
    pub vendor_name: String,
    pub vendor_address: String,
    pub map_link: String,
    pub items: String,
}

impl PickupDetails {
    /// The WhatsApp template's body parameters, in order: order number,
    /// vendor name, vendor address, map link, items.
    pub fn template_params(&self) -> Vec<String> {
        vec![
            self.order_id.to_string(),
            self.vendor_name.clone(),
            self.vendor_address.clone(),
            self.map_link.clone(),
            self.items.clone(),
        ]
    }

    /// The SMS text (the DLT template `EXOTEL_DLT_TEMPLATE_RIDER_PICKUP`).
    pub fn sms_text(&self) -> String {
        format!(
            "Mangwale: pickup for order {} from {}, {}. Map: {} Items: {}",
            self.order_id, self.vendor_name, self.vendor_address, self.map_link, self.items
        )
    }
}

/// A map link to a place: its coordinates when known, else a search for
/// its name and address.
pub fn map_link(coordinates: Option<(f64, f64)>, name: &str, address: &str) -> String {
    match coordinates {
        Some((lat, lng)) => format!("https://www.google.com/maps/search/?api=1&query={lat},{lng}"),
        None => {
            let query: String = form_urlencoded::byte_serialize(format!("{name}, {address}").as_bytes()).collect();
            format!("https://www.google.com/maps/search/?api=1&query={query}")
        }
    }
}

/// The jobs a rider's accept of a `rider_assign` ladder sets in motion,
/// enqueued with the ladder's stop: the pickup location, and the masked
/// sessions rider↔vendor and customer↔rider. `key` is the answer's (the
/// IVR request, the WhatsApp message), so a provider's retry adds nothing.
pub fn accept_jobs(ladder: &Ladder, via: &str, key: &str, now: chrono::DateTime<chrono::Utc>) -> Vec<NewJob> {
    let Some(order_id) = ladder.order_id.as_deref().and_then(|o| OrderId::parse(o).ok()) else { return Vec::new() };
    let rider_id = ladder.party.split_once(':').map(|(_, id)| id.to_string()).filter(|id| !id.is_empty());
    let request = PickupRequest {
        order_id: order_id.clone(),
        rider_id: rider_id.clone(),
        rider_phone: ladder.phone.clone(),
        language: Some(ladder.language),
        source: via.to_string(),
        escalation_id: Some(ladder.escalation_id.clone()),
        vendor_name: ladder.context.pickup_name.clone(),
        vendor_address: ladder.context.pickup_address.clone(),
        items: ladder.context.items.clone(),
    };
    let mut jobs =
        vec![NewJob::new(PICKUP_JOB, format!("{PICKUP_JOB}:{key}"), json!(request), now).max_attempts(PICKUP_ATTEMPTS)];
    // Jupiter's names, as in the rider/accepted webhook's body.
    let context = json!({
        "rider_id": rider_id, "rider_phone": ladder.phone, "escalation_id": ladder.escalation_id,
    });
    let source = format!("{via}:rider_accepted");
    for pair in [PartyPair::RiderVendor, PartyPair::CustomerRider] {
        jobs.push(
            NewJob::new(
                MASKING_OPEN_JOB,
                format!("{MASKING_OPEN_JOB}:{key}:{}", pair.as_str()),
                masking_open_payload(order_id.as_str(), pair, &source, &context),
                now,
            )
            .max_attempts(MASKING_ATTEMPTS),
        );
    }
    jobs
}

/// The pickup job's payload for Jupiter's `rider/accepted` event.
pub fn payload_for_event(order_id: &str, source: &str, body: &Value) -> Value {
    let text = |name: &str| match body.get(name) {
        Some(Value::String(s)) => non_blank(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    json!({
        "orderId": order_id,
        "riderId": text("rider_id").or_else(|| text("delivery_man_id")),
        "riderPhone": text("rider_phone").and_then(|p| E164::parse(&p).ok()),
        "source": source,
    })
}

pub fn register(worker: &mut mangwale_store::Worker, state: &AppState) {
    worker.register(PICKUP_JOB, Arc::new(PickupJob { state: state.clone() }));
}

struct PickupJob {
    state: AppState,
}

fn transient(e: impl std::fmt::Display) -> JobError {
    JobError::Transient(e.to_string())
}

/// One channel's outcome, for the timeline.
enum Tried {
    Delivered,
    /// Try the next channel.
    Next,
}

#[async_trait]
impl JobHandler for PickupJob {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let mut request: PickupRequest = serde_json::from_value(job.payload.clone())
            .map_err(|e| JobError::Permanent(format!("bad payload for {PICKUP_JOB}: {e}")))?;
        let order = request.order_id.clone();
        let last_attempt = job.attempts >= job.max_attempts;

        // The rider accepted on the IVR, and Jupiter then announced it too:
        // one message is enough.
        if let Some(earlier) = self.already_sent(&request).await? {
            return self
                .note(&request, "pickup.already_sent", json!({"source": request.source, "sentAt": earlier}))
                .await;
        }
        let coordinates = match self.fill_from_jupiter(&mut request).await {
            Ok(coordinates) => coordinates,
            Err(e) if !last_attempt && e.1 => return Err(transient(e.0)),
            Err(e) => {
                if request.vendor_address.is_none() || (request.rider_phone.is_none() && request.rider_id.is_none()) {
                    return self.not_delivered(&request, &format!("Jupiter: {}", e.0), &[]).await;
                }
                None
            }
        };
        let Some(address) = request.vendor_address.clone() else {
            return self.not_delivered(&request, "the order names no pickup address", &[]).await;
        };
        let vendor_name = request.vendor_name.clone().unwrap_or_else(|| "-".to_string());
        let details = PickupDetails {
            order_id: order.clone(),
            map_link: map_link(coordinates, &vendor_name, &address),
            vendor_name,
            vendor_address: address,
            items: request.items.clone().unwrap_or_else(|| "-".to_string()),
        };

        let mut tried: Vec<Value> = Vec::new();
        for channel in ["whatsapp", "sms", "app_push"] {
            let sent = match channel {
                "whatsapp" => self.whatsapp(&request, &details).await,
                "sms" => self.sms(&request, &details).await,
                _ => self.push(&request, &details).await,
            };
            match self.outcome(&request, channel, sent, job, last_attempt, &mut tried).await? {
                Tried::Delivered => return Ok(()),
                Tried::Next => {}
            }
        }
        self.not_delivered(&request, "no channel could deliver it", &tried).await
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { base: Duration::from_secs(5), max: Duration::from_secs(120), jitter: true }
    }
}

impl PickupJob {
    /// When the pickup location already went to this rider for this order.
    async fn already_sent(&self, request: &PickupRequest) -> Result<Option<Value>, JobError> {
        let events = self.state.store.events_for_order(request.order_id.as_str()).await.map_err(transient)?;
        let rider = rider_key(request);
        Ok(events
            .iter()
            .filter(|e| e.kind == "pickup.sent")
            .find(|e| rider.is_some() && e.detail.get("rider") == rider.as_ref())
            .map(|e| json!(e.at)))
    }

    /// Fills what the request does not know from Jupiter's order; returns
    /// the pickup's coordinates when Jupiter has them. `Err((message,
    /// transient))` when Jupiter could not be asked.
    async fn fill_from_jupiter(&self, request: &mut PickupRequest) -> Result<Option<(f64, f64)>, (String, bool)> {
        let order = match self.state.jupiter.client.order(&request.order_id).await {
            Ok(Some(order)) => order,
            Ok(None) => return Err(("Jupiter does not know the order".into(), false)),
            Err(e) => return Err((e.message(), e.is_transient())),
        };
        let store = order.store.as_ref();
        if request.vendor_name.is_none() {
            request.vendor_name = store.and_then(|s| non_blank(&s.name));
        }
        if request.vendor_address.is_none() {
            request.vendor_address = order
                .pickup_address
                .as_ref()
                .and_then(|a| non_blank(&a.address))
                .or_else(|| store.and_then(|s| s.address.as_deref().and_then(non_blank)));
        }
        if request.items.is_none() {
            request.items = non_blank(order.items_summary());
        }
        // The order's rider, unless the request names another one.
        let rider = order.rider.as_ref().filter(|r| match (&request.rider_id, r.id) {
            (Some(wanted), Some(id)) => *wanted == id.to_string(),
            _ => true,
        });
        if let Some(rider) = rider {
            if request.rider_id.is_none() {
                request.rider_id = rider.id.map(|id| id.to_string());
            }
            if request.rider_phone.is_none() {
                request.rider_phone = rider.phone.clone();
            }
        }
        Ok(order.pickup_address.as_ref().and_then(|a| Some((a.latitude?, a.longitude?))))
    }

    async fn whatsapp(&self, request: &PickupRequest, details: &PickupDetails) -> Sent {
        let state = &self.state;
        let Some(client) = &state.channels.whatsapp else { return Sent::Skipped("WhatsApp is not configured".into()) };
        let Some(to) = request.rider_phone.clone() else {
            return Sent::Skipped("no phone number for the rider".into());
        };
        let language = request.language.unwrap_or_default();
        // The language code the rider ladder's templates are approved in.
        let code = state.config.ladders.get(LadderKind::RiderAssign).whatsapp_language(language.code());
        let mut message =
            TemplateMessage::new(to.clone(), PICKUP_TEMPLATE, code.clone()).body(details.template_params());
        if let Some(escalation) = &request.escalation_id {
            message = message.callback_data(escalation.clone());
        }
        // Once per order and rider's number, like the SMS: a retry of this
        // job (a later channel failed) never sends the message again.
        let key = format!("whatsapp:rider_pickup:{}:{}", request.order_id, mangwale_store::phone_digest(&to));
        let sent = channels::send_at_most_once(state, &key, "whatsapp", async {
            match client.send_template(&message).await {
                Ok(sent) => Ok(sent.message_id),
                Err(e) if e.is_ambiguous() => Err(channels::SendFailure::Ambiguous { message: e.message() }),
                Err(e) => Err(channels::SendFailure::NotSent {
                    message: e.message(),
                    transient: e.is_transient(),
                    retry_after: e.retry_after,
                }),
            }
        })
        .await;
        let detail = |earlier: bool| json!({"template": PICKUP_TEMPLATE, "language": code, "to": to.masked(), "earlier": earlier});
        match sent {
            SentOnce::Sent { id, earlier } => Sent::Sent { provider_id: id, detail: detail(earlier) },
            SentOnce::Unknown { message } => Sent::Unknown(message),
            SentOnce::NotSent { message, transient: true, retry_after: Some(wait) } => {
                Sent::Throttled { message, wait }
            }
            SentOnce::NotSent { message, transient, .. } => Sent::Failed { message, transient },
        }
    }

    async fn sms(&self, request: &PickupRequest, details: &PickupDetails) -> Sent {
        let state = &self.state;
        let Some(to) = request.rider_phone.clone() else {
            return Sent::Skipped("no phone number for the rider".into());
        };
        let mut sms = SendSms::new(channels::sms_sender(state), to.clone(), details.sms_text());
        sms.dlt_entity_id = state.config.exotel_dlt_entity_id.clone();
        sms.dlt_template_id = state.config.exotel_dlt_template_rider_pickup.clone();
        sms.custom_field = Some(format!("p:{}", details.order_id).chars().take(128).collect());
        // Once per order and rider's number, across retries of this job and
        // the other accepts of the same rider.
        let key = format!("{}:{}", details.order_id, mangwale_store::phone_digest(&to));
        match channels::send_sms_once(state, SmsPurpose::RiderPickup, &key, &sms).await {
            SentOnce::Sent { id: sid, earlier } => {
                Sent::Sent { provider_id: sid, detail: json!({"to": to.masked(), "earlier": earlier}) }
            }
            SentOnce::Unknown { message } => Sent::Unknown(message),
            SentOnce::NotSent { message, transient: true, retry_after: Some(wait) } => {
                Sent::Throttled { message, wait }
            }
            SentOnce::NotSent { message, transient, .. } => Sent::Failed { message, transient },
        }
    }

    async fn push(&self, request: &PickupRequest, details: &PickupDetails) -> Sent {
        let state = &self.state;
        let Some(rider) = &request.rider_id else { return Sent::Skipped("the rider's id is not known".into()) };
        // A public FCM topic carries the order number only (see
        // `channels::push_text`); the app backend reaches the rider's own
        // devices with the address.
        let private = state.channels.push.as_ref().is_some_and(|c| !c.sends_to_topics());
        let title = format!("Pickup for order {}", details.order_id);
        let body = if private {
            format!("{}, {}. {}", details.vendor_name, details.vendor_address, details.map_link)
        } else {
            "Open the app for the pickup location".to_string()
        };
        channels::push_to(state, "rider", rider, &title, &body, details.order_id.as_str(), None).await
    }

    /// Records one channel's outcome; a transient failure retries the job
    /// (nothing went out yet) while attempts remain.
    async fn outcome(
        &self,
        request: &PickupRequest,
        channel: &str,
        sent: Sent,
        job: &Job,
        last_attempt: bool,
        tried: &mut Vec<Value>,
    ) -> Result<Tried, JobError> {
        let now = self.state.clock.now();
        let failed = |kind: &str, error: &str, will_retry: bool| json!({"channel": channel, "outcome": kind, "error": error, "willRetry": will_retry});
        let (entry, tried_entry, result) = match sent {
            Sent::Sent { provider_id, detail } => {
                metrics::counter!("mangwale_rider_pickup_total", "channel" => channel.to_string()).increment(1);
                let mut detail = detail;
                if let Value::Object(map) = &mut detail {
                    map.insert("channel".into(), json!(channel));
                    map.insert("providerId".into(), json!(provider_id));
                    map.insert("rider".into(), json!(rider_key(request)));
                    map.insert("source".into(), json!(request.source));
                }
                (("pickup.sent", detail), None, Tried::Delivered)
            }
            Sent::Skipped(reason) => {
                let detail = json!({"channel": channel, "outcome": "skipped", "reason": reason});
                (("pickup.channel_skipped", detail.clone()), Some(detail), Tried::Next)
            }
            Sent::Failed { message, transient: true } if !last_attempt => {
                self.note(request, "pickup.channel_failed", failed("failed", &message, true)).await?;
                return Err(JobError::Transient(message));
            }
            Sent::Throttled { message, wait } if !last_attempt => {
                self.note(request, "pickup.channel_failed", failed("throttled", &message, true)).await?;
                return Err(channels::throttled(message, wait, job.created_at, now));
            }
            Sent::Failed { message, .. } | Sent::Throttled { message, .. } => {
                let detail = failed("failed", &message, false);
                (("pickup.channel_failed", detail.clone()), Some(detail), Tried::Next)
            }
            // It may have gone out; the next channel makes sure it arrives.
            Sent::Unknown(message) => {
                let detail = failed("unknown", &message, false);
                (("pickup.channel_failed", detail.clone()), Some(detail), Tried::Next)
            }
        };
        tried.extend(tried_entry);
        self.note(request, entry.0, entry.1).await?;
        Ok(result)
    }

    async fn not_delivered(&self, request: &PickupRequest, reason: &str, tried: &[Value]) -> Result<(), JobError> {
        metrics::counter!("mangwale_rider_pickup_undelivered_total").increment(1);
        self.note(request, "pickup.not_delivered", json!({"reason": reason, "tried": tried, "source": request.source}))
            .await
    }

    async fn note(&self, request: &PickupRequest, kind: &str, detail: Value) -> Result<(), JobError> {
        let party = request.rider_id.as_deref().map(|id| format!("rider:{id}"));
        let event = NewEvent::new(kind, self.state.clock.now())
            .channel("comms")
            .context(Some(request.order_id.as_str()), request.escalation_id.as_deref(), party.as_deref())
            .detail(detail);
        self.state.store.record_event(event).await.map_err(transient)?;
        Ok(())
    }
}

/// Who the pickup went to, for the timeline and the duplicate check: the
/// rider's id, else their masked number.
fn rider_key(request: &PickupRequest) -> Option<Value> {
    match (&request.rider_id, &request.rider_phone) {
        (Some(id), _) => Some(json!(id)),
        (None, Some(phone)) => Some(json!(phone.masked())),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_link_uses_coordinates_else_the_address() {
        assert_eq!(
            map_link(Some((19.9975, 73.7898)), "Sai Misal", "College Road"),
            "https://www.google.com/maps/search/?api=1&query=19.9975,73.7898"
        );
        assert_eq!(
            map_link(None, "Sai Misal", "Shop 12, College Road"),
            "https://www.google.com/maps/search/?api=1&query=Sai+Misal%2C+Shop+12%2C+College+Road"
        );
    }

    #[test]
    fn a_rider_accepted_event_names_the_rider() {
        let payload = payload_for_event("MW-1", "jupiter:rider/accepted", &json!({"delivery_man_id": 67}));
        let request: PickupRequest = serde_json::from_value(payload).unwrap();
        assert_eq!((request.order_id.as_str(), request.rider_id.as_deref()), ("MW-1", Some("67")));
        assert_eq!(request.rider_phone, None);
    }
}
