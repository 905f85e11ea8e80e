//! Requests Exotel makes to us: applet GETs (Passthru, Gather, Greeting,
//! Connect), voice status callbacks and SMS delivery callbacks. Parsing is
//! lenient where Exotel is inconsistent (numbers as strings, quoted digits,
//! unknown values) and strict only about what we cannot work without.

use chrono::{DateTime, Utc};
use mangwale_core::E164;
use serde::Serialize;

use super::params::Params;
use super::time::parse_ist;

/// A required field is missing or unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ParamError {
    pub field: &'static str,
    pub message: String,
}

fn missing(field: &'static str) -> ParamError {
    ParamError { field, message: "is required".to_string() }
}

/// Call (or leg) status values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// A value this build does not know; kept verbatim.
    Other(String),
}

impl CallStatus {
    pub fn parse(s: &str) -> CallStatus {
        match s.trim().to_ascii_lowercase().as_str() {
            "queued" => CallStatus::Queued,
            "ringing" => CallStatus::Ringing,
            "in-progress" | "in_progress" | "inprogress" | "answered" => CallStatus::InProgress,
            "completed" => CallStatus::Completed,
            "busy" => CallStatus::Busy,
            "failed" => CallStatus::Failed,
            "no-answer" | "no_answer" | "noanswer" => CallStatus::NoAnswer,
            "canceled" | "cancelled" => CallStatus::Canceled,
            other => CallStatus::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::Failed => "failed",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Canceled => "canceled",
            CallStatus::Other(s) => s,
        }
    }

    /// Whether the call is over.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            CallStatus::Completed | CallStatus::Busy | CallStatus::Failed | CallStatus::NoAnswer | CallStatus::Canceled
        )
    }
}

/// `CallType` of applet requests: what happened on the call so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallType {
    /// IVR only, nobody connected (also every missed call).
    CallAttempt,
    /// A conversation happened.
    Completed,
    /// The caller hung up during a Connect.
    ClientHangup,
    /// Nobody picked up at a Connect.
    Incomplete,
    Voicemail,
    Other(String),
}

impl CallType {
    pub fn parse(s: &str) -> CallType {
        match s.trim().to_ascii_lowercase().as_str() {
            "call-attempt" => CallType::CallAttempt,
            "completed" => CallType::Completed,
            "client-hangup" => CallType::ClientHangup,
            "incomplete" => CallType::Incomplete,
            "voicemail" => CallType::Voicemail,
            other => CallType::Other(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Incoming,
    OutboundDial,
    OutboundApi,
    Other(String),
}

impl Direction {
    pub fn parse(s: &str) -> Direction {
        match s.trim().to_ascii_lowercase().as_str() {
            "incoming" | "inbound" => Direction::Incoming,
            "outbound-dial" => Direction::OutboundDial,
            "outbound-api" => Direction::OutboundApi,
            other => Direction::Other(other.to_string()),
        }
    }
}

/// What a Stream or Voicebot applet reports to the Passthru after it
/// (`Stream[StreamSID]`, ... or a single `Stream` JSON string).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreamInfo {
    pub stream_sid: Option<String>,
    pub status: Option<String>,
    pub duration: Option<u32>,
    pub recording_url: Option<String>,
    pub stream_url: Option<String>,
    pub disconnected_by: Option<String>,
}

/// The parameters of an applet request (Passthru, Gather, Greeting, Connect),
/// and of the seed's `POST /exotel/ivr/incoming|missed-call|dtmf` bodies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppletRequest {
    pub call_sid: String,
    /// The caller (inbound) or the number dialled first (outbound).
    pub from: Option<E164>,
    /// The ExoPhone (inbound) or the number dialled (outbound).
    pub to: Option<E164>,
    pub call_status: Option<CallStatus>,
    pub direction: Option<Direction>,
    pub call_type: Option<CallType>,
    /// Keys pressed at the preceding Gather, without Exotel's quotes.
    pub digits: Option<String>,
    /// Our context, echoed from the outbound API call.
    pub custom_field: Option<String>,
    pub recording_url: Option<String>,
    pub dial_call_status: Option<CallStatus>,
    pub dial_call_duration: Option<u32>,
    pub dial_whom_number: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub current_time: Option<DateTime<Utc>>,
    pub created: Option<DateTime<Utc>>,
    pub flow_id: Option<String>,
    pub stream: Option<StreamInfo>,
}

/// Parses a number as Exotel sends it (`09876543210`, `+91…`, `91…`).
/// Unparsable numbers (withheld caller ids, SIP URIs) become `None`.
fn phone(params: &Params, names: &[&str]) -> Option<E164> {
    params.get_any(names).and_then(|v| E164::parse(v).ok())
}

/// Integers arrive as numbers or strings (`"45"`, `"45.0"`).
fn number(params: &Params, name: &str) -> Option<u32> {
    let v = params.get(name)?;
    v.parse::<u32>().ok().or_else(|| v.parse::<f64>().ok().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u32))
}

