//! Outbound calls: `Calls/connect` validation, the scripted progress of
//! each leg, status callbacks and the `Call` document of the REST API.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mangwale_core::E164;
use serde::Serialize;

use super::SimConfig;
use super::form::{ApiError, Form};
use super::log::CallbackKind;
use super::payload::Payload;
use super::script::{CalleeScript, FlowCall, FlowMode, FlowStep, Pickup};
use super::state::{Action, Encoding, Event, FlowHook, LegOutcome, Outgoing, State};
use crate::clock::format_ist;

/// Exotel's maximum `TimeLimit` (4 hours), also the default.
pub const MAX_TIME_LIMIT: u32 = 14_400;
/// The default ring timeout (`TimeOut`) of each leg.
pub const DEFAULT_TIME_OUT: u32 = 30;
/// The longest `CustomField` accepted.
pub const MAX_CUSTOM_FIELD: usize = 128;
/// Price of one started minute of one answered leg, in rupees.
const PRICE_PER_LEG_MINUTE: f64 = 0.5;

/// Call and leg status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    Queued,
    Ringing,
    InProgress,
    Completed,
    Busy,
    Failed,
    NoAnswer,
    Canceled,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::Failed => "failed",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Canceled => "canceled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            CallStatus::Completed | CallStatus::Busy | CallStatus::Failed | CallStatus::NoAnswer | CallStatus::Canceled
        )
    }
}

/// What `Calls/connect` connects the first leg to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallMode {
    /// `To`: Exotel dials `From`, then `To`, and bridges them.
    Bridge,
    /// `Url`: `From` is connected to an Exotel flow.
    Flow { url: String, flow_id: Option<String> },
    /// `StreamUrl` + `StreamType=bidirectional`: `From` talks to a voicebot.
    Voicebot { stream_url: String, stream_name: Option<String> },
    /// Someone called one of our ExoPhones (`caller_id`), which runs flow
    /// `flow_id`; `from` is the caller.
    Incoming { flow_id: String },
}

/// `StatusCallbackEvents` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallbackEvent {
    Terminal,
    Answered,
}

impl CallbackEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackEvent::Terminal => "terminal",
            CallbackEvent::Answered => "answered",
        }
    }
}

/// `StatusCallbackContentType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackEncoding {
    /// `application/json`: a JSON object, `Legs` an array.
    Json,
    /// `multipart/form-data` (the default): flat PHP-style keys.
    Multipart,
    /// `application/x-www-form-urlencoded`: flat PHP-style keys.
    UrlEncoded,
}

/// One leg of a call: leg 1 dials `From`, leg 2 (bridge calls) dials `To`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leg {
    pub number: E164,
    /// `None` while not attempted.
    pub status: Option<CallStatus>,
    pub dialled_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Seconds answered, once the leg ended.
    pub on_call_duration: u32,
    /// The script the leg was dialled with.
    pub script: Option<CalleeScript>,
}

impl Leg {
    fn new(number: E164) -> Self {
        Leg {
            number,
            status: None,
            dialled_at: None,
            answered_at: None,
            ended_at: None,
            on_call_duration: 0,
            script: None,
        }
    }

    /// Seconds on call so far (or in total, once ended).
    fn on_call_at(&self, now: DateTime<Utc>) -> u32 {
        match (self.answered_at, self.ended_at) {
            (Some(_), Some(_)) => self.on_call_duration,
            (Some(a), None) => seconds(now - a),
            _ => 0,
        }
    }
}

/// A call placed through `Calls/connect`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    pub sid: String,
    pub mode: CallMode,
    pub from: E164,
    /// `To` of a bridge call.
    pub to: Option<E164>,
    /// The ExoPhone (`CallerId`).
    pub caller_id: E164,
    /// `in-progress` until the call ends, then its final status.
    pub status: CallStatus,
    pub legs: Vec<Leg>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Seconds both parties were connected (bridge) or the callee was on (flow).
    pub conversation_duration: u32,
    pub custom_field: Option<String>,
    pub status_callback: Option<String>,
    /// Subscribed `StatusCallbackEvents`; empty: only the 4-field terminal callback.
    pub callback_events: Vec<CallbackEvent>,
    pub callback_encoding: CallbackEncoding,
    pub time_limit: u32,
    pub time_out: u32,
    pub record: bool,
    pub recording_url: Option<String>,
}

