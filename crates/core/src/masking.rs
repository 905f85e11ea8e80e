//! Number masking rules: which parties of an order talk through a masked
//! number, which number of the pool a new session gets, and which session a
//! caller means.
//!
//! The allocation rule is Twilio Proxy's: a phone never holds two open
//! sessions on the same masked number, so that a call to a masked number
//! names exactly one counterpart. Only when the pool is too small for that
//! does a number carry two sessions of one phone; a call from that phone is
//! then resolved by asking for the order's last digits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{E164, InvalidValue, OrderId};

/// A party of an order, as masking sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyRole {
    Customer,
    Rider,
    Vendor,
}

impl PartyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            PartyRole::Customer => "customer",
            PartyRole::Rider => "rider",
            PartyRole::Vendor => "vendor",
        }
    }
}

impl FromStr for PartyRole {
    type Err = InvalidValue;

    /// `customer`, `rider` (or the seed's `delivery_man`), `vendor` (or `store`).
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        match s.trim().to_ascii_lowercase().as_str() {
            "customer" => Ok(PartyRole::Customer),
            "rider" | "delivery_man" => Ok(PartyRole::Rider),
            "vendor" | "store" => Ok(PartyRole::Vendor),
            other => Err(InvalidValue(format!("{other:?} is not customer, rider or vendor"))),
        }
    }
}

impl fmt::Display for PartyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which two parties of an order a session joins. Party A of the session is
/// the first role of the pair's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyPair {
    CustomerRider,
    CustomerVendor,
    RiderVendor,
}

impl PartyPair {
    pub const ALL: [PartyPair; 3] = [PartyPair::CustomerRider, PartyPair::CustomerVendor, PartyPair::RiderVendor];

    pub fn as_str(self) -> &'static str {
        match self {
            PartyPair::CustomerRider => "customer_rider",
            PartyPair::CustomerVendor => "customer_vendor",
            PartyPair::RiderVendor => "rider_vendor",
        }
    }

    /// The roles of party A and party B.
    pub fn roles(self) -> (PartyRole, PartyRole) {
        match self {
            PartyPair::CustomerRider => (PartyRole::Customer, PartyRole::Rider),
            PartyPair::CustomerVendor => (PartyRole::Customer, PartyRole::Vendor),
            PartyPair::RiderVendor => (PartyRole::Rider, PartyRole::Vendor),
        }
    }

    /// The pair of two different roles, in either order.
    pub fn of(a: PartyRole, b: PartyRole) -> Option<PartyPair> {
        PartyPair::ALL.into_iter().find(|p| p.roles() == (a, b) || p.roles() == (b, a))
    }
}

impl FromStr for PartyPair {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        PartyPair::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| InvalidValue(format!("{s:?} is not customer_rider, customer_vendor or rider_vendor")))
    }
}

impl fmt::Display for PartyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One side of a masked conversation: who they are to the order, and their
/// real number (which the other side never learns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    pub role: PartyRole,
    pub phone: E164,
}

/// An open session as the allocation sees it: its number and its two phones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding<'a> {
    pub masked_number: &'a E164,
    pub phones: [&'a E164; 2],
}

/// The number a new session gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub number: E164,
    /// The pool could not avoid giving one of the two phones a second open
    /// session on this number: its calls there are resolved by order digits.
    pub shared: bool,
}

/// Picks the masked number for a session between `a` and `b` given the open
/// sessions (`open`). A number on which neither phone holds an open session
/// is preferred, the least used first (ties: pool order); without one, the
/// number on which the two phones hold the fewest sessions. `None` for an
/// empty pool.
pub fn allocate(pool: &[E164], open: &[Holding<'_>], a: &E164, b: &E164) -> Option<Allocation> {
    let load = |n: &E164| open.iter().filter(|h| h.masked_number == n).count();
    let held =
        |n: &E164| open.iter().filter(|h| h.masked_number == n && h.phones.iter().any(|p| *p == a || *p == b)).count();
    let free = pool.iter().filter(|n| held(n) == 0).min_by_key(|n| load(n));
    if let Some(number) = free {
        return Some(Allocation { number: number.clone(), shared: false });
    }
    pool.iter().min_by_key(|n| (held(n), load(n))).map(|number| Allocation { number: number.clone(), shared: true })
}

/// The orders among `candidates` whose id ends with `digits` (only the
/// digits of an id count: `MW-2025-001234` ends with `1234`).
pub fn orders_ending_with<'a>(digits: &str, candidates: &'a [OrderId]) -> Vec<&'a OrderId> {
    let digits: String = digits.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return Vec::new();
    }
    candidates
        .iter()
        .filter(|o| o.as_str().chars().filter(char::is_ascii_digit).collect::<String>().ends_with(&digits))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> E164 {
        E164::parse(s).unwrap()
    }

    #[test]
    fn pairs_and_roles_round_trip() {
        for pair in PartyPair::ALL {
            assert_eq!(pair.as_str().parse::<PartyPair>().unwrap(), pair);
            let (a, b) = pair.roles();
            assert_eq!(PartyPair::of(b, a), Some(pair));
        }
        assert_eq!(PartyPair::of(PartyRole::Rider, PartyRole::Rider), None);
        assert_eq!("delivery_man".parse::<PartyRole>().unwrap(), PartyRole::Rider);
        assert!("admin".parse::<PartyRole>().is_err());
        assert!("rider_customer".parse::<PartyPair>().is_err());
    }

    #[test]
    fn a_phone_never_gets_a_second_session_on_a_number_while_another_is_free() {
        let pool = [n("+918000000001"), n("+918000000002")];
        let (customer, rider, vendor) = (n("+919800000001"), n("+919800000002"), n("+919800000003"));
        let first = allocate(&pool, &[], &customer, &rider).unwrap();
        assert_eq!(first, Allocation { number: pool[0].clone(), shared: false });
        let open = [Holding { masked_number: &pool[0], phones: [&customer, &rider] }];
        // The customer's second session (with the vendor) goes to the other number.
        let second = allocate(&pool, &open, &customer, &vendor).unwrap();
        assert_eq!(second, Allocation { number: pool[1].clone(), shared: false });
        // Strangers spread over the least used number.
        let open2 = [
            Holding { masked_number: &pool[0], phones: [&customer, &rider] },
            Holding { masked_number: &pool[0], phones: [&n("+919800000009"), &n("+919800000008")] },
        ];
        let third = allocate(&pool, &open2, &n("+919800000004"), &n("+919800000005")).unwrap();
        assert_eq!(third.number, pool[1]);
    }

    #[test]
    fn a_pool_too_small_shares_the_least_held_number() {
        let pool = [n("+918000000001")];
        let (customer, rider, vendor) = (n("+919800000001"), n("+919800000002"), n("+919800000003"));
        let open = [Holding { masked_number: &pool[0], phones: [&customer, &rider] }];
        assert_eq!(
            allocate(&pool, &open, &customer, &vendor),
            Some(Allocation { number: pool[0].clone(), shared: true })
        );
        assert_eq!(allocate(&[], &[], &customer, &vendor), None);
    }

    #[test]
    fn order_digits_pick_an_order() {
        let orders = [OrderId::parse("MW-2025-001234").unwrap(), OrderId::parse("100009").unwrap()];
        assert_eq!(orders_ending_with("1234", &orders), vec![&orders[0]]);
        assert_eq!(orders_ending_with("\"09\"", &orders), vec![&orders[1]]);
        assert_eq!(orders_ending_with("0", &orders), Vec::<&OrderId>::new());
        assert!(orders_ending_with("", &orders).is_empty());
    }
}
