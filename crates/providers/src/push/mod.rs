//! App push notifications to vendors, riders and customers, through one of
//! two interchangeable backends chosen by [`PushConfig`]:
//!
//! - **FCM HTTP v1** (`POST {base}/v1/projects/{project}/messages:send`),
//!   authorised by an OAuth2 access token obtained with a service-account
//!   key (an RS256 JWT-bearer grant). The token is cached until shortly
//!   before it expires, shared by every send, and refreshed once when FCM
//!   answers 401. A push goes to the device's registration token when the
//!   caller has one ([`PushMessage::with_token`]), else to the FCM topic
//!   `<role>_<id>` the app subscribes to. Topics are public (any install
//!   may subscribe to `customer_890`), so a topic message must carry
//!   nothing personal: the client refuses one with a phone number in it,
//!   and one whose payload passes FCM's 2,048-byte topic limit.
//! - **The Mangwale app backend** (`POST {url}/api/push/send` with
//!   `X-API-Key`), which knows the devices itself.
//!
//! Transient failures (408, 429, 5xx, timeouts, lost connections) are
//! retried with jittered exponential backoff, or after the server's
//! `Retry-After`; everything else fails at once with a [`PushError`] that
//! says whether the recipient has no device, our credentials are refused,
//! or the message was. Neither the access token, the key, the API key, nor
//! a message's text reaches the logs; recipient ids are logged with phone
//! numbers masked.

mod app;
mod config;
mod error;
mod fcm;
#[doc(hidden)]
pub mod fuzz;
mod service_account;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
pub use mangwale_core::clock::Clock;
use mangwale_core::mask_phone_numbers;

/// The retry policy of every provider client (see [`crate::retry`]).
pub use crate::retry::RetryPolicy;
pub use config::{
    APP_PUSH_API_KEY, APP_PUSH_URL, AppBackendConfig, FCM_BASE_URL, FCM_DEFAULT_BASE_URL, FCM_PROJECT_ID,
    FCM_SERVICE_ACCOUNT_JSON, FcmConfig, PUSH_PROVIDER, PushConfig, PushConfigError, PushEnv,
};
pub use error::{PushBackend, PushError, PushErrorKind, QUOTA_EXCEEDED_WAIT};
pub use service_account::{
    ASSERTION_LIFETIME_SECS, FCM_SCOPE, GOOGLE_TOKEN_URI, InvalidServiceAccount, ServiceAccountKey,
};

/// Who a push is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Vendor,
    Rider,
    Customer,
}

impl Role {
    /// `vendor`, `rider`, `customer`: the topic prefix and the app
    /// backend's `recipientType`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Vendor => "vendor",
            Role::Rider => "rider",
            Role::Customer => "customer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A vendor, rider or customer, by their id in Mangwale (`V-42`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Recipient {
    pub role: Role,
    pub id: String,
}

/// The longest topic name FCM accepts.
pub const MAX_TOPIC_LEN: usize = 900;

/// FCM's payload limit of a message to a topic, keys and values together
/// (FCM ErrorCode reference, INVALID_ARGUMENT "Message too big": "4096
/// bytes for most messages, or 2048 bytes in the case of messages to
/// topics. This includes both the keys and the values").
pub const MAX_TOPIC_PAYLOAD: usize = 2048;
/// FCM's payload limit of a message to a registration token.
pub const MAX_TOKEN_PAYLOAD: usize = 4096;

impl Recipient {
    pub fn new(role: Role, id: impl Into<String>) -> Self {
        Recipient { role, id: id.into() }
    }

    pub fn vendor(id: impl Into<String>) -> Self {
        Recipient::new(Role::Vendor, id)
    }

    pub fn rider(id: impl Into<String>) -> Self {
        Recipient::new(Role::Rider, id)
    }

    pub fn customer(id: impl Into<String>) -> Self {
        Recipient::new(Role::Customer, id)
    }

    /// The FCM topic this recipient's app subscribes to: `<role>_<id>`
    /// (`vendor_V-42`). FCM topics allow only `[a-zA-Z0-9-_.~%]`, so every
    /// other byte of the id, and `%` itself, is percent-encoded
    /// (`V 42` → `V%2042`): distinct ids keep distinct topics, and the ids
    /// in use (`V-42`, digits) are unchanged. The apps must encode alike.
    pub fn topic(&self) -> String {
        let mut topic = format!("{}_", self.role.as_str());
        for byte in self.id.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
                topic.push(char::from(byte));
            } else {
                topic.push_str(&format!("%{byte:02X}"));
            }
        }
        topic
    }

    /// `vendor_V-42` with any phone number in the id masked, for logs.
    pub fn masked(&self) -> String {
        format!("{}_{}", self.role.as_str(), mask_phone_numbers(&self.id))
    }
}