impl Call {
    pub fn is_ended(&self) -> bool {
        self.ended_at.is_some()
    }

    /// `To` as Exotel echoes it: the dialled number, or the ExoPhone for flow calls.
    fn to_echo(&self) -> String {
        self.to.as_ref().unwrap_or(&self.caller_id).national()
    }

    /// `Direction` in call details and status callbacks.
    pub fn direction(&self) -> &'static str {
        match self.mode {
            CallMode::Incoming { .. } => "inbound",
            _ => "outbound-api",
        }
    }

    /// Call duration in seconds (creation to end).
    pub fn duration(&self) -> Option<u32> {
        self.ended_at.map(|e| seconds(e - self.created_at))
    }

    /// The price charged: per started minute of each answered leg.
    pub fn price(&self) -> Option<String> {
        self.ended_at?;
        let minutes: u32 =
            self.legs.iter().filter(|l| l.answered_at.is_some()).map(|l| l.on_call_duration.div_ceil(60)).sum();
        Some(format!("{:.3}", f64::from(minutes) * PRICE_PER_LEG_MINUTE))
    }
}

fn seconds(d: chrono::Duration) -> u32 {
    u32::try_from(d.num_seconds().max(0)).unwrap_or(u32::MAX)
}

fn whole_seconds(secs: u32) -> chrono::Duration {
    chrono::Duration::seconds(i64::from(secs))
}

fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    crate::clock::add(now, d)
}

fn invalid(param: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!("Invalid Call Parameters: Invalid '{param}' specified: {why}"))
}

fn missing(param: &str) -> ApiError {
    ApiError::bad_request(format!("Invalid Call Parameters: Missing parameter '{param}'"))
}

struct ConnectRequest {
    from: E164,
    caller_id: E164,
    mode: CallMode,
    to: Option<E164>,
    time_limit: u32,
    time_out: u32,
    record: bool,
    custom_field: Option<String>,
    status_callback: Option<String>,
    events: Vec<CallbackEvent>,
    encoding: CallbackEncoding,
}

fn parse_number(form: &Form, param: &str) -> Result<Option<E164>, ApiError> {
    match form.get(param) {
        None => Ok(None),
        Some(v) => E164::parse(v).map(Some).map_err(|e| invalid(param, &e.0)),
    }
}

fn parse_u32(form: &Form, param: &str) -> Result<Option<u32>, ApiError> {
    match form.get(param) {
        None => Ok(None),
        Some(v) => v.parse::<u32>().map(Some).map_err(|_| invalid(param, "not a whole number of seconds")),
    }
}