/// Exotel wraps digits in double quotes (`"1"`); the seed's JSON does not.
pub fn clean_digits(raw: &str) -> Option<String> {
    let digits: String = raw.trim().trim_matches('"').trim().chars().filter(|c| !c.is_whitespace()).collect();
    (!digits.is_empty()).then_some(digits)
}

fn stream_info(params: &Params) -> Option<StreamInfo> {
    let field = |name: &str| params.get(&format!("Stream[{name}]")).map(str::to_string);
    let mut info = StreamInfo {
        stream_sid: field("StreamSID").or_else(|| field("StreamSid")),
        status: field("Status"),
        duration: params.get("Stream[Duration]").and_then(|d| d.parse().ok()),
        recording_url: field("RecordingUrl"),
        stream_url: field("StreamUrl"),
        disconnected_by: field("DisconnectedBy"),
    };
    if info == StreamInfo::default()
        && let Some(json) = params.get("Stream")
        && let Ok(flat) = Params::from_json(json.as_bytes())
    {
        info = StreamInfo {
            stream_sid: flat.get_any(&["StreamSID", "StreamSid", "stream_sid"]).map(str::to_string),
            status: flat.get_any(&["Status", "status"]).map(str::to_string),
            duration: flat.get_any(&["Duration", "duration"]).and_then(|d| d.parse().ok()),
            recording_url: flat.get_any(&["RecordingUrl", "recording_url"]).map(str::to_string),
            stream_url: flat.get_any(&["StreamUrl", "stream_url"]).map(str::to_string),
            disconnected_by: flat.get_any(&["DisconnectedBy", "disconnected_by"]).map(str::to_string),
        };
    }
    info.stream_url = info.stream_url.as_deref().map(without_token);
    (info != StreamInfo::default()).then_some(info)
}

/// A URL without its `token` query parameter. Exotel echoes the Voicebot
/// applet's URL, our webhook token included, as `Stream[StreamUrl]`; the
/// token must never be stored or logged, so it is dropped at parsing.
pub fn without_token(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else { return url.to_string() };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            let name = form_urlencoded::parse(name.as_bytes()).next().map(|(k, _)| k.into_owned()).unwrap_or_default();
            !pair.is_empty() && !name.eq_ignore_ascii_case("token")
        })
        .collect();
    let mut out = base.to_string();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

impl AppletRequest {
    /// `CallSid` is the one field we cannot work without.
    pub fn from_params(params: &Params) -> Result<Self, ParamError> {
        let call_sid = params.get_any(&["CallSid", "call_sid", "callSid"]).ok_or_else(|| missing("CallSid"))?;
        Ok(AppletRequest {
            call_sid: call_sid.to_string(),
            from: phone(params, &["CallFrom", "From", "from_phone", "from"]),
            to: phone(params, &["CallTo", "To", "to"]),
            call_status: params.get("CallStatus").map(CallStatus::parse),
            direction: params.get("Direction").map(Direction::parse),
            call_type: params.get("CallType").map(CallType::parse),
            digits: params.get_any(&["digits", "Digits"]).and_then(clean_digits),
            custom_field: params.get("CustomField").map(str::to_string),
            recording_url: params.get_any(&["RecordingUrl", "recording_url"]).map(str::to_string),
            dial_call_status: params.get("DialCallStatus").map(CallStatus::parse),
            dial_call_duration: number(params, "DialCallDuration"),
            dial_whom_number: params.get("DialWhomNumber").map(str::to_string),
            start_time: params.get("StartTime").and_then(parse_ist),
            current_time: params.get("CurrentTime").and_then(parse_ist),
            created: params.get("Created").and_then(parse_ist),
            flow_id: params.get("flow_id").map(str::to_string),
            stream: stream_info(params),
        })
    }
}

/// `EventType` of a status callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallbackEvent {
    Terminal,
    Answered,
    Ringing,
    Other(String),
}

