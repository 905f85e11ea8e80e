//! A protocol-faithful simulator of the WhatsApp Cloud API (Meta's Graph
//! API) for template messages, and of the `messages` webhooks Meta sends.
//!
//! Start it in-process with [`WhatsAppSim::start`] (tests, sandbox mode) or
//! on its own with [`run_standalone`] (a CLI). Time comes from the
//! configured [`SimClock`]: on a manual clock nothing happens until the test
//! calls [`WhatsAppSim::advance`], which fires every due event in time order
//! and awaits each webhook's delivery.
//!
//! # Graph API
//!
//! | method | path | answer |
//! |---|---|---|
//! | POST | `/{version}/{phone_number_id}/messages` | `{"messaging_product": "whatsapp", "contacts": [{"input", "wa_id"}], "messages": [{"id": "wamid.…", "message_status": "accepted"}]}` |
//! | GET | `/{version}/{waba_id}/message_templates[?limit=&after=]` | `{"data": [{"name", "language", "status", "category", "id"}], "paging": {"cursors": {"before", "after"}, "next"}}`: one entry per template and language |
//!
//! Any `vNN.N` version is accepted. Errors are Graph error envelopes
//! `{"error": {"message", "type", "code", "error_data": {"messaging_product", "details"}, "fbtrace_id"}}`:
//!
//! - 401, code 190: no `Authorization: Bearer <token>` (or `access_token`
//!   parameter), or the wrong token.
//! - 400, code 100 (`GraphMethodException`, subcode 33): another phone
//!   number id. 400, code 100: a wrong `appsecret_proof`, or none when
//!   [`WhatsAppSimConfig::require_appsecret_proof`] is set.
//! - 400, code 100: a malformed body; `message` and `error_data.details`
//!   name the parameter (`template.components[0].parameters[1].text`),
//!   including text parameters with a newline, a tab or five spaces in a row.
//! - 404, code 132001: a template that is not approved in that language,
//!   or a name outside Meta's `^[a-z0-9_]+$` (no such template can exist);
//!   400, 132015 / 132016: a `PAUSED` / `DISABLED` template.
//! - 400, code 132000: a body (or header) parameter count that differs from
//!   the approved template's; 400, code 131009: a button index it lacks.
//! - 400, code 131051: a message type other than `template`.
//! - 400 with the scripted code, for a recipient who
//!   [`RecipientScript::Fails`] with a code of [`SYNCHRONOUS_FAILURES`]
//!   (131048 spam rate limit, 131056 pair rate limit, …). Other scripted
//!   codes (131026 undeliverable, …) are accepted and come back as a
//!   `failed` status webhook with `errors`, as Meta reports them.
//! - 400, code 2500: any other path.
//!
//! # Webhooks
//!
//! `POST` to the webhook URL ([`WhatsAppSim::set_webhook_url`]), JSON,
//! signed `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body with the
//! app secret>` ([`WhatsAppSim::set_app_secret`]), one event per delivery in
//! the real envelope `{"object": "whatsapp_business_account", "entry":
//! [{"id", "changes": [{"field": "messages", "value": {…}}]}]}`:
//! statuses (`sent` and `delivered` with `conversation` and `pricing`,
//! `read`, `failed` with `errors`), quick-reply taps (`"type": "button"`
//! with `context.id` = the template's message id), texts. Each is sent
//! once; the receiver's answer is logged ([`WhatsAppSim::webhooks_sent`]).
//! Without a URL the webhook is only logged. [`WhatsAppSim::subscribe`]
//! performs Meta's GET verification handshake against the URL.
//!
//! # Control endpoints (`/_sim/`, JSON, no auth — bind to loopback only)
//!
//! | method | path | body / answer |
//! |---|---|---|
//! | GET | `/_sim` | ids, URLs, webhook URL, simulated time, pending events, templates |
//! | POST | `/_sim/script` | `{"number": "+9198…", "script": RecipientScript}` or `{"number", "scripts": [RecipientScript, …]}` |
//! | POST | `/_sim/reply` | a person answers our message now: `{"message_id", "index": 0}` or `{"message_id", "button_id": "<payload or label>"}` taps a quick-reply button (the `button` webhook a scripted tap sends), `{"message_id", "text"}` writes back → `{"reply_id"}` |
//! | POST | `/_sim/default_script` | `{"script": RecipientScript}` |
//! | POST | `/_sim/webhook` | `{"url": "http://…" or null, "app_secret": "…" (optional)}` |
//! | POST | `/_sim/faults` | `{"fault": {"kind": "server_error", "status": 503}, "times": 2}` |
//! | DELETE | `/_sim/faults` | removes every fault |
//! | GET | `/_sim/log` | `{"received": [ReceivedRequest], "webhooks": [SentWebhook]}` |
//! | DELETE | `/_sim/log` | clears both logs |
//! | GET | `/_sim/messages`, `/_sim/messages/{wamid}` | [`SimMessage`]s |
//! | POST | `/_sim/advance` | `{"seconds": 30}` — manual clock only (409 otherwise) |
//! | POST | `/_sim/inbound` | `{"from": "+9198…", "text": "…"}` → `{"message_id"}` |
//! | POST | `/_sim/subscribe` | `{"verify_token": "…"}` → `{"verified": bool}` |
//!
//! [`RecipientScript`] and [`Fault`] in JSON are described on the types.
//!
//! # Assumptions where Meta's behaviour is not pinned down
//!
//! - `sent` comes 1 s and `delivered` 2 s after acceptance
//!   ([`WhatsAppSimConfig::sent_after`], [`WhatsAppSimConfig::delivered_after`]);
//!   a reply comes right after its `read`.
//! - Button labels are the same in every language of a template.
//! - Meta batches events and retries failed deliveries for days; the
//!   simulator sends each event alone, once.

