//! A second opinion for words the parser could not resolve: an LLM behind
//! an OpenAI-compatible chat endpoint, or the user's NLU service. Both are
//! asked for cart operations *by catalog id*, and both are distrusted: this
//! module builds the LLM's prompt and checks every answer against the
//! catalog before it can become an [`Understanding`].
//!
//! The checks, all pure:
//! - every item id exists; a variant belongs to its item; a modifier's group
//!   belongs to its item and its option to that group; an exclusive group
//!   gets one option at most;
//! - quantities are positive, in the item's unit, with at most three
//!   decimals, and no more than [`max_quantity`];
//! - the answer names no price anywhere (`price`, `total`, `amount`, …):
//!   prices come from the catalog only;
//! - one invented id, a price or a malformed operation makes the whole
//!   answer untrusted ([`Rejection`]); operations of a kind we do not know
//!   are dropped; an answer with nothing left is [`Rejection::Nothing`].
//!
//! Accepted operations carry a lowered confidence ([`Source::cap`]), so that
//! the dialog confirms what a fallback understood rather than acting on it
//! as on the parser's exact matches.

use serde::Deserialize;
use serde_json::Value;

use crate::catalog::{Catalog, Item, Unit};
use crate::lexicon::AskTopic;
use crate::normalize::tokenize;
use crate::numbers::{Amount, Qty};
use crate::understand::{CartOp, Context, ItemRef, ModifierChoice, Subject, Understanding, detect_language};

/// Who proposed the operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Llm,
    Nlu,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Llm => "llm",
            Source::Nlu => "nlu",
        }
    }

    /// The highest confidence an operation from this source carries (the
    /// source's own confidence scales it down further). The parser's exact
    /// alias matches score 1.0; the dialog confirms anything much lower.
    pub fn cap(self) -> f32 {
        match self {
            Source::Llm => 0.6,
            Source::Nlu => 0.7,
        }
    }
}

/// One operation as a fallback proposed it, before any check. The LLM's
/// answer is a list of these (`{"ops": [...]}`, see [`llm_prompt`]); the
/// NLU service's intent and entities are turned into these by the server.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// add, remove, set_quantity, reduce, set_variant, set_modifier,
    /// not_in_catalog, clear, confirm, reject, cancel, ask.
    pub op: String,
    #[serde(default)]
    pub item_id: Option<String>,
    /// In the item's unit (0.5 for half a kilo of an item sold by the kg).
    #[serde(default)]
    pub quantity: Option<f64>,
    #[serde(default)]
    pub variant_id: Option<String>,
    #[serde(default)]
    pub modifiers: Vec<ModifierChoice>,
    /// The caller's words this operation came from.
    #[serde(default)]
    pub heard: Option<String>,
    /// For `ask`: price, menu, delivery_time, human, repeat, total.
    #[serde(default)]
    pub topic: Option<String>,
    /// The source's own confidence, 0..1.
    #[serde(default)]
    pub confidence: Option<f64>,
}

/// Why an answer was not used. Carries ids the answer named (catalog ids
/// or invented ones), never the caller's words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("the answer is not the JSON asked for: {0}")]
    Malformed(String),
    #[error("the answer names a price ({0}); prices come from the catalog only")]
    Price(String),
    #[error("item {0} is not in the catalog")]
    UnknownItem(String),
    #[error("variant {variant_id} is not a variant of item {item_id}")]
    UnknownVariant { item_id: String, variant_id: String },
    #[error("modifier {group_id}/{option_id} is not an option of item {item_id}")]
    UnknownModifier { item_id: String, group_id: String, option_id: String },
    #[error("more than one option of exclusive group {group_id} of item {item_id}")]
    ExclusiveGroup { item_id: String, group_id: String },
    #[error("quantity {quantity} of item {item_id} is not between 0 and {max} (at most 3 decimals)")]
    Quantity { item_id: String, quantity: f64, max: f64 },
    #[error("no operation could be used")]
    Nothing,
}

impl Rejection {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::Price(_) => "price",
            Rejection::UnknownItem(_) => "unknown_item",
            Rejection::UnknownVariant { .. } => "unknown_variant",
            Rejection::UnknownModifier { .. } => "unknown_modifier",
            Rejection::ExclusiveGroup { .. } => "exclusive_group",
            Rejection::Quantity { .. } => "quantity",
            Rejection::Nothing => "nothing",
        }
    }
}

/// The most of one item a single operation may ask for, in its unit: room
/// for a party's order, not for a misheard "five thousand".
pub fn max_quantity(unit: Unit) -> Qty {
    match unit {
        Unit::G | Unit::Ml => Qty::whole(50_000),
        Unit::Kg | Unit::Litre => Qty::whole(50),
        Unit::Piece | Unit::Plate | Unit::Pack | Unit::Dozen => Qty::whole(100),
    }
}

