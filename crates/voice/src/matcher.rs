//! Fuzzy matching of catalog aliases (items, variants, modifier options)
//! over word sequences of an utterance.
//!
//! Every alias is a sequence of fuzzy word keys. The index keeps the
//! distinct words (the vocabulary) and, per word, where it occurs. An
//! utterance's words are compared once with the vocabulary (edit distance
//! on keys); alias matches then grow from each matching word along the
//! alias, so a 200-item catalog costs a few thousand short comparisons.

use std::collections::HashMap;

use crate::catalog::Catalog;
use crate::normalize::{Token, similarity, tokenize};
use crate::numbers::{Qty, SpokenUnit, parse_amount, unit_at};

/// What an alias names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Item(usize),
    Variant { item: usize, variant: usize },
    Option { item: usize, group: usize, option: usize },
}

impl Target {
    pub fn item(self) -> usize {
        match self {
            Target::Item(i) | Target::Variant { item: i, .. } | Target::Option { item: i, .. } => i,
        }
    }
}

#[derive(Debug)]
struct Alias {
    target: Target,
    words: Vec<usize>,
}

/// An alias found in an utterance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AliasMatch {
    pub target: Target,
    /// Utterance words covered, from the start position.
    pub len: usize,
    /// The whole alias was said (not only some of its words: "chai" of
    /// "masala chai").
    pub full: bool,
    /// Mean word similarity times the share of the alias said, 0..1.
    pub score: f32,
    /// Every word said matched its alias word's key exactly.
    pub exact: bool,
}

/// The precomputed alias index of one catalog.
#[derive(Debug)]
pub struct AliasIndex {
    aliases: Vec<Alias>,
    vocab: Vec<String>,
    /// Vocabulary word ids by key, for exact look-ups.
    vocab_ids: HashMap<String, usize>,
    /// Vocabulary words by length, for cheap candidate filtering.
    by_len: HashMap<usize, Vec<usize>>,
    /// For each vocabulary word: (alias, position in the alias).
    postings: Vec<Vec<(usize, usize)>>,
}

/// Prefix families modifier aliases are expanded with, so that a catalog
/// that says "bina pyaaz" also understands "no pyaaz" and "without pyaaz".
const MODIFIER_FAMILIES: &[&[&str]] = &[
    &["bina", "bagair", "without", "no", "vina", "बिना", "विना"],
    &["kam", "less", "kami", "halka", "thoda", "कम", "कमी"],
    &["extra", "zyada", "jyada", "jaada", "jast", "more", "double", "ज़्यादा", "जास्त", "एक्स्ट्रा"],
];

/// Everyday goods called by one word in each language: an item a catalog
/// calls "doodh" alone is also "milk" and "दूध", where no other item is
/// called that word alone (then "milk" is that item, not every "... Milk").
const ITEM_WORD_FAMILIES: &[&[&str]] = &[
    &["milk", "doodh", "dudh", "दूध"],
    &["curd", "dahi", "dahee", "दही"],
    &["eggs", "egg", "anda", "ande", "andi", "अंडे", "अंडी", "अंडा"],
];

/// Size words variant aliases are expanded with, so that a catalog that
/// says "chhoti bottle" and "bada" also understands "छोटी", "small",
/// "मोठी" and "badi".
const SIZE_FAMILIES: &[&[&str]] = &[
    &["chhota", "chhoti", "chhote", "chota", "choti", "small", "lahan", "छोटा", "छोटी", "छोटे", "लहान"],
    &[
        "bada",
        "badi",
        "bade",
        "big",
        "large",
        "motha",
        "mothi",
        "mota",
        "moti",
        "बड़ा",
        "बड़ी",
        "बडा",
        "बडी",
        "मोठा",
        "मोठी",
        "मोठे",
    ],
];

/// The word a variant is called by alone: the first word of a longer name
/// ("full" of "Full plate", "chhoti" of "chhoti bottle", "हाफ" of "हाफ
/// प्लेट"), unless it is a number, a unit or a measure ("5 kg bag"),
/// which say other things alone; "half" is kept, as "half plate" is.
fn head_word(tokens: &[Token]) -> Option<String> {
    // "aadha kilo", "half kg": a measure, said as one ("aadha" alone is half
    // of anything).
    let measure =
        matches!(unit_at(tokens, 1), Some(SpokenUnit::Kg | SpokenUnit::G | SpokenUnit::Litre | SpokenUnit::Ml));
    if tokens.len() < 2 || unit_at(tokens, 0).is_some() || measure {
        return None;
    }
    match parse_amount(&tokens[..1], 0) {
        Some(m) if !(m.amount.value == Qty(500) && m.amount.unit.is_none()) => None,
        _ => Some(tokens[0].key.clone()),
    }
}

