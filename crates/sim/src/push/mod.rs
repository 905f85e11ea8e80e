//! A simulator of app push: Google's OAuth token endpoint and FCM HTTP v1
//! as the FCM backend sees them, and the Mangwale app backend's push
//! endpoint, on one loopback listener.
//!
//! Start it in-process with [`PushSim::start`] (tests, sandbox mode) or on
//! its own with [`run_standalone`]. Point the FCM client's base URL and the
//! app backend URL at [`PushSim::url`], and give the FCM client
//! [`PushSim::service_account_json`]: a key file whose `token_uri` is the
//! simulator's `/token`, signed with the test-only key the simulator was
//! configured with.
//!
//! | method | path | answer |
//! |---|---|---|
//! | POST | `/token` | the JWT-bearer grant: `{"access_token", "expires_in", "token_type": "Bearer"}`; 400 `{"error": "invalid_grant"}` for a bad signature, unknown `kid` or `iss`, wrong `aud`, or `iat`/`exp` out of range; `invalid_scope` without `scope`; `unsupported_grant_type` |
//! | POST | `/v1/projects/{p}/messages:send` | `{"name": "projects/{p}/messages/{id}"}`; 401 UNAUTHENTICATED without a live issued token; 403 PERMISSION_DENIED for another project or a token without the FCM scope; 400 INVALID_ARGUMENT for a malformed message; or what the recipient's script says |
//! | POST | `/api/push/send` | `{"success": true, "messageId"}`; 401 without the `X-API-Key`; 400 `{"success": false, "error", "field"}`; or what the recipient's script says |
//! | * | `/_sim/…` | control endpoints (below) |
//!
//! Messages are checked as FCM checks them: exactly one of `token`,
//! `topic`, `condition`; a topic in `[a-zA-Z0-9-_.~%]{1,900}`; string data
//! values and no reserved data keys; `android.ttl` as `\d+(\.\d{1,9})?s`,
//! at most four weeks; `android.priority` `normal` or `high`; no unknown
//! fields; the keys and values of notification and data together at most
//! 4096 bytes, and 2048 bytes for a message to a topic (FCM's limits);
//! `apns-expiration` as UNIX seconds and `apns-collapse-id` of at most 64
//! bytes, as APNs takes them.
//!
//! # Recipients
//!
//! Each recipient behaves as scripted with [`PushSim::script`] (default
//! [`PushScript::Delivers`]). An FCM recipient is its topic (`vendor_V-42`),
//! token or condition; an app-backend recipient is
//! `<recipientType>_<recipientId>` — so one script covers both backends.
//! [`PushScript::Fails`] answers FCM with the error FCM documents for that
//! status: 400 `INVALID_ARGUMENT`, 401 `THIRD_PARTY_AUTH_ERROR`, 403
//! `SENDER_ID_MISMATCH`, 404 `UNREGISTERED`, 429 `QUOTA_EXCEEDED`, 500
//! `INTERNAL`, 503 `UNAVAILABLE`, others `UNSPECIFIED_ERROR`.
//! [`PushScript::Unregistered`] is a token's state: a push to a topic
//! scripted so (nobody subscribes) is accepted, as FCM accepts it.
//!
//! # Misbehaviour
//!
//! Every request is recorded ([`PushSim::received`]), faulted and refused
//! ones included, and every accepted push ([`PushSim::deliveries`]). An
//! injected fault ([`PushSim::inject_fault`]) applies to the next requests
//! of an endpoint before anything else is looked at: an error status
//! (Google-shaped; a 401 is the plain UNAUTHENTICATED of a bad token), a 429
//! with `Retry-After`, a closed connection with no effect, or a closed
//! connection after the push was delivered.
//!
//! # Time
//!
//! Token lifetimes run on the [`SimClock`] of the configuration: with a
//! manual clock, [`PushSim::advance`] makes tokens expire.
//!
//! # Control endpoints
//!
//! `GET /_sim` (summary), `GET /_sim/service-account` (the key file),
//! `POST /_sim/script` `{"recipient", "script": {"kind": "unregistered"}}`,
//! `POST /_sim/faults` `{"endpoint": "fcm_send", "fault": {"kind":
//! "status", "status": 503}, "times": 2}`, `DELETE /_sim/faults`,
//! `GET /_sim/log` (requests, deliveries, tokens), `GET /_sim/deliveries`
//! (the pushes accepted, each with its recipient, title, body and data),
//! `DELETE /_sim/log`,
//! `POST /_sim/revoke-tokens`, `POST /_sim/advance` `{"seconds"}`.