/// The two messages of the LLM request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub system: String,
    pub user: String,
}

/// Keys that carry money; an answer using any of them is rejected.
const PRICE_KEYS: &[&str] =
    &["price", "prices", "unit_price", "price_delta", "total", "line_total", "amount", "cost", "mrp", "rate"];

/// Longest `heard` or `not_in_catalog` text kept.
const MAX_HEARD_CHARS: usize = 80;

/// The LLM's instructions: the store's catalog by id (names, aliases,
/// units, variants, modifier options; never prices), the line being talked
/// about, and the caller's words as a JSON string.
pub fn llm_prompt(catalog: &Catalog, context: &Context, utterance: &str) -> Prompt {
    let mut system = String::from(
        "You read what a caller said to a food and grocery shop in India (Hindi, Marathi, English or \
         Hinglish, as a speech recogniser wrote it) and turn it into shopping-cart operations on the \
         shop's catalog below.\n\
         Answer with one JSON object and nothing else: {\"ops\": [ ... ]}. Each operation is an object:\n\
         - {\"op\": \"add\", \"item_id\", \"quantity\"?, \"variant_id\"?, \"modifiers\"?: [{\"group_id\", \"option_id\"}], \"heard\"}\n\
         - {\"op\": \"remove\", \"item_id\"?, \"heard\"?}\n\
         - {\"op\": \"set_quantity\" or \"reduce\", \"item_id\"?, \"quantity\"}\n\
         - {\"op\": \"set_variant\", \"item_id\"?, \"variant_id\"}\n\
         - {\"op\": \"set_modifier\", \"item_id\"?, \"modifiers\": [{\"group_id\", \"option_id\"}]}\n\
         - {\"op\": \"not_in_catalog\", \"heard\", \"quantity\"?} for something the shop does not sell\n\
         - {\"op\": \"clear\"}, {\"op\": \"confirm\"}, {\"op\": \"reject\"}, {\"op\": \"cancel\"}\n\
         - {\"op\": \"ask\", \"topic\": \"price\" | \"menu\" | \"delivery_time\" | \"human\" | \"repeat\" | \"total\", \"item_id\"?}\n\
         Rules: use only ids from the catalog, exactly as written; never invent an id. Quantities are \
         numbers in the item's unit (0.5 for half a kilo of an item sold by the kg; 12 for a dozen of an \
         item sold by the piece). Leave out item_id to mean the line being talked about. Never state a \
         price or total. \"heard\" is the caller's words for that operation. Answer {\"ops\": []} when \
         nothing fits.\n\nCatalog (id | name | other names | unit | variants | modifiers):\n",
    );
    for item in &catalog.items {
        system.push_str(&catalog_line(item));
        system.push('\n');
    }
    let mut user = String::new();
    if let Some(item) = context.focus.as_deref().and_then(|id| catalog.item(id)) {
        user.push_str(&format!("Line being talked about: {} {}\n", item.id, item.name));
    }
    user.push_str("Caller said (JSON string): ");
    user.push_str(&Value::String(utterance.to_string()).to_string());
    Prompt { system, user }
}

fn catalog_line(item: &Item) -> String {
    let named = |id: &str, name: &str, aliases: &[String]| {
        if aliases.is_empty() { format!("{id}={name}") } else { format!("{id}={name} ({})", aliases.join(", ")) }
    };
    let variants: Vec<String> = item.variants.iter().map(|v| named(&v.id, &v.name, &v.aliases)).collect();
    let groups: Vec<String> = item
        .modifier_groups
        .iter()
        .map(|g| {
            let options: Vec<String> = g.options.iter().map(|o| named(&o.id, &o.name, &o.aliases)).collect();
            let kind = if g.exclusive { "one of" } else { "any of" };
            format!("{} {} ({kind}): {}", g.id, g.name, options.join(", "))
        })
        .collect();
    let unit = serde_json::to_value(item.unit).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    format!(
        "{} | {}{} | {} | {} | {} | {}",
        item.id,
        item.name,
        if item.available { "" } else { " (unavailable today)" },
        item.aliases.join(", "),
        unit,
        variants.join("; "),
        groups.join("; ")
    )
}