impl AliasIndex {
    pub fn new(catalog: &Catalog) -> AliasIndex {
        let mut index = AliasIndex {
            aliases: Vec::new(),
            vocab: Vec::new(),
            vocab_ids: HashMap::new(),
            by_len: HashMap::new(),
            postings: Vec::new(),
        };
        let mut vocab_ids: HashMap<String, usize> = HashMap::new();
        let families: Vec<Vec<String>> =
            MODIFIER_FAMILIES.iter().map(|f| f.iter().flat_map(|w| tokenize(w)).map(|t| t.key).collect()).collect();
        let size_families: Vec<Vec<String>> =
            SIZE_FAMILIES.iter().map(|f| f.iter().flat_map(|w| tokenize(w)).map(|t| t.key).collect()).collect();
        let mut add = |index: &mut AliasIndex, target: Target, keys: Vec<String>| {
            if keys.is_empty() {
                return;
            }
            let words = keys
                .into_iter()
                .map(|k| {
                    *vocab_ids.entry(k.clone()).or_insert_with(|| {
                        index.by_len.entry(k.len()).or_default().push(index.vocab.len());
                        index.vocab.push(k);
                        index.postings.push(Vec::new());
                        index.vocab.len() - 1
                    })
                })
                .collect::<Vec<_>>();
            let id = index.aliases.len();
            if index.aliases.iter().any(|a| a.target == target && a.words == words) {
                return;
            }
            for (pos, w) in words.iter().enumerate() {
                index.postings[*w].push((id, pos));
            }
            index.aliases.push(Alias { target, words });
        };
        let item_families: Vec<Vec<String>> =
            ITEM_WORD_FAMILIES.iter().map(|f| f.iter().flat_map(|w| tokenize(w)).map(|t| t.key).collect()).collect();
        // Single words each item is called by, for the families above.
        let one_word_names: Vec<Vec<String>> = catalog
            .items
            .iter()
            .map(|item| {
                std::iter::once(&item.name)
                    .chain(&item.aliases)
                    .map(|n| keys_of(n))
                    .filter(|k| k.len() == 1)
                    .map(|mut k| k.remove(0))
                    .collect()
            })
            .collect();
        for (i, item) in catalog.items.iter().enumerate() {
            for family in item_families.iter().filter(|f| one_word_names[i].iter().any(|w| f.contains(w))) {
                let elsewhere =
                    |w: &String| one_word_names.iter().enumerate().any(|(j, names)| j != i && names.contains(w));
                for word in family.iter().filter(|w| !elsewhere(w)) {
                    add(&mut index, Target::Item(i), vec![word.clone()]);
                }
            }
            // "Vicks Action 500 (strip of 10)" is said "vicks action 500".
            let unbracketed = item.name.split_once('(').map(|(before, _)| before.trim().to_string());
            for name in std::iter::once(&item.name).chain(&item.aliases).chain(unbracketed.as_ref()) {
                let keys = keys_of(name);
                if keys.len() > 1 {
                    // ASR merges words: "misalpav".
                    add(&mut index, Target::Item(i), vec![keys.concat()]);
                }
                add(&mut index, Target::Item(i), keys);
            }
            // A head word shared by two of the item's variants names neither.
            let heads: Vec<Vec<String>> = item
                .variants
                .iter()
                .map(|variant| {
                    std::iter::once(&variant.name)
                        .chain(&variant.aliases)
                        .filter_map(|name| head_word(&tokenize(name)))
                        .collect()
                })
                .collect();
            for (v, variant) in item.variants.iter().enumerate() {
                let target = Target::Variant { item: i, variant: v };
                let mut names: Vec<Vec<String>> =
                    std::iter::once(&variant.name).chain(&variant.aliases).map(|n| keys_of(n)).collect();
                for head in &heads[v] {
                    if !heads.iter().enumerate().any(|(w, h)| w != v && h.contains(head)) {
                        names.push(vec![head.clone()]);
                    }
                }
                for keys in names {
                    if let Some((at, family)) = keys
                        .iter()
                        .enumerate()
                        .find_map(|(at, k)| size_families.iter().find(|f| f.contains(k)).map(|f| (at, f)))
                    {
                        for word in family {
                            let mut expanded = keys.clone();
                            expanded[at] = word.clone();
                            add(&mut index, target, expanded);
                        }
                    }
                    add(&mut index, target, keys);
                }
            }
            for (g, group) in item.modifier_groups.iter().enumerate() {
                for (o, option) in group.options.iter().enumerate() {
                    let target = Target::Option { item: i, group: g, option: o };
                    for name in std::iter::once(&option.name).chain(&option.aliases) {
                        let keys = keys_of(name);
                        let family = keys.first().and_then(|k| families.iter().find(|f| f.contains(k)));
                        if let Some(family) = family
                            && keys.len() > 1
                        {
                            for prefix in family {
                                let mut expanded = keys.clone();
                                expanded[0] = prefix.clone();
                                add(&mut index, target, expanded);
                            }
                        }
                        add(&mut index, target, keys);
                    }
                }
            }
        }
        index.vocab_ids = index.vocab.iter().enumerate().map(|(i, k)| (k.clone(), i)).collect();
        index
    }

