//! What a recogniser should expect on a call to one store: the
//! [`RecognitionHints`] built from its catalog, in the caller's language.
//!
//! The script of the phrases is a choice ([`Script`]): Whisper answers in
//! the script of its prompt, and on espeak-ng's Hindi and Marathi at 8 kHz
//! the base model hears the catalog's Latin item names far better than
//! their Devanagari aliases (docs/benchmarks.md, "Speech evaluation"); the
//! dialog reads both scripts. [`catalog_hints`] uses Latin.
//!
//! The phrases come most useful first, since a recogniser may keep only
//! the head (Whisper's prompt holds about 220 tokens, and Devanagari costs
//! several tokens a letter): the small closed words every order uses
//! (numbers one to ten, yes and no), then each item's name in the
//! language's script, then the store's name, then variant names and the
//! items' other aliases.

use mangwale_voice::catalog::{Catalog, Lang};
use mangwale_voice::speech::RecognitionHints;

/// The script the hint phrases are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Catalog names and romanised number words, for every language.
    Latin,
    /// Devanagari for Hindi and Marathi (their aliases), Latin for English
    /// and Hinglish.
    Native,
}

/// Numbers one to ten, yes and no, as callers say them, in `script`.
pub fn closed_words(lang: Lang, script: Script) -> &'static [&'static str] {
    match (lang, script) {
        (Lang::Hi, Script::Native) => &["एक", "दो", "तीन", "चार", "पांच", "छह", "सात", "आठ", "नौ", "दस", "हाँ", "नहीं"],
        (Lang::Mr, Script::Native) => {
            &["एक", "दोन", "तीन", "चार", "पाच", "सहा", "सात", "आठ", "नऊ", "दहा", "हो", "नाही"]
        }
        (Lang::Mr, Script::Latin) => {
            &["ek", "don", "teen", "char", "paach", "saha", "saat", "aath", "nau", "daha", "ho", "nahi"]
        }
        (Lang::En, _) => &["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "yes", "no"],
        (Lang::Hi | Lang::HiEn, _) => {
            &["ek", "do", "teen", "char", "paanch", "chhe", "saat", "aath", "nau", "das", "haan", "nahi"]
        }
    }
}

/// Whether the text is written in Devanagari (any letter of it).
fn devanagari(text: &str) -> bool {
    text.chars().any(|c| ('\u{0900}'..='\u{097F}').contains(&c))
}

/// The hints for a call to `catalog`'s store in `lang`, in Latin script.
pub fn catalog_hints(catalog: &Catalog, lang: Lang) -> RecognitionHints {
    catalog_hints_in(catalog, lang, Script::Latin)
}

/// The hints for a call to `catalog`'s store in `lang`, in `script`.
pub fn catalog_hints_in(catalog: &Catalog, lang: Lang, script: Script) -> RecognitionHints {
    let wants_devanagari = script == Script::Native && matches!(lang, Lang::Hi | Lang::Mr);
    let in_script = |text: &str| devanagari(text) == wants_devanagari;
    let mut phrases: Vec<String> = closed_words(lang, script).iter().map(|w| w.to_string()).collect();
    let items = catalog.items.iter().filter(|item| item.available);
    // An item's name in the script: the name itself, or its first alias
    // in the script (catalog names are Latin; Hindi and Marathi aliases
    // are Devanagari).
    for item in items.clone() {
        let name = std::iter::once(&item.name).chain(&item.aliases).find(|n| in_script(n));
        if let Some(name) = name {
            phrases.push(name.clone());
        }
    }
    if in_script(&catalog.store.name) {
        phrases.push(catalog.store.name.clone());
    }
    for item in items {
        for variant in &item.variants {
            phrases.extend(std::iter::once(&variant.name).chain(&variant.aliases).filter(|n| in_script(n)).cloned());
        }
        phrases.extend(item.aliases.iter().filter(|a| in_script(a)).cloned());
    }
    // Repeats are left in: the recogniser keeps each phrase once.
    RecognitionHints { language: Some(lang), phrases }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::from_json(
            r#"{"store": {"id": "7", "name": "Godavari Misal House", "language": "mr"},
                "items": [
                  {"id": "1", "name": "Misal Pav", "aliases": ["misal", "मिसळ पाव"], "price": 9000, "unit": "plate", "category": "x", "available": true,
                   "variants": [{"id": "full", "name": "Full plate", "aliases": [], "price": 9000}]},
                  {"id": "2", "name": "Cutting Chai", "aliases": ["chai", "चहा"], "price": 2000, "unit": "piece", "category": "x", "available": true},
                  {"id": "3", "name": "Kokum", "aliases": ["कोकम"], "price": 2000, "unit": "piece", "category": "x", "available": false}
                ]}"#,
        )
        .unwrap()
    }

    #[test]
    fn hints_list_closed_words_then_names_in_the_callers_script() {
        let marathi = catalog_hints_in(&catalog(), Lang::Mr, Script::Native);
        assert_eq!(marathi.language, Some(Lang::Mr));
        assert_eq!(&marathi.phrases[..2], ["एक", "दोन"]);
        assert_eq!(&marathi.phrases[12..14], ["मिसळ पाव", "चहा"]);
        assert!(!marathi.phrases.iter().any(|p| p == "कोकम"), "unavailable items are not expected");
        assert!(!marathi.phrases.iter().any(|p| p == "Misal Pav"));

        let latin = catalog_hints(&catalog(), Lang::Mr);
        assert_eq!(&latin.phrases[..2], ["ek", "don"]);
        assert_eq!(&latin.phrases[12..14], ["Misal Pav", "Cutting Chai"]);

        let english = catalog_hints(&catalog(), Lang::En);
        assert_eq!(&english.phrases[12..15], ["Misal Pav", "Cutting Chai", "Godavari Misal House"]);
        assert!(english.phrases.contains(&"Full plate".to_string()));
        assert!(english.phrases.contains(&"chai".to_string()));
    }
}
