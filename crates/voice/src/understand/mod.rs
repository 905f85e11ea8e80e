//! Order understanding: an utterance and a catalog in, cart operations out,
//! each resolved to catalog ids with a confidence and, when the words fit
//! several items, the alternatives. Words that name nothing in the catalog
//! come back as [`CartOp::NotInCatalog`]; they are never forced onto the
//! nearest item.
//!
//! The utterance is read in three passes: words are normalised
//! ([`crate::normalize`]); each position becomes a piece (a marker phrase
//! such as "hata do", an amount, a catalog alias, or an unknown word),
//! longest first; pieces are grouped into clauses at "aur"/"and"/"ani" and
//! each clause becomes operations (amounts bind to the next item, else the
//! previous one; variants and modifiers to the nearest item that has them).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Item, Lang, Unit};
use crate::lexicon::{AskTopic, ENGLISH_CUES, HINDI_CUES, MARATHI_CUES, Marker, marker_at};
use crate::matcher::{AliasIndex, AliasMatch, Target};
use crate::normalize::{Token, light_key, tokenize};
use crate::numbers::{Amount, AmountMatch, Qty, SpokenUnit, UnitFit, parse_amount, unit_at};

/// One catalog item the caller may have meant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub item_id: String,
    pub confidence: f32,
}

/// An item the caller named, resolved to the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRef {
    pub item_id: String,
    /// 0..1: how closely the words matched, lowered when ambiguous.
    pub confidence: f32,
    /// Other items the same words fit about as well ("chai": masala chai,
    /// adrak chai); empty when the match is clear.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Candidate>,
    /// The words heard, normalised.
    pub heard: String,
}

impl ItemRef {
    pub fn is_ambiguous(&self) -> bool {
        !self.alternatives.is_empty()
    }
}

