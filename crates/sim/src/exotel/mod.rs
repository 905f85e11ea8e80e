//! A protocol-faithful simulator of Exotel's v1 API (the server side of
//! `/v1/Accounts/{sid}/…`) and of the callbacks Exotel sends, following
//! `shared/docs/exotel-wire.md`.
//!
//! Start it in-process with [`ExotelSim::start`] (tests) or run it on its own
//! with [`run_standalone`] (sandbox mode, CLI `mangwale-exotel sim exotel`).
//!
//! With [`SimConfig::flows`] set, it also plays our call flows
//! (`flows/exotel-flows.toml`, see [`FlowDefinitions`]) against our
//! service the way Exotel does: the [`FlowEngine`] calls each applet URL
//! with Exotel's parameters, branches on our answers, and opens Voicebot
//! WebSockets; [`SimHandle::flow_run`] and [`SimHandle::voicebot_streams`]
//! show what happened. Flows start when a `Url` call is answered, when a
//! `StreamUrl` call is answered, or on [`SimHandle::incoming_call`].
//!
//! # REST API (as Exotel)
//!
//! HTTP Basic auth `api_key:api_token`; JSON when the path ends in `.json`,
//! XML (`<TwilioResponse>`) otherwise; form-urlencoded or multipart bodies.
//!
//! | method | path under `/v1/Accounts/{sid}` | |
//! |---|---|---|
//! | GET | `` (the account itself) | `{"Account": {…}}` |
//! | POST | `/Calls/connect` | bridge (`To`), flow (`Url`) or voicebot (`StreamUrl`) call |
//! | GET | `/Calls/{CallSid}` | `?details=true` adds `Details` |
//! | POST | `/Sms/send` | one or several `To` |
//! | POST | `/Sms/bulksend` | `Messages[i][…]` or `Message[i][…]` |
//! | GET | `/SMS/Messages/{SmsSid}` (or `/Sms/Messages/…`) | |
//! | GET | `/Numbers/{number}` | circle, operator, DND flag |
//!
//! # Control endpoints (`/_sim/`, JSON, no auth — bind to loopback only)
//!
//! | method | path | body / answer |
//! |---|---|---|
//! | GET | `/_sim` | account sid, API key, base URL, simulated time, pending events, ExoPhones and the flow each runs (`exophone_flows`) |
//! | POST | `/_sim/script` | `{"number": "+9198…", "script": CalleeScript}` — see below |
//! | POST | `/_sim/default_script` | `{"script": CalleeScript}` for unscripted numbers |
//! | POST | `/_sim/faults` | `{"endpoint": "calls_connect", "fault": {"kind": "status", "status": 503}, "times": 2}` |
//! | DELETE | `/_sim/faults` | removes every fault |
//! | GET | `/_sim/log` | `{"received": [ReceivedRequest], "callbacks": [SentCallback]}` |
//! | DELETE | `/_sim/log` | clears both logs |
//! | GET | `/_sim/calls`, `/_sim/calls/{sid}` | call state with legs |
//! | GET | `/_sim/sms`, `/_sim/sms/{sid}` | SMS state |
//! | POST | `/_sim/advance` | `{"seconds": 30}` — manual clock only (409 otherwise) |
//! | POST | `/_sim/incoming` | `{"from": "+9198…", "to": "+9180…"}` (the ExoPhone; `exophone` also accepted) runs the flow connected to that number; `"flow_id": "missed_call"` runs that flow instead → `{"call_sid", "flow_id"}` |
//! | GET | `/_sim/flows`, `/_sim/flows/{call_sid}` | [`FlowRun`]s: applets visited, requests, answers, branches, and each Connect's dialling (`connects`: the caller id the callees see and whether it is an ExoPhone, numbers dialled, each attempt's status, who was connected, `DialCallStatus`, duration) |
//! | GET | `/_sim/streams/{stream_sid}` | a Voicebot [`StreamLog`] |
//! | GET | `/_sim/calls/{call_sid}/streams` | the call's Voicebot [`StreamLog`]s, with the caller's turns |
//! | GET | `/_sim/recordings/{stream_sid}.wav` | the caller's side of a Voicebot stream (WAV, 8 kHz mono 16-bit) |
//! | GET | `/_sim/recordings/{stream_sid}-heard.wav` | what the caller heard of the bot, in place in time |
//! | POST | `/_sim/voice-order` | a pretend voice order ([`VoiceOrder`]): `{"from", "say": [...], "then_keys": "1"}` → `{"call_sid", "flow_id", "exophone", "script"}` |
//! | POST / DELETE | `/_sim/phones/{number}/hold` | a person holds the phone ([`SimHandle::hold`]): calls ring until answered or rejected / releases it |
//! | GET | `/_sim/phones`, `/_sim/phones/{number}` | held phones / one phone ([`PhoneView`]): the call ringing or in progress with its prompts and the Gather listening, and the last call |
//! | POST | `/_sim/phones/{number}/answer`, `…/reject`, `…/hangup` | the person answers, rejects (`busy`) or hangs up |
//! | POST | `/_sim/phones/{number}/keys` | `{"digits": "1"}`: keys for the Gather listening, or DTMF in a Voicebot stream |
//! | POST | `/_sim/phones/{number}/say`, `…/audio` | in a Voicebot stream: `{"text", "language"}` spoken by the caller's voice, or `{"pcm": "<base64 16-bit LE mono>", "sample_rate": 8000}` recorded audio |
//!
//! Recordings of the Record applet (see [`FlowEngine`]) are served as
//! Exotel serves them, behind the account's Basic credentials:
//! `GET /exotelrecordings/{account_sid}/{recording_sid}.wav` (faults: endpoint
//! `recordings`).
//!
//! A `CalleeScript` in JSON (durations in seconds):
//! `{"pickup": {"kind": "answer", "after": 2}, "hang_up_after": 20}`;
//! other pickups: `{"kind": "no_answer"}`, `{"kind": "busy", "after": 3}`,
//! `{"kind": "fail", "after": 1}`. Optional `answered_by`
//! (`Human`/`Machine`/`NotSure`), `keypresses: [{"prompt", "digits"}]`,
//! `utterances: [{"prompt", "text", "language", "cue", "digits", "pause",
//! "hang_up"}]` (a caller's turns in a Voicebot stream, see [`Utterance`]
//! and [`Cue`]: `{"kind": "timed"}`, `{"kind": "after_reply"}`,
//! `{"kind": "barge_in", "after_ms": 300}`). Fault kinds: `status` (`status`),
//! `delay` (`secs`), `drop`, `drop_after_processing`; endpoints:
//! `calls_connect`, `call_details`, `sms_send`, `sms_bulk_send`,
//! `sms_details`, `account`, `numbers`, `recordings`, `any`.
//!
//! # Assumptions where Exotel's behaviour is not established
//!
//! - A bridge call whose leg 1 hangs up while leg 2 still rings ends
//!   `no-answer` with leg 2 `canceled`.
//! - Flow-mode calls echo the ExoPhone as `To` and carry a single leg, plus
//!   one leg per number a Connect applet dials.
//! - A Connect shows the callees its answer's `outgoing_phone_number`, else
//!   the ExoPhone the call came into.
//! - A call into an ExoPhone runs the flow [`FlowConfig::exophone_flows`]
//!   connects to it; by default [`DEFAULT_EXOPHONE`] runs
//!   `customer_voice_order`, [`DEFAULT_MISSED_CALL_EXOPHONE`] `missed_call`
//!   and [`DEFAULT_MASKING_EXOPHONE`] `masked_call` (when those flows exist),
//!   and every connected ExoPhone is one of the account's numbers. The
//!   caller's script plays the caller: `keypresses` at the flow's menus,
//!   `hang_up_after` (from the call coming in) hangs up, also while the
//!   call still rings (a missed call); the numbers a Connect dials answer,
//!   ring out or are busy by their own scripts.
//! - Incoming calls have `Direction` `inbound` in call details, send no
//!   status callback, and end `no-answer` when the flow never played audio
//!   (a missed call).
//! - Flow assumptions (applet parameters, timing, failures) are listed in
//!   the [`FlowEngine`] documentation.
//! - Unknown Call/SMS sids answer 404; bulk SMS answers 207 when an item failed.
//! - Callbacks are sent once (no retries); the receiver's answer is logged.