fn parse_connect(form: &Form, cfg: &SimConfig) -> Result<ConnectRequest, ApiError> {
    let from = parse_number(form, "From")?.ok_or_else(|| missing("From"))?;
    let caller_id = parse_number(form, "CallerId")?.ok_or_else(|| missing("CallerId"))?;
    if !cfg.exophones.contains(&caller_id) {
        return Err(invalid("CallerId", "not an ExoPhone of this account"));
    }

    let to = form.get("To");
    let url = form.get("Url");
    let stream_url = form.get("StreamUrl");
    let stream_type = form.get("StreamType");
    if url.is_some() && stream_url.is_some() {
        return Err(ApiError::bad_request("Invalid Call Parameters: 'Url' and 'StreamUrl' cannot be combined"));
    }
    if stream_url.is_none() && (stream_type.is_some() || form.get("StreamName").is_some()) {
        return Err(missing("StreamUrl"));
    }
    let given = [to, url, stream_url].iter().filter(|v| v.is_some()).count();
    if given == 0 {
        return Err(ApiError::bad_request(
            "Invalid Call Parameters: Missing parameter: one of 'To', 'Url' or 'StreamUrl' is required",
        ));
    }
    if given > 1 {
        return Err(ApiError::bad_request(
            "Invalid Call Parameters: only one of 'To', 'Url' or 'StreamUrl' may be given",
        ));
    }
    let (mode, to) = if to.is_some() {
        (CallMode::Bridge, parse_number(form, "To")?)
    } else if let Some(url) = url {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) || !lower.contains("/exoml/start") {
            return Err(invalid(
                "Url",
                "must be an Exotel flow URL (http://my.exotel.com/<sid>/exoml/start_voice/<id>)",
            ));
        }
        let flow_id = url
            .split(['?', '#'])
            .next()
            .and_then(|p| p.trim_end_matches('/').rsplit('/').next())
            .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .map(str::to_string);
        (CallMode::Flow { url: url.to_string(), flow_id }, None)
    } else {
        let stream_url = stream_url.unwrap_or_default();
        let lower = stream_url.to_ascii_lowercase();
        if !(lower.starts_with("ws://") || lower.starts_with("wss://")) {
            return Err(invalid("StreamUrl", "must be a ws:// or wss:// URL"));
        }
        if stream_url.len() >= 600 {
            return Err(invalid("StreamUrl", "must be shorter than 600 characters"));
        }
        match stream_type {
            None => return Err(missing("StreamType")),
            Some("bidirectional") => {}
            Some(_) => return Err(invalid("StreamType", "must be 'bidirectional'")),
        }
        let stream_name = form.get("StreamName").map(str::to_string);
        if stream_name.as_ref().is_some_and(|n| n.chars().count() > 32) {
            return Err(invalid("StreamName", "at most 32 characters"));
        }
        (CallMode::Voicebot { stream_url: stream_url.to_string(), stream_name }, None)
    };

    let time_limit = parse_u32(form, "TimeLimit")?.unwrap_or(MAX_TIME_LIMIT);
    if time_limit == 0 || time_limit > MAX_TIME_LIMIT {
        return Err(invalid("TimeLimit", "must be between 1 and 14400 seconds"));
    }
    let time_out = parse_u32(form, "TimeOut")?.unwrap_or(DEFAULT_TIME_OUT);
    if time_out == 0 {
        return Err(invalid("TimeOut", "must be at least 1 second"));
    }
    let custom_field = form.get("CustomField").map(str::to_string);
    if custom_field.as_ref().is_some_and(|c| c.chars().count() > MAX_CUSTOM_FIELD) {
        return Err(invalid("CustomField", "at most 128 characters"));
    }
    let record = match form.get("Record").map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(invalid("Record", "must be true or false")),
    };
    if let Some(ch) = form.get("RecordingChannels")
        && ch != "single"
        && ch != "dual"
    {
        return Err(invalid("RecordingChannels", "must be single or dual"));
    }
    match form.get("CallType") {
        None | Some("trans") => {}
        Some("promo") => return Err(invalid("CallType", "promotional calls are not supported")),
        Some(_) => return Err(invalid("CallType", "must be trans")),
    }
    let status_callback = form.get("StatusCallback").map(str::to_string);
    if let Some(cb) = &status_callback {
        let lower = cb.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(invalid("StatusCallback", "must be an http(s) URL"));
        }
    }
    let mut events = Vec::new();
    // Exotel's "connect number to a call flow" API documents no
    // StatusCallbackEvents (only the four-field terminal StatusCallback), and
    // integrators report exactly this 400 when events come with `Url`.
    if matches!(mode, CallMode::Flow { .. }) && !form.list("StatusCallbackEvents").is_empty() {
        return Err(ApiError::bad_request("Invalid Call Parameters: Invalid 'StatusCallbackEvents' specified"));
    }
    for value in form.list("StatusCallbackEvents") {
        let event = match value.to_ascii_lowercase().as_str() {
            "terminal" => CallbackEvent::Terminal,
            "answered" => CallbackEvent::Answered,
            // Exotel's Voice-AI variant knows `ringing`; accepted, never sent.
            "ringing" => continue,
            _ => {
                return Err(ApiError::bad_request("Invalid Call Parameters: Invalid 'StatusCallbackEvents' specified"));
            }
        };
        if !events.contains(&event) {
            events.push(event);
        }
    }
    let encoding = match form.get("StatusCallbackContentType").map(str::to_ascii_lowercase).as_deref() {
        None | Some("multipart/form-data") => CallbackEncoding::Multipart,
        Some("application/json") => CallbackEncoding::Json,
        Some("application/x-www-form-urlencoded") => CallbackEncoding::UrlEncoded,
        Some(_) => {
            return Err(invalid("StatusCallbackContentType", "must be application/json or multipart/form-data"));
        }
    };
    Ok(ConnectRequest {
        from,
        caller_id,
        mode,
        to,
        time_limit,
        time_out,
        record,
        custom_field,
        status_callback,
        events,
        encoding,
    })
}

