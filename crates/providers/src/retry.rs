//! The one retry helper of every provider client (Exotel, Jupiter,
//! WhatsApp, push): a jittered exponential backoff, the `Retry-After`
//! parser, and the minimum wait some provider errors impose.
//!
//! A client retries a transient failure itself only while the wait is
//! short ([`RetryPolicy::cap`]); a longer wait (a long `Retry-After`, or a
//! provider's minimum such as FCM's 60 s after `QUOTA_EXCEEDED`) ends the
//! client's retries and is handed back on the error, so that the caller's
//! durable job queue waits it out instead of a held worker.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Retries of transient failures: `max_retries` more attempts after the
/// first, waiting `base × 2^(n−1)` capped at `cap` and jittered to [½, 1]
/// of that (so that clients throttled together do not retry together), or
/// the server's `Retry-After`, and never less than the error's minimum
/// wait. A wait longer than `cap` ends the retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_retries: 3, base: Duration::from_millis(500), cap: Duration::from_secs(10) }
    }
}

impl RetryPolicy {
    pub const fn new(max_retries: u32, base: Duration, cap: Duration) -> Self {
        RetryPolicy { max_retries, base, cap }
    }

    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy { max_retries: 0, ..RetryPolicy::default() }
    }

    /// The wait before retry number `retry` (1-based), jittered.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = 2u32.saturating_pow(retry.saturating_sub(1).min(31));
        let full = self.base.saturating_mul(exp).min(self.cap);
        full.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    /// The wait before the next attempt after a transient failure, when
    /// `retries_done` retries have been made; `None`: stop and return the
    /// error (the retries are spent, or the wait is longer than `cap`).
    /// `retry_after` is the server's; `min_wait` the provider's documented
    /// minimum for that error ([`Duration::ZERO`] when none).
    pub fn next_delay(&self, retries_done: u32, retry_after: Option<Duration>, min_wait: Duration) -> Option<Duration> {
        if retries_done >= self.max_retries {
            return None;
        }
        let wait = retry_after.unwrap_or_else(|| self.backoff(retries_done + 1)).max(min_wait);
        (wait <= self.cap).then_some(wait)
    }
}

/// What the caller must wait before trying again, once the client has
/// given up: the longer of the server's `Retry-After` and the provider's
/// minimum; `None` when neither says anything.
pub fn handed_back_wait(retry_after: Option<Duration>, min_wait: Duration) -> Option<Duration> {
    match retry_after {
        Some(wait) => Some(wait.max(min_wait)),
        None if !min_wait.is_zero() => Some(min_wait),
        None => None,
    }
}

/// Parses `Retry-After` (RFC 9110 §10.2.3): delay seconds, or an HTTP date
/// taken relative to `now` (a date in the past is no wait).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - now).to_std().unwrap_or(Duration::ZERO))
}

/// The `Retry-After` of an answer's headers, if it has a readable one.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| parse_retry_after(v, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_within_the_cap() {
        let policy = RetryPolicy::new(5, Duration::from_millis(100), Duration::from_millis(300));
        for _ in 0..50 {
            let first = policy.backoff(1);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first), "{first:?}");
            let second = policy.backoff(2);
            assert!((Duration::from_millis(100)..=Duration::from_millis(200)).contains(&second), "{second:?}");
            assert!(policy.backoff(40) <= Duration::from_millis(300));
        }
    }

    #[test]
    fn next_delay_honours_retry_after_minimum_cap_and_limit() {
        let policy = RetryPolicy::new(2, Duration::from_millis(100), Duration::from_secs(10));
        assert!(policy.next_delay(0, None, Duration::ZERO).unwrap() <= Duration::from_millis(100));
        assert_eq!(policy.next_delay(0, Some(Duration::from_secs(2)), Duration::ZERO), Some(Duration::from_secs(2)));
        // A provider minimum wins over a shorter backoff or Retry-After.
        assert_eq!(policy.next_delay(0, None, Duration::from_secs(6)), Some(Duration::from_secs(6)));
        assert_eq!(
            policy.next_delay(0, Some(Duration::from_secs(1)), Duration::from_secs(6)),
            Some(Duration::from_secs(6))
        );
        // Longer than the cap: handed back to the caller.
        assert_eq!(policy.next_delay(0, None, Duration::from_secs(60)), None);
        assert_eq!(policy.next_delay(0, Some(Duration::from_secs(3600)), Duration::ZERO), None);
        assert_eq!(policy.next_delay(2, None, Duration::ZERO), None);
        assert_eq!(RetryPolicy::none().next_delay(0, None, Duration::ZERO), None);
    }

    #[test]
    fn handed_back_wait_is_the_longer_of_both() {
        assert_eq!(handed_back_wait(None, Duration::ZERO), None);
        assert_eq!(handed_back_wait(None, Duration::from_secs(60)), Some(Duration::from_secs(60)));
        assert_eq!(
            handed_back_wait(Some(Duration::from_secs(5)), Duration::from_secs(60)),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            handed_back_wait(Some(Duration::from_secs(90)), Duration::from_secs(60)),
            Some(Duration::from_secs(90))
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT").unwrap().to_utc();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, now), None);
        headers.insert(RETRY_AFTER, "12".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(12)));
    }
}