pub(crate) mod audio;
mod calls;
mod control;
mod engine;
mod faults;
mod flow_log;
mod flows;
mod form;
mod log;
mod payload;
mod phones;
mod record;
mod rest;
mod script;
mod server;
mod sms;
mod state;
mod voice_order;
mod voicebot;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use mangwale_core::E164;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use audio::wav;
pub use calls::{Call, CallMode, CallStatus, CallbackEncoding, CallbackEvent, DEFAULT_TIME_OUT, Leg, MAX_TIME_LIMIT};
pub use engine::{END_TIME_PLACEHOLDER, FlowConfig, FlowEngine, INCOMING_FLOW, MASKED_CALL_FLOW, MISSED_CALL_FLOW};
pub use faults::{Endpoint, Fault};
pub use flow_log::{
    AppletExchange, AppletResponse, CallerTurn, ConnectReport, DialAttempt, FlowLogEntry, FlowOutcome, FlowRun,
    ProtocolViolation, StreamDirection, StreamEvent, StreamLog,
};
pub use flows::{
    Applet, AppletKind, AppletType, FlowDef, FlowDefinitions, FlowDirection, FlowsError, REPOSITORY_FLOWS_TOML,
};
pub use log::{CallbackKind, LoggedResponse, ReceivedRequest, SentCallback};
pub use phones::{PhoneCall, PhoneError, PhoneListening, PhonePrompt, PhoneView};
pub use record::{RECORDING_RATE, RECORDINGS_PATH};
pub use script::{
    AnsweredBy, CalleeScript, Cue, DEFAULT_RING, DEFAULT_TALK, FlowCall, FlowMode, FlowRunner, FlowStep, Keypress,
    Pickup, PromptContext, Utterance,
};
pub use sms::{SmsMessage, SmsStatus, SmsType, detailed_status, matches_template, sms_units};
pub use voice_order::{CallerLine, LineSpec, PlacedVoiceOrder, VoiceOrder, VoiceOrderError};
pub use voicebot::VoicebotConfig;