/// How long an undelivered push is worth keeping when none is given: an
/// order alert older than a few minutes has been overtaken by a call.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// A notification for one recipient's app.
#[derive(Clone, PartialEq, Eq)]
pub struct PushMessage {
    pub recipient: Recipient,
    /// The device's FCM registration token, when the caller knows it: the
    /// push goes to that device instead of the recipient's public topic.
    /// Ignored by the app backend, which finds the devices itself.
    pub token: Option<String>,
    pub title: String,
    pub body: String,
    /// Key-value pairs the app reads (`orderId`, `action`); FCM allows
    /// string values only.
    pub data: BTreeMap<String, String>,
    /// Pushes with the same key replace each other while the device is
    /// offline, so only the latest is delivered when it comes back.
    pub collapse_key: Option<String>,
    /// How long FCM (or the app backend) keeps the push for an offline
    /// device before dropping it. FCM caps it at four weeks.
    pub ttl: Duration,
}

impl PushMessage {
    pub fn new(recipient: Recipient, title: impl Into<String>, body: impl Into<String>) -> Self {
        PushMessage {
            recipient,
            token: None,
            title: title.into(),
            body: body.into(),
            data: BTreeMap::new(),
            collapse_key: None,
            ttl: DEFAULT_TTL,
        }
    }

    pub fn with_data(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.data.insert(key.into(), value.into());
        self
    }

    pub fn with_collapse_key(mut self, key: impl Into<String>) -> Self {
        self.collapse_key = Some(key.into());
        self
    }

    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into()).filter(|t: &String| !t.trim().is_empty());
        self
    }

    /// The bytes FCM counts against its payload limit: the keys and values
    /// of `data` and of the notification's title and body.
    pub fn payload_bytes(&self) -> usize {
        let data: usize = self.data.iter().map(|(k, v)| k.len() + v.len()).sum();
        data + "title".len() + self.title.len() + "body".len() + self.body.len()
    }
}

/// Masks phone numbers: titles and bodies carry customers' details.
impl fmt::Debug for PushMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data: BTreeMap<&str, std::borrow::Cow<'_, str>> =
            self.data.iter().map(|(k, v)| (k.as_str(), mask_phone_numbers(v))).collect();
        f.debug_struct("PushMessage")
            .field("recipient", &self.recipient.masked())
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("title", &mask_phone_numbers(&self.title))
            .field("body", &mask_phone_numbers(&self.body))
            .field("data", &data)
            .field("collapse_key", &self.collapse_key)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// A push the backend accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentPush {
    /// FCM's message id (the `<id>` of `projects/<p>/messages/<id>`) or the
    /// app backend's `messageId`.
    pub provider_id: String,
}

/// Where the client takes time from: "now" (the access token's expiry) is
/// the service's one [`Clock`]; this adds the waits between retries.
/// Production uses [`SystemClock`]; tests pass a clock they move, so that
/// expiry and `Retry-After` cost no real time.
pub trait PushClock: Clock {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

impl PushClock for SystemClock {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The backend and the client's timeouts and retries.
#[derive(Debug, Clone)]
pub struct PushClientConfig {
    pub backend: PushConfig,
    /// Whole-request timeout, of the token grant and of a send alike.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
}

impl PushClientConfig {
    pub fn new(backend: PushConfig) -> Self {
        PushClientConfig {
            backend,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            retry: RetryPolicy::new(3, Duration::from_millis(250), Duration::from_secs(10)),
        }
    }
}

/// The push client. Cheap to clone; clones share the connection pool and
/// the cached access token.
#[derive(Clone)]
pub struct PushClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    backend: Backend,
    retry: RetryPolicy,
    clock: Arc<dyn PushClock>,
}

enum Backend {
    Fcm(fcm::Fcm),
    App(app::AppBackend),
}

impl fmt::Debug for PushClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushClient").field("backend", &self.backend()).finish_non_exhaustive()
    }
}

