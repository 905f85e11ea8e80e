//! Typed requests, their client-side validation and their form encoding.
//!
//! Numbers of parties (`From`, `To`) are sent in E.164; `CallerId` in the
//! configured [`NumberFormat`](super::config::NumberFormat) (national by
//! default, as in every Exotel example).

use mangwale_core::E164;
use url::Url;

use super::config::{BracketStyle, BulkKeyPrefix, NumberFormat};
use super::error::ExotelError;
use super::form::Form;
use crate::exotel::inbound::CallbackEvent;

/// Longest `TimeLimit` Exotel accepts: four hours.
pub const MAX_TIME_LIMIT_SECS: u32 = 14_400;
/// Longest `CustomField` (Exotel's OpenAPI).
pub const MAX_CUSTOM_FIELD_CHARS: usize = 128;
/// Longest `StreamName`.
pub const MAX_STREAM_NAME_CHARS: usize = 32;
/// `StreamUrl` must be shorter than this, query included.
pub const MAX_STREAM_URL_CHARS: usize = 600;
/// Longest SMS `Body`.
pub const MAX_SMS_BODY_CHARS: usize = 2000;
/// Most messages in one `Sms/bulksend`.
pub const MAX_BULK_MESSAGES: usize = 100;

/// `RecordingChannels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingChannels {
    /// Both parties mixed into one channel (Exotel's default).
    Single,
    /// One channel per leg.
    Dual,
}

impl RecordingChannels {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingChannels::Single => "single",
            RecordingChannels::Dual => "dual",
        }
    }
}

/// `StatusCallbackContentType`: the encoding of the status callback body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallbackContentType {
    /// `application/json` (our default: `Legs` arrive as a real array).
    #[default]
    Json,
    /// `multipart/form-data` (Exotel's default when nothing is asked for).
    Multipart,
}

impl CallbackContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackContentType::Json => "application/json",
            CallbackContentType::Multipart => "multipart/form-data",
        }
    }
}

/// Where and how Exotel reports the call's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCallback {
    /// Carries our webhook token: never logged or recorded.
    pub url: Url,
    /// `terminal`, `answered` (and `ringing`, which Exotel's own OpenAPI
    /// lists for Voice-AI calls). Empty means Exotel's default: a terminal
    /// callback with only four fields, without `CustomField`.
    pub events: Vec<CallbackEvent>,
    pub content_type: CallbackContentType,
}

impl StatusCallback {
    /// Terminal event only, JSON body.
    pub fn new(url: Url) -> Self {
        StatusCallback { url, events: vec![CallbackEvent::Terminal], content_type: CallbackContentType::Json }
    }

    /// Terminal and answered events, JSON body.
    pub fn terminal_and_answered(url: Url) -> Self {
        StatusCallback { events: vec![CallbackEvent::Terminal, CallbackEvent::Answered], ..StatusCallback::new(url) }
    }
}

/// Options shared by the three `Calls/connect` modes. `CallType=trans` is
/// always sent: Exotel supports transactional calls only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOptions {
    /// Our ExoPhone, shown to the parties.
    pub caller_id: E164,
    /// `TimeLimit`: longest call, seconds, 1..=14400.
    pub time_limit: Option<u32>,
    /// `TimeOut`: ring timeout of each leg, seconds.
    pub time_out: Option<u32>,
    pub record: Option<bool>,
    /// Needs `record: Some(true)`.
    pub recording_channels: Option<RecordingChannels>,
    /// Opaque context echoed to the terminal callback and the flow's applets;
    /// at most 128 characters.
    pub custom_field: Option<String>,
    pub status_callback: Option<StatusCallback>,
    /// Ask for the `Details` block (`?details=true`).
    pub details: bool,
}

impl CallOptions {
    pub fn new(caller_id: E164) -> Self {
        CallOptions {
            caller_id,
            time_limit: None,
            time_out: None,
            record: None,
            recording_channels: None,
            custom_field: None,
            status_callback: None,
            details: false,
        }
    }
}

/// Bridge mode: Exotel calls `from` (the agent) first, then `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTwoNumbers {
    pub from: E164,
    pub to: E164,
    /// WAV played to `from` while `to` rings (cached by URL at Exotel).
    pub wait_url: Option<Url>,
    pub options: CallOptions,
}

/// The flow a call is connected to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowTarget {
    /// An App Bazaar app id: the client builds
    /// `{flow_base_url}/{account_sid}/exoml/start_voice/{app_id}`.
    AppId(String),
    /// A complete flow URL, sent as given.
    Url(Url),
}

