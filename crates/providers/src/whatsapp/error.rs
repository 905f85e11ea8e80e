//! The one error type of the WhatsApp client, the Graph API error envelope,
//! and which Graph error codes are worth retrying.

use std::fmt;
use std::time::Duration;

use mangwale_core::mask_phone_numbers;
use serde_json::Value;

/// Graph API error codes the service acts on. Meta asks integrators to
/// branch on `code` (not on the HTTP status, the subcode or the title).
pub mod codes {
    /// "API Unknown": invalid request or a possible server error.
    pub const API_UNKNOWN: i64 = 1;
    /// "API Service": downtime or overload.
    pub const API_SERVICE: i64 = 2;
    /// "API Too Many Calls": the app's call rate limit.
    pub const API_TOO_MANY_CALLS: i64 = 4;
    /// "Invalid parameter".
    pub const INVALID_PARAMETER: i64 = 100;
    /// "Access token has expired" (or is invalid).
    pub const ACCESS_TOKEN: i64 = 190;
    /// The WhatsApp Business Account's rate limit.
    pub const ACCOUNT_RATE_LIMIT: i64 = 80_007;
    /// Cloud API throughput of the business number reached.
    pub const RATE_LIMIT_HIT: i64 = 130_429;
    /// "Something went wrong".
    pub const SOMETHING_WENT_WRONG: i64 = 131_000;
    /// "Service unavailable".
    pub const SERVICE_UNAVAILABLE: i64 = 131_016;
    /// "Message undeliverable": not on WhatsApp, or cannot receive this.
    pub const UNDELIVERABLE: i64 = 131_026;
    /// "Re-engagement message": more than 24 hours since the person last
    /// wrote to us (free-form messages only; templates are exempt).
    pub const REENGAGEMENT: i64 = 131_047;
    /// "Spam rate limit hit": too many of this number's messages were
    /// blocked or flagged. Meta's remedy is to fix the number's quality
    /// rating, not to retry: a retry only adds to the count. Not retried.
    pub const SPAM_RATE_LIMIT: i64 = 131_048;
    /// The business–consumer pair rate limit: Meta allows about one message
    /// every six seconds to one person and says to wait and retry. Retried
    /// no sooner than [`super::PAIR_RATE_LIMIT_WAIT`].
    pub const PAIR_RATE_LIMIT: i64 = 131_056;
    /// "Account in maintenance mode" (a throughput upgrade is under way).
    pub const MAINTENANCE_MODE: i64 = 131_057;
    /// "Template param count mismatch".
    pub const TEMPLATE_PARAM_COUNT: i64 = 132_000;
    /// "Template does not exist" (in that language).
    pub const TEMPLATE_DOES_NOT_EXIST: i64 = 132_001;
    /// "Server temporarily unavailable".
    pub const SERVER_UNAVAILABLE: i64 = 133_004;
}

/// The least wait before resending to a person after 131056: Meta's pair
/// rate limit is one message per six seconds to one person (Cloud API
/// error codes: "(Business Account, Consumer Account) pair rate limit hit").
pub const PAIR_RATE_LIMIT_WAIT: Duration = Duration::from_secs(6);

/// Codes that mean "not sent, because of a rate limit": wait and retry.
/// 131048 (spam rate limit) is a rate limit too, but not retried: see
/// [`codes::SPAM_RATE_LIMIT`].
const RATE_LIMIT_CODES: [i64; 4] =
    [codes::API_TOO_MANY_CALLS, codes::ACCOUNT_RATE_LIMIT, codes::RATE_LIMIT_HIT, codes::PAIR_RATE_LIMIT];

/// Codes that mean "not sent, Meta had a problem": retry.
const SERVER_CODES: [i64; 6] = [
    codes::API_UNKNOWN,
    codes::API_SERVICE,
    codes::SOMETHING_WENT_WRONG,
    codes::SERVICE_UNAVAILABLE,
    codes::MAINTENANCE_MODE,
    codes::SERVER_UNAVAILABLE,
];

/// How a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhatsAppErrorKind {
    /// Not sent, and worth trying again later: HTTP 408, 429 or 5xx, a
    /// rate-limit or server-side Graph code, or no connection could be made.
    /// The client has already spent its own retries.
    Transient,
    /// Refused: the same request will not succeed (bad token, unknown
    /// template, undeliverable number, invalid parameter, …).
    Permanent,
    /// The message may or may not have been sent: the request timed out or
    /// lost its connection after it was written, a gateway gave up waiting
    /// for Meta, or Meta accepted it with an answer we cannot read. The Cloud
    /// API has no idempotency key, so the client never retries these; treat
    /// the attempt as unknown and reconcile from the status webhooks.
    Ambiguous,
    /// Rejected client-side before anything was sent; `field` names the
    /// configuration or message field at fault.
    Invalid { field: String },
}

