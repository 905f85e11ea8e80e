//! Exotel's side of a Voicebot (bidirectional) stream, shared_docs §5:
//! connect to the bot's WebSocket, send `connected` and `start`, then a
//! `media` frame every 100 ms carrying the caller's audio (silence, or the
//! scripted caller's turns spoken by its [`CallerVoice`]), `dtmf` for
//! scripted keys and `stop` when the call ends; play the bot's audio,
//! echo its marks once the audio before them has played, honour `clear`,
//! and keep what the caller heard.
//!
//! The caller takes turns as its script says ([`Cue`]): on the clock, after
//! the bot's answer has played, or over it (barge-in); each turn says words,
//! presses keys, stays silent or hangs up.
//!
//! Time. On the system clock (sandbox mode) the simulator's event loop
//! wakes the session as real time passes: frames go out every 100 ms of
//! real time. On a manual clock (tests) simulated time runs as fast as the
//! bot answers: after sending what is due at a given simulated instant, the
//! session pings the bot and reads until the pong. A bot that handles
//! frames in order (the usual receive loop) has sent its answers before it
//! reads the ping, so they are applied at that same instant. A bot that
//! thinks in the background (recognition, synthesis) answers later in real
//! time: while a listening caller waits for that answer the session holds
//! the manual clock and waits for it in real time (bounded by
//! [`VoicebotConfig::reply_wait`]), so the conversation's turns come in the
//! same order whatever the machine's speed.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::audio;
use super::flow_log::{CallerTurn, ProtocolViolation, StreamDirection, StreamEvent, StreamLog};
use super::phones::LiveTurn;
use super::script::{Cue, Utterance};
use crate::clock::{add, lock};
use crate::speech::{CallerVoice, Spoken};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The text logged for a caller's turn of recorded audio (a microphone).
const RECORDED_TURN: &str = "(recorded audio)";
/// Exotel's frame interval.
const FRAME: Duration = Duration::from_millis(100);
/// The largest bot media frame Exotel handles well.
const MAX_BOT_FRAME: usize = 100_000;
/// At most this many custom parameters are taken from the URL query.
const MAX_CUSTOM_PARAMETERS: usize = 3;
/// Rounds of "send echoes, then sync" per wake.
const MAX_ROUNDS: usize = 8;
/// Real-time waits for the bot per wake (manual clock).
const MAX_WAITS: usize = 16;

/// How the simulated Voicebot side behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct VoicebotConfig {
    /// When the caller starts speaking after the stream starts.
    pub speech_start: Duration,
    /// Silence between two utterances, and before scripted keys.
    pub speech_gap: Duration,
    /// Exotel's session limit (60 min); then `stop` with reason `stopped`.
    pub max_session: Duration,
    /// How long (real time) to wait for the bot's pong after each wake.
    pub sync_timeout: Duration,
    /// How long (real time) the WebSocket handshake may take; Exotel retries once.
    pub connect_timeout: Duration,
    /// The longest caller recording (and recording of what the caller
    /// heard) kept per stream.
    pub max_recording: Duration,
    /// A listening caller ([`Cue::AfterReply`]) speaks this long after the
    /// bot's answer has finished playing, unless its turn says otherwise.
    pub reply_pause: Duration,
    /// A listening caller who hears no answer takes its turn anyway this
    /// long after its previous turn ended.
    pub reply_timeout: Duration,
    /// Manual clock: the silence streamed after a caller's turn before the
    /// session holds the clock to wait for the bot's answer (the bot's
    /// voice activity detector needs that silence to end the turn).
    pub end_of_turn: Duration,
    /// Manual clock: how long (real time) to hold the clock for the bot's
    /// answer to a listening caller.
    pub reply_wait: Duration,
    /// Manual clock: once the bot's answer has played, how long (real
    /// time) to listen for more of it before the caller speaks (a bot that
    /// sends its answer sentence by sentence, or a filler and then the
    /// answer).
    pub quiet_wait: Duration,
}

impl Default for VoicebotConfig {
    fn default() -> Self {
        VoicebotConfig {
            speech_start: Duration::from_secs(1),
            speech_gap: Duration::from_secs(1),
            max_session: Duration::from_secs(3600),
            sync_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(10),
            max_recording: Duration::from_secs(600),
            reply_pause: Duration::from_millis(500),
            reply_timeout: Duration::from_secs(15),
            end_of_turn: Duration::from_millis(1500),
            reply_wait: Duration::from_secs(10),
            quiet_wait: Duration::from_millis(300),
        }
    }
}

/// Everything a session needs to start.
pub(crate) struct StreamSetup {
    /// The WebSocket URL with token (and credentials, if any).
    pub url: String,
    pub stream_sid: String,
    pub call_sid: String,
    pub account_sid: String,
    /// Caller and ExoPhone, national form.
    pub from: String,
    pub to: String,
    /// The caller's turns, in order.
    pub turns: Vec<Utterance>,
    /// Keys the caller presses after its turns, on the clock.
    pub digits: String,
    pub voice: CallerVoice,
    pub key_interval: Duration,
    pub recording_url: String,
    /// Where what the caller heard is served.
    pub heard_url: String,
    /// The simulator runs on the system clock: never hold it.
    pub real_time: bool,
    /// A person holds the caller's phone: with nothing left to say they
    /// listen for the bot's answer (the clock is held for it as for a
    /// scripted turn that waits for the reply).
    pub held: bool,
    pub config: VoicebotConfig,
}

