//! Amounts and quantities as the agent speaks them, in Indian number words
//! per language: `hi` in Devanagari ("तीन सौ पच्चीस रुपये"), `hi-en` in
//! Latin Hinglish ("teen sau pachchees rupaye"), `mr` in Devanagari
//! ("तीनशे पंचवीस रुपये") and `en` ("three hundred and twenty-five
//! rupees"). Hindi and Marathi numbers below a hundred are irregular, so
//! all of them are written out; above, numbers group the Indian way
//! (hundreds, thousands, lakhs, crores).

use crate::catalog::{Lang, Paise, Unit};
use crate::numbers::Qty;

/// Hindi 1–99 in Devanagari (index 0 unused).
const HI: [&str; 100] = [
    "",
    "एक",
    "दो",
    "तीन",
    "चार",
    "पाँच",
    "छह",
    "सात",
    "आठ",
    "नौ",
    "दस",
    "ग्यारह",
    "बारह",
    "तेरह",
    "चौदह",
    "पंद्रह",
    "सोलह",
    "सत्रह",
    "अठारह",
    "उन्नीस",
    "बीस",
    "इक्कीस",
    "बाईस",
    "तेईस",
    "चौबीस",
    "पच्चीस",
    "छब्बीस",
    "सत्ताईस",
    "अट्ठाईस",
    "उनतीस",
    "तीस",
    "इकतीस",
    "बत्तीस",
    "तैंतीस",
    "चौंतीस",
    "पैंतीस",
    "छत्तीस",
    "सैंतीस",
    "अड़तीस",
    "उनतालीस",
    "चालीस",
    "इकतालीस",
    "बयालीस",
    "तैंतालीस",
    "चवालीस",
    "पैंतालीस",
    "छियालीस",
    "सैंतालीस",
    "अड़तालीस",
    "उनचास",
    "पचास",
    "इक्यावन",
    "बावन",
    "तिरेपन",
    "चौवन",
    "पचपन",
    "छप्पन",
    "सत्तावन",
    "अट्ठावन",
    "उनसठ",
    "साठ",
    "इकसठ",
    "बासठ",
    "तिरसठ",
    "चौंसठ",
    "पैंसठ",
    "छियासठ",
    "सड़सठ",
    "अड़सठ",
    "उनहत्तर",
    "सत्तर",
    "इकहत्तर",
    "बहत्तर",
    "तिहत्तर",
    "चौहत्तर",
    "पचहत्तर",
    "छिहत्तर",
    "सतहत्तर",
    "अठहत्तर",
    "उन्यासी",
    "अस्सी",
    "इक्यासी",
    "बयासी",
    "तिरासी",
    "चौरासी",
    "पचासी",
    "छियासी",
    "सत्तासी",
    "अट्ठासी",
    "नवासी",
    "नब्बे",
    "इक्यानवे",
    "बानवे",
    "तिरानवे",
    "चौरानवे",
    "पचानवे",
    "छियानवे",
    "सत्तानवे",
    "अट्ठानवे",
    "निन्यानवे",
];

/// Hindi 1–99 as Hinglish is written in Latin script.
const HI_EN: [&str; 100] = [
    "",
    "ek",
    "do",
    "teen",
    "chaar",
    "paanch",
    "chhah",
    "saat",
    "aath",
    "nau",
    "das",
    "gyaarah",
    "baarah",
    "terah",
    "chaudah",
    "pandrah",
    "solah",
    "satrah",
    "athaarah",
    "unnees",
    "bees",
    "ikkees",
    "baaees",
    "teis",
    "chaubees",
    "pachchees",
    "chhabbees",
    "sattaees",
    "atthaees",
    "untees",
    "tees",
    "iktees",
    "battees",
    "taintees",
    "chauntees",
    "paintees",
    "chhattees",
    "saintees",
    "adtees",
    "untaalees",
    "chaalees",
    "iktaalees",
    "bayaalees",
    "taintaalees",
    "chavaalees",
    "paintaalees",
    "chhiyaalees",
    "saintaalees",
    "adtaalees",
    "unchaas",
    "pachaas",
    "ikyaavan",
    "baavan",
    "tirepan",
    "chauvan",
    "pachpan",
    "chhappan",
    "sattaavan",
    "atthaavan",
    "unsath",
    "saath",
    "iksath",
    "baasath",
    "tirsath",
    "chaunsath",
    "painsath",
    "chhiyaasath",
    "sadsath",
    "adsath",
    "unhattar",
    "sattar",
    "ikhattar",
    "bahattar",
    "tihattar",
    "chauhattar",
    "pachhattar",
    "chhihattar",
    "sathattar",
    "athhattar",
    "unyaasi",
    "assi",
    "ikyaasi",
    "bayaasi",
    "tiraasi",
    "chauraasi",
    "pachaasi",
    "chhiyaasi",
    "sattaasi",
    "atthaasi",
    "navaasi",
    "nabbe",
    "ikyaanve",
    "baanve",
    "tiraanve",
    "chauraanve",
    "pachaanve",
    "chhiyaanve",
    "sattaanve",
    "atthaanve",
    "ninyaanve",
];

