//! What the dialog needs from the world, as one trait. The server
//! implements it over Jupiter and the job queue; `voice dialog --catalog`
//! over one catalog file and a local orders file; tests in memory.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Lang, Paise};
use crate::numbers::Qty;
use crate::understand::{Context, ModifierChoice, Understanding};

/// A store the caller can order from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreOffer {
    pub id: String,
    pub name: String,
    /// Other names callers use ("godavari", "गोदावरी").
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Distance from the caller's delivery address, when known.
    #[serde(default)]
    pub distance_km: Option<f64>,
    pub open: bool,
}

/// The caller as Jupiter knows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub name: Option<String>,
    pub language: Option<Lang>,
    /// Saved delivery addresses, the default first.
    pub addresses: Vec<Address>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub id: Option<String>,
    /// "Home", "Office".
    pub label: Option<String>,
    pub text: String,
    pub landmark: Option<String>,
}

/// One priced line of an order (or of the cart read back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    pub item_id: String,
    pub name: String,
    pub variant_id: Option<String>,
    pub quantity: Qty,
    pub modifiers: Vec<ModifierChoice>,
    /// Variant (or item) price plus the modifiers' deltas, as the catalog
    /// states it: per one of the variant, per unit of the item, or per
    /// pack for an item with a weight or volume `pack_size`. `line_total`
    /// is the line's price (see the pricing in docs/voice.md).
    pub unit_price: Paise,
    pub line_total: Paise,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkChannel {
    Sms,
    Whatsapp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Payment {
    CashOnDelivery,
    UpiLink { via: LinkChannel },
}

/// What the dialog asks the world to place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRequest {
    /// The same for every retry of the same order in the same call
    /// (`{call_id}:{n}`, n = orders placed before it in the call).
    pub idempotency_key: String,
    pub store_id: String,
    pub lines: Vec<OrderLine>,
    pub total: Paise,
    /// `None` in [`super::Mode::CatalogOnly`].
    pub payment: Option<Payment>,
    pub address: Option<Address>,
    pub language: Lang,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlacedOrder {
    pub order_id: String,
    /// What the caller is told ("order number 1042").
    pub number: String,
    pub store_id: String,
    pub lines: Vec<OrderLine>,
    pub total: Paise,
    pub payment: Option<Payment>,
    #[serde(default)]
    pub cancelled: bool,
}

/// A port that could not answer. `retryable` separates "Jupiter is down,
/// say so and offer the order desk" from "Jupiter refused this".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PortError {
    pub message: String,
    pub retryable: bool,
}

#[async_trait]
pub trait Ports: Send + Sync {
    /// Open stores the caller can order from, nearest first.
    async fn stores(&self) -> Result<Vec<StoreOffer>, PortError>;
    async fn catalog(&self, store_id: &str) -> Result<Arc<Catalog>, PortError>;
    /// The caller's profile; `None` when there is none to use (unknown
    /// caller, or [`super::Mode::CatalogOnly`]).
    async fn profile(&self) -> Result<Option<Profile>, PortError>;
    /// Places the order (and starts the vendor ladder). Must return the
    /// same order for the same idempotency key.
    async fn place_order(&self, order: &OrderRequest) -> Result<PlacedOrder, PortError>;
    async fn cancel_order(&self, order: &PlacedOrder) -> Result<(), PortError>;
    async fn send_payment_link(&self, order: &PlacedOrder, via: LinkChannel) -> Result<(), PortError>;
    /// A second opinion (LLM or NLU service) for words the parser could not
    /// resolve. Its answer is validated against the catalog before it comes
    /// back; `None` when there is no fallback or it had nothing valid.
    async fn fallback(&self, _utterance: &str, _catalog: &Catalog, _context: &Context) -> Option<Understanding> {
        None
    }
}