/// When and how a ringing leg resolves. An interactive phone rings out
/// like an unanswered one unless its person answers or rejects it first
/// (the control endpoints fire that outcome earlier).
pub(crate) fn plan(pickup: &Pickup, time_out: Duration) -> (Duration, LegOutcome) {
    match *pickup {
        Pickup::Answer { after } if after < time_out => (after, LegOutcome::Answer),
        Pickup::Busy { after } if after < time_out => (after, LegOutcome::Busy),
        Pickup::Fail { after } if after < time_out => (after, LegOutcome::Failed),
        _ => (time_out, LegOutcome::NoAnswer),
    }
}

impl State {
    fn call_index(&self, sid: &str) -> Option<usize> {
        self.calls.iter().position(|c| c.sid == sid)
    }

    pub(crate) fn call(&self, sid: &str) -> Option<&Call> {
        self.calls.iter().find(|c| c.sid == sid)
    }

    /// Validates a `Calls/connect` request, places the call and dials leg 1.
    pub(crate) fn connect(&mut self, cfg: &SimConfig, form: &Form, now: DateTime<Utc>) -> Result<String, ApiError> {
        let req = parse_connect(form, cfg)?;
        let sid = self.ids.next_sid();
        let mut legs = vec![Leg::new(req.from.clone())];
        if let Some(to) = &req.to {
            legs.push(Leg::new(to.clone()));
        }
        self.calls.push(Call {
            sid: sid.clone(),
            mode: req.mode,
            from: req.from,
            to: req.to,
            caller_id: req.caller_id,
            status: CallStatus::InProgress,
            legs,
            created_at: now,
            updated_at: now,
            ended_at: None,
            conversation_duration: 0,
            custom_field: req.custom_field,
            status_callback: req.status_callback,
            callback_events: req.events,
            callback_encoding: req.encoding,
            time_limit: req.time_limit,
            time_out: req.time_out,
            record: req.record,
            recording_url: None,
        });
        let index = self.calls.len() - 1;
        self.dial(index, 0, now);
        Ok(sid)
    }

    fn dial(&mut self, index: usize, leg: usize, now: DateTime<Utc>) {
        let script = self.script_for(&self.calls[index].legs[leg].number);
        let call = &mut self.calls[index];
        let (delay, outcome) = plan(&script.pickup, Duration::from_secs(u64::from(call.time_out)));
        let l = &mut call.legs[leg];
        l.status = Some(CallStatus::Ringing);
        l.dialled_at = Some(now);
        l.script = Some(script);
        let sid = call.sid.clone();
        self.schedule(after(now, delay), Event::LegOutcome { sid, leg, outcome });
    }

    pub(crate) fn on_leg_outcome(
        &mut self,
        cfg: &SimConfig,
        sid: &str,
        leg: usize,
        outcome: LegOutcome,
        now: DateTime<Utc>,
    ) -> Vec<Action> {
        let Some(index) = self.call_index(sid) else { return Vec::new() };
        let call = &mut self.calls[index];
        if call.is_ended() || call.legs.get(leg).and_then(|l| l.status) != Some(CallStatus::Ringing) {
            return Vec::new();
        }
        call.updated_at = now;
        let l = &mut call.legs[leg];
        let status = match outcome {
            LegOutcome::Answer => CallStatus::InProgress,
            LegOutcome::NoAnswer => CallStatus::NoAnswer,
            LegOutcome::Busy => CallStatus::Busy,
            LegOutcome::Failed => CallStatus::Failed,
        };
        l.status = Some(status);
        if status != CallStatus::InProgress {
            l.ended_at = Some(now);
            return self.end_call(cfg, index, now);
        }
        l.answered_at = Some(now);
        let hang_up = l.script.as_ref().and_then(|s| s.hang_up_after);
        let mut actions = Vec::new();
        if call.callback_events.contains(&CallbackEvent::Answered) {
            actions.extend(status_callback(call, Some(CallbackEvent::Answered), now));
        }
        let time_limit = whole_seconds(call.time_limit);
        let mode = call.mode.clone();
        if let Some(talk) = hang_up {
            self.schedule(after(now, talk), Event::LegHangUp { sid: sid.to_string(), leg });
        }
        if leg == 0 {
            self.schedule(now + time_limit, Event::TimeLimit { sid: sid.to_string() });
            match mode {
                CallMode::Bridge => self.dial(index, 1, now),
                CallMode::Flow { .. } | CallMode::Voicebot { .. } | CallMode::Incoming { .. } => {
                    actions.push(Action::Flow(FlowHook::Start, Box::new(flow_call(&self.calls[index], cfg, now))));
                }
            }
        }
        actions
    }