/// Marathi 1–99 in Devanagari.
const MR: [&str; 100] = [
    "",
    "एक",
    "दोन",
    "तीन",
    "चार",
    "पाच",
    "सहा",
    "सात",
    "आठ",
    "नऊ",
    "दहा",
    "अकरा",
    "बारा",
    "तेरा",
    "चौदा",
    "पंधरा",
    "सोळा",
    "सतरा",
    "अठरा",
    "एकोणीस",
    "वीस",
    "एकवीस",
    "बावीस",
    "तेवीस",
    "चोवीस",
    "पंचवीस",
    "सव्वीस",
    "सत्तावीस",
    "अठ्ठावीस",
    "एकोणतीस",
    "तीस",
    "एकतीस",
    "बत्तीस",
    "तेहेतीस",
    "चौतीस",
    "पस्तीस",
    "छत्तीस",
    "सदतीस",
    "अडतीस",
    "एकोणचाळीस",
    "चाळीस",
    "एक्केचाळीस",
    "बेचाळीस",
    "त्रेचाळीस",
    "चव्वेचाळीस",
    "पंचेचाळीस",
    "सेहेचाळीस",
    "सत्तेचाळीस",
    "अठ्ठेचाळीस",
    "एकोणपन्नास",
    "पन्नास",
    "एक्कावन्न",
    "बावन्न",
    "त्रेपन्न",
    "चोपन्न",
    "पंचावन्न",
    "छप्पन्न",
    "सत्तावन्न",
    "अठ्ठावन्न",
    "एकोणसाठ",
    "साठ",
    "एकसष्ठ",
    "बासष्ठ",
    "त्रेसष्ठ",
    "चौसष्ठ",
    "पासष्ठ",
    "सहासष्ठ",
    "सदुसष्ठ",
    "अडुसष्ठ",
    "एकोणसत्तर",
    "सत्तर",
    "एकाहत्तर",
    "बाहत्तर",
    "त्र्याहत्तर",
    "चौऱ्याहत्तर",
    "पंच्याहत्तर",
    "शहात्तर",
    "सत्याहत्तर",
    "अठ्ठ्याहत्तर",
    "एकोणऐंशी",
    "ऐंशी",
    "एक्याऐंशी",
    "ब्याऐंशी",
    "त्र्याऐंशी",
    "चौऱ्याऐंशी",
    "पंच्याऐंशी",
    "शहाऐंशी",
    "सत्याऐंशी",
    "अठ्ठ्याऐंशी",
    "एकोणनव्वद",
    "नव्वद",
    "एक्याण्णव",
    "ब्याण्णव",
    "त्र्याण्णव",
    "चौऱ्याण्णव",
    "पंच्याण्णव",
    "शहाण्णव",
    "सत्त्याण्णव",
    "अठ्ठ्याण्णव",
    "नव्याण्णव",
];

/// Marathi hundreds as they combine ("तीनशे", "एकशे पंचवीस"); a hundred
/// alone is "शंभर".
const MR_HUNDREDS: [&str; 10] = ["", "एकशे", "दोनशे", "तीनशे", "चारशे", "पाचशे", "सहाशे", "सातशे", "आठशे", "नऊशे"];

pub(crate) const EN_ONES: [&str; 20] = [
    "",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
pub(crate) const EN_TENS: [&str; 10] =
    ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];