impl PushClient {
    pub fn new(config: PushClientConfig) -> Self {
        PushClient::with_clock(config, Arc::new(SystemClock))
    }

    pub fn with_clock(config: PushClientConfig, clock: Arc<dyn PushClock>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("mangwale-exotel/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let backend = match config.backend {
            PushConfig::Fcm(fcm) => Backend::Fcm(fcm::Fcm::new(fcm)),
            PushConfig::AppBackend(app) => Backend::App(app::AppBackend::new(app)),
        };
        PushClient { inner: Arc::new(Inner { http, backend, retry: config.retry, clock }) }
    }

    /// Whether pushes without a registration token go to a public FCM topic
    /// (then they must carry nothing personal), rather than to the app
    /// backend, which addresses the recipient's own devices.
    pub fn sends_to_topics(&self) -> bool {
        matches!(self.inner.backend, Backend::Fcm(_))
    }

    pub fn backend(&self) -> PushBackend {
        match self.inner.backend {
            Backend::Fcm(_) => PushBackend::Fcm,
            Backend::App(_) => PushBackend::AppBackend,
        }
    }

    /// Sends one push, retrying transient failures.
    ///
    /// A retry after a timeout or a lost connection may deliver the push
    /// twice: neither FCM nor the app backend de-duplicates sends. We accept
    /// that on purpose: a second "new order" buzz is harmless, a vendor who
    /// never hears of an order is not. With a `collapse_key`, a device that
    /// was offline meanwhile receives only one of them.
    pub async fn send(&self, message: &PushMessage) -> Result<SentPush, PushError> {
        let inner = &self.inner;
        let backend = self.backend();
        let recipient = message.recipient.masked();
        let mut retries = 0;
        loop {
            let started = std::time::Instant::now();
            let result = match &inner.backend {
                Backend::Fcm(fcm) => fcm.attempt(&inner.http, inner.clock.as_ref(), message).await,
                Backend::App(app) => app.attempt(&inner.http, inner.clock.as_ref(), message).await,
            };
            metrics::histogram!("mangwale_push_request_seconds", "backend" => backend.name())
                .record(started.elapsed().as_secs_f64());
            let error = match result {
                Ok(sent) => {
                    record(backend, "ok");
                    let attempt = retries + 1;
                    tracing::debug!(%backend, %recipient, attempt, provider_id = %sent.provider_id, "push sent");
                    return Ok(sent);
                }
                Err(error) => error,
            };
            let outcome = outcome(&error);
            record(backend, outcome);
            let min_wait = error.min_wait();
            let delay =
                error.is_transient().then(|| inner.retry.next_delay(retries, error.retry_after(), min_wait)).flatten();
            if let Some(delay) = delay {
                tracing::debug!(
                    %backend, %recipient, attempt = retries + 1, outcome, status = error.status,
                    code = error.code.as_deref(), error = %error, retry_in_ms = delay.as_millis() as u64,
                    "push failed; retrying"
                );
                retries += 1;
                inner.clock.sleep(delay).await;
                continue;
            }
            // What the caller must wait before sending again: FCM's minute
            // after QUOTA_EXCEEDED, or the server's Retry-After.
            let error = if error.is_transient() {
                let retry_after = crate::retry::handed_back_wait(error.retry_after(), min_wait);
                error.with_retry_after(retry_after)
            } else {
                error
            };
            if error.is_unregistered() {
                tracing::info!(%backend, %recipient, code = error.code.as_deref(), "push recipient has no device");
            } else {
                tracing::warn!(
                    %backend, %recipient, attempts = retries + 1, outcome, status = error.status,
                    code = error.code.as_deref(), error = %error, "push failed"
                );
            }
            return Err(error);
        }
    }
}

fn outcome(error: &PushError) -> &'static str {
    match error.kind {
        PushErrorKind::Transient => "transient",
        PushErrorKind::Unregistered => "unregistered",
        PushErrorKind::Auth => "auth",
        PushErrorKind::Rejected => "rejected",
        PushErrorKind::Invalid => "invalid",
        PushErrorKind::BadResponse => "bad_response",
    }
}

fn record(backend: PushBackend, outcome: &'static str) {
    metrics::counter!("mangwale_push_requests_total", "backend" => backend.name(), "outcome" => outcome).increment(1);
}

