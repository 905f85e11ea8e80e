//! The ordering dialog: a state machine that takes one caller input at a
//! time (words, a key, silence, hang-up) and answers with what the agent
//! says next. Its whole state is [`Dialog`], plain serde data, so the server
//! stores it per call after every turn and a restart mid-call resumes the
//! cart. Everything the dialog needs from the outside world (stores,
//! catalogs, the caller's profile, placing an order) comes through
//! [`Ports`], so the dialog itself stays free of I/O and is tested with an
//! in-memory implementation.
//!
//! Steps: greet → choose the store (named, or a dish and the nearest open
//! stores that sell it) → take items, asking only what is missing → read
//! the cart back with its total in Indian number words → confirm (yes/no or
//! 1/2) → delivery address from the profile → payment (cash on delivery or
//! a UPI link) → place the order exactly once → say its number. The call
//! stays open afterwards: the caller may cancel or say goodbye.

mod courtesy;
mod flow;
pub mod local;
pub mod ports;
mod pricing;
pub mod prompts;
pub mod protocol;
mod understanders;

use serde::{Deserialize, Serialize};

pub use ports::{
    Address, LinkChannel, OrderLine, OrderRequest, Payment, PlacedOrder, PortError, Ports, Profile, StoreOffer,
};

use crate::cart::Cart;
use crate::catalog::{Lang, Paise};
use crate::understand::{CartOp, Understanding};

/// What the caller did this turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// The call was just answered (or resumed): the agent speaks first.
    Start,
    /// What the caller said, as text (from an ASR or typed).
    Say(String),
    /// Keys pressed, in order ("1", "2").
    Dtmf(String),
    /// The caller said nothing before the turn timed out.
    Silence,
    /// The caller hung up. The dialog ends; an unplaced cart stays resumable.
    Hangup,
}

/// What the dialog waits for next: tells the speech layer which grammar or
/// keypad answer to expect, and the JSON-lines protocol's `expects`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expects {
    /// Whether to take up the unfinished cart of an earlier call.
    Resume,
    Store,
    Items,
    Quantity,
    /// Which size, or which of two similar items.
    Choice,
    /// Yes or no to the cart read back (1 / 2).
    Confirm,
    /// Yes or no to the delivery address (1 / 2).
    Address,
    /// Cash on delivery or UPI link (1 / 2).
    Payment,
    /// After an order: anything else, cancel, or goodbye.
    AnythingElse,
    /// The dialog has ended.
    Nothing,
}

/// Where the call goes when the dialog hands it over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Handoff {
    /// Connect the caller to the order desk (issue 7's Connect), with why.
    OrderDesk { reason: HandoffReason },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    /// Nothing intelligible twice after the first ask.
    NotUnderstood,
    /// The caller asked for a person.
    Asked,
    /// No delivery address on the profile, or the caller refused it.
    NoAddress,
    /// Placing the order failed; the cart is on the timeline.
    OrderFailed,
    /// A port (Jupiter) was unavailable before anything was placed.
    Unavailable,
}

/// Something that happened in a turn, for the timeline (the server writes
/// each as an event on the order's or the call's timeline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DialogEvent {
    StoreChosen { store_id: String, store_name: String },
    CartChanged { cart: CartView },
    OrderPlaced { order: PlacedOrder },
    OrderFailed { cart: CartView, error: String },
    OrderCancelled { order_id: String },
    PaymentLinkSent { order_id: String, via: LinkChannel },
    PaymentLinkFailed { order_id: String, error: String },
    HandedOff { reason: HandoffReason },
}

/// The cart as the caller hears it and the protocol shows it: each line
/// with its name and price, and the total.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CartView {
    pub store_id: Option<String>,
    pub lines: Vec<OrderLine>,
    pub total: Paise,
}

/// One turn's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// What the agent says, in the caller's language and script.
    pub agent: String,
    pub language: Lang,
    pub expects: Expects,
    pub ended: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<Handoff>,
    /// What the parser made of the caller's words (none for keys, silence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub understood: Option<Understanding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<DialogEvent>,
}

/// How much of the ordering the dialog does itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A phone call: store choice, address and payment from the profile.
    Call,
    /// One fixed store and no customer profile (`voice dialog --catalog`,
    /// `voice eval`): no address or payment step.
    CatalogOnly,
}