/// A number below 100 in words (empty for 0).
pub fn below_hundred(n: u64, lang: Lang) -> String {
    let n = (n % 100) as usize;
    match lang {
        Lang::Hi => HI[n].to_string(),
        Lang::HiEn => HI_EN[n].to_string(),
        Lang::Mr => MR[n].to_string(),
        Lang::En if n < 20 => EN_ONES[n].to_string(),
        Lang::En if n.is_multiple_of(10) => EN_TENS[n / 10].to_string(),
        Lang::En => format!("{}-{}", EN_TENS[n / 10], EN_ONES[n % 10]),
    }
}

/// A whole number in words, grouped the Indian way ("ek lakh", "एक
/// हज़ार पचास", "one thousand and fifty"). Zero is "zero"/"शून्य".
pub fn number(n: u64, lang: Lang) -> String {
    if n == 0 {
        return match lang {
            Lang::Hi | Lang::Mr => "शून्य".into(),
            Lang::HiEn => "shunya".into(),
            Lang::En => "zero".into(),
        };
    }
    let (crore, lakh, thousand, hundred, rest) =
        (n / 10_000_000, n / 100_000 % 100, n / 1000 % 100, n / 100 % 10, n % 100);
    let mut parts: Vec<String> = Vec::new();
    let scale = |word: [&str; 4]| -> String {
        match lang {
            Lang::Hi => word[0],
            Lang::HiEn => word[1],
            Lang::Mr => word[2],
            Lang::En => word[3],
        }
        .to_string()
    };
    if crore > 0 {
        parts.push(format!("{} {}", number(crore, lang), scale(["करोड़", "crore", "कोटी", "crore"])));
    }
    if lakh > 0 {
        parts.push(format!("{} {}", below_hundred(lakh, lang), scale(["लाख", "lakh", "लाख", "lakh"])));
    }
    if thousand > 0 {
        parts.push(format!("{} {}", below_hundred(thousand, lang), scale(["हज़ार", "hazaar", "हजार", "thousand"])));
    }
    if hundred > 0 {
        parts.push(match lang {
            Lang::Mr if rest == 0 && hundred == 1 => "शंभर".to_string(),
            Lang::Mr => MR_HUNDREDS[hundred as usize].to_string(),
            Lang::Hi => format!("{} सौ", HI[hundred as usize]),
            Lang::HiEn => format!("{} sau", HI_EN[hundred as usize]),
            Lang::En => format!("{} hundred", EN_ONES[hundred as usize]),
        });
    }
    if rest > 0 {
        if lang == Lang::En && !parts.is_empty() {
            parts.push("and".into());
        }
        parts.push(below_hundred(rest, lang));
    }
    parts.join(" ")
}

/// Money as the agent says it: "teen sau pachchees rupaye", "एक रुपया",
/// "twelve rupees and fifty paise".
pub fn rupees(amount: Paise, lang: Lang) -> String {
    let negative = amount.0 < 0;
    let paise = amount.0.unsigned_abs();
    let (whole, part) = (paise / 100, paise % 100);
    let rupee_word = |n: u64| match (lang, n == 1) {
        (Lang::Hi, true) => "रुपया",
        (Lang::Hi, false) => "रुपये",
        (Lang::HiEn, true) => "rupaya",
        (Lang::HiEn, false) => "rupaye",
        (Lang::Mr, true) => "रुपया",
        (Lang::Mr, false) => "रुपये",
        (Lang::En, true) => "rupee",
        (Lang::En, false) => "rupees",
    };
    let paise_word = match lang {
        Lang::Hi | Lang::Mr => "पैसे",
        Lang::HiEn | Lang::En => "paise",
    };
    let mut said =
        if whole > 0 || part == 0 { format!("{} {}", number(whole, lang), rupee_word(whole)) } else { String::new() };
    if part > 0 {
        if !said.is_empty() {
            said.push_str(if lang == Lang::En { " and " } else { " " });
        }
        said.push_str(&format!("{} {}", number(part, lang), paise_word));
    }
    if negative {
        let minus = match lang {
            Lang::Hi | Lang::Mr => "ऋण",
            Lang::HiEn => "minus",
            Lang::En => "minus",
        };
        said = format!("{minus} {said}");
    }
    said
}