    pub(crate) fn on_leg_hang_up(&mut self, cfg: &SimConfig, sid: &str, leg: usize, now: DateTime<Utc>) -> Vec<Action> {
        let Some(index) = self.call_index(sid) else { return Vec::new() };
        let call = &self.calls[index];
        let status = call.legs.get(leg).and_then(|l| l.status);
        // A caller may also give up while an incoming flow has not answered yet.
        let ringing_caller =
            leg == 0 && status == Some(CallStatus::Ringing) && matches!(call.mode, CallMode::Incoming { .. });
        if call.is_ended() || (status != Some(CallStatus::InProgress) && !ringing_caller) {
            return Vec::new();
        }
        self.end_call(cfg, index, now)
    }

    /// Someone calls `exophone` from `from`: the call comes in now and flow
    /// `flow_id` starts at once (the flow runner answers it when it plays
    /// audio, see [`State::answer_incoming`]).
    pub(crate) fn incoming(&mut self, from: E164, exophone: E164, flow_id: &str, now: DateTime<Utc>) -> String {
        let sid = self.ids.next_sid();
        let script = self.script_for(&from);
        let mut leg = Leg::new(from.clone());
        leg.status = Some(CallStatus::Ringing);
        leg.dialled_at = Some(now);
        leg.script = Some(script.clone());
        self.calls.push(Call {
            sid: sid.clone(),
            mode: CallMode::Incoming { flow_id: flow_id.to_string() },
            from,
            to: None,
            caller_id: exophone,
            status: CallStatus::InProgress,
            legs: vec![leg],
            created_at: now,
            updated_at: now,
            ended_at: None,
            conversation_duration: 0,
            custom_field: None,
            status_callback: None,
            callback_events: Vec::new(),
            callback_encoding: CallbackEncoding::Multipart,
            time_limit: MAX_TIME_LIMIT,
            time_out: DEFAULT_TIME_OUT,
            record: false,
            recording_url: None,
        });
        if let Some(talk) = script.hang_up_after {
            self.schedule(after(now, talk), Event::LegHangUp { sid: sid.clone(), leg: 0 });
        }
        self.schedule(now + whole_seconds(MAX_TIME_LIMIT), Event::TimeLimit { sid: sid.clone() });
        self.schedule(now, Event::FlowStart { sid: sid.clone() });
        sid
    }

    pub(crate) fn on_flow_start(&mut self, cfg: &SimConfig, sid: &str, now: DateTime<Utc>) -> Vec<Action> {
        match self.call(sid) {
            Some(call) if !call.is_ended() => vec![Action::Flow(FlowHook::Start, Box::new(flow_call(call, cfg, now)))],
            _ => Vec::new(),
        }
    }

    /// An incoming flow played audio: Exotel has answered the caller.
    pub(crate) fn answer_incoming(&mut self, sid: &str, now: DateTime<Utc>) {
        let Some(index) = self.call_index(sid) else { return };
        let call = &mut self.calls[index];
        if call.is_ended() || call.legs[0].status != Some(CallStatus::Ringing) {
            return;
        }
        call.legs[0].status = Some(CallStatus::InProgress);
        call.legs[0].answered_at = Some(now);
        call.updated_at = now;
    }

