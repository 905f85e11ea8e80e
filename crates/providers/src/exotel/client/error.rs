//! The one error type of the Exotel client, and the parsing of Exotel's
//! `RestException` bodies.

use std::time::Duration;

use mangwale_core::mask_phone_numbers;
use serde_json::Value;

/// Why a transient failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransientReason {
    /// Exotel (or a proxy in front of it) answered 408, 429 or 5xx.
    Status,
    /// No connection could be made, or an idempotent request timed out or
    /// lost its connection.
    Network,
    /// The client-side rate limiter had no permit within the allowed wait;
    /// the request was not sent.
    RateLimited,
}

/// A failed Exotel request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExotelError {
    /// Not done, and worth trying again later (the client has already spent
    /// its own retries).
    #[error("exotel transient failure{}: {message}", status_text(*status, code.as_deref()))]
    Transient {
        status: Option<u16>,
        /// Exotel's `RestException.Code`, as text (numeric in real samples).
        code: Option<String>,
        message: String,
        /// From the `Retry-After` header, or the wait the rate limiter asked for.
        retry_after: Option<Duration>,
        reason: TransientReason,
    },
    /// Refused; repeating the same request will not help.
    #[error("exotel refused the request{}: {message}", status_text(Some(*status), code.as_deref()))]
    Permanent { status: u16, code: Option<String>, message: String },
    /// A non-idempotent request (a call, an SMS) may or may not have been
    /// executed: it timed out or lost its connection after it was sent, or
    /// its answer could not be read. The client never retries these; mark
    /// the attempt unknown and reconcile from the status callback or call
    /// details.
    #[error("exotel outcome unknown{}: {message}", status_text(*status, None))]
    Ambiguous { status: Option<u16>, message: String },
    /// Rejected client-side before anything was sent.
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
}

fn status_text(status: Option<u16>, code: Option<&str>) -> String {
    match (status, code) {
        (Some(s), Some(c)) => format!(" (HTTP {s}, code {c})"),
        (Some(s), None) => format!(" (HTTP {s})"),
        (None, Some(c)) => format!(" (code {c})"),
        (None, None) => String::new(),
    }
}

impl ExotelError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ExotelError::Invalid { field: field.into(), message: message.into() }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, ExotelError::Transient { .. })
    }

    pub fn is_ambiguous(&self) -> bool {
        matches!(self, ExotelError::Ambiguous { .. })
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, ExotelError::Permanent { .. })
    }

    pub fn is_invalid(&self) -> bool {
        matches!(self, ExotelError::Invalid { .. })
    }

    /// Rate-limited by Exotel (HTTP 429) or by the client-side limiter.
    pub fn is_rate_limited(&self) -> bool {
        matches!(
            self,
            ExotelError::Transient { reason: TransientReason::RateLimited, .. }
                | ExotelError::Transient { status: Some(429), .. }
        )
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ExotelError::Transient { status, .. } | ExotelError::Ambiguous { status, .. } => *status,
            ExotelError::Permanent { status, .. } => Some(*status),
            ExotelError::Invalid { .. } => None,
        }
    }

    /// Exotel's error code (`RestException.Code`).
    pub fn code(&self) -> Option<&str> {
        match self {
            ExotelError::Transient { code, .. } | ExotelError::Permanent { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ExotelError::Transient { message, .. }
            | ExotelError::Permanent { message, .. }
            | ExotelError::Ambiguous { message, .. }
            | ExotelError::Invalid { message, .. } => message,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ExotelError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The outcome label used in request records and logs.
    pub fn outcome(&self) -> super::recorder::Outcome {
        use super::recorder::Outcome;
        match self {
            ExotelError::Transient { .. } => Outcome::Transient,
            ExotelError::Permanent { .. } => Outcome::Permanent,
            ExotelError::Ambiguous { .. } => Outcome::Ambiguous,
            ExotelError::Invalid { .. } => Outcome::Invalid,
        }
    }
}

/// What an error body told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    /// Whether the body was Exotel's own `RestException` (JSON or XML), as
    /// opposed to a proxy's HTML page or nothing.
    pub rest_exception: bool,
    pub code: Option<String>,
    pub message: String,
}

/// Longest piece of a non-Exotel body kept as the message.
const MAX_MESSAGE: usize = 200;

/// Parses `{"RestException": {"Status", "Message", "Code"}}`, its XML form,
/// or anything else (HTML from a proxy, an empty body). Phone numbers in the
/// message are masked.
pub(crate) fn parse_error_body(status: u16, body: &[u8]) -> ErrorBody {
    if let Ok(Value::Object(root)) = serde_json::from_slice::<Value>(body)
        && let Some(Value::Object(exception)) = root.get("RestException")
    {
        let code = exception.get("Code").and_then(scalar_text);
        let message = exception.get("Message").and_then(scalar_text).unwrap_or_default();
        return ErrorBody { rest_exception: true, code, message: clean_message(&message, status) };
    }
    let text = String::from_utf8_lossy(body);
    if text.contains("<RestException>") {
        return ErrorBody {
            rest_exception: true,
            code: xml_tag(&text, "Code"),
            message: clean_message(&xml_tag(&text, "Message").unwrap_or_default(), status),
        };
    }
    let snippet: String = text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(MAX_MESSAGE).collect();
    ErrorBody { rest_exception: false, code: None, message: clean_message(&snippet, status) }
}

fn clean_message(message: &str, status: u16) -> String {
    let message = message.trim().trim_end_matches(';').trim();
    if message.is_empty() {
        let reason = reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason());
        return reason.unwrap_or("no message").to_string();
    }
    mask_phone_numbers(message).into_owned()
}

/// A JSON string or number as text; empty strings and other types are `None`.
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn xml_tag(text: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&close)? + start;
    let value = text[start..end].trim();
    (!value.is_empty()).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_401() {
        let body = br#"{"RestException": {"Status": 401, "Message": "Unauthorized; ", "Code": 34010}}"#;
        let parsed = parse_error_body(401, body);
        assert_eq!(
            parsed,
            ErrorBody { rest_exception: true, code: Some("34010".into()), message: "Unauthorized".into() }
        );
    }

    #[test]
    fn tolerates_xml_html_and_empty_bodies() {
        let xml = b"<TwilioResponse><RestException><Status>400</Status><Message>Bad From</Message></RestException></TwilioResponse>";
        let parsed = parse_error_body(400, xml);
        assert!(parsed.rest_exception);
        assert_eq!((parsed.code, parsed.message.as_str()), (None, "Bad From"));

        let html = parse_error_body(502, b"<html>\n<body><h1>502   Bad Gateway</h1></body></html>");
        assert!(!html.rest_exception);
        assert_eq!(html.message, "<html> <body><h1>502 Bad Gateway</h1></body></html>");

        assert_eq!(parse_error_body(503, b"").message, "Service Unavailable");
        let string_code = parse_error_body(429, br#"{"RestException":{"Code":"RATE_LIMIT_EXCEEDED"}}"#);
        assert_eq!(string_code.code.as_deref(), Some("RATE_LIMIT_EXCEEDED"));
        assert_eq!(string_code.message, "Too Many Requests");
    }

    #[test]
    fn masks_numbers_in_messages() {
        let body = br#"{"RestException":{"Status":400,"Message":"Invalid To 09876543210"}}"#;
        assert_eq!(parse_error_body(400, body).message, "Invalid To 098xxxxx210");
    }
}
