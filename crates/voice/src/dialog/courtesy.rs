//! Greetings, forms of address and politeness words ("namaste ji", "दादा",
//! "bhau", "sir", "please"): words callers wrap an order in that name no
//! item. The parser may leave them as unknown words; the dialog must not
//! answer them with "namaste yahan nahi milta".

use crate::normalize::tokenize;
use crate::understand::{CartOp, Understanding};

/// In Hindi, Marathi, English and Hinglish, Latin as an ASR writes it and
/// Devanagari. Compared on light keys, so spellings that differ only in
/// doubled letters or sh/s, w/v, ee/i fold together.
const COURTESY_WORDS: &[&str] = &[
    // greetings
    "namaste",
    "namastey",
    "namasté",
    "namaskar",
    "namaskaar",
    "pranam",
    "ram ram",
    "jai shri ram",
    "hello",
    "helo",
    "hallo",
    "hi",
    "hey",
    "good morning",
    "good afternoon",
    "good evening",
    "नमस्ते",
    "नमस्कार",
    "प्रणाम",
    "राम राम",
    "हॅलो",
    "हेलो",
    "हलो",
    "हैलो",
    // forms of address
    "ji",
    "jee",
    "sir",
    "saheb",
    "sahab",
    "saab",
    "madam",
    "madem",
    "maam",
    "mam",
    "bhai",
    "bhaiya",
    "bhaiyya",
    "bhaiyaa",
    "bhau",
    "bhauji",
    "dada",
    "kaka",
    "kaku",
    "tai",
    "mavshi",
    "maushi",
    "didi",
    "bhabhi",
    "aunty",
    "auntie",
    "uncle",
    "anna",
    "boss",
    "seth",
    "sethji",
    "जी",
    "सर",
    "साहेब",
    "साहब",
    "मॅडम",
    "मैडम",
    "भाई",
    "भैया",
    "भय्या",
    "भाऊ",
    "दादा",
    "काका",
    "काकू",
    "ताई",
    "मावशी",
    "दीदी",
    "भाभी",
    "आंटी",
    "अंकल",
    "अण्णा",
    "शेठ",
    // politeness and fillers
    "please",
    "plz",
    "pls",
    "kindly",
    "sorry",
    "zara",
    "jara",
    "arre",
    "are",
    "accha",
    "acha",
    "achha",
    "ok",
    "okay",
    "haan ji",
    "प्लीज",
    "प्लीज़",
    "कृपया",
    "सॉरी",
    "ज़रा",
    "जरा",
    "अरे",
    "अच्छा",
    "ओके",
];

/// Grammar words that never name goods ("kya tha", "woh wala", "क्या था",
/// "ते काय"): an unknown group made only of them is not something the
/// store lacks but words the caller said around the order. Unlike
/// courtesy words they are not taken out of a longer unknown group, where
/// they may be part of a name the store does not sell.
const FUNCTION_WORDS: &[&str] = &[
    "kya",
    "kyaa",
    "tha",
    "thi",
    "the",
    "hai",
    "hain",
    "ho",
    "hoga",
    "woh",
    "wo",
    "voh",
    "vo",
    "yeh",
    "ye",
    "yah",
    "is",
    "us",
    "wala",
    "wali",
    "wale",
    "waala",
    "vala",
    "kuch",
    "kuchh",
    "koi",
    "aur",
    "bhi",
    "to",
    "toh",
    "na",
    "arre",
    "are",
    "arey",
    "accha",
    "acha",
    "achha",
    "matlab",
    "kaun",
    "kaunsa",
    "kitna",
    "kaisa",
    "jo",
    "wahi",
    "what",
    "was",
    "it",
    "that",
    "this",
    "a",
    "an",
    "of",
    "um",
    "uh",
    "hmm",
    "ok",
    "okay",
    "so",
    "like",
    "one",
    "kay",
    "kaay",
    "hota",
    "hote",
    "ahe",
    "aahe",
    "te",
    "he",
    "ha",
    "ti",
    "kahi",
    "mhanje",
    "ka",
    "ki",
    "ke",
    "क्या",
    "था",
    "थी",
    "थे",
    "है",
    "हैं",
    "वो",
    "वह",
    "यह",
    "ये",
    "वाला",
    "वाली",
    "कुछ",
    "कोई",
    "और",
    "भी",
    "तो",
    "अरे",
    "अच्छा",
    "मतलब",
    "काय",
    "होतं",
    "होता",
    "आहे",
    "ते",
    "हे",
    "तो",
    "ती",
    "काही",
    "म्हणजे",
    "का",
    "की",
    "के",
];

fn keys(text: &str) -> Vec<String> {
    tokenize(text).into_iter().map(|t| t.light).collect()
}

/// Whether every word is a greeting, address form or politeness word
/// (false for no words).
pub fn only_courtesy(text: &str) -> bool {
    let words = keys(text);
    !words.is_empty() && without_courtesy(&words).is_empty()
}

/// Whether every word of an unknown group is a grammar word ("kya tha"):
/// words not understood rather than goods the store lacks.
pub fn only_function_words(heard: &str) -> bool {
    let words = keys(heard);
    !words.is_empty() && words.iter().all(|w| FUNCTION_WORDS.iter().any(|f| keys(f).first() == Some(w)))
}

/// The words left when the courtesy words (and phrases) are taken out.
fn without_courtesy(words: &[String]) -> Vec<String> {
    let phrases: Vec<Vec<String>> = COURTESY_WORDS.iter().map(|p| keys(p)).filter(|p| !p.is_empty()).collect();
    let mut kept = Vec::new();
    let mut i = 0;
    'words: while i < words.len() {
        for phrase in &phrases {
            if words[i..].starts_with(phrase) {
                i += phrase.len();
                continue 'words;
            }
        }
        kept.push(words[i].clone());
        i += 1;
    }
    kept
}

/// Takes courtesy words out of the parser's unknown words: an unknown
/// group made only of them is dropped, and its amount (the parser may hang
/// "दोन किलो" on "दादा" before "साखर") goes to the item said right after it
/// when that item came with no amount of its own.
pub fn drop_courtesy(u: &mut Understanding, catalog: &crate::catalog::Catalog) {
    let mut ops = Vec::with_capacity(u.ops.len());
    let mut amount_for_next = None;
    for op in std::mem::take(&mut u.ops) {
        match op {
            CartOp::NotInCatalog { heard, amount, removal } => {
                let words = keys(&heard);
                let kept = without_courtesy(&words);
                if kept.is_empty() {
                    amount_for_next = amount;
                    continue;
                }
                amount_for_next = None;
                ops.push(CartOp::NotInCatalog { heard: kept.join(" "), amount, removal });
            }
            CartOp::Add { item, quantity: None, variant_id, modifiers } if amount_for_next.is_some() => {
                let quantity = amount_for_next.take().zip(catalog.item(&item.item_id)).and_then(|(amount, it)| {
                    match amount.in_unit(it.unit) {
                        (_, crate::numbers::UnitFit::Mismatch) => None,
                        (q, _) if q.is_zero() => None,
                        (q, _) => Some(q),
                    }
                });
                ops.push(CartOp::Add { item, quantity, variant_id, modifiers });
            }
            other => {
                amount_for_next = None;
                ops.push(other);
            }
        }
    }
    u.ops = ops;
}
