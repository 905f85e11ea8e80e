//! `X-Jupiter-Signature`: the hex HMAC-SHA256, with `JUPITER_WEBHOOK_SECRET`,
//! of one of three strings (see docs/jupiter.md):
//!
//! - the exact body bytes;
//! - `"<timestamp>.<body>"` when `X-Jupiter-Timestamp` is sent, which also
//!   bounds how old a request may be (5 minutes either way);
//! - `"<timestamp>.<event id>.<body>"` when `X-Jupiter-Event-Id` is sent with
//!   the timestamp: only then is the event id signed, and only a signed event
//!   id may serve as the deduplication key (an unsigned one could be changed
//!   by whoever captured the request, to make it act again).
//!
//! The three cannot be mistaken for one another: a body is a JSON object
//! (it starts with `{` or whitespace, never a digit) and an event id never
//! contains `.` or `{`. The incumbent re-serialised the body before hashing,
//! which no sender can match byte for byte; we hash what arrived.

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-jupiter-signature";
pub const TIMESTAMP_HEADER: &str = "x-jupiter-timestamp";
pub const EVENT_ID_HEADER: &str = "x-jupiter-event-id";

/// How far a signed timestamp may be from our clock, either way.
pub const MAX_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// Longest event id accepted.
pub const MAX_EVENT_ID_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Jupiter-Signature header is missing")]
    Missing,
    #[error("the X-Jupiter-Signature header is not a hex SHA-256 HMAC")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
    #[error("the X-Jupiter-Timestamp header is missing (JUPITER_REQUIRE_TIMESTAMP is set)")]
    MissingTimestamp,
    #[error("the X-Jupiter-Timestamp header is not a Unix time in seconds")]
    BadTimestamp,
    #[error("the X-Jupiter-Timestamp is more than 5 minutes from now")]
    Stale,
}

/// What a verified signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The event id, when the signature covers it.
    pub event_id: Option<String>,
}

/// Whether `id` may be signed as an event id: 1 to 128 of `A-Z a-z 0-9 - _ :`.
pub fn valid_event_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_EVENT_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'))
}

/// The signature of `body`, with `timestamp` and `event_id` if given, as hex:
/// what Jupiter sends and what our simulator signs with. An event id is
/// signed only together with a timestamp.
pub fn sign(secret: &str, timestamp: Option<i64>, event_id: Option<&str>, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, event_id, body).finalize().into_bytes())
}

fn mac(secret: &str, timestamp: Option<i64>, event_id: Option<&str>, body: &[u8]) -> hmac::Hmac<Sha256> {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    if let Some(ts) = timestamp {
        mac.update(ts.to_string().as_bytes());
        mac.update(b".");
        if let Some(id) = event_id {
            mac.update(id.as_bytes());
            mac.update(b".");
        }
    }
    mac.update(body);
    mac
}

/// The headers of a request that [`verify`] reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignedHeaders<'a> {
    pub signature: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub event_id: Option<&'a str>,
}

