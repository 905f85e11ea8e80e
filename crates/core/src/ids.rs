//! Identifiers and small enumerations that cross the API boundary.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::InvalidValue;

/// An order id as Jupiter and the PHP backend know it (`MW-2025-001234`,
/// `12345`). Jupiter sends numeric ids as JSON numbers, so both forms parse.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OrderId(String);

impl OrderId {
    /// Longest id accepted; ids travel inside Exotel's 128-character
    /// CustomField together with other context.
    pub const MAX_LEN: usize = 64;

    pub fn parse(input: &str) -> Result<Self, InvalidValue> {
        let id = input.trim();
        if id.is_empty() {
            return Err(InvalidValue("an order id must not be empty".into()));
        }
        if id.len() > Self::MAX_LEN {
            return Err(InvalidValue(format!("an order id has at most {} characters", Self::MAX_LEN)));
        }
        if !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            return Err(InvalidValue("an order id may contain only letters, digits, '-', '_' and '.'".into()));
        }
        Ok(OrderId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for OrderId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Text(s) => s,
            Raw::Number(n) => n.to_string(),
        };
        OrderId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The languages the service speaks to people in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Hindi; Hinglish callers are answered in Hindi too.
    #[default]
    Hi,
    En,
    Mr,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::Hi => "hi",
            Language::En => "en",
            Language::Mr => "mr",
        }
    }
}

impl FromStr for Language {
    type Err = InvalidValue;

    /// Accepts ISO codes with or without a region (`hi`, `hi-IN`, `en_IN`),
    /// the names people type, and `hinglish`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let base = lower.split(['-', '_']).next().unwrap_or("");
        match base {
            "hi" | "hindi" | "hinglish" => Ok(Language::Hi),
            "en" | "english" => Ok(Language::En),
            "mr" | "marathi" => Ok(Language::Mr),
            _ => Err(InvalidValue(format!("unsupported language '{s}': use hi, en or mr"))),
        }
    }
}

impl<'de> Deserialize<'de> for Language {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_accept_text_and_numbers() {
        let a: OrderId = serde_json::from_str("\"MW-2025-001234\"").unwrap();
        let b: OrderId = serde_json::from_str("12345").unwrap();
        assert_eq!(a.as_str(), "MW-2025-001234");
        assert_eq!(b.as_str(), "12345");
        assert!(serde_json::from_str::<OrderId>("\"\"").is_err());
        assert!(serde_json::from_str::<OrderId>("\"a b\"").is_err());
    }

    #[test]
    fn languages_parse_loosely() {
        assert_eq!("hi-IN".parse::<Language>().unwrap(), Language::Hi);
        assert_eq!("Marathi".parse::<Language>().unwrap(), Language::Mr);
        assert_eq!("en_IN".parse::<Language>().unwrap(), Language::En);
        assert!("fr".parse::<Language>().is_err());
    }
}