    /// A flow's Connect applet dials `number`: a new leg, ringing from now.
    /// Returns its index.
    pub(crate) fn add_flow_leg(&mut self, sid: &str, number: E164, now: DateTime<Utc>) -> Option<usize> {
        let script = self.script_for(&number);
        let index = self.call_index(sid)?;
        let call = &mut self.calls[index];
        if call.is_ended() {
            return None;
        }
        let mut leg = Leg::new(number);
        leg.status = Some(CallStatus::Ringing);
        leg.dialled_at = Some(now);
        leg.script = Some(script);
        call.legs.push(leg);
        call.updated_at = now;
        Some(call.legs.len() - 1)
    }

    /// A flow leg answers (`in-progress`) or ends (any final status).
    pub(crate) fn set_flow_leg(&mut self, sid: &str, leg: usize, status: CallStatus, now: DateTime<Utc>) {
        let Some(index) = self.call_index(sid) else { return };
        let call = &mut self.calls[index];
        let Some(l) = call.legs.get_mut(leg) else { return };
        if call.ended_at.is_some() || l.status.is_some_and(|s| s.is_final()) {
            return;
        }
        l.status = Some(status);
        if status == CallStatus::InProgress {
            l.answered_at = Some(now);
        } else if status.is_final() {
            l.ended_at = Some(now);
            l.on_call_duration = l.answered_at.map(|a| seconds(now - a)).unwrap_or(0);
        }
        call.updated_at = now;
    }

    pub(crate) fn on_time_limit(&mut self, cfg: &SimConfig, sid: &str, now: DateTime<Utc>) -> Vec<Action> {
        match self.call_index(sid) {
            Some(index) if !self.calls[index].is_ended() => self.end_call(cfg, index, now),
            _ => Vec::new(),
        }
    }

    pub(crate) fn on_flow_resume(&mut self, cfg: &SimConfig, sid: &str, now: DateTime<Utc>) -> Vec<Action> {
        match self.call(sid) {
            Some(call) if !call.is_ended() => vec![Action::Flow(FlowHook::Resume, Box::new(flow_call(call, cfg, now)))],
            _ => Vec::new(),
        }
    }

    /// Applies what the flow runner answered.
    pub(crate) fn apply_flow_step(
        &mut self,
        cfg: &SimConfig,
        sid: &str,
        step: FlowStep,
        now: DateTime<Utc>,
    ) -> Vec<Action> {
        let Some(index) = self.call_index(sid) else { return Vec::new() };
        if self.calls[index].is_ended() {
            return Vec::new();
        }
        match step {
            FlowStep::Wait(d) => {
                self.schedule(after(now, d), Event::FlowResume { sid: sid.to_string() });
                Vec::new()
            }
            FlowStep::HangUp => self.end_call(cfg, index, now),
            FlowStep::Done => Vec::new(),
        }
    }

    /// Ends the call now: connected legs complete, ringing legs are
    /// canceled, the final status follows the leg-2 rule, and the terminal
    /// callback goes out.
    fn end_call(&mut self, cfg: &SimConfig, index: usize, now: DateTime<Utc>) -> Vec<Action> {
        let sid = self.calls[index].sid.clone();
        self.cancel_events(&sid);
        let call = &mut self.calls[index];
        let incoming = matches!(call.mode, CallMode::Incoming { .. });
        if incoming && call.legs[0].status == Some(CallStatus::Ringing) {
            // Never answered (a missed call, or the caller gave up first).
            call.legs[0].status = Some(CallStatus::NoAnswer);
            call.legs[0].ended_at = Some(now);
        }
        for leg in &mut call.legs {
            match leg.status {
                Some(CallStatus::InProgress) => {
                    leg.status = Some(CallStatus::Completed);
                    leg.ended_at = Some(now);
                    leg.on_call_duration = leg.answered_at.map(|a| seconds(now - a)).unwrap_or(0);
                }
                Some(CallStatus::Ringing) => {
                    leg.status = Some(CallStatus::Canceled);
                    leg.ended_at = Some(now);
                }
                _ => {}
            }
        }
        call.status = match (call.legs[0].status, &call.mode) {
            (Some(s @ (CallStatus::Busy | CallStatus::NoAnswer | CallStatus::Failed)), _) => s,
            (_, CallMode::Bridge) => match call.legs.get(1).and_then(|l| l.status) {
                Some(CallStatus::Completed) => CallStatus::Completed,
                Some(s @ (CallStatus::Busy | CallStatus::NoAnswer | CallStatus::Failed)) => s,
                // Leg 1 hung up while leg 2 still rang: nobody talked.
                _ => CallStatus::NoAnswer,
            },
            _ => CallStatus::Completed,
        };
        call.conversation_duration = match call.mode {
            CallMode::Bridge => call.legs.get(1).and_then(|l| l.answered_at).map(|a| seconds(now - a)).unwrap_or(0),
            _ => call.legs[0].on_call_duration,
        };
        call.ended_at = Some(now);
        call.updated_at = now;
        if call.record && call.conversation_duration > 0 {
            call.recording_url = Some(format!(
                "https://s3-ap-southeast-1.amazonaws.com/exotelrecordings/{}/{}.mp3",
                cfg.account_sid, call.sid
            ));
        }
        let mut actions: Vec<Action> = status_callback(call, Some(CallbackEvent::Terminal), now).into_iter().collect();
        if !matches!(call.mode, CallMode::Bridge) && (call.legs[0].answered_at.is_some() || incoming) {
            actions.push(Action::Flow(FlowHook::Ended, Box::new(flow_call(call, cfg, now))));
        }
        actions
    }
}

