//! The flow engine: plays our flows the way Exotel does (see [`FlowEngine`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use mangwale_core::E164;
use serde_json::{Value, json};

use super::calls::{CallStatus, plan};
use super::flow_log::{
    AppletExchange, AppletResponse, ConnectReport, DialAttempt, FlowLogEntry, FlowOutcome, FlowRun, StreamLog,
};
use super::flows::{AppletKind, AppletType, FlowDef, FlowDefinitions, FlowDirection};
use super::phones::{LegDecision, PhoneListening, PhonePrompt, take_keys};
use super::script::{CalleeScript, FlowCall, FlowMode, FlowRunner, FlowStep, PromptContext};
use super::state::LegOutcome;
use super::voicebot::{Session, StreamEnd, StreamSetup, VoicebotConfig, Wake, new_log};
use super::{Inner, SimError, error_chain};
use crate::clock::{format_ist, format_rfc1123_ist, lock};
use crate::speech::{CallerVoice, TranscriptBook, Voice};

/// Exotel's placeholder `EndTime` on applet requests.
pub const END_TIME_PLACEHOLDER: &str = "1970-01-01 05:30:00";
/// The incoming flows of `flows/exotel-flows.toml` the sandbox's ExoPhones run.
pub const INCOMING_FLOW: &str = "customer_voice_order";
pub const MISSED_CALL_FLOW: &str = "missed_call";
pub const MASKED_CALL_FLOW: &str = "masked_call";
/// Applets run back to back without simulated time passing before the
/// engine assumes a loop and drops the call.
const MAX_INSTANT_APPLETS: u32 = 64;

/// How the simulator runs our flows against our service. Part of
/// [`SimConfig`](super::SimConfig) (`flows`); the sandbox sets it to the
/// service's own base URL and token.
#[derive(Clone)]
pub struct FlowConfig {
    pub definitions: FlowDefinitions,
    /// `PUBLIC_BASE_URL` of our service (applet URLs are relative to it).
    /// Credentials in it (`http://user:pass@host`) go out as Basic auth,
    /// also on the Voicebot WebSocket (http → ws, https → wss).
    pub service_base_url: String,
    /// `EXOTEL_WEBHOOK_TOKEN`, appended as `token=` to every applet URL.
    pub webhook_token: Option<String>,
    /// Exotel app id (the end of the flow URL) → flow id.
    pub app_ids: BTreeMap<String, String>,
    /// ExoPhone → the flow connected to it (Dashboard → ExoPhones →
    /// *Connect to flow*): what a call into that number runs
    /// ([`SimHandle::call_exophone`](super::SimHandle::call_exophone)).
    pub exophone_flows: BTreeMap<E164, String>,
    /// Exotel's internal `tenant_id` parameter.
    pub tenant_id: String,
    /// How long Exotel waits for one applet URL (integrators report ~5 s).
    pub applet_timeout: Duration,
    /// Speaking time per character of Greeting and Gather text.
    pub speech_per_char: Duration,
    /// Playing time of one audio URL.
    pub audio_prompt_duration: Duration,
    /// Time between two scripted key presses (and from the end of a prompt to the first).
    pub key_interval: Duration,
    /// Ring timeout of a Connect attempt when the answer has no `max_ringing_duration`.
    pub connect_ring_timeout: Duration,
    /// The silence after the caller's words that ends a Record applet's
    /// recording (it is part of the recording).
    pub record_silence: Duration,
    pub voicebot: VoicebotConfig,
    /// How scripted callers sound, in Voicebot streams and in the
    /// recordings of Record applets; `None`: the tones stand-in at
    /// `speech_per_char` (deterministic, no external program). Sandbox mode
    /// uses [`Voice::espeak`].
    pub caller_voice: Option<Voice>,
}

impl FlowConfig {
    /// Flows `definitions` against the service at `service_base_url`, with
    /// Exotel-like defaults: 5 s applet timeout, 60 ms per spoken character,
    /// 3 s per audio URL, keys 300 ms apart, 45 s Connect ring timeout; and
    /// the sandbox's ExoPhones connected to the incoming flows that exist:
    /// [`DEFAULT_EXOPHONE`](super::DEFAULT_EXOPHONE) → `customer_voice_order`,
    /// [`DEFAULT_MISSED_CALL_EXOPHONE`](super::DEFAULT_MISSED_CALL_EXOPHONE) →
    /// `missed_call`, [`DEFAULT_MASKING_EXOPHONE`](super::DEFAULT_MASKING_EXOPHONE)
    /// → `masked_call`.
    pub fn new(
        service_base_url: impl Into<String>,
        webhook_token: Option<String>,
        definitions: FlowDefinitions,
    ) -> Self {
        FlowConfig {
            definitions,
            service_base_url: service_base_url.into(),
            webhook_token,
            app_ids: BTreeMap::new(),
            exophone_flows: BTreeMap::new(),
            tenant_id: "1".to_string(),
            applet_timeout: Duration::from_secs(5),
            speech_per_char: Duration::from_millis(60),
            audio_prompt_duration: Duration::from_secs(3),
            key_interval: Duration::from_millis(300),
            connect_ring_timeout: Duration::from_secs(45),
            record_silence: Duration::from_secs(2),
            voicebot: VoicebotConfig::default(),
            caller_voice: None,
        }
        .with_default_exophones()
    }

    fn with_default_exophones(mut self) -> Self {
        for (number, flow_id) in [
            (super::DEFAULT_EXOPHONE, INCOMING_FLOW),
            (super::DEFAULT_MISSED_CALL_EXOPHONE, MISSED_CALL_FLOW),
            (super::DEFAULT_MASKING_EXOPHONE, MASKED_CALL_FLOW),
        ] {
            if let (Ok(number), Some(_)) = (E164::parse(number), self.definitions.flow(flow_id)) {
                self.exophone_flows.insert(number, flow_id.to_string());
            }
        }
        self
    }

    /// Connects ExoPhone `number` to flow `flow_id` (replacing its flow).
    pub fn with_exophone(mut self, number: &E164, flow_id: &str) -> Self {
        self.exophone_flows.insert(number.clone(), flow_id.to_string());
        self
    }

    /// Scripted callers speak with `voice`.
    pub fn with_caller_voice(mut self, voice: Voice) -> Self {
        self.caller_voice = Some(voice);
        self
    }

    /// The flow a call into `exophone` runs.
    pub fn flow_for_exophone(&self, exophone: &E164) -> Option<&str> {
        self.exophone_flows.get(exophone).map(String::as_str)
    }

    /// Maps Exotel app id `app_id` to flow `flow_id`.
    pub fn with_app_id(mut self, app_id: &str, flow_id: &str) -> Self {
        self.app_ids.insert(app_id.to_string(), flow_id.to_string());
        self
    }

    /// The flow an app id runs.
    pub fn flow_for_app(&self, app_id: &str) -> Option<&FlowDef> {
        match self.app_ids.get(app_id) {
            Some(flow_id) => self.definitions.flow(flow_id),
            None => self.definitions.flow(app_id),
        }
    }

    /// The app id of a flow: the first one mapped to it, else its own id.
    pub fn app_id_of(&self, flow_id: &str) -> String {
        self.app_ids.iter().find(|(_, f)| *f == flow_id).map(|(a, _)| a.clone()).unwrap_or_else(|| flow_id.to_string())
    }
}

impl fmt::Debug for FlowConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowConfig")
            .field("flows", &self.definitions.flows().iter().map(|f| f.id.as_str()).collect::<Vec<_>>())
            .field("service_base_url", &strip_userinfo(&self.service_base_url))
            .field("webhook_token", &self.webhook_token.as_ref().map(|_| "***"))
            .field("app_ids", &self.app_ids)
            .field("exophone_flows", &self.exophone_flows.iter().map(|(n, f)| (n.masked(), f)).collect::<Vec<_>>())
            .field("applet_timeout", &self.applet_timeout)
            .field("speech_per_char", &self.speech_per_char)
            .field("caller_voice", &self.caller_voice)
            .finish_non_exhaustive()
    }
}

/// A URL without `user:pass@`.
pub(crate) fn strip_userinfo(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string().trim_end_matches('/').to_string()
        }
        _ => url.to_string(),
    }
}

/// What a Connect left for later applets.
#[derive(Debug, Clone)]
struct DialResult {
    status: &'static str,
    duration: u32,
    whom: String,
}

/// Parameters that go to the next applet only.
#[derive(Debug, Default)]
struct Once {
    digits: Option<String>,
    select: Option<String>,
    recording_url: Option<String>,
    stream: Vec<(String, String)>,
}

enum DialPhase {
    Next,
    Ringing { leg: usize, number: String, outcome: LegOutcome, talk: Option<Duration> },
    Talking { leg: usize, number: String, since: DateTime<Utc> },
}

