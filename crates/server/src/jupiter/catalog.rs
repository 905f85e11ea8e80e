//! A store's catalog as Jupiter serves it, turned into the voice catalog
//! format (`mangwale_voice::Catalog`, docs/voice.md): what the ordering
//! dialog understands callers against and `voice catalog --store` prints.

use mangwale_providers::jupiter::{JupiterClient, JupiterError, StoreCatalog};
use mangwale_voice::{
    Catalog, CatalogError, CatalogStore, Item, Lang, ModifierGroup, ModifierOption, PackSize, Paise, Qty, Unit, Variant,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreCatalogError {
    #[error("store {0} not found in Jupiter")]
    NotFound(u64),
    #[error(transparent)]
    Jupiter(#[from] JupiterError),
    /// Jupiter's answer does not fit the catalog format; `path` names the field.
    #[error("Jupiter's catalog of store {store_id} does not fit the catalog format: {error}")]
    Format { store_id: u64, error: CatalogError },
}

/// Reads a store's whole catalog from Jupiter in the voice catalog format.
pub async fn voice_catalog(client: &JupiterClient, store_id: u64) -> Result<Catalog, StoreCatalogError> {
    let catalog = client.store_catalog(store_id).await?.ok_or(StoreCatalogError::NotFound(store_id))?;
    to_voice_catalog(&catalog).map_err(|error| StoreCatalogError::Format { store_id, error })
}

/// Converts Jupiter's catalog. Nothing is guessed: a unit, language or
/// category the format has no place for is an error naming the field.
pub fn to_voice_catalog(catalog: &StoreCatalog) -> Result<Catalog, CatalogError> {
    let bad = |path: String, message: String| CatalogError { path, message };
    let language = match catalog.store.language.as_deref() {
        Some(code) => {
            Lang::from_code(code).ok_or_else(|| bad("store.language".into(), format!("unknown language {code:?}")))?
        }
        None => return Err(bad("store.language".into(), "missing".into())),
    };
    let mut items = Vec::with_capacity(catalog.items.len());
    for (i, entry) in catalog.items.iter().enumerate() {
        let item = &entry.item;
        let unit = match item.unit.as_deref() {
            Some(code) => {
                unit(code).ok_or_else(|| bad(format!("items[{i}].unit"), format!("unknown unit {code:?}")))?
            }
            None => return Err(bad(format!("items[{i}].unit"), "missing".into())),
        };
        let category = item.category.clone().ok_or_else(|| bad(format!("items[{i}].category"), "missing".into()))?;
        items.push(Item {
            id: item.id.to_string(),
            name: item.name.clone(),
            aliases: item.aliases.clone(),
            price: Paise(item.price_paise),
            unit,
            category,
            available: item.available,
            pack_size: item.pack_size.as_deref().and_then(pack_size),
            variants: entry
                .variants
                .iter()
                .map(|v| Variant {
                    id: v.id.clone(),
                    name: v.name.clone(),
                    aliases: v.aliases.clone(),
                    price: Paise(v.price_paise),
                })
                .collect(),
            modifier_groups: entry
                .modifier_groups
                .iter()
                .map(|g| ModifierGroup {
                    id: g.id.clone(),
                    name: g.name.clone(),
                    exclusive: g.exclusive,
                    default: g.default.clone(),
                    options: g
                        .options
                        .iter()
                        .map(|o| ModifierOption {
                            id: o.id.clone(),
                            name: o.name.clone(),
                            aliases: o.aliases.clone(),
                            price_delta: Paise(o.price_delta_paise),
                        })
                        .collect(),
                })
                .collect(),
        });
    }
    let catalog = Catalog {
        store: CatalogStore { id: catalog.store.id.to_string(), name: catalog.store.name.clone(), language },
        items,
    };
    catalog.check()?;
    Ok(catalog)
}

/// Jupiter's units (`l` for litres, as 6amMart writes them) in the format's words.
fn unit(code: &str) -> Option<Unit> {
    match code.trim().to_ascii_lowercase().as_str() {
        "piece" => Some(Unit::Piece),
        "plate" => Some(Unit::Plate),
        "kg" => Some(Unit::Kg),
        "g" => Some(Unit::G),
        "l" | "litre" => Some(Unit::Litre),
        "ml" => Some(Unit::Ml),
        "pack" => Some(Unit::Pack),
        "dozen" => Some(Unit::Dozen),
        _ => None,
    }
}

/// Jupiter's free-text pack size as what one pack holds: a number and a
/// unit ("400 g", "500 ml", "6 pieces", "1 dozen") or a strip of tablets
/// ("strip of 10"). A text that names no such amount ("1 plate (full)", "4
/// x 70 g", "1 bunch", "1 piece (about 500 g)") describes the serving, not
/// contents a caller counts in, and gives no pack size.
fn pack_size(text: &str) -> Option<PackSize> {
    let text = text.trim().to_ascii_lowercase();
    let (number, unit) = match text.strip_prefix("strip of ") {
        Some(count) => (count.trim(), "pieces"),
        None => {
            let split = text.find(|c: char| !c.is_ascii_digit() && c != '.')?;
            (text[..split].trim(), text[split..].trim())
        }
    };
    let unit = match unit {
        "g" | "gm" | "gms" | "gram" | "grams" => Unit::G,
        "kg" | "kgs" | "kilo" => Unit::Kg,
        "ml" => Unit::Ml,
        "l" | "litre" | "litres" | "liter" => Unit::Litre,
        "piece" | "pieces" | "pcs" => Unit::Piece,
        "dozen" => Unit::Dozen,
        _ => return None,
    };
    let quantity = Qty::from_f64(number.parse().ok()?).filter(|q| !q.is_zero())?;
    Some(PackSize { quantity, unit })
}

#[cfg(test)]
mod tests {
    use mangwale_providers::jupiter::{CatalogItem, CatalogStore as JupiterStore, StoreCatalogItem};

    use super::*;

    fn jupiter_catalog(unit: &str, language: Option<&str>) -> StoreCatalog {
        StoreCatalog {
            store: JupiterStore {
                id: 7,
                name: "Godavari Misal House".into(),
                language: language.map(Into::into),
                active: true,
            },
            items: vec![StoreCatalogItem {
                item: CatalogItem {
                    id: 7013,
                    store_id: 7,
                    name: "Buttermilk".into(),
                    aliases: vec!["taak".into()],
                    price_paise: 2000,
                    unit: Some(unit.into()),
                    pack_size: Some("1 glass".into()),
                    available: true,
                    category: Some("Beverages".into()),
                },
                variants: Vec::new(),
                modifier_groups: Vec::new(),
            }],
        }
    }

    #[test]
    fn units_and_languages_map_and_unknown_ones_name_their_field() {
        let catalog = to_voice_catalog(&jupiter_catalog("l", Some("hinglish"))).unwrap();
        assert_eq!((catalog.items[0].unit, catalog.store.language), (Unit::Litre, Lang::HiEn));
        assert_eq!(catalog.items[0].id, "7013");
        assert_eq!(to_voice_catalog(&jupiter_catalog("bowl", Some("mr"))).unwrap_err().path, "items[0].unit");
        assert_eq!(to_voice_catalog(&jupiter_catalog("kg", Some("gu"))).unwrap_err().path, "store.language");
        assert_eq!(to_voice_catalog(&jupiter_catalog("kg", None)).unwrap_err().path, "store.language");
    }

    #[test]
    fn pack_sizes_that_say_an_amount_are_kept_and_servings_are_not() {
        let pack = |quantity: u64, unit| Some(PackSize { quantity: Qty::whole(quantity), unit });
        assert_eq!(pack_size("400 g"), pack(400, Unit::G));
        assert_eq!(pack_size("500 ml"), pack(500, Unit::Ml));
        assert_eq!(pack_size("1 l"), pack(1, Unit::Litre));
        assert_eq!(pack_size("5 kg"), pack(5, Unit::Kg));
        assert_eq!(pack_size("6 pieces"), pack(6, Unit::Piece));
        assert_eq!(pack_size("1 dozen"), pack(1, Unit::Dozen));
        assert_eq!(pack_size("strip of 10"), pack(10, Unit::Piece));
        for serving in ["1 plate (full)", "4 x 70 g", "1 bunch", "1 piece (about 500 g)", "1 glass", "0 g", ""] {
            assert_eq!(pack_size(serving), None, "{serving}");
        }
        let catalog = to_voice_catalog(&jupiter_catalog("l", Some("mr"))).unwrap();
        assert_eq!(catalog.items[0].pack_size, None, "1 glass is a serving");
    }
}