impl CallbackEvent {
    pub fn parse(s: &str) -> CallbackEvent {
        match s.trim().to_ascii_lowercase().as_str() {
            "terminal" => CallbackEvent::Terminal,
            "answered" => CallbackEvent::Answered,
            "ringing" => CallbackEvent::Ringing,
            other => CallbackEvent::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            CallbackEvent::Terminal => "terminal",
            CallbackEvent::Answered => "answered",
            CallbackEvent::Ringing => "ringing",
            CallbackEvent::Other(s) => s,
        }
    }
}

/// One leg of a call in a status callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leg {
    pub status: Option<CallStatus>,
    pub on_call_duration: Option<u32>,
    pub answered_by: Option<String>,
}

/// A voice status callback (`POST <StatusCallback>`), in JSON, form or
/// multipart encoding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallStatusCallback {
    pub call_sid: String,
    pub status: CallStatus,
    /// Absent when no events were subscribed: then it is the terminal one.
    pub event: CallbackEvent,
    pub date_created: Option<DateTime<Utc>>,
    pub date_updated: Option<DateTime<Utc>>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub from: Option<E164>,
    pub to: Option<E164>,
    pub phone_number_sid: Option<String>,
    pub conversation_duration: Option<u32>,
    pub direction: Option<Direction>,
    /// Sent on the terminal event only.
    pub custom_field: Option<String>,
    pub recording_url: Option<String>,
    pub legs: Vec<Leg>,
}

impl CallStatusCallback {
    pub fn from_params(params: &Params) -> Result<Self, ParamError> {
        let call_sid = params.get_any(&["CallSid", "call_sid"]).ok_or_else(|| missing("CallSid"))?;
        let status =
            params.get_any(&["Status", "CallStatus"]).map(CallStatus::parse).ok_or_else(|| missing("Status"))?;
        let event = params.get("EventType").map(CallbackEvent::parse).unwrap_or(CallbackEvent::Terminal);
        let legs = params
            .indexed("Legs")
            .into_iter()
            .map(|fields| {
                let get = |name: &str| fields.iter().find(|(k, v)| *k == name && !v.trim().is_empty()).map(|(_, v)| *v);
                Leg {
                    status: get("Status").map(CallStatus::parse),
                    on_call_duration: get("OnCallDuration").and_then(|v| v.trim().parse().ok()),
                    answered_by: get("AnsweredBy").map(str::to_string),
                }
            })
            .collect();
        Ok(CallStatusCallback {
            call_sid: call_sid.to_string(),
            status,
            event,
            date_created: params.get("DateCreated").and_then(parse_ist),
            date_updated: params.get("DateUpdated").and_then(parse_ist),
            start_time: params.get("StartTime").and_then(parse_ist),
            end_time: params.get("EndTime").and_then(parse_ist),
            from: phone(params, &["From"]),
            to: phone(params, &["To"]),
            phone_number_sid: params.get("PhoneNumberSid").map(str::to_string),
            conversation_duration: number(params, "ConversationDuration"),
            direction: params.get("Direction").map(Direction::parse),
            custom_field: params.get("CustomField").map(str::to_string),
            recording_url: params.get("RecordingUrl").map(str::to_string),
            legs,
        })
    }

    /// The key that identifies this event for deduplication: Exotel retries
    /// callbacks, and a retry carries the same call and event. A bridge call
    /// reports `answered` once per leg (leg 1 answered while leg 2 still
    /// rings: `Legs[1][Status]` empty; then leg 2 answered), both with
    /// `Status=in-progress`, so the key of an intermediate event names the
    /// leg it is about: each leg's answer is kept, a retry of either is not.
    pub fn dedup_key(&self) -> String {
        let base = format!("exotel:call:{}:{}:{}", self.call_sid, self.event.as_str(), self.status.as_str());
        match (&self.event, self.leg()) {
            (CallbackEvent::Terminal, _) | (_, None) => base,
            (_, Some(leg)) => format!("{base}:leg{leg}"),
        }
    }

    /// The leg (1-based) an intermediate event is about: the last leg that
    /// has a status. `None` when the callback lists no leg with a status.
    pub fn leg(&self) -> Option<usize> {
        self.legs.iter().rposition(|l| l.status.is_some()).map(|i| i + 1)
    }
}

/// SMS delivery status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsStatus {
    Queued,
    Sending,
    Submitted,
    Sent,
    Failed,
    /// Rejected because the number is on the DND registry.
    FailedDnd,
    Other(String),
}