mod app;
mod control;
mod fcm;
mod oauth;
mod server;
mod state;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::{fmt, io};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::{SimClock, lock};
use state::State;

/// TEST ONLY — never use for anything real. The private key of the
/// simulated service account (RSA 2048, PKCS#8), committed so that tests
/// and the sandbox can sign grants the simulator accepts.
pub const TEST_PRIVATE_KEY_PEM: &str = include_str!("../../data/push-test-only-service-account.key.pem");
/// TEST ONLY. The public half of [`TEST_PRIVATE_KEY_PEM`] (SubjectPublicKeyInfo).
pub const TEST_PUBLIC_KEY_PEM: &str = include_str!("../../data/push-test-only-service-account.pub.pem");
/// TEST ONLY. A second, unrelated key: a grant signed with it is refused,
/// as Google refuses a key that is not the account's.
pub const OTHER_TEST_PRIVATE_KEY_PEM: &str = include_str!("../../data/push-test-only-other.key.pem");

/// The scope FCM requires of an access token.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// The catch-all scope, which FCM accepts too.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Configuration of a [`PushSim`].
#[derive(Clone)]
pub struct PushSimConfig {
    /// The Firebase project `messages:send` accepts.
    pub project_id: String,
    /// The service account grants must come from (`iss`).
    pub client_email: String,
    /// The `kid` grants must name.
    pub private_key_id: String,
    /// The service account's private key (PKCS#8 PEM). The simulator
    /// verifies grants against its public half, and puts it in
    /// [`PushSim::service_account_json`].
    pub private_key_pem: String,
    /// The app backend's `X-API-Key`.
    pub app_api_key: String,
    /// `expires_in` of issued access tokens.
    pub token_lifetime: Duration,
    pub clock: SimClock,
    /// Seeds message ids and tokens, for reproducible runs.
    pub seed: u64,
}

impl Default for PushSimConfig {
    /// The test key, project `mangwale-sim`, hour-long tokens, system clock.
    fn default() -> Self {
        PushSimConfig {
            project_id: "mangwale-sim".to_string(),
            client_email: "push-sim@mangwale-sim.iam.gserviceaccount.com".to_string(),
            private_key_id: "sim-key-1".to_string(),
            private_key_pem: TEST_PRIVATE_KEY_PEM.to_string(),
            app_api_key: "sim-app-push-key".to_string(),
            token_lifetime: Duration::from_secs(3600),
            clock: SimClock::system(),
            seed: 42,
        }
    }
}

impl fmt::Debug for PushSimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushSimConfig")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("private_key_pem", &"***")
            .field("app_api_key", &"***")
            .field("token_lifetime", &self.token_lifetime)
            .field("clock", &self.clock)
            .finish()
    }
}

/// How a recipient's pushes fare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PushScript {
    /// Accepted and delivered.
    #[default]
    Delivers,
    /// FCM to a token: 404 `UNREGISTERED`; FCM to a topic: accepted (a
    /// topic without subscribers is no error); app backend: 404 "no device
    /// registered".
    Unregistered,
    /// This status with the error FCM documents for it (see the module
    /// doc), or the app backend's `{"success": false, "error"}`.
    Fails { status: u16 },
}

/// The simulator's endpoints, for faults and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushEndpoint {
    /// `POST /token`
    Token,
    /// `POST /v1/projects/{p}/messages:send`
    FcmSend,
    /// `POST /api/push/send`
    AppSend,
    /// Every endpoint (only as a fault target).
    Any,
}

/// A misbehaviour for the next requests of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PushFault {
    /// Answer with this status and the endpoint's error body; no effect.
    Status { status: u16 },
    /// 429 with `Retry-After: <secs>` (FCM: `QUOTA_EXCEEDED`); no effect.
    RateLimited { retry_after_secs: u64 },
    /// Close the connection without answering; no effect.
    Drop,
    /// Handle the request (deliver the push, issue the token), then close
    /// the connection without answering: the client cannot know.
    DropAfterProcessing,
}

impl PushFault {
    pub fn status(status: u16) -> Self {
        PushFault::Status { status }
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        PushFault::RateLimited { retry_after_secs }
    }
}

/// The credentials a request carried.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuthUsed {
    None,
    /// `Authorization: Bearer <token>`.
    Bearer {
        token: String,
    },
    /// `X-API-Key`.
    ApiKey {
        key: String,
    },
    /// A JWT-bearer grant: the assertion's `kid` and claims, decoded as
    /// sent (whether or not the signature held).
    JwtGrant {
        kid: Option<String>,
        claims: Value,
    },
    /// Some other `Authorization` header.
    Other {
        scheme: String,
    },
}

