//! Voice ordering: catalog-grounded order understanding and the ordering
//! dialog. Pure and offline: text in, cart operations and text out; speech
//! and the telephony around it live in the server.

pub mod catalog;
pub mod normalize;
pub mod numbers;

pub use catalog::{
    Catalog, CatalogError, CatalogStore, Item, Lang, ModifierGroup, ModifierOption, Paise, Unit, Variant,
};
pub use numbers::{Amount, Qty, SpokenUnit};
