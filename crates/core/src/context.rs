//! What a ladder's steps say: the typed context a ladder is started with
//! (from an API request, a Jupiter webhook or Jupiter's order) and keeps.
//!
//! It is stored with the ladder as JSON with camelCase keys (`name`,
//! `amount`, `items`, `paymentMode`, `pickupAddress`, ...). Rows written
//! before this type existed hold the same keys with looser values (numbers
//! as text, amounts with decimals, addresses as numbers): those still load.
//! A value that means nothing (an empty text, a negative amount, an object
//! where text belongs) loads as absent; every reader handles absence
//! explicitly.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::InvalidValue;
use crate::ivr::Facts;

/// An amount of money in paise, as Jupiter's API counts it.
///
/// Stored and answered in rupees, as the seed's API takes it: a whole
/// number when whole (`325`), with decimals otherwise (`325.5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money {
    paise: i64,
}

/// The largest amount accepted: ten crore rupees. Far above any order, and
/// small enough that rupees are exact in an `f64`.
const MAX_PAISE: i64 = 1_000_000_000_000;

impl Money {
    pub fn from_paise(paise: i64) -> Money {
        Money { paise }
    }

    pub fn paise(self) -> i64 {
        self.paise
    }

    /// Rupees as given by the API (`325`, `325.5`, `"325"`): at least zero,
    /// rounded to the paisa.
    pub fn from_rupees(rupees: f64) -> Result<Money, InvalidValue> {
        let paise = (rupees * 100.0).round();
        if !paise.is_finite() || paise < 0.0 || paise > MAX_PAISE as f64 {
            return Err(InvalidValue(format!("not an amount in rupees: {rupees}")));
        }
        Ok(Money { paise: paise as i64 })
    }

    /// Rupees as numeric text (`"325"`, `" 325.50 "`).
    pub fn parse_rupees(text: &str) -> Result<Money, InvalidValue> {
        let rupees: f64 = text.trim().parse().map_err(|_| InvalidValue(format!("not a number: {text}")))?;
        Money::from_rupees(rupees)
    }

    /// Whole rupees, rounded (what the IVR speaks).
    pub fn whole_rupees(self) -> i64 {
        (self.paise + 50).div_euclid(100)
    }

    pub fn rupees(self) -> f64 {
        self.paise as f64 / 100.0
    }
}

/// `325` or `325.5`: what the WhatsApp template and the push show.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.paise % 100 == 0 { write!(f, "{}", self.paise / 100) } else { write!(f, "{}", self.rupees()) }
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.paise % 100 == 0 { s.serialize_i64(self.paise / 100) } else { s.serialize_f64(self.rupees()) }
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Loose::deserialize(d)? {
            Loose::Number(n) => Money::from_rupees(n),
            Loose::Text(t) => Money::parse_rupees(&t),
            Loose::Other(_) => Err(InvalidValue("an amount is a number".into())),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// How the customer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMode {
    /// Stored as `cod`: the vendor or rider collects cash.
    #[serde(rename = "cod")]
    CashOnDelivery,
    /// Paid before delivery (Jupiter's `digital_payment`, UPI, wallet, ...).
    Prepaid,
}

impl PaymentMode {
    /// `cod`, `cash`, `cash_on_delivery` and `cash on delivery` (any case)
    /// are cash; any other named mode is paid already. Empty text is no mode.
    pub fn parse(text: &str) -> Option<PaymentMode> {
        let text = text.trim().to_ascii_lowercase();
        match text.as_str() {
            "" => None,
            "cod" | "cash" | "cash_on_delivery" | "cash on delivery" => Some(PaymentMode::CashOnDelivery),
            _ => Some(PaymentMode::Prepaid),
        }
    }

    pub fn is_cash(self) -> bool {
        self == PaymentMode::CashOnDelivery
    }
}

impl<'de> Deserialize<'de> for PaymentMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PaymentMode::parse(&text).ok_or_else(|| serde::de::Error::custom("an empty payment mode"))
    }
}

/// Whole minutes from a number or numeric text, at least zero; fractions
/// round to the nearest minute.
pub fn parse_minutes(value: f64) -> Result<u32, InvalidValue> {
    let rounded = value.round();
    if !rounded.is_finite() || rounded < 0.0 || rounded > f64::from(u32::MAX) {
        return Err(InvalidValue(format!("not a number of minutes: {value}")));
    }
    Ok(rounded as u32)
}

/// Whole minutes from numeric text.
pub fn parse_minutes_text(text: &str) -> Result<u32, InvalidValue> {
    let value: f64 = text.trim().parse().map_err(|_| InvalidValue(format!("not a number: {text}")))?;
    parse_minutes(value)
}

