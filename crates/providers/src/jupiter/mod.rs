//! The client of Jupiter (the order backend) and of the PHP backend behind
//! it. The contract — paths, headers, shapes, fallbacks, cache lifetimes —
//! is in `docs/jupiter.md`.
//!
//! - Reads go to Jupiter first and fall back to the PHP backend where the
//!   incumbent did; they are cached for the incumbent's lifetimes and
//!   retried on transient failures only.
//! - Writes (`update_order_status`, `notify`) are sent once: the caller's
//!   durable outbox retries them. `create_order` carries an idempotency key
//!   and so is retried like a read.
//! - A circuit breaker per backend makes an outage fail fast.
//! - Phone numbers never reach logs; the API key never does either.

mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod model;
pub(crate) mod resilience;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use mangwale_core::{E164, OrderId};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::time::Instant;
use url::Url;

pub use error::{Backend, JupiterError, JupiterErrorKind};
pub use model::{
    Address, CatalogItem, CatalogModifierGroup, CatalogModifierOption, CatalogStore, CatalogVariant, CreatedOrder,
    Customer, CustomerAddress, NearbyStore, NewOrder, NewOrderLine, NewOrderModifier, Order, OrderLine, PaymentLink,
    PaymentMethod, Person, Rider, Source, Store, StoreCatalog, StoreCatalogItem, StoreRef,
};
pub use resilience::BreakerConfig;

use resilience::{Breaker, TtlCache};

/// `X-Service`, as the incumbent sent it.
pub const SERVICE_NAME: &str = "exotel-service";
/// `source` of order status updates, as the incumbent sent it.
pub const STATUS_SOURCE: &str = "exotel-ivr";
/// `source` of created orders.
pub const ORDER_SOURCE: &str = "exotel-voice";

/// How long answers are kept: the incumbent's lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLifetimes {
    pub order: Duration,
    pub store: Duration,
    pub rider: Duration,
    pub customer: Duration,
    pub catalog: Duration,
}

impl Default for CacheLifetimes {
    fn default() -> Self {
        CacheLifetimes {
            order: Duration::from_secs(30),
            store: Duration::from_secs(300),
            rider: Duration::from_secs(120),
            customer: Duration::from_secs(60),
            catalog: Duration::from_secs(300),
        }
    }
}

#[derive(Clone)]
pub struct JupiterClientConfig {
    /// `JUPITER_URL`, optionally with a path prefix.
    pub jupiter_url: Url,
    /// `PHP_BACKEND_URL`; without it there is no fallback, and store and
    /// rider details cannot be read.
    pub php_url: Option<Url>,
    /// `X-API-Key`.
    pub api_key: String,
    /// Whole-request timeout. Short: webhooks and workers wait on it.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries of a read (and of `create_order`) after a transient failure.
    pub read_retries: u32,
    /// First backoff between retries; doubled each time, with jitter.
    pub retry_base: Duration,
    pub breaker: BreakerConfig,
    pub cache: CacheLifetimes,
    /// `X-localization` sent to the PHP backend.
    pub localization: String,
}

impl JupiterClientConfig {
    pub fn new(jupiter_url: Url, php_url: Option<Url>, api_key: String) -> Self {
        JupiterClientConfig {
            jupiter_url,
            php_url,
            api_key,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            read_retries: 2,
            retry_base: Duration::from_millis(200),
            breaker: BreakerConfig::default(),
            cache: CacheLifetimes::default(),
            localization: "en".to_string(),
        }
    }
}

impl fmt::Debug for JupiterClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JupiterClientConfig")
            .field("jupiter_url", &self.jupiter_url.as_str())
            .field("php_url", &self.php_url.as_ref().map(Url::as_str))
            .field("api_key", &"***")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The Jupiter and PHP client. Cheap to clone; clones share the connection
/// pool, caches and breakers.
#[derive(Clone)]
pub struct JupiterClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for JupiterClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JupiterClient").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

struct Inner {
    http: reqwest::Client,
    config: JupiterClientConfig,
    jupiter_breaker: Breaker,
    php_breaker: Breaker,
    orders: TtlCache<String, Order>,
    stores: TtlCache<u64, Store>,
    stores_by_phone: TtlCache<E164, Option<Store>>,
    riders: TtlCache<u64, Rider>,
    riders_by_phone: TtlCache<E164, Option<Rider>>,
    customers: TtlCache<E164, Customer>,
    catalog: TtlCache<(u64, String, usize), Vec<CatalogItem>>,
    store_catalogs: TtlCache<u64, StoreCatalog>,
    nearby_stores: TtlCache<String, Vec<NearbyStore>>,
}