use crate::clock::{SimClock, lock};
use faults::FaultRule;
use flow_log::FlowRecords;
use payload::{multipart_body, urlencoded_body};
use state::{Action, Encoding, Event, FlowHook, Outgoing, State};

/// The default API key of a sandbox simulator.
pub const DEFAULT_API_KEY: &str = "sim-api-key";
/// The default API token of a sandbox simulator (not a secret: it only
/// opens the local simulator).
pub const DEFAULT_API_TOKEN: &str = "sim-api-token";
/// The default account sid.
pub const DEFAULT_ACCOUNT_SID: &str = "mangwalesim1";
/// The default ExoPhone; a call into it runs `customer_voice_order`.
pub const DEFAULT_EXOPHONE: &str = "+918047112233";
/// The sandbox's missed-call ExoPhone: a call into it runs `missed_call`.
pub const DEFAULT_MISSED_CALL_EXOPHONE: &str = "+918047112244";
/// The sandbox's masking ExoPhone: a call into it runs `masked_call`.
pub const DEFAULT_MASKING_EXOPHONE: &str = "+918047112255";

/// Configuration of an [`ExotelSim`]. `Default` is a sandbox account with
/// one ExoPhone on the system clock.
#[derive(Clone)]
pub struct SimConfig {
    pub account_sid: String,
    pub api_key: String,
    pub api_token: String,
    pub friendly_name: String,
    /// The account's ExoPhones: valid `CallerId`s and SMS senders.
    pub exophones: Vec<E164>,
    /// The DLT header echoed after the ExoPhone in `SMSMessage.From`.
    pub sms_sender_id: String,
    /// Numbers on the NCPR/DND registry.
    pub dnd_numbers: Vec<E164>,
    /// The account's DLT principal entity id; `None` (the default) accepts any.
    pub dlt_entity_id: Option<String>,
    /// Registered DLT templates: id → body with `{#var#}` placeholders.
    pub dlt_templates: BTreeMap<String, String>,
    /// Where SMS sent to the account's ExoPhones are forwarded (the
    /// incoming-SMS URL configured in Exotel's dashboard); `None`: nowhere.
    pub incoming_sms_url: Option<String>,
    /// Voice API requests per minute before 429 (Exotel: 200).
    pub voice_rate_limit_per_minute: u32,
    /// SMS send requests per minute before 503; `None`: unlimited.
    pub sms_rate_limit_per_minute: Option<u32>,
    /// How long after a call ends its `Duration`, `Price` and `EndTime` appear.
    pub details_delay: Duration,
    /// How long an SMS takes to reach its final status.
    pub sms_delivery_delay: Duration,
    /// The promotional SMS window, IST (TRAI: 09:00–21:00).
    pub promo_window_ist: (NaiveTime, NaiveTime),
    /// The behaviour of numbers that have no script.
    pub default_script: CalleeScript,
    /// How long a callback receiver may take to answer.
    pub callback_timeout: Duration,
    /// How many received requests and sent callbacks the logs keep (oldest dropped first).
    pub max_log_entries: usize,
    /// Seed of the sid generator.
    pub seed: u64,
    /// Runs our flows (Url calls, incoming calls, StreamUrl calls) against
    /// our service; `None`: flow calls just stay connected (or a runner
    /// installed with [`SimHandle::set_flow_runner`] plays them).
    pub flows: Option<FlowConfig>,
    pub clock: SimClock,
    pub bind_ip: IpAddr,
    /// 0: any free port.
    pub port: u16,
    /// What simulated callers say, registered as they speak (in Voicebot
    /// streams and recordings); the simulated ASR servers of the same
    /// sandbox transcribe from this same book.
    pub transcripts: crate::speech::TranscriptBook,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            account_sid: DEFAULT_ACCOUNT_SID.to_string(),
            api_key: DEFAULT_API_KEY.to_string(),
            api_token: DEFAULT_API_TOKEN.to_string(),
            friendly_name: "Mangwale sandbox".to_string(),
            exophones: E164::parse(DEFAULT_EXOPHONE).into_iter().collect(),
            sms_sender_id: "MNGWLE".to_string(),
            dnd_numbers: Vec::new(),
            dlt_entity_id: None,
            dlt_templates: BTreeMap::new(),
            incoming_sms_url: None,
            voice_rate_limit_per_minute: 200,
            sms_rate_limit_per_minute: None,
            details_delay: Duration::from_secs(120),
            sms_delivery_delay: Duration::from_secs(3),
            promo_window_ist: (
                NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
                NaiveTime::from_hms_opt(21, 0, 0).unwrap_or_default(),
            ),
            default_script: CalleeScript::default(),
            callback_timeout: Duration::from_secs(10),
            max_log_entries: 10_000,
            seed: 0x5EED_E807,
            flows: None,
            clock: SimClock::system(),
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            transcripts: crate::speech::TranscriptBook::new(),
        }
    }
}