struct Dial {
    next: String,
    entry: usize,
    /// The index of its [`ConnectReport`] in the run.
    report: usize,
    numbers: Vec<String>,
    index: usize,
    ring_timeout: Duration,
    max_talk: Option<Duration>,
    record: bool,
    /// What the callees see: `outgoing_phone_number`, else the ExoPhone called.
    caller_id: E164,
    last_status: &'static str,
    last_number: String,
    attempts: Vec<DialAttempt>,
    phase: DialPhase,
}

struct StreamRun {
    session: Session,
    next: Option<String>,
    entry: Option<usize>,
    log: Arc<Mutex<StreamLog>>,
    /// The URL the stream was opened to, echoed as `Stream[StreamUrl]`.
    url: String,
}

/// A Gather waiting for the keys of a person holding the phone.
struct Listen {
    applet_id: String,
    spec: GatherSpec,
    entry: FlowLogEntry,
    next: String,
    no_input: Option<String>,
    /// The play of the prompt under way (0: the first, then the repeats).
    play: u32,
    plays: Vec<Value>,
    started: DateTime<Utc>,
}

enum Pending {
    Goto(String),
    Listen(Box<Listen>),
    Dial(Box<Dial>),
    Stream(Box<StreamRun>),
    Drop {
        applet: String,
        reason: String,
    },
    /// Nothing to do until the call ends.
    Hold,
}

/// What a step leads to.
enum Next {
    Goto(String),
    Wait(Duration, Pending),
    /// Stay in this state until the call ends.
    Hold(Pending),
    End(FlowOutcome),
}

struct Run {
    sid: String,
    account_sid: String,
    from: E164,
    exophone: E164,
    created_at: DateTime<Utc>,
    custom_field: Option<String>,
    incoming: bool,
    answered: bool,
    app_id: String,
    flow: Option<FlowDef>,
    script: CalleeScript,
    used_keys: Vec<usize>,
    used_speech: Vec<usize>,
    gather_visits: u32,
    current: Option<String>,
    pending: Pending,
    once: Once,
    dial: Option<DialResult>,
    call_type: &'static str,
}

/// The applet ids a script prompt can name.
fn applet_ids(flow: &Option<FlowDef>) -> Vec<&str> {
    match flow {
        Some(flow) => flow.applets.iter().map(|a| a.id.as_str()).collect(),
        None => vec!["voicebot"],
    }
}

/// A Gather answer, with Exotel's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
struct GatherSpec {
    prompt: String,
    prompt_is_audio: bool,
    repeat_prompt: String,
    repeat_is_audio: bool,
    max_digits: usize,
    finish_on_key: Option<char>,
    input_timeout: Duration,
    repeat_menu: u32,
}

fn lenient_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn lenient_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// `{"text": …}` or `{"audio_url": …}`: the text and whether it is audio.
fn prompt_of(v: &Value) -> Option<(String, bool)> {
    if let Some(text) = v.get("text").and_then(Value::as_str) {
        return Some((text.to_string(), false));
    }
    v.get("audio_url").and_then(Value::as_str).map(|u| (u.to_string(), true))
}

fn parse_gather(body: &str) -> Result<GatherSpec, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("the Gather answer is not JSON ({e})"))?;
    let (prompt, prompt_is_audio) = v
        .get("gather_prompt")
        .and_then(prompt_of)
        .ok_or("the Gather answer has no gather_prompt with text or audio_url")?;
    let (repeat_prompt, repeat_is_audio) =
        v.get("repeat_gather_prompt").and_then(prompt_of).unwrap_or((prompt.clone(), prompt_is_audio));
    let finish_on_key = match v.get("finish_on_key") {
        None | Some(Value::Null) => Some('#'),
        Some(Value::String(s)) => s.chars().next(),
        Some(other) => other.to_string().chars().next(),
    };
    Ok(GatherSpec {
        prompt,
        prompt_is_audio,
        repeat_prompt,
        repeat_is_audio,
        max_digits: v.get("max_input_digits").and_then(lenient_u64).filter(|n| *n > 0).unwrap_or(255) as usize,
        finish_on_key,
        input_timeout: Duration::from_secs(v.get("input_timeout").and_then(lenient_u64).unwrap_or(5)),
        repeat_menu: v.get("repeat_menu").and_then(lenient_u64).map(|n| n.min(u64::from(u32::MAX)) as u32).unwrap_or(0),
    })
}

/// How one play of a Gather prompt went.
#[derive(Debug, Clone, PartialEq)]
struct KeysOutcome {
    /// From the end of the prompt until the Gather stops listening.
    listened: Duration,
    digits: String,
    /// `finish_on_key`, `max_input_digits` or `input_timeout`.
    ended_by: &'static str,
}

/// The keys `pressed` after a prompt, under the Gather's rules.
fn collect_keys(spec: &GatherSpec, pressed: &str, key_interval: Duration) -> KeysOutcome {
    let mut listened = Duration::ZERO;
    let mut digits = String::new();
    for key in pressed.chars() {
        if key_interval > spec.input_timeout {
            break;
        }
        listened += key_interval;
        if Some(key) == spec.finish_on_key {
            return KeysOutcome { listened, digits, ended_by: "finish_on_key" };
        }
        digits.push(key);
        if digits.chars().count() >= spec.max_digits {
            return KeysOutcome { listened, digits, ended_by: "max_input_digits" };
        }
    }
    KeysOutcome { listened: listened + spec.input_timeout, digits, ended_by: "input_timeout" }
}

/// Plays our flows (`flows/exotel-flows.toml`) the way Exotel does:
/// calls our applet URLs with Exotel's parameters and branches on our
/// answers, on the simulator's clock. Installed by
/// [`ExotelSim::start`](super::ExotelSim::start) when
/// [`SimConfig::flows`](super::SimConfig::flows) is set.
///
/// # Which flow runs
///
/// - A `Calls/connect` with `Url=http://my.exotel.com/<sid>/exoml/start_voice/<app_id>`:
///   [`FlowConfig::app_ids`] maps the app id to a flow id; an app id that is
///   not mapped but is itself a flow id runs that flow (the service's
///   sandbox uses flow ids as app ids). Unknown app ids hang up at once.
/// - [`SimHandle::incoming_call`](super::SimHandle::incoming_call): someone
///   calls an ExoPhone whose flow is given.
/// - A `StreamUrl` call: a Voicebot stream straight to that URL; the call
///   ends with the stream.
///
/// # Requests
///
/// Every applet URL is `service_base_url + url`, then `token=<webhook_token>`
/// and Exotel's query parameters are appended. Greeting: `HEAD` (with no
/// Exotel parameters), then `GET` with `CallSid, From, To, DialWhomNumber`
/// (+ `CustomField`, `digits`); both must answer 200 with the same
/// `Content-Type: text/plain`. Gather, Passthru, Connect:
/// `GET` with `CallSid, CallFrom, CallTo, CallStatus, Direction, Created,
/// DialCallDuration, StartTime, EndTime, CallType, DialWhomNumber, flow_id,
/// tenant_id, From, To, CurrentTime`, then when they apply `digits` (quoted,
/// from the Gather just before), `CustomField` (API calls), `DialCallStatus`
/// (after a Connect), `RecordingUrl` (just after a recorded Connect or a
/// Record applet) and
/// `Stream[StreamSID]`, `Stream[Status]`, `Stream[Duration]`,
/// `Stream[DisconnectedBy]`, `Stream[StreamUrl]` (the applet's URL, token
/// included), `Stream[RecordingUrl]` (just after a Voicebot).
/// Gather and Connect also carry `Exotel-Version: 1.0`.
///
/// Values: `Direction` is `outbound-api` for API calls and `incoming`
/// otherwise; `CallStatus` is `in-progress`, or `ringing` on an incoming
/// call until an applet plays audio (greeting, gather, connect, voicebot:
/// Exotel then answers it); `CallType` is `call-attempt`, then `completed`
/// or `incomplete` after a Connect.
///
/// # Failures
///
/// No answer within [`FlowConfig::applet_timeout`] (the call is dropped that
/// much simulated time later), a connection error, a 4xx/5xx, a Greeting
/// without `text/plain` or whose HEAD and GET differ, a Passthru before a
/// Switch Case that does not answer 200 `text/plain` `{"select":"<case>"}`
/// and nothing else, or Gather/Connect JSON that cannot be read: Exotel
/// abandons the applet and drops the call ([`FlowOutcome::Dropped`]).
///
/// # Time
///
/// Requests take no simulated time. Speaking takes
/// [`FlowConfig::speech_per_char`] per character (an audio URL
/// [`FlowConfig::audio_prompt_duration`]); keys come
/// [`FlowConfig::key_interval`] apart after a prompt; waiting for keys takes
/// the Gather's `input_timeout`. Callee scripts supply keys and speech by
/// the rule of [`PromptContext`].
///
/// # Assumptions where Exotel's behaviour is not established
///
/// - A Connect dials its numbers one after another (`parallel_ringing` and
///   `fetch_after_attempt` are not simulated), each ringing
///   `max_ringing_duration` (else [`FlowConfig::connect_ring_timeout`]); the
///   callee talks for its script's `hang_up_after`, capped by
///   `max_conversation_duration`. A recorded, answered Connect passes an
///   S3-style `RecordingUrl` on.
/// - A Voicebot whose handshake fails twice (Exotel retries once) passes
///   `Stream[Status]=failed` on and the flow continues. Only `ws://` is
///   simulated (no TLS): a `wss://` stream fails that way.
/// - In a Voicebot stream the caller starts speaking
///   [`VoicebotConfig::speech_start`] after the start, utterances
///   [`VoicebotConfig::speech_gap`] apart, then presses its keys
///   [`FlowConfig::key_interval`] apart.
/// - A Record applet (Exotel's Voicemail applet) records the caller's next
///   scripted utterance matching the applet (see [`PromptContext`]), spoken
///   by the caller's voice ([`FlowConfig::caller_voice`]) and registered in
///   the transcript book: 300 ms after the beep they speak,
///   [`FlowConfig::record_silence`] of silence ends the recording,
///   `max_length` caps it. Silence alone when the script has nothing to
///   say. The WAV (8 kHz mono 16-bit, the caller's samples unchanged) is
///   served behind the account's credentials, its URL
///   passed to the next applet as `RecordingUrl`, and `CallType` becomes
///   `voicemail` (the Passthru article's value after a Voicemail applet).
/// - Incoming flows never carry `CustomField`; a flow that never plays audio
///   (the missed-call flow) leaves the call unanswered (`no-answer`).
pub struct FlowEngine {
    inner: Weak<Inner>,
    config: FlowConfig,
    voice: CallerVoice,
    http: reqwest::Client,
    runs: Mutex<HashMap<String, Run>>,
}