impl SmsStatus {
    pub fn parse(s: &str) -> SmsStatus {
        match s.trim().to_ascii_lowercase().as_str() {
            "queued" => SmsStatus::Queued,
            "sending" => SmsStatus::Sending,
            "submitted" => SmsStatus::Submitted,
            "sent" | "delivered" => SmsStatus::Sent,
            "failed" => SmsStatus::Failed,
            // Exotel's docs spell it both ways.
            "failed_dnd" | "failed-dnd" => SmsStatus::FailedDnd,
            other => SmsStatus::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            SmsStatus::Queued => "queued",
            SmsStatus::Sending => "sending",
            SmsStatus::Submitted => "submitted",
            SmsStatus::Sent => "sent",
            SmsStatus::Failed => "failed",
            SmsStatus::FailedDnd => "failed_dnd",
            SmsStatus::Other(s) => s,
        }
    }
}

/// An SMS delivery callback (form-encoded POST).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmsStatusCallback {
    pub sms_sid: String,
    pub to: Option<E164>,
    pub status: SmsStatus,
    pub sms_units: Option<u32>,
    pub detailed_status: Option<String>,
    pub detailed_status_code: Option<u32>,
    pub date_sent: Option<DateTime<Utc>>,
    pub custom_field: Option<String>,
}

impl SmsStatusCallback {
    pub fn from_params(params: &Params) -> Result<Self, ParamError> {
        let sms_sid = params.get_any(&["SmsSid", "Sid"]).ok_or_else(|| missing("SmsSid"))?;
        let status = params.get("Status").map(SmsStatus::parse).ok_or_else(|| missing("Status"))?;
        Ok(SmsStatusCallback {
            sms_sid: sms_sid.to_string(),
            to: phone(params, &["To"]),
            status,
            sms_units: number(params, "SmsUnits"),
            detailed_status: params.get("DetailedStatus").map(str::to_string),
            detailed_status_code: number(params, "DetailedStatusCode"),
            date_sent: params.get("DateSent").and_then(parse_ist),
            custom_field: params.get("CustomField").map(str::to_string),
        })
    }