impl WhatsAppErrorKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            WhatsAppErrorKind::Transient => "transient",
            WhatsAppErrorKind::Permanent => "permanent",
            WhatsAppErrorKind::Ambiguous => "ambiguous",
            WhatsAppErrorKind::Invalid { .. } => "invalid",
        }
    }
}

/// A failed WhatsApp Cloud API request. Messages and details come from
/// Meta with phone numbers masked; the access token never appears.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct WhatsAppError {
    pub kind: WhatsAppErrorKind,
    /// The HTTP status, when an answer arrived.
    pub status: Option<u16>,
    /// The Graph error `code`.
    pub code: Option<i64>,
    /// The Graph `message` (`(#132001) Template name does not exist in the
    /// translation`), or our own description.
    pub message: String,
    /// From `Retry-After`, when Meta sent one.
    pub retry_after: Option<Duration>,
    /// The rest of a Graph error envelope (boxed: errors travel in every
    /// `Result`, and these are rarely read).
    pub graph: Option<Box<GraphDetails>>,
}

/// The less-used parts of a Graph error envelope.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphDetails {
    /// `error_subcode` (not sent from v16.0 on; kept if present).
    pub subcode: Option<i64>,
    /// `error_data.details`: Meta's explanation, often naming the parameter.
    pub details: Option<String>,
    /// `fbtrace_id`, for Meta support.
    pub fbtrace_id: Option<String>,
}

impl fmt::Display for WhatsAppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.kind {
            WhatsAppErrorKind::Transient => "whatsapp transient failure",
            WhatsAppErrorKind::Permanent => "whatsapp refused the request",
            WhatsAppErrorKind::Ambiguous => "whatsapp outcome unknown",
            WhatsAppErrorKind::Invalid { field } => return write!(f, "invalid whatsapp {field}: {}", self.message),
        };
        f.write_str(what)?;
        match (self.status, self.code) {
            (Some(s), Some(c)) => write!(f, " (HTTP {s}, code {c})")?,
            (Some(s), None) => write!(f, " (HTTP {s})")?,
            (None, Some(c)) => write!(f, " (code {c})")?,
            (None, None) => {}
        }
        write!(f, ": {}", self.message)?;
        if let Some(details) = self.details().filter(|d| !self.message.contains(d)) {
            write!(f, " ({details})")?;
        }
        Ok(())
    }
}

impl WhatsAppError {
    pub(crate) fn new(kind: WhatsAppErrorKind, status: Option<u16>, message: impl Into<String>) -> Self {
        WhatsAppError { kind, status, code: None, message: message.into(), retry_after: None, graph: None }
    }

    /// `error_data.details` of a Graph error: Meta's explanation, often
    /// naming the parameter at fault.
    pub fn details(&self) -> Option<&str> {
        self.graph.as_ref()?.details.as_deref()
    }

    /// `fbtrace_id` of a Graph error, for Meta support.
    pub fn fbtrace_id(&self) -> Option<&str> {
        self.graph.as_ref()?.fbtrace_id.as_deref()
    }

    /// `error_subcode` of a Graph error.
    pub fn subcode(&self) -> Option<i64> {
        self.graph.as_ref()?.subcode
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        WhatsAppError::new(WhatsAppErrorKind::Invalid { field: field.into() }, None, message)
    }

    /// Worth retrying later (the client has spent its own retries).
    pub fn is_transient(&self) -> bool {
        self.kind == WhatsAppErrorKind::Transient
    }

    pub fn is_permanent(&self) -> bool {
        self.kind == WhatsAppErrorKind::Permanent
    }

    /// The message may have been sent: do not send it again blindly.
    pub fn is_ambiguous(&self) -> bool {
        self.kind == WhatsAppErrorKind::Ambiguous
    }

    pub fn is_invalid(&self) -> bool {
        matches!(self.kind, WhatsAppErrorKind::Invalid { .. })
    }

    /// Throttled by Meta (HTTP 429 or a rate-limit code): a later retry will
    /// likely succeed, but not a prompt one.
    pub fn is_rate_limited(&self) -> bool {
        self.status == Some(429)
            || self.code.is_some_and(|c| RATE_LIMIT_CODES.contains(&c) || c == codes::SPAM_RATE_LIMIT)
    }

    /// The least wait before this send may be tried again: 6 s after the
    /// pair rate limit (131056), else none.
    pub fn min_wait(&self) -> Duration {
        if self.code == Some(codes::PAIR_RATE_LIMIT) { PAIR_RATE_LIMIT_WAIT } else { Duration::ZERO }
    }