impl SimConfig {
    /// The default configuration on a manual clock starting at `start`.
    pub fn manual(start: DateTime<Utc>) -> Self {
        SimConfig { clock: SimClock::manual(start), ..SimConfig::default() }
    }

    pub fn with_template(mut self, id: &str, body: &str) -> Self {
        self.dlt_templates.insert(id.to_string(), body.to_string());
        self
    }

    /// Runs flows against our service (see [`FlowConfig`]).
    pub fn with_flows(mut self, flows: FlowConfig) -> Self {
        self.flows = Some(flows);
        self
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("account_sid", &self.account_sid)
            .field("api_key", &self.api_key)
            .field("api_token", &"***")
            .field("exophones", &self.exophones)
            .field("sms_sender_id", &self.sms_sender_id)
            .field("dnd_numbers", &self.dnd_numbers.len())
            .field("dlt_entity_id", &self.dlt_entity_id)
            .field("dlt_templates", &self.dlt_templates.len())
            .field("voice_rate_limit_per_minute", &self.voice_rate_limit_per_minute)
            .field("details_delay", &self.details_delay)
            .field("seed", &self.seed)
            .field("flows", &self.flows)
            .field("clock", &self.clock)
            .field("bind", &SocketAddr::new(self.bind_ip, self.port))
            .field("transcripts", &self.transcripts.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot build the callback HTTP client: {0}")]
    Client(String),
    #[error("not a phone number: {0}")]
    InvalidNumber(String),
    #[error("the simulator runs no flows (SimConfig::flows is not set)")]
    FlowsNotConfigured,
    #[error("no flow '{0}'")]
    UnknownFlow(String),
    #[error("{0} is not an ExoPhone of this account")]
    NotAnExoPhone(String),
    #[error("no flow is connected to ExoPhone {0}")]
    NoFlowOnExoPhone(String),
    #[error("no incoming-SMS URL is configured (SimConfig::incoming_sms_url)")]
    NoIncomingSmsUrl,
}

/// Something that names a phone number: an [`E164`] or text in any shape
/// [`E164::parse`] accepts.
pub trait IntoNumber {
    fn into_number(self) -> Result<E164, SimError>;
}

impl IntoNumber for E164 {
    fn into_number(self) -> Result<E164, SimError> {
        Ok(self)
    }
}

impl IntoNumber for &E164 {
    fn into_number(self) -> Result<E164, SimError> {
        Ok(self.clone())
    }
}

impl IntoNumber for &str {
    fn into_number(self) -> Result<E164, SimError> {
        E164::parse(self).map_err(|e| SimError::InvalidNumber(e.0))
    }
}

impl IntoNumber for String {
    fn into_number(self) -> Result<E164, SimError> {
        self.as_str().into_number()
    }
}

impl IntoNumber for &String {
    fn into_number(self) -> Result<E164, SimError> {
        self.as_str().into_number()
    }
}

pub(crate) struct Inner {
    pub(crate) config: SimConfig,
    pub(crate) clock: SimClock,
    pub(crate) base_url: String,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) state: Mutex<State>,
    /// One event loop turn at a time (the ticker or `advance`).
    processing: tokio::sync::Mutex<()>,
    pub(crate) wake: Notify,
    http: reqwest::Client,
    flow_runner: Mutex<Option<Arc<dyn FlowRunner>>>,
    /// What the flow engine did (flow runs, streams, recordings).
    pub(crate) flow_records: Mutex<FlowRecords>,
    /// Held phones' prompts, keys and decisions (see [`SimHandle::hold`]).
    pub(crate) phones: Mutex<phones::Phones>,
}

impl Inner {
    /// Fires every event due at or before `until`, in time order, moving a
    /// manual clock along and awaiting each callback's delivery.
    async fn run_until(&self, until: DateTime<Utc>) {
        let _turn = self.processing.lock().await;
        loop {
            let next = lock(&self.state).pop_due(until);
            let Some((at, event)) = next else { break };
            self.clock.advance_to(at);
            let actions = self.apply(event, at);
            self.perform(actions, at).await;
        }
        self.clock.advance_to(until);
    }

