//! The words around the catalog: confirmations, refusals, cancellations,
//! removals, corrections, questions and filler, in Hindi, Marathi, English
//! and Hinglish, matched as whole phrases on light keys.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::normalize::{Token, tokenize, without_nasal};

/// What a caller asks instead of ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AskTopic {
    Price,
    Menu,
    DeliveryTime,
    /// A person on the line.
    Human,
    /// Say that again / read the cart.
    Repeat,
    Total,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Confirm,
    /// no, nahi, nako: a refusal alone, a correction between quantities, a
    /// removal after an item.
    Negation,
    Cancel,
    Clear,
    Remove,
    /// kar do, make it: sets rather than adds.
    Set,
    /// kam karo, kami kara: takes some off a line.
    Reduce,
    Ask(AskTopic),
    /// aur, and, ani: separates order lines.
    Connector,
    /// Words that carry no order content (mujhe, chahiye, please, de do).
    Filler,
}

const PHRASES: &[(Marker, &[&str])] = &[
    (
        Marker::Confirm,
        &[
            "haan",
            "han",
            "ha",
            "haa",
            "hanji",
            "haanji",
            "ji haan",
            "haan ji",
            "ho",
            "hoy",
            "hoye",
            "yes",
            "yeah",
            "yep",
            "yup",
            "ok",
            "okay",
            "okk",
            "confirm",
            "confirmed",
            "confirm karo",
            "confirm kar do",
            "theek hai",
            "thik hai",
            "theek he",
            "sahi hai",
            "barobar",
            "chalega",
            "chalel",
            "done",
            "correct",
            "sure",
            "pakka",
            "order karo",
            "order kar do",
            "place order",
            "place the order",
            "हाँ",
            "हां",
            "हो",
            "होय",
            "ठीक है",
            "बरोबर",
            "चालेल",
            "चलेगा",
            "कन्फर्म",
            "ओके",
        ],
    ),
    (
        Marker::Negation,
        &[
            "nahi",
            "nahin",
            "nai",
            "nahee",
            "nah",
            "no",
            "nope",
            "not",
            "naahi",
            "nako",
            "नहीं",
            "नही",
            "नाही",
            "ना",
            "नको",
        ],
    ),
    (
        Marker::Cancel,
        &[
            "cancel",
            "cancel karo",
            "cancel kar do",
            "cancel kara",
            "order cancel",
            "order cancel karo",
            "order cancel kar do",
            "cancel order",
            "cancel the order",
            "cancel my order",
            "rehne do",
            "rahne do",
            "rehene do",
            "radd",
            "radd karo",
            "radd kara",
            "order nako",
            "order nahi chahiye",
            "रद्द",
            "रद्द करा",
            "कैंसिल",
            "कॅन्सल",
            "कैंसल",
            "रहने दो",
            "ऑर्डर कैंसिल",
            "ऑर्डर रद्द करा",
        ],
    ),
    (
        Marker::Clear,
        &[
            "sab hata do",
            "sab hatao",
            "sab nikal do",
            "sab cancel",
            "clear",
            "clear cart",
            "clear the cart",
            "empty the cart",
            "start over",
            "shuru se",
            "sagla kadha",
            "sagle kadha",
            "सब हटा दो",
            "सब हटाओ",
            "सगळं काढा",
            "सगळे काढा",
        ],
    ),
    (
        Marker::Remove,
        &[
            "hata do",
            "hatao",
            "hata",
            "hatado",
            "hata dijiye",
            "hata dena",
            "nikal do",
            "nikalo",
            "nikaal do",
            "remove",
            "delete",
            "hatva",
            "hatava",
            "हटवा",
            "nikala",
            "kadha",
            "kadhun taka",
            "kadhun tak",
            "kadun taka",
            "mat do",
            "mat dena",
            "mat bhejo",
            "nahi chahiye",
            "nahin chahiye",
            "nahi chaiye",
            "nahi chahie",
            "nakoy",
            "nahi pahije",
            "don't want",
            "dont want",
            "do not want",
            "take out",
            "हटा दो",
            "हटाओ",
            "हटा",
            "निकालो",
            "निकाल दो",
            "काढा",
            "काढून टाका",
            "नहीं चाहिए",
            "नाही पाहिजे",
            "मत दो",
        ],
    ),
    (
        Marker::Reduce,
        &[
            "kam karo",
            "kam kar do",
            "kam kijiye",
            "kam kardo",
            "kami kara",
            "kami karun dya",
            "reduce",
            "minus",
            "कम करो",
            "कम कर दो",
            "कमी करा",
            "कमी करून द्या",
        ],
    ),
    (
        Marker::Set,
        &[
            "kar do",
            "make",
            "actually",
            "karo",
            "kardo",
            "kar dijiye",
            "kar dena",
            "kara",
            "make it",
            "make that",
            "make them",
            "change to",
            "change it to",
            "instead",
            "ki jagah",
            "ke badle",
            "aivaji",
            "karun dya",
            "कर दो",
            "करो",
            "करा",
            "की जगह",
            "ऐवजी",
            "करून द्या",
        ],
    ),
    (
        Marker::Ask(AskTopic::Price),
        &[
            "kitne ka",
            "kitne ki",
            "kitne ke",
            "kitne ka hai",
            "kitna hai",
            "kya rate",
            "rate",
            "price",
            "daam",
            "keemat",
            "kimat",
            "how much",
            "kiti",
            "kitila",
            "कितने का",
            "कितने की",
            "कितना है",
            "किती",
            "किंमत",
            "दाम",
        ],
    ),
    (
        Marker::Ask(AskTopic::Menu),
        &[
            "menu",
            "kya kya hai",
            "kya milega",
            "kya kya milega",
            "milega kya",
            "hai kya",
            "aahe ka",
            "ahe ka",
            "available",
            "do you have",
            "what do you have",
            "मेनू",
            "क्या क्या है",
            "मिलेगा क्या",
            "आहे का",
        ],
    ),
    (
        Marker::Ask(AskTopic::DeliveryTime),
        &[
            "kab tak",
            "kab aayega",
            "kitni der",
            "kitna time",
            "how long",
            "when",
            "delivery time",
            "kiti vel",
            "kevha",
            "कब तक",
            "कितनी देर",
            "किती वेळ",
            "केव्हा",
        ],
    ),
    (
        Marker::Ask(AskTopic::Human),
        &[
            "agent",
            "manager",
            "insaan",
            "aadmi se baat",
            "baat karni hai",
            "baat karao",
            "human",
            "person",
            "representative",
            "operator",
            "customer care",
            "माणसाशी",
            "बात कराओ",
            "एजेंट",
        ],
    ),
    (
        Marker::Ask(AskTopic::Repeat),
        &[
            "repeat",
            "dobara",
            "phir se",
            "fir se",
            "kya bola",
            "samjha nahi",
            "again",
            "parat sanga",
            "पुन्हा",
            "दोबारा",
            "फिर से",
        ],
    ),
    (
        Marker::Ask(AskTopic::Total),
        &["total", "bill", "kitna hua", "kitne hue", "kiti zale", "kiti jhale", "टोटल", "बिल", "कितना हुआ", "किती झाले"],
    ),
    (Marker::Connector, &["aur", "and", "ani", "aani", "also", "plus", "then", "phir", "और", "आणि", "अनि", "फिर"]),
    (
        Marker::Filler,
        &[
            "mujhe",
            "it",
            "this",
            "that",
            "ye",
            "yeh",
            "wo",
            "woh",
            "vo",
            "muje",
            "mereko",
            "hame",
            "humein",
            "hume",
            "liye",
            "chahiye",
            "chaiye",
            "chahie",
            "dena",
            "dijiye",
            "de do",
            "dedo",
            "de dijiye",
            "bhej do",
            "bhejo",
            "bhejna",
            "bhej dijiye",
            "la do",
            "lao",
            "laga do",
            "daal do",
            "add",
            "add karo",
            "add kar do",
            "please",
            "plz",
            "pls",
            "bhai",
            "bhaiya",
            "bhaiyya",
            "ji",
            "sir",
            "madam",
            "i",
            "want",
            "need",
            "would",
            "like",
            "give",
            "me",
            "get",
            "us",
            "the",
            "a",
            "an",
            "of",
            "some",
            "order",
            "for",
            "to",
            "my",
            "we",
            "send",
            "can",
            "you",
            "mala",
            "amhala",
            "pahije",
            "pahijet",
            "dya",
            "dyaa",
            "ghya",
            "dyal",
            "ka",
            "ahe",
            "aahe",
            "tar",
            "pan",
            "saathi",
            "hai",
            "hain",
            "ki",
            "ke",
            "ko",
            "se",
            "mein",
            "me",
            "wala",
            "wali",
            "wale",
            "vala",
            "vali",
            "bhi",
            "to",
            "toh",
            "hi",
            "bas",
            "sirf",
            "only",
            "just",
            "na",
            "naa",
            "abhi",
            "jaldi",
            "jara",
            "zara",
            "more",
            "another",
            "one more",
            "with",
            "wa",
            "va",
            "चाहिए",
            "मुझे",
            "दीजिए",
            "दे दो",
            "भेज दो",
            "भी",
            "है",
            "के",
            "की",
            "का",
            "को",
            "मला",
            "पाहिजे",
            "द्या",
            "घ्या",
            "पण",
            "वाला",
            "वाली",
            "वाले",
            "सिर्फ",
            "बस",
            // Marathi "of": "paracetamol chi don pakite".
            "chi",
            "chya",
            "ची",
            "च्या",
            // "ajun ek", "darjan bhar": more, about.
            "ajun",
            "ajoon",
            "aankhi",
            "aanakhi",
            "bhar",
            "अजून",
            "आणखी",
            "भर",
        ],
    ),
];