    /// The number cannot receive WhatsApp messages (131026): fall back to
    /// another channel for this person.
    pub fn is_undeliverable(&self) -> bool {
        self.code == Some(codes::UNDELIVERABLE)
    }

    /// The access token is expired or wrong (190, or a 401): every send will
    /// fail until the configuration is fixed.
    pub fn is_auth(&self) -> bool {
        self.code == Some(codes::ACCESS_TOKEN) || self.status == Some(401)
    }

    /// The field a client-side rejection named.
    pub fn field(&self) -> Option<&str> {
        match &self.kind {
            WhatsAppErrorKind::Invalid { field } => Some(field),
            _ => None,
        }
    }

    /// The whole description, for timelines and job errors.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// The Graph API error envelope:
/// `{"error": {"message", "type", "code", "error_subcode", "error_data": {"details"}, "fbtrace_id"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct GraphError {
    pub code: Option<i64>,
    pub subcode: Option<i64>,
    pub message: Option<String>,
    pub details: Option<String>,
    pub fbtrace_id: Option<String>,
}

/// Longest piece of a non-Graph body (a proxy's HTML page) kept as the message.
const MAX_SNIPPET: usize = 200;

/// Parses a Graph error envelope; `None` when the body is not one (a proxy's
/// page, an empty body). Texts are masked.
pub(crate) fn parse_graph_error(body: &[u8]) -> Option<GraphError> {
    let root: Value = serde_json::from_slice(body).ok()?;
    let error = root.get("error")?.as_object()?;
    let int = |v: &Value| v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
    let text = |v: &Value| v.as_str().map(|s| mask_phone_numbers(s.trim()).into_owned()).filter(|s| !s.is_empty());
    let graph = GraphError {
        code: error.get("code").and_then(int),
        subcode: error.get("error_subcode").and_then(int),
        message: error.get("message").and_then(text),
        details: error.get("error_data").and_then(|d| d.get("details")).and_then(text),
        fbtrace_id: error.get("fbtrace_id").and_then(|v| v.as_str()).map(str::to_string),
    };
    (graph.code.is_some() || graph.message.is_some()).then_some(graph)
}

/// The error of a non-2xx answer.
///
/// The Graph `code` decides where there is one: rate-limit and server-side
/// codes are transient, and any code carried by a 5xx is Meta saying it did
/// not send. Other codes (131026 undeliverable, 132001 unknown template,
/// 131047 re-engagement, 100 invalid parameter, 190 token, …) are
/// permanent. Without a Graph body, 408, 429, 500 and 503 are transient;
/// a 502 or 504 is a gateway that lost its wait for Meta, which may well
/// have sent the message, so it is ambiguous; anything else is permanent.
pub(crate) fn status_error(status: u16, body: &[u8], retry_after: Option<Duration>) -> WhatsAppError {
    let graph = parse_graph_error(body);
    let code = graph.as_ref().and_then(|g| g.code);
    let kind = match code {
        // Meta's remedy for the spam rate limit is the number's quality
        // rating; retries only add to the count, whatever the status.
        Some(codes::SPAM_RATE_LIMIT) => WhatsAppErrorKind::Permanent,
        _ if status == 429 => WhatsAppErrorKind::Transient,
        Some(code) if RATE_LIMIT_CODES.contains(&code) || SERVER_CODES.contains(&code) => WhatsAppErrorKind::Transient,
        Some(_) if status >= 500 => WhatsAppErrorKind::Transient,
        Some(_) => WhatsAppErrorKind::Permanent,
        None if graph.is_none() && matches!(status, 502 | 504) => WhatsAppErrorKind::Ambiguous,
        None if status == 408 || status >= 500 => WhatsAppErrorKind::Transient,
        None => WhatsAppErrorKind::Permanent,
    };
    match graph {
        Some(graph) => WhatsAppError {
            kind,
            status: Some(status),
            code: graph.code,
            message: graph.message.unwrap_or_else(|| reason(status)),
            retry_after,
            graph: Some(Box::new(GraphDetails {
                subcode: graph.subcode,
                details: graph.details,
                fbtrace_id: graph.fbtrace_id,
            })),
        },
        None => {
            let text = String::from_utf8_lossy(body);
            let snippet: String =
                text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(MAX_SNIPPET).collect();
            let message = if snippet.is_empty() { reason(status) } else { mask_phone_numbers(&snippet).into_owned() };
            WhatsAppError { retry_after, ..WhatsAppError::new(kind, Some(status), message) }
        }
    }
}