/// Refuses what no backend can deliver, before anything is sent.
fn check_recipient(backend: PushBackend, recipient: &Recipient) -> Result<(), PushError> {
    let invalid = |m: &str| PushError::new(backend, "send", PushErrorKind::Invalid, None, m);
    if recipient.id.trim().is_empty() {
        return Err(invalid("the recipient id is empty"));
    }
    if backend == PushBackend::Fcm && recipient.topic().len() > MAX_TOPIC_LEN {
        return Err(invalid("the recipient id is too long for an FCM topic"));
    }
    Ok(())
}

/// Refuses an FCM message FCM would refuse as too big, and a topic message
/// with a phone number in it (a topic is public: any install can subscribe
/// to `customer_890`).
fn check_fcm_payload(message: &PushMessage) -> Result<(), PushError> {
    let invalid = |m: String| PushError::new(PushBackend::Fcm, "send", PushErrorKind::Invalid, None, m);
    let (limit, to) = match message.token {
        Some(_) => (MAX_TOKEN_PAYLOAD, "a registration token"),
        None => (MAX_TOPIC_PAYLOAD, "a topic"),
    };
    let size = message.payload_bytes();
    if size > limit {
        return Err(invalid(format!("the payload is {size} bytes; FCM takes at most {limit} for {to}")));
    }
    if message.token.is_none() {
        let texts = [message.title.as_str(), message.body.as_str()]
            .into_iter()
            .chain(message.data.values().map(String::as_str));
        if texts.into_iter().any(|t| mask_phone_numbers(t) != t) {
            return Err(invalid("a topic message must not carry a phone number: topics are public".into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_role_and_id_in_fcms_charset() {
        assert_eq!(Recipient::vendor("V-42").topic(), "vendor_V-42");
        assert_eq!(Recipient::rider("17").topic(), "rider_17");
        assert_eq!(Recipient::customer("a b/ç%").topic(), "customer_a%20b%2F%C3%A7%25");
        assert_ne!(Recipient::vendor("a b").topic(), Recipient::vendor("a%20b").topic());
        let topic = Recipient::customer("+91 98765~x.y_z").topic();
        assert!(topic.chars().all(|c| c.is_ascii_alphanumeric() || "-_.~%".contains(c)), "{topic}");
    }

    #[test]
    fn debug_masks_phone_numbers_and_logs_mask_ids() {
        let message = PushMessage::new(Recipient::customer("9876543210"), "Call 9876543210", "at +919876543210")
            .with_data("phone", "09876543210");
        let debug = format!("{message:?}");
        assert!(!debug.contains("9876543210") && debug.contains("98xxxxx210"), "{debug}");
        assert_eq!(Recipient::customer("9876543210").masked(), "customer_98xxxxx210");
    }

    #[test]
    fn topic_messages_are_small_and_impersonal() {
        let base = PushMessage::new(Recipient::customer("890"), "Order MW-2025-001234", "Your order is on its way");
        assert!(check_fcm_payload(&base).is_ok());
        let big = base.clone().with_data("items", "x".repeat(MAX_TOPIC_PAYLOAD));
        let error = check_fcm_payload(&big).unwrap_err();
        assert!(error.kind == PushErrorKind::Invalid && error.message.contains("2048"), "{error}");
        assert!(check_fcm_payload(&big.clone().with_token("tok-1")).is_ok(), "4096 for a token");
        let personal = base.clone().with_data("drop", "call 9876543210");
        assert_eq!(check_fcm_payload(&personal).unwrap_err().kind, PushErrorKind::Invalid);
        assert!(check_fcm_payload(&personal.with_token("tok-1")).is_ok(), "a token reaches one device");
        assert_eq!(base.payload_bytes(), "title".len() + 20 + "body".len() + 24);
    }

    #[test]
    fn quota_exceeded_waits_a_minute() {
        let quota = PushError::new(PushBackend::Fcm, "send", PushErrorKind::Transient, Some(429), "quota")
            .with_code(Some("QUOTA_EXCEEDED".into()));
        assert_eq!(quota.min_wait(), Duration::from_secs(60));
        let policy = RetryPolicy::new(3, Duration::from_millis(100), Duration::from_secs(10));
        assert_eq!(policy.next_delay(0, quota.retry_after(), quota.min_wait()), None, "handed back to the queue");
        let down = PushError::new(PushBackend::Fcm, "send", PushErrorKind::Transient, Some(503), "down");
        assert_eq!(down.min_wait(), Duration::ZERO);
    }
}
