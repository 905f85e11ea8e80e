//! A simulator of Jupiter (the order backend) and of the PHP backend behind
//! it (a 6amMart-style API), serving the contract in `docs/jupiter.md`,
//! with the Nashik demo data (`crates/sim/data/nashik-demo.json`): 20
//! stores and their catalogs, riders, customers and orders.
//!
//! Start it in-process with [`JupiterSim::start`] (tests, sandbox mode) or
//! on its own with [`run_standalone`] (CLI `mangwale-exotel sim jupiter`).
//! It listens twice on loopback: Jupiter at [`JupiterSim::jupiter_url`],
//! the PHP backend at [`JupiterSim::php_url`]. Both share one database, so
//! a status update sent to Jupiter shows in the PHP order.
//!
//! # Jupiter (every request needs `X-API-Key`, else 401 `{"error": "invalid api key"}`)
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/health` | `{"status": "ok"}` |
//! | GET | `/api/order/{id}` | the order in Jupiter's camelCase shape, or 404 |
//! | POST | `/api/order/status` | `{"success": true, "orderId", "status"}`; 400 without `orderId`/`status` or for an unknown status, 404 for an unknown order |
//! | POST | `/api/notifications/ivr-event` | `{"success": true}`; 400 without `type` |
//! | GET | `/api/customer/lookup?phone=` | `{id, name, phone, language, addresses, isRegistered}` or 404 |
//! | GET | `/api/rider/lookup?phone=` | `{id, name, phone}` or 404 |
//! | GET | `/api/catalog/search?store_id=&q=&limit=` | `{"items": [catalog item]}`, best match first (names and aliases in any script) |
//! | POST | `/api/order/create` | `{"success": true, "orderId", "orderAmount", "status": "pending"}`; each line checked against the catalog (item, `variantId`, `modifiers`, `quantity`) and repriced (`unitPrice`, `lineTotal`, `total` must match when sent); 400 `{"error", "field"}` naming the field at fault (`items[1].variantId`); a repeated `idempotencyKey` answers the first order |
//! | POST | `/api/order/cancel` | the customer cancels: `{"success": true, "orderId", "status": "canceled"}`, again for a cancelled order; 409 once it has left the store; 404 unknown |
//! | POST | `/api/order/{id}/payment-link` | `{"success": true, "orderId", "url": "upi://pay?…", "amount"}`, the same for the same order; 409 when paid or cancelled |
//! | GET | `/api/catalog?store_id=` | the store and its whole catalog, with variants and modifier groups |
//! | GET | `/api/stores?lat=&lng=&limit=` | `{"stores": [{id, name, aliases, area, open, distanceKm, language, storeType}]}`, nearest first (by id without a point) |
//!
//! Phone parameters may be 10 digits, `0…`, `91…` or `+91…`; records match
//! on the 10 national digits. Ids in bodies may be numbers or strings.
//!
//! # PHP backend (no key; `X-localization` is recorded)
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/` | 404 with an HTML page (any answer means "reachable") |
//! | GET | `/api/v1/customer/order/details?order_id=` | the order in 6amMart's shape |
//! | GET | `/api/v1/stores/details/{id}` | a store |
//! | GET | `/api/v1/stores/search?phone=` | an array of stores (maybe empty) |
//! | GET | `/api/v1/delivery-man/details/{id}` | a delivery man |
//! | GET | `/api/v1/delivery-man/search?phone=` | an array of delivery men |
//! | GET | `/api/v1/items/search?store_id=&name=&limit=` | `{"total_size", "limit", "offset", "products": [PHP item]}` (name substring only) |
//!
//! The PHP shapes carry 6amMart's quirks on purpose: money as strings
//! (`"325.00"`), flags as 0/1, phone numbers in one of four forms by record
//! id, and for orders with [`DemoOrder::php_json_strings`] (every other
//! demo order) `sender_details`, `receiver_details` and
//! `details[].product_details` as JSON strings.
//!
//! # Misbehaviour
//!
//! Every request is recorded ([`JupiterSim::received`]), including rejected
//! and faulted ones. Then, in order: a target that is down
//! ([`JupiterSim::set_down`]) answers 503; an injected fault
//! ([`JupiterSim::inject_fault`]) answers with its status, closes the
//! connection, or handles the request and answers late; otherwise the
//! request is handled. Unknown paths answer 404 JSON.