impl fmt::Debug for FlowEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowEngine").field("config", &self.config).finish_non_exhaustive()
    }
}

impl FlowRunner for FlowEngine {
    fn start(&self, call: FlowCall) -> BoxFuture<'_, FlowStep> {
        Box::pin(self.on_start(call))
    }

    fn resume(&self, call: FlowCall) -> BoxFuture<'_, FlowStep> {
        Box::pin(self.on_resume(call))
    }

    fn ended(&self, call: FlowCall) -> BoxFuture<'_, ()> {
        Box::pin(self.on_ended(call))
    }
}

impl FlowEngine {
    /// The engine of `config`; scripted callers register their words in `book`.
    pub(crate) fn new(inner: Weak<Inner>, config: FlowConfig, book: TranscriptBook) -> Result<FlowEngine, SimError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SimError::Client(error_chain(&e)))?;
        let voice = config.caller_voice.clone().unwrap_or(Voice::Tones { per_char: config.speech_per_char });
        let voice = CallerVoice::new(voice, book);
        Ok(FlowEngine { inner, config, voice, http, runs: Mutex::new(HashMap::new()) })
    }

    async fn on_start(&self, call: FlowCall) -> FlowStep {
        let Some(inner) = self.inner.upgrade() else { return FlowStep::Done };
        let now = call.now;
        let (flow, app_id, incoming, direct) = match &call.mode {
            FlowMode::Flow { url, flow_id } => {
                let app_id = flow_id.clone().unwrap_or_else(|| url.clone());
                (self.config.flow_for_app(&app_id).cloned(), app_id, false, None)
            }
            FlowMode::Incoming { flow_id } => {
                (self.config.definitions.flow(flow_id).cloned(), self.config.app_id_of(flow_id), true, None)
            }
            FlowMode::Voicebot { stream_url, .. } => (None, String::new(), false, Some(stream_url.clone())),
        };
        let mut run = Run {
            sid: call.call_sid.clone(),
            account_sid: call.account_sid.clone(),
            from: call.from.clone(),
            exophone: call.exophone.clone(),
            created_at: call.created_at,
            custom_field: call.custom_field.clone(),
            incoming,
            answered: !incoming,
            app_id: app_id.clone(),
            flow: flow.clone(),
            script: call.script.clone(),
            used_keys: Vec::new(),
            used_speech: Vec::new(),
            gather_visits: 0,
            current: None,
            pending: Pending::Hold,
            once: Once::default(),
            dial: None,
            call_type: "call-attempt",
        };
        lock(&inner.flow_records).push_run(FlowRun {
            call_sid: run.sid.clone(),
            flow_id: flow.as_ref().map(|f| f.id.clone()),
            app_id: (direct.is_none()).then(|| app_id.clone()),
            direction: if incoming { FlowDirection::Incoming } else { FlowDirection::Outbound },
            started_at: now,
            ended_at: None,
            outcome: None,
            entries: Vec::new(),
            connects: Vec::new(),
        });
        let first = match (&flow, direct) {
            (_, Some(url)) => self.start_stream(&mut run, None, None, url, now).await,
            (Some(flow), None) => Next::Goto(flow.start.clone()),
            (None, None) => Next::End(FlowOutcome::UnknownFlow { app_id }),
        };
        self.drive(run, first, now).await
    }

    async fn on_resume(&self, call: FlowCall) -> FlowStep {
        let Some(mut run) = lock(&self.runs).remove(&call.call_sid) else { return FlowStep::Done };
        let pending = std::mem::replace(&mut run.pending, Pending::Hold);
        let next = self.resume_pending(&mut run, pending, call.now).await;
        self.drive(run, next, call.now).await
    }

    async fn on_ended(&self, call: FlowCall) {
        if let Some(inner) = self.inner.upgrade() {
            lock(&inner.phones).call_ended(&call.call_sid);
        }
        let Some(mut run) = lock(&self.runs).remove(&call.call_sid) else { return };
        let now = call.now;
        match std::mem::replace(&mut run.pending, Pending::Hold) {
            Pending::Listen(listen) => {
                // Hung up while the Gather listened: what was played so far.
                let listen = *listen;
                let mut entry = listen.entry;
                entry.detail = gather_detail(&listen.spec, &listen.plays, None, elapsed_since(listen.started, now));
                self.push_entry(&run.sid, entry);
            }
            Pending::Stream(mut stream) => {
                let end = stream.session.stop("callended", "user", now).await;
                self.record_stream_end(&run, &stream, &end);
            }
            Pending::Dial(mut dial) => {
                // Hung up mid-conversation: the callee was connected all the same.
                let talked = match &dial.phase {
                    DialPhase::Talking { number, since, .. } => {
                        let duration = u32::try_from((now - *since).num_seconds().max(0)).unwrap_or(u32::MAX);
                        if let Some(attempt) = dial.attempts.last_mut() {
                            attempt.status = Some("completed".to_string());
                            attempt.talk_secs = Some(duration);
                        }
                        Some(DialResult { status: "completed", duration, whom: number.clone() })
                    }
                    _ => None,
                };
                let detail = json!({"numbers": dial.numbers, "attempts": dial.attempts, "ended_by": "call ended"});
                self.update_entry(&run.sid, dial.entry, |e| e.detail = detail);
                self.report_connect(&run.sid, &dial, talked.as_ref());
            }
            _ => {}
        }
        self.interrupt_last(&run.sid, now);
        self.finish(&run, FlowOutcome::CallEnded { applet_id: run.current.clone() }, now);
    }

    /// The applet under way when the call ended leads nowhere.
    fn interrupt_last(&self, sid: &str, now: DateTime<Utc>) {
        let Some(inner) = self.inner.upgrade() else { return };
        let mut records = lock(&inner.flow_records);
        if let Some(entry) = records.run_mut(sid).and_then(|r| r.entries.last_mut()) {
            entry.branch = None;
            if let Value::Object(detail) = &mut entry.detail {
                detail.insert("interrupted_at".into(), json!(format_ist(now)));
            } else {
                entry.detail = json!({"interrupted_at": format_ist(now)});
            }
        }
    }

    /// Runs steps until one needs simulated time.
    async fn drive(&self, mut run: Run, mut next: Next, now: DateTime<Utc>) -> FlowStep {
        let mut instant = 0;
        loop {
            match next {
                Next::Goto(id) => {
                    instant += 1;
                    if instant > MAX_INSTANT_APPLETS {
                        let reason = "the flow loops without any time passing".to_string();
                        self.finish(&run, FlowOutcome::Dropped { applet_id: id, reason }, now);
                        return FlowStep::HangUp;
                    }
                    next = self.enter(&mut run, &id, now).await;
                }
                Next::Wait(d, pending) if d.is_zero() => next = self.resume_pending(&mut run, pending, now).await,
                Next::Wait(d, pending) => {
                    run.pending = pending;
                    lock(&self.runs).insert(run.sid.clone(), run);
                    return FlowStep::Wait(d);
                }
                Next::Hold(pending) => {
                    run.pending = pending;
                    lock(&self.runs).insert(run.sid.clone(), run);
                    return FlowStep::Done;
                }
                Next::End(outcome) => {
                    self.finish(&run, outcome, now);
                    return FlowStep::HangUp;
                }
            }
        }
    }

    async fn resume_pending(&self, run: &mut Run, pending: Pending, now: DateTime<Utc>) -> Next {
        match pending {
            Pending::Goto(id) => Next::Goto(id),
            Pending::Listen(listen) => self.listen_resume(run, *listen, now),
            Pending::Dial(dial) => self.dial_step(run, *dial, now),
            Pending::Stream(mut stream) => {
                let turns = match self.inner.upgrade() {
                    Some(inner) if run.script.is_interactive() => lock(&inner.phones).take_turns(&run.sid),
                    _ => Vec::new(),
                };
                if !turns.is_empty() {
                    stream.session.add_live_turns(turns, &self.voice).await;
                }
                match stream.session.wake(now).await {
                    Wake::Continue(at) => Next::Wait(until(now, at), Pending::Stream(stream)),
                    Wake::Ended(end) => self.stream_ended(run, *stream, end),
                }
            }
            Pending::Drop { applet, reason } => Next::End(FlowOutcome::Dropped { applet_id: applet, reason }),
            Pending::Hold => Next::Hold(Pending::Hold),
        }
    }

    fn finish(&self, run: &Run, outcome: FlowOutcome, now: DateTime<Utc>) {
        let Some(inner) = self.inner.upgrade() else { return };
        let mut records = lock(&inner.flow_records);
        if let Some(r) = records.run_mut(&run.sid)
            && r.outcome.is_none()
        {
            r.outcome = Some(outcome);
            r.ended_at = Some(now);
        }
    }

    fn push_entry(&self, sid: &str, entry: FlowLogEntry) -> usize {
        let Some(inner) = self.inner.upgrade() else { return 0 };
        let mut records = lock(&inner.flow_records);
        match records.run_mut(sid) {
            Some(run) => {
                run.entries.push(entry);
                run.entries.len() - 1
            }
            None => 0,
        }
    }

    fn update_entry(&self, sid: &str, index: usize, f: impl FnOnce(&mut FlowLogEntry)) {
        let Some(inner) = self.inner.upgrade() else { return };
        let mut records = lock(&inner.flow_records);
        if let Some(entry) = records.run_mut(sid).and_then(|r| r.entries.get_mut(index)) {
            f(entry);
        }
    }

    /// Exotel answers an incoming call when the flow first plays audio.
    fn answer(&self, run: &mut Run, now: DateTime<Utc>) {
        if run.answered {
            return;
        }
        run.answered = true;
        if let Some(inner) = self.inner.upgrade() {
            lock(&inner.state).answer_incoming(&run.sid, now);
        }
    }

    /// Exotel's query parameters for an applet of type `kind`.
    fn params(&self, run: &Run, once: &Once, kind: AppletType, now: DateTime<Utc>) -> Vec<(String, String)> {
        let from = run.from.national();
        let to = run.exophone.national();
        let whom = run.dial.as_ref().map(|d| d.whom.clone()).unwrap_or_default();
        let mut p: Vec<(String, String)> = Vec::new();
        let mut add = |k: &str, v: String| p.push((k.to_string(), v));
        if kind == AppletType::Greeting {
            add("CallSid", run.sid.clone());
            add("From", from);
            add("To", to);
            add("DialWhomNumber", whom);
            if let Some(cf) = &run.custom_field {
                add("CustomField", cf.clone());
            }
            if let Some(d) = &once.digits {
                add("digits", format!("\"{d}\""));
            }
            return p;
        }
        let status = if run.answered { CallStatus::InProgress } else { CallStatus::Ringing };
        add("CallSid", run.sid.clone());
        add("CallFrom", from.clone());
        add("CallTo", to.clone());
        add("CallStatus", status.as_str().to_string());
        add("Direction", if run.incoming { "incoming" } else { "outbound-api" }.to_string());
        add("Created", format_rfc1123_ist(run.created_at));
        add("DialCallDuration", run.dial.as_ref().map(|d| d.duration).unwrap_or(0).to_string());
        add("StartTime", format_ist(run.created_at));
        add("EndTime", END_TIME_PLACEHOLDER.to_string());
        add("CallType", run.call_type.to_string());
        add("DialWhomNumber", whom);
        add("flow_id", run.app_id.clone());
        add("tenant_id", self.config.tenant_id.clone());
        add("From", from);
        add("To", to);
        add("CurrentTime", format_ist(now));
        if let Some(d) = &once.digits {
            add("digits", format!("\"{d}\""));
        }
        if let Some(cf) = &run.custom_field {
            add("CustomField", cf.clone());
        }
        if let Some(dial) = &run.dial {
            add("DialCallStatus", dial.status.to_string());
        }
        if let Some(url) = &once.recording_url {
            add("RecordingUrl", url.clone());
        }
        p.extend(once.stream.iter().cloned());
        p
    }

    /// `base + path`, and the same with the token appended.
    fn applet_url(&self, path: &str) -> (String, String) {
        let plain = format!("{}{path}", self.config.service_base_url.trim_end_matches('/'));
        let with_token = match &self.config.webhook_token {
            Some(token) => {
                let sep = if plain.contains('?') { '&' } else { '?' };
                let encoded: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
                format!("{plain}{sep}token={encoded}")
            }
            None => plain.clone(),
        };
        (with_token, strip_userinfo(&plain))
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        params: Vec<(String, String)>,
        exotel_version: bool,
    ) -> AppletExchange {
        let (url, log_url) = self.applet_url(path);
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &params {
                query.append_pair(k, v);
            }
            query.finish()
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let full = format!("{url}{sep}{query}");
        let headers: Vec<(String, String)> =
            if exotel_version { vec![("Exotel-Version".to_string(), "1.0".to_string())] } else { Vec::new() };
        let mut builder = self.http.request(method.clone(), &full).timeout(self.config.applet_timeout);
        for (k, v) in &headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let (response, error) = match builder.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let content_type =
                    resp.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
                match resp.text().await {
                    Ok(body) => (Some(AppletResponse { status, content_type, body }), None),
                    Err(e) if e.is_timeout() => (None, Some(self.timeout_message())),
                    Err(e) => (None, Some(format!("reading the answer failed: {}", error_chain(&e.without_url())))),
                }
            }
            Err(e) if e.is_timeout() => (None, Some(self.timeout_message())),
            Err(e) => (None, Some(format!("connection error: {}", error_chain(&e.without_url())))),
        };
        let params = params.into_iter().map(|(k, v)| (k, self.redact(&v))).collect();
        AppletExchange { method: method.to_string(), url: log_url, params, headers, response, error }
    }

    /// `value` with the webhook token (raw or percent-encoded) replaced by
    /// `***`, for the flow log (`Stream[StreamUrl]` carries it).
    fn redact(&self, value: &str) -> String {
        let Some(token) = self.config.webhook_token.as_deref().filter(|t| !t.is_empty()) else {
            return value.to_string();
        };
        let encoded: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
        value.replace(token, "***").replace(&encoded, "***")
    }

    fn timeout_message(&self) -> String {
        format!("timeout: no answer within {:?}", self.config.applet_timeout)
    }

    /// Logs a failed applet and drops the call (after the timeout, for timeouts).
    fn drop_call(&self, run: &Run, mut entry: FlowLogEntry, reason: String) -> Next {
        entry.error = Some(reason.clone());
        entry.branch = None;
        self.push_entry(&run.sid, entry);
        let applet = run.current.clone().unwrap_or_default();
        if reason.starts_with("timeout") {
            Next::Wait(self.config.applet_timeout, Pending::Drop { applet, reason })
        } else {
            Next::End(FlowOutcome::Dropped { applet_id: applet, reason })
        }
    }

    fn entry(&self, id: &str, kind: AppletType, now: DateTime<Utc>) -> FlowLogEntry {
        FlowLogEntry {
            at: now,
            applet_id: id.to_string(),
            applet_type: kind,
            requests: Vec::new(),
            detail: Value::Null,
            branch: None,
            error: None,
        }
    }

    /// Runs applet `id` of the flow.
    async fn enter(&self, run: &mut Run, id: &str, now: DateTime<Utc>) -> Next {
        let Some(applet) = run.flow.as_ref().and_then(|f| f.applet(id)).cloned() else {
            return Next::End(FlowOutcome::Dropped {
                applet_id: id.to_string(),
                reason: "no such applet in the flow".to_string(),
            });
        };
        run.current = Some(id.to_string());
        let once = std::mem::take(&mut run.once);
        let kind = applet.applet_type();
        let mut entry = self.entry(id, kind, now);
        match applet.kind {
            AppletKind::Greeting { url, next } => {
                self.answer(run, now);
                let params = self.params(run, &once, kind, now);
                // Exotel first sends HEAD and requires "the exact same
                // headers" as the GET (support 48285). Its articles do not
                // say which parameters the HEAD carries: the simulator sends
                // none, the strictest case.
                for (method, params) in [(reqwest::Method::HEAD, Vec::new()), (reqwest::Method::GET, params)] {
                    let exchange = self.request(method, &url, params, false).await;
                    let failure = greeting_failure(&exchange).or_else(|| match entry.requests.first() {
                        Some(head) => head_mismatch(head, &exchange),
                        None => None,
                    });
                    entry.requests.push(exchange);
                    if let Some(reason) = failure {
                        return self.drop_call(run, entry, reason);
                    }
                }
                let body = entry.body().unwrap_or_default().to_string();
                self.show(run, PhonePrompt::from_answer(now, id, "greeting", &body));
                let spoken = self.speaking_time(&body);
                entry.detail = json!({"spoken": body.trim(), "duration_ms": spoken.as_millis() as u64});
                entry.branch = Some(next.clone());
                self.push_entry(&run.sid, entry);
                Next::Wait(spoken, Pending::Goto(next))
            }
            AppletKind::Gather { url, next, no_input } => {
                self.answer(run, now);
                run.gather_visits += 1;
                let params = self.params(run, &once, kind, now);
                let exchange = self.request(reqwest::Method::GET, &url, params, true).await;
                let answer = json_answer(&exchange, "Gather").and_then(|body| parse_gather(&body));
                entry.requests.push(exchange);
                let spec = match answer {
                    Ok(spec) => spec,
                    Err(reason) => return self.drop_call(run, entry, reason),
                };
                if run.script.is_interactive() {
                    let listen = Listen {
                        applet_id: id.to_string(),
                        spec,
                        entry,
                        next,
                        no_input,
                        play: 0,
                        plays: Vec::new(),
                        started: now,
                    };
                    return self.listen_play(run, listen, now);
                }
                let (elapsed, digits, plays) = self.gather(run, id, &spec);
                let branch = match &digits {
                    Some(_) => next,
                    None => no_input.unwrap_or(next),
                };
                entry.detail = gather_detail(&spec, &plays, digits.as_deref(), elapsed);
                entry.branch = Some(branch.clone());
                self.push_entry(&run.sid, entry);
                run.once.digits = digits;
                Next::Wait(elapsed, Pending::Goto(branch))
            }
            AppletKind::Passthru { url, next, on_302 } => {
                let params = self.params(run, &once, kind, now);
                let exchange = self.request(reqwest::Method::GET, &url, params, false).await;
                let answer = exchange.response.clone();
                let error = exchange.error.clone();
                entry.requests.push(exchange);
                let Some(answer) = answer else {
                    return self.drop_call(run, entry, error.unwrap_or_default());
                };
                match answer.status {
                    200..=299 => {
                        let to_switch = run
                            .flow
                            .as_ref()
                            .and_then(|f| f.applet(&next))
                            .is_some_and(|a| a.applet_type() == AppletType::Switch);
                        if to_switch {
                            match switch_answer(&answer) {
                                Ok(select) => run.once.select = Some(select),
                                Err(reason) => return self.drop_call(run, entry, reason),
                            }
                            entry.detail = json!({"select": run.once.select});
                        }
                        entry.branch = Some(next.clone());
                        self.push_entry(&run.sid, entry);
                        Next::Goto(next)
                    }
                    302 => match on_302 {
                        Some(branch) => {
                            entry.branch = Some(branch.clone());
                            self.push_entry(&run.sid, entry);
                            Next::Goto(branch)
                        }
                        None => {
                            entry.detail = json!({"ended": "302 without on_302"});
                            self.push_entry(&run.sid, entry);
                            Next::End(FlowOutcome::HungUp { applet_id: id.to_string() })
                        }
                    },
                    status => self.drop_call(run, entry, format!("HTTP {status} from the Passthru URL")),
                }
            }
            AppletKind::Switch { cases, default } => {
                let case = once.select.as_deref().filter(|s| cases.contains_key(*s));
                let branch = case.map(|c| cases[c].clone()).unwrap_or(default);
                entry.detail = json!({"select": once.select, "case": case.unwrap_or("default")});
                entry.branch = Some(branch.clone());
                self.push_entry(&run.sid, entry);
                Next::Goto(branch)
            }
            AppletKind::Connect { url, next } => {
                self.answer(run, now);
                let params = self.params(run, &once, kind, now);
                let exchange = self.request(reqwest::Method::GET, &url, params, true).await;
                let answer = json_answer(&exchange, "Connect").and_then(|body| {
                    serde_json::from_str::<Value>(&body).map_err(|e| format!("the Connect answer is not JSON ({e})"))
                });
                entry.requests.push(exchange);
                let answer = match answer {
                    Ok(v) => v,
                    Err(reason) => return self.drop_call(run, entry, reason),
                };
                let numbers: Vec<String> = answer
                    .pointer("/destination/numbers")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter().map(|n| n.as_str().map(str::to_string).unwrap_or_else(|| n.to_string())).collect()
                    })
                    .unwrap_or_default();
                let ring = answer.get("max_ringing_duration").and_then(lenient_u64).map(Duration::from_secs);
                let talk = answer.get("max_conversation_duration").and_then(lenient_u64).map(Duration::from_secs);
                entry.detail = json!({"numbers": numbers, "attempts": []});
                let index = self.push_entry(&run.sid, entry);
                let report = self
                    .inner
                    .upgrade()
                    .and_then(|inner| lock(&inner.flow_records).run_mut(&run.sid).map(|r| r.connects.len()))
                    .unwrap_or(0);
                let dial = Dial {
                    next,
                    entry: index,
                    report,
                    numbers,
                    index: 0,
                    ring_timeout: ring.unwrap_or(self.config.connect_ring_timeout),
                    max_talk: talk,
                    record: answer.get("record").and_then(lenient_bool).unwrap_or(false),
                    caller_id: answer
                        .get("outgoing_phone_number")
                        .and_then(Value::as_str)
                        .and_then(|n| E164::parse(n).ok())
                        .unwrap_or_else(|| run.exophone.clone()),
                    last_status: "no-answer",
                    last_number: String::new(),
                    attempts: Vec::new(),
                    phase: DialPhase::Next,
                };
                self.dial_step(run, dial, now)
            }
            AppletKind::Voicebot { url, next } => {
                self.answer(run, now);
                let (with_token, _) = self.applet_url(&url);
                let ws = if let Some(rest) = with_token.strip_prefix("https://") {
                    format!("wss://{rest}")
                } else if let Some(rest) = with_token.strip_prefix("http://") {
                    format!("ws://{rest}")
                } else {
                    with_token
                };
                let index = self.push_entry(&run.sid, entry);
                self.start_stream(run, Some((id.to_string(), index)), Some(next), ws, now).await
            }
            AppletKind::Record { next, max_length } => {
                self.answer(run, now);
                self.record(run, id, entry, next, max_length).await
            }
            AppletKind::Hangup => {
                self.push_entry(&run.sid, entry);
                Next::End(FlowOutcome::HungUp { applet_id: id.to_string() })
            }
        }
    }

    /// A Record applet: the caller's next utterance for it, spoken by the
    /// caller's voice (registered in the transcript book, as in a stream),
    /// recorded and served; `RecordingUrl` for the next applet.
    async fn record(&self, run: &mut Run, id: &str, mut entry: FlowLogEntry, next: String, max_length: u32) -> Next {
        let ids = applet_ids(&run.flow);
        let at = PromptContext { applet_id: id, gather_visit: 0, text: "", applet_ids: &ids };
        let said = run.script.next_utterance(&at, &run.used_speech).map(|i| {
            run.used_speech.push(i);
            run.script.utterances[i].clone()
        });
        let rate = super::record::RECORDING_RATE;
        let (spoken, note) = match said.as_ref().filter(|u| !u.text.trim().is_empty()) {
            Some(u) => {
                let (spoken, note) = self.voice.speak_or_tones(&u.text, u.language_tag(), rate).await;
                (Some(spoken), note)
            }
            None => (None, None),
        };
        let Some(inner) = self.inner.upgrade() else { return Next::Hold(Pending::Hold) };
        let speech = spoken.as_ref().map(|s| s.samples.as_slice()).unwrap_or_default();
        let max = Duration::from_secs(u64::from(max_length));
        let samples = super::record::recording_samples(speech, rate, self.config.record_silence, max);
        let duration = super::audio::samples_duration(samples.len(), rate);
        let recording_sid = lock(&inner.state).ids.next_sid();
        let url = super::record::recording_url(&inner.base_url, &run.account_sid, &recording_sid);
        let wav = super::audio::wav(&super::audio::to_le_bytes(&samples), rate);
        lock(&inner.flow_records).push_recording(super::record::recording_key(&recording_sid), wav);
        entry.detail = json!({
            "said": said.map(|u| u.text),
            "voice": spoken.as_ref().map(|s| s.voice.as_str()),
            "registered": spoken.as_ref().map(|s| s.registered),
            "note": note,
            "recording_sid": recording_sid,
            "recording_url": url,
            "duration_ms": duration.as_millis() as u64,
            "max_length": max_length,
        });
        entry.branch = Some(next.clone());
        self.push_entry(&run.sid, entry);
        run.once.recording_url = Some(url);
        run.call_type = "voicemail";
        Next::Wait(duration, Pending::Goto(next))
    }

    /// Shows a prompt on the phone of a person holding it (leg 1).
    fn show(&self, run: &Run, prompt: PhonePrompt) {
        if !run.script.is_interactive() {
            return;
        }
        if let Some(inner) = self.inner.upgrade() {
            lock(&inner.phones).prompt(&run.sid, prompt);
        }
    }

    /// Plays the prompt of a held phone's Gather (play `listen.play`) and
    /// listens: until the person's keys end it, or `input_timeout` after
    /// the prompt (or after their last key).
    fn listen_play(&self, run: &mut Run, listen: Listen, now: DateTime<Utc>) -> Next {
        let (text, audio) = if listen.play == 0 {
            (&listen.spec.prompt, listen.spec.prompt_is_audio)
        } else {
            (&listen.spec.repeat_prompt, listen.spec.repeat_is_audio)
        };
        let prompt_time = self.prompt_time(text, audio);
        let prompt_ends_at = crate::clock::add(now, prompt_time);
        self.show(run, PhonePrompt::from_answer(now, &listen.applet_id, "gather", text));
        if let Some(inner) = self.inner.upgrade() {
            lock(&inner.phones).listen(
                &run.sid,
                PhoneListening {
                    applet_id: listen.applet_id.clone(),
                    pressed: String::new(),
                    max_digits: listen.spec.max_digits,
                    finish_on_key: listen.spec.finish_on_key,
                    prompt_ends_at,
                    input_timeout: listen.spec.input_timeout,
                    until: crate::clock::add(prompt_ends_at, listen.spec.input_timeout),
                },
            );
        }
        Next::Wait(prompt_time + listen.spec.input_timeout, Pending::Listen(Box::new(listen)))
    }

    /// A held phone's Gather wakes: the keys ended it, the time to press
    /// them ran out (the prompt repeats while `repeat_menu` allows), or it
    /// listens on (woken early).
    fn listen_resume(&self, run: &mut Run, mut listen: Listen, now: DateTime<Utc>) -> Next {
        let Some(inner) = self.inner.upgrade() else { return Next::Hold(Pending::Hold) };
        let Some(heard) = lock(&inner.phones).listening(&run.sid).cloned() else {
            return Next::Hold(Pending::Hold);
        };
        let (digits, ended_by) = take_keys(&heard.pressed, heard.max_digits, heard.finish_on_key);
        if ended_by.is_none() && now < heard.until {
            return Next::Wait(until(now, heard.until), Pending::Listen(Box::new(listen)));
        }
        lock(&inner.phones).stop_listening(&run.sid);
        let text = if listen.play == 0 { &listen.spec.prompt } else { &listen.spec.repeat_prompt };
        listen.plays.push(json!({
            "prompt": text,
            "pressed": heard.pressed,
            "digits": digits,
            "ended_by": ended_by.unwrap_or("input_timeout"),
        }));
        if digits.is_empty() && listen.play < listen.spec.repeat_menu {
            listen.play += 1;
            return self.listen_play(run, listen, now);
        }
        let digits = (!digits.is_empty()).then_some(digits);
        let branch = match &digits {
            Some(_) => listen.next.clone(),
            None => listen.no_input.clone().unwrap_or(listen.next.clone()),
        };
        let mut entry = listen.entry;
        entry.detail =
            gather_detail(&listen.spec, &listen.plays, digits.as_deref(), elapsed_since(listen.started, now));
        entry.branch = Some(branch.clone());
        self.push_entry(&run.sid, entry);
        run.once.digits = digits;
        Next::Goto(branch)
    }

    fn speaking_time(&self, body: &str) -> Duration {
        let lines: Vec<&str> = body.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let audio = !lines.is_empty() && lines.iter().all(|l| l.starts_with("http://") || l.starts_with("https://"));
        if audio {
            self.config.audio_prompt_duration * lines.len() as u32
        } else {
            self.config.speech_per_char * body.trim().chars().count() as u32
        }
    }

    fn prompt_time(&self, text: &str, audio: bool) -> Duration {
        if audio {
            self.config.audio_prompt_duration
        } else {
            self.config.speech_per_char * text.chars().count() as u32
        }
    }

    /// Plays a Gather: the prompt, keys or silence, repeats. Returns the
    /// time it takes, the digits (if any) and what happened at each play.
    fn gather(&self, run: &mut Run, applet_id: &str, spec: &GatherSpec) -> (Duration, Option<String>, Vec<Value>) {
        let mut elapsed = Duration::ZERO;
        let mut plays = Vec::new();
        for play in 0..=spec.repeat_menu {
            let (text, audio) = if play == 0 {
                (&spec.prompt, spec.prompt_is_audio)
            } else {
                (&spec.repeat_prompt, spec.repeat_is_audio)
            };
            elapsed += self.prompt_time(text, audio);
            let ids = applet_ids(&run.flow);
            let at = PromptContext { applet_id, gather_visit: run.gather_visits, text, applet_ids: &ids };
            let pressed = match run.script.next_keypress(&at, &run.used_keys) {
                Some(index) => {
                    run.used_keys.push(index);
                    run.script.keypresses[index].digits.clone()
                }
                None => String::new(),
            };
            let outcome = collect_keys(spec, &pressed, self.config.key_interval);
            elapsed += outcome.listened;
            plays.push(
                json!({"prompt": text, "pressed": pressed, "digits": outcome.digits, "ended_by": outcome.ended_by}),
            );
            if !outcome.digits.is_empty() {
                return (elapsed, Some(outcome.digits), plays);
            }
        }
        (elapsed, None, plays)
    }

    fn dial_step(&self, run: &mut Run, mut dial: Dial, now: DateTime<Utc>) -> Next {
        let Some(inner) = self.inner.upgrade() else { return Next::Hold(Pending::Hold) };
        loop {
            match std::mem::replace(&mut dial.phase, DialPhase::Next) {
                DialPhase::Next => {
                    let Some(raw) = dial.numbers.get(dial.index).cloned() else {
                        return self.dial_done(run, dial, None);
                    };
                    dial.index += 1;
                    dial.last_number = raw.clone();
                    let Ok(number) = E164::parse(&raw) else {
                        dial.last_status = "failed";
                        dial.attempts.push(DialAttempt {
                            number: raw,
                            status: Some("failed".into()),
                            error: Some("not a phone number".into()),
                            ..DialAttempt::default()
                        });
                        continue;
                    };
                    let script = lock(&inner.state).script_for(&number);
                    let Some(leg) = lock(&inner.state).add_flow_leg(&run.sid, number.clone(), now) else {
                        return Next::Hold(Pending::Hold);
                    };
                    let (delay, outcome) = plan(&script.pickup, dial.ring_timeout);
                    if script.is_interactive() {
                        lock(&inner.phones).rings_until(&run.sid, leg, crate::clock::add(now, delay));
                    }
                    dial.attempts.push(DialAttempt {
                        number: number.national(),
                        dialled_at: Some(format_ist(now)),
                        ..DialAttempt::default()
                    });
                    dial.phase =
                        DialPhase::Ringing { leg, number: number.national(), outcome, talk: script.hang_up_after };
                    self.dial_log(run, &dial);
                    return Next::Wait(delay, Pending::Dial(Box::new(dial)));
                }
                DialPhase::Ringing { leg, number, outcome, talk } => {
                    // A person holding the phone answered or rejected it.
                    let outcome = match lock(&inner.phones).take_decision(&run.sid, leg) {
                        Some(LegDecision::Answer) => LegOutcome::Answer,
                        Some(LegDecision::Reject | LegDecision::HangUp) => LegOutcome::Busy,
                        None => outcome,
                    };
                    let status = match outcome {
                        LegOutcome::Answer => CallStatus::InProgress,
                        LegOutcome::NoAnswer => CallStatus::NoAnswer,
                        LegOutcome::Busy => CallStatus::Busy,
                        LegOutcome::Failed => CallStatus::Failed,
                    };
                    lock(&inner.state).set_flow_leg(&run.sid, leg, status, now);
                    if let Some(attempt) = dial.attempts.last_mut() {
                        attempt.status = Some(status.as_str().to_string());
                        attempt.at = Some(format_ist(now));
                    }
                    if status != CallStatus::InProgress {
                        dial.last_status = status.as_str();
                        continue;
                    }
                    let talk = match (talk, dial.max_talk) {
                        (Some(t), Some(max)) => Some(t.min(max)),
                        (t, max) => t.or(max),
                    };
                    dial.phase = DialPhase::Talking { leg, number, since: now };
                    self.dial_log(run, &dial);
                    return match talk {
                        Some(t) => Next::Wait(t, Pending::Dial(Box::new(dial))),
                        None => Next::Hold(Pending::Dial(Box::new(dial))),
                    };
                }
                DialPhase::Talking { leg, number, since } => {
                    lock(&inner.phones).take_decision(&run.sid, leg);
                    lock(&inner.state).set_flow_leg(&run.sid, leg, CallStatus::Completed, now);
                    let duration = u32::try_from((now - since).num_seconds().max(0)).unwrap_or(u32::MAX);
                    if let Some(attempt) = dial.attempts.last_mut() {
                        attempt.status = Some("completed".to_string());
                        attempt.talk_secs = Some(duration);
                    }
                    return self.dial_done(run, dial, Some((number, duration)));
                }
            }
        }
    }

    fn dial_log(&self, run: &Run, dial: &Dial) {
        let detail = json!({"numbers": dial.numbers, "attempts": dial.attempts});
        self.update_entry(&run.sid, dial.entry, |e| e.detail = detail);
        self.report_connect(&run.sid, dial, None);
    }

    /// The run's report of this Connect: whom it dialled, who answered, and
    /// (once it is over) what it passed on.
    fn report_connect(&self, sid: &str, dial: &Dial, result: Option<&DialResult>) {
        let Some(inner) = self.inner.upgrade() else { return };
        let mut records = lock(&inner.flow_records);
        let Some(run) = records.run_mut(sid) else { return };
        let applet_id = run.entries.get(dial.entry).map(|e| e.applet_id.clone()).unwrap_or_default();
        let caller_id_is_exophone = inner.config.exophones.contains(&dial.caller_id);
        let report = ConnectReport {
            applet_id,
            caller_id: dial.caller_id.national(),
            caller_id_is_exophone,
            numbers: dial.numbers.clone(),
            attempts: dial.attempts.clone(),
            connected: result.filter(|r| r.status == "completed").map(|r| r.whom.clone()),
            dial_call_status: result.map(|r| r.status.to_string()),
            duration_secs: result.map(|r| r.duration).unwrap_or(0),
        };
        match run.connects.get_mut(dial.report) {
            Some(existing) => *existing = report,
            None => run.connects.push(report),
        }
    }

    /// The Connect is over: `answered` is the number that talked and for how long.
    fn dial_done(&self, run: &mut Run, dial: Dial, answered: Option<(String, u32)>) -> Next {
        let result = match &answered {
            Some((number, duration)) => DialResult { status: "completed", duration: *duration, whom: number.clone() },
            None => DialResult {
                status: dial.last_status,
                duration: 0,
                whom: E164::parse(&dial.last_number).map(|n| n.national()).unwrap_or(dial.last_number.clone()),
            },
        };
        run.call_type = if answered.is_some() { "completed" } else { "incomplete" };
        if answered.is_some() && dial.record {
            run.once.recording_url = Some(format!(
                "https://s3-ap-southeast-1.amazonaws.com/exotelrecordings/{}/{}.mp3",
                run.account_sid, run.sid
            ));
        }
        let detail = json!({
            "numbers": dial.numbers,
            "attempts": dial.attempts,
            "dial_call_status": result.status,
            "dial_call_duration": result.duration,
            "dial_whom_number": result.whom,
        });
        self.report_connect(&run.sid, &dial, Some(&result));
        run.dial = Some(result);
        let next = dial.next.clone();
        self.update_entry(&run.sid, dial.entry, |e| {
            e.detail = detail;
            e.branch = Some(next.clone());
        });
        Next::Goto(next)
    }

    /// Opens a Voicebot stream to `url` (an applet's, or a `StreamUrl`).
    async fn start_stream(
        &self,
        run: &mut Run,
        applet: Option<(String, usize)>,
        next: Option<String>,
        url: String,
        now: DateTime<Utc>,
    ) -> Next {
        let Some(inner) = self.inner.upgrade() else { return Next::Hold(Pending::Hold) };
        let stream_sid = lock(&inner.state).ids.next_sid();
        let applet_id = applet.as_ref().map(|(id, _)| id.clone()).unwrap_or_else(|| "voicebot".to_string());
        let ids = applet_ids(&run.flow);
        let at = PromptContext { applet_id: &applet_id, gather_visit: 0, text: "", applet_ids: &ids };
        let mut turns = Vec::new();
        while let Some(i) = run.script.next_utterance(&at, &run.used_speech) {
            run.used_speech.push(i);
            turns.push(run.script.utterances[i].clone());
        }
        let mut digits = String::new();
        while let Some(i) = run.script.next_keypress(&at, &run.used_keys) {
            run.used_keys.push(i);
            digits.push_str(&run.script.keypresses[i].digits);
        }
        let setup = StreamSetup {
            url: url.clone(),
            stream_sid: stream_sid.clone(),
            call_sid: run.sid.clone(),
            account_sid: run.account_sid.clone(),
            from: run.from.national(),
            to: run.exophone.national(),
            turns,
            digits,
            voice: self.voice.clone(),
            key_interval: self.config.key_interval,
            recording_url: format!("{}/_sim/recordings/{stream_sid}.wav", inner.base_url),
            heard_url: format!("{}/_sim/recordings/{stream_sid}-heard.wav", inner.base_url),
            real_time: !inner.clock.is_manual(),
            held: run.script.is_interactive(),
            config: self.config.voicebot.clone(),
        };
        let log = Arc::new(Mutex::new(new_log(&setup, applet.as_ref().map(|(id, _)| id.clone()), now)));
        lock(&inner.flow_records).push_stream(log.clone());
        let entry = applet.map(|(_, index)| index);
        match Session::open(setup, log.clone(), now).await {
            Ok((session, wake)) => {
                if run.script.is_interactive() {
                    lock(&inner.phones).in_stream(&run.sid, Some(&stream_sid));
                }
                let stream = StreamRun { session, next, entry, log, url };
                match wake {
                    Wake::Continue(at) => Next::Wait(until(now, at), Pending::Stream(Box::new(stream))),
                    Wake::Ended(end) => self.stream_ended(run, stream, end),
                }
            }
            Err(end) => {
                let detail = stream_detail(&end, lock(&log).error.clone());
                if let Some(index) = entry {
                    self.update_entry(&run.sid, index, |e| {
                        e.detail = detail;
                        e.branch = next.clone();
                    });
                }
                match next {
                    Some(next) => {
                        run.once.stream = stream_params(&end, &url);
                        Next::Goto(next)
                    }
                    None => Next::End(FlowOutcome::StreamEnded),
                }
            }
        }
    }

    fn record_stream_end(&self, run: &Run, stream: &StreamRun, end: &StreamEnd) {
        if let Some(inner) = self.inner.upgrade() {
            lock(&inner.phones).in_stream(&run.sid, None);
            let mut records = lock(&inner.flow_records);
            if let Some(wav) = end.recording.clone() {
                records.push_recording(end.stream_sid.clone(), wav);
            }
            if let Some(wav) = end.heard.clone() {
                records.push_recording(format!("{}-heard", end.stream_sid), wav);
            }
        }
        if let Some(index) = stream.entry {
            let detail = stream_detail(end, lock(&stream.log).error.clone());
            let branch = stream.next.clone().filter(|_| end.disconnected_by != "user");
            self.update_entry(&run.sid, index, |e| {
                e.detail = detail;
                e.branch = branch;
            });
        }
    }

    fn stream_ended(&self, run: &mut Run, stream: StreamRun, end: StreamEnd) -> Next {
        self.record_stream_end(run, &stream, &end);
        if end.disconnected_by == "user" {
            // The scripted caller hung up in the stream: the call is over.
            return Next::End(FlowOutcome::CallEnded { applet_id: run.current.clone() });
        }
        match stream.next {
            Some(next) => {
                run.once.stream = stream_params(&end, &stream.url);
                Next::Goto(next)
            }
            None => Next::End(FlowOutcome::StreamEnded),
        }
    }
}