/// How a stream ended, for the `Stream[...]` parameters.
#[derive(Debug, Clone)]
pub(crate) struct StreamEnd {
    pub stream_sid: String,
    /// `completed` or `failed`.
    pub status: &'static str,
    pub duration_secs: u64,
    /// `bot`, `user` or `NA`.
    pub disconnected_by: &'static str,
    pub recording_url: Option<String>,
    /// The caller's audio as a WAV, if the stream carried any.
    pub recording: Option<Vec<u8>>,
    /// What the caller heard of the bot (played audio, in place in time) as a WAV.
    pub heard: Option<Vec<u8>>,
}

pub(crate) enum Wake {
    /// Wake the session again at this simulated time.
    Continue(DateTime<Utc>),
    Ended(StreamEnd),
}

enum Queued {
    Audio { start: DateTime<Utc>, end: DateTime<Utc>, pcm: Vec<u8> },
    Mark { at: DateTime<Utc>, name: String },
}

/// A scripted turn, its words already spoken into audio.
struct PlannedTurn {
    utterance: Utterance,
    spoken: Option<Spoken>,
    note: Option<String>,
}

/// When the next turn begins.
enum TurnDue {
    At(DateTime<Utc>),
    /// Waiting for the bot's answer; the caller gives up waiting at this time.
    Listening {
        gives_up_at: DateTime<Utc>,
    },
}

pub(crate) struct Session {
    ws: Ws,
    log: Arc<Mutex<StreamLog>>,
    config: VoicebotConfig,
    stream_sid: String,
    call_sid: String,
    account_sid: String,
    started_at: DateTime<Utc>,
    rate: u32,
    seq: u64,
    chunk: u64,
    speech: Vec<(usize, Vec<i16>)>,
    dtmf: VecDeque<(DateTime<Utc>, char)>,
    turns: VecDeque<PlannedTurn>,
    turns_taken: usize,
    key_interval: Duration,
    /// When the caller's current turn (words and keys) is over.
    caller_free_at: DateTime<Utc>,
    /// Bot audio that starts playing at or after this answers the caller.
    listen_from: DateTime<Utc>,
    /// When the bot's answer to the caller's last turn started playing.
    reply_start: Option<DateTime<Utc>>,
    /// Whether the clock was held for the bot's answer to this turn.
    waited_for_reply: bool,
    /// The end of the bot's audio for which the quiet wait was done.
    quiet_done_for: Option<DateTime<Utc>>,
    hang_up_at: Option<DateTime<Utc>>,
    real_time: bool,
    held: bool,
    queue: VecDeque<Queued>,
    queue_end: DateTime<Utc>,
    outbox: Vec<Value>,
    recording: Vec<u8>,
    recording_url: String,
    /// What the caller heard, aligned with the stream's time.
    heard: Vec<u8>,
    heard_url: String,
    ping: u64,
    bot_closed: bool,
}

/// The parts of a stream URL Exotel uses.
struct Target {
    url: String,
    authorization: Option<String>,
    log_url: String,
    rate: u32,
    custom: BTreeMap<String, String>,
}

fn target(url: &str) -> Result<Target, String> {
    let mut parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return Err(format!("'{}' is not a ws:// or wss:// URL", parsed.scheme()));
    }
    let decode = |s: &str| super::form::percent_decode(s);
    let authorization = (!parsed.username().is_empty()).then(|| {
        let credentials = format!("{}:{}", decode(parsed.username()), decode(parsed.password().unwrap_or_default()));
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials))
    });
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    let rate = pairs
        .iter()
        .find(|(k, _)| k == "sample-rate")
        .and_then(|(_, v)| v.parse::<u32>().ok())
        .filter(|r| [8000, 16000, 24000].contains(r))
        .unwrap_or(8000);
    let custom = pairs.iter().filter(|(k, _)| k != "sample-rate").take(MAX_CUSTOM_PARAMETERS).cloned().collect();
    let mut log = parsed.clone();
    let kept: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k != "token").collect();
    if kept.is_empty() {
        log.set_query(None);
    } else {
        log.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok(Target { url: parsed.to_string(), authorization, log_url: log.to_string(), rate, custom })
}

/// `custom_parameters` as logged: the token masked.
fn masked(custom: &BTreeMap<String, String>) -> Value {
    custom
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(if k == "token" { "***".into() } else { v.clone() })))
        .collect()
}

async fn connect(target: &Target, timeout: Duration) -> Result<Ws, String> {
    let mut request = target.url.as_str().into_client_request().map_err(|e| e.to_string())?;
    if let Some(auth) = &target.authorization {
        let value = http::HeaderValue::from_str(auth).map_err(|e| e.to_string())?;
        request.headers_mut().insert(http::header::AUTHORIZATION, value);
    }
    match tokio::time::timeout(timeout, tokio_tungstenite::connect_async_with_config(request, None, true)).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no handshake within {timeout:?}")),
    }
}