/// What a ladder's steps say. Every field may be absent: the API and
/// Jupiter give what they know, Jupiter's order fills what it can, and each
/// channel says what to do without a value (see `needs_jupiter` for the
/// values a ladder cannot start without).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LadderContext {
    /// The party's name.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "loose_text")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "loose")]
    pub amount: Option<Money>,
    /// `Poha x1, Milk 500ml`.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "loose_text")]
    pub items: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "loose")]
    pub payment_mode: Option<PaymentMode>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "loose_text")]
    pub city: Option<String>,
    /// The store the rider picks up from.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "loose_text")]
    pub pickup_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "loose_text")]
    pub pickup_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "loose_text")]
    pub drop_address: Option<String>,
    /// The delivery address after a change (rider address update).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "loose_text")]
    pub new_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "loose_text")]
    pub map_link: Option<String>,
    /// Until the order is due (vendor reminder).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "loose_minutes")]
    pub minutes_remaining: Option<u32>,
    /// The order status a customer is told (customer status).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "loose_text")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "loose_minutes")]
    pub eta_minutes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "loose_minutes")]
    pub delay_minutes: Option<u32>,
    /// Why (customer delay, admin alert).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "loose_text")]
    pub reason: Option<String>,
    /// The rider a customer is told about.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "loose_text")]
    pub rider_name: Option<String>,
    /// Jupiter's status of the order when the ladder started.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "loose_text")]
    pub order_status: Option<String>,
}

impl LadderContext {
    /// Fills each value this context lacks from `other`; what it has stays.
    pub fn fill_from(&mut self, other: LadderContext) {
        fn fill<T>(mine: &mut Option<T>, theirs: Option<T>) {
            if mine.is_none() {
                *mine = theirs;
            }
        }
        let LadderContext {
            name,
            amount,
            items,
            payment_mode,
            city,
            pickup_name,
            pickup_address,
            drop_address,
            new_address,
            map_link,
            minutes_remaining,
            status,
            eta_minutes,
            delay_minutes,
            reason,
            rider_name,
            order_status,
        } = other;
        fill(&mut self.name, name);
        fill(&mut self.amount, amount);
        fill(&mut self.items, items);
        fill(&mut self.payment_mode, payment_mode);
        fill(&mut self.city, city);
        fill(&mut self.pickup_name, pickup_name);
        fill(&mut self.pickup_address, pickup_address);
        fill(&mut self.drop_address, drop_address);
        fill(&mut self.new_address, new_address);
        fill(&mut self.map_link, map_link);
        fill(&mut self.minutes_remaining, minutes_remaining);
        fill(&mut self.status, status);
        fill(&mut self.eta_minutes, eta_minutes);
        fill(&mut self.delay_minutes, delay_minutes);
        fill(&mut self.reason, reason);
        fill(&mut self.rider_name, rider_name);
        fill(&mut self.order_status, order_status);
    }

    /// The pickup as spoken: `name, address`, or whichever is known.
    pub fn pickup(&self) -> Option<String> {
        match (&self.pickup_name, &self.pickup_address) {
            (Some(n), Some(a)) => Some(format!("{n}, {a}")),
            (n, a) => n.clone().or_else(|| a.clone()),
        }
    }

    /// What the IVR speaks.
    pub fn facts(&self) -> Facts {
        Facts {
            amount: self.amount.map(Money::whole_rupees),
            items: self.items.clone(),
            cash_on_delivery: self.payment_mode.map(PaymentMode::is_cash),
            pickup: self.pickup(),
            drop: self.drop_address.clone(),
            new_address: self.new_address.clone(),
            minutes_remaining: self.minutes_remaining,
        }
    }
}

/// Text with something in it, trimmed; `None` for blank text.
pub fn non_blank(text: impl AsRef<str>) -> Option<String> {
    let text = text.as_ref().trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// The lenient readers, for JSON written by others (rows stored before
/// this type, Jupiter's webhook bodies): each turns a value it cannot read
/// into `None` instead of refusing the whole document. Use with
/// `#[serde(default, deserialize_with = "lenient::loose_text")]`.
pub mod lenient {
    pub use super::{loose, loose_minutes, loose_text};
}

/// A stored value of any JSON type, for the lenient readers below.
#[derive(Deserialize)]
#[serde(untagged)]
enum Loose {
    Number(f64),
    Text(String),
    Other(serde::de::IgnoredAny),
}

/// A stored text: numbers (an old row's `"newAddress": 12`) as text; blank
/// text, null and other types as absent.
pub fn loose_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Loose::deserialize(d)? {
        Loose::Text(t) => non_blank(t),
        Loose::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => Some(format!("{}", n as i64)),
        Loose::Number(n) => Some(n.to_string()),
        Loose::Other(_) => None,
    })
}

