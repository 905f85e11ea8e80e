//! The dialog's ports for one call, over Jupiter (stores, catalogs, the
//! caller's profile, orders, cancellations, payment links), the job queue
//! (the vendor ladder of a placed order) and our SMS and WhatsApp.

use std::sync::Arc;

use async_trait::async_trait;
use mangwale_core::{E164, OrderId};
use mangwale_providers::exotel::client::SendSms;
use mangwale_providers::jupiter::{
    Address as JupiterAddress, Customer, JupiterError, NewOrder, NewOrderLine, NewOrderModifier, PaymentMethod,
};
use mangwale_providers::whatsapp::TemplateMessage;
use mangwale_store::NewJob;
use mangwale_voice::dialog::{
    Address, LinkChannel, OrderRequest, Payment, PlacedOrder, PortError, Ports, Profile, StoreOffer,
};
use mangwale_voice::understand::{Context, Understanding};
use mangwale_voice::{Catalog, Lang};
use serde_json::json;
use tokio::sync::OnceCell;

use crate::comms::channels::{self, SendFailure, SentOnce, SmsPurpose};
use crate::jupiter::catalog::{StoreCatalogError, voice_catalog};
use crate::jupiter::events::{LADDER_START_JOB, LADDER_STOP_JOB};
use crate::state::AppState;

/// How many stores the dialog is given, nearest first: all of a city's
/// (the dialog finds a store named anywhere in them, and searches the
/// nearest open few for a dish); Jupiter's most per request.
const NEARBY_STORES: usize = 100;
/// Attempts of the job that starts a placed order's vendor ladder (Jupiter
/// may be down for a while; the order stands).
const LADDER_START_ATTEMPTS: u32 = 20;

/// The ports of one call (or API session).
pub struct ServerPorts {
    state: AppState,
    call_id: String,
    phone: Option<E164>,
    /// The caller as Jupiter knows them, asked once per turn.
    customer: OnceCell<Option<Customer>>,
    /// Something the turn did in Jupiter whose follow-up could not be
    /// recorded (the store failed): the turn must not be saved, so that its
    /// retry does it again (Jupiter answers the same order for the same key).
    unrecorded: std::sync::Mutex<Option<String>>,
}

fn unavailable(what: &str, e: &JupiterError) -> PortError {
    PortError { message: format!("{what}: {}", e.message()), retryable: e.is_transient() }
}

fn refused(message: impl Into<String>) -> PortError {
    PortError { message: message.into(), retryable: false }
}

impl ServerPorts {
    pub fn new(state: AppState, call_id: impl Into<String>, phone: Option<E164>) -> Self {
        ServerPorts {
            state,
            call_id: call_id.into(),
            phone,
            customer: OnceCell::new(),
            unrecorded: std::sync::Mutex::new(None),
        }
    }

    /// Why the turn must be retried rather than saved, if it must.
    pub fn unrecorded(&self) -> Option<String> {
        self.unrecorded.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn must_retry(&self, why: String) {
        *self.unrecorded.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
    }

    /// The caller's Jupiter record; `None` without a caller number. A
    /// caller Jupiter does not know is an unregistered customer.
    async fn customer(&self) -> Result<Option<&Customer>, PortError> {
        let Some(phone) = &self.phone else { return Ok(None) };
        let client = &self.state.jupiter.client;
        let customer = self
            .customer
            .get_or_try_init(|| async {
                client.customer_by_phone(phone).await.map(Some).map_err(|e| unavailable("the caller's profile", &e))
            })
            .await?;
        Ok(customer.as_ref())
    }

    /// Where the caller's order goes: the address the dialog confirmed,
    /// with its coordinates from the profile it came from.
    async fn delivery_address(&self, address: &Address, phone: &E164) -> Result<JupiterAddress, PortError> {
        let customer = self.customer().await?;
        let saved = customer.and_then(|c| {
            c.addresses
                .iter()
                .find(|a| address.id.as_deref().is_some_and(|id| a.id.map(|n| n.to_string()).as_deref() == Some(id)))
                .or_else(|| c.addresses.iter().find(|a| a.address == address.text))
        });
        Ok(JupiterAddress {
            contact_name: customer.and_then(|c| c.name.clone()),
            contact_phone: Some(phone.clone()),
            address: address.text.clone(),
            landmark: address.landmark.clone(),
            latitude: saved.and_then(|a| a.latitude),
            longitude: saved.and_then(|a| a.longitude),
        })
    }

    /// Starts the order's vendor ladder through the orchestrator's
    /// `ladder.start` job (the path of Jupiter's `order/new`), keyed on the
    /// order: a retried placement enqueues nothing more, so one ladder runs.
    /// A store that fails here fails the whole turn (see `unrecorded`).
    async fn start_vendor_ladder(&self, order_id: &OrderId, request: &OrderRequest) {
        let ladder = mangwale_core::ladder::LadderKind::VendorNewOrder;
        let catalog = self.catalog(&request.store_id).await.ok();
        let payload = json!({
            "ladder": ladder.name(),
            "orderId": order_id.as_str(),
            "escalationId": ladder.escalation_id(order_id.as_str(), 0),
            "source": format!("voice:{}", self.call_id),
            "context": {"store_id": request.store_id},
            // The store takes calls in its own language.
            "language": catalog.map(|c| c.store.language.code()).filter(|code| *code != "hi-en"),
        });
        let now = self.state.clock.now();
        let job = NewJob::new(LADDER_START_JOB, format!("voice:ladder:{order_id}"), payload, now)
            .max_attempts(LADDER_START_ATTEMPTS);
        if let Err(e) = self.state.store.enqueue(job).await {
            tracing::error!(order_id = %order_id, error = %e, "the vendor ladder of a voice order could not be enqueued");
            self.must_retry(format!("order {order_id} was placed, but its vendor ladder could not be enqueued"));
        }
    }
}

fn store_id(id: &str) -> Result<u64, PortError> {
    id.parse().map_err(|_| refused(format!("store {id:?} is not a Jupiter store id")))
}

fn order_id(order: &PlacedOrder) -> Result<OrderId, PortError> {
    OrderId::parse(&order.order_id).map_err(|e| refused(format!("order id {:?}: {e}", order.order_id)))
}

#[async_trait]
impl Ports for ServerPorts {
    /// Stores near the caller's default address, nearest first (every
    /// store, by id, when the caller has no saved address). Closed ones
    /// are listed as closed, so that a caller who names one is told so.
    async fn stores(&self) -> Result<Vec<StoreOffer>, PortError> {
        let point =
            self.customer().await?.and_then(|c| c.addresses.first()).and_then(|a| Some((a.latitude?, a.longitude?)));
        let stores = self
            .state
            .jupiter
            .client
            .stores_near(point, NEARBY_STORES)
            .await
            .map_err(|e| unavailable("the stores near the caller", &e))?;
        Ok(stores
            .into_iter()
            .map(|s| StoreOffer {
                id: s.id.to_string(),
                name: s.name,
                aliases: s.aliases,
                distance_km: s.distance_km,
                open: s.open,
            })
            .collect())
    }

