//! Latin Hinglish to Devanagari, for the ears of a Hindi or Marathi voice.
//!
//! The dialog speaks `hi-en` in Latin Hinglish ("Aapka order ho gaya") and
//! puts catalog names that have no Devanagari alias ("Godavari Misal House")
//! inside its Devanagari `hi` and `mr` prompts. espeak-ng's Hindi and Marathi
//! voices read Latin letters with English sounds, and neural Indic voices are
//! trained on Devanagari, so every Latin word of a `hi`, `hi-en` or `mr` text
//! is rewritten in Devanagari before synthesis. English (`en`) text is left
//! alone.
//!
//! The goal is pronunciation, not spelling: a word is looked up in a small
//! lexicon (English loanwords of the prompts and catalogs, Hinglish words
//! whose Latin spelling is ambiguous, and the number words [`spell`] writes),
//! and otherwise converted by the rules of romanised Hindi: `aa ee oo ai au`
//! as long vowels, `sh ch chh kh gh th dh ph bh jh` as single letters, a
//! nasal before a consonant as anusvara, doubled consonants as conjuncts,
//! a final `a`/`i`/`u` as a long vowel and no vowel after a final consonant
//! (the voices drop the final schwa themselves). Acronyms (UPI, SMS, ORS) are
//! spelled with the Hindi letter names; digits stay digits, since the Hindi
//! voice reads them in Hindi.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use mangwale_voice::catalog::{Lang, Paise};
use mangwale_voice::numbers::Qty;
use mangwale_voice::spell;

/// `text` as a voice of `lang` should be given it: unchanged for English,
/// with every Latin word in Devanagari for Hindi, Hinglish and Marathi.
pub fn for_speech(text: &str, lang: Lang) -> Cow<'_, str> {
    match lang {
        Lang::En => Cow::Borrowed(text),
        Lang::Hi | Lang::HiEn | Lang::Mr if !text.chars().any(|c| c.is_ascii_alphabetic() || c == '&') => {
            Cow::Borrowed(text)
        }
        Lang::Hi | Lang::HiEn | Lang::Mr => Cow::Owned(to_devanagari(text, lang)),
    }
}

/// Rewrites the Latin words of `text` in Devanagari; everything else
/// (Devanagari, digits, punctuation, spaces) passes through. `lang` picks
/// the word for `&` ("और", "आणि").
pub fn to_devanagari(text: &str, lang: Lang) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut word = String::new();
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push_str(&word_to_devanagari(&word));
            word.clear();
        }
        if c == '&' {
            out.push_str(if lang == Lang::Mr { "आणि" } else { "और" });
        } else {
            out.push(c);
        }
    }
    if !word.is_empty() {
        out.push_str(&word_to_devanagari(&word));
    }
    out
}

/// One Latin word (ASCII letters only) in Devanagari.
pub fn word_to_devanagari(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    if let Some(known) = lexicon().get(lower.as_str()) {
        return (*known).to_string();
    }
    let acronym = word.len() <= 5 && word.chars().all(|c| c.is_ascii_uppercase());
    if acronym && (word.len() > 1 || !matches!(word, "A" | "I" | "O")) {
        return word.chars().map(letter_name).collect();
    }
    by_rules(&lower)
}

/// The Hindi name of a Latin letter, as acronyms are spoken ("यूपीआई").
fn letter_name(c: char) -> &'static str {
    match c.to_ascii_uppercase() {
        'A' => "ए",
        'B' => "बी",
        'C' => "सी",
        'D' => "डी",
        'E' => "ई",
        'F' => "एफ़",
        'G' => "जी",
        'H' => "एच",
        'I' => "आई",
        'J' => "जे",
        'K' => "के",
        'L' => "एल",
        'M' => "एम",
        'N' => "एन",
        'O' => "ओ",
        'P' => "पी",
        'Q' => "क्यू",
        'R' => "आर",
        'S' => "एस",
        'T' => "टी",
        'U' => "यू",
        'V' => "वी",
        'W' => "डब्ल्यू",
        'X' => "एक्स",
        'Y' => "वाई",
        _ => "ज़ेड",
    }
}

/// A unit of a romanised word: a consonant letter or a vowel sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Consonant { latin: &'static str, deva: &'static str },
    Vowel(Vowel),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vowel {
    A,
    Aa,
    I,
    Ii,
    U,
    Uu,
    E,
    Ai,
    O,
    Au,
}

impl Vowel {
    /// The letter at the start of a word or after another vowel.
    fn independent(self) -> &'static str {
        match self {
            Vowel::A => "अ",
            Vowel::Aa => "आ",
            Vowel::I => "इ",
            Vowel::Ii => "ई",
            Vowel::U => "उ",
            Vowel::Uu => "ऊ",
            Vowel::E => "ए",
            Vowel::Ai => "ऐ",
            Vowel::O => "ओ",
            Vowel::Au => "औ",
        }
    }

    /// The sign after a consonant (none for the inherent `a`).
    fn matra(self) -> &'static str {
        match self {
            Vowel::A => "",
            Vowel::Aa => "ा",
            Vowel::I => "ि",
            Vowel::Ii => "ी",
            Vowel::U => "ु",
            Vowel::Uu => "ू",
            Vowel::E => "े",
            Vowel::Ai => "ै",
            Vowel::O => "ो",
            Vowel::Au => "ौ",
        }
    }

    /// Hinglish writes a final long vowel short: "karna", "paani", "chalu".
    fn lengthened(self) -> Vowel {
        match self {
            Vowel::A => Vowel::Aa,
            Vowel::I => Vowel::Ii,
            Vowel::U => Vowel::Uu,
            v => v,
        }
    }
}