mod api;
mod control;
mod log;
mod script;
mod server;
mod state;
mod templates;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::{fmt, io};

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use mangwale_core::E164;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use api::error_title;
pub use log::{LoggedResponse, ReceivedRequest, SentWebhook, SimMessage, WebhookKind};
pub use script::{Fault, RecipientScript, SYNCHRONOUS_FAILURES};
pub use templates::{ApprovedTemplate, default_templates};

use crate::SimClock;
use crate::clock::lock;
use state::{Event, Outgoing, State};

/// The API version in [`WhatsAppSim::messages_url`] (any is accepted).
pub const DEFAULT_API_VERSION: &str = "v21.0";
/// The default phone number id of the simulated business number.
pub const DEFAULT_PHONE_NUMBER_ID: &str = "106540352242922";
/// The default access token (not a secret: it opens only the simulator).
pub const DEFAULT_ACCESS_TOKEN: &str = "sim-whatsapp-access-token";
/// The default app secret that signs webhooks (not a secret either).
pub const DEFAULT_APP_SECRET: &str = "sim-whatsapp-app-secret";

/// Configuration of a [`WhatsAppSim`]. `Default` is a sandbox business
/// number with the incumbent's templates, on the system clock, with no
/// webhook URL.
#[derive(Clone)]
pub struct WhatsAppSimConfig {
    pub phone_number_id: String,
    /// The business number as webhooks show it (`metadata`, `context.from`).
    pub display_phone_number: String,
    /// The WhatsApp Business Account id (`entry[].id`).
    pub business_account_id: String,
    /// The bearer token the API requires.
    pub access_token: String,
    /// Signs webhooks and checks `appsecret_proof`.
    pub app_secret: String,
    /// Refuse requests without `appsecret_proof` (the app's "Require App
    /// Secret" setting).
    pub require_appsecret_proof: bool,
    /// Where webhooks go; `None`: they are only logged.
    pub webhook_url: Option<String>,
    pub templates: Vec<ApprovedTemplate>,
    /// The behaviour of numbers without a script.
    pub default_script: RecipientScript,
    /// The contact name inbound messages carry.
    pub profile_name: String,
    /// How long after acceptance the `sent` status comes.
    pub sent_after: Duration,
    /// How long after acceptance the `delivered` status comes.
    pub delivered_after: Duration,
    /// How long a webhook receiver may take to answer.
    pub webhook_timeout: Duration,
    /// How many received requests and sent webhooks the logs keep.
    pub max_log_entries: usize,
    /// Seed of the id generator.
    pub seed: u64,
    pub clock: SimClock,
    pub bind_ip: IpAddr,
    /// 0: any free port.
    pub port: u16,
}

