//! Phone numbers in E.164 form, as the service stores and logs them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::InvalidValue;

/// A phone number in E.164 form (`+919876543210`).
///
/// Indian numbers arrive in many shapes (Exotel echoes `09876543210`, people
/// type `98765 43210`); all of them parse to the same value. `Debug` and
/// [`E164::masked`] never reveal the full number, so a value that ends up in a
/// log line by accident stays private.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

impl E164 {
    /// Parses a number given in E.164, national (`0…`) or bare Indian form.
    /// Spaces, dashes, dots and parentheses are ignored.
    pub fn parse(input: &str) -> Result<Self, InvalidValue> {
        let trimmed = input.trim();
        let (plus, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => {
                    return Err(InvalidValue(
                        "a phone number may contain only digits, spaces, dashes and a leading +".into(),
                    ));
                }
            }
        }
        let e164 = if plus {
            if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
                return Err(InvalidValue("an international number needs a country code and 8 to 15 digits".into()));
            }
            digits
        } else if digits.len() == 10 && !digits.starts_with('0') {
            format!("91{digits}")
        } else if digits.len() == 11 && digits.starts_with('0') && !digits[1..].starts_with('0') {
            format!("91{}", &digits[1..])
        } else if digits.len() == 12 && digits.starts_with("91") {
            digits
        } else if let Some(intl) = digits.strip_prefix("00").filter(|d| (8..=15).contains(&d.len())) {
            intl.to_string()
        } else {
            return Err(InvalidValue(
                "not a phone number: expected +<country><number>, 0<10 digits> or 10 digits".into(),
            ));
        };
        if e164.starts_with("91") && e164.len() != 12 {
            return Err(InvalidValue("an Indian number has 10 digits after +91".into()));
        }
        Ok(E164(format!("+{e164}")))
    }

    /// The full number, `+919876543210`. Use only where the number must be
    /// sent to a provider; never in logs.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The national form Exotel echoes for Indian numbers (`09876543210`);
    /// other countries keep their E.164 form.
    pub fn national(&self) -> String {
        match self.0.strip_prefix("+91") {
            Some(rest) => format!("0{rest}"),
            None => self.0.clone(),
        }
    }

    /// A form safe for logs and dashboards: `+9198xxxxx210`.
    pub fn masked(&self) -> String {
        crate::mask::mask_digits(&self.0)
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164({})", self.masked())
    }
}

impl fmt::Display for E164 {
    /// Displays the masked form: the full number must be asked for with
    /// [`E164::as_str`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for E164 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for E164 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        E164::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_shapes_indian_numbers_arrive_in() {
        for input in [
            "+919876543210",
            "919876543210",
            "09876543210",
            "9876543210",
            "98765 43210",
            "+91-98765-43210",
            "0091 9876543210",
        ] {
            assert_eq!(E164::parse(input).unwrap().as_str(), "+919876543210", "{input}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        for input in ["", "12345", "+91987654321", "abc", "+0123456789", "98765432101234567"] {
            assert!(E164::parse(input).is_err(), "{input}");
        }
    }

    #[test]
    fn national_and_masked_forms() {
        let n = E164::parse("+919876543210").unwrap();
        assert_eq!(n.national(), "09876543210");
        assert_eq!(n.masked(), "+9198xxxxx210");
        assert_eq!(format!("{n}"), "+9198xxxxx210");
        assert_eq!(format!("{n:?}"), "E164(+9198xxxxx210)");
    }

    #[test]
    fn serde_round_trip_parses_on_the_way_in() {
        let n: E164 = serde_json::from_str("\"09876543210\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"+919876543210\"");
        assert!(serde_json::from_str::<E164>("\"12\"").is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = E164::parse(&s);
        }
    }
}