fn flow_call(call: &Call, cfg: &SimConfig, now: DateTime<Utc>) -> FlowCall {
    let mode = match &call.mode {
        CallMode::Flow { url, flow_id } => FlowMode::Flow { url: url.clone(), flow_id: flow_id.clone() },
        CallMode::Voicebot { stream_url, stream_name } => {
            FlowMode::Voicebot { stream_url: stream_url.clone(), stream_name: stream_name.clone() }
        }
        CallMode::Incoming { flow_id } => FlowMode::Incoming { flow_id: flow_id.clone() },
        CallMode::Bridge => FlowMode::Flow { url: String::new(), flow_id: None },
    };
    FlowCall {
        call_sid: call.sid.clone(),
        account_sid: cfg.account_sid.clone(),
        mode,
        from: call.from.clone(),
        exophone: call.caller_id.clone(),
        custom_field: call.custom_field.clone(),
        script: call.legs[0].script.clone().unwrap_or_default(),
        created_at: call.created_at,
        answered_at: call.legs[0].answered_at.or(call.legs[0].dialled_at).unwrap_or(now),
        now,
    }
}

/// The voice status callback for `event`, if the call has a `StatusCallback`.
fn status_callback(call: &Call, event: Option<CallbackEvent>, now: DateTime<Utc>) -> Option<Action> {
    let url = call.status_callback.clone()?;
    let subscribed = !call.callback_events.is_empty();
    let payload = if subscribed {
        event_payload(call, event.unwrap_or(CallbackEvent::Terminal), now)
    } else {
        Payload::new()
            .str("CallSid", call.sid.clone())
            .str("Status", call.status.as_str())
            .str("DateUpdated", format_ist(now))
            .opt("RecordingUrl", call.recording_url.clone())
    };
    let encoding = match call.callback_encoding {
        CallbackEncoding::Json => Encoding::Json,
        CallbackEncoding::Multipart => Encoding::Multipart,
        CallbackEncoding::UrlEncoded => Encoding::UrlEncoded,
    };
    let event_name = subscribed.then(|| event.unwrap_or(CallbackEvent::Terminal).as_str().to_string());
    Some(Action::Deliver(Outgoing {
        kind: CallbackKind::CallStatus { event: event_name },
        sid: call.sid.clone(),
        url,
        encoding,
        payload,
    }))
}