impl Default for WhatsAppSimConfig {
    fn default() -> Self {
        WhatsAppSimConfig {
            phone_number_id: DEFAULT_PHONE_NUMBER_ID.to_string(),
            display_phone_number: "918047112233".to_string(),
            business_account_id: "102290129340398".to_string(),
            access_token: DEFAULT_ACCESS_TOKEN.to_string(),
            app_secret: DEFAULT_APP_SECRET.to_string(),
            require_appsecret_proof: false,
            webhook_url: None,
            templates: default_templates(),
            default_script: RecipientScript::default(),
            profile_name: "Mangwale Sim User".to_string(),
            sent_after: Duration::from_secs(1),
            delivered_after: Duration::from_secs(2),
            webhook_timeout: Duration::from_secs(10),
            max_log_entries: 10_000,
            seed: 0x5EED_0A11,
            clock: SimClock::system(),
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
        }
    }
}

impl WhatsAppSimConfig {
    /// The default configuration on a manual clock starting at `start`.
    pub fn manual(start: DateTime<Utc>) -> Self {
        WhatsAppSimConfig { clock: SimClock::manual(start), ..WhatsAppSimConfig::default() }
    }
}

impl fmt::Debug for WhatsAppSimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhatsAppSimConfig")
            .field("phone_number_id", &self.phone_number_id)
            .field("access_token", &"***")
            .field("app_secret", &"***")
            .field("webhook_url", &self.webhook_url)
            .field("templates", &self.templates.len())
            .field("clock", &self.clock)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WhatsAppSimError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(String),
}

/// The `X-Hub-Signature-256` value of `body`: `sha256=<lower-case hex
/// HMAC-SHA256 with app_secret>`.
pub fn signature_header(app_secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(app_secret, body))
}

pub(crate) fn hmac_hex(key: &str, message: &[u8]) -> String {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

pub(crate) struct Inner {
    pub(crate) config: WhatsAppSimConfig,
    pub(crate) clock: SimClock,
    pub(crate) base_url: String,
    pub(crate) state: Mutex<State>,
    /// One event-loop turn at a time (the ticker or `advance`).
    processing: tokio::sync::Mutex<()>,
    pub(crate) wake: Notify,
    http: reqwest::Client,
}

impl Inner {
    /// Fires every event due at or before `until`, in time order, moving a
    /// manual clock along and awaiting each webhook's delivery.
    async fn run_until(&self, until: DateTime<Utc>) {
        let _turn = self.processing.lock().await;
        loop {
            let next = lock(&self.state).pop_due(until);
            let Some((at, event)) = next else { break };
            self.clock.advance_to(at);
            let outgoing = lock(&self.state).apply(&self.config, event, at);
            if let Some(out) = outgoing {
                self.deliver(out, at).await;
            }
        }
        self.clock.advance_to(until);
    }

    pub(crate) async fn advance(&self, by: Duration) {
        let until = if self.clock.is_manual() { crate::clock::add(self.clock.now(), by) } else { Utc::now() };
        self.run_until(until).await;
    }

    async fn deliver(&self, out: Outgoing, at: DateTime<Utc>) {
        let (url, secret) = {
            let st = lock(&self.state);
            (st.webhook_url.clone(), st.app_secret.clone())
        };
        let json = json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": self.config.business_account_id,
                "changes": [{"value": out.value, "field": "messages"}],
            }],
        });
        let body = json.to_string();
        let signature = signature_header(&secret, body.as_bytes());
        let (response_status, error) = match &url {
            None => (None, Some("no webhook URL configured".to_string())),
            Some(url) => {
                let sent = self
                    .http
                    .post(url)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .header("X-Hub-Signature-256", &signature)
                    .header(http::header::USER_AGENT, "facebookexternalua")
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let _ = response.bytes().await;
                        (Some(status), None)
                    }
                    Err(e) => (None, Some(error_chain(&e.without_url()))),
                }
            }
        };
        tracing::debug!(kind = ?out.kind, status = ?response_status, error = ?error, "whatsapp sim webhook");
        lock(&self.state).push_webhook(SentWebhook {
            seq: 0,
            at,
            kind: out.kind,
            message_id: out.message_id,
            context_message_id: out.context_message_id,
            url,
            body,
            json,
            signature,
            response_status,
            error,
        });
    }

    /// The person answers one of our messages now (a tap on a quick-reply
    /// button, or a text): the webhook the scripted reply sends, delivered
    /// before this returns. Returns the reply's message id, once sent.
    pub(crate) async fn reply_now(&self, event: state::Event) -> Option<String> {
        let message_id = match &event {
            state::Event::ButtonReply { message_id, .. } | state::Event::TextReply { message_id, .. } => {
                message_id.clone()
            }
            _ => return None,
        };
        let now = self.clock.now();
        lock(&self.state).schedule(now, event);
        self.run_until(now).await;
        lock(&self.state).message(&message_id).and_then(|m| m.replies.last().cloned())
    }

    /// Schedules an unprompted text from `from` at the current time.
    pub(crate) fn inbound_text(&self, from: &E164, text: &str) -> String {
        let mut st = lock(&self.state);
        let id = st.next_wamid();
        st.schedule(self.clock.now(), Event::Inbound { from: from.clone(), text: text.to_string(), id: id.clone() });
        drop(st);
        self.wake.notify_one();
        id
    }

    /// Meta's GET handshake against the webhook URL.
    pub(crate) async fn subscribe(&self, verify_token: &str) -> Result<bool, String> {
        let url = lock(&self.state).webhook_url.clone().ok_or("no webhook URL configured")?;
        let challenge = lock(&self.state).next_challenge();
        let response = self
            .http
            .get(&url)
            .query(&[
                ("hub.mode", "subscribe"),
                ("hub.challenge", challenge.as_str()),
                ("hub.verify_token", verify_token),
            ])
            .send()
            .await
            .map_err(|e| error_chain(&e.without_url()))?;
        let ok = response.status().is_success();
        let text = response.text().await.map_err(|e| error_chain(&e.without_url()))?;
        Ok(ok && text.trim() == challenge)
    }
}