/// Consonant spellings, longest first so that "chh" wins over "ch" and "c".
const CONSONANTS: &[(&str, &str)] = &[
    ("chh", "छ"),
    ("ksh", "क्ष"),
    ("sh", "श"),
    ("ch", "च"),
    ("kh", "ख"),
    ("gh", "घ"),
    ("th", "थ"),
    ("dh", "ध"),
    ("ph", "फ"),
    ("bh", "भ"),
    ("jh", "झ"),
    ("k", "क"),
    ("g", "ग"),
    ("c", "क"),
    ("j", "ज"),
    ("t", "त"),
    ("d", "द"),
    ("n", "न"),
    ("p", "प"),
    ("b", "ब"),
    ("m", "म"),
    ("y", "य"),
    ("r", "र"),
    ("l", "ल"),
    ("v", "व"),
    ("w", "व"),
    ("s", "स"),
    ("h", "ह"),
    ("z", "ज़"),
    ("f", "फ़"),
    ("q", "क"),
    ("x", "क्स"),
];

/// Vowel spellings, longest first.
const VOWELS: &[(&str, Vowel)] = &[
    ("aa", Vowel::Aa),
    ("ai", Vowel::Ai),
    ("au", Vowel::Au),
    ("ae", Vowel::Ai),
    ("ee", Vowel::Ii),
    ("ii", Vowel::Ii),
    ("oo", Vowel::Uu),
    ("uu", Vowel::Uu),
    ("ou", Vowel::Au),
    ("a", Vowel::A),
    ("i", Vowel::I),
    ("u", Vowel::U),
    ("e", Vowel::E),
    ("o", Vowel::O),
];

/// Splits a lowercase word into consonants and vowels.
fn units(word: &str) -> Vec<Unit> {
    let mut out = Vec::new();
    let mut rest = word;
    while !rest.is_empty() {
        if let Some((latin, vowel)) = VOWELS.iter().find(|(l, _)| rest.starts_with(l)) {
            // "bataiye": an `ai` before `y` is a long a and an i (बताइए),
            // not the diphthong ऐ.
            if *vowel == Vowel::Ai && rest[2..].starts_with('y') {
                out.push(Unit::Vowel(Vowel::Aa));
                out.push(Unit::Vowel(Vowel::I));
            } else {
                out.push(Unit::Vowel(*vowel));
            }
            rest = &rest[latin.len()..];
        } else if let Some((latin, deva)) = CONSONANTS.iter().find(|(l, _)| rest.starts_with(l)) {
            // A final `y` after a consonant is a vowel ("Sabzy", "Tasty").
            if *latin == "y" && rest.len() == 1 && matches!(out.last(), Some(Unit::Consonant { .. })) {
                out.push(Unit::Vowel(Vowel::Ii));
            } else {
                out.push(Unit::Consonant { latin, deva });
            }
            rest = &rest[latin.len()..];
        } else {
            // Not a letter we spell (the caller passes ASCII letters only).
            let skip = rest.chars().next().map_or(1, char::len_utf8);
            rest = &rest[skip..];
        }
    }
    out
}

/// Letters a nasal turns into an anusvara before: the stops and sibilants.
fn nasalises(next: &str) -> bool {
    !matches!(next, "y" | "r" | "l" | "v" | "w" | "h" | "m" | "n")
}

/// Whether two consonants written together are joined with a virama (a
/// conjunct: क्या, स्वागत, पच्चीस) rather than left with the inherent vowel,
/// which the voices drop inside a word anyway (करना reads "karnaa").
fn joins(first: &str, second: &str, same_letter: bool) -> bool {
    same_letter
        || matches!(second, "y" | "r" | "v" | "w")
        || matches!(first, "s" | "sh")
        || (matches!(first, "l" | "n" | "m" | "r") && second == "h")
}

/// The rule-based conversion of one lowercase word.
fn by_rules(word: &str) -> String {
    // "-ein" is the nasal e of verbs and postpositions: karein करें,
    // bhejein भेजें.
    if let Some(stem) = word.strip_suffix("ein")
        && stem.ends_with(|c: char| !"aeiou".contains(c))
        && !stem.is_empty()
    {
        return format!("{}ें", by_rules(stem));
    }
    let units = units(word);
    let mut out = String::with_capacity(word.len() * 3);
    let last = units.len().saturating_sub(1);
    for (i, unit) in units.iter().enumerate() {
        match *unit {
            Unit::Vowel(v) => {
                let after_consonant = i > 0 && matches!(units[i - 1], Unit::Consonant { .. });
                let v = if i == last && i > 0 { v.lengthened() } else { v };
                out.push_str(if after_consonant { v.matra() } else { v.independent() });
            }
            Unit::Consonant { latin, deva } => {
                let next = units.get(i + 1);
                let next_consonant = match next {
                    Some(Unit::Consonant { latin, deva }) => Some((*latin, *deva)),
                    _ => None,
                };
                let after_vowel = i > 0 && matches!(units[i - 1], Unit::Vowel(_));
                match next_consonant {
                    Some((next_latin, _)) if matches!(latin, "n" | "m") && after_vowel => {
                        let labial = matches!(next_latin, "p" | "ph" | "b" | "bh");
                        if (latin == "n" && nasalises(next_latin)) || (latin == "m" && labial) {
                            out.push('ं');
                        } else if joins(latin, next_latin, false) || next_latin == latin {
                            out.push_str(deva);
                            out.push('्');
                        } else {
                            out.push_str(deva);
                        }
                    }
                    Some((next_latin, next_deva)) => {
                        out.push_str(deva);
                        // A cluster ending the word is always joined:
                        // uplabdh उपलब्ध, dard दर्द.
                        let final_cluster = i + 2 == units.len();
                        if final_cluster || joins(latin, next_latin, deva == next_deva) {
                            out.push('्');
                        }
                    }
                    None => out.push_str(deva),
                }
            }
        }
    }
    out
}

