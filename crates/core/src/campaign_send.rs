//! The campaign sender's arithmetic: pacing slots, the retry delay of a
//! transient SMS failure, the breaker's verdict and the expected finish
//! time. Pure functions; the store keeps the state they work on.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::campaign::PromoWindow;

/// Microseconds between two slots of a rate (`per_second` above 0).
pub fn interval_micros(per_second: f64) -> i64 {
    ((1_000_000.0 / per_second).round() as i64).max(1)
}

/// The microseconds between two slots of `per_minute` requests a minute.
pub fn interval_micros_per_minute(per_minute: u32) -> i64 {
    interval_micros(f64::from(per_minute.max(1)) / 60.0)
}

/// The `tat` of a limiter that has never granted a slot.
pub const NEW_LIMITER: i64 = i64::MIN;

/// What a reservation of pacing slots got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotGrant {
    /// Slots taken (0 to the number asked for).
    pub granted: u32,
    /// When the first slot taken opens (µs since the epoch); the others
    /// follow it one interval apart.
    pub first: i64,
    /// The limiter's new theoretical arrival time: where the next slot opens.
    pub tat: i64,
}

/// Takes up to `want` slots of a limiter whose next slot opens at `tat`
/// (µs), slots `interval` µs apart, a slot being takeable up to
/// `tolerance` µs before it opens (the generic cell-rate algorithm: no
/// backlog builds up while idle, and over any span `d` at most
/// `d / interval + tolerance / interval + 1` slots are taken).
///
/// A limiter never used before (`tat` is [`NEW_LIMITER`]) starts its
/// schedule `tolerance` ahead, so a new campaign gets no head start of a
/// tolerance's worth of messages over its rate; a used one that fell behind
/// (the sender woke late) takes what the tolerance allows, as GCRA does.
pub fn grant_slots(tat: i64, now: i64, interval: i64, tolerance: i64, want: u32) -> SlotGrant {
    let interval = interval.max(1);
    let tolerance = tolerance.max(0);
    let start = if tat == NEW_LIMITER { now.saturating_add(tolerance) } else { tat.max(now) };
    let horizon = now.saturating_add(tolerance);
    if want == 0 || start > horizon {
        return SlotGrant { granted: 0, first: start, tat };
    }
    let fits = (horizon - start) / interval + 1;
    let granted = fits.min(i64::from(want));
    SlotGrant { granted: granted as u32, first: start, tat: start + granted * interval }
}

/// How many tries a campaign SMS gets when Exotel fails transiently (5xx,
/// 429, unreachable); a permanent refusal is never retried.
pub const SMS_MAX_TRIES: u32 = 4;

/// When to try again after the `attempt`-th try failed transiently: 30 s,
/// 1 min, 2 min, ... (at most 30 min), or the provider's `Retry-After` if
/// that is longer.
pub fn retry_delay(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exp = attempt.saturating_sub(1).min(6);
    let backoff = Duration::from_secs(30 * (1u64 << exp)).min(Duration::from_secs(30 * 60));
    backoff.max(retry_after.unwrap_or_default())
}

/// The breaker's record of recent sends: `1` a send that went through,
/// `0` one that failed, oldest first.
pub const BREAKER_OK: char = '1';
pub const BREAKER_FAILED: char = '0';

/// Why a breaker tripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trip {
    pub failed: usize,
    pub of: usize,
}

/// Whether the breaker trips: the record holds at least `window` sends and
/// more than `share` of the last `window` failed.
pub fn breaker_verdict(recent: &str, window: usize, share: f64) -> Option<Trip> {
    let window = window.max(1);
    let chars: Vec<char> = recent.chars().collect();
    if chars.len() < window {
        return None;
    }
    let last = &chars[chars.len() - window..];
    let failed = last.iter().filter(|c| **c == BREAKER_FAILED).count();
    (failed as f64 > share * window as f64).then_some(Trip { failed, of: window })
}

/// When `work` (seconds of sending at the campaign's pace) ends if it
/// starts at `start`: at once for service messages; for promotional ones
/// only inside the window, so work left at 21:00 IST carries over to 09:00.
pub fn expected_finish(start: DateTime<Utc>, work: Duration, window: Option<&PromoWindow>) -> DateTime<Utc> {
    let work = chrono::Duration::from_std(work).unwrap_or(chrono::Duration::MAX);
    let Some(window) = window else {
        return start.checked_add_signed(work).unwrap_or(DateTime::<Utc>::MAX_UTC);
    };
    let mut at = window.next_open(start);
    let mut left = work;
    // A year of windows at most: the estimate of an absurd pace stops there.
    for _ in 0..366 {
        let Some(closes) = window.closes_after(at) else { break };
        let open = closes - at;
        if left <= open {
            return at + left;
        }
        left -= open;
        at = window.next_open(closes);
    }
    DateTime::<Utc>::MAX_UTC
}

