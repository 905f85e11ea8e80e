//! A cart that understood operations apply to, in the shape of the
//! development set's expected lines (item, variant, quantity, modifiers).

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::numbers::Qty;
use crate::understand::{CartOp, Context, ItemRef, ModifierChoice, Subject};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub item_id: String,
    pub variant_id: Option<String>,
    pub quantity: Qty,
    /// Sorted, so that equal lines compare equal.
    pub modifiers: Vec<ModifierChoice>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    pub lines: Vec<CartLine>,
    /// The line last added or changed: what "do nahi teen" refers to.
    #[serde(default)]
    pub focus: Option<usize>,
}

impl Cart {
    /// The context the next utterance is understood in.
    pub fn context(&self) -> Context {
        Context { focus: self.focus.and_then(|i| self.lines.get(i)).map(|l| l.item_id.clone()) }
    }

    /// The line a subject names. An ambiguous item ("vada": batata vada or
    /// vada pav) is the one of its candidates that is in the cart.
    fn line_of(&self, subject: &Subject) -> Option<usize> {
        match subject {
            Subject::Focus => self.focus.filter(|i| *i < self.lines.len()),
            Subject::Item(item) => self.item_in_cart(item).and_then(|id| {
                self.focus
                    .filter(|i| self.lines.get(*i).is_some_and(|l| l.item_id == id))
                    .or_else(|| self.lines.iter().rposition(|l| l.item_id == id))
            }),
        }
    }

    fn item_in_cart<'a>(&self, item: &'a ItemRef) -> Option<&'a str> {
        std::iter::once(item.item_id.as_str())
            .chain(item.alternatives.iter().map(|a| a.item_id.as_str()))
            .find(|id| self.lines.iter().any(|l| l.item_id == *id))
    }

    /// Applies one operation; returns whether the cart changed. Operations
    /// that are not about the cart's lines (confirm, ask, not in catalog)
    /// change nothing; cancel empties it. A quantity that was not said is
    /// one. Setting the quantity, variant or a modifier of an item not in
    /// the cart adds it.
    pub fn apply(&mut self, catalog: &Catalog, op: &CartOp) -> bool {
        match op {
            // An unavailable item is understood (the dialog says so) but never
            // becomes a line.
            CartOp::Add { item, .. } if !available(catalog, &item.item_id) => false,
            CartOp::Add { item, quantity, variant_id, modifiers } => {
                self.add(&item.item_id, quantity.unwrap_or(Qty::ONE), variant_id.clone(), modifiers.clone())
            }
            CartOp::Remove { subject } => {
                let before = self.lines.len();
                match subject {
                    Subject::Item(item) => {
                        if let Some(id) = self.item_in_cart(item) {
                            let id = id.to_string();
                            self.lines.retain(|l| l.item_id != id);
                        }
                    }
                    Subject::Focus => {
                        if let Some(i) = self.line_of(subject) {
                            self.lines.remove(i);
                        }
                    }
                }
                if self.lines.len() != before {
                    self.focus = self.lines.len().checked_sub(1);
                }
                self.lines.len() != before
            }
            CartOp::SetQuantity { subject, quantity } => match self.line_of(subject) {
                Some(i) if quantity.is_zero() => {
                    self.lines.remove(i);
                    self.focus = self.lines.len().checked_sub(1);
                    true
                }
                Some(i) => {
                    self.lines[i].quantity = *quantity;
                    self.focus = Some(i);
                    true
                }
                None if quantity.is_zero() => false,
                None => self.add_for(catalog, subject, Some(*quantity), None, None),
            },
            CartOp::Reduce { subject, quantity } => match self.line_of(subject) {
                Some(i) if self.lines[i].quantity <= *quantity => {
                    self.lines.remove(i);
                    self.focus = self.lines.len().checked_sub(1);
                    true
                }
                Some(i) => {
                    self.lines[i].quantity = Qty(self.lines[i].quantity.0 - quantity.0);
                    self.focus = Some(i);
                    true
                }
                None => false,
            },
            CartOp::SetVariant { subject, variant_id } => match self.line_of(subject) {
                Some(i) => {
                    self.lines[i].variant_id = Some(variant_id.clone());
                    self.focus = Some(i);
                    true
                }
                None => self.add_for(catalog, subject, None, Some(variant_id.clone()), None),
            },
            CartOp::SetModifier { subject, modifier } => match self.line_of(subject) {
                Some(i) => {
                    let exclusive = catalog
                        .item(&self.lines[i].item_id)
                        .and_then(|it| it.modifier_groups.iter().find(|g| g.id == modifier.group_id))
                        .is_some_and(|g| g.exclusive);
                    let line = &mut self.lines[i];
                    if exclusive {
                        line.modifiers.retain(|m| m.group_id != modifier.group_id);
                    }
                    if !line.modifiers.contains(modifier) {
                        line.modifiers.push(modifier.clone());
                        line.modifiers.sort();
                    }
                    self.focus = Some(i);
                    true
                }
                None => self.add_for(catalog, subject, None, None, Some(modifier.clone())),
            },
            CartOp::Clear | CartOp::Cancel => {
                let changed = !self.lines.is_empty();
                self.lines.clear();
                self.focus = None;
                changed
            }
            CartOp::NotInCatalog { .. } | CartOp::Confirm | CartOp::Reject | CartOp::Ask { .. } => false,
        }
    }

    fn add(
        &mut self,
        item_id: &str,
        quantity: Qty,
        variant_id: Option<String>,
        mut modifiers: Vec<ModifierChoice>,
    ) -> bool {
        modifiers.sort();
        let same = self
            .lines
            .iter()
            .position(|l| l.item_id == item_id && l.variant_id == variant_id && l.modifiers == modifiers);
        match same {
            Some(i) => {
                self.lines[i].quantity = Qty(self.lines[i].quantity.0 + quantity.0);
                self.focus = Some(i);
            }
            None => {
                self.lines.push(CartLine { item_id: item_id.to_string(), variant_id, quantity, modifiers });
                self.focus = Some(self.lines.len() - 1);
            }
        }
        true
    }

    fn add_for(
        &mut self,
        catalog: &Catalog,
        subject: &Subject,
        quantity: Option<Qty>,
        variant_id: Option<String>,
        modifier: Option<ModifierChoice>,
    ) -> bool {
        let Subject::Item(item) = subject else { return false };
        if !available(catalog, &item.item_id) {
            return false;
        }
        self.add(&item.item_id, quantity.unwrap_or(Qty::ONE), variant_id, modifier.into_iter().collect())
    }
}

fn available(catalog: &Catalog, item_id: &str) -> bool {
    catalog.item(item_id).is_some_and(|i| i.available)
}