    fn apply(&self, event: Event, at: DateTime<Utc>) -> Vec<Action> {
        let cfg = &self.config;
        let mut st = lock(&self.state);
        match event {
            Event::LegOutcome { sid, leg, outcome } => st.on_leg_outcome(cfg, &sid, leg, outcome, at),
            Event::LegHangUp { sid, leg } => st.on_leg_hang_up(cfg, &sid, leg, at),
            Event::TimeLimit { sid } => st.on_time_limit(cfg, &sid, at),
            Event::FlowResume { sid } => st.on_flow_resume(cfg, &sid, at),
            Event::FlowStart { sid } => st.on_flow_start(cfg, &sid, at),
            Event::SmsProgress { sid } => st.on_sms_progress(cfg, &sid, at),
        }
    }

    async fn perform(&self, actions: Vec<Action>, at: DateTime<Utc>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Deliver(out) => self.deliver(out, at).await,
                Action::Flow(hook, call) => {
                    let Some(runner) = lock(&self.flow_runner).clone() else { continue };
                    let sid = call.call_sid.clone();
                    let step = match hook {
                        FlowHook::Start => runner.start(*call).await,
                        FlowHook::Resume => runner.resume(*call).await,
                        FlowHook::Ended => {
                            runner.ended(*call).await;
                            continue;
                        }
                    };
                    let more = lock(&self.state).apply_flow_step(&self.config, &sid, step, at);
                    queue.extend(more);
                }
            }
        }
    }

    async fn deliver(&self, out: Outgoing, at: DateTime<Utc>) {
        let fields = out.payload.flatten();
        let (content_type, body, json) = match out.encoding {
            Encoding::Json => {
                ("application/json".to_string(), out.payload.to_json_string(), Some(out.payload.to_json_value()))
            }
            Encoding::Multipart => {
                let boundary = lock(&self.state).next_boundary();
                (format!("multipart/form-data; boundary={boundary}"), multipart_body(&fields, &boundary), None)
            }
            Encoding::UrlEncoded => ("application/x-www-form-urlencoded".to_string(), urlencoded_body(&fields), None),
        };
        let sent = self
            .http
            .post(&out.url)
            .header(http::header::CONTENT_TYPE, content_type.as_str())
            .body(body.clone())
            .send()
            .await;
        let (response_status, error) = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let _ = response.bytes().await;
                (Some(status), None)
            }
            Err(e) => (None, Some(error_chain(&e))),
        };
        tracing::debug!(sid = %out.sid, kind = ?out.kind, status = ?response_status, error = ?error, "exotel sim callback");
        lock(&self.state).push_callback(SentCallback {
            at,
            kind: out.kind,
            sid: out.sid,
            url: out.url,
            content_type,
            body,
            fields,
            json,
            response_status,
            error,
        });
    }
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Scripts and inspects a running simulator; cheap to clone.
#[derive(Clone)]
pub struct SimHandle {
    inner: Arc<Inner>,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle").field("base_url", &self.inner.base_url).finish_non_exhaustive()
    }
}

impl SimHandle {
    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// `http://127.0.0.1:<port>/v1/Accounts/<sid>`.
    pub fn account_url(&self) -> String {
        format!("{}/v1/Accounts/{}", self.inner.base_url, self.inner.config.account_sid)
    }

    pub fn account_sid(&self) -> &str {
        &self.inner.config.account_sid
    }