/// Seconds of sending `remaining` messages at `per_second`.
pub fn work_for(remaining: u64, per_second: f64) -> Duration {
    if remaining == 0 || per_second <= 0.0 || !per_second.is_finite() {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(remaining as f64 / per_second)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::campaign::ist;

    #[test]
    fn slots_come_one_interval_apart_and_no_backlog_builds_while_idle() {
        // 10 a second, up to one second ahead.
        let (interval, tolerance) = (interval_micros(10.0), 1_000_000);
        let fresh = grant_slots(NEW_LIMITER, 5_000_000, interval, tolerance, 100);
        assert_eq!(fresh.granted, 1, "a new limiter: one slot now, no burst");
        assert_eq!(fresh.first, 6_000_000, "its schedule starts a tolerance ahead");
        assert_eq!(fresh.tat, 6_100_000);
        let g = grant_slots(0, 5_000_000, interval, tolerance, 100);
        assert_eq!(g.granted, 11, "one idle since: a second's worth, plus the slot open now");
        assert_eq!(g.first, 5_000_000);
        assert_eq!(g.tat, 6_100_000);
        let again = grant_slots(g.tat, 5_000_000, interval, tolerance, 100);
        assert_eq!(again.granted, 0, "nothing more until time passes");
        let later = grant_slots(g.tat, 5_500_000, interval, tolerance, 100);
        assert_eq!(later.granted, 5, "half a second later: five more");
        assert_eq!(grant_slots(g.tat, 5_500_000, interval, tolerance, 2).granted, 2, "never more than asked");
    }

    #[test]
    fn a_long_run_keeps_the_rate() {
        let interval = interval_micros(500.0);
        let (mut tat, mut taken) = (NEW_LIMITER, 0u64);
        // One reservation every 100 ms for 100 s.
        for tick in 1..=1000i64 {
            let g = grant_slots(tat, tick * 100_000, interval, 1_000_000, 10_000);
            tat = g.tat;
            taken += u64::from(g.granted);
        }
        let expected = 500.0 * 100.0;
        let error = (taken as f64 - expected).abs() / expected;
        assert!(error < 0.001, "taken {taken}, error {error}");
    }

    #[test]
    fn two_hundred_a_minute_never_exceeds_it_in_any_minute() {
        let interval = interval_micros_per_minute(190);
        let tolerance = 1_000_000;
        let mut tat = 0;
        let mut slots = Vec::new();
        for tick in 0..6000i64 {
            let now = tick * 50_000;
            let g = grant_slots(tat, now, interval, tolerance, 50);
            // A slot is used as soon as it is taken.
            slots.extend(std::iter::repeat_n(now, g.granted as usize));
            tat = g.tat;
        }
        for (i, first) in slots.iter().enumerate() {
            let in_minute = slots[i..].iter().take_while(|s| **s < first + 60_000_000).count();
            assert!(in_minute <= 200, "{in_minute} in the minute from {first}");
        }
    }

    #[test]
    fn retries_back_off_and_honour_retry_after() {
        assert_eq!(retry_delay(1, None), Duration::from_secs(30));
        assert_eq!(retry_delay(2, None), Duration::from_secs(60));
        assert_eq!(retry_delay(20, None), Duration::from_secs(1800));
        assert_eq!(retry_delay(1, Some(Duration::from_secs(90))), Duration::from_secs(90));
    }

    #[test]
    fn the_breaker_needs_a_full_window_and_more_than_the_share() {
        assert_eq!(breaker_verdict("0000", 5, 0.5), None, "too few sends yet");
        assert_eq!(breaker_verdict("00011", 5, 0.5), Some(Trip { failed: 3, of: 5 }));
        assert_eq!(breaker_verdict("0000111", 5, 0.5), None, "two of the last five");
        assert_eq!(breaker_verdict("0011", 4, 0.5), None, "exactly half is not more than half");
    }

    fn at(day: u32, h: u32, m: u32) -> DateTime<Utc> {
        ist().with_ymd_and_hms(2026, 12, day, h, m, 0).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn promotional_work_left_at_nine_pm_carries_over_to_the_morning() {
        let w = PromoWindow::default();
        // 30 minutes of work from 20:50: 10 tonight, 20 from 09:00.
        assert_eq!(expected_finish(at(6, 20, 50), Duration::from_secs(1800), Some(&w)), at(7, 9, 20));
        assert_eq!(expected_finish(at(6, 20, 50), Duration::from_secs(1800), None), at(6, 21, 20));
        // Started at night: from 09:00.
        assert_eq!(expected_finish(at(6, 23, 0), Duration::from_secs(60), Some(&w)), at(7, 9, 1));
        // Thirteen hours of work: a whole day's window and one more hour.
        assert_eq!(expected_finish(at(6, 9, 0), Duration::from_secs(13 * 3600), Some(&w)), at(7, 10, 0));
        assert_eq!(work_for(1000, 10.0), Duration::from_secs(100));
        assert_eq!(work_for(0, 10.0), Duration::ZERO);
    }
}