fn event_payload(call: &Call, event: CallbackEvent, now: DateTime<Utc>) -> Payload {
    let terminal = event == CallbackEvent::Terminal;
    let status = if terminal { call.status } else { CallStatus::InProgress };
    let legs = call
        .legs
        .iter()
        .enumerate()
        .map(|(i, leg)| {
            let status = match leg.status {
                None | Some(CallStatus::Ringing | CallStatus::Queued) => "",
                Some(s) => s.as_str(),
            };
            let answered_by = match (&leg.script, leg.answered_at) {
                (Some(script), Some(_)) if i > 0 => script.answered_by.as_str(),
                _ => "NA",
            };
            Payload::new()
                .int("OnCallDuration", i64::from(leg.on_call_at(now)))
                .str("Status", status)
                .str("AnsweredBy", answered_by)
        })
        .collect();
    let mut p = Payload::new()
        .str("CallSid", call.sid.clone())
        .str("EventType", event.as_str())
        .str("Status", status.as_str())
        .str("DateCreated", format_ist(call.created_at))
        .str("DateUpdated", format_ist(now))
        .str("StartTime", format_ist(call.created_at))
        .opt("EndTime", call.ended_at.map(format_ist))
        .str("From", call.from.national())
        .str("To", call.to_echo())
        .str("PhoneNumberSid", call.caller_id.national())
        .int("ConversationDuration", i64::from(call.conversation_duration))
        .str("Direction", call.direction());
    if terminal && let Some(cf) = &call.custom_field {
        p = p.str("CustomField", cf.clone());
    }
    p.opt("RecordingUrl", call.recording_url.clone()).list("Legs", legs)
}

/// The `{"Call": {…}}` document. `Duration`, `Price` and `EndTime` appear
/// only `details_delay` after the call ended, as on Exotel.
pub(crate) fn call_document(call: &Call, cfg: &SimConfig, now: DateTime<Utc>, json: bool, details: bool) -> Payload {
    let settled = call.ended_at.filter(|end| after(*end, cfg.details_delay) <= now).is_some();
    let uri = format!("/v1/Accounts/{}/Calls/{}{}", cfg.account_sid, call.sid, if json { ".json" } else { "" });
    let mut p = Payload::new()
        .str("Sid", call.sid.clone())
        .null("ParentCallSid")
        .str("DateCreated", format_ist(call.created_at))
        .str("DateUpdated", format_ist(call.updated_at))
        .str("AccountSid", cfg.account_sid.clone())
        .str("To", call.to_echo())
        .str("From", call.from.national())
        .str("PhoneNumberSid", call.caller_id.national())
        .str("Status", call.status.as_str())
        .str("StartTime", format_ist(call.created_at))
        .opt("EndTime", call.ended_at.filter(|_| settled).map(format_ist))
        .opt("Duration", call.duration().filter(|_| settled).map(|d| d.to_string()))
        .opt("Price", call.price().filter(|_| settled))
        .str("Direction", call.direction())
        .null("AnsweredBy")
        .null("ForwardedFrom")
        .null("CallerName")
        .str("Uri", uri)
        .opt("RecordingUrl", call.recording_url.clone());
    if details {
        let leg_status = |i: usize| -> Option<&'static str> {
            match call.legs.get(i) {
                Some(l) => match l.status {
                    Some(s) => Some(s.as_str()),
                    None if !call.is_ended() => Some("queued"),
                    None => None,
                },
                None => None,
            }
        };
        let legs = call
            .legs
            .iter()
            .enumerate()
            .map(|(i, l)| {
                Payload::new().obj(
                    "Leg",
                    Payload::new().int("Id", i as i64 + 1).int("OnCallDuration", i64::from(l.on_call_at(now))),
                )
            })
            .collect();
        p = p.obj(
            "Details",
            Payload::new()
                .int("ConversationDuration", i64::from(call.conversation_duration))
                .opt("Leg1Status", leg_status(0))
                .opt("Leg2Status", leg_status(1))
                .list("Legs", legs),
        );
    }
    Payload::new().obj("Call", p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_answers_are_no_answers() {
        let t = Duration::from_secs(30);
        assert_eq!(
            plan(&Pickup::Answer { after: Duration::from_secs(2) }, t),
            (Duration::from_secs(2), LegOutcome::Answer)
        );
        assert_eq!(plan(&Pickup::Answer { after: Duration::from_secs(40) }, t), (t, LegOutcome::NoAnswer));
        assert_eq!(plan(&Pickup::NoAnswer, t), (t, LegOutcome::NoAnswer));
        assert_eq!(plan(&Pickup::Interactive, t), (t, LegOutcome::NoAnswer));
        assert_eq!(plan(&Pickup::Busy { after: Duration::from_secs(3) }, t).1, LegOutcome::Busy);
    }
}
