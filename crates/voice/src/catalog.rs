//! The catalog format any store's menu is fed in as (docs/voice.md has its
//! JSON Schema): the store, and its items with aliases in Latin and
//! Devanagari, prices, units, variants and modifier groups.
//!
//! Prices are rupees in JSON (`165`, `12.5`) and paise here, so that sums
//! are exact.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::numbers::Qty;

/// Money in paise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Paise(pub i64);

impl Paise {
    pub fn rupees(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

impl Serialize for Paise {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 % 100 == 0 { s.serialize_i64(self.0 / 100) } else { s.serialize_f64(self.rupees()) }
    }
}

impl<'de> Deserialize<'de> for Paise {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let rupees = f64::deserialize(d)?;
        if !rupees.is_finite() || !(-1_000_000.0..=10_000_000.0).contains(&rupees) {
            return Err(serde::de::Error::custom(format!("{rupees} is not a price in rupees")));
        }
        let paise = (rupees * 100.0).round();
        if (paise - rupees * 100.0).abs() > 1e-6 {
            return Err(serde::de::Error::custom(format!("{rupees}: prices have at most two decimals")));
        }
        Ok(Paise(paise as i64))
    }
}

/// The language a store's callers speak first; `hi-en` is Hinglish in
/// Latin script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Lang {
    #[default]
    #[serde(rename = "hi")]
    Hi,
    #[serde(rename = "mr")]
    Mr,
    #[serde(rename = "en")]
    En,
    #[serde(rename = "hi-en")]
    HiEn,
}

impl Lang {
    /// A language code as Jupiter or a request writes it (`hi`, `mr`, `en`,
    /// `hi-en`, `hinglish`; any case, spaces around ignored).
    pub fn from_code(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "hi" => Some(Lang::Hi),
            "mr" => Some(Lang::Mr),
            "en" => Some(Lang::En),
            "hi-en" | "hinglish" => Some(Lang::HiEn),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Hi => "hi",
            Lang::Mr => "mr",
            Lang::En => "en",
            Lang::HiEn => "hi-en",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// How an item is sold (what a quantity of 1 means).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Piece,
    Plate,
    Kg,
    G,
    Litre,
    Ml,
    Pack,
    Dozen,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogStore {
    pub id: String,
    pub name: String,
    pub language: Lang,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub price: Paise,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModifierOption {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub price_delta: Paise,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModifierGroup {
    pub id: String,
    pub name: String,
    /// One option at most (spice level) rather than any number (toppings).
    pub exclusive: bool,
    /// The option id that applies when the caller names none.
    #[serde(default)]
    pub default: Option<String>,
    pub options: Vec<ModifierOption>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The price of one unit (of the item without a variant).
    pub price: Paise,
    pub unit: Unit,
    pub category: String,
    pub available: bool,
    /// What one pack holds, where a count of the item means packs of it:
    /// a 400 g loaf of an item sold by the gram, a tray of 6 eggs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack_size: Option<PackSize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifier_groups: Vec<ModifierGroup>,
}

/// The contents of one pack of an item: a weight or volume ("400 g" of
/// bread sold by the gram, "100 ml" of a syrup) or a number of pieces ("6"
/// eggs in a pack, a dozen bananas).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackSize {
    pub quantity: Qty,
    pub unit: Unit,
}

impl Item {
    /// How much of the item, in its unit, its `price` buys: one pack where
    /// the pack size is a weight or volume of the item's kind (Jupiter
    /// prices such items by the pack: ₹40 for a 400 g loaf sold by the
    /// gram, so 800 g cost ₹80), else one unit. A variant's price is for
    /// one of that variant.
    pub fn price_quantity(&self) -> Qty {
        let Some(pack) = self.pack_size else { return Qty::ONE };
        let content = crate::numbers::Amount { value: pack.quantity, unit: Some(pack.unit.into()) };
        match content.in_unit(self.unit) {
            (qty, crate::numbers::UnitFit::Exact) if !qty.is_zero() => qty,
            _ => Qty::ONE,
        }
    }
}

/// One store's catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub store: CatalogStore,
    pub items: Vec<Item>,
}

/// A catalog that does not match the format: `path` names the bad field
/// (`items[3].variants[0].price`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CatalogError {
    pub path: String,
    pub message: String,
}

impl Catalog {
    /// Parses and checks a catalog; the error names the path of the bad field.
    pub fn from_json(text: &str) -> Result<Catalog, CatalogError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let catalog: Catalog = serde_path_to_error::deserialize(de).map_err(|e| CatalogError {
            path: match e.path().to_string() {
                p if p == "." => "$".into(),
                p => p,
            },
            message: e.inner().to_string(),
        })?;
        catalog.check()?;
        Ok(catalog)
    }