fn reason(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!("HTTP {status} {r}"))
        .unwrap_or_else(|| format!("HTTP {status}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(code: i64, message: &str) -> Vec<u8> {
        serde_json::json!({"error": {
            "message": message, "type": "OAuthException", "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": "details of it"},
            "fbtrace_id": "AbCdEf123"
        }})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn classifies_by_code_first() {
        let cases = [
            (429, codes::RATE_LIMIT_HIT, WhatsAppErrorKind::Transient),
            (400, codes::RATE_LIMIT_HIT, WhatsAppErrorKind::Transient),
            (400, codes::PAIR_RATE_LIMIT, WhatsAppErrorKind::Transient),
            (429, codes::PAIR_RATE_LIMIT, WhatsAppErrorKind::Transient),
            (400, codes::SPAM_RATE_LIMIT, WhatsAppErrorKind::Permanent),
            (429, codes::SPAM_RATE_LIMIT, WhatsAppErrorKind::Permanent),
            (500, codes::SOMETHING_WENT_WRONG, WhatsAppErrorKind::Transient),
            (503, codes::API_SERVICE, WhatsAppErrorKind::Transient),
            (400, codes::API_UNKNOWN, WhatsAppErrorKind::Transient),
            (500, 3, WhatsAppErrorKind::Transient),
            (400, codes::UNDELIVERABLE, WhatsAppErrorKind::Permanent),
            (404, codes::TEMPLATE_DOES_NOT_EXIST, WhatsAppErrorKind::Permanent),
            (400, codes::REENGAGEMENT, WhatsAppErrorKind::Permanent),
            (400, codes::INVALID_PARAMETER, WhatsAppErrorKind::Permanent),
            (401, codes::ACCESS_TOKEN, WhatsAppErrorKind::Permanent),
        ];
        for (status, code, kind) in cases {
            let error = status_error(status, &graph(code, "(#1) x"), None);
            assert_eq!(error.kind, kind, "HTTP {status} code {code}");
            assert_eq!((error.code, error.status), (Some(code), Some(status)));
        }
        assert!(status_error(429, &graph(codes::RATE_LIMIT_HIT, "x"), None).is_rate_limited());
        assert!(status_error(400, &graph(codes::SPAM_RATE_LIMIT, "x"), None).is_rate_limited());
        assert_eq!(status_error(400, &graph(codes::PAIR_RATE_LIMIT, "x"), None).min_wait(), Duration::from_secs(6));
        assert_eq!(status_error(429, &graph(codes::RATE_LIMIT_HIT, "x"), None).min_wait(), Duration::ZERO);
        assert!(status_error(400, &graph(codes::UNDELIVERABLE, "x"), None).is_undeliverable());
        assert!(status_error(401, &graph(codes::ACCESS_TOKEN, "x"), None).is_auth());
    }

    #[test]
    fn bodies_that_are_not_graph_errors() {
        assert_eq!(status_error(503, b"", None).kind, WhatsAppErrorKind::Transient);
        assert_eq!(status_error(500, b"<html>oops</html>", None).kind, WhatsAppErrorKind::Transient);
        assert_eq!(status_error(429, b"slow down", None).kind, WhatsAppErrorKind::Transient);
        assert_eq!(status_error(504, b"<html>Gateway Timeout</html>", None).kind, WhatsAppErrorKind::Ambiguous);
        assert_eq!(status_error(502, b"", None).kind, WhatsAppErrorKind::Ambiguous);
        assert_eq!(status_error(404, b"not here", None).kind, WhatsAppErrorKind::Permanent);
        assert_eq!(status_error(503, b"", None).message, "HTTP 503 Service Unavailable");
    }

    #[test]
    fn keeps_code_message_and_details_masked() {
        let body = br#"{"error": {"message": "(#131030) Recipient phone number not in allowed list",
            "type": "OAuthException", "code": 131030, "error_subcode": 2655007,
            "error_data": {"messaging_product": "whatsapp", "details": "Recipient phone number not in allowed list: 919876543210"},
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}}"#;
        let error = status_error(400, body, None);
        assert_eq!(error.code, Some(131_030));
        assert_eq!(error.subcode(), Some(2_655_007));
        assert_eq!(error.message, "(#131030) Recipient phone number not in allowed list");
        assert_eq!(error.details(), Some("Recipient phone number not in allowed list: 9198xxxxx210"));
        assert_eq!(error.fbtrace_id(), Some("Az8or2yhqkZfEZ-_4Qn_Bam"));
        let text = error.message();
        assert!(text.contains("HTTP 400, code 131030") && !text.contains("9876543210"), "{text}");
    }
}