/// The whole durable state of one call's dialog. New fields must be
/// `#[serde(default)]` so that a state saved by an older build still loads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dialog {
    /// The call (CallSid, session id): orders are placed with idempotency
    /// keys derived from it, so a retried turn never places a second order.
    pub call_id: String,
    pub mode: Mode,
    /// The language the agent speaks now: starts as the expected one and
    /// follows what the caller actually speaks.
    pub language: Lang,
    pub expects: Expects,
    /// The chosen store, once known.
    pub store: Option<StoreOffer>,
    pub cart: Cart,
    /// Orders placed in this call, cancelled ones included (flagged).
    pub orders: Vec<PlacedOrder>,
    pub ended: bool,
    /// Turns in a row that were empty, silent or not understood: the third
    /// hands the call to the order desk.
    #[serde(default)]
    pub misses: u8,
    /// What the agent still has to ask about the items of the last
    /// utterance (which item, how much), the first one being asked now.
    #[serde(default)]
    pub questions: Vec<Question>,
    /// Stores offered for a dish, in the order the caller picks them by
    /// number.
    #[serde(default)]
    pub offers: Vec<StoreOffer>,
    /// The words that named the dish, applied to the cart of the store the
    /// caller picks.
    #[serde(default)]
    pub dish: Option<String>,
    /// The delivery address offered or accepted for the order being placed.
    #[serde(default)]
    pub address: Option<Address>,
    /// The order whose cancellation waits for the caller's yes.
    #[serde(default)]
    pub cancelling: Option<String>,
    /// The question the agent asked last, asked again when a turn is not
    /// understood.
    #[serde(default)]
    pub question: String,
}

/// Something the dialog must ask before an item can go into the cart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ask", rename_all = "snake_case")]
pub enum Question {
    /// Which of these items (ids, in the order offered) the caller meant;
    /// `op` is the add to apply with the one chosen.
    Choice { candidates: Vec<String>, op: CartOp },
    /// How much of an item sold by weight or volume; `op` is its add.
    Quantity { op: CartOp },
}

impl Dialog {
    /// A new call. `store` is set when the store is already known (one
    /// catalog, or a store-specific number); `language` is the caller's
    /// expected language.
    pub fn new(call_id: impl Into<String>, mode: Mode, language: Lang, store: Option<StoreOffer>) -> Dialog {
        Dialog {
            call_id: call_id.into(),
            mode,
            language,
            expects: if store.is_some() { Expects::Items } else { Expects::Store },
            store,
            cart: Cart::default(),
            orders: Vec::new(),
            ended: false,
            misses: 0,
            questions: Vec::new(),
            offers: Vec::new(),
            dish: None,
            address: None,
            cancelling: None,
            question: String::new(),
        }
    }

    /// A new call from a caller whose earlier call (`earlier`, dropped
    /// within the last 30 minutes) left a cart unplaced: the agent's first
    /// turn offers it back.
    pub fn resuming(call_id: impl Into<String>, earlier: &Dialog) -> Dialog {
        let mut dialog = Dialog::new(call_id, earlier.mode, earlier.language, earlier.store.clone());
        dialog.cart = earlier.cart.clone();
        dialog.expects = Expects::Resume;
        dialog
    }

    /// Whether this dialog, were the caller to drop now, leaves a cart worth
    /// offering back on their next call: one with lines not yet placed (a
    /// placed order empties the cart).
    pub fn is_resumable(&self) -> bool {
        self.store.is_some() && !self.cart.lines.is_empty()
    }

    /// One turn. Never fails: a port error becomes what the agent says (and
    /// a handoff to the order desk when nothing can go on).
    pub async fn turn(&mut self, input: Input, ports: &dyn Ports) -> Reply {
        let mut turn = flow::Turn::default();
        let agent = flow::step(self, input, ports, &mut turn).await;
        Reply {
            agent,
            language: self.language,
            expects: self.expects,
            ended: self.ended,
            handoff: turn.handoff,
            understood: turn.understood,
            events: turn.events,
        }
    }

    /// The cart priced against the store's catalog.
    pub fn cart_view(&self, catalog: &crate::catalog::Catalog) -> CartView {
        pricing::view(self.store.as_ref().map(|s| s.id.clone()), &self.cart, catalog)
    }
}
