//! The one error type of the push client.

use std::fmt;
use std::time::Duration;

/// The least wait after FCM's `QUOTA_EXCEEDED`: one minute.
pub const QUOTA_EXCEEDED_WAIT: Duration = Duration::from_secs(60);

/// Which backend a push went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushBackend {
    /// Firebase Cloud Messaging, HTTP v1.
    Fcm,
    /// The Mangwale app backend's own push endpoint.
    AppBackend,
}

impl PushBackend {
    pub fn name(self) -> &'static str {
        match self {
            PushBackend::Fcm => "fcm",
            PushBackend::AppBackend => "app",
        }
    }
}

impl fmt::Display for PushBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a push failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushErrorKind {
    /// 408, 429, 5xx, a timeout or a lost connection: worth trying again
    /// later (the client has already spent its own retries). `retry_after`
    /// on the error says how long the server asked us to wait.
    Transient,
    /// The recipient's registration token is no longer valid (FCM
    /// `UNREGISTERED`: the app was uninstalled or the token expired; a
    /// token error only, since a topic nobody subscribes to is accepted),
    /// or the app backend's 404 "no device registered". Other channels (a
    /// call, an SMS) are the way to reach them; retrying will not help.
    Unregistered,
    /// Our credentials or project set-up were refused: the OAuth grant
    /// (`invalid_grant`: wrong key, disabled account), a fresh access token
    /// still answered 401, `SENDER_ID_MISMATCH`, `THIRD_PARTY_AUTH_ERROR`
    /// (APNs credentials in Firebase), or the app backend's 401/403. Every
    /// push fails the same way until the configuration is fixed.
    Auth,
    /// The message itself was refused (FCM `INVALID_ARGUMENT`, another
    /// 4xx): sending it again unchanged will fail again.
    Rejected,
    /// Refused client-side before anything was sent (an empty recipient id).
    Invalid,
    /// The backend answered 2xx with a body we cannot read. The push was
    /// most likely accepted, so it is not retried.
    BadResponse,
}

/// A failed push.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{backend} {operation} failed{}: {message}", detail(*status, code.as_deref()))]
pub struct PushError {
    pub backend: PushBackend,
    /// What was being done: `token` (the OAuth grant) or `send`.
    pub operation: &'static str,
    pub kind: PushErrorKind,
    pub status: Option<u16>,
    /// FCM's `errorCode` (`UNREGISTERED`), else Google's `status`
    /// (`NOT_FOUND`), or the OAuth `error` (`invalid_grant`).
    pub code: Option<String>,
    /// What the backend said, phone numbers masked.
    pub message: String,
    /// The server's `Retry-After`, on transient errors.
    pub retry_after: Option<Duration>,
}

fn detail(status: Option<u16>, code: Option<&str>) -> String {
    match (status, code) {
        (Some(s), Some(c)) => format!(" (HTTP {s}, {c})"),
        (Some(s), None) => format!(" (HTTP {s})"),
        (None, Some(c)) => format!(" ({c})"),
        (None, None) => String::new(),
    }
}

impl PushError {
    pub(crate) fn new(
        backend: PushBackend,
        operation: &'static str,
        kind: PushErrorKind,
        status: Option<u16>,
        message: impl Into<String>,
    ) -> Self {
        let message = mangwale_core::mask_phone_numbers(&message.into()).into_owned();
        PushError { backend, operation, kind, status, code: None, message, retry_after: None }
    }

    pub(crate) fn with_code(mut self, code: Option<String>) -> Self {
        self.code = code;
        self
    }

    pub(crate) fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Worth retrying later.
    pub fn is_transient(&self) -> bool {
        self.kind == PushErrorKind::Transient
    }

    /// Retrying the same push will not help.
    pub fn is_permanent(&self) -> bool {
        !self.is_transient()
    }

    pub fn is_unregistered(&self) -> bool {
        self.kind == PushErrorKind::Unregistered
    }

    pub fn is_auth(&self) -> bool {
        self.kind == PushErrorKind::Auth
    }

    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The least wait before this push may be tried again: FCM asks for at
    /// least a minute after `QUOTA_EXCEEDED` ("retry with exponential
    /// backoff with a minimum initial delay of 1 minute", FCM's ErrorCode
    /// reference), else none.
    pub fn min_wait(&self) -> Duration {
        if self.code.as_deref() == Some("QUOTA_EXCEEDED") { QUOTA_EXCEEDED_WAIT } else { Duration::ZERO }
    }

    /// The whole description, for timelines and job errors.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// Whether an HTTP status is one where a retry may help.
pub(crate) fn transient_status(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// Describes a reqwest failure without its URL.
pub(crate) fn network_message(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection refused or unreachable".to_string()
    } else {
        // reqwest's own text names the URL; its causes say what happened.
        let mut text = if e.is_body() || e.is_decode() { "reading the answer" } else { "request failed" }.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_itself_and_masks_numbers() {
        let e = PushError::new(PushBackend::Fcm, "send", PushErrorKind::Unregistered, Some(404), "no +919876543210")
            .with_code(Some("UNREGISTERED".into()));
        assert_eq!(e.message(), "fcm send failed (HTTP 404, UNREGISTERED): no +9198xxxxx210");
        assert!(e.is_permanent() && e.is_unregistered() && !e.is_transient());
    }
}
