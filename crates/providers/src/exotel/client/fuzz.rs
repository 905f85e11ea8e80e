//! Entry points for the fuzz harness (`mangwale_server::fuzz`): the parsers
//! of Exotel's answers, which stay private to the client. Each reads what
//! a response from the network can hold and returns a short summary, so the
//! harness can call them without duplicating their code.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The requests whose 2xx answers have a parser of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Call,
    Sms,
    BulkSms,
    ExoPhones,
    Number,
}

impl Endpoint {
    pub const ALL: [Endpoint; 5] =
        [Endpoint::Call, Endpoint::Sms, Endpoint::BulkSms, Endpoint::ExoPhones, Endpoint::Number];
}

/// A 2xx answer to `endpoint`, parsed as the client does; how many records
/// it held.
pub fn success_body(endpoint: Endpoint, body: &[u8]) -> usize {
    match endpoint {
        Endpoint::Call => usize::from(super::response::parse_call(body).is_ok()),
        Endpoint::Sms => usize::from(super::response::parse_sms(body).is_ok()),
        Endpoint::BulkSms => super::response::parse_bulk(body).map(|items| items.len()).unwrap_or(0),
        Endpoint::ExoPhones => usize::from(super::response::parse_exophones(body).is_ok()),
        Endpoint::Number => usize::from(super::response::parse_number(body).is_ok()),
    }
}

/// A non-2xx answer: its body classified as the client does, for an
/// idempotent and a non-idempotent request.
pub fn error_answer(status: u16, body: &[u8], retry_after: Option<&str>, now: DateTime<Utc>) -> bool {
    let retry_after = retry_after.and_then(|v| crate::retry::parse_retry_after(v, now));
    let idempotent = super::status_failure(status, body, retry_after, true);
    let placing = super::status_failure(status, body, retry_after, false);
    idempotent.retryable || placing.retryable
}

/// `Retry-After` as the clients read it, relative to `now`.
pub fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    crate::retry::parse_retry_after(value, now)
}