mod api;
mod data;
mod orders;
mod php;
mod search;
mod server;
mod state;
mod webhooks;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::{fmt, io};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use data::{
    DeliveryAddress, DemoAddress, DemoCustomer, DemoData, DemoItem, DemoModifierGroup, DemoModifierOption, DemoOrder,
    DemoOrderLine, DemoOrderModifier, DemoRider, DemoStore, DemoVariant, NASHIK_DEMO_JSON, national_digits,
};
pub use orders::{CANCELLABLE_STATUSES, MAX_QUANTITY, ORDER_STATUSES, PAYEE_VPA, PAYMENT_METHODS};
pub use webhooks::{Signing, webhook_signature, webhook_signature_with_event_id};

use crate::clock::lock;
use state::State;

/// Configuration of a [`JupiterSim`].
#[derive(Clone, PartialEq, Eq)]
pub struct JupiterSimConfig {
    /// The `X-API-Key` Jupiter requires.
    pub api_key: String,
    /// Start with the Nashik demo data; otherwise with no data at all.
    pub demo_data: bool,
}

impl JupiterSimConfig {
    /// A simulator with the demo data, expecting `api_key`.
    pub fn new(api_key: impl Into<String>) -> Self {
        JupiterSimConfig { api_key: api_key.into(), demo_data: true }
    }
}

impl fmt::Debug for JupiterSimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JupiterSimConfig").field("api_key", &"***").field("demo_data", &self.demo_data).finish()
    }
}

/// One of the two simulated services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Jupiter,
    Php,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Jupiter => "jupiter",
            Target::Php => "php",
        }
    }
}

/// A misbehaviour to apply to the next requests of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JupiterFault {
    /// Answer with this status and `{"error": …}`; the request has no effect.
    Status(u16),
    /// Handle the request at once, and answer this long (real time) later.
    Delay(Duration),
    /// Close the connection without answering; the request has no effect.
    Drop,
}

/// A request as the simulator received it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedRequest {
    pub target: Target,
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// `X-API-Key`.
    pub api_key: Option<String>,
    /// `X-Service`.
    pub service: Option<String>,
    /// `X-localization`.
    pub localization: Option<String>,
    /// The JSON body; `None` when empty or not JSON.
    pub body: Option<Value>,
    /// The status answered; `None` while being handled, or when the
    /// connection was dropped.
    pub status: Option<u16>,
}

pub(crate) struct Inner {
    api_key: String,
    state: Mutex<State>,
    http: reqwest::Client,
}

/// Stops both listeners when the last clone of the simulator goes away.
struct Listeners {
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in lock(&self.tasks).iter() {
            task.abort();
        }
    }
}

/// A running simulator; clones share it. Dropping the last clone stops it.
#[derive(Clone)]
pub struct JupiterSim {
    inner: Arc<Inner>,
    listeners: Arc<Listeners>,
    jupiter_addr: SocketAddr,
    php_addr: SocketAddr,
}

impl fmt::Debug for JupiterSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JupiterSim")
            .field("jupiter", &self.jupiter_addr)
            .field("php", &self.php_addr)
            .finish_non_exhaustive()
    }
}

impl JupiterSim {
    /// Listens on two free loopback ports, Jupiter's and the PHP backend's.
    pub async fn start(config: JupiterSimConfig) -> io::Result<JupiterSim> {
        let any_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        JupiterSim::start_on(config, any_port, any_port).await
    }