/// Checks a request's signature headers against its body, in constant time.
/// With `require_timestamp`, a request without `X-Jupiter-Timestamp` is
/// refused, so that a captured request can be replayed for 5 minutes at most.
pub fn verify(
    secret: &str,
    headers: SignedHeaders<'_>,
    body: &[u8],
    now: DateTime<Utc>,
    require_timestamp: bool,
) -> Result<Verified, SignatureError> {
    let signature = headers.signature.map(str::trim).filter(|s| !s.is_empty()).ok_or(SignatureError::Missing)?;
    let hex_digits = signature.strip_prefix("sha256=").unwrap_or(signature);
    let presented = hex::decode(hex_digits).map_err(|_| SignatureError::Malformed)?;
    if presented.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let timestamp = match headers.timestamp.map(str::trim).filter(|s| !s.is_empty()) {
        None if require_timestamp => return Err(SignatureError::MissingTimestamp),
        None => None,
        Some(ts) => {
            let ts: i64 = ts.parse().map_err(|_| SignatureError::BadTimestamp)?;
            let at = DateTime::<Utc>::from_timestamp(ts, 0).ok_or(SignatureError::BadTimestamp)?;
            if (now - at).abs() > MAX_SKEW {
                return Err(SignatureError::Stale);
            }
            Some(ts)
        }
    };
    let event_id = headers.event_id.map(str::trim).filter(|id| valid_event_id(id));
    // verify_slice compares in constant time. A signature over the event id
    // is tried first; senders that do not sign it still verify over the
    // timestamp and body, and their event id is then not trusted.
    if let (Some(_), Some(id)) = (timestamp, event_id)
        && mac(secret, timestamp, Some(id), body).verify_slice(&presented).is_ok()
    {
        return Ok(Verified { event_id: Some(id.to_string()) });
    }
    mac(secret, timestamp, None, body).verify_slice(&presented).map_err(|_| SignatureError::Mismatch)?;
    Ok(Verified { event_id: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "mangwale-exotel-webhook-secret";

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000, 0).unwrap()
    }

    fn headers<'a>(signature: Option<&'a str>, timestamp: Option<&'a str>) -> SignedHeaders<'a> {
        SignedHeaders { signature, timestamp, event_id: None }
    }

    fn check(signature: Option<&str>, timestamp: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
        verify(SECRET, headers(signature, timestamp), body, now(), false).map(|_| ())
    }

    #[test]
    fn a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", None, None, b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_exact_body_verifies_and_anything_else_does_not() {
        let body = br#"{"order_id": 12345, "amount": 325}"#;
        let good = sign(SECRET, None, None, body);
        assert_eq!(check(Some(&good), None, body), Ok(()));
        assert_eq!(check(Some(&format!("sha256={good}")), None, body), Ok(()));
        assert_eq!(check(Some(&good.to_uppercase()), None, body), Ok(()));
        // The same JSON re-serialised is a different body.
        let compact = br#"{"order_id":12345,"amount":325}"#;
        assert_eq!(check(Some(&good), None, compact), Err(SignatureError::Mismatch));
        assert_eq!(
            verify("another-secret-entirely", headers(Some(&good), None), body, now(), false),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(check(None, None, body), Err(SignatureError::Missing));
        assert_eq!(check(Some("zz"), None, body), Err(SignatureError::Malformed));
        assert_eq!(check(Some("abcd"), None, body), Err(SignatureError::Malformed));
    }

    #[test]
    fn a_timestamp_is_signed_and_bounded() {
        let body = br#"{"order_id": 1}"#;
        let ts = now().timestamp() - 120;
        let good = sign(SECRET, Some(ts), None, body);
        assert_eq!(check(Some(&good), Some(&ts.to_string()), body), Ok(()));
        // Without the timestamp header the signature covers the body alone.
        assert_eq!(check(Some(&good), None, body), Err(SignatureError::Mismatch));
        // A different timestamp does not match the signature.
        assert_eq!(check(Some(&good), Some(&(ts + 1).to_string()), body), Err(SignatureError::Mismatch));
        let old = now().timestamp() - 301;
        let signed_old = sign(SECRET, Some(old), None, body);
        assert_eq!(check(Some(&signed_old), Some(&old.to_string()), body), Err(SignatureError::Stale));
        let future = now().timestamp() + 301;
        assert_eq!(
            check(Some(&sign(SECRET, Some(future), None, body)), Some(&future.to_string()), body),
            Err(SignatureError::Stale)
        );
        assert_eq!(check(Some(&good), Some("yesterday"), body), Err(SignatureError::BadTimestamp));
    }

    #[test]
    fn a_required_timestamp_must_be_sent() {
        let body = br#"{"order_id": 1}"#;
        let body_only = sign(SECRET, None, None, body);
        assert_eq!(
            verify(SECRET, headers(Some(&body_only), None), body, now(), true),
            Err(SignatureError::MissingTimestamp)
        );
        let ts = now().timestamp();
        let with_ts = sign(SECRET, Some(ts), None, body);
        let ts_text = ts.to_string();
        assert!(verify(SECRET, headers(Some(&with_ts), Some(&ts_text)), body, now(), true).is_ok());
    }

    #[test]
    fn an_event_id_is_trusted_only_when_signed() {
        let body = br#"{"order_id": 1}"#;
        let ts = now().timestamp();
        let ts_text = ts.to_string();
        let signed = sign(SECRET, Some(ts), Some("evt_42"), body);
        fn with_id<'a>(signature: &'a str, ts: &'a str, id: &'a str) -> SignedHeaders<'a> {
            SignedHeaders { signature: Some(signature), timestamp: Some(ts), event_id: Some(id) }
        }
        let h = SignedHeaders { signature: Some(&signed), timestamp: Some(&ts_text), event_id: Some("evt_42") };
        assert_eq!(verify(SECRET, h, body, now(), false), Ok(Verified { event_id: Some("evt_42".into()) }));
        // Another id on the same signature does not verify.
        assert_eq!(
            verify(SECRET, with_id(&signed, &ts_text, "evt_43"), body, now(), false),
            Err(SignatureError::Mismatch)
        );
        // A signature over the timestamp and body alone verifies, but the id
        // beside it is not trusted.
        let unsigned_id = sign(SECRET, Some(ts), None, body);
        assert_eq!(
            verify(SECRET, with_id(&unsigned_id, &ts_text, "evt_99"), body, now(), false),
            Ok(Verified { event_id: None })
        );
        // Without a timestamp an event id is never signed.
        let body_only = sign(SECRET, None, None, body);
        let h = SignedHeaders { signature: Some(&body_only), timestamp: None, event_id: Some("evt_42") };
        assert_eq!(verify(SECRET, h, body, now(), false), Ok(Verified { event_id: None }));
        assert!(!valid_event_id("a.b"));
        assert!(!valid_event_id(""));
        assert!(!valid_event_id(&"x".repeat(129)));
        assert!(valid_event_id("2026-11-23:order-new_1"));
    }
}
