//! The one error type of the Jupiter client.

use std::fmt;
use std::time::Duration;

/// Which service a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Jupiter,
    Php,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Jupiter => "jupiter",
            Backend::Php => "php",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JupiterErrorKind {
    /// 408, 429, 5xx, a timeout or no connection: worth trying again later
    /// (the client has already spent its own retries on reads).
    Transient,
    /// The backend has failed repeatedly and the circuit breaker is open:
    /// the request was not sent. Transient; try again after `retry_in`.
    CircuitOpen { retry_in: Duration },
    /// Refused (400, 401, 403, 404 on a write, 409, 422): the same request
    /// will not succeed. `field` is the field the backend named, if any.
    Permanent { field: Option<String> },
    /// The backend answered 2xx with a body we cannot read.
    BadResponse,
}

/// A failed request to Jupiter or the PHP backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{backend} {operation} failed{}: {message}", status_text(*status))]
pub struct JupiterError {
    pub backend: Backend,
    /// What was asked (`order`, `order_status`, …).
    pub operation: &'static str,
    pub kind: JupiterErrorKind,
    pub status: Option<u16>,
    pub message: String,
}

fn status_text(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

impl JupiterError {
    pub(crate) fn new(
        backend: Backend,
        operation: &'static str,
        kind: JupiterErrorKind,
        status: Option<u16>,
        message: impl Into<String>,
    ) -> Self {
        JupiterError { backend, operation, kind, status, message: message.into() }
    }

    /// Worth retrying later: a transient failure or an open circuit.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, JupiterErrorKind::Transient | JupiterErrorKind::CircuitOpen { .. })
    }

    pub fn is_circuit_open(&self) -> bool {
        matches!(self.kind, JupiterErrorKind::CircuitOpen { .. })
    }

    /// The field a refusal named (`items[0].itemId`).
    pub fn field(&self) -> Option<&str> {
        match &self.kind {
            JupiterErrorKind::Permanent { field } => field.as_deref(),
            _ => None,
        }
    }

    /// The whole description, for timelines and job errors.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// Whether the status is one where a retry may help.
    pub(crate) fn transient_status(status: u16) -> bool {
        status == 408 || status == 429 || status >= 500
    }
}
