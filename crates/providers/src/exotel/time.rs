//! Exotel's v1 timestamps: IST wall-clock time without an offset.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, TimeZone, Utc};

/// India Standard Time, UTC+05:30 (no daylight saving).
fn ist() -> FixedOffset {
    const IST_SECONDS: i32 = 5 * 3600 + 30 * 60;
    FixedOffset::east_opt(IST_SECONDS).unwrap_or(Utc.fix())
}

/// Parses `YYYY-MM-DD HH:mm:ss` (IST) or Exotel's `Created` form
/// `Tue, 16 Feb 2016 15:56:26` (IST). Exotel's placeholders for "no time"
/// (`0000-00-00 00:00:00`, `1970-01-01 05:30:00`) and anything unparsable
/// become `None`.
pub fn parse_ist(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%a, %d %b %Y %H:%M:%S"))
        .ok()?;
    let utc = ist().from_local_datetime(&naive).single()?.with_timezone(&Utc);
    (utc.timestamp() > 0).then_some(utc)
}

/// Formats a time as Exotel does: IST wall clock, `YYYY-MM-DD HH:mm:ss`.
pub fn format_ist(at: DateTime<Utc>) -> String {
    at.with_timezone(&ist()).format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ist_round_trip() {
        let t = parse_ist("2024-01-15 14:25:10").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-01-15T08:55:10+00:00");
        assert_eq!(format_ist(t), "2024-01-15 14:25:10");
        assert_eq!(parse_ist("Tue, 16 Feb 2016 15:56:26").unwrap().to_rfc3339(), "2016-02-16T10:26:26+00:00");
    }

    #[test]
    fn placeholders_are_none() {
        for text in ["0000-00-00 00:00:00", "1970-01-01 05:30:00", "", "null", "2024-13-45 99:99:99"] {
            assert_eq!(parse_ist(text), None, "{text}");
        }
    }
}