/// Reads the LLM's answer (`choices[0].message.content`): one JSON object
/// `{"ops": [...]}` (a Markdown code fence around it is tolerated). Any
/// price-like key anywhere rejects it; operations of an unknown kind are
/// dropped here.
pub fn parse_llm_answer(content: &str) -> Result<Vec<Proposal>, Rejection> {
    let text = content.trim();
    let text = text
        .strip_prefix("```json")
        .or_else(|| text.strip_prefix("```"))
        .and_then(|t| t.strip_suffix("```"))
        .unwrap_or(text)
        .trim();
    let answer: Value = serde_json::from_str(text).map_err(|e| Rejection::Malformed(format!("not JSON: {e}")))?;
    if let Some(key) = price_key(&answer) {
        return Err(Rejection::Price(key));
    }
    let ops = match &answer {
        Value::Object(fields) => match fields.get("ops") {
            Some(Value::Array(ops)) => ops,
            _ => return Err(Rejection::Malformed("no \"ops\" list".into())),
        },
        _ => return Err(Rejection::Malformed("not a JSON object".into())),
    };
    let mut proposals = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
        if !KNOWN_OPS.contains(&kind) {
            continue;
        }
        let proposal: Proposal =
            serde_json::from_value(op.clone()).map_err(|e| Rejection::Malformed(format!("ops[{i}]: {e}")))?;
        proposals.push(proposal);
    }
    Ok(proposals)
}

const KNOWN_OPS: &[&str] = &[
    "add",
    "remove",
    "set_quantity",
    "reduce",
    "set_variant",
    "set_modifier",
    "not_in_catalog",
    "clear",
    "confirm",
    "reject",
    "cancel",
    "ask",
];

/// The first price-like key anywhere in `value`.
fn price_key(value: &Value) -> Option<String> {
    match value {
        Value::Object(fields) => fields.iter().find_map(|(key, v)| {
            if PRICE_KEYS.contains(&key.to_ascii_lowercase().as_str()) { Some(key.clone()) } else { price_key(v) }
        }),
        Value::Array(items) => items.iter().find_map(price_key),
        _ => None,
    }
}

/// Checks proposals against the catalog and turns them into an
/// [`Understanding`] (see the module doc for the rules).
pub fn validate(
    proposals: &[Proposal],
    catalog: &Catalog,
    context: &Context,
    utterance: &str,
    source: Source,
) -> Result<Understanding, Rejection> {
    let heard_in_utterance = normalized(utterance);
    let mut ops = Vec::new();
    for proposal in proposals {
        if let Some(op) = checked_op(proposal, catalog, context, &heard_in_utterance, source)? {
            ops.push(op);
        }
    }
    if ops.is_empty() {
        return Err(Rejection::Nothing);
    }
    let (language, script) = detect_language(&tokenize(utterance));
    Ok(Understanding { ops, language, script, unmatched_words: Vec::new() })
}

fn normalized(text: &str) -> String {
    tokenize(text).into_iter().map(|t| t.text).collect::<Vec<_>>().join(" ")
}