/// What a Gather did, for its flow-log entry (scripted and held phones alike).
fn gather_detail(spec: &GatherSpec, plays: &[Value], digits: Option<&str>, elapsed: Duration) -> Value {
    json!({
        "plays": plays,
        "digits": digits,
        "max_input_digits": spec.max_digits,
        "finish_on_key": spec.finish_on_key.map(String::from),
        "input_timeout": spec.input_timeout.as_secs(),
        "repeat_menu": spec.repeat_menu,
        "duration_ms": elapsed.as_millis() as u64,
    })
}

/// The time from `start` to `now` (zero if `now` is earlier).
fn elapsed_since(start: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - start).to_std().unwrap_or(Duration::ZERO)
}

fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or(Duration::from_millis(1)).max(Duration::from_millis(1))
}

/// What Exotel passes to the applet after a Voicebot (support 3000132269):
/// `Stream[StreamUrl]` is the applet's URL as configured, our webhook token
/// included.
fn stream_params(end: &StreamEnd, url: &str) -> Vec<(String, String)> {
    let mut p = vec![
        ("Stream[StreamSID]".to_string(), end.stream_sid.clone()),
        ("Stream[Status]".to_string(), end.status.to_string()),
        ("Stream[Duration]".to_string(), end.duration_secs.to_string()),
        ("Stream[DisconnectedBy]".to_string(), end.disconnected_by.to_string()),
        ("Stream[StreamUrl]".to_string(), url.to_string()),
    ];
    if let Some(url) = &end.recording_url {
        p.push(("Stream[RecordingUrl]".to_string(), url.clone()));
    }
    p
}

