//! `X-Jupiter-Signature`: the hex HMAC-SHA256 of the exact body bytes with
//! `JUPITER_WEBHOOK_SECRET`; or, when `X-Jupiter-Timestamp` is sent, of
//! `"<timestamp>.<body>"`, which also bounds how old a request may be. The
//! incumbent re-serialised the body before hashing, which no sender can
//! match byte for byte; we hash what arrived.

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-jupiter-signature";
pub const TIMESTAMP_HEADER: &str = "x-jupiter-timestamp";

/// How far a signed timestamp may be from our clock, either way.
pub const MAX_SKEW: chrono::Duration = chrono::Duration::minutes(5);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Jupiter-Signature header is missing")]
    Missing,
    #[error("the X-Jupiter-Signature header is not a hex SHA-256 HMAC")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
    #[error("the X-Jupiter-Timestamp header is not a Unix time in seconds")]
    BadTimestamp,
    #[error("the X-Jupiter-Timestamp is more than 5 minutes from now")]
    Stale,
}

/// The signature of `body` (with `timestamp`, if given), as hex: what
/// Jupiter sends and what our simulator signs with.
pub fn sign(secret: &str, timestamp: Option<i64>, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
}

fn mac(secret: &str, timestamp: Option<i64>, body: &[u8]) -> hmac::Hmac<Sha256> {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    if let Some(ts) = timestamp {
        mac.update(ts.to_string().as_bytes());
        mac.update(b".");
    }
    mac.update(body);
    mac
}

/// Checks a request's signature headers against its body, in constant time.
pub fn verify(
    secret: &str,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let signature = signature.map(str::trim).filter(|s| !s.is_empty()).ok_or(SignatureError::Missing)?;
    let hex_digits = signature.strip_prefix("sha256=").unwrap_or(signature);
    let presented = hex::decode(hex_digits).map_err(|_| SignatureError::Malformed)?;
    if presented.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let timestamp = match timestamp.map(str::trim).filter(|s| !s.is_empty()) {
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
    // verify_slice compares in constant time.
    mac(secret, timestamp, body).verify_slice(&presented).map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "mangwale-exotel-webhook-secret";

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000, 0).unwrap()
    }

    #[test]
    fn a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", None, b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_exact_body_verifies_and_anything_else_does_not() {
        let body = br#"{"order_id": 12345, "amount": 325}"#;
        let good = sign(SECRET, None, body);
        assert_eq!(verify(SECRET, Some(&good), None, body, now()), Ok(()));
        assert_eq!(verify(SECRET, Some(&format!("sha256={good}")), None, body, now()), Ok(()));
        assert_eq!(verify(SECRET, Some(&good.to_uppercase()), None, body, now()), Ok(()));
        // The same JSON re-serialised is a different body.
        let compact = br#"{"order_id":12345,"amount":325}"#;
        assert_eq!(verify(SECRET, Some(&good), None, compact, now()), Err(SignatureError::Mismatch));
        assert_eq!(verify("another-secret-entirely", Some(&good), None, body, now()), Err(SignatureError::Mismatch));
        assert_eq!(verify(SECRET, None, None, body, now()), Err(SignatureError::Missing));
        assert_eq!(verify(SECRET, Some("zz"), None, body, now()), Err(SignatureError::Malformed));
        assert_eq!(verify(SECRET, Some("abcd"), None, body, now()), Err(SignatureError::Malformed));
    }

    #[test]
    fn a_timestamp_is_signed_and_bounded() {
        let body = br#"{"order_id": 1}"#;
        let ts = now().timestamp() - 120;
        let good = sign(SECRET, Some(ts), body);
        assert_eq!(verify(SECRET, Some(&good), Some(&ts.to_string()), body, now()), Ok(()));
        // Without the timestamp header the signature covers the body alone.
        assert_eq!(verify(SECRET, Some(&good), None, body, now()), Err(SignatureError::Mismatch));
        // A different timestamp does not match the signature.
        assert_eq!(
            verify(SECRET, Some(&good), Some(&(ts + 1).to_string()), body, now()),
            Err(SignatureError::Mismatch)
        );
        let old = now().timestamp() - 301;
        let signed_old = sign(SECRET, Some(old), body);
        assert_eq!(verify(SECRET, Some(&signed_old), Some(&old.to_string()), body, now()), Err(SignatureError::Stale));
        let future = now().timestamp() + 301;
        assert_eq!(
            verify(SECRET, Some(&sign(SECRET, Some(future), body)), Some(&future.to_string()), body, now()),
            Err(SignatureError::Stale)
        );
        assert_eq!(verify(SECRET, Some(&good), Some("yesterday"), body, now()), Err(SignatureError::BadTimestamp));
    }
}