/// Flow mode: Exotel calls `from` (the customer) and runs the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectToFlow {
    pub from: E164,
    pub flow: FlowTarget,
    pub options: CallOptions,
}

/// Voicebot mode: Exotel calls `from` and opens a bidirectional stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectToVoicebot {
    pub from: E164,
    /// `ws://` or `wss://`, shorter than 600 characters (query included).
    pub stream_url: Url,
    /// Label of at most 32 characters.
    pub stream_name: Option<String>,
    pub options: CallOptions,
}

/// `EncodingType` of an SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsEncoding {
    Plain,
    /// Needed for Hindi and other non-Latin scripts.
    Unicode,
}

impl SmsEncoding {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsEncoding::Plain => "plain",
            SmsEncoding::Unicode => "unicode",
        }
    }
}

/// `Priority` of an SMS; `High` is for OTPs only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsPriority {
    Normal,
    High,
}

impl SmsPriority {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsPriority::Normal => "normal",
            SmsPriority::High => "high",
        }
    }
}

/// `SmsType`: the DLT category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsType {
    /// OTPs and service-implicit messages.
    Transactional,
    /// Service-explicit messages (consent needed).
    TransactionalOptIn,
    /// Numeric header, DND-scrubbed, 09:00–21:00 only.
    Promotional,
}

impl SmsType {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsType::Transactional => "transactional",
            SmsType::TransactionalOptIn => "transactional_opt_in",
            SmsType::Promotional => "promotional",
        }
    }
}

/// `Sms/send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendSms {
    /// ExoPhone or DLT sender header (`EXOTEL`, `600123`), as Exotel expects it.
    pub from: String,
    pub to: E164,
    /// Must match the DLT template exactly; at most 2000 characters.
    pub body: String,
    pub encoding: Option<SmsEncoding>,
    pub priority: Option<SmsPriority>,
    /// Delivery report URL (carries our token: never logged).
    pub status_callback: Option<Url>,
    pub dlt_entity_id: Option<String>,
    pub dlt_template_id: Option<String>,
    pub sms_type: Option<SmsType>,
    /// At most 128 characters (the limit of calls, applied to SMS too).
    pub custom_field: Option<String>,
}

impl SendSms {
    pub fn new(from: impl Into<String>, to: E164, body: impl Into<String>) -> Self {
        SendSms {
            from: from.into(),
            to,
            body: body.into(),
            encoding: None,
            priority: None,
            status_callback: None,
            dlt_entity_id: None,
            dlt_template_id: None,
            sms_type: None,
            custom_field: None,
        }
    }
}

/// One message of a dynamic bulk send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkSmsMessage {
    pub to: E164,
    pub body: String,
    /// Overrides the request's sender.
    pub from: Option<String>,
    pub sms_type: Option<SmsType>,
    pub dlt_entity_id: Option<String>,
    pub dlt_template_id: Option<String>,
}

impl BulkSmsMessage {
    pub fn new(to: E164, body: impl Into<String>) -> Self {
        BulkSmsMessage { to, body: body.into(), from: None, sms_type: None, dlt_entity_id: None, dlt_template_id: None }
    }
}

/// `Sms/bulksend`: up to 100 messages with their own bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkSms {
    /// Default sender of every message.
    pub from: String,
    pub messages: Vec<BulkSmsMessage>,
    pub encoding: Option<SmsEncoding>,
    pub status_callback: Option<Url>,
}

/// What form encoding needs from the client's configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FormContext<'a> {
    pub account_sid: &'a str,
    pub bracket_style: BracketStyle,
    pub bulk_key_prefix: BulkKeyPrefix,
    pub caller_id_format: NumberFormat,
    pub flow_base_url: &'a str,
    /// `StatusCallback` of an SMS that names none.
    pub sms_status_callback: Option<&'a Url>,
}

fn check_custom_field(field: &str, value: Option<&str>) -> Result<(), ExotelError> {
    match value {
        Some(v) if v.chars().count() > MAX_CUSTOM_FIELD_CHARS => Err(ExotelError::invalid(
            field,
            format!("must be at most {MAX_CUSTOM_FIELD_CHARS} characters, got {}", v.chars().count()),
        )),
        _ => Ok(()),
    }
}

fn check_http_url(field: &str, url: &Url) -> Result<(), ExotelError> {
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(ExotelError::invalid(field, format!("must be an http(s) URL, got scheme {other}"))),
    }
}

fn check_not_blank(field: &str, value: &str) -> Result<(), ExotelError> {
    if value.trim().is_empty() { Err(ExotelError::invalid(field, "must not be empty")) } else { Ok(()) }
}