/// A stored number of minutes: a number or numeric text; anything else
/// (null, a negative or unreadable value) as absent.
pub fn loose_minutes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(match Loose::deserialize(d)? {
        Loose::Number(n) => parse_minutes(n).ok(),
        Loose::Text(t) => parse_minutes_text(&t).ok(),
        Loose::Other(_) => None,
    })
}

/// A stored value whose own reader refuses it (or a null) as absent: an
/// old row is read as far as it makes sense, never refused as a whole.
pub fn loose<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    Ok(match Loose::deserialize(d)? {
        Loose::Number(n) => T::deserialize(serde::de::value::F64Deserializer::<InvalidValueError>::new(n)).ok(),
        Loose::Text(t) => T::deserialize(serde::de::value::StringDeserializer::<InvalidValueError>::new(t)).ok(),
        Loose::Other(_) => None,
    })
}

/// The error of the in-memory deserializers of [`loose`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct InvalidValueError(String);

impl serde::de::Error for InvalidValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        InvalidValueError(msg.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_keeps_the_seeds_rupees() {
        assert_eq!(serde_json::to_value(Money::from_paise(32_500)).unwrap(), serde_json::json!(325));
        assert_eq!(serde_json::to_value(Money::from_paise(32_550)).unwrap(), serde_json::json!(325.5));
        assert_eq!(Money::from_paise(32_550).to_string(), "325.5");
        assert_eq!(Money::from_paise(32_500).to_string(), "325");
        assert_eq!(Money::parse_rupees(" 325.50 ").unwrap().paise(), 32_550);
        assert_eq!(Money::from_paise(32_550).whole_rupees(), 326);
        assert!(Money::from_rupees(-1.0).is_err());
        assert!(Money::from_rupees(f64::NAN).is_err());
        assert!(Money::parse_rupees("ten").is_err());
    }

    #[test]
    fn a_context_round_trips_with_camel_case_keys() {
        let context = LadderContext {
            name: Some("Ganesh Sweets".into()),
            amount: Some(Money::from_paise(32_500)),
            payment_mode: Some(PaymentMode::CashOnDelivery),
            pickup_address: Some("College Road".into()),
            minutes_remaining: Some(5),
            ..LadderContext::default()
        };
        let json = serde_json::to_value(&context).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "Ganesh Sweets", "amount": 325, "paymentMode": "cod",
                               "pickupAddress": "College Road", "minutesRemaining": 5})
        );
        assert_eq!(serde_json::from_value::<LadderContext>(json).unwrap(), context);
    }

    #[test]
    fn rows_written_by_the_map_still_load() {
        let old = serde_json::json!({
            "amount": "325", "items": "Poha x1", "paymentMode": "cash_on_delivery", "newAddress": 12,
            "minutesRemaining": 15.0, "etaMinutes": "20", "delayMinutes": -3, "status": null,
            "reason": {"text": "rain"}, "mapLink": "  ", "unknownKey": true, "name": ""
        });
        let context: LadderContext = serde_json::from_value(old).unwrap();
        assert_eq!(context.amount, Some(Money::from_paise(32_500)));
        assert_eq!(context.payment_mode, Some(PaymentMode::CashOnDelivery));
        assert_eq!(context.new_address.as_deref(), Some("12"));
        assert_eq!((context.minutes_remaining, context.eta_minutes, context.delay_minutes), (Some(15), Some(20), None));
        assert_eq!((context.status, context.reason, context.map_link, context.name), (None, None, None, None));
        let bad_amount: LadderContext = serde_json::from_value(serde_json::json!({"amount": "ten"})).unwrap();
        assert_eq!(bad_amount.amount, None);
        assert_eq!(serde_json::from_value::<LadderContext>(serde_json::json!({})).unwrap(), LadderContext::default());
    }

    #[test]
    fn filling_keeps_what_was_given() {
        let mut given = LadderContext { amount: Some(Money::from_paise(100)), ..LadderContext::default() };
        given.fill_from(LadderContext {
            amount: Some(Money::from_paise(200)),
            items: Some("Tea x2".into()),
            ..LadderContext::default()
        });
        assert_eq!(given.amount, Some(Money::from_paise(100)));
        assert_eq!(given.items.as_deref(), Some("Tea x2"));
    }

    #[test]
    fn facts_are_what_the_ivr_speaks() {
        let context = LadderContext {
            amount: Some(Money::from_paise(32_550)),
            payment_mode: PaymentMode::parse("UPI"),
            pickup_name: Some("Ganesh Sweets".into()),
            pickup_address: Some("College Road".into()),
            ..LadderContext::default()
        };
        let facts = context.facts();
        assert_eq!(facts.amount, Some(326));
        assert_eq!(facts.cash_on_delivery, Some(false));
        assert_eq!(facts.pickup.as_deref(), Some("Ganesh Sweets, College Road"));
        assert_eq!(LadderContext::default().facts().cash_on_delivery, None);
    }
}