/// A successful answer, or the backend saying it has no such record.
enum Answer {
    Found(Value),
    NotFound,
}

/// One request, before any attempt.
struct Call {
    backend: Backend,
    operation: &'static str,
    method: Method,
    url: Url,
    body: Option<Value>,
    retries: u32,
    /// Health probes go even while the circuit is open: they are how we
    /// learn the backend is back.
    bypass_breaker: bool,
}

const CACHE_CAPACITY: usize = 10_000;
/// Whole catalogs are large; a few hundred stores' worth is plenty.
const STORE_CATALOG_CACHE_CAPACITY: usize = 500;

/// Largest answer read from Jupiter or the PHP backend: 4 MiB, room for a
/// store's catalog search or an order with many items, and no more.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

impl JupiterClient {
    pub fn new(config: JupiterClientConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("mangwale-exotel/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let ttl = config.cache;
        let inner = Inner {
            http,
            jupiter_breaker: Breaker::new(config.breaker),
            php_breaker: Breaker::new(config.breaker),
            orders: TtlCache::new(ttl.order, CACHE_CAPACITY),
            stores: TtlCache::new(ttl.store, CACHE_CAPACITY),
            stores_by_phone: TtlCache::new(ttl.store, CACHE_CAPACITY),
            riders: TtlCache::new(ttl.rider, CACHE_CAPACITY),
            riders_by_phone: TtlCache::new(ttl.rider, CACHE_CAPACITY),
            customers: TtlCache::new(ttl.customer, CACHE_CAPACITY),
            catalog: TtlCache::new(ttl.catalog, CACHE_CAPACITY),
            store_catalogs: TtlCache::new(ttl.catalog, STORE_CATALOG_CACHE_CAPACITY),
            nearby_stores: TtlCache::new(ttl.store, STORE_CATALOG_CACHE_CAPACITY),
            config,
        };
        JupiterClient { inner: Arc::new(inner) }
    }

    pub fn config(&self) -> &JupiterClientConfig {
        &self.inner.config
    }

    /// Whether a backend's circuit is open (or probing) right now.
    pub fn circuit_open(&self, backend: Backend) -> bool {
        self.breaker(backend).is_open()
    }

    // -- reads --------------------------------------------------------------

    /// getOrderDetails: Jupiter, then the PHP backend when Jupiter does not
    /// know the order or is unreachable. `Ok(None)`: neither knows it.
    pub async fn order(&self, id: &OrderId) -> Result<Option<Order>, JupiterError> {
        if let Some(order) = self.inner.orders.get(&id.as_str().to_string()) {
            return Ok(Some(order));
        }
        let from_jupiter = self.jupiter(Method::GET, "order", &format!("/api/order/{id}"), &[], None).await;
        let jupiter_error = match from_jupiter {
            Ok(Answer::Found(body)) => {
                let order = model::order_from_json(&body)
                    .ok_or_else(|| self.bad_response(Backend::Jupiter, "order", "an order without an id"))?;
                self.inner.orders.put(id.as_str().to_string(), order.clone());
                return Ok(Some(order));
            }
            Ok(Answer::NotFound) => None,
            Err(e) if e.is_transient() => Some(e),
            Err(e) => return Err(e),
        };
        if self.inner.config.php_url.is_none() {
            return match jupiter_error {
                Some(e) => Err(e),
                None => Ok(None),
            };
        }
        let from_php = self.php("order", "/api/v1/customer/order/details", &[("order_id", id.as_str())]).await;
        match from_php {
            Ok(Answer::Found(body)) => {
                let order = model::order_from_json(&body)
                    .ok_or_else(|| self.bad_response(Backend::Php, "order", "an order without an id"))?;
                self.inner.orders.put(id.as_str().to_string(), order.clone());
                Ok(Some(order))
            }
            // The PHP database is where orders live: its "no" is final.
            Ok(Answer::NotFound) => Ok(None),
            // Both failed: Jupiter's error says more about what to wait for.
            Err(e) => Err(jupiter_error.unwrap_or(e)),
        }
    }

    /// getStoreDetails (PHP backend).
    pub async fn store(&self, id: u64) -> Result<Option<Store>, JupiterError> {
        if let Some(store) = self.inner.stores.get(&id) {
            return Ok(Some(store));
        }
        match self.php("store", &format!("/api/v1/stores/details/{id}"), &[]).await? {
            Answer::Found(body) => {
                let store = model::store_from_json(&body)
                    .ok_or_else(|| self.bad_response(Backend::Php, "store", "a store without id or name"))?;
                self.inner.stores.put(id, store.clone());
                Ok(Some(store))
            }
            Answer::NotFound => Ok(None),
        }
    }

    /// getStoreByPhone (PHP backend): the vendor calling in.
    pub async fn store_by_phone(&self, phone: &E164) -> Result<Option<Store>, JupiterError> {
        if let Some(found) = self.inner.stores_by_phone.get(phone) {
            return Ok(found);
        }
        let national = national_digits(phone);
        let found = match self.php("store_by_phone", "/api/v1/stores/search", &[("phone", &national)]).await? {
            Answer::Found(body) => first_of(&body, "stores").and_then(model::store_from_json),
            Answer::NotFound => None,
        };
        // A miss is not cached: the record may appear at once.
        if found.is_some() {
            self.inner.stores_by_phone.put(phone.clone(), found.clone());
        }
        Ok(found)
    }

    /// getDeliveryManDetails (PHP backend).
    pub async fn rider(&self, id: u64) -> Result<Option<Rider>, JupiterError> {
        if let Some(rider) = self.inner.riders.get(&id) {
            return Ok(Some(rider));
        }
        match self.php("rider", &format!("/api/v1/delivery-man/details/{id}"), &[]).await? {
            Answer::Found(body) => {
                let rider = model::rider_from_json(&body)
                    .ok_or_else(|| self.bad_response(Backend::Php, "rider", "a delivery man without an id"))?;
                self.inner.riders.put(id, rider.clone());
                Ok(Some(rider))
            }
            Answer::NotFound => Ok(None),
        }
    }

    /// getDeliveryManByPhone: the PHP backend, then Jupiter's rider lookup.
    pub async fn rider_by_phone(&self, phone: &E164) -> Result<Option<Rider>, JupiterError> {
        if let Some(found) = self.inner.riders_by_phone.get(phone) {
            return Ok(found);
        }
        let national = national_digits(phone);
        let php = match &self.inner.config.php_url {
            Some(_) => Some(self.php("rider_by_phone", "/api/v1/delivery-man/search", &[("phone", &national)]).await),
            None => None,
        };
        let found = match php {
            Some(Ok(Answer::Found(body))) if first_of(&body, "delivery_men").is_some() => {
                first_of(&body, "delivery_men").and_then(model::rider_from_json)
            }
            Some(Err(e)) if !e.is_transient() => return Err(e),
            _ => match self
                .jupiter(Method::GET, "rider_by_phone", "/api/rider/lookup", &[("phone", &national)], None)
                .await?
            {
                Answer::Found(body) => model::rider_from_json(&body),
                Answer::NotFound => None,
            },
        };
        if found.is_some() {
            self.inner.riders_by_phone.put(phone.clone(), found.clone());
        }
        Ok(found)
    }

    /// getCustomerByPhone: Jupiter's lookup; a caller it does not know is an
    /// unregistered customer, not an error.
    pub async fn customer_by_phone(&self, phone: &E164) -> Result<Customer, JupiterError> {
        if let Some(customer) = self.inner.customers.get(phone) {
            return Ok(customer);
        }
        let national = national_digits(phone);
        let customer = match self
            .jupiter(Method::GET, "customer_by_phone", "/api/customer/lookup", &[("phone", &national)], None)
            .await?
        {
            Answer::Found(body) => model::customer_from_json(&body, phone),
            Answer::NotFound => Customer::unregistered(phone.clone()),
        };
        self.inner.customers.put(phone.clone(), customer.clone());
        Ok(customer)
    }

    /// The active orders (not delivered, cancelled, failed or refunded) of a
    /// customer, rider or store, oldest first: Jupiter's
    /// `GET /api/orders/active`. Not cached: a new order must show at once.
    pub async fn active_orders(&self, of: PartyRef) -> Result<Vec<Order>, JupiterError> {
        let id = of.id().to_string();
        let query = [(of.param(), id.as_str())];
        let body = match self.jupiter(Method::GET, "active_orders", "/api/orders/active", &query, None).await? {
            Answer::Found(body) => body,
            Answer::NotFound => return Ok(Vec::new()),
        };
        let list = body
            .get("orders")
            .and_then(Value::as_array)
            .or_else(|| body.as_array())
            .ok_or_else(|| self.bad_response(Backend::Jupiter, "active_orders", "an answer without orders"))?;
        let orders: Vec<Order> = list.iter().filter_map(model::order_from_json).filter(Order::is_active).collect();
        for order in &orders {
            self.inner.orders.put(order.id.as_str().to_string(), order.clone());
        }
        Ok(orders)
    }

    /// A store's catalog items matching `text` (names and aliases, any
    /// script), best first: Jupiter's search, else the PHP item search.
    pub async fn catalog_search(
        &self,
        store_id: u64,
        text: &str,
        limit: usize,
    ) -> Result<Vec<CatalogItem>, JupiterError> {
        let key = (store_id, text.trim().to_lowercase(), limit);
        if let Some(items) = self.inner.catalog.get(&key) {
            return Ok(items);
        }
        let store = store_id.to_string();
        let limit_text = limit.to_string();
        let query = [("store_id", store.as_str()), ("q", text.trim()), ("limit", limit_text.as_str())];
        let items = match self.jupiter(Method::GET, "catalog_search", "/api/catalog/search", &query, None).await {
            Ok(Answer::Found(body)) => items_of(&body, "items"),
            Ok(Answer::NotFound) => Vec::new(),
            Err(e) if e.is_transient() && self.inner.config.php_url.is_some() => {
                let query = [("store_id", store.as_str()), ("name", text.trim()), ("limit", limit_text.as_str())];
                match self.php("catalog_search", "/api/v1/items/search", &query).await {
                    Ok(Answer::Found(body)) => items_of(&body, "products"),
                    Ok(Answer::NotFound) => Vec::new(),
                    Err(_) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        self.inner.catalog.put(key, items.clone());
        Ok(items)
    }

    /// A store's whole catalog, with each item's variants and modifier
    /// groups: Jupiter's `GET /api/catalog?store_id=` (the PHP backend has
    /// no variants or modifiers, so there is no fallback). `Ok(None)`: no
    /// such store.
    pub async fn store_catalog(&self, store_id: u64) -> Result<Option<StoreCatalog>, JupiterError> {
        if let Some(catalog) = self.inner.store_catalogs.get(&store_id) {
            return Ok(Some(catalog));
        }
        let store = store_id.to_string();
        let body =
            match self.jupiter(Method::GET, "store_catalog", "/api/catalog", &[("store_id", &store)], None).await? {
                Answer::Found(body) => body,
                Answer::NotFound => return Ok(None),
            };
        let catalog = model::store_catalog_from_json(&body)
            .map_err(|message| self.bad_response(Backend::Jupiter, "store_catalog", &message))?;
        self.inner.store_catalogs.put(store_id, catalog.clone());
        Ok(Some(catalog))
    }

    // -- writes -------------------------------------------------------------

    /// updateOrderStatus. Sent once; the cached order is dropped whatever
    /// the outcome, so the next read sees what Jupiter has.
    pub async fn update_order_status(&self, id: &OrderId, status: &str, metadata: Value) -> Result<(), JupiterError> {
        self.inner.orders.invalidate(&id.as_str().to_string());
        let body = json!({"orderId": wire_id(id), "status": status, "metadata": metadata, "source": STATUS_SOURCE});
        let answer = self.jupiter_write("order_status", "/api/order/status", body).await;
        self.inner.orders.invalidate(&id.as_str().to_string());
        answer
    }

    /// notifyJupiter: an IVR event (`vendor_accepted`, …). Sent once.
    pub async fn notify(&self, event_type: &str, data: Value) -> Result<(), JupiterError> {
        let body = json!({
            "type": event_type,
            "data": data,
            "source": SERVICE_NAME,
            "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        });
        self.jupiter_write("notify", "/api/notifications/ivr-event", body).await
    }

    /// Creates a voice order. The idempotency key makes a retry return the
    /// first order, so transient failures are retried here.
    pub async fn create_order(&self, order: &NewOrder) -> Result<CreatedOrder, JupiterError> {
        let items: Vec<Value> = order
            .lines
            .iter()
            .map(|line| {
                let modifiers: Vec<Value> =
                    line.modifiers.iter().map(|m| json!({"groupId": m.group_id, "optionId": m.option_id})).collect();
                json!({
                    "itemId": line.item_id,
                    "variantId": line.variant_id,
                    "quantity": decimal(line.quantity_milli as i64, 1000),
                    "modifiers": modifiers,
                    "unitPrice": decimal(line.unit_price_paise, 100),
                    "lineTotal": decimal(line.line_total_paise, 100),
                })
            })
            .collect();
        let address = &order.delivery_address;
        let body = json!({
            "idempotencyKey": order.idempotency_key,
            "customerPhone": order.customer_phone.as_str(),
            "storeId": order.store_id,
            "items": items,
            "total": decimal(order.total_paise, 100),
            "paymentMethod": order.payment_method.as_str(),
            "deliveryAddress": {
                "contact_person_name": address.contact_name,
                "contact_person_number": address.contact_phone.as_ref().map(E164::as_str),
                "address": address.address,
                "landmark": address.landmark,
                "latitude": address.latitude.map(|l| l.to_string()),
                "longitude": address.longitude.map(|l| l.to_string()),
            },
            "source": ORDER_SOURCE,
            "note": order.note,
        });
        let call = Call {
            backend: Backend::Jupiter,
            operation: "create_order",
            method: Method::POST,
            url: self.url(Backend::Jupiter, "/api/order/create", &[])?,
            body: Some(body),
            retries: self.inner.config.read_retries,
            bypass_breaker: false,
        };
        match self.send(call).await? {
            Answer::Found(body) => model::created_order_from_json(&body)
                .ok_or_else(|| self.bad_response(Backend::Jupiter, "create_order", "an answer without orderId")),
            Answer::NotFound => Err(self.permanent(Backend::Jupiter, "create_order", 404, "no order endpoint", None)),
        }
    }

    /// The customer cancels their order (voice ordering: "order cancel
    /// karo"): Jupiter `POST /api/order/cancel`. Cancelling an order already
    /// cancelled succeeds, so a retried cancel is harmless; an order past
    /// the point of cancelling (picked up, delivered) is a permanent 409.
    /// Sent once; the caller is on the line and hears the outcome.
    pub async fn cancel_order(&self, id: &OrderId, reason: &str) -> Result<(), JupiterError> {
        self.inner.orders.invalidate(&id.as_str().to_string());
        let body = json!({"orderId": wire_id(id), "reason": reason, "cancelledBy": "customer", "source": ORDER_SOURCE});
        let answer = self.jupiter_write("cancel_order", "/api/order/cancel", body).await;
        self.inner.orders.invalidate(&id.as_str().to_string());
        answer
    }

    /// The link the customer pays an order by (UPI): Jupiter
    /// `POST /api/order/{id}/payment-link`. Jupiter answers the same link
    /// for the same order, so it is retried like a read.
    pub async fn payment_link(&self, id: &OrderId) -> Result<PaymentLink, JupiterError> {
        let call = Call {
            backend: Backend::Jupiter,
            operation: "payment_link",
            method: Method::POST,
            url: self.url(Backend::Jupiter, &format!("/api/order/{id}/payment-link"), &[])?,
            body: Some(json!({"source": ORDER_SOURCE})),
            retries: self.inner.config.read_retries,
            bypass_breaker: false,
        };
        match self.send(call).await? {
            Answer::Found(body) => model::payment_link_from_json(&body)
                .ok_or_else(|| self.bad_response(Backend::Jupiter, "payment_link", "an answer without url")),
            Answer::NotFound => Err(self.permanent(Backend::Jupiter, "payment_link", 404, "no such order", None)),
        }
    }

    /// Stores near a point (the customer's delivery address), nearest
    /// first, open and closed (`open` tells): Jupiter
    /// `GET /api/stores?lat=&lng=&limit=`. Without a point, every store in
    /// Jupiter's order. Cached like a store.
    pub async fn stores_near(&self, point: Option<(f64, f64)>, limit: usize) -> Result<Vec<NearbyStore>, JupiterError> {
        let (lat, lng) = match point {
            Some((lat, lng)) => (format!("{lat:.6}"), format!("{lng:.6}")),
            None => (String::new(), String::new()),
        };
        let limit_text = limit.to_string();
        let key = format!("{lat},{lng},{limit}");
        if let Some(stores) = self.inner.nearby_stores.get(&key) {
            return Ok(stores);
        }
        let mut query = vec![("limit", limit_text.as_str())];
        if point.is_some() {
            query.extend([("lat", lat.as_str()), ("lng", lng.as_str())]);
        }
        let stores = match self.jupiter(Method::GET, "stores_near", "/api/stores", &query, None).await? {
            Answer::Found(body) => model::nearby_stores_from_json(&body)
                .map_err(|message| self.bad_response(Backend::Jupiter, "stores_near", &message))?,
            Answer::NotFound => Vec::new(),
        };
        self.inner.nearby_stores.put(key, stores.clone());
        Ok(stores)
    }

    // -- health -------------------------------------------------------------

    /// Jupiter's `GET /health` (2xx), once, without retries. Returns the
    /// round-trip time.
    pub async fn health_jupiter(&self) -> Result<Duration, JupiterError> {
        let started = Instant::now();
        let call = Call {
            backend: Backend::Jupiter,
            operation: "health",
            method: Method::GET,
            url: self.url(Backend::Jupiter, "/health", &[])?,
            body: None,
            retries: 0,
            bypass_breaker: true,
        };
        match self.send(call).await? {
            Answer::Found(_) => Ok(started.elapsed()),
            Answer::NotFound => Err(self.permanent(Backend::Jupiter, "health", 404, "no /health endpoint", None)),
        }
    }

    /// The PHP site: any HTTP answer below 500 (Laravel answers `/` with
    /// 404) proves it is reachable.
    pub async fn health_php(&self) -> Result<Duration, JupiterError> {
        let started = Instant::now();
        let call = Call {
            backend: Backend::Php,
            operation: "health",
            method: Method::GET,
            url: self.url(Backend::Php, "/", &[])?,
            body: None,
            retries: 0,
            bypass_breaker: true,
        };
        match self.send(call).await {
            Ok(_) => Ok(started.elapsed()),
            Err(e) if matches!(e.kind, JupiterErrorKind::Permanent { .. } | JupiterErrorKind::BadResponse) => {
                Ok(started.elapsed())
            }
            Err(e) => Err(e),
        }
    }

    /// Forgets every cached answer.
    pub fn clear_caches(&self) {
        let inner = &self.inner;
        inner.orders.clear();
        inner.stores.clear();
        inner.stores_by_phone.clear();
        inner.riders.clear();
        inner.riders_by_phone.clear();
        inner.customers.clear();
        inner.catalog.clear();
        inner.store_catalogs.clear();
        inner.nearby_stores.clear();
    }

    /// Drops the cached copy of an order (after we changed it some other way).
    pub fn invalidate_order(&self, id: &OrderId) {
        self.inner.orders.invalidate(&id.as_str().to_string());
    }

    // -- plumbing -----------------------------------------------------------

    async fn jupiter(
        &self,
        method: Method,
        operation: &'static str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Answer, JupiterError> {
        let url = self.url(Backend::Jupiter, path, query)?;
        let retries = if method == Method::GET { self.inner.config.read_retries } else { 0 };
        self.send(Call { backend: Backend::Jupiter, operation, method, url, body, retries, bypass_breaker: false })
            .await
    }

    async fn jupiter_write(&self, operation: &'static str, path: &str, body: Value) -> Result<(), JupiterError> {
        match self.jupiter(Method::POST, operation, path, &[], Some(body)).await? {
            Answer::Found(_) => Ok(()),
            Answer::NotFound => Err(self.permanent(Backend::Jupiter, operation, 404, "not found", None)),
        }
    }

    async fn php(&self, operation: &'static str, path: &str, query: &[(&str, &str)]) -> Result<Answer, JupiterError> {
        let url = self.url(Backend::Php, path, query)?;
        let retries = self.inner.config.read_retries;
        self.send(Call {
            backend: Backend::Php,
            operation,
            method: Method::GET,
            url,
            body: None,
            retries,
            bypass_breaker: false,
        })
        .await
    }

    fn url(&self, backend: Backend, path: &str, query: &[(&str, &str)]) -> Result<Url, JupiterError> {
        let base = match backend {
            Backend::Jupiter => &self.inner.config.jupiter_url,
            Backend::Php => self.inner.config.php_url.as_ref().ok_or_else(|| {
                self.permanent(Backend::Php, "config", 0, "PHP_BACKEND_URL is not configured", Some("PHP_BACKEND_URL"))
            })?,
        };
        let joined = format!("{}{}", base.as_str().trim_end_matches('/'), path);
        let mut url = Url::parse(&joined)
            .map_err(|e| self.permanent(backend, "config", 0, format!("bad URL {joined}: {e}"), None))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    fn breaker(&self, backend: Backend) -> &Breaker {
        match backend {
            Backend::Jupiter => &self.inner.jupiter_breaker,
            Backend::Php => &self.inner.php_breaker,
        }
    }

    fn permanent(
        &self,
        backend: Backend,
        operation: &'static str,
        status: u16,
        message: impl Into<String>,
        field: Option<&str>,
    ) -> JupiterError {
        let status = (status != 0).then_some(status);
        JupiterError::new(
            backend,
            operation,
            JupiterErrorKind::Permanent { field: field.map(str::to_string) },
            status,
            message,
        )
    }

    fn bad_response(&self, backend: Backend, operation: &'static str, message: &str) -> JupiterError {
        JupiterError::new(backend, operation, JupiterErrorKind::BadResponse, Some(200), message)
    }

    /// Sends a call, retrying transient failures with backoff while
    /// `retries` last, through the backend's breaker.
    async fn send(&self, call: Call) -> Result<Answer, JupiterError> {
        let breaker = self.breaker(call.backend);
        let mut attempt = 0;
        loop {
            if !call.bypass_breaker
                && let Err(retry_in) = breaker.admit()
            {
                record(&call, "circuit_open", None);
                return Err(JupiterError::new(
                    call.backend,
                    call.operation,
                    JupiterErrorKind::CircuitOpen { retry_in },
                    None,
                    format!("{} is failing; circuit open for {} ms more", call.backend, retry_in.as_millis()),
                ));
            }
            let started = Instant::now();
            let result = self.attempt(&call).await;
            metrics::histogram!("mangwale_jupiter_request_seconds", "backend" => call.backend.name(), "op" => call.operation)
                .record(started.elapsed().as_secs_f64());
            match &result {
                Ok(_) => {
                    breaker.success();
                    record(&call, "ok", None);
                }
                Err(e) if e.is_transient() => {
                    breaker.failure();
                    record(&call, "transient", e.status);
                }
                Err(e) => {
                    // A refusal proves the backend is up.
                    breaker.success();
                    record(&call, "permanent", e.status);
                }
            }
            match result {
                Err(e) if e.is_transient() && attempt < call.retries => {
                    attempt += 1;
                    tracing::debug!(backend = %call.backend, op = call.operation, attempt, error = %e, "retrying");
                    tokio::time::sleep(backoff(self.inner.config.retry_base, call.retries, attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn attempt(&self, call: &Call) -> Result<Answer, JupiterError> {
        let config = &self.inner.config;
        let mut request = self.inner.http.request(call.method.clone(), call.url.clone());
        request = match call.backend {
            Backend::Jupiter => request.header("X-API-Key", &config.api_key).header("X-Service", SERVICE_NAME),
            Backend::Php => request.header("X-localization", &config.localization),
        }
        .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let transient = |status: Option<u16>, message: String| {
            JupiterError::new(call.backend, call.operation, JupiterErrorKind::Transient, status, message)
        };
        let response = request.send().await.map_err(|e| {
            let why = if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                "connection refused or unreachable".to_string()
            } else {
                format!("request failed: {}", without_url(&e))
            };
            transient(None, why)
        })?;
        let status = response.status().as_u16();
        let bytes = crate::body::read_capped(response, MAX_ANSWER_BYTES).await.map_err(|e| match e {
            // Asking again brings the same oversized answer.
            too_large @ crate::body::BodyError::TooLarge { .. } => JupiterError::new(
                call.backend,
                call.operation,
                JupiterErrorKind::BadResponse,
                Some(status),
                too_large.to_string(),
            ),
            e => transient(Some(status), format!("reading the answer: {}", e.describe(|e| without_url(&e)))),
        })?;
        if (200..300).contains(&status) {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Answer::Found(Value::Null));
            }
            return serde_json::from_slice(&bytes).map(Answer::Found).map_err(|e| {
                JupiterError::new(
                    call.backend,
                    call.operation,
                    JupiterErrorKind::BadResponse,
                    Some(status),
                    format!("not JSON: {e}"),
                )
            });
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let message = error_message(&body).unwrap_or_else(|| format!("HTTP {status}"));
        if status == 404 && call.method == Method::GET {
            return Ok(Answer::NotFound);
        }
        if JupiterError::transient_status(status) {
            return Err(transient(Some(status), message));
        }
        let field = body.get("field").and_then(Value::as_str);
        Err(self.permanent(call.backend, call.operation, status, message, field))
    }
}

fn record(call: &Call, outcome: &'static str, status: Option<u16>) {
    metrics::counter!("mangwale_jupiter_requests_total",
        "backend" => call.backend.name(), "op" => call.operation, "outcome" => outcome)
    .increment(1);
    if outcome != "ok" {
        tracing::debug!(backend = %call.backend, op = call.operation, outcome, status, "jupiter request failed");
    }
}

/// The shared policy ([`crate::retry`]), capped at 1024 × `base` as the
/// reads always were.
fn backoff(base: Duration, retries: u32, attempt: u32) -> Duration {
    crate::retry::RetryPolicy::new(retries, base, base.saturating_mul(1024)).backoff(attempt)
}

/// reqwest's errors name the URL, which may carry a phone number.
fn without_url(e: &reqwest::Error) -> String {
    mangwale_core::mask_phone_numbers(&e.to_string()).into_owned()
}

/// `{"error": …}` (Jupiter), `{"message": …}` or
/// `{"errors": [{"message": …}]}` (6amMart).
fn error_message(body: &Value) -> Option<String> {
    let message = body
        .get("error")
        .and_then(|e| {
            e.as_str().map(str::to_string).or_else(|| e.get("message").and_then(Value::as_str).map(str::to_string))
        })
        .or_else(|| body.get("message").and_then(Value::as_str).map(str::to_string))
        .or_else(|| body.pointer("/errors/0/message").and_then(Value::as_str).map(str::to_string))?;
    Some(mangwale_core::mask_phone_numbers(&message).into_owned())
}

/// Whose active orders to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyRef {
    Customer(u64),
    Rider(u64),
    Store(u64),
}

impl PartyRef {
    fn id(self) -> u64 {
        match self {
            PartyRef::Customer(id) | PartyRef::Rider(id) | PartyRef::Store(id) => id,
        }
    }

    fn param(self) -> &'static str {
        match self {
            PartyRef::Customer(_) => "customer_id",
            PartyRef::Rider(_) => "rider_id",
            PartyRef::Store(_) => "store_id",
        }
    }
}

/// The 10 digits the PHP database stores for an Indian number.
fn national_digits(phone: &E164) -> String {
    phone.as_str().strip_prefix("+91").unwrap_or(phone.as_str()).trim_start_matches('+').to_string()
}

/// Ids that are a plain number travel as numbers, as Jupiter keeps them;
/// every other id (`MW-2025-001234`, and `001234`, whose leading zeros a
/// number would lose) travels as the string it is.
fn wire_id(id: &OrderId) -> Value {
    match id.as_str().parse::<u64>() {
        Ok(n) if n.to_string() == id.as_str() => json!(n),
        _ => json!(id.as_str()),
    }
}

/// `units / scale` as a JSON number: a whole number stays an integer (what
/// a client of the older contract sends), else a decimal (`1.5`, `12.5`).
fn decimal(units: i64, scale: i64) -> Value {
    if units % scale == 0 { json!(units / scale) } else { json!(units as f64 / scale as f64) }
}

/// The first element of an array answer (or of `{key: [...]}` /
/// `{"data": [...]}`).
fn first_of<'a>(body: &'a Value, key: &str) -> Option<&'a Value> {
    let list = body
        .as_array()
        .or_else(|| body.get(key).and_then(Value::as_array))
        .or_else(|| body.get("data").and_then(Value::as_array))?;
    list.first()
}

fn items_of(body: &Value, key: &str) -> Vec<CatalogItem> {
    body.get(key)
        .or_else(|| body.get("data"))
        .and_then(Value::as_array)
        .or_else(|| body.as_array())
        .map(|items| items.iter().filter_map(model::catalog_item_from_json).collect())
        .unwrap_or_default()
}