fn check_sms_body(field: &str, body: &str) -> Result<(), ExotelError> {
    check_not_blank(field, body)?;
    let chars = body.chars().count();
    if chars > MAX_SMS_BODY_CHARS {
        return Err(ExotelError::invalid(
            field,
            format!("must be at most {MAX_SMS_BODY_CHARS} characters, got {chars}"),
        ));
    }
    Ok(())
}

fn format_number(number: &E164, format: NumberFormat) -> String {
    match format {
        NumberFormat::National => number.national(),
        NumberFormat::E164 => number.as_str().to_string(),
    }
}

impl CallOptions {
    fn validate(&self) -> Result<(), ExotelError> {
        if let Some(limit) = self.time_limit
            && !(1..=MAX_TIME_LIMIT_SECS).contains(&limit)
        {
            return Err(ExotelError::invalid(
                "TimeLimit",
                format!("must be between 1 and {MAX_TIME_LIMIT_SECS} seconds, got {limit}"),
            ));
        }
        if self.time_out == Some(0) {
            return Err(ExotelError::invalid("TimeOut", "must be at least 1 second"));
        }
        if self.recording_channels.is_some() && self.record != Some(true) {
            return Err(ExotelError::invalid("RecordingChannels", "needs Record=true"));
        }
        check_custom_field("CustomField", self.custom_field.as_deref())?;
        if let Some(callback) = &self.status_callback {
            check_http_url("StatusCallback", &callback.url)?;
            if let Some(other) = callback.events.iter().find(|e| matches!(e, CallbackEvent::Other(_))) {
                return Err(ExotelError::invalid(
                    "StatusCallbackEvents",
                    format!("unknown event {:?}; use terminal, answered or ringing", other.as_str()),
                ));
            }
        }
        Ok(())
    }

    /// The common fields, after the mode's own (`From`, `To`/`Url`/`StreamUrl`).
    /// `flow`: Exotel's "connect number to a call flow" API documents only
    /// `StatusCallback` (its four default fields, sent as multipart), not
    /// `StatusCallbackEvents` nor `StatusCallbackContentType`, and
    /// integrators report a 400 "Invalid 'StatusCallbackEvents' specified"
    /// when events come with `Url`. Flow calls therefore send the callback
    /// URL alone; the flow's Passthru applets report its progress.
    fn write(&self, form: &mut Form, ctx: &FormContext<'_>, flow: bool) {
        form.field("CallerId", &format_number(&self.caller_id, ctx.caller_id_format)).field("CallType", "trans");
        form.optional("TimeLimit", self.time_limit.map(|v| v.to_string()).as_deref());
        form.optional("TimeOut", self.time_out.map(|v| v.to_string()).as_deref());
        form.optional("Record", self.record.map(|r| if r { "true" } else { "false" }));
        form.optional("RecordingChannels", self.recording_channels.map(RecordingChannels::as_str));
        form.optional("CustomField", self.custom_field.as_deref());
        if let Some(callback) = &self.status_callback {
            form.field("StatusCallback", callback.url.as_str());
            if !flow {
                form.array("StatusCallbackEvents", callback.events.iter().map(CallbackEvent::as_str));
                form.field("StatusCallbackContentType", callback.content_type.as_str());
            }
        }
    }
}

impl ConnectTwoNumbers {
    pub(crate) fn form(&self, ctx: &FormContext<'_>) -> Result<String, ExotelError> {
        self.options.validate()?;
        if let Some(url) = &self.wait_url {
            check_http_url("WaitUrl", url)?;
        }
        let mut form = Form::new(ctx.bracket_style);
        form.field("From", self.from.as_str()).field("To", self.to.as_str());
        form.optional("WaitUrl", self.wait_url.as_ref().map(Url::as_str));
        self.options.write(&mut form, ctx, false);
        Ok(form.finish())
    }
}

impl FlowTarget {
    fn url(&self, ctx: &FormContext<'_>) -> Result<String, ExotelError> {
        match self {
            FlowTarget::AppId(id) => {
                let id = id.trim();
                if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    return Err(ExotelError::invalid("Url", "the flow's app id must be letters, digits, _ or -"));
                }
                let base = ctx.flow_base_url.trim_end_matches('/');
                Ok(format!("{base}/{}/exoml/start_voice/{id}", ctx.account_sid))
            }
            FlowTarget::Url(url) => {
                check_http_url("Url", url)?;
                Ok(url.as_str().to_string())
            }
        }
    }
}

