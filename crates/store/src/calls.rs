//! Our outbound call attempts and the log of requests to Exotel.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use mangwale_core::E164;

use crate::Result;
use crate::jobs::NewJob;

/// Where an attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallState {
    /// About to be sent to Exotel.
    Requested,
    /// Exotel accepted it (we have a CallSid).
    Placed,
    /// The request's fate is unknown (timed out after sending); the status
    /// callback or call details will tell.
    Unknown,
    /// Exotel refused it; nothing rang.
    NotPlaced,
    InProgress,
    Completed,
    Busy,
    Failed,
    NoAnswer,
    Canceled,
}

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Requested => "requested",
            CallState::Placed => "placed",
            CallState::Unknown => "unknown",
            CallState::NotPlaced => "not-placed",
            CallState::InProgress => "in-progress",
            CallState::Completed => "completed",
            CallState::Busy => "busy",
            CallState::Failed => "failed",
            CallState::NoAnswer => "no-answer",
            CallState::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<CallState> {
        Some(match s {
            "requested" => CallState::Requested,
            "placed" => CallState::Placed,
            "unknown" => CallState::Unknown,
            "not-placed" => CallState::NotPlaced,
            "in-progress" => CallState::InProgress,
            "completed" => CallState::Completed,
            "busy" => CallState::Busy,
            "failed" => CallState::Failed,
            "no-answer" => CallState::NoAnswer,
            "canceled" => CallState::Canceled,
            _ => return None,
        })
    }

    /// Whether the call is over (nothing will change it any more).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CallState::NotPlaced
                | CallState::Completed
                | CallState::Busy
                | CallState::Failed
                | CallState::NoAnswer
                | CallState::Canceled
        )
    }
}

/// A call attempt to create.
#[derive(Debug, Clone)]
pub struct NewCall {
    /// Our id; sent to Exotel inside CustomField.
    pub id: String,
    /// `vendor_ivr`, `ring`, `bridge`, `callback`, ...
    pub purpose: String,
    pub order_id: Option<String>,
    pub escalation_id: Option<String>,
    pub party: Option<String>,
    pub to_masked: String,
    /// The number dialled first, kept only as its [`phone_digest`], so that
    /// [`CallStore::call_in_progress_with`] can tell whom we are calling.
    pub to: Option<E164>,
    /// The second number of a bridge, likewise.
    pub bridge_to: Option<E164>,
}

/// A phone number's SHA-256 digest (hex), under which call attempts keep
/// the numbers they dial: equal numbers match, and the table shows none.
pub fn phone_digest(phone: &E164) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(phone.as_str().as_bytes()))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallAttempt {
    pub id: String,
    pub call_sid: Option<String>,
    pub purpose: String,
    pub order_id: Option<String>,
    pub escalation_id: Option<String>,
    pub party: Option<String>,
    pub to_masked: String,
    pub state: CallState,
    pub detail: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One request to Exotel's API and its outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExotelRequestLog {
    pub endpoint: String,
    pub method: String,
    pub attempt: u32,
    pub http_status: Option<u16>,
    /// `ok`, `transient`, `permanent`, `ambiguous`, `invalid`.
    pub outcome: String,
    pub code: Option<i64>,
    pub message: Option<String>,
    pub sid: Option<String>,
    pub custom_field: Option<String>,
    pub duration_ms: u64,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait CallStore: Send + Sync {
    /// Creates an attempt in state `requested` and, in the same transaction,
    /// the job that will reconcile it, so that no attempt exists that nothing
    /// would ever resolve (a crash between two writes left one).
    async fn create_call(&self, call: NewCall, reconcile: Option<NewJob>, now: DateTime<Utc>) -> Result<()>;

    /// Moves an attempt to `state`, filling in the CallSid if given. A final
    /// state is never left (a late `answered` callback after `completed`
    /// changes nothing). Returns the attempt as it is afterwards.
    async fn update_call(
        &self,
        id: &str,
        state: CallState,
        call_sid: Option<&str>,
        detail: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<CallAttempt>>;

    async fn call_by_id(&self, id: &str) -> Result<Option<CallAttempt>>;

    async fn call_by_sid(&self, call_sid: &str) -> Result<Option<CallAttempt>>;

    /// The attempt a status callback is about: the one its custom field
    /// names (`attempt_id`), else the one with its CallSid. One lookup: a
    /// callback for a call we did not place costs one read, not two.
    async fn call_for_callback(&self, attempt_id: Option<&str>, call_sid: &str) -> Result<Option<CallAttempt>>;

    /// Attempts still `requested` or `unknown` whose last change is older
    /// than `before`: candidates for reconciliation.
    /// Whether an attempt created since `since` that dials `phone` (first or
    /// as a bridge's second leg) is still requested, ringing or talking.
    async fn call_in_progress_with(&self, phone: &E164, since: DateTime<Utc>) -> Result<bool>;

    async fn unresolved_calls(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<CallAttempt>>;

    /// Attempts created since `since` that are not over yet (requested,
    /// placed, unknown or in progress), newest first, at most `limit`: the
    /// calls of the live board.
    async fn active_calls(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<CallAttempt>>;

    async fn log_exotel_request(&self, entry: &ExotelRequestLog) -> Result<()>;

    async fn exotel_requests_since(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<ExotelRequestLog>>;
}