    async fn start_on(config: JupiterSimConfig, jupiter: SocketAddr, php: SocketAddr) -> io::Result<JupiterSim> {
        let data = if config.demo_data {
            DemoData::nashik().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("demo data: {e}")))?
        } else {
            DemoData::default()
        };
        let jupiter_listener = TcpListener::bind(jupiter).await?;
        let php_listener = TcpListener::bind(php).await?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .map_err(|e| io::Error::other(format!("cannot build the webhook HTTP client: {e}")))?;
        let inner = Arc::new(Inner { api_key: config.api_key, state: Mutex::new(State::new(data)), http });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let jupiter_addr = jupiter_listener.local_addr()?;
        let php_addr = php_listener.local_addr()?;
        let tasks = vec![
            tokio::spawn(server::serve(inner.clone(), Target::Jupiter, jupiter_listener, shutdown_rx.clone())),
            tokio::spawn(server::serve(inner.clone(), Target::Php, php_listener, shutdown_rx)),
        ];
        let listeners = Arc::new(Listeners { shutdown, tasks: Mutex::new(tasks) });
        Ok(JupiterSim { inner, listeners, jupiter_addr, php_addr })
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn jupiter_url(&self) -> String {
        format!("http://{}", self.jupiter_addr)
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn php_url(&self) -> String {
        format!("http://{}", self.php_addr)
    }

    pub fn api_key(&self) -> &str {
        &self.inner.api_key
    }

    /// Applies `fault` to the next `times` requests to `target` whose path
    /// starts with `path_prefix` (`""`: every path). Faults apply in the
    /// order they were injected.
    pub fn inject_fault(&self, target: Target, path_prefix: &str, fault: JupiterFault, times: u32) {
        lock(&self.inner.state).add_fault(target, path_prefix, fault, times);
    }

    /// While down, every request to `target` answers 503 (and is recorded).
    pub fn set_down(&self, target: Target, down: bool) {
        lock(&self.inner.state).set_down(target, down);
    }

    /// Every request received by either target, oldest first.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        lock(&self.inner.state).received()
    }

    pub fn clear_received(&self) {
        lock(&self.inner.state).clear_received();
    }

    /// The current data: the demo data plus every change made since.
    pub fn data(&self) -> DemoData {
        lock(&self.inner.state).data.clone()
    }

    /// Changes the data in place (mark an item unavailable, close a store, …).
    pub fn edit_data<R>(&self, edit: impl FnOnce(&mut DemoData) -> R) -> R {
        edit(&mut lock(&self.inner.state).data)
    }

    /// An order as it is now, with the status updates received: by its
    /// number or its `MW-2025-001234` reference.
    pub fn order(&self, id: &str) -> Option<DemoOrder> {
        lock(&self.inner.state).data.find_order(id).cloned()
    }

    /// The bodies of accepted `POST /api/order/status` requests, in arrival order.
    pub fn status_updates(&self) -> Vec<Value> {
        lock(&self.inner.state).status_updates.iter().cloned().collect()
    }

    /// The bodies of accepted `POST /api/notifications/ivr-event` requests, in arrival order.
    pub fn notifications(&self) -> Vec<Value> {
        lock(&self.inner.state).notifications.iter().cloned().collect()
    }

    /// Adds an order, or replaces the one with the same id.
    pub fn add_order(&self, order: DemoOrder) {
        lock(&self.inner.state).data.upsert_order(order);
    }

    /// POSTs `body` to `{service_base_url}/webhooks/jupiter/{event}` as
    /// Jupiter does, signed per `signing`; the bytes sent are exactly the
    /// bytes signed.
    pub async fn send_webhook(
        &self,
        service_base_url: &str,
        event: &str,
        body: &Value,
        signing: Signing,
    ) -> reqwest::Result<reqwest::Response> {
        let url = format!("{}/webhooks/jupiter/{}", service_base_url.trim_end_matches('/'), event.trim_matches('/'));
        let bytes = body.to_string().into_bytes();
        let mut request = self.inner.http.post(url).header(http::header::CONTENT_TYPE, "application/json");
        for (name, value) in webhooks::signature_headers(&signing, &bytes) {
            request = request.header(name, value);
        }
        request.body(bytes).send().await
    }

    /// Stops both listeners (for every clone) and waits for them.
    pub async fn shutdown(self) {
        let _ = self.listeners.shutdown.send(true);
        let tasks: Vec<JoinHandle<()>> = lock(&self.listeners.tasks).drain(..).collect();
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// Runs the simulator with the demo data on `127.0.0.1:<port>` (Jupiter)
/// and `127.0.0.1:<php_port>` (PHP) until `shutdown` completes. Entry point
/// of `mangwale-exotel sim jupiter`.
pub async fn run_standalone(
    port: u16,
    php_port: u16,
    api_key: String,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let jupiter = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let php = SocketAddr::from((Ipv4Addr::LOCALHOST, php_port));
    let sim = JupiterSim::start_on(JupiterSimConfig::new(api_key), jupiter, php).await?;
    let data = sim.data();
    println!("Jupiter simulator:     {}  (X-API-Key: the --api-key given)", sim.jupiter_url());
    println!("PHP backend simulator: {}", sim.php_url());
    println!(
        "Nashik demo data: {} stores, {} items, {} riders, {} customers, {} orders",
        data.stores.len(),
        data.items.len(),
        data.riders.len(),
        data.customers.len(),
        data.orders.len()
    );
    shutdown.await;
    sim.shutdown().await;
    Ok(())
}