/// A new stream log for `setup`, before anything is sent.
pub(crate) fn new_log(setup: &StreamSetup, applet_id: Option<String>, now: DateTime<Utc>) -> StreamLog {
    let (url, rate, custom) = match target(&setup.url) {
        Ok(t) => (t.log_url, t.rate, t.custom),
        Err(_) => (String::new(), 8000, BTreeMap::new()),
    };
    StreamLog {
        stream_sid: setup.stream_sid.clone(),
        call_sid: setup.call_sid.clone(),
        applet_id,
        url,
        sample_rate: rate,
        custom_parameters: custom
            .into_iter()
            .map(|(k, v)| {
                let v = if k == "token" { "***".to_string() } else { v };
                (k, v)
            })
            .collect(),
        started_at: now,
        ended_at: None,
        status: None,
        stop_reason: None,
        disconnected_by: None,
        error: None,
        events: Vec::new(),
        media_frames_sent: 0,
        audio_bytes_sent: 0,
        audio_bytes_received: 0,
        audio_bytes_played: 0,
        audio_bytes_cleared: 0,
        marks_echoed: Vec::new(),
        violations: Vec::new(),
        sync_timeouts: 0,
        recording_url: None,
        heard_url: None,
        caller_turns: Vec::new(),
    }
}

fn failed(setup: &StreamSetup, log: &Arc<Mutex<StreamLog>>, error: String, now: DateTime<Utc>) -> StreamEnd {
    let mut l = lock(log);
    l.status = Some("failed".to_string());
    l.disconnected_by = Some("NA".to_string());
    l.ended_at = Some(now);
    l.error = Some(error);
    StreamEnd {
        stream_sid: setup.stream_sid.clone(),
        status: "failed",
        duration_secs: 0,
        disconnected_by: "NA",
        recording_url: None,
        recording: None,
        heard: None,
    }
}