fn stream_detail(end: &StreamEnd, error: Option<String>) -> Value {
    json!({
        "stream_sid": end.stream_sid,
        "status": end.status,
        "duration": end.duration_secs,
        "disconnected_by": end.disconnected_by,
        "recording_url": end.recording_url,
        "error": error,
    })
}

/// The case a Passthru answer selects for the Switch Case after it. Exotel's
/// Switch Case article (support 3000052018) specifies a 200 with
/// `Content-Type: text/plain` and the body `{"select":"<case>"}`; anything
/// else (another content type, other keys, a non-string case) is refused.
fn switch_answer(answer: &AppletResponse) -> Result<String, String> {
    if answer.status != 200 {
        return Err(format!("HTTP {} to the Passthru before a Switch Case, not 200", answer.status));
    }
    let content_type = answer.content_type.as_deref().unwrap_or_default();
    if !essence(content_type).eq_ignore_ascii_case("text/plain") {
        return Err(format!(
            "the Passthru before a Switch Case answered Content-Type '{content_type}', not text/plain"
        ));
    }
    let body = answer.body.trim();
    let not_select = || format!("the Passthru before a Switch Case answered {body:?}, not {{\"select\":\"<case>\"}}");
    let value: Value = serde_json::from_str(body).map_err(|_| not_select())?;
    match value.as_object() {
        Some(map) if map.len() == 1 => match map.get("select") {
            Some(Value::String(case)) => Ok(case.clone()),
            _ => Err(not_select()),
        },
        _ => Err(not_select()),
    }
}