    /// What serde cannot say: unique ids, non-empty names, defaults that
    /// name an option of their group.
    pub fn check(&self) -> Result<(), CatalogError> {
        let bad = |path: String, message: &str| Err(CatalogError { path, message: message.into() });
        if self.store.id.trim().is_empty() {
            return bad("store.id".into(), "must not be empty");
        }
        let mut ids = std::collections::HashSet::new();
        for (i, item) in self.items.iter().enumerate() {
            if item.id.trim().is_empty() {
                return bad(format!("items[{i}].id"), "must not be empty");
            }
            if !ids.insert(item.id.as_str()) {
                return bad(format!("items[{i}].id"), "is not unique in the catalog");
            }
            if item.name.trim().is_empty() {
                return bad(format!("items[{i}].name"), "must not be empty");
            }
            if item.price.0 < 0 {
                return bad(format!("items[{i}].price"), "must not be negative");
            }
            if item.pack_size.is_some_and(|p| p.quantity.is_zero()) {
                return bad(format!("items[{i}].pack_size.quantity"), "must be more than 0");
            }
            let mut variant_ids = std::collections::HashSet::new();
            for (v, variant) in item.variants.iter().enumerate() {
                if !variant_ids.insert(variant.id.as_str()) {
                    return bad(format!("items[{i}].variants[{v}].id"), "is not unique in the item");
                }
                if variant.price.0 < 0 {
                    return bad(format!("items[{i}].variants[{v}].price"), "must not be negative");
                }
            }
            for (g, group) in item.modifier_groups.iter().enumerate() {
                if group.options.is_empty() {
                    return bad(format!("items[{i}].modifier_groups[{g}].options"), "must not be empty");
                }
                if let Some(default) = &group.default
                    && !group.options.iter().any(|o| &o.id == default)
                {
                    return bad(format!("items[{i}].modifier_groups[{g}].default"), "names no option of the group");
                }
            }
        }
        Ok(())
    }

    pub fn item(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MISAL: &str = r#"{
      "store": {"id": "7", "name": "Godavari Misal House", "language": "mr"},
      "items": [
        {"id": "7001", "name": "Misal Pav", "aliases": ["misal paav", "मिसळ पाव"], "price": 90, "unit": "plate",
         "category": "Misal", "available": true,
         "variants": [{"id": "half", "name": "Half plate", "aliases": ["half", "आधी"], "price": 55}],
         "modifier_groups": [{"id": "spice", "name": "Spice", "exclusive": true, "default": "medium",
           "options": [{"id": "medium", "name": "Medium", "price_delta": 0},
                       {"id": "kam", "name": "Less spicy", "aliases": ["kam teekha"], "price_delta": 0}]}]},
        {"id": "7002", "name": "Cutting Chai", "price": 12.5, "unit": "piece", "category": "Drinks", "available": true}
      ]
    }"#;

    #[test]
    fn a_catalog_round_trips_with_prices_in_paise() {
        let catalog = Catalog::from_json(MISAL).expect("valid");
        assert_eq!(catalog.items[0].price, Paise(9000));
        assert_eq!(catalog.items[1].price, Paise(1250));
        assert_eq!(catalog.store.language, Lang::Mr);
        let again = Catalog::from_json(&serde_json::to_string(&catalog).unwrap()).expect("round trip");
        assert_eq!(again, catalog);
    }

    #[test]
    fn a_weight_or_volume_pack_size_is_what_the_price_buys() {
        let item = |unit: &str, pack: &str| {
            let json = format!(
                r#"{{"id": "x", "name": "X", "price": 40, "unit": "{unit}", "category": "C", "available": true{pack}}}"#
            );
            serde_json::from_str::<Item>(&json).expect("item")
        };
        assert_eq!(item("g", r#", "pack_size": {"quantity": 400, "unit": "g"}"#).price_quantity(), Qty::whole(400));
        assert_eq!(item("kg", r#", "pack_size": {"quantity": 5, "unit": "kg"}"#).price_quantity(), Qty::whole(5));
        assert_eq!(item("ml", r#", "pack_size": {"quantity": 1, "unit": "litre"}"#).price_quantity(), Qty::whole(1000));
        assert_eq!(item("pack", r#", "pack_size": {"quantity": 6, "unit": "piece"}"#).price_quantity(), Qty::ONE);
        assert_eq!(item("plate", "").price_quantity(), Qty::ONE);
    }

    #[test]
    fn a_bad_field_is_named_by_its_path() {
        let bad = MISAL.replace(r#""price": 55"#, r#""price": "55""#);
        let e = Catalog::from_json(&bad).unwrap_err();
        assert_eq!(e.path, "items[0].variants[0].price", "{e}");
        let bad = MISAL.replace(r#""unit": "plate""#, r#""unit": "bowl""#);
        assert_eq!(Catalog::from_json(&bad).unwrap_err().path, "items[0].unit");
        let bad = MISAL.replace(r#""default": "medium""#, r#""default": "hot""#);
        assert_eq!(Catalog::from_json(&bad).unwrap_err().path, "items[0].modifier_groups[0].default");
        let bad = MISAL.replace(r#""id": "7002""#, r#""id": "7001""#);
        assert_eq!(Catalog::from_json(&bad).unwrap_err().path, "items[1].id");
    }
}
