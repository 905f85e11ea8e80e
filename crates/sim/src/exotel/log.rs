//! What the simulator received and what it sent, for tests to read.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::faults::{Endpoint, Fault};

/// A request the simulator received on its Exotel API. The API token is
/// never recorded, only the Basic-auth user (the API key).
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedRequest {
    /// Order of arrival, from 1.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Form fields of a urlencoded or multipart body.
    pub form: Vec<(String, String)>,
    pub auth_user: Option<String>,
    pub endpoint: Option<Endpoint>,
    pub fault: Option<Fault>,
    /// Our answer; `None` while in flight or when the connection was dropped.
    pub response: Option<LoggedResponse>,
    pub dropped: bool,
}

impl ReceivedRequest {
    /// The first value of a form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LoggedResponse {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// Which kind of callback was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallbackKind {
    /// A voice `StatusCallback`; `event` is `answered` or `terminal`, or
    /// `None` for the 4-field default terminal callback.
    CallStatus { event: Option<String> },
    /// An SMS delivery report.
    SmsStatus,
    /// An SMS a person sent to an ExoPhone, forwarded to the incoming-SMS
    /// URL (a GET: `body` holds its query).
    IncomingSms,
}

/// A callback the simulator sent, with the receiver's answer.
#[derive(Debug, Clone, Serialize)]
pub struct SentCallback {
    pub at: DateTime<Utc>,
    pub kind: CallbackKind,
    /// The CallSid or SmsSid.
    pub sid: String,
    pub url: String,
    pub content_type: String,
    /// The body exactly as sent.
    pub body: String,
    /// The body's fields flattened PHP-style (`Legs[0][Status]`), whatever the encoding.
    pub fields: Vec<(String, String)>,
    /// The JSON document, for `application/json` callbacks.
    pub json: Option<serde_json::Value>,
    /// The receiver's HTTP status, or `None` with `error` set.
    pub response_status: Option<u16>,
    pub error: Option<String>,
}

impl SentCallback {
    /// The value of a flattened field (`Status`, `Legs[1][Status]`).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|(k, _)| k == name)
    }

    /// `EventType` of a voice callback.
    pub fn event(&self) -> Option<&str> {
        match &self.kind {
            CallbackKind::CallStatus { event } => event.as_deref(),
            CallbackKind::SmsStatus | CallbackKind::IncomingSms => None,
        }
    }
}