/// The media type of a `Content-Type` value, without parameters.
fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

/// Why a Greeting's GET answered differently from its HEAD, if it did.
fn head_mismatch(head: &AppletExchange, get: &AppletExchange) -> Option<String> {
    let (Some(head), Some(get)) = (&head.response, &get.response) else { return None };
    if head.status != get.status {
        return Some(format!("the Greeting HEAD answered {} but its GET {}", head.status, get.status));
    }
    if head.content_type != get.content_type {
        return Some(format!(
            "the Greeting HEAD answered Content-Type {:?} but its GET {:?}",
            head.content_type, get.content_type
        ));
    }
    None
}

/// Why a Greeting exchange failed, if it did: no answer, not 200, not `text/plain`.
fn greeting_failure(exchange: &AppletExchange) -> Option<String> {
    let Some(response) = &exchange.response else { return exchange.error.clone() };
    if response.status != 200 {
        return Some(format!("HTTP {} to the Greeting {}", response.status, exchange.method));
    }
    let content_type = response.content_type.as_deref().unwrap_or_default();
    if !essence(content_type).eq_ignore_ascii_case("text/plain") {
        return Some(format!(
            "the Greeting {} answered Content-Type '{content_type}', not text/plain",
            exchange.method
        ));
    }
    None
}

