//! Entry points for the fuzz harness (`mangwale_server::fuzz`): the parsers
//! of the Cloud API's answers, which stay private to the client.

use chrono::{DateTime, Utc};

/// A 2xx answer to a send.
pub fn sent(body: &[u8]) -> bool {
    super::message::parse_sent(body).is_ok()
}

/// A non-2xx answer, classified as the client does.
pub fn error_answer(status: u16, body: &[u8], retry_after: Option<&str>, now: DateTime<Utc>) -> bool {
    let retry_after = retry_after.and_then(|v| crate::retry::parse_retry_after(v, now));
    super::error::status_error(status, body, retry_after).is_transient()
}
