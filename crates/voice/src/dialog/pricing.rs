//! Pricing the cart from the catalog, and saying its lines.

use crate::cart::{Cart, CartLine};
use crate::catalog::{Catalog, Item, Lang, Paise};
use crate::numbers::Qty;
use crate::spell;

use super::{CartView, OrderLine};

/// The cart priced: unit price = the variant's price (or the item's when
/// no variant was said) plus the chosen modifiers' deltas; line total =
/// unit price × quantity ÷ what that price buys, rounded to the paisa.
/// A variant's price buys one of the variant; an item's price buys one
/// unit, or one pack where the item has a weight or volume `pack_size`
/// (Jupiter prices those by the pack: 500 g of poha sold by the gram at
/// ₹37 a 500 g pack cost ₹37, not 500 × ₹37).
/// A line whose item is no longer in the catalog has no price and is left
/// out (the catalog is the only source of prices).
pub fn view(store_id: Option<String>, cart: &Cart, catalog: &Catalog) -> CartView {
    let lines: Vec<OrderLine> = cart.lines.iter().filter_map(|line| priced(line, catalog)).collect();
    let total = Paise(lines.iter().map(|l| l.line_total.0).sum());
    CartView { store_id, lines, total }
}

fn priced(line: &CartLine, catalog: &Catalog) -> Option<OrderLine> {
    let item = catalog.item(&line.item_id)?;
    let variant = line.variant_id.as_ref().and_then(|v| item.variants.iter().find(|x| &x.id == v));
    let base = variant.map_or(item.price, |v| v.price);
    let deltas: i64 = line
        .modifiers
        .iter()
        .filter_map(|m| {
            let group = item.modifier_groups.iter().find(|g| g.id == m.group_id)?;
            group.options.iter().find(|o| o.id == m.option_id).map(|o| o.price_delta.0)
        })
        .sum();
    let unit_price = Paise(base.0 + deltas);
    let bought = if variant.is_some() { Qty::ONE } else { item.price_quantity() };
    let line_total = Paise(rounded_div(i128::from(unit_price.0) * i128::from(line.quantity.0), i128::from(bought.0)));
    let name = match variant {
        Some(v) if adds_to(&item.name, &v.name) => format!("{} ({})", item.name, v.name),
        Some(_) => item.name.clone(),
        None => item.name.clone(),
    };
    Some(OrderLine {
        item_id: item.id.clone(),
        name,
        variant_id: line.variant_id.clone(),
        quantity: line.quantity,
        modifiers: line.modifiers.clone(),
        unit_price,
        line_total,
    })
}

/// `numerator / denominator` rounded half up (both non-negative; prices
/// and quantities are).
/// Whether a variant's name says more than the item's name already does:
/// "Cutting (half cup)" adds nothing to "Cutting Chai", whose cutting cup it
/// is, so the line is "ek Cutting Chai", not "Cutting Chai (Cutting (half
/// cup))". A bracketed note does not count as saying more.
fn adds_to(item_name: &str, variant_name: &str) -> bool {
    let head = variant_name.split('(').next().unwrap_or(variant_name);
    let item_words: Vec<String> = item_name.split_whitespace().map(str::to_lowercase).collect();
    let head_words: Vec<String> = head.split_whitespace().map(str::to_lowercase).collect();
    head_words.is_empty() || !head_words.iter().all(|w| item_words.contains(w))
}

fn rounded_div(numerator: i128, denominator: i128) -> i64 {
    let denominator = denominator.max(1);
    ((2 * numerator + denominator).div_euclid(2 * denominator)) as i64
}

fn devanagari(text: &str) -> bool {
    text.chars().any(|c| ('\u{0900}'..='\u{097F}').contains(&c))
}

/// A catalog name as the agent says it: in Devanagari for `hi` and `mr`
/// when the catalog has a Devanagari alias, else the catalog's name.
pub fn spoken_name(lang: Lang, name: &str, aliases: &[String]) -> String {
    match lang {
        Lang::Hi | Lang::Mr => aliases.iter().find(|a| devanagari(a)).cloned().unwrap_or_else(|| name.to_string()),
        Lang::HiEn | Lang::En => name.to_string(),
    }
}

pub fn item_name(lang: Lang, item: &Item) -> String {
    spoken_name(lang, &item.name, &item.aliases)
}

/// One cart line read back: "do plate Misal Pav (Half plate, No onion)".
pub fn say_line(lang: Lang, line: &CartLine, catalog: &Catalog) -> Option<String> {
    let item = catalog.item(&line.item_id)?;
    let mut extras: Vec<String> = Vec::new();
    let name = item_name(lang, item);
    if let Some(v) = line.variant_id.as_ref().and_then(|v| item.variants.iter().find(|x| &x.id == v)) {
        let variant = spoken_name(lang, &v.name, &v.aliases);
        if adds_to(&name, &variant) {
            extras.push(variant);
        }
    }
    for m in &line.modifiers {
        let option = item
            .modifier_groups
            .iter()
            .find(|g| g.id == m.group_id)
            .and_then(|g| g.options.iter().find(|o| o.id == m.option_id));
        if let Some(o) = option {
            extras.push(spoken_name(lang, &o.name, &o.aliases));
        }
    }
    let amount = spell::measure(line.quantity, item.unit, lang);
    Some(if extras.is_empty() {
        format!("{amount} {name}")
    } else {
        format!("{amount} {name} ({})", extras.join(", "))
    })
}

/// Every line of the cart read back, and the total in words.
pub fn say_cart(lang: Lang, cart: &Cart, catalog: &Catalog) -> (String, String) {
    let lines: Vec<String> = cart.lines.iter().filter_map(|l| say_line(lang, l, catalog)).collect();
    let total = view(None, cart, catalog).total;
    (super::prompts::list(lang, &lines), spell::rupees(total, lang))
}

#[cfg(test)]
mod names {
    use super::adds_to;

    #[test]
    fn a_variant_is_said_only_when_it_adds_to_the_items_name() {
        assert!(!adds_to("Cutting Chai", "Cutting (half cup)"));
        assert!(adds_to("Misal Pav", "Half plate"));
        assert!(adds_to("चाय", "कटिंग"));
        assert!(!adds_to("Kaju Katli 500g", "500g"));
    }
}