    pub fn api_key(&self) -> &str {
        &self.inner.config.api_key
    }

    pub fn api_token(&self) -> &str {
        &self.inner.config.api_token
    }

    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// The book simulated callers register what they say in (shared with
    /// the sandbox's simulated ASR servers).
    pub fn transcripts(&self) -> &crate::speech::TranscriptBook {
        &self.inner.config.transcripts
    }

    /// The simulator's time now.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    pub fn clock(&self) -> &SimClock {
        &self.inner.clock
    }

    /// Makes the person behind `number` behave as `script` on later calls.
    pub fn script(&self, number: impl IntoNumber, script: CalleeScript) -> Result<(), SimError> {
        let number = number.into_number()?;
        lock(&self.inner.state).scripts.insert(number.as_str().to_string(), script);
        Ok(())
    }

    /// The behaviour of numbers without a script.
    pub fn set_default_script(&self, script: CalleeScript) {
        lock(&self.inner.state).default_script = script;
    }

    pub fn clear_scripts(&self) {
        lock(&self.inner.state).scripts.clear();
    }

    /// Installs the engine that plays flow (Url) and voicebot (StreamUrl) calls.
    pub fn set_flow_runner(&self, runner: Arc<dyn FlowRunner>) {
        *lock(&self.inner.flow_runner) = Some(runner);
    }

    /// Applies `fault` to the next `times` requests of `endpoint`.
    pub fn inject_fault(&self, endpoint: Endpoint, fault: Fault, times: u32) {
        if times > 0 {
            lock(&self.inner.state).faults.push(FaultRule { endpoint, fault, remaining: times });
        }
    }

    pub fn clear_faults(&self) {
        lock(&self.inner.state).faults.clear();
    }

    /// Moves a manual clock forward by `by`, firing every event that becomes
    /// due (call progress, callbacks — each delivery awaited) in time order.
    /// On the system clock this only fires what is already due.
    pub async fn advance(&self, by: Duration) {
        let until = crate::clock::add(self.now(), by);
        let until = if self.inner.clock.is_manual() { until } else { Utc::now() };
        self.inner.run_until(until).await;
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

    /// Every request received on the Exotel API, oldest first.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        lock(&self.inner.state).received.iter().cloned().collect()
    }

    /// Every callback sent, oldest first.
    pub fn callbacks_sent(&self) -> Vec<SentCallback> {
        lock(&self.inner.state).callbacks.iter().cloned().collect()
    }

    /// The callbacks sent about one call or SMS.
    pub fn callbacks_for(&self, sid: &str) -> Vec<SentCallback> {
        lock(&self.inner.state).callbacks.iter().filter(|c| c.sid == sid).cloned().collect()
    }

    pub fn clear_log(&self) {
        {
            let mut st = lock(&self.inner.state);
            st.received.clear();
            st.callbacks.clear();
        }
        lock(&self.inner.flow_records).clear();
    }

    /// Someone calls `exophone` (one of the account's) from `from`, and
    /// flow `flow_id` answers: the call comes in now, and its flow starts at
    /// the next turn of the event loop (`advance` / `run_due` on a manual
    /// clock, at once on the system clock). The caller's script (see
    /// [`SimHandle::script`]) supplies keys, speech and when they hang up
    /// (`hang_up_after` counts from the call coming in). Returns the CallSid.
    pub fn incoming_call(
        &self,
        from: impl IntoNumber,
        exophone: impl IntoNumber,
        flow_id: &str,
    ) -> Result<String, SimError> {
        let from = from.into_number()?;
        let exophone = exophone.into_number()?;
        let cfg = &self.inner.config;
        let flows = cfg.flows.as_ref().ok_or(SimError::FlowsNotConfigured)?;
        if flows.definitions.flow(flow_id).is_none() {
            return Err(SimError::UnknownFlow(flow_id.to_string()));
        }
        if !cfg.exophones.contains(&exophone) {
            return Err(SimError::NotAnExoPhone(exophone.masked()));
        }
        let sid = lock(&self.inner.state).incoming(from, exophone, flow_id, self.now());
        self.inner.wake.notify_one();
        Ok(sid)
    }

    /// Someone calls ExoPhone `to` from `from`, and the flow connected to
    /// that number answers ([`FlowConfig::exophone_flows`]): as
    /// [`SimHandle::incoming_call`] with that flow. Returns the CallSid and
    /// the flow id.
    pub fn call_exophone(&self, from: impl IntoNumber, to: impl IntoNumber) -> Result<(String, String), SimError> {
        let to = to.into_number()?;
        let flows = self.inner.config.flows.as_ref().ok_or(SimError::FlowsNotConfigured)?;
        let flow_id = flows.flow_for_exophone(&to).ok_or_else(|| SimError::NoFlowOnExoPhone(to.masked()))?.to_string();
        let sid = self.incoming_call(from, &to, &flow_id)?;
        Ok((sid, flow_id))
    }

    /// The ExoPhones a call can come into, and the flow each runs.
    pub fn exophone_flows(&self) -> Vec<(E164, String)> {
        match &self.inner.config.flows {
            Some(flows) => flows.exophone_flows.iter().map(|(n, f)| (n.clone(), f.clone())).collect(),
            None => Vec::new(),
        }
    }

    /// Answers a control request as `/_sim/{path}` would (`path` without
    /// the `/_sim/` prefix: `incoming`, `flows/{sid}`, `""` for the index):
    /// the HTTP status and the JSON body. For a host that serves the
    /// control endpoints under its own routes (the service in sandbox mode).
    pub async fn control(&self, method: &http::Method, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
        let path = match path.trim_matches('/') {
            "" => "/_sim".to_string(),
            rest => format!("/_sim/{rest}"),
        };
        control::answer(&self.inner, method, &path, body).await
    }

    /// What the flow engine did on a call: every applet visited, the
    /// requests and our answers, the branches, how the flow ended.
    pub fn flow_run(&self, call_sid: &str) -> Option<FlowRun> {
        lock(&self.inner.flow_records).run(call_sid).cloned()
    }

    /// The applets a call's flow visited, in order (empty for an unknown call).
    pub fn flow_log(&self, call_sid: &str) -> Vec<FlowLogEntry> {
        self.flow_run(call_sid).map(|r| r.entries).unwrap_or_default()
    }

    /// Every flow run kept, oldest first.
    pub fn flow_runs(&self) -> Vec<FlowRun> {
        lock(&self.inner.flow_records).runs()
    }

    /// The Voicebot streams of a call, oldest first.
    pub fn voicebot_streams(&self, call_sid: &str) -> Vec<StreamLog> {
        lock(&self.inner.flow_records).streams().into_iter().filter(|s| s.call_sid == call_sid).collect()
    }

    /// One Voicebot stream by its `stream_sid`.
    pub fn stream_log(&self, stream_sid: &str) -> Option<StreamLog> {
        lock(&self.inner.flow_records).streams().into_iter().find(|s| s.stream_sid == stream_sid)
    }

    /// The caller's side of a stream as a WAV file (also served at
    /// `/_sim/recordings/{stream_sid}.wav`).
    pub fn recording(&self, stream_sid: &str) -> Option<Vec<u8>> {
        lock(&self.inner.flow_records).recording(stream_sid).map(|wav| wav.as_ref().clone())
    }

    pub fn calls(&self) -> Vec<Call> {
        lock(&self.inner.state).calls.clone()
    }

    pub fn call(&self, sid: &str) -> Option<Call> {
        lock(&self.inner.state).call(sid).cloned()
    }

    /// A person sends an SMS (a reply to ours) from `from` to ExoPhone
    /// `to`: forwarded to [`SimConfig::incoming_sms_url`] as Exotel does
    /// (support.exotel.com article 45270): a HEAD, then a GET with
    /// `SmsSid`, `From`, `To` (national form), `Date` (IST) and `Body` in
    /// the query. Returns the GET as logged (kind
    /// [`CallbackKind::IncomingSms`]); the receiver's answer is in it.
    pub async fn send_incoming_sms(
        &self,
        from: impl IntoNumber,
        to: impl IntoNumber,
        body: &str,
    ) -> Result<SentCallback, SimError> {
        let from = from.into_number()?;
        let to = to.into_number()?;
        if !self.inner.config.exophones.contains(&to) {
            return Err(SimError::NotAnExoPhone(to.masked()));
        }
        let url = self.inner.config.incoming_sms_url.clone().ok_or(SimError::NoIncomingSmsUrl)?;
        let now = self.now();
        let sid = lock(&self.inner.state).ids.next_sid();
        let fields = vec![
            ("SmsSid".to_string(), sid.clone()),
            ("From".to_string(), from.national()),
            ("To".to_string(), to.national()),
            ("Date".to_string(), crate::clock::format_ist(now)),
            ("Body".to_string(), body.to_string()),
        ];
        let query = urlencoded_body(&fields);
        let sep = if url.contains('?') { '&' } else { '?' };
        let full = format!("{url}{sep}{query}");
        // Exotel checks the URL with HEAD first; a failing HEAD is logged
        // like any answer, and the GET still follows.
        let _ = self.inner.http.head(&full).send().await;
        let (response_status, error) = match self.inner.http.get(&full).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let _ = response.bytes().await;
                (Some(status), None)
            }
            Err(e) => (None, Some(error_chain(&e))),
        };
        let sent = SentCallback {
            at: now,
            kind: CallbackKind::IncomingSms,
            sid,
            url,
            content_type: String::new(),
            body: query,
            fields,
            json: None,
            response_status,
            error,
        };
        lock(&self.inner.state).push_callback(sent.clone());
        Ok(sent)
    }

    pub fn sms_messages(&self) -> Vec<SmsMessage> {
        lock(&self.inner.state).sms.clone()
    }

    pub fn sms(&self, sid: &str) -> Option<SmsMessage> {
        lock(&self.inner.state).sms_message(sid).cloned()
    }
}