/// Phrases by their words' light keys, the same without nasals before
/// consonants (for Devanagari words whose anusvara an ASR added or
/// dropped: "कांढा" for काढा), and the most words a phrase has.
struct PhraseIndex {
    exact: HashMap<Vec<String>, Marker>,
    nasal_free: HashMap<Vec<String>, Marker>,
    longest: usize,
}

fn phrases() -> &'static PhraseIndex {
    static PHRASE_INDEX: OnceLock<PhraseIndex> = OnceLock::new();
    PHRASE_INDEX.get_or_init(|| {
        let mut exact = HashMap::new();
        let mut longest = 0;
        for (marker, spellings) in PHRASES {
            for s in *spellings {
                let key: Vec<String> = tokenize(s).into_iter().map(|t| t.light).collect();
                longest = longest.max(key.len());
                exact.entry(key).or_insert(*marker);
            }
        }
        let mut nasal_free = HashMap::new();
        for (key, marker) in &exact {
            let stripped: Vec<String> = key.iter().map(|k| without_nasal(k)).collect();
            nasal_free.entry(stripped).or_insert(*marker);
        }
        PhraseIndex { exact, nasal_free, longest }
    })
}

/// The longest marker phrase starting at word `i`: (marker, words).
pub fn marker_at(tokens: &[Token], i: usize) -> Option<(Marker, usize)> {
    let index = phrases();
    let words = tokens.get(i..).unwrap_or_default();
    let words = &words[..words.len().min(index.longest)];
    let longest = |map: &HashMap<Vec<String>, Marker>, key: &dyn Fn(&Token) -> String| {
        let mut phrase: Vec<String> = Vec::with_capacity(words.len());
        let mut found = None;
        for t in words {
            phrase.push(key(t));
            if let Some(m) = map.get(&phrase) {
                found = Some((*m, phrase.len()));
            }
        }
        found
    };
    let exact = longest(&index.exact, &|t| t.light.clone());
    if !words.iter().any(|t| t.devanagari) {
        return exact;
    }
    let stripped =
        longest(&index.nasal_free, &|t| if t.devanagari { without_nasal(&t.light) } else { t.light.clone() });
    match (exact, stripped) {
        (Some(e), Some(s)) if s.1 > e.1 => Some(s),
        (None, s) => s,
        (e, _) => e,
    }
}

/// Words that suggest a language, for answering in it.
pub const ENGLISH_CUES: &[&str] = &[
    "the", "and", "one", "two", "three", "four", "five", "please", "want", "remove", "make", "it", "i", "with",
    "without", "give", "me", "of", "plates", "need", "yes", "no", "half", "kilo", "less", "extra", "more",
];
pub const MARATHI_CUES: &[&str] = &[
    "ani", "aani", "pahije", "nako", "dya", "ghya", "don", "ahe", "aahe", "kiti", "hoy", "mala", "kara", "kadha",
    "paach", "pach", "saha", "daha", "adich", "ardha", "barobar", "chalel", "tar", "cha", "chi", "che",
];
pub const HINDI_CUES: &[&str] = &[
    "aur", "chahiye", "nahi", "hai", "do", "teen", "bhaiya", "dena", "kar", "hata", "mujhe", "wala", "wali", "haan",
    "bhej", "paanch", "panch", "dus", "dedh", "dhai", "aadha", "adha", "sawa", "paune", "kam", "bina", "ek",
];
