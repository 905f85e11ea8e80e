//! What the flow engine did, for tests to read: one [`FlowRun`] per call
//! (every applet visited, the requests made and our answers, the branch
//! taken), one [`StreamLog`] per Voicebot stream, and the recordings served
//! at `/_sim/recordings/{stream_sid}.wav`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::flows::{AppletType, FlowDirection};
use crate::clock::lock;

/// Our answer to one applet request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppletResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// One HTTP request Exotel made for an applet, and what came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppletExchange {
    /// `HEAD` or `GET`.
    pub method: String,
    /// The applet URL (base + path) without the token, credentials or Exotel's parameters.
    pub url: String,
    /// Exotel's query parameters, in the order sent (the token excluded).
    pub params: Vec<(String, String)>,
    /// Headers Exotel added (`Exotel-Version`).
    pub headers: Vec<(String, String)>,
    /// `None` when no answer came (timeout, connection error).
    pub response: Option<AppletResponse>,
    pub error: Option<String>,
}

impl AppletExchange {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// One visit of one applet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowLogEntry {
    pub at: DateTime<Utc>,
    pub applet_id: String,
    pub applet_type: AppletType,
    /// The requests in order: a Greeting's HEAD then GET, one GET for
    /// Gather, Passthru and Connect, none for Switch, Voicebot, Record and
    /// Hangup.
    pub requests: Vec<AppletExchange>,
    /// What the applet did: the text spoken and for how long, the prompts
    /// played and keys collected, the case selected, the numbers dialled,
    /// the stream's summary.
    pub detail: serde_json::Value,
    /// The applet the flow went on with; `None` when the call ended here.
    pub branch: Option<String>,
    /// Why Exotel abandoned the applet (the call was dropped).
    pub error: Option<String>,
}

impl FlowLogEntry {
    /// The parameters of the last request (a Greeting's GET).
    pub fn params(&self) -> &[(String, String)] {
        self.requests.last().map(|r| r.params.as_slice()).unwrap_or_default()
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.requests.last().and_then(|r| r.param(name))
    }

    /// Our HTTP status for the last request.
    pub fn status(&self) -> Option<u16> {
        self.requests.last().and_then(|r| r.response.as_ref()).map(|r| r.status)
    }

    /// Our answer's body for the last request.
    pub fn body(&self) -> Option<&str> {
        self.requests.last().and_then(|r| r.response.as_ref()).map(|r| r.body.as_str())
    }
}

/// How a flow ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FlowOutcome {
    /// A hangup applet, or a passthru's 302 without `on_302`, ended the call.
    HungUp { applet_id: String },
    /// Exotel abandoned the applet (timeout, 5xx, connection error, wrong
    /// content type, unreadable JSON) and dropped the call.
    Dropped { applet_id: String, reason: String },
    /// The call ended while the flow ran: the callee hung up, or `TimeLimit`.
    CallEnded { applet_id: Option<String> },
    /// The app id of the flow URL names no flow; the call was hung up.
    UnknownFlow { app_id: String },
    /// A direct `StreamUrl` call: the stream ended, and with it the call.
    StreamEnded,
}

/// One number a Connect applet dialled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DialAttempt {
    /// National format, as Exotel reports `DialWhomNumber`.
    pub number: String,
    /// IST, Exotel's format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialled_at: Option<String>,
    /// `in-progress` once answered, then `completed`; or `no-answer`,
    /// `busy`, `failed` (not a phone number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// When it stopped ringing (IST).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// Seconds the callee talked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talk_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What one Connect applet did: whom it dialled, who answered, and what
/// Exotel passed on to the next applet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectReport {
    pub applet_id: String,
    /// The number the callees see (national format): the answer's
    /// `outgoing_phone_number`, else the ExoPhone the call came into.
    pub caller_id: String,
    /// Whether that is one of the account's ExoPhones (never a party's own
    /// number, on a masked call).
    pub caller_id_is_exophone: bool,
    /// The numbers our Connect answer named, as given.
    pub numbers: Vec<String>,
    /// Each number dialled, in order.
    pub attempts: Vec<DialAttempt>,
    /// The number that answered and talked (national format).
    pub connected: Option<String>,
    /// `DialCallStatus` passed on: `completed`, `no-answer`, `busy`,
    /// `failed`; `None` while dialling, or when the call ended while a
    /// number still rang.
    pub dial_call_status: Option<String>,
    /// `DialCallDuration`: seconds the connected callee talked.
    pub duration_secs: u32,
}

/// Everything the flow engine did on one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowRun {
    pub call_sid: String,
    /// The flow run; `None` for a direct `StreamUrl` call or an unknown app id.
    pub flow_id: Option<String>,
    /// The `flow_id` parameter sent to our URLs (Exotel's app id).
    pub app_id: Option<String>,
    pub direction: FlowDirection,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub outcome: Option<FlowOutcome>,
    pub entries: Vec<FlowLogEntry>,
    /// Every Connect applet's dialling, in order.
    pub connects: Vec<ConnectReport>,
}

impl FlowRun {
    /// The first visit of an applet.
    pub fn entry(&self, applet_id: &str) -> Option<&FlowLogEntry> {
        self.entries.iter().find(|e| e.applet_id == applet_id)
    }

    /// Every visit of an applet.
    pub fn visits(&self, applet_id: &str) -> Vec<&FlowLogEntry> {
        self.entries.iter().filter(|e| e.applet_id == applet_id).collect()
    }

    /// The numbers that answered a Connect, in order (national format).
    pub fn connected(&self) -> Vec<&str> {
        self.connects.iter().filter_map(|c| c.connected.as_deref()).collect()
    }

    /// The applet ids visited, in order.
    pub fn path(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.applet_id.as_str()).collect()
    }
}

