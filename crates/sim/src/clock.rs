//! The simulators' notion of time: the system clock, or a manual clock that
//! tests move (see [`crate::exotel::SimHandle::advance`]), plus Exotel's IST
//! wall-clock formatting.

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, TimeZone, Utc};

/// Where a simulator takes "now" from.
///
/// With [`SimClock::system`] a background task fires due events (call
/// progress, callbacks) as real time passes. With [`SimClock::manual`] time
/// stands still until the test calls `advance`, which fires every event that
/// becomes due, in time order. Clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct SimClock(Kind);

#[derive(Clone, Debug, Default)]
enum Kind {
    #[default]
    System,
    Manual(Arc<Mutex<DateTime<Utc>>>),
}

impl SimClock {
    pub fn system() -> Self {
        SimClock(Kind::System)
    }

    /// A clock that starts at `start` and moves only when advanced.
    pub fn manual(start: DateTime<Utc>) -> Self {
        SimClock(Kind::Manual(Arc::new(Mutex::new(start))))
    }

    /// A manual clock starting at an IST wall-clock time `YYYY-MM-DD HH:mm:ss`.
    pub fn manual_ist(text: &str) -> Option<Self> {
        parse_ist(text).map(SimClock::manual)
    }

    pub fn is_manual(&self) -> bool {
        matches!(self.0, Kind::Manual(_))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            Kind::System => Utc::now(),
            Kind::Manual(t) => *lock(t),
        }
    }

    /// Moves a manual clock forward to `t` (never backwards); no-op for the
    /// system clock.
    pub(crate) fn advance_to(&self, t: DateTime<Utc>) {
        if let Kind::Manual(m) = &self.0 {
            let mut now = lock(m);
            if t > *now {
                *now = t;
            }
        }
    }
}

/// The simulators share the service's one clock abstraction, so a test can
/// hand the same manual clock to the service and to its counterparts.
impl mangwale_core::clock::Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        SimClock::now(self)
    }
}

/// Locks a mutex, ignoring poisoning: the simulator's state stays usable
/// after a panicking test thread.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `t + d`, saturating at the latest representable time.
pub(crate) fn add(t: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d).ok().and_then(|d| t.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// India Standard Time, UTC+05:30.
pub fn ist() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 30 * 60).unwrap_or(Utc.fix())
}

/// Formats a time as Exotel's v1 API does: IST wall clock, `YYYY-MM-DD HH:mm:ss`.
pub fn format_ist(at: DateTime<Utc>) -> String {
    at.with_timezone(&ist()).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Formats a time as Exotel's applet `Created` parameter: IST wall clock,
/// RFC-1123-like without a zone, `Tue, 16 Feb 2016 15:56:26`.
pub fn format_rfc1123_ist(at: DateTime<Utc>) -> String {
    at.with_timezone(&ist()).format("%a, %d %b %Y %H:%M:%S").to_string()
}

/// Parses an IST wall-clock time `YYYY-MM-DD HH:mm:ss`.
pub fn parse_ist(text: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    ist().from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_forward() {
        let clock = SimClock::manual_ist("2025-01-15 10:00:00").unwrap();
        let start = clock.now();
        assert_eq!(format_ist(start), "2025-01-15 10:00:00");
        clock.advance_to(start + chrono::Duration::seconds(5));
        clock.advance_to(start);
        assert_eq!(format_ist(clock.now()), "2025-01-15 10:00:05");
        assert!(clock.is_manual() && !SimClock::system().is_manual());
        assert_eq!(format_rfc1123_ist(parse_ist("2016-02-16 15:56:26").unwrap()), "Tue, 16 Feb 2016 15:56:26");
    }
}
