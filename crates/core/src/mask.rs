//! Masking of phone numbers in free text, the last line of defence that keeps
//! full numbers out of logs.

use std::borrow::Cow;

/// Masks a run of digits (with an optional leading `+`) so that only the
/// country/operator prefix and the last three digits stay visible:
/// `+919876543210` becomes `+9198xxxxx210`, `09876543210` becomes
/// `098xxxxx210`.
pub(crate) fn mask_digits(number: &str) -> String {
    let (plus, digits) = match number.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", number),
    };
    let n = digits.len();
    if n < 7 {
        return format!("{plus}{}", "x".repeat(n));
    }
    // Keep the last three digits and as many leading digits as are not part
    // of the ten-digit subscriber number's middle.
    let keep_head = n.saturating_sub(8).max(2);
    let masked = n - keep_head - 3;
    format!("{plus}{}{}{}", &digits[..keep_head], "x".repeat(masked), &digits[n - 3..])
}

/// Whether a digit run (without its `+`) looks like a phone number rather than
/// an id or a timestamp: 10-digit Indian mobiles, the same with a `0` or `91`
/// prefix, or anything of 8 to 15 digits behind a `+`.
fn looks_like_phone(digits: &str, plus: bool) -> bool {
    let mobile = |d: &str| d.len() == 10 && matches!(d.as_bytes()[0], b'6'..=b'9');
    if plus {
        return (8..=15).contains(&digits.len());
    }
    match digits.len() {
        10 => mobile(digits),
        11 => digits.starts_with('0') && mobile(&digits[1..]),
        12 => digits.starts_with("91") && mobile(&digits[2..]),
        _ => false,
    }
}

/// Whether `before` ends with a terminal colour code (`ESC [ 0 m`), which
/// separates words as a space would.
fn ends_with_ansi_escape(before: &[u8]) -> bool {
    let Some(rest) = before.strip_suffix(b"m") else {
        return false;
    };
    let params = rest.iter().rev().take_while(|b| b.is_ascii_digit() || **b == b';').count();
    rest[..rest.len() - params].ends_with(b"\x1b[")
}

/// Replaces every phone number in `text` with its masked form. Digit runs that
/// are part of a longer word (hex ids, for instance) are left alone.
pub fn mask_phone_numbers(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied_up_to = 0;
    let mut i = 0;
    while i < bytes.len() {
        let plus = bytes[i] == b'+';
        let start = i;
        let digits_start = if plus { i + 1 } else { i };
        let mut end = digits_start;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        let preceded_by_word =
            start > 0 && bytes[start - 1].is_ascii_alphanumeric() && !ends_with_ansi_escape(&bytes[..start]);
        let followed_by_word = end < bytes.len() && bytes[end].is_ascii_alphanumeric();
        if end > digits_start
            && !preceded_by_word
            && !followed_by_word
            && looks_like_phone(&text[digits_start..end], plus)
        {
            let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
            buf.push_str(&text[copied_up_to..start]);
            buf.push_str(&mask_digits(&text[start..end]));
            copied_up_to = end;
        }
        i = if end > i { end } else { i + 1 };
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut buf) => {
            buf.push_str(&text[copied_up_to..]);
            Cow::Owned(buf)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_numbers_in_their_common_shapes() {
        assert_eq!(
            mask_phone_numbers("from=+919876543210 to 09988776655, 9123456789."),
            "from=+9198xxxxx210 to 099xxxxx655, 91xxxxx789."
        );
        assert_eq!(mask_phone_numbers("\"phone\":\"919876543210\""), "\"phone\":\"9198xxxxx210\"");
    }

    #[test]
    fn masks_numbers_after_terminal_colour_codes() {
        assert_eq!(mask_phone_numbers("phone\x1b[2m=\x1b[0m9876543210"), "phone\x1b[2m=\x1b[0m98xxxxx210");
    }

    #[test]
    fn leaves_ids_and_timestamps_alone() {
        for text in [
            "run_at=1795000000000",
            "sid=b6cfaf5f5cef3ca0fc937749ef96d245",
            "order MW-2025-001234",
            "job 12345 attempt 3",
            "abc9876543210",
        ] {
            assert_eq!(mask_phone_numbers(text), text);
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_never_leaves_a_mobile_number(s in "\\PC{0,60}", n in 6_000_000_000u64..9_999_999_999u64) {
            let text = format!("{s} {n} {s}");
            let masked = mask_phone_numbers(&text);
            let number = n.to_string();
            let needle = format!(" {number} ");
            proptest::prop_assert!(!masked.contains(&needle));
        }
    }
}