impl ConnectToFlow {
    pub(crate) fn form(&self, ctx: &FormContext<'_>) -> Result<String, ExotelError> {
        self.options.validate()?;
        let url = self.flow.url(ctx)?;
        let mut form = Form::new(ctx.bracket_style);
        form.field("From", self.from.as_str()).field("Url", &url);
        self.options.write(&mut form, ctx, true);
        Ok(form.finish())
    }
}

impl ConnectToVoicebot {
    pub(crate) fn form(&self, ctx: &FormContext<'_>) -> Result<String, ExotelError> {
        self.options.validate()?;
        if !matches!(self.stream_url.scheme(), "ws" | "wss") {
            return Err(ExotelError::invalid("StreamUrl", "must be a ws:// or wss:// URL"));
        }
        if self.stream_url.as_str().chars().count() >= MAX_STREAM_URL_CHARS {
            return Err(ExotelError::invalid(
                "StreamUrl",
                format!("must be shorter than {MAX_STREAM_URL_CHARS} characters"),
            ));
        }
        if let Some(name) = &self.stream_name {
            check_not_blank("StreamName", name)?;
            if name.chars().count() > MAX_STREAM_NAME_CHARS {
                return Err(ExotelError::invalid(
                    "StreamName",
                    format!("must be at most {MAX_STREAM_NAME_CHARS} characters"),
                ));
            }
        }
        let mut form = Form::new(ctx.bracket_style);
        form.field("From", self.from.as_str())
            .field("StreamUrl", self.stream_url.as_str())
            .field("StreamType", "bidirectional")
            .optional("StreamName", self.stream_name.as_deref());
        self.options.write(&mut form, ctx, false);
        Ok(form.finish())
    }
}

impl SendSms {
    pub(crate) fn form(&self, ctx: &FormContext<'_>) -> Result<String, ExotelError> {
        check_not_blank("From", &self.from)?;
        check_sms_body("Body", &self.body)?;
        check_custom_field("CustomField", self.custom_field.as_deref())?;
        let status_callback = self.status_callback.as_ref().or(ctx.sms_status_callback);
        if let Some(url) = status_callback {
            check_http_url("StatusCallback", url)?;
        }
        let mut form = Form::new(ctx.bracket_style);
        form.field("From", self.from.trim()).field("To", self.to.as_str()).field("Body", &self.body);
        form.optional("EncodingType", self.encoding.map(SmsEncoding::as_str))
            .optional("Priority", self.priority.map(SmsPriority::as_str))
            .optional("StatusCallback", status_callback.map(Url::as_str))
            .optional("DltEntityId", self.dlt_entity_id.as_deref())
            .optional("DltTemplateId", self.dlt_template_id.as_deref())
            .optional("SmsType", self.sms_type.map(SmsType::as_str))
            .optional("CustomField", self.custom_field.as_deref());
        Ok(form.finish())
    }
}

impl BulkSms {
    pub(crate) fn form(&self, ctx: &FormContext<'_>) -> Result<String, ExotelError> {
        check_not_blank("From", &self.from)?;
        let prefix = ctx.bulk_key_prefix.as_str();
        if self.messages.is_empty() || self.messages.len() > MAX_BULK_MESSAGES {
            return Err(ExotelError::invalid(
                prefix,
                format!("must hold 1 to {MAX_BULK_MESSAGES} messages, got {}", self.messages.len()),
            ));
        }
        let status_callback = self.status_callback.as_ref().or(ctx.sms_status_callback);
        if let Some(url) = status_callback {
            check_http_url("StatusCallback", url)?;
        }
        let mut form = Form::new(ctx.bracket_style);
        form.field("From", self.from.trim());
        for (i, message) in self.messages.iter().enumerate() {
            check_sms_body(&format!("{prefix}[{i}][Body]"), &message.body)?;
            if let Some(from) = &message.from {
                check_not_blank(&format!("{prefix}[{i}][From]"), from)?;
            }
            form.nested(prefix, i, "To", message.to.as_str()).nested(prefix, i, "Body", &message.body);
            let optional = [
                ("From", message.from.as_deref().map(str::trim)),
                ("SmsType", message.sms_type.map(SmsType::as_str)),
                ("DltEntityId", message.dlt_entity_id.as_deref()),
                ("DltTemplateId", message.dlt_template_id.as_deref()),
            ];
            for (field, value) in optional {
                if let Some(value) = value {
                    form.nested(prefix, i, field, value);
                }
            }
        }
        form.optional("EncodingType", self.encoding.map(SmsEncoding::as_str))
            .optional("StatusCallback", status_callback.map(Url::as_str));
        Ok(form.finish())
    }
}