/// Which cart line an operation is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Item(ItemRef),
    /// The line the dialog is on (the one last added or asked about),
    /// when the utterance names none and no [`Context`] gave one.
    Focus,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ModifierChoice {
    pub group_id: String,
    pub option_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CartOp {
    Add {
        item: ItemRef,
        /// In the item's unit; `None` when the caller said no quantity.
        quantity: Option<Qty>,
        variant_id: Option<String>,
        #[serde(default)]
        modifiers: Vec<ModifierChoice>,
    },
    Remove {
        subject: Subject,
    },
    SetQuantity {
        subject: Subject,
        quantity: Qty,
    },
    /// Take this much off the line ("ek plate kam karo"); none left removes it.
    Reduce {
        subject: Subject,
        quantity: Qty,
    },
    SetVariant {
        subject: Subject,
        variant_id: String,
    },
    SetModifier {
        subject: Subject,
        modifier: ModifierChoice,
    },
    /// Words that name nothing in this catalog ("do pizza").
    NotInCatalog {
        heard: String,
        amount: Option<Amount>,
        /// Said in a removal ("pizza hata do").
        removal: bool,
    },
    /// Empty the cart; the order stays open.
    Clear,
    Confirm,
    Reject,
    /// Cancel the order.
    Cancel,
    Ask {
        topic: AskTopic,
        item: Option<ItemRef>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Script {
    Latin,
    Devanagari,
}

/// What the dialog knows that an utterance may lean on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// The item id of the line being talked about ("do nahi teen",
    /// "half", "bina pyaaz" refer to it).
    pub focus: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Understanding {
    pub ops: Vec<CartOp>,
    /// The language the caller used (Latin-script Hindi is `hi-en`).
    pub language: Lang,
    pub script: Script,
    /// Words that were neither catalog, quantity nor known phrase and did
    /// not make a [`CartOp::NotInCatalog`] (noise beside an item).
    pub unmatched_words: Vec<String>,
}

/// Understands utterances against one catalog; build once per catalog.
#[derive(Debug)]
pub struct Understander {
    catalog: Catalog,
    index: AliasIndex,
    /// Per item, the item that is its half plate ("Chicken Biryani Half"
    /// for "Chicken Dum Biryani"); itself for a half item.
    half_of: Vec<Option<usize>>,
    /// Per item, its variants that are a weight or volume ("250 g", "1
    /// kg", "500 ml") with that measure in the item's unit, largest first.
    sizes: Vec<Vec<Size>>,
    /// Per item, variants one of whose aliases is a counting unit word
    /// ("plate" of Idli Sambar), by that unit.
    unit_variants: Vec<Vec<(SpokenUnit, usize)>>,
    /// Per item, the fuzzy keys of each variant's aliases, to find a
    /// variant said inside the item's name ("cutting chai").
    variant_keys: Vec<Vec<(usize, Vec<String>)>>,
    /// Per item, the fuzzy keys of its name and each alias.
    item_keys: Vec<Vec<Vec<String>>>,
    /// Per half item, the whole item it is half of ("Chicken Dum Biryani"
    /// for "Chicken Biryani Half").
    whole_of: Vec<Option<usize>>,
}

#[derive(Debug, Clone)]
enum PieceKind {
    Amount(Amount),
    /// `others`: further items the same words name less well ("saban" of
    /// Bhandi Saban beside the soap named Saban), which a correction or
    /// removal may mean when they are the ones in the cart.
    Alias {
        candidates: Vec<AliasMatch>,
        fallback: Option<Amount>,
        others: Vec<usize>,
    },
    Marker(Marker),
    Unknown,
}

#[derive(Debug, Clone)]
struct Piece {
    kind: PieceKind,
    start: usize,
    len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WordKind {
    Amount,
    Phrase,
    Catalog,
    Unknown,
}

/// An order line being assembled from one clause.
#[derive(Debug)]
struct Slot {
    at: usize,
    kind: SlotKind,
    amount: Option<Amount>,
    variant: Option<usize>,
    modifiers: Vec<(usize, usize)>,
    /// "half", "aadhi plate": the store's half item, or half of one.
    half: bool,
    /// Items the words name less well (see [`PieceKind::Alias`]).
    others: Vec<usize>,
}

#[derive(Debug)]
enum SlotKind {
    Item { index: usize, item: ItemRef },
    Unknown(String),
}

/// "Full" (plate), the opposite of a half item, in the four languages.
const FULL_WORDS: &[&str] = &["full", "poora", "poori", "puri", "purn", "purna", "फुल", "पूरा", "पूरी", "पूर्ण"];

/// English words never split off a run-together word.
const ENGLISH_FUNCTION_WORDS: &[&str] = &[
    "a", "an", "the", "of", "to", "it", "i", "me", "my", "we", "us", "for", "can", "you", "this", "that", "get",
    "give", "some", "want", "need", "like", "would", "with", "send", "just", "only", "more", "no", "not", "on", "in",
];

/// Alternatives within this score of the best are "about as good".
const AMBIGUITY_MARGIN: f32 = 0.08;
const MIN_SCORE: f32 = 0.45;

impl Understander {
    pub fn new(catalog: &Catalog) -> Understander {
        let half_of = half_items(catalog);
        Understander {
            index: AliasIndex::new(catalog),
            catalog: catalog.clone(),
            whole_of: (0..catalog.items.len())
                .map(|h| (0..half_of.len()).find(|&w| w != h && half_of[w] == Some(h) && half_of[h] == Some(h)))
                .collect(),
            half_of,
            item_keys: catalog
                .items
                .iter()
                .map(|item| {
                    std::iter::once(&item.name)
                        .chain(&item.aliases)
                        .map(|a| tokenize(a).into_iter().map(|t| t.key).collect())
                        .collect()
                })
                .collect(),
            sizes: catalog.items.iter().map(sizes_of).collect(),
            unit_variants: catalog.items.iter().map(unit_variants_of).collect(),
            variant_keys: catalog
                .items
                .iter()
                .map(|item| {
                    item.variants
                        .iter()
                        .enumerate()
                        .flat_map(|(v, variant)| {
                            std::iter::once(&variant.name)
                                .chain(&variant.aliases)
                                .map(move |a| (v, tokenize(a).into_iter().map(|t| t.key).collect::<Vec<_>>()))
                        })
                        .filter(|(_, keys)| !keys.is_empty())
                        .collect()
                })
                .collect(),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn understand(&self, utterance: &str) -> Understanding {
        self.understand_in(utterance, &Context::default())
    }

    pub fn understand_in(&self, utterance: &str, context: &Context) -> Understanding {
        let tokens = self.mend_word_boundaries(tokenize(utterance));
        let (language, script) = detect_language(&tokens);
        let pieces = self.pieces(&tokens);
        let mut ops = Vec::new();
        let mut unmatched_words = Vec::new();
        let mut clauses: Vec<Vec<Piece>> = Vec::new();
        let mut carried: Vec<Piece> = Vec::new();
        for clause in pieces.split(|p| matches!(p.kind, PieceKind::Marker(Marker::Connector))) {
            let mut clause: Vec<Piece> =
                clause.iter().filter(|p| !matches!(p.kind, PieceKind::Marker(Marker::Filler))).cloned().collect();
            clause.splice(0..0, std::mem::take(&mut carried));
            // "ek aur veg biryani", "one more": the number belongs to what follows.
            if !clause.is_empty() && clause.iter().all(|p| matches!(p.kind, PieceKind::Amount(_))) {
                carried = clause;
            } else if !clause.is_empty() {
                clauses.push(clause);
            }
        }
        if !carried.is_empty() {
            clauses.push(carried);
        }
        for (n, clause) in clauses.iter().enumerate() {
            self.clause_ops(&tokens, clause, n == 0, context, &mut ops, &mut unmatched_words);
        }
        // A "yes" or "no" with order content is an answer to "anything else?";
        // alone it is a confirmation or refusal. Several yeses are one.
        ops.dedup_by(|a, b| matches!((a, b), (CartOp::Confirm, CartOp::Confirm) | (CartOp::Reject, CartOp::Reject)));
        Understanding { ops, language, script, unmatched_words }
    }

    /// What one word is on its own: a number or unit word, a phrase word
    /// (haan, aur, karo), or a catalog word.
    fn word_kind(&self, token: &Token) -> WordKind {
        self.word_kind_as(token, true)
    }

    /// [`Self::word_kind`], with catalog words found exactly only unless
    /// `fuzzy` (cheap enough to try at every letter of a word).
    fn word_kind_as(&self, token: &Token, fuzzy: bool) -> WordKind {
        let alone = std::slice::from_ref(token);
        if parse_amount(alone, 0).is_some() || unit_at(alone, 0).is_some() {
            WordKind::Amount
        } else if marker_at(alone, 0).is_some() {
            WordKind::Phrase
        } else if (fuzzy && self.index.closest(&token.key) >= 0.8) || self.index.has_word(&token.key) {
            WordKind::Catalog
        } else {
            WordKind::Unknown
        }
    }

    /// Mends word boundaries an ASR got wrong: a word that is two known
    /// words run together is split ("ekraita", "dokilo", "kiloonion",
    /// "bhihata"), and two unknown pieces that make one known word are
    /// joined ("mis al", "te en", "ki lo", "canc el").
    fn mend_word_boundaries(&self, tokens: Vec<Token>) -> Vec<Token> {
        let mut split: Vec<Token> = Vec::with_capacity(tokens.len() + 2);
        // Words of a phrase ("theek hai") stay whole.
        let mut in_phrase = vec![false; tokens.len()];
        for j in 0..tokens.len() {
            if let Some((_, len)) = marker_at(&tokens, j)
                && len > 1
            {
                in_phrase[j..j + len].iter_mut().for_each(|p| *p = true);
            }
        }
        for (token, in_phrase) in tokens.into_iter().zip(in_phrase) {
            let token = self.unstuttered(token);
            match self.split_merged(&token).filter(|_| !in_phrase) {
                Some((left, right)) => split.extend([left, right]),
                None => split.push(token),
            }
        }
        let tokens = split;
        let kinds: Vec<WordKind> = tokens.iter().map(|t| self.word_kind(t)).collect();
        let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
        let mut i = 0;
        while i < tokens.len() {
            let unknown_beside = kinds[i] == WordKind::Unknown || kinds.get(i + 1) == Some(&WordKind::Unknown);
            if unknown_beside && i + 1 < tokens.len() && tokens[i].devanagari == tokens[i + 1].devanagari {
                let (a, b) = (kinds[i], kinds[i + 1]);
                let joined = Token::new(format!("{}{}", tokens[i].text, tokens[i + 1].text), tokens[i].devanagari);
                let mends = match self.word_kind(&joined) {
                    // "mis al": neither half is anything; "के ळी": one half is
                    // a phrase word and together they are a catalog word.
                    WordKind::Catalog => {
                        let closeness = self.index.closest(&joined.key);
                        match (a, b) {
                            (WordKind::Unknown, WordKind::Unknown) => closeness >= 0.8,
                            (WordKind::Unknown, WordKind::Phrase) | (WordKind::Phrase, WordKind::Unknown) => {
                                closeness >= 0.9
                            }
                            // "मॅ गी": a fragment of two letters and a catalog word
                            // ("gee", ghee) that make one catalog word heard exactly.
                            (WordKind::Unknown, WordKind::Catalog) | (WordKind::Catalog, WordKind::Unknown) => {
                                let fragment = if a == WordKind::Unknown { &tokens[i] } else { &tokens[i + 1] };
                                fragment.text.chars().count() <= 2 && self.index.has_word(&joined.key)
                            }
                            _ => false,
                        }
                    }
                    // "te en", "ki lo", "ka ro": a number, unit or phrase word from
                    // halves that are no number and not both phrase words.
                    WordKind::Amount | WordKind::Phrase => {
                        a != WordKind::Amount
                            && b != WordKind::Amount
                            && (a == WordKind::Unknown || b == WordKind::Unknown)
                            && a != WordKind::Catalog
                            && b != WordKind::Catalog
                    }
                    WordKind::Unknown => false,
                };
                if mends {
                    out.push(joined);
                    i += 2;
                    continue;
                }
            }
            out.push(tokens[i].clone());
            i += 1;
        }
        out
    }

    /// A number word whose first syllable the ASR heard twice ("ददो" dado
    /// for do, "tiin"): the word without the repeat, if that is a number.
    fn unstuttered(&self, token: Token) -> Token {
        let b = token.text.as_bytes();
        let repeated = b.len() >= 4
            && !b"aeiou".contains(&b[0])
            && b[1] == b'a'
            && b[2] == b[0]
            && self.word_kind(&token) == WordKind::Unknown;
        if repeated {
            let rest = Token::new(token.text[2..].to_string(), token.devanagari);
            if parse_amount(std::slice::from_ref(&rest), 0).is_some() {
                return rest;
            }
        }
        token
    }

    /// An unknown word that is two known words run together, one of them
    /// a number, unit or phrase word or both catalog words ("dosamasala").
    fn split_merged(&self, token: &Token) -> Option<(Token, Token)> {
        let text = &token.text;
        if text.len() < 5 || !text.is_ascii() || self.word_kind(token) != WordKind::Unknown {
            return None;
        }
        // Of the splits that fit, one into two words heard exactly ("teen
        // kilo") beats an earlier one needing a fuzzy half ("tee nkilo").
        let mut splits = (2..text.len() - 1).filter_map(|at| {
            let mut left = Token::new(text[..at].to_string(), token.devanagari);
            let mut a = self.word_kind_as(&left, false);
            // "लीटरदूध" is written leetradoodh: run together, the schwa moved
            // after the last consonant of the first word (leetar).
            let b = &text.as_bytes()[..at];
            let consonant = |c: u8| c.is_ascii_alphabetic() && !b"aeiou".contains(&c);
            if a == WordKind::Unknown
                && token.devanagari
                && at >= 3
                && b[at - 1] == b'a'
                && consonant(b[at - 2])
                && consonant(b[at - 3])
            {
                let moved = format!("{}a{}", &text[..at - 2], &text[at - 2..at - 1]);
                let candidate = Token::new(moved, token.devanagari);
                let kind = self.word_kind_as(&candidate, false);
                if kind != WordKind::Unknown {
                    (left, a) = (candidate, kind);
                }
            }
            if a == WordKind::Unknown {
                return None;
            }
            let right = Token::new(text[at..].to_string(), token.devanagari);
            let b = self.word_kind(&right);
            // An English function word and a number are no split ("theek"
            // is not "the ek"; "akilo" is "a kilo").
            let number = |t: &Token, kind| kind == WordKind::Amount && unit_at(std::slice::from_ref(t), 0).is_none();
            let slight = |t: &Token, kind, other: &Token, other_kind| {
                kind == WordKind::Phrase
                    && ENGLISH_FUNCTION_WORDS.contains(&t.text.as_str())
                    && number(other, other_kind)
            };
            let known = a != WordKind::Unknown
                && b != WordKind::Unknown
                && !slight(&left, a, &right, b)
                && !slight(&right, b, &left, a);
            let fits = known && (a != WordKind::Catalog || b != WordKind::Catalog || (at >= 3 && text.len() - at >= 3));
            fits.then_some((left, right))
        });
        let first = splits.next()?;
        let exact = |t: &Token| self.word_kind_as(t, false) != WordKind::Unknown;
        if exact(&first.1) {
            return Some(first);
        }
        Some(splits.find(|(_, right)| exact(right)).unwrap_or(first))
    }

    fn pieces(&self, tokens: &[Token]) -> Vec<Piece> {
        let resemblances = self.index.resemblances(tokens);
        let function_words: Vec<bool> = (0..tokens.len())
            .map(|j| {
                marker_at(tokens, j).is_some() || parse_amount(tokens, j).is_some() || unit_at(tokens, j).is_some()
            })
            .collect();
        let function_word = |j: usize| function_words[j];
        let mut pieces: Vec<Piece> = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            let marker = marker_at(tokens, i);
            // "ek patta gobi": the unit word starts an item's name.
            let amount = parse_amount(tokens, i).map(|a| {
                let last = i + a.len - 1;
                let unit_starts_item = a.len > 1
                    && a.amount.unit.is_some()
                    && unit_at(tokens, last).is_some()
                    && self
                        .index
                        .matches_at(&resemblances, last)
                        .iter()
                        .any(|m| m.full && m.len >= 2 && m.score >= 0.9);
                if unit_starts_item {
                    AmountMatch { amount: Amount { unit: None, ..a.amount }, len: a.len - 1, ..a }
                } else {
                    a
                }
            });
            let aliases: Vec<AliasMatch> = self
                .index
                .matches_at(&resemblances, i)
                .into_iter()
                // A number or unit word only names an item when said exactly
                // ("barah vada pav" is not "bata vada" and pav).
                .filter(|m| m.score >= MIN_SCORE && (m.full || !(i..i + m.len).all(function_word)))
                .filter(|m| m.score >= 0.999 || !(i..i + m.len).any(function_word))
                .collect();
            let (ml, al) = (marker.map_or(0, |m| m.1), amount.map_or(0, |a| a.len));
            let best = aliases.first().copied();
            let (cl, full) = best.map_or((0, false), |b| (b.len, b.full));
            let alias_piece = |candidates: Vec<AliasMatch>, fallback| {
                let best = candidates[0];
                let (candidates, rest): (Vec<AliasMatch>, Vec<AliasMatch>) = candidates.into_iter().partition(|c| {
                    c.len == best.len
                        && c.full == best.full
                        && c.exact == best.exact
                        && c.score >= best.score - AMBIGUITY_MARGIN
                });
                let mut others: Vec<usize> = rest
                    .iter()
                    .filter(|c| c.len == best.len)
                    .filter_map(|c| match c.target {
                        Target::Item(index) => Some(index),
                        _ => None,
                    })
                    .collect();
                others.dedup();
                Piece { kind: PieceKind::Alias { candidates, fallback, others }, start: i, len: best.len }
            };
            // "ek idli sambar": a number and a longer item name after it beat
            // a size alias that starts with the number ("ek idli").
            let item_after_amount = amount.is_some_and(|a| {
                best.is_some_and(|b| !matches!(b.target, Target::Item(_)))
                    && self
                        .index
                        .matches_at(&resemblances, i + a.len)
                        .iter()
                        .any(|m| m.full && matches!(m.target, Target::Item(_)) && a.len + m.len > cl)
            });
            let piece = if cl > 0 && full && cl > ml.max(al) && !item_after_amount {
                alias_piece(aliases, None)
            } else if let Some(a) = amount.filter(|a| a.bare_pav && cl > 0) {
                // "pav" is ¼ before a unit or an item ("pav kilo", "pav
                // shrikhand"), bread after a number ("do pav") or alone.
                let after_number = matches!(pieces.last(), Some(Piece { kind: PieceKind::Amount(_), .. }));
                // "pav nahi aadha kilo": a quarter corrected to another weight.
                let corrected = matches!(marker_at(tokens, i + 1), Some((Marker::Negation, 1)))
                    && parse_amount(tokens, i + 2).is_some_and(|m| m.amount.unit.is_some());
                let item_follows = unit_at(tokens, i + 1).is_some()
                    || corrected
                    || self.index.matches_at(&resemblances, i + 1).iter().any(|m| m.full && m.score >= MIN_SCORE);
                if !after_number && item_follows {
                    Piece { kind: PieceKind::Amount(a.amount), start: i, len: 1 }
                } else {
                    alias_piece(aliases, None)
                }
            } else if ml > 0 && ml >= al && ml >= cl {
                Piece { kind: PieceKind::Marker(marker.map(|m| m.0).unwrap_or(Marker::Filler)), start: i, len: ml }
            } else if let Some(a) = amount.filter(|a| a.len >= cl || !full || item_after_amount) {
                if full && cl == a.len && best.is_some_and(|b| matches!(b.target, Target::Variant { .. })) {
                    // "half plate": the variant if the item has one, else ½.
                    alias_piece(aliases, Some(a.amount))
                } else {
                    Piece { kind: PieceKind::Amount(a.amount), start: i, len: a.len }
                }
            } else if cl > 0
                && !full
                && self
                    .index
                    .matches_at(&resemblances, i + cl)
                    .iter()
                    .any(|m| m.full && m.score >= MIN_SCORE && matches!(m.target, Target::Item(_)))
            {
                // "brown ande": part of one item's name ("Brown Bread")
                // before another item's whole name describes that item.
                Piece { kind: PieceKind::Unknown, start: i, len: cl }
            } else if cl > 0 {
                alias_piece(aliases, None)
            } else if unit_at(tokens, i).is_some() {
                // A container said after its weight ("ek kilo ka packet",
                // "एक किलो चा डबा") names no item.
                Piece { kind: PieceKind::Marker(Marker::Filler), start: i, len: 1 }
            } else {
                Piece { kind: PieceKind::Unknown, start: i, len: 1 }
            };
            i += piece.len;
            pieces.push(piece);
        }
        pieces
    }

    fn heard(tokens: &[Token], start: usize, len: usize) -> String {
        tokens[start..start + len].iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join(" ")
    }

    /// The item a set of alias candidates names, with alternatives.
    fn item_ref(&self, candidates: &[AliasMatch], heard: String) -> Option<(usize, ItemRef)> {
        let mut items: Vec<(usize, f32)> = Vec::new();
        for c in candidates {
            if let Target::Item(i) = c.target
                && !items.iter().any(|(j, _)| *j == i)
            {
                items.push((i, c.score));
            }
        }
        let (best, score) = *items.first()?;
        let alternatives: Vec<Candidate> = items[1..]
            .iter()
            .map(|(i, s)| Candidate { item_id: self.catalog.items[*i].id.clone(), confidence: *s * 0.6 })
            .collect();
        let confidence = if alternatives.is_empty() { score } else { score * 0.6 };
        Some((best, ItemRef { item_id: self.catalog.items[best].id.clone(), confidence, alternatives, heard }))
    }

    /// A slot's item as the subject of a correction or removal: with the
    /// items its words name less well as alternatives, so that the one in
    /// the cart is meant ("saban teen kara" of the Bhandi Saban ordered).
    fn subject_of(&self, slot: &Slot) -> Option<Subject> {
        let SlotKind::Item { item, .. } = &slot.kind else { return None };
        let mut item = item.clone();
        for other in &slot.others {
            let id = &self.catalog.items[*other].id;
            if *id != item.item_id && !item.alternatives.iter().any(|a| a.item_id == *id) {
                item.alternatives.push(Candidate { item_id: id.clone(), confidence: item.confidence * 0.5 });
            }
        }
        Some(Subject::Item(item))
    }

    /// Whether the words that named a slot's item are all words of a name
    /// of another item ("cake" of Chocolate Truffle Cake).
    fn names_part_of(&self, slot: &SlotKind, index: usize) -> bool {
        let SlotKind::Item { index: previous, item } = slot else { return false };
        let heard: Vec<String> = tokenize(&item.heard).into_iter().map(|t| t.key).collect();
        *previous != index
            && !heard.is_empty()
            && self.item_keys[index]
                .iter()
                .any(|name| name.len() > heard.len() && heard.iter().all(|w| name.contains(w)))
    }

    /// The variant whose alias is said inside the item's name ("cutting
    /// chai": Cutting Chai's `cutting` cup), if exactly one is.
    fn variant_in_name(&self, item: usize, words: &[Token]) -> Option<usize> {
        let keys: Vec<&str> = words.iter().map(|t| t.key.as_str()).collect();
        let mut found = None;
        for (v, alias) in &self.variant_keys[item] {
            if keys.windows(alias.len()).any(|w| w.iter().zip(alias).all(|(a, b)| *a == b)) {
                if found.is_some_and(|f| f != *v) {
                    return None;
                }
                found = Some(*v);
            }
        }
        found
    }

    /// Whether the piece at `k` comes right after an item sold in sizes: a
    /// size word there ("benadryl chhoti", of a bottle it has no "chhoti"
    /// for) is said of that item, never another item's size.
    fn sized_item_before(&self, slots: &[Slot], k: usize) -> bool {
        slots.last().is_some_and(|s| {
            s.at + 1 == k
                && matches!(s.kind, SlotKind::Item { index, .. } if !self.catalog.items[index].variants.is_empty())
        })
    }

    fn focus_ref(&self, context: &Context) -> Option<(usize, ItemRef)> {
        let id = context.focus.as_deref()?;
        let index = self.catalog.items.iter().position(|i| i.id == id)?;
        Some((
            index,
            ItemRef { item_id: id.to_string(), confidence: 1.0, alternatives: Vec::new(), heard: String::new() },
        ))
    }

    /// An amount in the item's unit. A count of an item sold by weight or
    /// volume is packs of its pack size ("do bread" of a 400 g loaf is 800
    /// g); pieces of an item sold in packs of several are packs ("ek
    /// darjan ande" in trays of six is 2, rounded up to whole packs).
    fn quantity(&self, item: usize, amount: Amount) -> Qty {
        let amount = self.fraction_of_measure(item, amount);
        let catalog_item = &self.catalog.items[item];
        if let Some(pack) = catalog_item.pack_size {
            let count = matches!(amount.unit, None | Some(SpokenUnit::Piece | SpokenUnit::Pack));
            let measured = matches!(catalog_item.unit, Unit::Kg | Unit::G | Unit::Litre | Unit::Ml);
            if measured && count && amount.value.0.is_multiple_of(1000) {
                let content = Amount { value: pack.quantity, unit: Some(pack.unit.into()) };
                if let (per_pack, UnitFit::Exact) = content.in_unit(catalog_item.unit) {
                    return Qty(per_pack.0 * (amount.value.0 / 1000));
                }
            }
            let pieces_per_pack = match pack.unit {
                Unit::Piece => pack.quantity.0,
                Unit::Dozen => pack.quantity.0 * 12,
                _ => 0,
            };
            if catalog_item.unit == Unit::Pack && pieces_per_pack > 1000 {
                let pieces = match amount.unit {
                    Some(SpokenUnit::Dozen) => Some(amount.value.0 * 12),
                    // "chhe ande": a bare count that fills whole packs is pieces.
                    None | Some(SpokenUnit::Piece)
                        if amount.value.0 >= pieces_per_pack && amount.value.0.is_multiple_of(pieces_per_pack) =>
                    {
                        Some(amount.value.0)
                    }
                    _ => None,
                };
                if let Some(pieces) = pieces {
                    return Qty(pieces.div_ceil(pieces_per_pack) * 1000);
                }
            }
        }
        let (qty, fit) = amount.in_unit(catalog_item.unit);
        if fit == UnitFit::Mismatch { amount.value } else { qty }
    }

    /// A fraction said without a unit of an item sold by the gram or
    /// millilitre is of a kilo or litre ("paav jalebi", "aadha bhindi").
    fn fraction_of_measure(&self, item: usize, amount: Amount) -> Amount {
        let unit = match self.catalog.items[item].unit {
            Unit::G => SpokenUnit::Kg,
            Unit::Ml => SpokenUnit::Litre,
            _ => return amount,
        };
        if amount.unit.is_none() && !amount.value.0.is_multiple_of(1000) {
            Amount { unit: Some(unit), ..amount }
        } else {
            amount
        }
    }

    /// A weight or volume of an item sold in sizes as packs of those sizes,
    /// fewest packs, largest first ("dedh kilo" is 1 kg and 500 g); `None`
    /// when the item has no such sizes, the amount is no measure, or the
    /// sizes do not add up to it exactly.
    fn in_sizes(&self, item: usize, amount: Amount) -> Option<Vec<(String, Qty)>> {
        let amount = self.fraction_of_measure(item, amount);
        let sizes = &self.sizes[item];
        let (dimension, mut left) = in_base_measure(amount)?;
        if sizes.is_empty() || left == 0 {
            return None;
        }
        // Ghee sold in 500 ml and asked for by the kilo: a litre is a kilo
        // when the item comes in sizes of the other measure only.
        let same: Vec<&Size> = sizes.iter().filter(|s| s.dimension == dimension).collect();
        let usable: Vec<&Size> = if same.is_empty() { sizes.iter().collect() } else { same };
        let catalog_item = &self.catalog.items[item];
        let mut packs = Vec::new();
        for size in usable {
            let n = left / size.base;
            if n > 0 {
                packs.push((catalog_item.variants[size.variant].id.clone(), Qty::whole(n)));
                left -= n * size.base;
            }
        }
        (left == 0).then_some(packs)
    }

    /// Sets an item's quantity: packs of its sizes when a weight of a
    /// sized item was said (its lines replaced), else the quantity.
    fn set_quantity(&self, subject: Subject, item: Option<usize>, amount: Amount, ops: &mut Vec<CartOp>) {
        if let (Some(index), Subject::Item(item)) = (item, &subject)
            && let Some(packs) = self.in_sizes(index, amount)
        {
            ops.push(CartOp::Remove { subject: subject.clone() });
            for (variant_id, quantity) in packs {
                ops.push(CartOp::Add {
                    item: item.clone(),
                    quantity: Some(quantity),
                    variant_id: Some(variant_id),
                    modifiers: Vec::new(),
                });
            }
            return;
        }
        let quantity = item.map_or(amount.value, |i| self.quantity(i, amount));
        ops.push(CartOp::SetQuantity { subject, quantity });
    }

    fn clause_ops(
        &self,
        tokens: &[Token],
        pieces: &[Piece],
        first_clause: bool,
        context: &Context,
        ops: &mut Vec<CartOp>,
        unmatched: &mut Vec<String>,
    ) {
        let before = ops.len();
        let has = |m: Marker| pieces.iter().any(|p| matches!(p.kind, PieceKind::Marker(x) if x == m));
        let marker_at_piece =
            |k: usize, m: Marker| matches!(pieces.get(k).map(|p| &p.kind), Some(PieceKind::Marker(x)) if *x == m);

        // Slots: named items and runs of unknown words.
        let mut slots: Vec<Slot> = Vec::new();
        let mut subs: Vec<(usize, Vec<AliasMatch>, Option<Amount>, String)> = Vec::new();
        let named: Vec<usize> = pieces
            .iter()
            .filter_map(|p| match &p.kind {
                PieceKind::Alias { candidates, .. } => Some(candidates),
                _ => None,
            })
            .flatten()
            .filter_map(|c| match c.target {
                Target::Item(i) => Some(i),
                _ => None,
            })
            .collect();
        // "no, make it a full plate" of a half item the store sells on its
        // own: the whole item instead.
        if named.is_empty()
            && let Some((half, half_ref)) = self.focus_ref(context)
            && let Some(whole) = self.whole_of[half]
        {
            let last = &pieces[pieces.len() - 1];
            let said = &tokens[pieces[0].start..last.start + last.len];
            if said.iter().any(|t| FULL_WORDS.iter().any(|w| light_key(w) == t.light)) {
                ops.push(CartOp::Remove { subject: Subject::Item(half_ref.clone()) });
                let item = ItemRef {
                    item_id: self.catalog.items[whole].id.clone(),
                    confidence: half_ref.confidence,
                    alternatives: Vec::new(),
                    heard: String::new(),
                };
                ops.push(CartOp::Add { item, quantity: None, variant_id: None, modifiers: Vec::new() });
                return;
            }
        }

        let focus_index = self.focus_ref(context).map(|(i, _)| i);
        let mut unknown_end: Option<usize> = None;
        let mut k = 0;
        while k < pieces.len() {
            let p = &pieces[k];
            match &p.kind {
                PieceKind::Alias { candidates, fallback, others } => {
                    match self.item_ref(candidates, Self::heard(tokens, p.start, p.len)) {
                        // "hari mirch" where the shop sells only lal mirch, "cold
                        // coffee" beside filter coffee: an unknown word before some
                        // words of an item's name is another thing.
                        Some(_) if !candidates[0].full && unknown_end.is_some_and(|end| end + 1 == k) => {
                            if let Some(Slot { kind: SlotKind::Unknown(words), .. }) = slots.last_mut() {
                                words.push(' ');
                                words.push_str(&Self::heard(tokens, p.start, p.len));
                            }
                            unknown_end = Some(k);
                        }
                        // "chawal basmati wala", "cake chocolate wala": words of one item.
                        Some((index, item))
                            if slots.last().is_some_and(|s| s.at + 1 == k && same_item(&s.kind, index, &item)) =>
                        {
                            let last = slots.last_mut().expect("checked");
                            last.at = k;
                            last.others.extend(others);
                            if let SlotKind::Item { item: previous, .. } = &last.kind
                                && previous.alternatives.len() > item.alternatives.len()
                            {
                                last.kind = SlotKind::Item { index, item };
                            }
                        }
                        // "cake chocolate wala": the words said first are part of
                        // the name of the item said next.
                        Some((index, item))
                            if slots.last().is_some_and(|s| {
                                s.at + 1 == k && s.amount.is_none() && self.names_part_of(&s.kind, index)
                            }) =>
                        {
                            let last = slots.last_mut().expect("checked");
                            last.at = k;
                            last.variant = self.variant_in_name(index, &tokens[p.start..p.start + p.len]);
                            last.kind = SlotKind::Item { index, item };
                            last.others = others.clone();
                        }
                        // "basmati chawal", "lux sabun": a word after an item that is
                        // only part of another item's name ("kolam chawal", "dettol
                        // sabun") describes the item said.
                        Some(_)
                            if !candidates[0].full
                                && slots.last().is_some_and(|s| {
                                    s.at + 1 == k && s.amount.is_none() && matches!(s.kind, SlotKind::Item { .. })
                                }) =>
                        {
                            slots.last_mut().expect("checked").at = k;
                        }
                        Some((index, item)) => slots.push(Slot {
                            at: k,
                            variant: self.variant_in_name(index, &tokens[p.start..p.start + p.len]),
                            kind: SlotKind::Item { index, item },
                            amount: None,
                            modifiers: Vec::new(),
                            half: false,
                            others: others.clone(),
                        }),
                        None => {
                            let heard = Self::heard(tokens, p.start, p.len);
                            // "char cutting": a variant of one item only, which the
                            // clause does not name otherwise, names that item.
                            let owner = candidates[0].target.item();
                            let only_owner = candidates.iter().all(|c| c.target.item() == owner);
                            match candidates[0].target {
                                Target::Variant { variant, .. }
                                    if only_owner
                                        && fallback.is_none()
                                        && !named.contains(&owner)
                                        && focus_index != Some(owner)
                                        && !self.sized_item_before(&slots, k) =>
                                {
                                    let item = ItemRef {
                                        item_id: self.catalog.items[owner].id.clone(),
                                        confidence: candidates[0].score * 0.9,
                                        alternatives: Vec::new(),
                                        heard,
                                    };
                                    slots.push(Slot {
                                        at: k,
                                        kind: SlotKind::Item { index: owner, item },
                                        amount: None,
                                        variant: Some(variant),
                                        modifiers: Vec::new(),
                                        half: false,
                                        others: Vec::new(),
                                    });
                                }
                                _ => subs.push((k, candidates.clone(), *fallback, heard)),
                            }
                        }
                    }
                }
                PieceKind::Unknown => {
                    let start = k;
                    while pieces.get(k + 1).is_some_and(|p| matches!(p.kind, PieceKind::Unknown)) {
                        k += 1;
                    }
                    let words = Self::heard(tokens, pieces[start].start, pieces[k].start + 1 - pieces[start].start);
                    slots.push(Slot {
                        at: start,
                        kind: SlotKind::Unknown(words),
                        amount: None,
                        variant: None,
                        modifiers: Vec::new(),
                        half: false,
                        others: Vec::new(),
                    });
                    unknown_end = Some(k);
                }
                _ => {}
            }
            k += 1;
        }

        // "do nahi teen": a correction of the quantity.
        let mut correction: Option<(usize, Amount)> = None;
        let mut amounts: Vec<(usize, Amount)> = Vec::new();
        for (k, p) in pieces.iter().enumerate() {
            if let PieceKind::Amount(a) = p.kind {
                amounts.push((k, a));
            }
        }
        // A size that is also an amount ("ek kilo"), said where no item of
        // the clause comes in it ("ek kilo paneer" at a shop whose besan
        // comes in 1 kg packs), is the amount.
        let slot_items: Vec<usize> = slots
            .iter()
            .filter_map(|s| match s.kind {
                SlotKind::Item { index, .. } => Some(index),
                SlotKind::Unknown(_) => None,
            })
            .collect();
        let focus_has = |candidates: &[AliasMatch]| {
            slots.is_empty() && focus_index.is_some_and(|f| candidates.iter().any(|c| c.target.item() == f))
        };
        subs.retain(|(k, candidates, fallback, _)| match fallback {
            Some(a) if !candidates.iter().any(|c| slot_items.contains(&c.target.item())) && !focus_has(candidates) => {
                amounts.push((*k, *a));
                false
            }
            _ => true,
        });
        amounts.sort_by_key(|(k, _)| *k);
        // "do nahi teen", "teen lux sabun nahi nahi char", "three lux soaps
        // no make it four": a negation after the first amount, then only
        // negations, "make it" and fillers before the second.
        let only_words_of_correction =
            |k: usize| matches!(pieces[k].kind, PieceKind::Marker(Marker::Negation | Marker::Set | Marker::Filler));
        for w in amounts.windows(2) {
            let Some(negation) = (w[0].0 + 1..w[1].0).find(|k| marker_at_piece(*k, Marker::Negation)) else {
                continue;
            };
            let adjacent = w[1].0 == w[0].0 + 2;
            // "char vada pav nako teen vada pav" names the item again: a
            // replacement, below.
            let item_follows = slots.iter().any(|s| s.at == w[1].0 + 1);
            if (negation..w[1].0).all(only_words_of_correction) && (adjacent || !item_follows) {
                correction = Some(w[1]);
            }
        }
        if let Some((at, _)) = correction {
            amounts.retain(|(k, _)| *k >= at);
        }

        // Amounts bind to the next slot, else the previous one; when the
        // clause starts with an item ("chini ek kilo, tel do litre") they
        // follow their items.
        let items_first = slots
            .iter()
            .find(|s| matches!(s.kind, SlotKind::Item { .. }))
            .is_some_and(|s| amounts.first().is_none_or(|(k, _)| s.at < *k));
        // Unknown words right before an item ("do ajun vada pav", "darjan
        // bhar chapati") do not take the amount said before them.
        let before_item: Vec<bool> = slots
            .iter()
            .enumerate()
            .map(|(n, s)| {
                matches!(s.kind, SlotKind::Unknown(_))
                    && slots.get(n + 1).is_some_and(|next| matches!(next.kind, SlotKind::Item { .. }))
            })
            .collect();
        let mut loose_amount = None;
        for &(k, amount) in &amounts {
            let next_amount = amounts.iter().map(|(j, _)| *j).find(|j| *j > k).unwrap_or(usize::MAX);
            // "aadha bhindi" of an item sold by weight is half a kilo, not a half plate.
            let counted = |s: &Slot| match s.kind {
                SlotKind::Item { index, .. } => {
                    !matches!(self.catalog.items[index].unit, Unit::Kg | Unit::G | Unit::Litre | Unit::Ml)
                }
                SlotKind::Unknown(_) => true,
            };
            // "dettol 550" of a liquid sold in 125, 250 and 550 ml: a number
            // right after an item that is one of its sizes (never a count
            // that high) is that size.
            if amount.unit.is_none()
                && amount.value.0 >= 20_000
                && let Some(slot) = slots.iter_mut().find(|s| s.at + 1 == k && s.variant.is_none())
                && let SlotKind::Item { index, .. } = slot.kind
                && let Some(size) = self.sizes[index].iter().find(|s| s.said == amount.value)
            {
                slot.variant = Some(size.variant);
                continue;
            }
            if amount.value == Qty(500) && matches!(amount.unit, None | Some(SpokenUnit::Plate)) {
                let previous = slots.iter().rposition(|s| s.at < k);
                let next = slots.iter().position(|s| s.at > k && s.at < next_amount);
                if let Some(s) = if items_first { previous.or(next) } else { next.or(previous) }
                    && counted(&slots[s])
                {
                    slots[s].half = true;
                    continue;
                }
            }
            let previous = slots.iter().rposition(|s| s.at < k && s.amount.is_none());
            let next = (0..slots.len()).find(|&n| {
                slots[n].at > k && slots[n].at < next_amount && slots[n].amount.is_none() && !before_item[n]
            });
            let chosen = if items_first { previous.or(next) } else { next.or(previous) };
            // A second amount for a line multiplies a measure: "one dettol
            // 250 ml", "do paneer 200 gram wale", "100 ml do bottle".
            let combined = || {
                slots
                    .iter()
                    .enumerate()
                    .filter_map(|(s, slot)| Some((s, combine(slot.amount?, amount)?, slot.at.abs_diff(k))))
                    .min_by_key(|(_, _, d)| *d)
            };
            match (chosen, combined()) {
                (Some(s), _) => slots[s].amount = Some(amount),
                (None, Some((s, amount, _))) => slots[s].amount = Some(amount),
                (None, None) => loose_amount = Some(amount),
            }
        }

        // Variants and modifiers bind to the nearest item that has them.
        let mut loose_subs = Vec::new();
        for (k, candidates, fallback, heard) in subs {
            let nearest = slots
                .iter_mut()
                .filter_map(|s| match s.kind {
                    SlotKind::Item { index, .. } => {
                        candidates.iter().find(|c| c.target.item() == index).map(|c| (s.at.abs_diff(k), c.target, s))
                    }
                    SlotKind::Unknown(_) => None,
                })
                .min_by_key(|(d, _, _)| *d);
            match nearest {
                Some((_, Target::Variant { variant, .. }, slot)) => slot.variant = Some(variant),
                Some((_, Target::Option { group, option, .. }, slot)) => slot.modifiers.push((group, option)),
                _ => {
                    // No item beside it took it: "half plate" of an item
                    // without that variant is its half item, or half of it;
                    // "aadha kilo" (another item's size) is a weight.
                    let near = slots
                        .iter_mut()
                        .filter(|s| matches!(s.kind, SlotKind::Item { .. }))
                        .min_by_key(|s| s.at.abs_diff(k));
                    let measure = |a: Amount| {
                        matches!(a.unit, Some(SpokenUnit::Kg | SpokenUnit::G | SpokenUnit::Litre | SpokenUnit::Ml))
                    };
                    match (fallback, near) {
                        (Some(a), Some(slot)) if a.value == Qty(500) && !measure(a) => slot.half = true,
                        (Some(a), Some(slot)) if slot.amount.is_none() => slot.amount = Some(a),
                        _ => loose_subs.push((candidates, heard)),
                    }
                }
            }
        }

        let subject = |slot: &Slot| self.subject_of(slot);
        let focus = self.focus_ref(context);
        let focus_subject = || focus.as_ref().map_or(Subject::Focus, |(_, r)| Subject::Item(r.clone()));
        let removal = |slot: &Slot, ops: &mut Vec<CartOp>| match subject(slot) {
            Some(subject) => ops.push(CartOp::Remove { subject }),
            None => {
                if let SlotKind::Unknown(heard) = &slot.kind {
                    ops.push(CartOp::NotInCatalog { heard: heard.clone(), amount: slot.amount, removal: true })
                }
            }
        };
        let items: Vec<&Slot> = slots.iter().filter(|s| matches!(s.kind, SlotKind::Item { .. })).collect();

        if has(Marker::Clear) {
            ops.push(CartOp::Clear);
            return;
        }
        if has(Marker::Cancel) {
            if items.is_empty() {
                ops.push(CartOp::Cancel);
            } else {
                items.iter().for_each(|s| removal(s, ops));
            }
            return;
        }
        if let Some(topic) = pieces.iter().find_map(|p| match p.kind {
            PieceKind::Marker(Marker::Ask(t)) => Some(t),
            _ => None,
        }) {
            let item = items.first().and_then(|s| match &s.kind {
                SlotKind::Item { item, .. } => Some(item.clone()),
                SlotKind::Unknown(_) => None,
            });
            ops.push(CartOp::Ask { topic, item });
            return;
        }

        let negations: Vec<usize> = (0..pieces.len()).filter(|k| marker_at_piece(*k, Marker::Negation)).collect();
        let removes: Vec<usize> = (0..pieces.len()).filter(|k| marker_at_piece(*k, Marker::Remove)).collect();
        let set = has(Marker::Set);
        let leading_negation = negations.first() == Some(&0) && pieces.len() > 1;

        // "misal nahi vada pav", "chai ki jagah coffee": replace the first.
        if slots.len() >= 2 {
            let between = |k: &usize| *k > slots[0].at && *k < slots[1].at;
            let instead = (0..pieces.len()).filter(|k| marker_at_piece(*k, Marker::Set)).any(|k| between(&k));
            if negations.iter().any(between) || removes.iter().any(between) || instead {
                removal(&slots[0], ops);
                for slot in &slots[1..] {
                    self.add_or_set(slot, false, true, ops, unmatched);
                }
                return;
            }
        }

        let trailing_negation = negations.last().is_some_and(|k| slots.iter().all(|s| s.at < *k));
        if !removes.is_empty() || (trailing_negation && !slots.is_empty() && correction.is_none()) {
            if slots.is_empty() {
                ops.push(CartOp::Remove { subject: focus_subject() });
            } else {
                slots.iter().for_each(|s| removal(s, ops));
            }
            return;
        }

        if let Some((_, amount)) = correction {
            match items.first() {
                Some(slot) => {
                    if let (SlotKind::Item { index, .. }, Some(subject)) = (&slot.kind, self.subject_of(slot)) {
                        self.set_quantity(subject, Some(*index), amount, ops);
                    }
                }
                None => self.set_quantity(focus_subject(), focus.as_ref().map(|(i, _)| *i), amount, ops),
            }
            return;
        }

        if has(Marker::Reduce) {
            for slot in &items {
                if let (SlotKind::Item { index, .. }, Some(subject)) = (&slot.kind, self.subject_of(slot)) {
                    let quantity = slot.amount.map_or(Qty::ONE, |a| self.quantity(*index, a));
                    ops.push(CartOp::Reduce { subject, quantity });
                }
            }
            if items.is_empty() {
                let quantity = match (loose_amount, &focus) {
                    (Some(a), Some((i, _))) => self.quantity(*i, a),
                    (Some(a), None) => a.value,
                    (None, _) => Qty::ONE,
                };
                ops.push(CartOp::Reduce { subject: focus_subject(), quantity });
            }
            return;
        }

        for slot in &slots {
            self.add_or_set(slot, set || leading_negation, !items.is_empty(), ops, unmatched);
        }
        // An amount alone answers "how many?" or corrects the line talked
        // about; after "aur" it was said of something not heard.
        if slots.is_empty()
            && let Some(amount) = loose_amount
        {
            if first_clause || set {
                self.set_quantity(focus_subject(), focus.as_ref().map(|(i, _)| *i), amount, ops);
            } else {
                let last = &pieces[pieces.len() - 1];
                unmatched.push(Self::heard(tokens, pieces[0].start, last.start + last.len - pieces[0].start));
            }
        }
        // "paneer tikka" where nothing is paneer: an option word heard
        // beside words that name nothing ("tikka", roughly "tikhat") is part
        // of that phrase, not an order of the item the option belongs to.
        let unknown_beside = slots.iter().any(|s| matches!(s.kind, SlotKind::Unknown(_)));
        for (candidates, heard) in loose_subs {
            let of_focus = focus.as_ref().is_some_and(|(i, _)| candidates.iter().any(|c| c.target.item() == *i));
            if items.is_empty() && (!unknown_beside || of_focus) {
                self.loose_sub(&candidates, focus.as_ref(), ops);
            } else {
                // "extra teekha" beside an item that has no such option.
                unmatched.push(heard);
            }
        }
        if ops.len() == before {
            if !negations.is_empty() {
                ops.push(CartOp::Reject);
            } else if has(Marker::Confirm) {
                ops.push(CartOp::Confirm);
            }
        }
    }

    /// Adds a slot's item, or sets its quantity/variant/modifiers when the
    /// clause corrects rather than adds.
    fn add_or_set(
        &self,
        slot: &Slot,
        set: bool,
        beside_items: bool,
        ops: &mut Vec<CartOp>,
        unmatched: &mut Vec<String>,
    ) {
        let (index, item) = match &slot.kind {
            SlotKind::Item { index, item } => (*index, item),
            SlotKind::Unknown(heard) => {
                // Noise beside an item is not an order line; words with a quantity are.
                if slot.amount.is_some() || !beside_items {
                    ops.push(CartOp::NotInCatalog { heard: heard.clone(), amount: slot.amount, removal: false });
                } else {
                    unmatched.push(heard.clone());
                }
                return;
            }
        };
        let mut quantity = slot.amount.map(|a| self.quantity(index, a));
        let half_item;
        let (index, item, same_item) = match (slot.half, self.half_of[index]) {
            // "half chicken biryani" where the store sells the half as an item.
            (true, Some(half)) if half != index => {
                half_item = ItemRef {
                    item_id: self.catalog.items[half].id.clone(),
                    confidence: item.confidence,
                    alternatives: Vec::new(),
                    heard: item.heard.clone(),
                };
                (half, &half_item, false)
            }
            (true, None) => {
                quantity = Some(Qty(quantity.unwrap_or(Qty::ONE).0 / 2));
                (index, item, true)
            }
            _ => (index, item, true),
        };
        let catalog_item = &self.catalog.items[index];
        // Variants and modifiers were found for the item named, not its half item.
        let mut variant = slot.variant.filter(|_| same_item);
        // "do plate idli": the unit said is one of the item's sizes.
        if variant.is_none()
            && let Some(amount) = slot.amount
            && let Some(&(_, v)) = self.unit_variants[index].iter().find(|(u, _)| Some(*u) == amount.unit)
        {
            variant = Some(v);
            quantity = Some(amount.value);
        }
        let variant_id = variant.map(|v| catalog_item.variants[v].id.clone());
        let modifiers: Vec<ModifierChoice> = slot
            .modifiers
            .iter()
            .filter(|_| same_item)
            .map(|(g, o)| {
                let group = &catalog_item.modifier_groups[*g];
                ModifierChoice { group_id: group.id.clone(), option_id: group.options[*o].id.clone() }
            })
            .collect();
        // "dedh kilo pedha" of pedha sold in 1 kg, 500 g and 250 g boxes.
        let packs = match (variant_id.is_none() && same_item && !slot.half, slot.amount) {
            (true, Some(amount)) => self.in_sizes(index, amount),
            _ => None,
        };
        if let Some(packs) = packs {
            if set {
                ops.push(CartOp::Remove { subject: Subject::Item(item.clone()) });
            }
            for (variant_id, quantity) in packs {
                ops.push(CartOp::Add {
                    item: item.clone(),
                    quantity: Some(quantity),
                    variant_id: Some(variant_id),
                    modifiers: modifiers.clone(),
                });
            }
            return;
        }
        if set {
            let subject = match self.subject_of(slot) {
                Some(subject) if same_item => subject,
                _ => Subject::Item(item.clone()),
            };
            if let Some(quantity) = quantity {
                ops.push(CartOp::SetQuantity { subject: subject.clone(), quantity });
            }
            if let Some(variant_id) = variant_id {
                ops.push(CartOp::SetVariant { subject: subject.clone(), variant_id });
            }
            for modifier in modifiers {
                ops.push(CartOp::SetModifier { subject: subject.clone(), modifier });
            }
            if quantity.is_none() && variant.is_none() && slot.modifiers.is_empty() {
                ops.push(CartOp::Add { item: item.clone(), quantity: None, variant_id: None, modifiers: Vec::new() });
            }
        } else {
            ops.push(CartOp::Add { item: item.clone(), quantity, variant_id, modifiers });
        }
    }

    /// A variant or modifier said with no item beside it: it applies to the
    /// focus line if that item has it, else to the item it belongs to.
    fn loose_sub(&self, candidates: &[AliasMatch], focus: Option<&(usize, ItemRef)>, ops: &mut Vec<CartOp>) {
        let chosen = focus
            .and_then(|(i, r)| candidates.iter().find(|c| c.target.item() == *i).map(|c| (c.target, r.clone())))
            .or_else(|| {
                let first = candidates.first()?;
                let mut items: Vec<usize> = candidates.iter().map(|c| c.target.item()).collect();
                items.dedup();
                let alternatives = items[1..]
                    .iter()
                    .map(|i| Candidate { item_id: self.catalog.items[*i].id.clone(), confidence: first.score * 0.5 })
                    .collect::<Vec<_>>();
                let confidence = if alternatives.is_empty() { first.score * 0.8 } else { first.score * 0.5 };
                let item = &self.catalog.items[first.target.item()];
                Some((
                    first.target,
                    ItemRef { item_id: item.id.clone(), confidence, alternatives, heard: String::new() },
                ))
            });
        let Some((target, item)) = chosen else { return };
        let catalog_item = &self.catalog.items[target.item()];
        let subject = Subject::Item(item);
        match target {
            Target::Variant { variant, .. } => {
                ops.push(CartOp::SetVariant { subject, variant_id: catalog_item.variants[variant].id.clone() })
            }
            Target::Option { group, option, .. } => {
                let group = &catalog_item.modifier_groups[group];
                let modifier =
                    ModifierChoice { group_id: group.id.clone(), option_id: group.options[option].id.clone() };
                ops.push(CartOp::SetModifier { subject, modifier });
            }
            Target::Item(_) => {}
        }
    }
}

/// Pairs items with their half-plate items by name: an item whose name or
/// alias is another's with "half" added.
fn half_items(catalog: &Catalog) -> Vec<Option<usize>> {
    let is_half = |w: &String| w == "half" || w == "haf";
    let names = |item: &crate::catalog::Item| -> Vec<Vec<String>> {
        std::iter::once(&item.name)
            .chain(&item.aliases)
            .map(|n| tokenize(n).into_iter().map(|t| t.key).collect::<Vec<_>>())
            .collect()
    };
    let all: Vec<Vec<Vec<String>>> = catalog.items.iter().map(names).collect();
    let mut half_of = vec![None; catalog.items.len()];
    for (h, half_names) in all.iter().enumerate() {
        let wholes: Vec<Vec<String>> = half_names
            .iter()
            .filter(|n| n.iter().any(is_half))
            .map(|n| n.iter().filter(|w| !is_half(w)).cloned().collect())
            .collect();
        if wholes.is_empty() {
            continue;
        }
        half_of[h] = Some(h);
        for (i, names) in all.iter().enumerate() {
            if i != h && half_of[i].is_none() && names.iter().any(|n| wholes.contains(n)) {
                half_of[i] = Some(h);
            }
        }
    }
    half_of
}

/// Weight or volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dimension {
    Weight,
    Volume,
}

/// A variant that is a weight or volume ("250 g", "1 kg bag", "1l").
#[derive(Debug, Clone, Copy)]
struct Size {
    variant: usize,
    dimension: Dimension,
    /// In milligrams or microlitres.
    base: u64,
    /// The number said of it ("550" of "550 ml").
    said: Qty,
}

/// A spoken weight or volume in milligrams or microlitres (an `Amount`
/// holds thousandths of its unit).
fn in_base_measure(amount: Amount) -> Option<(Dimension, u64)> {
    let v = amount.value.0;
    match amount.unit? {
        SpokenUnit::Kg => Some((Dimension::Weight, v * 1000)),
        SpokenUnit::G => Some((Dimension::Weight, v)),
        SpokenUnit::Litre => Some((Dimension::Volume, v * 1000)),
        SpokenUnit::Ml => Some((Dimension::Volume, v)),
        _ => None,
    }
}

/// An item's variants that are a weight or volume, largest first,
/// whatever unit the item itself is sold in (kg, or packs): a variant is
/// one when its name, an alias or its id starts with an amount with a
/// measure and says no other number ("250 g", "500 gm", "1 kg bag", "1
/// ltr pouch", "half kg", "आधा किलो", the id "1l").
fn sizes_of(item: &Item) -> Vec<Size> {
    let mut sizes: Vec<Size> = item
        .variants
        .iter()
        .enumerate()
        .filter_map(|(v, variant)| {
            std::iter::once(&variant.name).chain(&variant.aliases).chain(std::iter::once(&variant.id)).find_map(
                |name| {
                    let tokens = tokenize(name);
                    let m = parse_amount(&tokens, 0)?;
                    if tokens[m.len..].iter().any(|t| digits_in(&t.text)) {
                        return None;
                    }
                    let (dimension, base) = in_base_measure(m.amount)?;
                    (base > 0).then_some(Size { variant: v, dimension, base, said: m.amount.value })
                },
            )
        })
        .collect();
    sizes.sort_by_key(|s| std::cmp::Reverse(s.base));
    sizes
}

fn digits_in(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_digit())
}

/// An item's variants named by a counting unit word alone ("plate").
fn unit_variants_of(item: &Item) -> Vec<(SpokenUnit, usize)> {
    let mut found: Vec<(SpokenUnit, usize)> = Vec::new();
    for (v, variant) in item.variants.iter().enumerate() {
        for alias in std::iter::once(&variant.name).chain(&variant.aliases) {
            let tokens = tokenize(alias);
            if let [_] = tokens.as_slice()
                && let Some(unit @ (SpokenUnit::Plate | SpokenUnit::Piece | SpokenUnit::Pack)) = unit_at(&tokens, 0)
                && !found.iter().any(|(u, _)| *u == unit)
            {
                found.push((unit, v));
            }
        }
    }
    found
}

/// Whether a slot and a newly named item are one item (the same, or one
/// among the other's alternatives).
fn same_item(slot: &SlotKind, index: usize, item: &ItemRef) -> bool {
    match slot {
        SlotKind::Item { index: i, item: previous } => {
            *i == index
                || previous.alternatives.iter().any(|a| a.item_id == item.item_id)
                || item.alternatives.iter().any(|a| a.item_id == previous.item_id)
        }
        SlotKind::Unknown(_) => false,
    }
}

/// A count and a measure said for one line, as one amount.
fn combine(a: Amount, b: Amount) -> Option<Amount> {
    use crate::numbers::SpokenUnit as S;
    let measure = |u: Option<S>| matches!(u, Some(S::Kg | S::G | S::Litre | S::Ml));
    let (measure_amount, count) = match (measure(a.unit), measure(b.unit)) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        _ => return None,
    };
    if !matches!(count.unit, None | Some(S::Piece | S::Pack)) || count.value.0 % 1000 != 0 {
        return None;
    }
    Some(Amount { value: Qty(measure_amount.value.0 * (count.value.0 / 1000)), unit: measure_amount.unit })
}

/// The language and script of an utterance's words (also used to label
/// what a fallback understood).
pub(crate) fn detect_language(tokens: &[Token]) -> (Lang, Script) {
    static CUES: OnceLock<[Vec<String>; 3]> = OnceLock::new();
    let [english_cues, hindi_cues, marathi_cues] = CUES.get_or_init(|| {
        [ENGLISH_CUES, HINDI_CUES, MARATHI_CUES].map(|cues| cues.iter().map(|c| light_key(c)).collect())
    });
    let count = |cues: &Vec<String>| tokens.iter().filter(|t| cues.contains(&t.light)).count();
    let marathi = count(marathi_cues);
    let devanagari = tokens.iter().filter(|t| t.devanagari).count();
    if devanagari * 2 >= tokens.len() && devanagari > 0 {
        let hindi = count(hindi_cues);
        return (if marathi > hindi { Lang::Mr } else { Lang::Hi }, Script::Devanagari);
    }
    let (english, hindi) = (count(english_cues), count(hindi_cues));
    let lang = if english > hindi + marathi {
        Lang::En
    } else if marathi > hindi {
        Lang::Mr
    } else {
        Lang::HiEn
    };
    (lang, Script::Latin)
}

#[cfg(test)]
mod tests;