/// A running simulator. Dereferences to its [`SimHandle`]; dropping it
/// stops the server.
pub struct ExotelSim {
    handle: SimHandle,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for ExotelSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExotelSim").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl ExotelSim {
    /// Binds `config.bind_ip:config.port` (loopback and a free port by
    /// default) and starts serving.
    pub async fn start(mut config: SimConfig) -> Result<ExotelSim, SimError> {
        // An ExoPhone connected to a flow is one of the account's numbers.
        let connected: Vec<E164> =
            config.flows.iter().flat_map(|f| f.exophone_flows.keys().cloned()).collect::<Vec<_>>();
        for number in connected {
            if !config.exophones.contains(&number) {
                config.exophones.push(number);
            }
        }
        let addr = SocketAddr::new(config.bind_ip, config.port);
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| SimError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind { addr, source })?;
        let http = reqwest::Client::builder()
            .timeout(config.callback_timeout)
            .no_proxy()
            .build()
            .map_err(|e| SimError::Client(error_chain(&e)))?;
        let clock = config.clock.clone();
        let max_log = config.max_log_entries;
        let inner = Arc::new(Inner {
            started_at: clock.now(),
            state: Mutex::new(State::new(config.seed, config.default_script.clone(), config.max_log_entries)),
            base_url: format!("http://{addr}"),
            clock,
            config,
            processing: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            http,
            flow_runner: Mutex::new(None),
            flow_records: Mutex::new(FlowRecords::new(max_log)),
            phones: Mutex::new(phones::Phones::default()),
        });
        if let Some(flows) = inner.config.flows.clone() {
            let engine = engine::FlowEngine::new(Arc::downgrade(&inner), flows, inner.config.transcripts.clone())?;
            *lock(&inner.flow_runner) = Some(Arc::new(engine));
        }
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(server::serve(inner.clone(), listener, shutdown_rx.clone()))];
        if !inner.clock.is_manual() {
            tasks.push(tokio::spawn(ticker(inner.clone(), shutdown_rx)));
        }
        Ok(ExotelSim { handle: SimHandle { inner }, addr, shutdown, tasks })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }

    /// Stops accepting requests and firing events.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Deref for ExotelSim {
    type Target = SimHandle;

    fn deref(&self) -> &SimHandle {
        &self.handle
    }
}