/// Stops the listener and the ticker when the last clone goes away.
struct Tasks {
    shutdown: watch::Sender<bool>,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in lock(&self.handles).iter() {
            task.abort();
        }
    }
}

/// A running simulator; clones share it. Dropping the last clone stops it.
#[derive(Clone)]
pub struct WhatsAppSim {
    inner: Arc<Inner>,
    tasks: Arc<Tasks>,
    addr: SocketAddr,
}

impl fmt::Debug for WhatsAppSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhatsAppSim").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl WhatsAppSim {
    /// Binds `config.bind_ip:config.port` (loopback and a free port by
    /// default) and starts serving.
    pub async fn start(config: WhatsAppSimConfig) -> Result<WhatsAppSim, WhatsAppSimError> {
        let addr = SocketAddr::new(config.bind_ip, config.port);
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|source| WhatsAppSimError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| WhatsAppSimError::Bind { addr, source })?;
        let http = reqwest::Client::builder()
            .timeout(config.webhook_timeout)
            .no_proxy()
            .build()
            .map_err(|e| WhatsAppSimError::Client(error_chain(&e)))?;
        let inner = Arc::new(Inner {
            state: Mutex::new(State::new(&config)),
            clock: config.clock.clone(),
            base_url: format!("http://{addr}"),
            config,
            processing: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            http,
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut handles = vec![tokio::spawn(server::serve(inner.clone(), listener, shutdown_rx.clone()))];
        if !inner.clock.is_manual() {
            handles.push(tokio::spawn(ticker(inner.clone(), shutdown_rx)));
        }
        let tasks = Arc::new(Tasks { shutdown, handles: Mutex::new(handles) });
        Ok(WhatsAppSim { inner, tasks, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: the client's base URL.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// `http://127.0.0.1:<port>/v21.0/<phone_number_id>/messages`.
    pub fn messages_url(&self) -> String {
        format!("{}/{DEFAULT_API_VERSION}/{}/messages", self.inner.base_url, self.inner.config.phone_number_id)
    }

    pub fn config(&self) -> &WhatsAppSimConfig {
        &self.inner.config
    }

    pub fn phone_number_id(&self) -> &str {
        &self.inner.config.phone_number_id
    }

    pub fn access_token(&self) -> &str {
        &self.inner.config.access_token
    }

    /// The WhatsApp Business Account id (`/{waba_id}/message_templates`).
    pub fn business_account_id(&self) -> &str {
        &self.inner.config.business_account_id
    }

    /// The secret webhooks are signed with now.
    pub fn app_secret(&self) -> String {
        lock(&self.inner.state).app_secret.clone()
    }

    /// Signs later webhooks (and checks `appsecret_proof`) with `secret`.
    pub fn set_app_secret(&self, secret: impl Into<String>) {
        lock(&self.inner.state).app_secret = secret.into();
    }

    /// Where later webhooks go; `None`: only logged.
    pub fn set_webhook_url(&self, url: Option<impl Into<String>>) {
        lock(&self.inner.state).webhook_url = url.map(Into::into);
    }

    pub fn webhook_url(&self) -> Option<String> {
        lock(&self.inner.state).webhook_url.clone()
    }

    /// The simulator's time now.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    pub fn clock(&self) -> &SimClock {
        &self.inner.clock
    }

    /// Makes the person behind `number` behave as `script` with every later
    /// message.
    pub fn script(&self, number: &E164, script: RecipientScript) {
        lock(&self.inner.state).set_scripts(number, vec![script]);
    }

    /// One script per later message to `number`, in order; the last one
    /// stays for the messages after. A send refused before the script
    /// applies (bad token, unknown template, a fault) does not use one up.
    pub fn script_sequence(&self, number: &E164, scripts: Vec<RecipientScript>) {
        lock(&self.inner.state).set_scripts(number, scripts);
    }

    /// The behaviour of numbers without a script.
    pub fn set_default_script(&self, script: RecipientScript) {
        lock(&self.inner.state).default_script = script;
    }

    pub fn clear_scripts(&self) {
        lock(&self.inner.state).clear_scripts();
    }

    /// Applies `fault` to the next `times` requests to the messages endpoint.
    pub fn inject_fault(&self, fault: Fault, times: u32) {
        lock(&self.inner.state).add_fault(fault, times);
    }

    pub fn clear_faults(&self) {
        lock(&self.inner.state).clear_faults();
    }

    /// Moves a manual clock forward by `by`, firing every event that becomes
    /// due in time order and awaiting each webhook's delivery. On the system
    /// clock this only fires what is already due.
    pub async fn advance(&self, by: Duration) {
        self.inner.advance(by).await;
    }

    /// Moves a manual clock to `at` (if later), firing due events.
    pub async fn advance_to(&self, at: DateTime<Utc>) {
        let until = if self.inner.clock.is_manual() { at.max(self.now()) } else { Utc::now() };
        self.inner.run_until(until).await;
    }

    /// Fires the events due now.
    pub async fn run_due(&self) {
        self.inner.run_until(self.now()).await;
    }

    pub fn pending_events(&self) -> usize {
        lock(&self.inner.state).pending_events()
    }

    pub fn next_event_at(&self) -> Option<DateTime<Utc>> {
        lock(&self.inner.state).next_due()
    }

    /// `from` writes `text` to the business number, unprompted: the webhook
    /// goes out at the next turn of the event loop (`advance` / `run_due`
    /// on a manual clock, at once on the system clock). Returns its `wamid`.
    pub fn inbound_text(&self, from: &E164, text: &str) -> String {
        self.inner.inbound_text(from, text)
    }

    /// Performs Meta's verification handshake against the webhook URL:
    /// `GET ?hub.mode=subscribe&hub.challenge=<n>&hub.verify_token=<token>`;
    /// `Ok(true)` when the receiver answered 2xx with the challenge.
    pub async fn subscribe(&self, verify_token: &str) -> Result<bool, String> {
        self.inner.subscribe(verify_token).await
    }

    /// Every request received, oldest first.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        lock(&self.inner.state).received.iter().cloned().collect()
    }

    /// Every webhook sent (or logged without a URL), oldest first.
    pub fn webhooks_sent(&self) -> Vec<SentWebhook> {
        lock(&self.inner.state).webhooks.iter().cloned().collect()
    }

    /// The webhooks about one of our messages: its statuses and the replies to it.
    pub fn webhooks_for(&self, message_id: &str) -> Vec<SentWebhook> {
        lock(&self.inner.state)
            .webhooks
            .iter()
            .filter(|w| w.message_id == message_id || w.context_message_id.as_deref() == Some(message_id))
            .cloned()
            .collect()
    }

    pub fn clear_log(&self) {
        lock(&self.inner.state).clear_log();
    }

    /// Answers a control request as `/_sim/{path}` would (`path` without
    /// the `/_sim/` prefix; `""` for the index): the HTTP status and the
    /// JSON body. For a host that serves the control endpoints under its
    /// own routes (the service in sandbox mode, as `/_sim/whatsapp/…`).
    pub async fn control(&self, method: &http::Method, path: &str, body: &[u8]) -> (u16, Value) {
        let path = match path.trim_matches('/') {
            "" => "/_sim".to_string(),
            rest => format!("/_sim/{rest}"),
        };
        control::handle(&self.inner, method, &path, body).await
    }

    /// Every message accepted, oldest first.
    pub fn messages(&self) -> Vec<SimMessage> {
        lock(&self.inner.state).messages.clone()
    }

    pub fn message(&self, id: &str) -> Option<SimMessage> {
        lock(&self.inner.state).message(id).cloned()
    }

    /// Stops serving and firing events (for every clone) and waits for it.
    pub async fn shutdown(self) {
        let _ = self.tasks.shutdown.send(true);
        let handles: Vec<JoinHandle<()>> = lock(&self.tasks.handles).drain(..).collect();
        for handle in handles {
            let _ = handle.await;
        }
    }
}

/// Fires due events as real time passes (system clock only).
async fn ticker(inner: Arc<Inner>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let wait = lock(&inner.state)
            .next_due()
            .map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = inner.wake.notified() => {}
            _ = shutdown.changed() => break,
        }
        inner.run_until(Utc::now()).await;
    }
}