/// A request as the simulator received it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushRequest {
    /// Order of arrival, from 1.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub endpoint: Option<PushEndpoint>,
    pub auth: AuthUsed,
    /// A send's JSON body (FCM's `{"message": …}`, or the app backend's).
    pub body: Option<Value>,
    /// A token request's form fields.
    pub form: Vec<(String, String)>,
    /// Who a send was for, once the body could be read (see the module doc).
    pub recipient: Option<String>,
    pub fault: Option<PushFault>,
    /// The status answered; `None` while in flight or when dropped.
    pub status: Option<u16>,
    /// Why it was refused: the error code and message answered.
    pub error: Option<String>,
    pub dropped: bool,
}

impl PushRequest {
    /// The FCM message (`body.message`), or the app backend's body.
    pub fn message(&self) -> Option<&Value> {
        let body = self.body.as_ref()?;
        match self.endpoint {
            Some(PushEndpoint::FcmSend) => body.get("message"),
            _ => Some(body),
        }
    }

    pub fn bearer_token(&self) -> Option<&str> {
        match &self.auth {
            AuthUsed::Bearer { token } => Some(token),
            _ => None,
        }
    }
}

/// A push the simulator accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The request's `seq`.
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// [`PushEndpoint::FcmSend`] or [`PushEndpoint::AppSend`].
    pub via: PushEndpoint,
    pub recipient: String,
    /// FCM's `<id>` of the message name, or the app backend's `messageId`.
    pub message_id: String,
    pub title: Option<String>,
    pub body: Option<String>,
    pub data: BTreeMap<String, String>,
    pub ttl: Option<Duration>,
    pub collapse_key: Option<String>,
    /// `android.priority` (FCM only).
    pub priority: Option<String>,
}

/// An access token the token endpoint issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuedToken {
    pub token: String,
    pub client_email: String,
    pub scopes: Vec<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
}

pub(crate) struct Inner {
    config: PushSimConfig,
    /// The public half of the configured key (PKCS#1 DER).
    public_key: Vec<u8>,
    base_url: String,
    state: Mutex<State>,
}

impl Inner {
    fn token_uri(&self) -> String {
        format!("{}/token", self.base_url)
    }

    fn now(&self) -> DateTime<Utc> {
        self.config.clock.now()
    }

    /// A service-account key file as Google hands it out, for this account.
    fn key_file(&self, private_key_pem: &str) -> Value {
        let c = &self.config;
        json!({
            "type": "service_account",
            "project_id": c.project_id,
            "private_key_id": c.private_key_id,
            "private_key": private_key_pem,
            "client_email": c.client_email,
            "client_id": "100000000000000000042",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri(),
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        })
    }
}

/// Stops the listener when the last clone of the simulator goes away.
struct Listener {
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = lock(&self.task).as_ref() {
            task.abort();
        }
    }
}

/// A running push simulator; clones share it. Dropping the last clone stops it.
#[derive(Clone)]
pub struct PushSim {
    inner: Arc<Inner>,
    listener: Arc<Listener>,
    addr: SocketAddr,
}

