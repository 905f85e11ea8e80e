//! Webhooks as Jupiter sends them: the JSON body signed with HMAC-SHA256,
//! optionally over `"<timestamp>.<body>"` or, with an event id,
//! `"<timestamp>.<event id>.<body>"` (see `docs/jupiter.md`).

use std::fmt;

use hmac::{KeyInit, Mac};
use sha2::Sha256;

/// How [`super::JupiterSim::send_webhook`] signs a webhook.
#[derive(Clone, PartialEq, Eq)]
pub enum Signing {
    /// No signature header (sandbox without a secret, or a forged request).
    None,
    /// `X-Jupiter-Signature`: hex HMAC-SHA256 of the body bytes.
    Secret(String),
    /// `X-Jupiter-Timestamp: <unix seconds>` and `X-Jupiter-Signature`:
    /// hex HMAC-SHA256 of `"<timestamp>.<body>"`.
    SecretWithTimestamp(String, i64),
    /// `X-Jupiter-Timestamp`, `X-Jupiter-Event-Id` and `X-Jupiter-Signature`:
    /// hex HMAC-SHA256 of `"<timestamp>.<event id>.<body>"`, so that the
    /// event id (the receiver's deduplication key) is signed too.
    SecretWithEventId(String, i64, String),
}

impl fmt::Debug for Signing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signing::None => f.write_str("None"),
            Signing::Secret(_) => f.write_str("Secret(***)"),
            Signing::SecretWithTimestamp(_, ts) => write!(f, "SecretWithTimestamp(***, {ts})"),
            Signing::SecretWithEventId(_, ts, id) => write!(f, "SecretWithEventId(***, {ts}, {id})"),
        }
    }
}

/// The `X-Jupiter-Signature` value for `body`: lower-case hex HMAC-SHA256
/// with `secret`, of the body alone or, with a timestamp, of
/// `"<timestamp>.<body>"`.
pub fn webhook_signature(secret: &str, timestamp: Option<i64>, body: &[u8]) -> String {
    signed(secret, timestamp.map(|ts| format!("{ts}.")).unwrap_or_default(), body)
}

/// The `X-Jupiter-Signature` value that also covers the event id: hex
/// HMAC-SHA256 of `"<timestamp>.<event id>.<body>"`.
pub fn webhook_signature_with_event_id(secret: &str, timestamp: i64, event_id: &str, body: &[u8]) -> String {
    signed(secret, format!("{timestamp}.{event_id}."), body)
}

fn signed(secret: &str, prefix: String, body: &[u8]) -> String {
    let mut mac =
        <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(prefix.as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The signature headers for `body`.
pub(crate) fn signature_headers(signing: &Signing, body: &[u8]) -> Vec<(&'static str, String)> {
    match signing {
        Signing::None => Vec::new(),
        Signing::Secret(secret) => vec![("X-Jupiter-Signature", webhook_signature(secret, None, body))],
        Signing::SecretWithTimestamp(secret, ts) => vec![
            ("X-Jupiter-Timestamp", ts.to_string()),
            ("X-Jupiter-Signature", webhook_signature(secret, Some(*ts), body)),
        ],
        Signing::SecretWithEventId(secret, ts, id) => vec![
            ("X-Jupiter-Timestamp", ts.to_string()),
            ("X-Jupiter-Event-Id", id.clone()),
            ("X-Jupiter-Signature", webhook_signature_with_event_id(secret, *ts, id, body)),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc_4231_test_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            webhook_signature("Jefe", None, b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(webhook_signature("Jefe", Some(12), b"{}"), webhook_signature("Jefe", None, b"12.{}"));
        assert_eq!(
            webhook_signature_with_event_id("Jefe", 12, "evt-1", b"{}"),
            webhook_signature("Jefe", None, b"12.evt-1.{}")
        );
    }
}