    async fn catalog(&self, store: &str) -> Result<Arc<Catalog>, PortError> {
        let id = store_id(store)?;
        let voice = &self.state.voice;
        let now = self.state.clock.now();
        if let Some(catalog) = voice.cached_catalog(id, now) {
            return Ok(catalog);
        }
        let catalog = match voice_catalog(&self.state.jupiter.client, id).await {
            Ok(catalog) => Arc::new(catalog),
            Err(StoreCatalogError::Jupiter(e)) => return Err(unavailable("the store's catalog", &e)),
            Err(e) => return Err(refused(e.to_string())),
        };
        voice.keep_catalog(id, catalog.clone(), now);
        Ok(catalog)
    }

    async fn profile(&self) -> Result<Option<Profile>, PortError> {
        let Some(customer) = self.customer().await? else { return Ok(None) };
        if !customer.registered {
            return Ok(None);
        }
        Ok(Some(Profile {
            name: customer.name.clone(),
            language: customer.language.and_then(|l| Lang::from_code(l.code())),
            addresses: customer
                .addresses
                .iter()
                .map(|a| Address {
                    id: a.id.map(|id| id.to_string()),
                    label: a.label.clone(),
                    text: a.address.clone(),
                    landmark: a.landmark.clone(),
                })
                .collect(),
        }))
    }

    async fn place_order(&self, order: &OrderRequest) -> Result<PlacedOrder, PortError> {
        let Some(phone) = self.phone.clone() else {
            return Err(refused(
                "this session has no caller number, so no order can be placed in Jupiter (give `phone`)",
            ));
        };
        let Some(address) = &order.address else { return Err(refused("the order has no delivery address")) };
        let mut lines = Vec::with_capacity(order.lines.len());
        for line in &order.lines {
            let item_id = line
                .item_id
                .parse()
                .map_err(|_| refused(format!("item {:?} is not a Jupiter item id", line.item_id)))?;
            lines.push(NewOrderLine {
                item_id,
                variant_id: line.variant_id.clone(),
                quantity_milli: line.quantity.milli(),
                modifiers: line
                    .modifiers
                    .iter()
                    .map(|m| NewOrderModifier { group_id: m.group_id.clone(), option_id: m.option_id.clone() })
                    .collect(),
                unit_price_paise: line.unit_price.0,
                line_total_paise: line.line_total.0,
            });
        }
        let payment_method = match order.payment {
            Some(Payment::UpiLink { .. }) => PaymentMethod::DigitalPayment,
            Some(Payment::CashOnDelivery) | None => PaymentMethod::CashOnDelivery,
        };
        let new = NewOrder {
            idempotency_key: order.idempotency_key.clone(),
            customer_phone: phone.clone(),
            store_id: store_id(&order.store_id)?,
            lines,
            total_paise: order.total.0,
            payment_method,
            delivery_address: self.delivery_address(address, &phone).await?,
            note: Some("ordered by phone (voice)".into()),
        };
        let created = self.state.jupiter.client.create_order(&new).await.map_err(|e| {
            metrics::counter!("mangwale_voice_orders_total", "outcome" => "failed").increment(1);
            tracing::warn!(call_id = %self.call_id, error = %e.message(), "Jupiter did not take a voice order");
            unavailable("Jupiter did not take the order", &e)
        })?;
        metrics::counter!("mangwale_voice_orders_total", "outcome" => "placed").increment(1);
        self.start_vendor_ladder(&created.order_id, order).await;
        Ok(PlacedOrder {
            order_id: created.order_id.as_str().to_string(),
            number: created.order_id.as_str().to_string(),
            store_id: order.store_id.clone(),
            lines: order.lines.clone(),
            // What Jupiter charges: the items and the delivery charge.
            total: mangwale_voice::Paise(if created.amount_paise > 0 { created.amount_paise } else { order.total.0 }),
            payment: order.payment,
            cancelled: false,
        })
    }