/// The body of a 200 answer to a Gather or Connect request.
fn json_answer(exchange: &AppletExchange, applet: &str) -> Result<String, String> {
    let Some(response) = &exchange.response else { return Err(exchange.error.clone().unwrap_or_default()) };
    if response.status != 200 {
        return Err(format!("HTTP {} from the {applet} URL", response.status));
    }
    Ok(response.body.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(max: usize, finish: Option<char>, timeout: u64) -> GatherSpec {
        GatherSpec {
            prompt: "p".into(),
            prompt_is_audio: false,
            repeat_prompt: "p".into(),
            repeat_is_audio: false,
            max_digits: max,
            finish_on_key: finish,
            input_timeout: Duration::from_secs(timeout),
            repeat_menu: 0,
        }
    }

    #[test]
    fn gather_answers_get_exotels_defaults() {
        let g = parse_gather(r#"{"gather_prompt": {"text": "Press 1"}}"#).unwrap();
        assert_eq!(
            (g.max_digits, g.finish_on_key, g.input_timeout, g.repeat_menu),
            (255, Some('#'), Duration::from_secs(5), 0)
        );
        assert_eq!((g.repeat_prompt.as_str(), g.repeat_is_audio), ("Press 1", false));
        let g = parse_gather(
            r#"{"gather_prompt": {"audio_url": "https://x/a.wav"}, "max_input_digits": "2", "finish_on_key": "",
                "input_timeout": 6, "repeat_menu": 2, "repeat_gather_prompt": {"text": "Again"}}"#,
        )
        .unwrap();
        assert_eq!((g.prompt.as_str(), g.prompt_is_audio, g.max_digits), ("https://x/a.wav", true, 2));
        assert_eq!((g.finish_on_key, g.repeat_menu, g.repeat_prompt.as_str()), (None, 2, "Again"));
        assert!(parse_gather(r#"{"max_input_digits": 1}"#).is_err());
        assert!(parse_gather("nope").is_err());
    }

    #[test]
    fn keys_stop_at_the_finish_key_the_maximum_or_the_timeout() {
        let k = Duration::from_millis(300);
        let one = collect_keys(&spec(1, Some('#'), 5), "12", k);
        assert_eq!((one.digits.as_str(), one.ended_by, one.listened), ("1", "max_input_digits", k));
        let hash = collect_keys(&spec(255, Some('#'), 5), "42#7", k);
        assert_eq!((hash.digits.as_str(), hash.ended_by, hash.listened), ("42", "finish_on_key", k * 3));
        let open = collect_keys(&spec(255, None, 5), "42#", k);
        assert_eq!((open.digits.as_str(), open.ended_by), ("42#", "input_timeout"));
        assert_eq!(open.listened, k * 3 + Duration::from_secs(5));
        let silent = collect_keys(&spec(1, Some('#'), 6), "", k);
        assert_eq!((silent.digits.as_str(), silent.listened), ("", Duration::from_secs(6)));
    }

    #[test]
    fn selects_and_greeting_checks() {
        let answer =
            |status, ct: &str, body: &str| AppletResponse { status, content_type: Some(ct.into()), body: body.into() };
        assert_eq!(switch_answer(&answer(200, "text/plain", r#"{"select":"prep_time"}"#)).unwrap(), "prep_time");
        assert_eq!(
            switch_answer(&answer(200, "text/plain; charset=utf-8", r#" {"select": "done"} "#)).unwrap(),
            "done"
        );
        for (status, ct, body) in [
            (200, "application/json", r#"{"select":"done"}"#),
            (200, "text/plain", r#"{"ok":true,"select":"done"}"#),
            (200, "text/plain", r#"{"select":2}"#),
            (200, "text/plain", "done"),
            (201, "text/plain", r#"{"select":"done"}"#),
        ] {
            assert!(switch_answer(&answer(status, ct, body)).is_err(), "{status} {ct} {body}");
        }
        let exchange = |status, ct: &str| AppletExchange {
            method: "HEAD".into(),
            url: String::new(),
            params: Vec::new(),
            headers: Vec::new(),
            response: Some(AppletResponse { status, content_type: Some(ct.into()), body: String::new() }),
            error: None,
        };
        assert_eq!(greeting_failure(&exchange(200, "text/plain; charset=utf-8")), None);
        assert!(greeting_failure(&exchange(200, "application/json")).unwrap().contains("not text/plain"));
        assert!(greeting_failure(&exchange(500, "text/plain")).unwrap().contains("HTTP 500"));
        assert_eq!(strip_userinfo("http://u:p@127.0.0.1:9/x"), "http://127.0.0.1:9/x");
    }
}