/// Runs a sandbox simulator (default configuration, system clock) on
/// `127.0.0.1:<port>`, sending webhooks to `webhook_url`, until `shutdown`
/// completes.
pub async fn run_standalone(
    port: u16,
    webhook_url: Option<String>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), WhatsAppSimError> {
    run_standalone_with(WhatsAppSimConfig { port, webhook_url, ..WhatsAppSimConfig::default() }, shutdown).await
}

/// [`run_standalone`] with a given configuration.
pub async fn run_standalone_with(
    config: WhatsAppSimConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), WhatsAppSimError> {
    let sim = WhatsAppSim::start(config).await?;
    tracing::info!(
        base_url = %sim.base_url(),
        phone_number_id = %sim.phone_number_id(),
        business_account_id = %sim.business_account_id(),
        webhook_url = ?sim.webhook_url(),
        templates = sim.config().templates.len(),
        "WhatsApp Cloud API simulator listening (access token and app secret: the configured ones; control endpoints under /_sim/)"
    );
    shutdown.await;
    sim.shutdown().await;
    Ok(())
}

/// JSON of the simulator's state for `GET /_sim`.
pub(crate) fn info(inner: &Inner) -> Value {
    let st = lock(&inner.state);
    json!({
        "base_url": inner.base_url,
        "messages_url": format!("{}/{DEFAULT_API_VERSION}/{}/messages", inner.base_url, inner.config.phone_number_id),
        "templates_url": format!(
            "{}/{DEFAULT_API_VERSION}/{}/message_templates",
            inner.base_url, inner.config.business_account_id
        ),
        "phone_number_id": inner.config.phone_number_id,
        "display_phone_number": inner.config.display_phone_number,
        "business_account_id": inner.config.business_account_id,
        "webhook_url": st.webhook_url,
        "now": inner.clock.now(),
        "manual_clock": inner.clock.is_manual(),
        "pending_events": st.pending_events(),
        "messages": st.messages.len(),
        "templates": inner.config.templates,
    })
}