    /// Cancels in Jupiter, then stops the order's ladders (the store need
    /// not be chased for an order that no longer stands).
    async fn cancel_order(&self, order: &PlacedOrder) -> Result<(), PortError> {
        let id = order_id(order)?;
        self.state
            .jupiter
            .client
            .cancel_order(&id, "cancelled by the caller on the voice line")
            .await
            .map_err(|e| unavailable("Jupiter did not cancel the order", &e))?;
        let payload = json!({"orderId": id.as_str(), "all": true, "actor": format!("voice:{}", self.call_id),
                             "outcome": "cancelled"});
        let job = NewJob::new(LADDER_STOP_JOB, format!("voice:cancel:{id}"), payload, self.state.clock.now());
        if let Err(e) = self.state.store.enqueue(job).await {
            tracing::error!(order_id = %id, error = %e, "stopping the ladders of a cancelled voice order failed");
            self.must_retry(format!("order {id} was cancelled, but its ladders could not be stopped"));
        }
        Ok(())
    }

    /// The order's UPI link from Jupiter, sent at most once per order and
    /// channel: a retried turn never sends it twice.
    async fn send_payment_link(&self, order: &PlacedOrder, via: LinkChannel) -> Result<(), PortError> {
        let Some(to) = self.phone.clone() else { return Err(refused("no caller number to send the link to")) };
        let id = order_id(order)?;
        let link = self
            .state
            .jupiter
            .client
            .payment_link(&id)
            .await
            .map_err(|e| unavailable("Jupiter gave no payment link", &e))?;
        let amount = format!("{}.{:02}", link.amount_paise / 100, link.amount_paise % 100);
        let state = &self.state;
        let sent = match via {
            LinkChannel::Sms => {
                let text = format!("Mangwale: pay Rs {amount} for order {} by UPI: {}", order.number, link.url);
                let mut sms = SendSms::new(channels::sms_sender(state), to.clone(), text);
                sms.dlt_entity_id = state.config.exotel_dlt_entity_id.clone();
                sms.dlt_template_id = state.config.exotel_dlt_template_payment_link.clone();
                let key = format!("{id}:{}", mangwale_store::phone_digest(&to));
                channels::send_sms_once(state, SmsPurpose::PaymentLink, &key, &sms).await
            }
            LinkChannel::Whatsapp => {
                let Some(client) = &state.channels.whatsapp else {
                    return Err(refused("WhatsApp is not configured"));
                };
                let language = self.customer().await.ok().flatten().and_then(|c| c.language).unwrap_or_default();
                let code = state
                    .config
                    .ladders
                    .get(mangwale_core::ladder::LadderKind::CustomerStatus)
                    .whatsapp_language(language.code());
                let message = TemplateMessage::new(to.clone(), super::PAYMENT_LINK_TEMPLATE, code).body(vec![
                    order.number.clone(),
                    amount,
                    link.url.clone(),
                ]);
                let key = format!("whatsapp:payment_link:{id}:{}", mangwale_store::phone_digest(&to));
                channels::send_at_most_once(state, &key, "whatsapp", async {
                    match client.send_template(&message).await {
                        Ok(sent) => Ok(sent.message_id),
                        Err(e) if e.is_ambiguous() => Err(SendFailure::Ambiguous { message: e.message() }),
                        Err(e) => Err(SendFailure::NotSent {
                            message: e.message(),
                            transient: e.is_transient(),
                            retry_after: e.retry_after,
                        }),
                    }
                })
                .await
            }
        };
        match sent {
            SentOnce::Sent { .. } => Ok(()),
            SentOnce::NotSent { message, transient, .. } => Err(PortError { message, retryable: transient }),
            // Never sent twice: the caller is told it may not have arrived.
            SentOnce::Unknown { message } => Err(refused(format!("the link may not have been sent: {message}"))),
        }
    }

    async fn fallback(&self, utterance: &str, catalog: &Catalog, context: &Context) -> Option<Understanding> {
        let fallback = self.state.voice_fallback.as_ref()?;
        fallback.resolve(utterance, catalog, context).await
    }
}