    pub fn dedup_key(&self) -> String {
        format!("exotel:sms:{}:{}", self.sms_sid, self.status.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Passthru sample of exotel-wire.md §4.1.
    const PASSTHRU: &str = "CallSid=d50e19c31e3911190a7e601f1056d69a&CallFrom=07799828555&CallTo=08039513882\
        &CallStatus=ringing&Direction=incoming&Created=Tue%2C+16+Feb+2016+15%3A56%3A26&DialCallDuration=0\
        &StartTime=2016-02-16+15%3A56%3A26&EndTime=0000-00-00+00%3A00%3A00&CallType=call-attempt\
        &DialWhomNumber=&flow_id=68135&tenant_id=39&From=07799828555&To=08039513882\
        &CurrentTime=2016-02-16+15%3A56%3A49&digits=%222%22";

    #[test]
    fn parses_the_documented_passthru_sample() {
        let r = AppletRequest::from_params(&Params::from_urlencoded(PASSTHRU.as_bytes())).unwrap();
        assert_eq!(r.call_sid, "d50e19c31e3911190a7e601f1056d69a");
        assert_eq!(r.from.unwrap().as_str(), "+917799828555");
        assert_eq!(r.to.unwrap().as_str(), "+918039513882");
        assert_eq!(r.call_status, Some(CallStatus::Ringing));
        assert_eq!(r.direction, Some(Direction::Incoming));
        assert_eq!(r.call_type, Some(CallType::CallAttempt));
        assert_eq!(r.digits.as_deref(), Some("2"));
        assert_eq!(r.dial_call_duration, Some(0));
        assert_eq!(r.flow_id.as_deref(), Some("68135"));
        assert_eq!(r.start_time.unwrap().to_rfc3339(), "2016-02-16T10:26:26+00:00");
        assert_eq!(r.created, r.start_time);
        assert_eq!(r.dial_whom_number, None);
    }

    #[test]
    fn parses_the_seed_json_bodies() {
        let r = AppletRequest::from_params(
            &Params::from_json(br#"{"CallSid":"EXO-456","digits":"1","context":"vendor_new_order","order_id":"MW-1"}"#)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(r.digits.as_deref(), Some("1"));
        let missed = AppletRequest::from_params(
            &Params::from_json(br#"{"From":"+919876543210","To":"+919999999999","CallType":"missed"}"#).unwrap(),
        );
        assert_eq!(missed.unwrap_err().field, "CallSid");
    }

    #[test]
    fn parses_stream_parameters_in_both_forms() {
        let flat = Params::from_urlencoded(
            b"CallSid=a&Stream[StreamSID]=s1&Stream[Status]=completed&Stream[Duration]=42&Stream[DisconnectedBy]=user",
        );
        let r = AppletRequest::from_params(&flat).unwrap();
        let s = r.stream.unwrap();
        assert_eq!((s.stream_sid.as_deref(), s.duration), (Some("s1"), Some(42)));
        let json =
            Params::from_urlencoded(b"CallSid=a&Stream=%7B%22StreamSID%22%3A%22s2%22%2C%22Duration%22%3A%227%22%7D");
        let s = AppletRequest::from_params(&json).unwrap().stream.unwrap();
        assert_eq!((s.stream_sid.as_deref(), s.duration), (Some("s2"), Some(7)));
    }

    #[test]
    fn the_webhook_token_in_the_stream_url_is_dropped() {
        let p = Params::from_urlencoded(
            b"CallSid=a&Stream[StreamSID]=s1&Stream[StreamUrl]=wss%3A%2F%2Fh%2Fexotel%2Fvoicebot%3Fflow%3Dx%26token%3DS3CR3T-token-0001",
        );
        let s = AppletRequest::from_params(&p).unwrap().stream.unwrap();
        assert_eq!(s.stream_url.as_deref(), Some("wss://h/exotel/voicebot?flow=x"));
        assert_eq!(without_token("wss://h/v?token=x"), "wss://h/v");
        assert_eq!(without_token("wss://h/v?Token=x&a=1#f"), "wss://h/v?a=1#f");
        assert_eq!(without_token("wss://h/v?to%6Ben=x"), "wss://h/v");
        assert_eq!(without_token("wss://h/v"), "wss://h/v");
        let json = Params::from_urlencoded(
            b"CallSid=a&Stream=%7B%22StreamUrl%22%3A%22wss%3A%2F%2Fh%2Fv%3Ftoken%3Dsecret%22%7D",
        );
        let s = AppletRequest::from_params(&json).unwrap().stream.unwrap();
        assert_eq!(s.stream_url.as_deref(), Some("wss://h/v"));
    }

    /// The JSON terminal callback of exotel-wire.md §3.
    const TERMINAL_JSON: &str = r#"{"CallSid":"80bfbec2d78bbbf10fb851f4fa165211","EventType":"terminal","Status":"completed",
 "DateCreated":"2024-01-15 14:25:10","DateUpdated":"2024-01-15 14:30:45",
 "StartTime":"2024-01-15 14:25:12","EndTime":"2024-01-15 14:30:45",
 "From":"09876543210","To":"09123456789","PhoneNumberSid":"08047112233",
 "ConversationDuration":320,"Direction":"outbound-api","CustomField":"order_4711",
 "RecordingUrl":"https://s3-ap-southeast-1.amazonaws.com/exotelrecordings/acme1/80bf.mp3",
 "Legs":[{"OnCallDuration":335,"Status":"completed","AnsweredBy":"NA"},
         {"OnCallDuration":320,"Status":"completed","AnsweredBy":"Human"}]}"#;

    #[test]
    fn parses_the_documented_terminal_callback() {
        let c = CallStatusCallback::from_params(&Params::from_json(TERMINAL_JSON.as_bytes()).unwrap()).unwrap();
        assert_eq!(c.status, CallStatus::Completed);
        assert_eq!(c.event, CallbackEvent::Terminal);
        assert_eq!(c.conversation_duration, Some(320));
        assert_eq!(c.custom_field.as_deref(), Some("order_4711"));
        assert_eq!(c.direction, Some(Direction::OutboundApi));
        assert_eq!(c.legs.len(), 2);
        assert_eq!(c.legs[1].answered_by.as_deref(), Some("Human"));
        assert_eq!(c.legs[0].on_call_duration, Some(335));
        assert_eq!(c.end_time.unwrap().to_rfc3339(), "2024-01-15T09:00:45+00:00");
        assert_eq!(c.dedup_key(), "exotel:call:80bfbec2d78bbbf10fb851f4fa165211:terminal:completed");
    }

    #[test]
    fn parses_a_flattened_answered_callback_with_strings_for_numbers() {
        let form = b"CallSid=abc&EventType=answered&Status=in-progress&ConversationDuration=%2245%22\
            &Legs%5B0%5D%5BStatus%5D=in-progress&Legs%5B1%5D%5BStatus%5D=";
        let c = CallStatusCallback::from_params(&Params::from_urlencoded(form)).unwrap();
        assert_eq!(c.event, CallbackEvent::Answered);
        assert_eq!(c.status, CallStatus::InProgress);
        assert_eq!(c.legs[0].status, Some(CallStatus::InProgress));
        assert_eq!(c.custom_field, None);
        assert_eq!(c.dedup_key(), "exotel:call:abc:answered:in-progress:leg1");
    }

    #[test]
    fn each_legs_answer_of_a_bridge_has_its_own_key() {
        let leg1 = b"CallSid=abc&EventType=answered&Status=in-progress&Legs[0][Status]=in-progress&Legs[1][Status]=";
        let leg2 = b"CallSid=abc&EventType=answered&Status=in-progress&Legs[0][Status]=in-progress&Legs[1][Status]=in-progress";
        let key = |form: &[u8]| CallStatusCallback::from_params(&Params::from_urlencoded(form)).unwrap().dedup_key();
        assert_ne!(key(leg1), key(leg2));
        assert_eq!(key(leg2), "exotel:call:abc:answered:in-progress:leg2");
        assert_eq!(key(leg1), key(leg1), "a retry of one leg's answer is the same event");
        let terminal =
            b"CallSid=abc&EventType=terminal&Status=completed&Legs[0][Status]=completed&Legs[1][Status]=completed";
        assert_eq!(key(terminal), "exotel:call:abc:terminal:completed");
    }

    #[test]
    fn the_four_default_fields_are_enough() {
        let c = CallStatusCallback::from_params(&Params::from_urlencoded(
            b"CallSid=abc&Status=no-answer&DateUpdated=2024-01-15+10%3A30%3A04&RecordingUrl=",
        ))
        .unwrap();
        assert_eq!((c.status, c.event), (CallStatus::NoAnswer, CallbackEvent::Terminal));
    }

    #[test]
    fn missing_required_fields_are_named() {
        assert_eq!(
            CallStatusCallback::from_params(&Params::from_urlencoded(b"Status=completed")).unwrap_err().field,
            "CallSid"
        );
        assert_eq!(
            CallStatusCallback::from_params(&Params::from_urlencoded(b"CallSid=a")).unwrap_err().field,
            "Status"
        );
        assert_eq!(
            SmsStatusCallback::from_params(&Params::from_urlencoded(b"Status=sent")).unwrap_err().field,
            "SmsSid"
        );
    }

    #[test]
    fn parses_the_documented_sms_callback() {
        let form = b"SmsSid=6dbfdc50&To=09876543210&Status=sent&SmsUnits=1&DetailedStatus=DELIVERED_TO_HANDSET\
            &DetailedStatusCode=20005&DateSent=2024-01-15+10%3A30%3A04&CustomField=otp_77";
        let s = SmsStatusCallback::from_params(&Params::from_urlencoded(form)).unwrap();
        assert_eq!(s.status, SmsStatus::Sent);
        assert_eq!(s.detailed_status_code, Some(20005));
        assert_eq!(s.to.unwrap().as_str(), "+919876543210");
        assert_eq!(SmsStatus::parse("failed-dnd"), SmsStatus::FailedDnd);
    }

    proptest::proptest! {
        #[test]
        fn no_query_makes_a_parser_panic(query in "[A-Za-z\\[\\]0-9=&%+\"._-]{0,200}") {
            let p = Params::from_urlencoded(query.as_bytes());
            let _ = AppletRequest::from_params(&p);
            let _ = CallStatusCallback::from_params(&p);
            let _ = SmsStatusCallback::from_params(&p);
        }

        #[test]
        fn a_request_without_call_sid_is_always_rejected_naming_it(query in "[A-Za-z0-9=&%+]{0,120}") {
            let p = Params::from_urlencoded(query.as_bytes());
            if p.get_any(&["CallSid", "call_sid", "callSid"]).is_none() {
                proptest::prop_assert_eq!(AppletRequest::from_params(&p).unwrap_err().field, "CallSid");
            }
        }

        #[test]
        fn no_json_makes_a_parser_panic(json in proptest::arbitrary::any::<String>()) {
            if let Ok(p) = Params::from_json(json.as_bytes()) {
                let _ = CallStatusCallback::from_params(&p);
            }
        }
    }
}