/// Words whose Devanagari the rules would get wrong: English loanwords of
/// the prompts and catalogs, Hinglish words spelled ambiguously, and the
/// number words [`spell`] writes in Hinglish.
fn lexicon() -> &'static HashMap<&'static str, &'static str> {
    static LEXICON: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    LEXICON.get_or_init(|| {
        let mut map: HashMap<&'static str, &'static str> = HashMap::new();
        for (hinglish, devanagari) in spelled_words() {
            map.insert(hinglish, devanagari);
        }
        for (latin, deva) in WORDS {
            map.insert(latin, deva);
        }
        map
    })
}

/// Pairs of Hinglish and Hindi words from [`spell`], so that an amount
/// read in Hinglish ("teen sau pachchees rupaye") is read with the Hindi
/// words the dialog writes for `hi` ("तीन सौ पच्चीस रुपये").
fn spelled_words() -> Vec<(&'static str, &'static str)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for n in (0..100).chain([100, 1_000, 100_000, 10_000_000]) {
        pairs.push((spell::number(n, Lang::HiEn), spell::number(n, Lang::Hi)));
    }
    for paise in [100, 200, 50, 150] {
        let amount = Paise(paise);
        pairs.push((spell::rupees(amount, Lang::HiEn), spell::rupees(amount, Lang::Hi)));
    }
    for milli in [250, 500, 750, 1_250, 1_500, 2_500, 3_500, 3_250, 3_750] {
        let qty = Qty(milli);
        pairs.push((spell::quantity(qty, Lang::HiEn), spell::quantity(qty, Lang::Hi)));
    }
    let mut words = Vec::new();
    for (hinglish, hindi) in pairs {
        let (latin, deva): (Vec<&str>, Vec<&str>) = (hinglish.split(' ').collect(), hindi.split(' ').collect());
        if latin.len() != deva.len() {
            continue;
        }
        for (l, d) in latin.into_iter().zip(deva) {
            if !l.is_empty() && l.chars().all(|c| c.is_ascii_lowercase()) {
                // Built once per process: leaking a few hundred bytes gives
                // the lexicon one `&'static str` type for every entry.
                words.push((&*Box::leak(l.to_string().into_boxed_str()), &*Box::leak(d.to_string().into_boxed_str())));
            }
        }
    }
    words
}