/// A quantity with Indian fraction words where they fit ("dedh", "ढाई",
/// "साडे तीन", "one and a half"), else whole words or the decimal.
pub fn quantity(qty: Qty, lang: Lang) -> String {
    let (whole, frac) = (qty.0 / 1000, qty.0 % 1000);
    let w = |n: u64| number(n, lang);
    // (pav, aadha, paune, sawa, dedh, dhai, saadhe N, sawa N, paune N)
    let words: [&str; 9] = match lang {
        Lang::Hi => ["पाव", "आधा", "पौना", "सवा", "डेढ़", "ढाई", "साढ़े", "सवा", "पौने"],
        Lang::HiEn => ["paav", "aadha", "pauna", "sawa", "dedh", "dhai", "saadhe", "sawa", "paune"],
        Lang::Mr => ["पाव", "अर्धा", "पाऊण", "सव्वा", "दीड", "अडीच", "साडे", "सव्वा", "पावणे"],
        Lang::En => ["", "", "", "", "", "", "", "", ""],
    };
    if lang == Lang::En {
        let part = match frac {
            0 => return w(whole),
            250 => "a quarter",
            500 => "a half",
            750 => "three quarters",
            _ => return qty.to_string(),
        };
        return if whole == 0 {
            part.replace("a half", "half").to_string()
        } else {
            format!("{} and {part}", w(whole))
        };
    }
    match (whole, frac) {
        (n, 0) => w(n),
        (0, 250) => words[0].into(),
        (0, 500) => words[1].into(),
        (0, 750) => words[2].into(),
        (1, 250) => words[3].into(),
        (1, 500) => words[4].into(),
        (2, 500) => words[5].into(),
        (n, 500) => format!("{} {}", words[6], w(n)),
        (n, 250) => format!("{} {}", words[7], w(n)),
        (n, 750) => format!("{} {}", words[8], w(n + 1)),
        _ => qty.to_string(),
    }
}