    /// For each utterance word, the vocabulary words it resembles.
    pub fn resemblances(&self, tokens: &[Token]) -> Vec<Vec<(usize, f32)>> {
        tokens
            .iter()
            .map(|t| {
                let len = t.key.len();
                let mut found = Vec::new();
                for l in len.saturating_sub(2)..=len + 2 {
                    for &w in self.by_len.get(&l).map(Vec::as_slice).unwrap_or_default() {
                        let s = similarity(&t.key, &self.vocab[w]);
                        if s > 0.0 {
                            found.push((w, s));
                        }
                    }
                }
                if found.is_empty()
                    && let Some(stem) = marathi_stem(&t.key)
                {
                    for l in stem.len().saturating_sub(1)..=stem.len() + 2 {
                        for &w in self.by_len.get(&l).map(Vec::as_slice).unwrap_or_default() {
                            let s = similarity(&stem, &self.vocab[w]);
                            if s > 0.0 {
                                found.push((w, s * 0.95));
                            }
                        }
                    }
                }
                found
            })
            .collect()
    }

    /// Whether a key is a word of some alias.
    pub fn has_word(&self, key: &str) -> bool {
        self.vocab_ids.contains_key(key)
    }

    /// How closely the nearest vocabulary word resembles a key (0 if none does).
    pub fn closest(&self, key: &str) -> f32 {
        if self.vocab_ids.contains_key(key) {
            return 1.0;
        }
        let nearest = |key: &str| {
            let mut best: f32 = 0.0;
            for l in key.len().saturating_sub(2)..=key.len() + 2 {
                for &w in self.by_len.get(&l).map(Vec::as_slice).unwrap_or_default() {
                    best = best.max(similarity(key, &self.vocab[w]));
                }
            }
            best
        };
        let best = nearest(key);
        match marathi_stem(key) {
            Some(stem) if best < 0.8 => best.max(nearest(&stem) * 0.95),
            _ => best,
        }
    }

    /// The best match per target of the aliases that start at word `i` of
    /// the utterance (or whose later words do, for partial matches of items).
    pub fn matches_at(&self, resemblances: &[Vec<(usize, f32)>], i: usize) -> Vec<AliasMatch> {
        let mut best: HashMap<Target, AliasMatch> = HashMap::new();
        let Some(here) = resemblances.get(i) else { return Vec::new() };
        for &(word, s) in here {
            for &(a, pos) in &self.postings[word] {
                let alias = &self.aliases[a];
                if pos > 0 && !matches!(alias.target, Target::Item(_)) {
                    continue;
                }
                let mut total = s;
                let mut exact = s >= 1.0;
                let mut k = 1;
                while pos + k < alias.words.len()
                    && let Some(next) = resemblances.get(i + k)
                    && let Some(&(_, s)) = next.iter().find(|(w, _)| *w == alias.words[pos + k])
                {
                    total += s;
                    exact &= s >= 1.0;
                    k += 1;
                }
                let full = pos == 0 && k == alias.words.len();
                if !full && !matches!(alias.target, Target::Item(_)) {
                    continue;
                }
                // Some words of a name, heard only roughly, name nothing
                // ("aurar" is not "arhar" of "arhar dal").
                if !full && !exact && total / (k as f32) < 0.8 {
                    continue;
                }
                let share = k as f32 / alias.words.len() as f32;
                let score = total / k as f32 * if full { 1.0 } else { 0.5 + 0.4 * share };
                let m = AliasMatch { target: alias.target, len: k, full, score, exact };
                let better = best
                    .get(&alias.target)
                    .is_none_or(|b| (m.len, m.exact, m.full, m.score) > (b.len, b.exact, b.full, b.score));
                if better {
                    best.insert(alias.target, m);
                }
            }
        }
        let mut found: Vec<AliasMatch> = best.into_values().collect();
        // Longest first; then words heard exactly before a whole alias heard
        // fuzzily ("vada" of Batata Vada, not the option "sada").
        found.sort_by(|a, b| {
            (b.len, b.exact, b.full)
                .cmp(&(a.len, a.exact, a.full))
                .then(b.score.total_cmp(&a.score))
                .then(a.target.cmp(&b.target))
        });
        found
    }
}

/// The word without a Marathi case ending or plural the catalog does not
/// list: "साबणाचा" (of soap) → saban, "साखरेचा" → sakhr, "पोळ्या"
/// (chapatis) → poli.
fn marathi_stem(key: &str) -> Option<String> {
    for suffix in
        ["echa", "echi", "eche", "echya", "acha", "achi", "ache", "achya", "chya", "cha", "chi", "che", "la", "na"]
    {
        if let Some(stem) = key.strip_suffix(suffix)
            && stem.len() >= 3
        {
            return Some(stem.to_string());
        }
    }
    key.strip_suffix("ya").filter(|s| s.len() >= 3).map(|s| format!("{s}i"))
}

fn keys_of(name: &str) -> Vec<String> {
    tokenize(name).into_iter().map(|t| t.key).collect()
}