impl Drop for ExotelSim {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in &self.tasks {
            task.abort();
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

/// Runs a sandbox simulator (default [`SimConfig`], system clock) on
/// `127.0.0.1:<port>` until `shutdown` completes. Entry point of
/// `mangwale-exotel sim exotel --port <port>`.
pub async fn run_standalone(port: u16, shutdown: impl Future<Output = ()> + Send) -> Result<(), SimError> {
    run_standalone_with(SimConfig { port, ..SimConfig::default() }, shutdown).await
}

/// [`run_standalone`] with a given configuration.
pub async fn run_standalone_with(config: SimConfig, shutdown: impl Future<Output = ()> + Send) -> Result<(), SimError> {
    let sim = ExotelSim::start(config).await?;
    tracing::info!(
        base_url = %sim.base_url(),
        account_sid = %sim.account_sid(),
        api_key = %sim.api_key(),
        "Exotel simulator listening (API token: the configured one; control endpoints under /_sim/)"
    );
    if let Some(flows) = &sim.config().flows {
        tracing::info!(
            service = %engine::strip_userinfo(&flows.service_base_url),
            flows = flows.definitions.flows().len(),
            app_ids = ?flows.app_ids,
            "Exotel simulator runs flows against the service"
        );
    }
    shutdown.await;
    sim.shutdown().await;
    Ok(())
}