/// A quantity of an item with its unit, as read back: "do plate", "dedh
/// kilo", "500 gram", "ek" (pieces need no unit word).
pub fn measure(qty: Qty, unit: Unit, lang: Lang) -> String {
    let plural = qty > Qty::ONE;
    let en = |one: &str, many: &str| if plural { many.to_string() } else { one.to_string() };
    let unit_word = match (unit, lang) {
        (Unit::Piece, _) => String::new(),
        (Unit::Plate, Lang::Hi | Lang::Mr) => "प्लेट".into(),
        (Unit::Plate, Lang::HiEn) => "plate".into(),
        (Unit::Plate, Lang::En) => en("plate", "plates"),
        (Unit::Kg, Lang::Hi | Lang::Mr) => "किलो".into(),
        (Unit::Kg, Lang::HiEn) => "kilo".into(),
        (Unit::Kg, Lang::En) => en("kilo", "kilos"),
        (Unit::G, Lang::Hi) => "ग्राम".into(),
        (Unit::G, Lang::Mr) => "ग्रॅम".into(),
        (Unit::G, Lang::HiEn) => "gram".into(),
        (Unit::G, Lang::En) => "grams".into(),
        (Unit::Litre, Lang::Hi) => "लीटर".into(),
        (Unit::Litre, Lang::Mr) => "लिटर".into(),
        (Unit::Litre, Lang::HiEn) => "litre".into(),
        (Unit::Litre, Lang::En) => en("litre", "litres"),
        (Unit::Ml, Lang::Hi | Lang::Mr) => "मिलीलीटर".into(),
        (Unit::Ml, Lang::HiEn | Lang::En) => "ml".into(),
        (Unit::Pack, Lang::Hi) => "पैकेट".into(),
        (Unit::Pack, Lang::Mr) => "पाकीट".into(),
        (Unit::Pack, Lang::HiEn) => "packet".into(),
        (Unit::Pack, Lang::En) => en("pack", "packs"),
        (Unit::Dozen, Lang::Hi) => "दर्जन".into(),
        (Unit::Dozen, Lang::Mr) => "डझन".into(),
        (Unit::Dozen, Lang::HiEn) => "darjan".into(),
        (Unit::Dozen, Lang::En) => "dozen".into(),
    };
    // Grams and millilitres are said as the digits they are written in
    // ("500 gram"); a speech synthesiser reads them in any language.
    let amount = match unit {
        Unit::G | Unit::Ml if qty.0.is_multiple_of(1000) => (qty.0 / 1000).to_string(),
        Unit::G | Unit::Ml => qty.to_string(),
        _ => quantity(qty, lang),
    };
    if unit_word.is_empty() { amount } else { format!("{amount} {unit_word}") }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const LANGS: [Lang; 4] = [Lang::Hi, Lang::HiEn, Lang::Mr, Lang::En];

    #[test]
    fn numbers_below_a_hundred_are_all_written_and_distinct() {
        for lang in LANGS {
            let words: Vec<String> = (1..=99).map(|n| below_hundred(n, lang)).collect();
            assert!(words.iter().all(|w| !w.trim().is_empty()), "{lang}: an empty word");
            let distinct: HashSet<&String> = words.iter().collect();
            assert_eq!(distinct.len(), 99, "{lang}: two numbers share a word");
        }
        for table in [&HI[..], &MR[..]] {
            assert!(table[1..].iter().all(|w| w.chars().all(|c| ('\u{0900}'..='\u{097F}').contains(&c))));
        }
        assert!(HI_EN[1..].iter().all(|w| w.chars().all(|c| c.is_ascii_lowercase())));
    }

    #[test]
    fn known_amounts_in_each_language() {
        assert_eq!(rupees(Paise(32500), Lang::Hi), "तीन सौ पच्चीस रुपये");
        assert_eq!(rupees(Paise(32500), Lang::HiEn), "teen sau pachchees rupaye");
        assert_eq!(rupees(Paise(32500), Lang::Mr), "तीनशे पंचवीस रुपये");
        assert_eq!(rupees(Paise(32500), Lang::En), "three hundred and twenty-five rupees");
        assert_eq!(number(1050, Lang::HiEn), "ek hazaar pachaas");
        assert_eq!(number(1050, Lang::Mr), "एक हजार पन्नास");
        assert_eq!(number(1050, Lang::En), "one thousand and fifty");
        assert_eq!(number(100_000, Lang::Hi), "एक लाख");
        assert_eq!(number(100_000, Lang::En), "one lakh");
        assert_eq!(number(100, Lang::Mr), "शंभर");
        assert_eq!(number(125, Lang::Mr), "एकशे पंचवीस");
        assert_eq!(number(25_017_005, Lang::HiEn), "do crore pachaas lakh satrah hazaar paanch");
        assert_eq!(rupees(Paise(100), Lang::HiEn), "ek rupaya");
        assert_eq!(rupees(Paise(1250), Lang::En), "twelve rupees and fifty paise");
        assert_eq!(rupees(Paise(1250), Lang::HiEn), "baarah rupaye pachaas paise");
        assert_eq!(rupees(Paise(50), Lang::Hi), "पचास पैसे");
        assert_eq!(rupees(Paise(15200), Lang::HiEn), "ek sau baavan rupaye");
    }

    #[test]
    fn quantities_are_said_with_indian_fractions_and_units() {
        assert_eq!(measure(Qty::whole(2), Unit::Plate, Lang::HiEn), "do plate");
        assert_eq!(measure(Qty(1500), Unit::Kg, Lang::HiEn), "dedh kilo");
        assert_eq!(measure(Qty(500_000), Unit::G, Lang::HiEn), "500 gram");
        assert_eq!(measure(Qty(2500), Unit::Kg, Lang::Hi), "ढाई किलो");
        assert_eq!(measure(Qty(3500), Unit::Kg, Lang::Mr), "साडे तीन किलो");
        assert_eq!(measure(Qty(750), Unit::Kg, Lang::HiEn), "pauna kilo");
        assert_eq!(measure(Qty(2750), Unit::Kg, Lang::HiEn), "paune teen kilo");
        assert_eq!(measure(Qty(1250), Unit::Litre, Lang::Mr), "सव्वा लिटर");
        assert_eq!(measure(Qty::whole(2), Unit::Plate, Lang::Mr), "दोन प्लेट");
        assert_eq!(measure(Qty::ONE, Unit::Piece, Lang::En), "one");
        assert_eq!(measure(Qty(1500), Unit::Kg, Lang::En), "one and a half kilos");
        assert_eq!(measure(Qty(500), Unit::Plate, Lang::En), "half plate");
        assert_eq!(measure(Qty::whole(3), Unit::Dozen, Lang::Hi), "तीन दर्जन");
    }
}
