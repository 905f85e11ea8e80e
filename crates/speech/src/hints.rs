//! What a recogniser should expect on a call to one store: the
//! [`RecognitionHints`] built from its catalog, in the caller's language.
//!
//! The phrases come most useful first, since a recogniser may keep only
//! the head (Whisper's prompt holds about 220 tokens, and Devanagari costs
//! several tokens a letter): the small closed words every order uses
//! (numbers one to ten, yes and no), then each item's name in the
//! language's script, then the store's name, then variant names and the
//! items' other aliases.

use mangwale_voice::catalog::{Catalog, Lang};
use mangwale_voice::speech::RecognitionHints;

/// Numbers one to ten, yes and no, as callers say them.
pub fn closed_words(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::Hi => &["एक", "दो", "तीन", "चार", "पांच", "छह", "सात", "आठ", "नौ", "दस", "हाँ", "नहीं"],
        Lang::Mr => &["एक", "दोन", "तीन", "चार", "पाच", "सहा", "सात", "आठ", "नऊ", "दहा", "हो", "नाही"],
        Lang::En => &["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "yes", "no"],
        Lang::HiEn => &["ek", "do", "teen", "char", "paanch", "chhe", "saat", "aath", "nau", "das", "haan", "nahi"],
    }
}

/// Whether the text is written in Devanagari (any letter of it).
fn devanagari(text: &str) -> bool {
    text.chars().any(|c| ('\u{0900}'..='\u{097F}').contains(&c))
}

/// The hints for a call to `catalog`'s store in `lang`.
pub fn catalog_hints(catalog: &Catalog, lang: Lang) -> RecognitionHints {
    let wants_devanagari = matches!(lang, Lang::Hi | Lang::Mr);
    let in_script = |text: &str| devanagari(text) == wants_devanagari;
    let mut phrases: Vec<String> = closed_words(lang).iter().map(|w| w.to_string()).collect();
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
        let marathi = catalog_hints(&catalog(), Lang::Mr);
        assert_eq!(marathi.language, Some(Lang::Mr));
        assert_eq!(&marathi.phrases[..2], ["एक", "दोन"]);
        assert_eq!(&marathi.phrases[12..14], ["मिसळ पाव", "चहा"]);
        assert!(!marathi.phrases.iter().any(|p| p == "कोकम"), "unavailable items are not expected");
        assert!(!marathi.phrases.iter().any(|p| p == "Misal Pav"));

        let english = catalog_hints(&catalog(), Lang::En);
        assert_eq!(&english.phrases[12..15], ["Misal Pav", "Cutting Chai", "Godavari Misal House"]);
        assert!(english.phrases.contains(&"Full plate".to_string()));
        assert!(english.phrases.contains(&"chai".to_string()));
    }
}