impl fmt::Debug for PushSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushSim").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl PushSim {
    /// Listens on a free loopback port.
    pub async fn start(config: PushSimConfig) -> io::Result<PushSim> {
        PushSim::start_on(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    async fn start_on(config: PushSimConfig, addr: SocketAddr) -> io::Result<PushSim> {
        let public_key = public_key_of(&config.private_key_pem)
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, format!("private_key_pem: {why}")))?;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = State::new(config.seed);
        let inner =
            Arc::new(Inner { config, public_key, base_url: format!("http://{addr}"), state: Mutex::new(state) });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(server::serve(inner.clone(), listener, shutdown_rx));
        let listener = Arc::new(Listener { shutdown, task: Mutex::new(Some(task)) });
        Ok(PushSim { inner, listener, addr })
    }

    /// Answers a control request as `/_sim/{path}` would (`path` without
    /// the `/_sim/` prefix; `""` for the index): the HTTP status and the
    /// JSON body (the service serves them as `/_sim/push/…` in sandbox mode).
    pub fn control(&self, method: &http::Method, path: &str, body: &[u8]) -> (u16, Value) {
        let path = match path.trim_matches('/') {
            "" => "/_sim".to_string(),
            rest => format!("/_sim/{rest}"),
        };
        control::answer(&self.inner, method, &path, body).unwrap_or_else(|e| e)
    }

    /// `http://127.0.0.1:<port>`, no trailing slash: FCM's base URL and the
    /// app backend's URL alike.
    pub fn url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// `{url}/token`, the `token_uri` of the key file.
    pub fn token_uri(&self) -> String {
        self.inner.token_uri()
    }

    pub fn config(&self) -> &PushSimConfig {
        &self.inner.config
    }

    pub fn project_id(&self) -> &str {
        &self.inner.config.project_id
    }

    pub fn app_api_key(&self) -> &str {
        &self.inner.config.app_api_key
    }

    /// The key file of the simulated service account, as Google hands it
    /// out, with `token_uri` pointing here. TEST ONLY: it holds the test key.
    pub fn service_account_json(&self) -> String {
        self.service_account_json_with_key(&self.inner.config.private_key_pem)
    }

    /// The same key file with another private key in it (a grant signed
    /// with it fails the signature check unless it is the configured key).
    pub fn service_account_json_with_key(&self, private_key_pem: &str) -> String {
        self.inner.key_file(private_key_pem).to_string()
    }

    /// How pushes to `recipient` fare from now on (see the module doc for
    /// what a recipient is). [`PushScript::Delivers`] restores the default.
    pub fn script(&self, recipient: &str, script: PushScript) {
        lock(&self.inner.state).set_script(recipient, script);
    }

    /// Applies `fault` to the next `times` requests of `endpoint`. Faults
    /// apply in the order they were injected.
    pub fn inject_fault(&self, endpoint: PushEndpoint, fault: PushFault, times: u32) {
        lock(&self.inner.state).add_fault(endpoint, fault, times);
    }

    pub fn clear_faults(&self) {
        lock(&self.inner.state).clear_faults();
    }

    /// Every request received, oldest first.
    pub fn received(&self) -> Vec<PushRequest> {
        lock(&self.inner.state).received()
    }

    /// The requests received on one endpoint, oldest first.
    pub fn received_on(&self, endpoint: PushEndpoint) -> Vec<PushRequest> {
        self.received().into_iter().filter(|r| r.endpoint == Some(endpoint)).collect()
    }

    /// Every push accepted, oldest first (a push sent twice shows twice).
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.inner.state).deliveries()
    }

    /// Every access token issued, oldest first.
    pub fn issued_tokens(&self) -> Vec<IssuedToken> {
        lock(&self.inner.state).tokens()
    }

    /// Forgets requests, deliveries and revoked tokens; live tokens stay
    /// listed and valid.
    pub fn clear_log(&self) {
        lock(&self.inner.state).clear_log();
    }

    /// Revokes every token issued so far: the next send with one gets 401.
    pub fn revoke_tokens(&self) {
        lock(&self.inner.state).revoke_tokens();
    }

    pub fn clock(&self) -> &SimClock {
        &self.inner.config.clock
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }

    /// Moves a manual clock forward (no-op on the system clock).
    pub fn advance(&self, by: Duration) {
        let clock = &self.inner.config.clock;
        clock.advance_to(crate::clock::add(clock.now(), by));
    }

    /// Stops the listener (for every clone) and waits for it.
    pub async fn shutdown(self) {
        let _ = self.listener.shutdown.send(true);
        let task = lock(&self.listener.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// The public half (PKCS#1 DER) of a PKCS#8 PEM RSA key.
fn public_key_of(private_key_pem: &str) -> Result<Vec<u8>, String> {
    let der =
        PrivatePkcs8KeyDer::from_pem_slice(private_key_pem.as_bytes()).map_err(|e| format!("not PKCS#8 PEM: {e}"))?;
    let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|e| format!("not an RSA key: {e}"))?;
    Ok(pair.public_key().as_ref().to_vec())
}

/// Signs `header.claims` with RS256, for tests that speak the grant by hand.
pub fn sign_jwt(header: &Value, claims: &Value, private_key_pem: &str) -> Result<String, String> {
    let der =
        PrivatePkcs8KeyDer::from_pem_slice(private_key_pem.as_bytes()).map_err(|e| format!("not PKCS#8 PEM: {e}"))?;
    let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|e| format!("not an RSA key: {e}"))?;
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature)
        .map_err(|_| "signing failed".to_string())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// Runs the simulator on `127.0.0.1:<port>` until `shutdown` completes.
pub async fn run_standalone(
    port: u16,
    config: PushSimConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let sim = PushSim::start_on(config, SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    tracing::info!(
        url = %sim.url(),
        project_id = %sim.project_id(),
        "push simulator listening (FCM_BASE_URL and APP_PUSH_URL: its URL; test-only key file: /_sim/service-account)"
    );
    shutdown.await;
    sim.shutdown().await;
    Ok(())
}