/// The hand-written lexicon (lowercase Latin -> Devanagari).
const WORDS: &[(&str, &str)] = &[
    // Hinglish function words and the prompts' own vocabulary.
    ("hai", "है"),
    ("hain", "हैं"),
    ("mein", "में"),
    ("main", "मैं"),
    ("nahi", "नहीं"),
    ("nahin", "नहीं"),
    ("haan", "हाँ"),
    ("han", "हाँ"),
    ("yeh", "यह"),
    ("ye", "ये"),
    ("woh", "वह"),
    ("wo", "वो"),
    ("kya", "क्या"),
    ("aur", "और"),
    ("ka", "का"),
    ("ki", "की"),
    ("ke", "के"),
    ("ko", "को"),
    ("se", "से"),
    ("par", "पर"),
    ("ya", "या"),
    ("is", "इस"),
    ("us", "उस"),
    ("theek", "ठीक"),
    ("thik", "ठीक"),
    ("kijiye", "कीजिए"),
    ("dijiye", "दीजिए"),
    ("bataiye", "बताइए"),
    ("dabaiye", "दबाइए"),
    ("boliye", "बोलिए"),
    ("chahiye", "चाहिए"),
    ("liye", "लिए"),
    ("hata", "हटा"),
    ("hatao", "हटाओ"),
    ("kripya", "कृपया"),
    ("karein", "करें"),
    ("karen", "करें"),
    ("karenge", "करेंगे"),
    ("jaayega", "जाएगा"),
    ("aapka", "आपका"),
    ("aapki", "आपकी"),
    ("aapko", "आपको"),
    ("aap", "आप"),
    ("hamare", "हमारे"),
    ("namaste", "नमस्ते"),
    ("namaskar", "नमस्कार"),
    ("dhanyavaad", "धन्यवाद"),
    ("dhanyawad", "धन्यवाद"),
    ("shukriya", "शुक्रिया"),
    ("maaf", "माफ़"),
    ("dukaan", "दुकान"),
    ("dukan", "दुकान"),
    ("swagat", "स्वागत"),
    ("pichhla", "पिछला"),
    ("adhoora", "अधूरा"),
    ("reh", "रह"),
    ("jod", "जोड़"),
    ("pehle", "पहले"),
    ("chalu", "चालू"),
    ("samajh", "समझ"),
    ("dikkat", "दिक्कत"),
    ("yahan", "यहाँ"),
    ("wahan", "वहाँ"),
    ("kuch", "कुछ"),
    ("kuchh", "कुछ"),
    ("jismein", "जिसमें"),
    ("badalna", "बदलना"),
    ("batana", "बताना"),
    ("pata", "पता"),
    ("thoda", "थोड़ा"),
    ("bada", "बड़ा"),
    ("chhota", "छोटा"),
    ("ladka", "लड़का"),
    ("mangwale", "मंगवाले"),
    ("mangwana", "मंगवाना"),
    ("paisa", "पैसा"),
    ("rupaye", "रुपये"),
    ("rupaya", "रुपया"),
    ("rupees", "रुपये"),
    ("rupee", "रुपया"),
    ("rs", "रुपये"),
    ("paise", "पैसे"),
    // English loanwords of the prompts.
    ("order", "ऑर्डर"),
    ("orders", "ऑर्डर्स"),
    ("cash", "कैश"),
    ("delivery", "डिलीवरी"),
    ("online", "ऑनलाइन"),
    ("upi", "यूपीआई"),
    ("link", "लिंक"),
    ("sms", "एसएमएस"),
    ("whatsapp", "व्हाट्सऐप"),
    ("total", "टोटल"),
    ("cart", "कार्ट"),
    ("confirm", "कन्फ़र्म"),
    ("cancel", "कैंसल"),
    ("payment", "पेमेंट"),
    ("pay", "पे"),
    ("number", "नंबर"),
    ("desk", "डेस्क"),
    ("system", "सिस्टम"),
    ("call", "कॉल"),
    ("phone", "फ़ोन"),
    ("store", "स्टोर"),
    ("stores", "स्टोर्स"),
    ("shop", "शॉप"),
    ("ok", "ओके"),
    ("okay", "ओके"),
    ("charge", "चार्ज"),
    ("address", "एड्रेस"),
    ("location", "लोकेशन"),
    ("pin", "पिन"),
    ("code", "कोड"),
    ("place", "प्लेस"),
    ("item", "आइटम"),
    ("items", "आइटम्स"),
    ("menu", "मेन्यू"),
    ("kilo", "किलो"),
    ("kg", "किलो"),
    ("gram", "ग्राम"),
    ("grams", "ग्राम"),
    ("g", "ग्राम"),
    ("litre", "लीटर"),
    ("liter", "लीटर"),
    ("ml", "मिलीलीटर"),
    ("mg", "मिलीग्राम"),
    ("packet", "पैकेट"),
    ("pack", "पैक"),
    ("plate", "प्लेट"),
    ("piece", "पीस"),
    ("pieces", "पीस"),
    ("dozen", "दर्जन"),
    ("minute", "मिनट"),
    ("minutes", "मिनट"),
    ("free", "फ़्री"),
    ("offer", "ऑफ़र"),
    ("time", "टाइम"),
    ("sorry", "सॉरी"),
    ("second", "सेकंड"),
    ("seconds", "सेकंड"),
    ("moment", "मोमेंट"),
    ("please", "प्लीज़"),
    ("thank", "थैंक"),
    ("you", "यू"),
    ("yes", "यस"),
    ("no", "नो"),
    // Words of store names.
    ("house", "हाउस"),
    ("hotel", "होटल"),
    ("restaurant", "रेस्टोरेंट"),
    ("cafe", "कैफ़े"),
    ("sweets", "स्वीट्स"),
    ("bakers", "बेकर्स"),
    ("bakery", "बेकरी"),
    ("pharmacy", "फ़ार्मेसी"),
    ("medical", "मेडिकल"),
    ("medicals", "मेडिकल्स"),
    ("general", "जनरल"),
    ("supermarket", "सुपरमार्केट"),
    ("mart", "मार्ट"),
    ("fresh", "फ़्रेश"),
    ("farm", "फ़ार्म"),
    ("produce", "प्रोड्यूस"),
    ("basket", "बास्केट"),
    ("plus", "प्लस"),
    ("care", "केयर"),
    ("daily", "डेली"),
    ("needs", "नीड्स"),
    ("provision", "प्रोविज़न"),
    ("fruits", "फ़्रूट्स"),
    ("vegetables", "वेजिटेबल्स"),
    ("wok", "वॉक"),
    ("hakka", "हक्का"),
    ("punjab", "पंजाब"),
    ("dhaba", "ढाबा"),
    ("nashik", "नाशिक"),
    ("udupi", "उडुपी"),
    ("shree", "श्री"),
    ("shri", "श्री"),
    ("ganesh", "गणेश"),
    ("krishna", "कृष्णा"),
    ("maharashtrian", "महाराष्ट्रियन"),
    ("nawab", "नवाब"),
    ("godavari", "गोदावरी"),
    ("kirana", "किराना"),
    ("indrayani", "इंद्रायणी"),
    // Words of item names.
    ("chicken", "चिकन"),
    ("butter", "बटर"),
    ("rice", "राइस"),
    ("oil", "ऑयल"),
    ("powder", "पाउडर"),
    ("milk", "मिल्क"),
    ("toned", "टोन्ड"),
    ("tea", "टी"),
    ("coffee", "कॉफ़ी"),
    ("filter", "फ़िल्टर"),
    ("bread", "ब्रेड"),
    ("cake", "केक"),
    ("soup", "सूप"),
    ("fried", "फ़्राइड"),
    ("veg", "वेज"),
    ("cream", "क्रीम"),
    ("roll", "रोल"),
    ("salad", "सलाद"),
    ("sweet", "स्वीट"),
    ("plain", "प्लेन"),
    ("lemon", "लेमन"),
    ("onion", "अनियन"),
    ("potato", "पोटैटो"),
    ("tomato", "टोमैटो"),
    ("cookies", "कुकीज़"),
    ("toast", "टोस्ट"),
    ("puff", "पफ़"),
    ("pastry", "पेस्ट्री"),
    ("white", "व्हाइट"),
    ("brown", "ब्राउन"),
    ("black", "ब्लैक"),
    ("forest", "फ़ॉरेस्ट"),
    ("chocolate", "चॉकलेट"),
    ("truffle", "ट्रफ़ल"),
    ("pineapple", "पाइनएप्पल"),
    ("mix", "मिक्स"),
    ("masala", "मसाला"),
    ("chai", "चाय"),
    ("thali", "थाली"),
    ("dosa", "डोसा"),
    ("idli", "इडली"),
    ("vada", "वड़ा"),
    ("pav", "पाव"),
    ("pao", "पाव"),
    ("misal", "मिसळ"),
    ("dal", "दाल"),
    ("daal", "दाल"),
    ("atta", "आटा"),
    ("salt", "सॉल्ट"),
    ("sugar", "शुगर"),
    ("egg", "एग"),
    ("eggs", "एग्स"),
    ("biscuits", "बिस्किट्स"),
    ("noodles", "नूडल्स"),
    ("instant", "इंस्टेंट"),
    ("cutting", "कटिंग"),
    ("chilli", "चिली"),
    ("hot", "हॉट"),
    ("sour", "सॉर"),
    ("and", "एंड"),
    ("spring", "स्प्रिंग"),
    ("triple", "ट्रिपल"),
    ("schezwan", "शेज़वान"),
    ("momos", "मोमोज़"),
    ("manchurian", "मंचूरियन"),
    ("cold", "कोल्ड"),
    ("drink", "ड्रिंक"),
    ("double", "डबल"),
    ("tikka", "टिक्का"),
    ("tandoori", "तंदूरी"),
    ("biryani", "बिरयानी"),
    ("mutton", "मटन"),
    ("half", "हाफ़"),
    ("full", "फ़ुल"),
    ("extra", "एक्स्ट्रा"),
    ("special", "स्पेशल"),
    ("green", "ग्रीन"),
    ("red", "रेड"),
    ("raita", "रायता"),
    ("roti", "रोटी"),
    ("naan", "नान"),
    ("paratha", "पराठा"),
    ("lassi", "लस्सी"),
    ("batata", "बटाटा"),
    ("kanda", "कांदा"),
    ("kande", "कांदे"),
    ("pohe", "पोहे"),
    ("poha", "पोहा"),
    ("bhaji", "भजी"),
    ("buttermilk", "बटरमिल्क"),
    ("dahi", "दही"),
    ("upma", "उपमा"),
    ("sambar", "सांबार"),
    ("bhakri", "भाकरी"),
    ("bhat", "भात"),
    ("jowar", "ज्वारी"),
    ("flour", "फ़्लोर"),
    ("soap", "सोप"),
    ("detergent", "डिटर्जेंट"),
    ("bar", "बार"),
    ("syrup", "सिरप"),
    ("tablets", "टैबलेट्स"),
    ("sachet", "सैशे"),
    ("paneer", "पनीर"),
    ("ghee", "घी"),
    ("cow", "काउ"),
    ("face", "फ़ेस"),
    ("mask", "मास्क"),
    ("on", "ऑन"),
    // Catalog words (crates/voice/tests/data/catalogs) the rules misread:
    // English produce, groceries and medicines, and Hindi or Marathi dish
    // names romanised with short vowels for long ones.
    ("wheat", "व्हीट"),
    ("garlic", "गार्लिक"),
    ("ginger", "जिंजर"),
    ("orange", "ऑरेंज"),
    ("apple", "ऐप्पल"),
    ("banana", "बनाना"),
    ("carrot", "कैरट"),
    ("cabbage", "कैबेज"),
    ("cauliflower", "कॉलीफ़्लावर"),
    ("coriander", "कोरिएंडर"),
    ("cucumber", "कुकुंबर"),
    ("curd", "कर्ड"),
    ("grapes", "ग्रेप्स"),
    ("guava", "ग्वावा"),
    ("papaya", "पपीता"),
    ("pomegranate", "पॉमग्रेनेट"),
    ("watermelon", "वॉटरमेलन"),
    ("lime", "लाइम"),
    ("peas", "पीज़"),
    ("bottle", "बॉटल"),
    ("gourd", "गार्ड"),
    ("lady", "लेडी"),
    ("finger", "फ़िंगर"),
    ("drumstick", "ड्रमस्टिक"),
    ("mango", "मैंगो"),
    ("alphonso", "अल्फ़ांसो"),
    ("groundnut", "ग्राउंडनट"),
    ("groundnuts", "ग्राउंडनट्स"),
    ("sunflower", "सनफ़्लावर"),
    ("iodised", "आयोडाइज़्ड"),
    ("turmeric", "टर्मरिक"),
    ("jaggery", "जैगरी"),
    ("matchbox", "मैचबॉक्स"),
    ("bathing", "बाथिंग"),
    ("dishwash", "डिशवॉश"),
    ("paracetamol", "पैरासिटामोल"),
    ("ibuprofen", "आइबुप्रोफ़ेन"),
    ("cetirizine", "सेटिरिज़ीन"),
    ("antacid", "एंटासिड"),
    ("cough", "कफ़"),
    ("vitamin", "विटामिन"),
    ("multivitamin", "मल्टीविटामिन"),
    ("antiseptic", "एंटीसेप्टिक"),
    ("liquid", "लिक्विड"),
    ("adhesive", "एडहेसिव"),
    ("bandage", "बैंडेज"),
    ("bandages", "बैंडेजेस"),
    ("crepe", "क्रेप"),
    ("cotton", "कॉटन"),
    ("pain", "पेन"),
    ("relief", "रिलीफ़"),
    ("balm", "बाम"),
    ("digital", "डिजिटल"),
    ("thermometer", "थर्मामीटर"),
    ("hand", "हैंड"),
    ("sanitizer", "सैनिटाइज़र"),
    ("baby", "बेबी"),
    ("diapers", "डायपर्स"),
    ("medium", "मीडियम"),
    ("sanitary", "सैनिटरी"),
    ("pads", "पैड्स"),
    ("insulin", "इंसुलिन"),
    ("pen", "पेन"),
    ("needles", "नीडल्स"),
    ("blood", "ब्लड"),
    ("pressure", "प्रेशर"),
    ("monitor", "मॉनिटर"),
    ("vapour", "वेपर"),
    ("rub", "रब"),
    ("chewable", "च्यूएबल"),
    ("glucose", "ग्लूकोज़"),
    ("south", "साउथ"),
    ("indian", "इंडियन"),
    ("mysore", "मैसूर"),
    ("kesari", "केसरी"),
    ("bath", "बाथ"),
    ("rusk", "रस्क"),
    ("nylon", "नायलॉन"),
    ("shev", "शेव"),
    ("manchow", "मनचाउ"),
    ("gulab", "गुलाब"),
    ("jamun", "जामुन"),
    ("ladoo", "लड्डू"),
    ("laddu", "लड्डू"),
    ("kaju", "काजू"),
    ("katli", "कतली"),
    ("chapati", "चपाती"),
    ("sabudana", "साबूदाना"),
    ("khichdi", "खिचड़ी"),
    ("rabdi", "रबड़ी"),
    ("kadai", "कड़ाही"),
    ("tadka", "तड़का"),
    ("kadhi", "कढ़ी"),
    ("solkadhi", "सोलकढ़ी"),
    ("pedha", "पेढ़ा"),
    ("aloo", "आलू"),
    ("bhujia", "भुजिया"),
    ("rasmalai", "रसमलाई"),
    ("nankhatai", "नानखटाई"),
    ("papdi", "पापड़ी"),
    ("soan", "सोन"),
    ("sarson", "सरसों"),
    ("meetha", "मीठा"),
    ("chole", "छोले"),
    ("bhature", "भटूरे"),
    ("thalipeeth", "थालीपीठ"),
    ("puran", "पूरण"),
    ("poli", "पोळी"),
    ("chivda", "चिवडा"),
    ("usal", "उसळ"),
    ("matki", "मटकी"),
    ("zunka", "झुणका"),
    ("bhakar", "भाकर"),
    ("bhakarwadi", "भाकरवडी"),
    ("vangi", "वांगी"),
    ("kokum", "कोकम"),
    ("palak", "पालक"),
    ("urad", "उड़द"),
    ("medu", "मेदू"),
    ("ladi", "लादी"),
    ("khari", "खारी"),
    ("chikoo", "चीकू"),
    ("dum", "दम"),
    ("basmati", "बासमती"),
    ("bajra", "बाजरा"),
    ("rumali", "रुमाली"),
    ("kalakand", "कलाकंद"),
    ("aamras", "आमरस"),
    ("amrakhand", "आम्रखंड"),
    ("shrikhand", "श्रीखंड"),
    ("khandvi", "खांडवी"),
    ("khaman", "खमण"),
    ("uttapam", "उत्तपम"),
    ("ukadiche", "उकडीचे"),
    ("varan", "वरण"),
    ("masale", "मसाले"),
    ("pithla", "पिठलं"),
    ("goda", "गोडा"),
    ("sabzi", "सब्ज़ी"),
    ("mandi", "मंडी"),
    ("mithas", "मिठास"),
    ("farsan", "फ़रसाण"),
    ("swad", "स्वाद"),
    ("annapurna", "अन्नपूर्णा"),
    ("samarth", "समर्थ"),
    ("kisan", "किसान"),
    ("jain", "जैन"),
    ("patil", "पाटील"),
    ("sharma", "शर्मा"),
    ("hari", "हरि"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn hi(text: &str) -> String {
        for_speech(text, Lang::HiEn).into_owned()
    }

    #[test]
    fn the_lexicon_has_one_reading_per_lowercase_word() {
        let mut seen = HashMap::new();
        for (latin, deva) in WORDS {
            assert!(latin.chars().all(|c| c.is_ascii_lowercase()), "{latin}");
            assert!(!deva.chars().any(|c| c.is_ascii()), "{deva}");
            if let Some(before) = seen.insert(*latin, *deva) {
                assert_eq!(before, *deva, "{latin} is in the lexicon twice");
            }
        }
    }

    #[test]
    fn english_is_untouched_and_devanagari_passes_through() {
        let en = "Hello, welcome to Godavari Misal House. What would you like to order?";
        assert!(matches!(for_speech(en, Lang::En), Cow::Borrowed(t) if t == en));
        let devanagari = "नमस्ते, क्या ऑर्डर करना है? 1 हाँ, 2 नहीं।";
        assert!(matches!(for_speech(devanagari, Lang::Hi), Cow::Borrowed(t) if t == devanagari));
    }

    #[test]
    fn the_vowel_and_consonant_rules_of_romanised_hindi() {
        // Long vowels, aspirates, final a as aa, final consonant bare.
        assert_eq!(by_rules("karna"), "करना");
        assert_eq!(by_rules("khaali"), "खाली");
        assert_eq!(by_rules("dhokla"), "धोकला");
        assert_eq!(by_rules("gaya"), "गया");
        assert_eq!(by_rules("mila"), "मिला");
        assert_eq!(by_rules("badal"), "बदल");
        assert_eq!(by_rules("kachori"), "कचोरी");
        assert_eq!(by_rules("kamal"), "कमल");
        assert_eq!(by_rules("bhature"), "भतुरे");
        assert_eq!(by_rules("jhola"), "झोला");
        assert_eq!(by_rules("chhah"), "छह");
        assert_eq!(by_rules("phulka"), "फुलका");
        assert_eq!(by_rules("saath"), "साथ");
        assert_eq!(by_rules("aur"), "और");
        assert_eq!(by_rules("aaya"), "आया");
        assert_eq!(by_rules("paisa"), "पैसा");
        assert_eq!(by_rules("chaar"), "चार");
        // Nasals before consonants as anusvara, not before vowels.
        assert_eq!(by_rules("mangwa"), "मंग्वा");
        assert_eq!(by_rules("band"), "बंद");
        assert_eq!(by_rules("moong"), "मूंग");
        assert_eq!(by_rules("namkeen"), "नमकीन");
        assert_eq!(by_rules("champa"), "चंपा");
        // Doubled letters and clusters as conjuncts.
        assert_eq!(by_rules("pachchees"), "पच्चीस");
        assert_eq!(by_rules("lassi"), "लस्सी");
        assert_eq!(by_rules("kya"), "क्या");
        assert_eq!(by_rules("swaad"), "स्वाद");
        assert_eq!(by_rules("namaste"), "नमस्ते");
        assert_eq!(by_rules("kolhapur"), "कोल्हपुर");
        assert_eq!(by_rules("bhakri"), "भक्री");
        // "-aiye" is aa + i, not ai.
        assert_eq!(by_rules("bataiye"), "बताइये");
        assert_eq!(by_rules("indrayani"), "इंद्रयनी");
        // Final clusters joined, "-ein" nasal.
        assert_eq!(by_rules("uplabdh"), "उपलब्ध");
        assert_eq!(by_rules("bhejein"), "भेजें");
        assert_eq!(by_rules("bheja"), "भेजा");
    }

    #[test]
    fn acronyms_are_spelled_and_digits_stay_digits() {
        assert_eq!(hi("UPI link ke liye 2 dabaiye."), "यूपीआई लिंक के लिए 2 दबाइए.");
        assert_eq!(hi("ORS Sachet"), "ओआरएस सैशे");
        assert_eq!(hi("N95 Face Mask"), "एन95 फ़ेस मास्क");
        assert_eq!(hi("Paracetamol 500 mg"), "पैरासिटामोल 500 मिलीग्राम");
    }

    #[test]
    fn number_words_of_the_dialog_come_out_as_its_hindi_words() {
        for n in [1_u64, 7, 8, 11, 25, 48, 99, 250, 325, 1_050, 125_000] {
            assert_eq!(hi(&spell::number(n, Lang::HiEn)), spell::number(n, Lang::Hi), "{n}");
        }
        let amount = Paise(32_550);
        assert_eq!(hi(&spell::rupees(amount, Lang::HiEn)), spell::rupees(amount, Lang::Hi));
        assert_eq!(hi("dedh kilo"), "डेढ़ किलो");
        assert_eq!(hi("saadhe teen kilo"), "साढ़े तीन किलो");
    }

    /// Hinglish prompts of `mangwale_voice::dialog::prompts`, and what a Hindi
    /// voice is given.
    #[test]
    fn hinglish_prompts_become_devanagari() {
        let cases = [
            (
                "Namaste, Mangwale mein aapka swagat hai. Kya order karna hai?",
                "नमस्ते, मंगवाले में आपका स्वागत है। क्या ऑर्डर करना है?",
            ),
            ("Kis dukaan se order karna hai, ya kya mangwana hai?", "किस दुकान से ऑर्डर करना है, या क्या मंगवाना है?"),
            ("Aur kuch?", "और कुछ?"),
            ("Theek hai.", "ठीक है।"),
            ("Cart khaali kar diya.", "कार्ट खाली कर दिया।"),
            (
                "Payment kaise karenge? Cash on delivery ke liye 1, UPI link ke liye 2 dabaiye.",
                "पेमेंट कैसे करेंगे? कैश ऑन डिलीवरी के लिए 1, यूपीआई लिंक के लिए 2 दबाइए।",
            ),
            (
                "Aapka order ho gaya. Order number 1042, total teen sau pachchees rupaye.",
                "आपका ऑर्डर हो गया। ऑर्डर नंबर 1042, टोटल तीन सौ पच्चीस रुपये।",
            ),
            (
                "Maaf kijiye, abhi system mein dikkat hai. Aapko order desk se jod rahe hain.",
                "माफ़ कीजिए, अभी सिस्टम में दिक्कत है। आपको ऑर्डर डेस्क से जोड़ रहे हैं।",
            ),
            (
                "Aapka order: do plate Misal Pav aur ek Cutting Chai. Total ek sau das rupaye. Confirm karein? 1 haan, 2 nahi.",
                "आपका ऑर्डर: दो प्लेट मिसळ पाव और एक कटिंग चाय। टोटल एक सौ दस रुपये। कन्फ़र्म करें? 1 हाँ, 2 नहीं।",
            ),
            ("Dhanyavaad! Namaste.", "धन्यवाद! नमस्ते।"),
            ("Ek second...", "एक सेकंड..."),
            ("Maaf kijiye, abhi aawaaz se order nahi le sakte.", "माफ़ कीजिए, अभी आवाज़ से ऑर्डर नहीं ले सकते।"),
            ("Maaf kijiye, samajh nahi aaya.", "माफ़ कीजिए, समझ नहीं आया।"),
            (
                "Delivery ka pata nahi mila. Aapko order desk se jod rahe hain.",
                "डिलीवरी का पता नहीं मिला। आपको ऑर्डर डेस्क से जोड़ रहे हैं।",
            ),
        ];
        for (hinglish, expected) in cases {
            // The Hindi voice is given the text with Latin full stops; the
            // expected strings use the danda for readability.
            assert_eq!(hi(hinglish), expected.replace('।', "."), "{hinglish}");
        }
    }

    #[test]
    fn catalog_names_inside_devanagari_prompts() {
        assert_eq!(
            for_speech("नमस्कार, Godavari Misal House मध्ये आपले स्वागत आहे.", Lang::Mr),
            "नमस्कार, गोदावरी मिसळ हाउस मध्ये आपले स्वागत आहे."
        );
        assert_eq!(
            for_speech("नमस्ते, Mithas Sweets & Farsan में आपका स्वागत है।", Lang::Hi),
            "नमस्ते, मिठास स्वीट्स और फ़रसाण में आपका स्वागत है।"
        );
        assert_eq!(for_speech("Hari Om Fruits & Vegetables", Lang::Mr), "हरि ओम फ़्रूट्स आणि वेजिटेबल्स");
        assert_eq!(for_speech("Sharma Kirana Stores", Lang::Hi), "शर्मा किराना स्टोर्स");
        assert_eq!(for_speech("Punjab Da Dhaba", Lang::Hi), "पंजाब दा ढाबा");
        assert_eq!(for_speech("Nawab Biryani House", Lang::Hi), "नवाब बिरयानी हाउस");
    }
}

#[cfg(test)]
mod catalogs {
    use super::*;

    /// Every store and item name of the test catalogs, with the Devanagari
    /// alias the catalog gives it (if any).
    fn names() -> Vec<(String, Option<String>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../voice/tests/data/catalogs");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let catalog: serde_json::Value = serde_json::from_str(&text).unwrap();
            out.push((catalog["store"]["name"].as_str().unwrap().to_string(), None));
            for item in catalog["items"].as_array().unwrap() {
                let alias = item["aliases"]
                    .as_array()
                    .and_then(|a| {
                        a.iter()
                            .filter_map(|a| a.as_str())
                            .find(|a| a.chars().any(|c| ('\u{900}'..='\u{97f}').contains(&c)))
                    })
                    .map(str::to_string);
                out.push((item["name"].as_str().unwrap().to_string(), alias));
            }
        }
        out
    }

    #[test]
    fn every_catalog_name_reaches_the_voice_without_latin_letters() {
        let names = names();
        assert!(names.len() > 300, "{}", names.len());
        for (name, _) in &names {
            for lang in [Lang::Hi, Lang::HiEn, Lang::Mr] {
                let spoken = for_speech(name, lang);
                assert!(!spoken.chars().any(|c| c.is_ascii_alphabetic()), "{name} -> {spoken}");
                assert!(spoken.chars().any(|c| ('\u{900}'..='\u{97f}').contains(&c)), "{name} -> {spoken}");
            }
        }
    }

    /// Catalog names as the Hindi voice is given them.
    #[test]
    fn catalog_names_read_as_their_speakers_say_them() {
        for (name, spoken) in [
            ("Godavari Misal House", "गोदावरी मिसळ हाउस"),
            ("Misal Pav", "मिसळ पाव"),
            ("Cutting Chai", "कटिंग चाय"),
            ("Kande Pohe", "कांदे पोहे"),
            ("Sabudana Khichdi", "साबूदाना खिचड़ी"),
            ("Kokum Sarbat", "कोकम सरबत"),
            ("Toor Dal", "तूर दाल"),
            ("Moong Dal", "मूंग दाल"),
            ("Wheat Atta", "व्हीट आटा"),
            ("Paneer Butter Masala", "पनीर बटर मसाला"),
            ("Chole Bhature", "छोले भटूरे"),
            ("Aloo Paratha", "आलू पराठा"),
            ("Gulab Jamun", "गुलाब जामुन"),
            ("Motichoor Ladoo", "मोतिचूर लड्डू"),
            ("Khaman Dhokla", "खमण धोकला"),
            ("Paracetamol 650 mg", "पैरासिटामोल 650 मिलीग्राम"),
            ("ORS Sachet", "ओआरएस सैशे"),
            ("Chicken 65", "चिकन 65"),
            ("Hot and Sour Soup", "हॉट एंड सॉर सूप"),
            ("Green Basket Sabzi Mandi", "ग्रीन बास्केट सब्ज़ी मंडी"),
            ("Shree Samarth Supermarket", "श्री समर्थ सुपरमार्केट"),
            ("Udupi Krishna Bhavan", "उडुपी कृष्णा भवन"),
            ("Nashik Grapes", "नाशिक ग्रेप्स"),
            ("Dal Makhani", "दाल मखनी"),
            ("Jalebi", "जलेबी"),
        ] {
            assert_eq!(for_speech(name, Lang::Hi), spoken, "{name}");
        }
    }
}