fn checked_op(
    p: &Proposal,
    catalog: &Catalog,
    context: &Context,
    utterance: &str,
    source: Source,
) -> Result<Option<CartOp>, Rejection> {
    let confidence = source.cap() * p.confidence.map_or(1.0, |c| c.clamp(0.0, 1.0) as f32);
    // The words heard, kept only when the caller said them.
    let heard = p
        .heard
        .as_deref()
        .map(normalized)
        .filter(|h| !h.is_empty() && h.chars().count() <= MAX_HEARD_CHARS && utterance.contains(h.as_str()))
        .unwrap_or_default();
    let item_ref =
        |item: &Item| ItemRef { item_id: item.id.clone(), confidence, alternatives: Vec::new(), heard: heard.clone() };
    let named_item = || -> Result<Option<&Item>, Rejection> {
        match &p.item_id {
            Some(id) => catalog.item(id).map(Some).ok_or_else(|| Rejection::UnknownItem(id.clone())),
            None => Ok(None),
        }
    };
    // An operation on a line: the item named, else the line being talked
    // about (by id when the dialog said which).
    let subject = || -> Result<(Subject, Option<&Item>), Rejection> {
        Ok(match named_item()? {
            Some(item) => (Subject::Item(item_ref(item)), Some(item)),
            None => match context.focus.as_deref().and_then(|id| catalog.item(id)) {
                Some(item) => (Subject::Item(item_ref(item)), Some(item)),
                None => (Subject::Focus, None),
            },
        })
    };
    let malformed = |what: &str| Rejection::Malformed(format!("{}: {what}", p.op));
    let op = match p.op.as_str() {
        "add" => {
            let item = named_item()?.ok_or_else(|| malformed("no item_id"))?;
            CartOp::Add {
                item: item_ref(item),
                quantity: p.quantity.map(|q| quantity(item, q)).transpose()?,
                variant_id: p.variant_id.as_deref().map(|v| variant(item, v)).transpose()?,
                modifiers: modifiers(item, &p.modifiers)?,
            }
        }
        "remove" => CartOp::Remove { subject: subject()?.0 },
        "set_quantity" | "reduce" => {
            let (subject, item) = subject()?;
            let q = p.quantity.ok_or_else(|| malformed("no quantity"))?;
            let quantity = match item {
                Some(item) => quantity(item, q)?,
                None => Qty::from_f64(q)
                    .filter(|q| !q.is_zero() && *q <= Qty::whole(100))
                    .ok_or_else(|| Rejection::Quantity { item_id: String::new(), quantity: q, max: 100.0 })?,
            };
            if p.op == "reduce" {
                CartOp::Reduce { subject, quantity }
            } else {
                CartOp::SetQuantity { subject, quantity }
            }
        }
        "set_variant" => {
            let (subject, item) = subject()?;
            let item = item.ok_or_else(|| malformed("no item to check the variant against"))?;
            let variant_id = variant(item, p.variant_id.as_deref().ok_or_else(|| malformed("no variant_id"))?)?;
            CartOp::SetVariant { subject, variant_id }
        }
        "set_modifier" => {
            let (subject, item) = subject()?;
            let item = item.ok_or_else(|| malformed("no item to check the modifier against"))?;
            let mut chosen = modifiers(item, &p.modifiers)?;
            if chosen.len() != 1 {
                return Err(malformed("one modifier per set_modifier"));
            }
            CartOp::SetModifier { subject, modifier: chosen.remove(0) }
        }
        "not_in_catalog" => {
            let heard = p.heard.as_deref().map(normalized).unwrap_or_default();
            if heard.is_empty() || heard.chars().count() > MAX_HEARD_CHARS {
                return Err(malformed("no heard words"));
            }
            let amount = match p.quantity {
                Some(q) => Some(Amount {
                    value: Qty::from_f64(q)
                        .filter(|q| !q.is_zero() && *q <= Qty::whole(100))
                        .ok_or_else(|| Rejection::Quantity { item_id: String::new(), quantity: q, max: 100.0 })?,
                    unit: None,
                }),
                None => None,
            };
            CartOp::NotInCatalog { heard, amount, removal: false }
        }
        "clear" => CartOp::Clear,
        "confirm" => CartOp::Confirm,
        "reject" => CartOp::Reject,
        "cancel" => CartOp::Cancel,
        "ask" => {
            let Some(topic) =
                p.topic.as_deref().and_then(|t| serde_json::from_value::<AskTopic>(Value::String(t.to_string())).ok())
            else {
                return Ok(None);
            };
            CartOp::Ask { topic, item: named_item()?.map(item_ref) }
        }
        _ => return Ok(None),
    };
    Ok(Some(op))
}

fn quantity(item: &Item, value: f64) -> Result<Qty, Rejection> {
    let max = max_quantity(item.unit);
    Qty::from_f64(value).filter(|q| !q.is_zero() && *q <= max).ok_or_else(|| Rejection::Quantity {
        item_id: item.id.clone(),
        quantity: value,
        max: max.as_f64(),
    })
}

fn variant(item: &Item, variant_id: &str) -> Result<String, Rejection> {
    item.variants
        .iter()
        .find(|v| v.id == variant_id)
        .map(|v| v.id.clone())
        .ok_or_else(|| Rejection::UnknownVariant { item_id: item.id.clone(), variant_id: variant_id.to_string() })
}

fn modifiers(item: &Item, chosen: &[ModifierChoice]) -> Result<Vec<ModifierChoice>, Rejection> {
    let mut out: Vec<ModifierChoice> = Vec::new();
    for choice in chosen {
        let group = item.modifier_groups.iter().find(|g| g.id == choice.group_id);
        let known = group.is_some_and(|g| g.options.iter().any(|o| o.id == choice.option_id));
        if !known {
            return Err(Rejection::UnknownModifier {
                item_id: item.id.clone(),
                group_id: choice.group_id.clone(),
                option_id: choice.option_id.clone(),
            });
        }
        if out.contains(choice) {
            continue;
        }
        if group.is_some_and(|g| g.exclusive) && out.iter().any(|c| c.group_id == choice.group_id) {
            return Err(Rejection::ExclusiveGroup { item_id: item.id.clone(), group_id: choice.group_id.clone() });
        }
        out.push(choice.clone());
    }
    Ok(out)
}

/// [`parse_llm_answer`] then [`validate`].
pub fn understand_llm_answer(
    content: &str,
    catalog: &Catalog,
    context: &Context,
    utterance: &str,
) -> Result<Understanding, Rejection> {
    validate(&parse_llm_answer(content)?, catalog, context, utterance, Source::Llm)
}
