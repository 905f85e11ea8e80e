//! What the simulator received, what it sent, and the messages it holds,
//! for tests to read.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use mangwale_core::E164;
use serde::Serialize;
use serde_json::Value;

use super::script::{Fault, RecipientScript};

/// A request the simulator received. The access token is never recorded,
/// only whether it was the right one.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedRequest {
    /// Order of arrival, from 1.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The bearer token (or `access_token` parameter) was the configured one.
    pub authorized: bool,
    pub appsecret_proof: Option<String>,
    /// The body as JSON; `None` when empty or not JSON.
    pub body: Option<Value>,
    pub raw_body: String,
    pub fault: Option<Fault>,
    /// Our answer; `None` while in flight or when the connection was dropped.
    pub response: Option<LoggedResponse>,
    /// The `wamid` of the message this request created, if it created one.
    pub message_id: Option<String>,
    pub dropped: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoggedResponse {
    pub status: u16,
    pub body: String,
}

impl LoggedResponse {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// `error.code` of a Graph error answer.
    pub fn error_code(&self) -> Option<i64> {
        self.json()?.pointer("/error/code")?.as_i64()
    }
}

/// What a webhook was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WebhookKind {
    /// A status of one of our messages: `sent`, `delivered`, `read`, `failed`.
    Status { status: String },
    /// A tap on a template's quick-reply button.
    ButtonReply,
    /// A text message from the person.
    Text,
}

/// A webhook the simulator sent (or would have sent, when no URL is set),
/// with the receiver's answer.
#[derive(Debug, Clone, Serialize)]
pub struct SentWebhook {
    /// Order of sending, from 1.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub kind: WebhookKind,
    /// The `wamid` it is about: our message for a status, the person's
    /// message for a reply.
    pub message_id: String,
    /// A reply's `context.id`: the template it answers.
    pub context_message_id: Option<String>,
    pub url: Option<String>,
    /// The body exactly as sent (and signed).
    pub body: String,
    pub json: Value,
    /// The `X-Hub-Signature-256` header sent.
    pub signature: String,
    /// The receiver's HTTP status; `None` with `error` set.
    pub response_status: Option<u16>,
    pub error: Option<String>,
}

/// A message the simulator accepted.
#[derive(Debug, Clone, Serialize)]
pub struct SimMessage {
    /// `wamid.…`
    pub id: String,
    pub to: E164,
    pub template: String,
    pub language: String,
    pub body_params: Vec<String>,
    /// Quick-reply payloads by button index.
    pub payloads: BTreeMap<usize, String>,
    /// `biz_opaque_callback_data` of the send, echoed in its statuses.
    pub callback_data: Option<String>,
    pub accepted_at: DateTime<Utc>,
    /// What the recipient does with it.
    pub script: RecipientScript,
    /// Statuses reported so far, in order.
    pub statuses: Vec<String>,
    /// The `wamid`s of the person's replies to it.
    pub replies: Vec<String>,
    /// The conversation its statuses name.
    pub(crate) conversation_id: String,
    pub(crate) category: String,
    pub(crate) button_labels: Vec<String>,
    pub(crate) wa_id: String,
}