/// Which way a stream frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamDirection {
    /// Exotel (the simulator) to the bot.
    ToBot,
    /// The bot to Exotel.
    FromBot,
}

/// One frame of a Voicebot stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamEvent {
    pub at: DateTime<Utc>,
    pub direction: StreamDirection,
    /// `connected`, `start`, `media`, `dtmf`, `mark`, `stop`, `clear`,
    /// `close`, or `invalid` for a frame that could not be read.
    pub event: String,
    /// The frame as JSON, a media `payload` replaced by `payload_bytes`
    /// (its decoded length) and the `token` custom parameter masked.
    pub frame: serde_json::Value,
}

/// A frame of the bot that breaks the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProtocolViolation {
    pub at: DateTime<Utc>,
    pub message: String,
}

/// One Voicebot stream, as Exotel saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamLog {
    pub stream_sid: String,
    pub call_sid: String,
    /// The voicebot applet; `None` for a direct `StreamUrl` call.
    pub applet_id: Option<String>,
    /// The WebSocket URL without credentials or token.
    pub url: String,
    pub sample_rate: u32,
    pub custom_parameters: BTreeMap<String, String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// `completed`, or `failed` when no session could be opened.
    pub status: Option<String>,
    /// The `stop` reason sent (`callended`, `stopped`); `None` when the bot closed first.
    pub stop_reason: Option<String>,
    /// `bot`, `user` or `NA`.
    pub disconnected_by: Option<String>,
    pub error: Option<String>,
    pub events: Vec<StreamEvent>,
    pub media_frames_sent: u64,
    pub audio_bytes_sent: u64,
    pub audio_bytes_received: u64,
    /// Bot audio that finished playing to the caller.
    pub audio_bytes_played: u64,
    /// Bot audio dropped by `clear`.
    pub audio_bytes_cleared: u64,
    /// Marks echoed, with when.
    pub marks_echoed: Vec<(String, DateTime<Utc>)>,
    pub violations: Vec<ProtocolViolation>,
    /// Pings the bot did not answer within `sync_timeout`.
    pub sync_timeouts: u32,
    /// Where the caller's side of the stream can be fetched (a WAV).
    pub recording_url: Option<String>,
    /// Where what the caller heard of the bot can be fetched (a WAV, the
    /// bot's audio as played: cleared audio cut, silence where none played).
    pub heard_url: Option<String>,
    /// The caller's turns as they were taken.
    pub caller_turns: Vec<CallerTurn>,
}

/// One turn the scripted caller took in a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallerTurn {
    /// When its words (or keys) began.
    pub at: DateTime<Utc>,
    pub cue: super::script::Cue,
    pub text: String,
    pub language: String,
    /// What spoke the words (`espeak-ng en`, `tones`); `None` without words.
    pub voice: Option<String>,
    pub duration_ms: u64,
    /// Whether the transcript book holds the words (the simulated ASR finds them).
    pub registered: bool,
    pub digits: String,
    pub hang_up: bool,
    /// Anything that did not go as scripted (the voice failed, no answer came).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl StreamLog {
    /// The frames of one kind going one way.
    pub fn events_of(&self, direction: StreamDirection, event: &str) -> Vec<&StreamEvent> {
        self.events.iter().filter(|e| e.direction == direction && e.event == event).collect()
    }
}

/// The engine's logs, bounded like the simulator's other logs.
#[derive(Debug)]
pub(crate) struct FlowRecords {
    runs: VecDeque<FlowRun>,
    streams: VecDeque<Arc<Mutex<StreamLog>>>,
    recordings: VecDeque<(String, Arc<Vec<u8>>)>,
    max: usize,
}

/// How many recordings are kept (oldest dropped first).
const MAX_RECORDINGS: usize = 64;

impl FlowRecords {
    pub(crate) fn new(max: usize) -> Self {
        FlowRecords { runs: VecDeque::new(), streams: VecDeque::new(), recordings: VecDeque::new(), max: max.max(1) }
    }

    pub(crate) fn push_run(&mut self, run: FlowRun) {
        if self.runs.len() >= self.max {
            self.runs.pop_front();
        }
        self.runs.push_back(run);
    }

    pub(crate) fn run_mut(&mut self, call_sid: &str) -> Option<&mut FlowRun> {
        self.runs.iter_mut().rev().find(|r| r.call_sid == call_sid)
    }

    pub(crate) fn run(&self, call_sid: &str) -> Option<&FlowRun> {
        self.runs.iter().rev().find(|r| r.call_sid == call_sid)
    }

    pub(crate) fn runs(&self) -> Vec<FlowRun> {
        self.runs.iter().cloned().collect()
    }

    pub(crate) fn push_stream(&mut self, log: Arc<Mutex<StreamLog>>) {
        if self.streams.len() >= self.max {
            self.streams.pop_front();
        }
        self.streams.push_back(log);
    }

    pub(crate) fn streams(&self) -> Vec<StreamLog> {
        self.streams.iter().map(|s| lock(s).clone()).collect()
    }

    pub(crate) fn push_recording(&mut self, sid: String, wav: Vec<u8>) {
        if self.recordings.len() >= MAX_RECORDINGS {
            self.recordings.pop_front();
        }
        self.recordings.push_back((sid, Arc::new(wav)));
    }

    pub(crate) fn recording(&self, sid: &str) -> Option<Arc<Vec<u8>>> {
        self.recordings.iter().rev().find(|(s, _)| s == sid).map(|(_, wav)| wav.clone())
    }

    /// Forgets runs and streams (recordings stay: their URLs were handed out).
    pub(crate) fn clear(&mut self) {
        self.runs.clear();
        self.streams.clear();
    }
}
