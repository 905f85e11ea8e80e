//! Voice ordering: the catalog format and catalog-grounded order
//! understanding (text in, cart operations out), pure and offline. The
//! ordering dialog, speech and the telephony around them are still to come
//! (issue 11); the server will keep each call's cart in the store.

pub mod cart;
pub mod catalog;
pub mod lexicon;
pub mod matcher;
pub mod normalize;
pub mod numbers;
pub mod understand;

pub use cart::{Cart, CartLine};
pub use catalog::{
    Catalog, CatalogError, CatalogStore, Item, Lang, ModifierGroup, ModifierOption, Paise, Unit, Variant,
};
pub use lexicon::AskTopic;
pub use numbers::{Amount, Qty, SpokenUnit};
pub use understand::{
    Candidate, CartOp, Context, ItemRef, ModifierChoice, Script, Subject, Understander, Understanding,
};