fn millis(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Session {
    /// Opens the stream at `now` (retrying the handshake once), sends
    /// `connected` and `start`, and applies the bot's first answers.
    pub(crate) async fn open(
        setup: StreamSetup,
        log: Arc<Mutex<StreamLog>>,
        now: DateTime<Utc>,
    ) -> Result<(Session, Wake), StreamEnd> {
        let target = match target(&setup.url) {
            Ok(t) => t,
            Err(e) => return Err(failed(&setup, &log, e, now)),
        };
        let ws = match connect(&target, setup.config.connect_timeout).await {
            Ok(ws) => ws,
            Err(first) => match connect(&target, setup.config.connect_timeout).await {
                Ok(ws) => ws,
                Err(second) => {
                    return Err(failed(&setup, &log, format!("handshake failed twice: {first}; {second}"), now));
                }
            },
        };
        let rate = target.rate;
        let mut turns = VecDeque::new();
        let mut utterances = setup.turns.clone();
        if !setup.digits.is_empty() {
            // Keys scripted for the stream as a whole: after the turns, on the clock.
            let mut keys = Utterance::timed("", "");
            keys.digits = setup.digits.clone();
            utterances.push(keys);
        }
        for utterance in utterances {
            let (spoken, note) = speak(&setup.voice, &utterance, rate).await;
            turns.push_back(PlannedTurn { utterance, spoken, note });
        }
        let mut session = Session {
            ws,
            log,
            config: setup.config.clone(),
            stream_sid: setup.stream_sid.clone(),
            call_sid: setup.call_sid.clone(),
            account_sid: setup.account_sid.clone(),
            started_at: now,
            rate,
            seq: 0,
            chunk: 0,
            speech: Vec::new(),
            dtmf: VecDeque::new(),
            turns,
            turns_taken: 0,
            key_interval: setup.key_interval,
            caller_free_at: now,
            listen_from: now,
            reply_start: None,
            waited_for_reply: false,
            quiet_done_for: None,
            hang_up_at: None,
            real_time: setup.real_time,
            held: setup.held,
            queue: VecDeque::new(),
            queue_end: now,
            outbox: Vec::new(),
            recording: Vec::new(),
            recording_url: setup.recording_url.clone(),
            heard: Vec::new(),
            heard_url: setup.heard_url.clone(),
            ping: 0,
            bot_closed: false,
        };
        session.send(now, json!({"event": "connected"})).await;
        let start = json!({
            "event": "start",
            "sequence_number": session.next_seq(),
            "stream_sid": setup.stream_sid,
            "start": {
                "stream_sid": setup.stream_sid,
                "call_sid": setup.call_sid,
                "account_sid": setup.account_sid,
                "from": setup.from,
                "to": setup.to,
                "custom_parameters": target.custom,
                "media_format": {"encoding": "raw", "sample_rate": rate.to_string(), "bit_rate": "128kbps"},
            },
        });
        session.send(now, start).await;
        let wake = session.settle(now).await;
        Ok((session, wake))
    }

    /// Turns a person holding the caller's phone takes now (typed words,
    /// keys, or recorded audio), after the turns already planned: each
    /// begins as soon as the caller is free, on the clock.
    pub(crate) async fn add_live_turns(&mut self, turns: Vec<LiveTurn>, voice: &CallerVoice) {
        for turn in turns {
            let planned = match turn {
                LiveTurn::Words { text, language } => {
                    let utterance = Utterance::timed("", &text).in_language(&language).pause(Duration::ZERO);
                    let (spoken, note) = speak(voice, &utterance, self.rate).await;
                    PlannedTurn { utterance, spoken, note }
                }
                LiveTurn::Keys(digits) => {
                    let utterance = Utterance::timed("", "").then_presses(&digits).pause(Duration::ZERO);
                    PlannedTurn { utterance, spoken: None, note: None }
                }
                LiveTurn::Audio { samples, rate } => {
                    let samples = audio::resample(&samples, rate, self.rate);
                    let utterance = Utterance::timed("", RECORDED_TURN).pause(Duration::ZERO);
                    let spoken =
                        Spoken { samples, sample_rate: self.rate, voice: "microphone".into(), registered: false };
                    PlannedTurn { utterance, spoken: Some(spoken), note: None }
                }
            };
            self.turns.push_back(planned);
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Bytes of 20 ms of audio: bot media must come in multiples of this.
    fn unit_bytes(&self) -> usize {
        self.rate as usize / 50 * 2
    }

    fn session_end(&self) -> DateTime<Utc> {
        add(self.started_at, self.config.max_session)
    }

    fn chunk_at(&self, chunk: u64) -> DateTime<Utc> {
        self.started_at + millis(FRAME) * i32::try_from(chunk).unwrap_or(i32::MAX)
    }

    /// Sends a frame and logs it (a media payload logged as its length).
    async fn send(&mut self, now: DateTime<Utc>, frame: Value) {
        let event = frame["event"].as_str().unwrap_or_default().to_string();
        let mut logged = frame.clone();
        if let Some(media) = logged.get_mut("media").and_then(Value::as_object_mut)
            && let Some(Value::String(payload)) = media.remove("payload")
        {
            let bytes = base64::engine::general_purpose::STANDARD.decode(payload).map(|b| b.len()).unwrap_or(0);
            media.insert("payload_bytes".into(), json!(bytes));
        }
        if let Some(custom) = logged.pointer_mut("/start/custom_parameters") {
            let map: BTreeMap<String, String> = serde_json::from_value(custom.clone()).unwrap_or_default();
            *custom = masked(&map);
        }
        let text = frame.to_string();
        let sent = self.ws.send(Message::text(text)).await;
        let mut log = lock(&self.log);
        log.events.push(StreamEvent { at: now, direction: StreamDirection::ToBot, event, frame: logged });
        if sent.is_err() && !self.bot_closed {
            log.error.get_or_insert_with(|| "the bot's socket closed while sending".to_string());
            drop(log);
            self.bot_closed = true;
        }
    }

    fn violation(&self, now: DateTime<Utc>, message: String) {
        lock(&self.log).violations.push(ProtocolViolation { at: now, message });
    }

    /// The caller's audio of chunk `chunk` (1-based): [(chunk-1)·100, chunk·100) ms.
    fn caller_audio(&self, chunk: u64) -> Vec<u8> {
        let per_frame = self.rate as usize / 10;
        let from = usize::try_from(chunk - 1).unwrap_or(usize::MAX).saturating_mul(per_frame);
        let mut samples = vec![0i16; per_frame];
        for (start, speech) in &self.speech {
            let end = start + speech.len();
            let lo = from.max(*start);
            let hi = (from + per_frame).min(end);
            if lo < hi {
                samples[lo - from..hi - from].copy_from_slice(&speech[lo - start..hi - start]);
            }
        }
        audio::to_le_bytes(&samples)
    }

    /// The sample index of instant `at` in the stream.
    fn sample_at(&self, at: DateTime<Utc>) -> usize {
        let micros = (at - self.started_at).num_microseconds().unwrap_or(0).max(0) as u128;
        usize::try_from(micros * u128::from(self.rate) / 1_000_000).unwrap_or(usize::MAX)
    }

    /// The silence before a turn's words, or a silent turn's silence.
    fn pause_of(&self, utterance: &Utterance) -> Duration {
        utterance.pause.unwrap_or(match utterance.cue {
            Cue::Timed if self.turns_taken == 0 => self.config.speech_start,
            Cue::Timed => self.config.speech_gap,
            Cue::AfterReply => self.config.reply_pause,
            Cue::BargeIn { .. } => Duration::ZERO,
        })
    }

    /// When the next scripted turn begins, if one is left: its words after
    /// the pause, or a silent turn's silence at once.
    fn next_turn(&self) -> Option<TurnDue> {
        let turn = self.turns.front()?;
        let free = self.caller_free_at;
        let pause = if is_silent(&turn.utterance) { Duration::ZERO } else { self.pause_of(&turn.utterance) };
        let listening =
            |reply_start: Option<DateTime<Utc>>, at: &dyn Fn(DateTime<Utc>) -> DateTime<Utc>| match reply_start {
                Some(start) => TurnDue::At(at(start).max(free)),
                None => TurnDue::Listening { gives_up_at: add(self.listen_from, self.config.reply_timeout).max(free) },
            };
        Some(match turn.utterance.cue {
            Cue::Timed => TurnDue::At(add(free, pause)),
            Cue::AfterReply => listening(self.reply_start, &|start| add(self.queue_end.max(start), pause)),
            Cue::BargeIn { after_ms } => {
                listening(self.reply_start, &|start| add(start, Duration::from_millis(after_ms) + pause))
            }
        })
    }

    /// The time the next turn begins (or the caller gives up listening).
    fn next_turn_at(&self) -> Option<DateTime<Utc>> {
        self.next_turn().map(|due| match due {
            TurnDue::At(at) | TurnDue::Listening { gives_up_at: at } => at,
        })
    }

    /// The caller begins its next turn at `at`: its words go on the line,
    /// its keys are scheduled.
    fn take_turn(&mut self, at: DateTime<Utc>) {
        let Some(turn) = self.turns.pop_front() else { return };
        let heard_reply = self.reply_start.is_some() || turn.utterance.cue == Cue::Timed;
        // Audio already sent cannot change: begin no earlier than the frames sent.
        let at = at.max(self.chunk_at(self.chunk));
        let utterance = &turn.utterance;
        let mut end = at;
        if let Some(spoken) = &turn.spoken {
            let start = self.sample_at(at);
            end = at + millis(audio::samples_duration(spoken.samples.len(), self.rate));
            self.speech.push((start, spoken.samples.clone()));
        }
        for (i, digit) in utterance.digits.chars().enumerate() {
            let first = if turn.spoken.is_some() { self.key_interval } else { Duration::ZERO };
            let key_at = add(end, first) + millis(self.key_interval) * i32::try_from(i).unwrap_or(i32::MAX);
            self.dtmf.push_back((key_at, digit));
            if i + 1 == utterance.digits.chars().count() {
                end = key_at;
            }
        }
        let silent = is_silent(utterance);
        if silent {
            end = add(at, self.pause_of(utterance));
        }
        let mut note = turn.note.clone();
        if !heard_reply {
            let waited = format!("no answer from the bot within {:?}: went ahead", self.config.reply_timeout);
            note = Some(note.map_or(waited.clone(), |n| format!("{n}; {waited}")));
        }
        lock(&self.log).caller_turns.push(CallerTurn {
            at,
            cue: utterance.cue,
            text: utterance.text.clone(),
            language: utterance.language_tag().to_string(),
            voice: turn.spoken.as_ref().map(|s| s.voice.clone()),
            duration_ms: turn.spoken.as_ref().map(|s| s.duration().as_millis() as u64).unwrap_or(0),
            registered: turn.spoken.as_ref().is_some_and(|s| s.registered),
            digits: utterance.digits.clone(),
            hang_up: utterance.hang_up,
            note,
        });
        // A silent turn listens from its start: the bot's re-ask during the
        // silence answers it.
        let since = if silent { at } else { end };
        self.caller_free_at = end;
        self.listen_from = since;
        self.reply_start = self.first_audio_from(since);
        self.waited_for_reply = false;
        self.quiet_done_for = None;
        self.turns_taken += 1;
        if utterance.hang_up {
            self.hang_up_at = Some(end);
        }
    }

    /// The start of the first queued bot audio that plays at or after `from`.
    fn first_audio_from(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.queue.iter().find_map(|q| match q {
            Queued::Audio { start, .. } if *start >= from => Some(*start),
            _ => None,
        })
    }

    /// Sends every media frame and DTMF key due at or before `now`, in time
    /// order, and begins the turns due. Returns when the caller hangs up,
    /// if that is due.
    async fn send_due(&mut self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        loop {
            let next_chunk = self.chunk_at(self.chunk + 1);
            let next_key = self.dtmf.front().map(|(at, _)| *at);
            let next_turn = self.next_turn_at().filter(|at| *at <= now);
            let chunk_due = next_chunk <= now;
            let key_due = next_key.is_some_and(|at| at <= now);
            let hang_up = self.hang_up_at.filter(|at| *at <= now && self.dtmf.is_empty());
            if let Some(at) = next_turn
                && (!chunk_due || at < next_chunk)
                && next_key.is_none_or(|k| at <= k)
            {
                self.take_turn(at);
            } else if let Some(at) = hang_up
                && (!chunk_due || at <= next_chunk)
            {
                return Some(at);
            } else if chunk_due && (!key_due || next_key.is_some_and(|at| next_chunk <= at)) {
                self.chunk += 1;
                let pcm = self.caller_audio(self.chunk);
                let max = (self.config.max_recording.as_secs() as usize).saturating_mul(self.rate as usize * 2);
                let room = max.saturating_sub(self.recording.len());
                self.recording.extend_from_slice(&pcm[..pcm.len().min(room)]);
                let frame = json!({
                    "event": "media",
                    "sequence_number": self.next_seq(),
                    "stream_sid": self.stream_sid,
                    "media": {
                        "chunk": self.chunk,
                        "timestamp": (self.chunk * 100).to_string(),
                        "payload": base64::engine::general_purpose::STANDARD.encode(&pcm),
                    },
                });
                {
                    let mut log = lock(&self.log);
                    log.media_frames_sent += 1;
                    log.audio_bytes_sent += pcm.len() as u64;
                }
                self.send(next_chunk, frame).await;
            } else if key_due {
                let Some((at, digit)) = self.dtmf.pop_front() else { break };
                let frame = json!({
                    "event": "dtmf",
                    "sequence_number": self.next_seq(),
                    "stream_sid": self.stream_sid,
                    "dtmf": {"digit": digit.to_string(), "duration": "100"},
                });
                self.send(at, frame).await;
            } else {
                break;
            }
            if self.bot_closed {
                break;
            }
        }
        None
    }

    /// Keeps `pcm`, played from `start`, in what the caller heard.
    fn hear(&mut self, start: DateTime<Utc>, pcm: &[u8]) {
        let max = (self.config.max_recording.as_secs() as usize).saturating_mul(self.rate as usize * 2);
        let at = self.sample_at(start).saturating_mul(2);
        let end = (at + pcm.len()).min(max);
        if at >= end {
            return;
        }
        if self.heard.len() < end {
            self.heard.resize(end, 0);
        }
        self.heard[at..end].copy_from_slice(&pcm[..end - at]);
    }

    /// Retires played audio and queues echoes of marks that are due.
    fn play_until(&mut self, now: DateTime<Utc>) {
        while let Some(front) = self.queue.front() {
            match front {
                Queued::Audio { end, .. } if *end <= now => {
                    if let Some(Queued::Audio { start, pcm, .. }) = self.queue.pop_front() {
                        lock(&self.log).audio_bytes_played += pcm.len() as u64;
                        self.hear(start, &pcm);
                    }
                }
                Queued::Mark { at, .. } if *at <= now => {
                    if let Some(Queued::Mark { name, .. }) = self.queue.pop_front() {
                        self.echo(name, now);
                    }
                }
                _ => break,
            }
        }
    }

    fn echo(&mut self, name: String, now: DateTime<Utc>) {
        lock(&self.log).marks_echoed.push((name.clone(), now));
        let frame = json!({
            "event": "mark",
            "sequence_number": self.next_seq(),
            "stream_sid": self.stream_sid,
            "mark": {"name": name},
        });
        self.outbox.push(frame);
    }

    /// `clear`: audio not yet played is dropped, pending marks echoed now.
    fn clear(&mut self, now: DateTime<Utc>) {
        let unit = self.unit_bytes() as u64;
        let mut played = 0u64;
        let mut cleared = 0u64;
        let mut marks = Vec::new();
        let mut partial = None;
        for item in std::mem::take(&mut self.queue) {
            match item {
                Queued::Audio { start, end, pcm } if start < now => {
                    let bytes = pcm.len() as u64;
                    let total = (end - start).num_microseconds().unwrap_or(1).max(1) as u64;
                    let done = (now - start).num_microseconds().unwrap_or(0).max(0) as u64;
                    let part = (bytes.saturating_mul(done) / total / unit * unit).min(bytes);
                    played += part;
                    cleared += bytes - part;
                    partial = Some((start, pcm[..part as usize].to_vec()));
                }
                Queued::Audio { pcm, .. } => cleared += pcm.len() as u64,
                Queued::Mark { name, .. } => marks.push(name),
            }
        }
        if let Some((start, pcm)) = partial {
            self.hear(start, &pcm);
        }
        {
            let mut log = lock(&self.log);
            log.audio_bytes_played += played;
            log.audio_bytes_cleared += cleared;
        }
        for name in marks {
            self.echo(name, now);
        }
        self.queue_end = now;
    }

    fn tail(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.queue_end.max(now)
    }

    /// Applies one text frame of the bot.
    fn on_text(&mut self, now: DateTime<Utc>, text: &str) {
        let frame: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let shown: String = text.chars().take(80).collect();
                lock(&self.log).events.push(StreamEvent {
                    at: now,
                    direction: StreamDirection::FromBot,
                    event: "invalid".into(),
                    frame: Value::String(shown),
                });
                self.violation(now, format!("a frame that is not JSON ({e})"));
                return;
            }
        };
        let event = frame.get("event").and_then(Value::as_str).unwrap_or_default().to_string();
        let payload = frame.pointer("/media/payload").and_then(Value::as_str).map(str::to_string);
        let decoded = payload.as_ref().map(|p| base64::engine::general_purpose::STANDARD.decode(p));
        let mut logged = frame.clone();
        if let Some(media) = logged.get_mut("media").and_then(Value::as_object_mut)
            && media.remove("payload").is_some()
        {
            let bytes = decoded.as_ref().and_then(|d| d.as_ref().ok()).map(Vec::len);
            media.insert("payload_bytes".into(), json!(bytes));
        }
        lock(&self.log).events.push(StreamEvent {
            at: now,
            direction: StreamDirection::FromBot,
            event: if event.is_empty() { "invalid".into() } else { event.clone() },
            frame: logged,
        });
        if !matches!(event.as_str(), "media" | "mark" | "clear") {
            self.violation(now, format!("unknown event '{event}' (a bot sends media, mark or clear)"));
            return;
        }
        let sid = frame.get("stream_sid").or_else(|| frame.get("streamSid")).and_then(Value::as_str);
        match sid {
            Some(s) if s == self.stream_sid => {}
            Some(s) => {
                self.violation(now, format!("{event} for stream '{s}', not this stream: ignored"));
                return;
            }
            None => {
                self.violation(now, format!("{event} without stream_sid: ignored"));
                return;
            }
        }
        match event.as_str() {
            "media" => {
                let bytes = match decoded {
                    Some(Ok(bytes)) => bytes,
                    Some(Err(e)) => return self.violation(now, format!("media payload is not base64 ({e})")),
                    None => return self.violation(now, "media without media.payload".to_string()),
                };
                let len = bytes.len();
                let unit = self.unit_bytes();
                if len == 0 {
                    return self.violation(now, "empty media payload".to_string());
                }
                if len % unit != 0 {
                    self.violation(
                        now,
                        format!("media of {len} bytes is not a multiple of {unit} bytes (20 ms): Exotel plays a gap"),
                    );
                }
                if len > MAX_BOT_FRAME {
                    self.violation(now, format!("media of {len} bytes exceeds 100 KB"));
                }
                lock(&self.log).audio_bytes_received += len as u64;
                let frames = len.div_ceil(unit) as u32;
                let start = self.tail(now);
                let end = start + millis(Duration::from_millis(20)) * i32::try_from(frames).unwrap_or(i32::MAX);
                self.queue.push_back(Queued::Audio { start, end, pcm: bytes });
                self.queue_end = end;
                if self.reply_start.is_none() && start >= self.listen_from {
                    self.reply_start = Some(start);
                }
            }
            "mark" => match frame.pointer("/mark/name").and_then(Value::as_str) {
                Some(name) => {
                    let at = self.tail(now);
                    self.queue.push_back(Queued::Mark { at, name: name.to_string() });
                }
                None => self.violation(now, "mark without mark.name".to_string()),
            },
            _ => self.clear(now),
        }
    }

    /// Applies one message of the bot; `true` for a text frame or the
    /// end of the socket (something the caller notices).
    fn on_message(&mut self, now: DateTime<Utc>, message: Message) -> bool {
        match message {
            Message::Text(text) => {
                self.on_text(now, text.as_str());
                true
            }
            Message::Binary(b) => {
                self.violation(now, format!("a binary frame of {} bytes (Exotel expects JSON text)", b.len()));
                false
            }
            Message::Close(frame) => {
                let detail = frame.map(|f| json!({"code": u16::from(f.code), "reason": f.reason.as_str()}));
                lock(&self.log).events.push(StreamEvent {
                    at: now,
                    direction: StreamDirection::FromBot,
                    event: "close".into(),
                    frame: detail.unwrap_or(Value::Null),
                });
                self.bot_closed = true;
                true
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => false,
        }
    }

    /// Reads one message before `deadline`; `None` when none came.
    async fn read(&mut self, deadline: tokio::time::Instant) -> Option<Message> {
        match tokio::time::timeout_at(deadline, self.ws.next()).await {
            Err(_) => None,
            Ok(None) => {
                self.bot_closed = true;
                None
            }
            Ok(Some(Err(e))) => {
                lock(&self.log).error.get_or_insert_with(|| format!("reading from the bot: {e}"));
                self.bot_closed = true;
                None
            }
            Ok(Some(Ok(message))) => Some(message),
        }
    }

    /// Pings the bot and applies everything it sent before the pong.
    async fn sync(&mut self, now: DateTime<Utc>) {
        if self.bot_closed {
            return;
        }
        self.ping += 1;
        let token = self.ping.to_be_bytes().to_vec();
        if self.ws.send(Message::Ping(token.clone().into())).await.is_err() {
            self.bot_closed = true;
            return;
        }
        let deadline = tokio::time::Instant::now() + self.config.sync_timeout;
        loop {
            let Some(message) = self.read(deadline).await else {
                if !self.bot_closed {
                    lock(&self.log).sync_timeouts += 1;
                }
                break;
            };
            if matches!(&message, Message::Pong(p) if p.as_ref() == token.as_slice()) {
                break;
            }
            self.on_message(now, message);
            if self.bot_closed {
                break;
            }
        }
    }

    /// Manual clock, the clock held: waits up to `budget` (real time) for
    /// the bot to send something, applies it and everything right behind
    /// it. Returns whether anything came.
    async fn wait_for_bot(&mut self, now: DateTime<Utc>, budget: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + budget;
        loop {
            let Some(message) = self.read(deadline).await else { return false };
            if self.on_message(now, message) {
                self.sync(now).await;
                return true;
            }
        }
    }

    /// Whether the caller is listening for the bot's answer (a scripted
    /// turn waits for it, or a person holding the phone has nothing more to
    /// say yet), and has streamed enough silence after its turn (or since
    /// the stream began) for the bot to notice the end.
    fn should_wait_for_reply(&self, now: DateTime<Utc>) -> bool {
        let listening = match self.next_turn() {
            Some(TurnDue::Listening { .. }) => true,
            Some(TurnDue::At(_)) => false,
            None => self.held,
        };
        !self.waited_for_reply && listening && now >= add(self.caller_free_at, self.config.end_of_turn)
    }

    /// Whether the bot's answer to a listening caller has just finished playing.
    fn should_wait_quiet(&self, now: DateTime<Utc>) -> bool {
        let listening = self.turns.front().is_some_and(|t| t.utterance.cue == Cue::AfterReply);
        listening
            && self.reply_start.is_some()
            && now >= self.queue_end
            && self.quiet_done_for != Some(self.queue_end)
            && self.next_turn_at().is_some_and(|at| at > now)
    }

    /// Sends echoes and syncs until nothing is left to send at `now`.
    async fn exchange(&mut self, now: DateTime<Utc>) {
        self.play_until(now);
        for _ in 0..MAX_ROUNDS {
            for frame in std::mem::take(&mut self.outbox) {
                self.send(now, frame).await;
            }
            self.sync(now).await;
            self.play_until(now);
            if self.outbox.is_empty() || self.bot_closed {
                break;
            }
        }
    }

    /// Echoes, syncs and applies the bot's frames until nothing is left to
    /// send at `now` (on a manual clock, holding it while a listening caller
    /// waits for the bot); then says when to wake next.
    async fn settle(&mut self, now: DateTime<Utc>) -> Wake {
        self.exchange(now).await;
        if !self.real_time {
            for _ in 0..MAX_WAITS {
                let budget = if self.should_wait_for_reply(now) {
                    self.waited_for_reply = true;
                    self.config.reply_wait
                } else if self.should_wait_quiet(now) {
                    self.quiet_done_for = Some(self.queue_end);
                    self.config.quiet_wait
                } else {
                    break;
                };
                if self.bot_closed || !self.wait_for_bot(now, budget).await {
                    break;
                }
                self.exchange(now).await;
            }
        }
        if self.bot_closed {
            return Wake::Ended(self.finish(now, None, "bot").await);
        }
        let mut next = self.chunk_at(self.chunk + 1).min(self.session_end());
        if let Some((at, _)) = self.dtmf.front() {
            next = next.min(*at);
        }
        if let Some(at) = self.next_turn_at() {
            next = next.min(at);
        }
        if let Some(at) = self.hang_up_at {
            next = next.min(at);
        }
        if let Some(at) = self.queue.iter().find_map(|q| match q {
            Queued::Mark { at, .. } => Some(*at),
            Queued::Audio { .. } => None,
        }) {
            next = next.min(at);
        }
        Wake::Continue(next.max(now + chrono::Duration::milliseconds(1)))
    }

    /// A scheduled wake at `now`.
    pub(crate) async fn wake(&mut self, now: DateTime<Utc>) -> Wake {
        if let Some(at) = self.send_due(now).await {
            // The caller hangs up: Exotel stops the stream, the call ends.
            return Wake::Ended(self.stop("callended", "user", at).await);
        }
        if now >= self.session_end() {
            return Wake::Ended(self.stop("stopped", "NA", now).await);
        }
        self.settle(now).await
    }

    /// Exotel ends the stream: `stop` with `reason`, then close.
    pub(crate) async fn stop(&mut self, reason: &str, disconnected_by: &'static str, now: DateTime<Utc>) -> StreamEnd {
        if !self.bot_closed {
            self.play_until(now);
            let frame = json!({
                "event": "stop",
                "sequence_number": self.next_seq(),
                "stream_sid": self.stream_sid,
                "stop": {"call_sid": self.call_sid, "account_sid": self.account_sid, "reason": reason},
            });
            self.send(now, frame).await;
        }
        self.finish(now, Some(reason), disconnected_by).await
    }

    async fn finish(&mut self, now: DateTime<Utc>, stop_reason: Option<&str>, by: &'static str) -> StreamEnd {
        self.play_until(now);
        // Close, and wait for the bot's side of the closing handshake: a bot
        // that handles frames in order has then seen everything sent.
        let _ = self.ws.close(None).await;
        let deadline = tokio::time::Instant::now() + self.config.sync_timeout;
        while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
        let duration_secs = u64::try_from((now - self.started_at).num_seconds()).unwrap_or(0);
        let recording = (!self.recording.is_empty()).then(|| audio::wav(&self.recording, self.rate));
        let recording_url = recording.as_ref().map(|_| self.recording_url.clone());
        let heard = (!self.heard.is_empty()).then(|| audio::wav(&self.heard, self.rate));
        {
            let mut log = lock(&self.log);
            log.ended_at = Some(now);
            log.status = Some("completed".to_string());
            log.stop_reason = stop_reason.map(str::to_string);
            log.disconnected_by = Some(by.to_string());
            log.recording_url = recording_url.clone();
            log.heard_url = heard.as_ref().map(|_| self.heard_url.clone());
        }
        self.queue.clear();
        StreamEnd {
            stream_sid: self.stream_sid.clone(),
            status: "completed",
            duration_secs,
            disconnected_by: by,
            recording_url,
            recording,
            heard,
        }
    }
}

/// A turn without words or keys: the caller stays silent (or just hangs up).
fn is_silent(utterance: &Utterance) -> bool {
    utterance.text.trim().is_empty() && utterance.digits.is_empty()
}

/// The caller's words for `utterance` at `rate`: its voice, or (when
/// espeak-ng cannot speak) the tones stand-in, with why.
async fn speak(voice: &CallerVoice, utterance: &Utterance, rate: u32) -> (Option<Spoken>, Option<String>) {
    if utterance.text.trim().is_empty() {
        return (None, None);
    }
    let (spoken, note) = voice.speak_or_tones(&utterance.text, utterance.language_tag(), rate).await;
    (Some(spoken), note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_take_credentials_rate_and_three_custom_parameters() {
        let t = target("ws://bot:s%3Acret@127.0.0.1:9/v?flow=f&sample-rate=16000&token=T&a=1&b=2").unwrap();
        assert_eq!(t.url, "ws://127.0.0.1:9/v?flow=f&sample-rate=16000&token=T&a=1&b=2");
        let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("bot:s:cret"));
        assert_eq!(t.authorization.as_deref(), Some(expected.as_str()));
        assert_eq!(t.rate, 16000);
        assert_eq!(t.custom.keys().collect::<Vec<_>>(), ["a", "flow", "token"]);
        assert_eq!(t.log_url, "ws://127.0.0.1:9/v?flow=f&sample-rate=16000&a=1&b=2");
        assert!(target("http://x/").is_err());
        assert_eq!(target("ws://x/v?token=T").unwrap().log_url, "ws://x/v");
    }
}
