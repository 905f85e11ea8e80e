//! Catalog search as voice ordering needs it: what a caller says
//! ("kanda", "प्याज", "do kilo tuvar dal") finds the item, whichever
//! language or spelling the speech recogniser wrote it in.

use super::data::DemoItem;

/// The items of `items` that match `query`, best first: an exact name or
/// alias, then one that starts with the query, then one that contains it
/// as whole words, then as a substring, then items sharing some of its
/// words. Equal matches put available items, then shorter names, first. An
/// empty query lists every item in catalog order.
pub(crate) fn search<'a>(items: impl Iterator<Item = &'a DemoItem>, query: &str, limit: usize) -> Vec<&'a DemoItem> {
    let query = normalize(query);
    if query.is_empty() {
        return items.take(limit).collect();
    }
    let tokens: Vec<&str> = query.split(' ').collect();
    let mut scored: Vec<(u32, &DemoItem)> =
        items.filter_map(|item| Some((item_score(item, &query, &tokens)?, item))).collect();
    scored.sort_by(|(sa, a), (sb, b)| {
        sb.cmp(sa)
            .then(b.available.cmp(&a.available))
            .then(a.name.chars().count().cmp(&b.name.chars().count()))
            .then(a.id.cmp(&b.id))
    });
    scored.into_iter().take(limit).map(|(_, item)| item).collect()
}

/// The best score over the item's name and aliases; the English name wins
/// ties, so "Onion" outranks an item that merely has "onion" as an alias.
fn item_score(item: &DemoItem, query: &str, tokens: &[&str]) -> Option<u32> {
    let name = score(&normalize(&item.name), query, tokens).map(|s| s * 2 + 1);
    let aliases = item.aliases.iter().filter_map(|a| score(&normalize(a), query, tokens)).map(|s| s * 2).max();
    name.max(aliases)
}

fn score(candidate: &str, query: &str, tokens: &[&str]) -> Option<u32> {
    let query_len = query.chars().count();
    if candidate == query {
        return Some(100);
    }
    if let Some(rest) = candidate.strip_prefix(query) {
        if rest.starts_with(' ') {
            return Some(90);
        }
        if query_len >= 2 {
            return Some(85);
        }
    }
    if format!(" {candidate} ").contains(&format!(" {query} ")) {
        return Some(80);
    }
    if query_len >= 3 && candidate.contains(query) {
        return Some(70);
    }
    let words: Vec<&str> = candidate.split(' ').collect();
    let matched = tokens
        .iter()
        .filter(|t| words.iter().any(|w| w == *t || (t.chars().count() >= 3 && w.starts_with(**t))))
        .count();
    (matched > 0).then(|| 40 + (20 * matched / tokens.len()) as u32)
}

/// Lower case, punctuation as spaces, single spaces, and the commonest
/// spelling variants of romanised Hindi and Marathi folded together
/// (`pyaaz`/`pyaz`, `dahee`/`dahi`, `toor`/`tur`, `wangi`/`vangi`).
fn normalize(text: &str) -> String {
    let spaced: String = text
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_punctuation() || matches!(c, '।' | '॥') { ' ' } else { c })
        .collect();
    let words: Vec<&str> = spaced.split_whitespace().collect();
    words.join(" ").replace("aa", "a").replace("ee", "i").replace("oo", "u").replace('w', "v")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: u64, name: &str, aliases: &[&str], available: bool) -> DemoItem {
        DemoItem {
            id,
            store_id: 1,
            name: name.to_string(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            price: 10.0,
            unit: "kg".to_string(),
            pack_size: "1 kg".to_string(),
            category: "Vegetables".to_string(),
            available,
            variants: Vec::new(),
            modifier_groups: Vec::new(),
        }
    }

    fn names(items: &[DemoItem], query: &str) -> Vec<String> {
        search(items.iter(), query, 10).into_iter().map(|i| i.name.clone()).collect()
    }

    fn shelf() -> Vec<DemoItem> {
        vec![
            item(1, "Spring Onion", &["hara pyaz", "kanda paat", "हरा प्याज"], true),
            item(2, "Onion", &["pyaz", "kanda", "प्याज", "कांदा"], true),
            item(3, "Toor Dal", &["arhar dal", "tuvar dal", "तूर दाल"], true),
            item(4, "Moong Dal", &["मूंग दाल"], true),
            item(5, "Alphonso Mango", &["aam", "hapus"], false),
        ]
    }

    #[test]
    fn exact_names_and_aliases_come_first() {
        let shelf = shelf();
        assert_eq!(names(&shelf, "kanda"), ["Onion", "Spring Onion"]);
        assert_eq!(names(&shelf, "प्याज"), ["Onion", "Spring Onion"]);
        assert_eq!(names(&shelf, "ONION"), ["Onion", "Spring Onion"]);
        assert_eq!(names(&shelf, "tuvar"), ["Toor Dal"]);
    }

    #[test]
    fn spelling_variants_and_extra_words_still_match() {
        let shelf = shelf();
        assert_eq!(names(&shelf, "pyaaz"), ["Onion", "Spring Onion"]);
        assert_eq!(names(&shelf, "tur dal"), ["Toor Dal", "Moong Dal"]);
        assert_eq!(names(&shelf, "do kilo kanda"), ["Onion", "Spring Onion"]);
        assert_eq!(names(&shelf, "hapus"), ["Alphonso Mango"], "unavailable items are found, for the bot to say so");
        assert!(names(&shelf, "biryani").is_empty());
    }

    #[test]
    fn an_empty_query_lists_the_catalog() {
        let shelf = shelf();
        assert_eq!(names(&shelf, "  ").len(), 5);
        assert_eq!(search(shelf.iter(), "", 2).len(), 2);
    }
}
