//! Voice ordering: the catalog format and catalog-grounded order
//! understanding (text in, cart operations out), pure and offline. The ordering
//! dialog (`dialog`) is a durable state machine over them; speech and the
//! telephony around it live in the server.

pub mod cart;
pub mod catalog;
pub mod dialog;
pub mod eval;
pub mod fallback;
pub mod lexicon;
pub mod matcher;
pub mod noise;
pub mod normalize;
pub mod numbers;
pub mod speech;
pub mod spell;
pub mod understand;

pub use cart::{Cart, CartLine};
pub use catalog::{
    Catalog, CatalogError, CatalogStore, Item, Lang, ModifierGroup, ModifierOption, PackSize, Paise, Unit, Variant,
};
pub use lexicon::AskTopic;
pub use noise::AsrNoise;
pub use numbers::{Amount, Qty, SpokenUnit};
pub use understand::{
    Candidate, CartOp, Context, ItemRef, ModifierChoice, Script, Subject, Understander, Understanding,
};
