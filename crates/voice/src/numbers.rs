//! Quantities as callers say them: digits and number words in Hindi,
//! Marathi and English, the Indian fractions (pav ¼, aadha ½, sawa 1¼,
//! dedh 1½, dhai 2½, paune N−¼, saadhe N+½, darjan 12) and units
//! ("500 gram", "ek kilo", "half plate", "250 ml").

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::catalog::Unit;
use crate::normalize::{Token, without_nasal};

/// A quantity in thousandths of the item's unit, so that ¼ kg and 1½
/// plates are exact. JSON carries it as a number (`1.5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Qty(pub u64);

impl Qty {
    pub const ONE: Qty = Qty(1000);

    pub fn whole(n: u64) -> Qty {
        Qty(n * 1000)
    }

    pub fn milli(self) -> u64 {
        self.0
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// From a decimal number with at most three decimals (`0.25`).
    pub fn from_f64(value: f64) -> Option<Qty> {
        let milli = (value * 1000.0).round();
        (value.is_finite() && value >= 0.0 && milli < 1e15 && (milli - value * 1000.0).abs() < 1e-6)
            .then_some(Qty(milli as u64))
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Qty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 1000, self.0 % 1000);
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            write!(f, "{}", format!("{whole}.{frac:03}").trim_end_matches('0'))
        }
    }
}

impl Serialize for Qty {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_multiple_of(1000) { s.serialize_u64(self.0 / 1000) } else { s.serialize_f64(self.as_f64()) }
    }
}

impl<'de> Deserialize<'de> for Qty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(d)?;
        Qty::from_f64(value)
            .ok_or_else(|| serde::de::Error::custom(format!("{value} is not a quantity (≥ 0, at most 3 decimals)")))
    }
}

/// A unit the caller said, which may differ from the item's ("500 gram" of
/// sugar sold by the kg).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpokenUnit {
    Kg,
    G,
    Litre,
    Ml,
    Plate,
    Piece,
    Pack,
    Dozen,
}

impl From<Unit> for SpokenUnit {
    fn from(unit: Unit) -> SpokenUnit {
        match unit {
            Unit::Piece => SpokenUnit::Piece,
            Unit::Plate => SpokenUnit::Plate,
            Unit::Kg => SpokenUnit::Kg,
            Unit::G => SpokenUnit::G,
            Unit::Litre => SpokenUnit::Litre,
            Unit::Ml => SpokenUnit::Ml,
            Unit::Pack => SpokenUnit::Pack,
            Unit::Dozen => SpokenUnit::Dozen,
        }
    }
}

/// A spoken amount: a number and perhaps a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    pub value: Qty,
    pub unit: Option<SpokenUnit>,
}

/// How well a spoken unit fit the item's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitFit {
    /// Same unit, or converted exactly (grams to kg, dozen to pieces).
    Exact,
    /// No unit said, or a counting word (plate, piece) for a counted item.
    Assumed,
    /// A unit of another kind (kilos of a plate item): the number is kept.
    Mismatch,
}

impl Amount {
    /// The quantity in the item's unit.
    pub fn in_unit(self, unit: Unit) -> (Qty, UnitFit) {
        use SpokenUnit as S;
        let v = self.value.0;
        let Some(spoken) = self.unit else { return (self.value, UnitFit::Assumed) };
        let (qty, fit) = match (spoken, unit) {
            (S::Kg, Unit::Kg) | (S::G, Unit::G) | (S::Litre, Unit::Litre) | (S::Ml, Unit::Ml) => (v, UnitFit::Exact),
            (S::Dozen, Unit::Dozen) | (S::Plate, Unit::Plate) | (S::Pack, Unit::Pack) => (v, UnitFit::Exact),
            (S::Piece, Unit::Piece) => (v, UnitFit::Exact),
            (S::G, Unit::Kg) | (S::Ml, Unit::Litre) => (v / 1000, UnitFit::Exact),
            (S::Kg, Unit::G) | (S::Litre, Unit::Ml) => (v * 1000, UnitFit::Exact),
            (S::Dozen, Unit::Piece | Unit::Plate) => (v * 12, UnitFit::Exact),
            (S::Piece, Unit::Dozen) if v.is_multiple_of(12_000) => (v / 12, UnitFit::Exact),
            (S::Plate | S::Piece | S::Pack, Unit::Piece | Unit::Plate | Unit::Pack | Unit::Dozen) => {
                (v, UnitFit::Assumed)
            }
            (S::Plate | S::Piece | S::Pack, _) => (v, UnitFit::Assumed),
            // Sold by weight, asked by volume or the other way ("half litre
            // ghee" of ghee sold by the gram): a litre taken as a kilo.
            (S::Litre, Unit::Kg) | (S::Kg, Unit::Litre) | (S::Ml, Unit::G) | (S::G, Unit::Ml) => (v, UnitFit::Assumed),
            (S::Litre, Unit::G) | (S::Kg, Unit::Ml) => (v * 1000, UnitFit::Assumed),
            (S::Ml, Unit::Kg) | (S::G, Unit::Litre) => (v / 1000, UnitFit::Assumed),
            _ => (v, UnitFit::Mismatch),
        };
        (Qty(qty), fit)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    /// A whole number or a fraction, in thousandths.
    Value(u64),
    /// sawa: N + ¼ (alone, 1¼).
    Sawa,
    /// paune: N − ¼ (alone, ¾).
    Paune,
    /// saadhe: N + ½.
    Saadhe,
    /// sau, hundred, hazaar: multiplies what came before.
    Times(u64),
    Unit(SpokenUnit),
}

/// English number words up to ninety-nine (the tens and units are read
/// word by word: "twenty five").
const ENGLISH_NUMBERS: &[(u64, &[&str])] = &[
    (1, &["one"]),
    (2, &["two"]),
    (3, &["three"]),
    (4, &["four"]),
    (5, &["five"]),
    (6, &["six"]),
    (7, &["seven"]),
    (8, &["eight"]),
    (9, &["nine"]),
    (10, &["ten"]),
    (11, &["eleven"]),
    (12, &["twelve"]),
    (13, &["thirteen"]),
    (14, &["fourteen"]),
    (15, &["fifteen"]),
    (16, &["sixteen"]),
    (17, &["seventeen"]),
    (18, &["eighteen"]),
    (19, &["nineteen"]),
    (20, &["twenty"]),
    (30, &["thirty"]),
    (40, &["forty", "fourty"]),
    (50, &["fifty"]),
    (60, &["sixty"]),
    (70, &["seventy"]),
    (80, &["eighty"]),
    (90, &["ninety"]),
];

/// Hindi number words 1–99, in Devanagari and as ASRs write them in Latin
/// script (every number has its own word in Hindi).
const HINDI_NUMBERS: &[(u64, &[&str])] = &[
    (1, &["ek", "ik", "एक"]),
    (2, &["do", "doo", "dono", "donon", "दो", "दोनों"]),
    (3, &["teen", "तीन"]),
    (4, &["char", "chaar", "चार"]),
    (5, &["panch", "paanch", "पाँच", "पांच"]),
    (6, &["chhe", "chhah", "cheh", "chhey", "chah", "छह", "छः", "छे"]),
    (7, &["saat", "सात"]),
    (8, &["aath", "aat", "आठ"]),
    (9, &["nau", "नौ"]),
    (10, &["das", "dus", "दस"]),
    (11, &["gyarah", "gyara", "gyaarah", "gyaara", "ग्यारह"]),
    (12, &["barah", "bara", "baara", "baarah", "बारह"]),
    (13, &["terah", "tera", "तेरह"]),
    (14, &["chaudah", "chauda", "chaudaa", "chodah", "चौदह"]),
    (15, &["pandrah", "pandra", "pandhrah", "पंद्रह", "पन्द्रह"]),
    (16, &["solah", "sola", "सोलह"]),
    (17, &["satrah", "satra", "sattrah", "सत्रह"]),
    (18, &["atharah", "athara", "attharah", "athrah", "अठारह"]),
    (19, &["unnis", "unees", "unnees", "unis", "उन्नीस"]),
    (20, &["bees", "bis", "बीस"]),
    (21, &["ikkis", "ikkees", "ikis", "इक्कीस"]),
    (22, &["bais", "baais", "baees", "बाईस", "बाइस"]),
    (23, &["teis", "teyis", "teees", "tehis", "तेईस", "तेइस"]),
    (24, &["chaubis", "chaubees", "chobis", "चौबीस"]),
    (25, &["pachchis", "pachis", "pachees", "pacchis", "pachchees", "पच्चीस"]),
    (26, &["chhabbis", "chabbis", "chhabbees", "chabees", "छब्बीस"]),
    (27, &["sattais", "sattaees", "sataees", "सत्ताईस", "सत्ताइस"]),
    (28, &["atthais", "athais", "atthaees", "athaees", "अट्ठाईस", "अठ्ठाईस", "अट्ठाइस"]),
    (29, &["untis", "untees", "unatis", "उनतीस", "उन्तीस"]),
    (30, &["tees", "tis", "तीस"]),
    (31, &["iktis", "iktees", "ikatis", "इकतीस", "इकत्तीस"]),
    (32, &["battis", "battees", "batis", "बत्तीस"]),
    (33, &["taintis", "taintees", "tentis", "tetis", "तैंतीस", "तेंतीस"]),
    (34, &["chauntis", "chauntees", "chautis", "chontis", "चौंतीस", "चौतीस"]),
    (35, &["paintis", "paintees", "pentis", "pantis", "पैंतीस"]),
    (36, &["chhattis", "chattis", "chhattees", "chatees", "छत्तीस"]),
    (37, &["saintis", "saintees", "sentis", "सैंतीस"]),
    (38, &["adtis", "artis", "adtees", "adatis", "अड़तीस", "अडतीस"]),
    (39, &["untalis", "untaalees", "untalees", "उनतालीस", "उन्तालीस"]),
    (40, &["chalis", "chaalees", "chaalis", "chalees", "चालीस"]),
    (41, &["iktalis", "iktaalees", "iktalees", "इकतालीस"]),
    (42, &["bayalis", "bayaalees", "bayalees", "byalis", "बयालीस", "बियालीस"]),
    (43, &["taintalis", "taintaalees", "tentalis", "तैंतालीस", "तेंतालीस"]),
    (44, &["chavalis", "chawalis", "chauvalis", "chavaalees", "chaualees", "चवालीस", "चौवालीस"]),
    (45, &["paintalis", "paintaalees", "pentalis", "पैंतालीस"]),
    (46, &["chhiyalis", "chhiyaalees", "chiyalis", "chhiyalees", "छियालीस"]),
    (47, &["saintalis", "saintaalees", "sentalis", "सैंतालीस"]),
    (48, &["adtalis", "artalis", "adtaalees", "adtalees", "अड़तालीस", "अडतालीस"]),
    (49, &["unchas", "unchaas", "उनचास", "उंचास"]),
    (50, &["pachas", "pachaas", "पचास"]),
    (51, &["ikyavan", "ikyaavan", "ikyawan", "इक्यावन"]),
    (52, &["bavan", "baavan", "bawan", "बावन"]),
    (53, &["tirepan", "tirpan", "tirapan", "तिरेपन", "तिरपन"]),
    (54, &["chauvan", "chauwan", "chauvvan", "चौवन", "चव्वन"]),
    (55, &["pachpan", "pachapan", "पचपन"]),
    (56, &["chhappan", "chappan", "छप्पन"]),
    (57, &["sattavan", "sattaavan", "sattawan", "सत्तावन"]),
    (58, &["atthavan", "athavan", "atthaavan", "अट्ठावन", "अठ्ठावन"]),
    (59, &["unsath", "unsaath", "उनसठ"]),
    (60, &["saath", "साठ"]),
    (61, &["iksath", "iksaath", "इकसठ"]),
    (62, &["basath", "baasath", "baasaath", "बासठ"]),
    (63, &["tirsath", "tirsaath", "tiresath", "तिरसठ", "तिरेसठ"]),
    (64, &["chaunsath", "chausath", "chaunsaath", "चौंसठ", "चौसठ"]),
    (65, &["painsath", "painsaath", "pensath", "पैंसठ"]),
    (66, &["chhiyasath", "chhiyaasath", "chiyasath", "छियासठ"]),
    (67, &["sadsath", "sarsath", "sadsaath", "सड़सठ", "सडसठ"]),
    (68, &["adsath", "arsath", "adsaath", "अड़सठ", "अडसठ"]),
    (69, &["unhattar", "unhatar", "उनहत्तर"]),
    (70, &["sattar", "sattarr", "सत्तर"]),
    (71, &["ikhattar", "ikahattar", "इकहत्तर"]),
    (72, &["bahattar", "behattar", "bahatar", "बहत्तर"]),
    (73, &["tihattar", "tihatar", "तिहत्तर"]),
    (74, &["chauhattar", "chauhatar", "चौहत्तर"]),
    (75, &["pachattar", "pachhattar", "pachahattar", "पचहत्तर"]),
    (76, &["chhihattar", "chihattar", "chhiyattar", "छिहत्तर"]),
    (77, &["sathattar", "satattar", "satahattar", "सतहत्तर"]),
    (78, &["athhattar", "athattar", "athahattar", "अठहत्तर"]),
    (79, &["unyasi", "unaasi", "unasi", "उन्यासी", "उनासी"]),
    (80, &["assi", "asi", "अस्सी"]),
    (81, &["ikyasi", "ikyaasi", "इक्यासी"]),
    (82, &["bayasi", "bayaasi", "byasi", "बयासी", "बियासी"]),
    (83, &["tirasi", "tiraasi", "तिरासी"]),
    (84, &["chaurasi", "chauraasi", "चौरासी"]),
    (85, &["pachasi", "pachaasi", "पचासी"]),
    (86, &["chhiyasi", "chhiyaasi", "chiyasi", "छियासी"]),
    (87, &["sattasi", "sattaasi", "सत्तासी"]),
    (88, &["atthasi", "athasi", "atthaasi", "अट्ठासी", "अठ्ठासी"]),
    (89, &["navasi", "navaasi", "nawasi", "नवासी"]),
    (90, &["nabbe", "nabe", "नब्बे"]),
    (91, &["ikyanave", "ikyaanve", "ikyanve", "इक्यानवे"]),
    (92, &["banave", "baanve", "banve", "बानवे"]),
    (93, &["tiranave", "tiraanve", "tiranve", "तिरानवे"]),
    (94, &["chauranave", "chauraanve", "chauranve", "चौरानवे"]),
    (95, &["pachanave", "pachaanve", "pachanve", "पचानवे", "पंचानवे"]),
    (96, &["chhiyanave", "chhiyaanve", "chhiyanve", "छियानवे"]),
    (97, &["sattanave", "sattaanve", "sattanve", "सत्तानवे"]),
    (98, &["atthanave", "atthaanve", "atthanve", "अट्ठानवे", "अठ्ठानवे"]),
    (99, &["ninyanave", "ninyaanve", "ninyanve", "निन्यानवे", "निन्यान्नवे"]),
];

/// Marathi number words 1–99, in Devanagari and romanized.
const MARATHI_NUMBERS: &[(u64, &[&str])] = &[
    (1, &["एक"]),
    (2, &["don", "दोन"]),
    (3, &["तीन"]),
    (4, &["चार"]),
    (5, &["pach", "paach", "पाच"]),
    (6, &["saha", "सहा"]),
    (7, &["सात"]),
    (8, &["आठ"]),
    (9, &["nau", "nav", "नऊ"]),
    (10, &["daha", "दहा"]),
    (11, &["akra", "akara", "अकरा"]),
    (12, &["bara", "बारा"]),
    (13, &["tera", "तेरा"]),
    (14, &["chauda", "चौदा"]),
    (15, &["pandhra", "pandhara", "पंधरा"]),
    (16, &["sola", "सोळा", "सोला"]),
    (17, &["satra", "सतरा"]),
    (18, &["athra", "athara", "अठरा"]),
    (19, &["ekonis", "ekonees", "एकोणीस", "एकोणिस"]),
    (20, &["vees", "vis", "वीस"]),
    (21, &["ekvis", "ekvees", "एकवीस"]),
    (22, &["bavis", "baavis", "bavees", "बावीस"]),
    (23, &["tevis", "tevees", "तेवीस"]),
    (24, &["chovis", "chovees", "चोवीस", "चौवीस"]),
    (25, &["panchvis", "panchvees", "पंचवीस"]),
    (26, &["savvis", "savvees", "savis", "सव्वीस"]),
    (27, &["sattavis", "sattavees", "सत्तावीस"]),
    (28, &["aththavis", "atthavis", "aththavees", "अठ्ठावीस", "अठ्ठाविस"]),
    (29, &["ekontis", "ekontees", "एकोणतीस"]),
    (30, &["तीस"]),
    (31, &["ektis", "ektees", "एकतीस"]),
    (32, &["बत्तीस"]),
    (33, &["tehetis", "tehetees", "tetis", "तेहेतीस", "तेहतीस"]),
    (34, &["chautis", "chautees", "चौतीस", "चौत्तीस"]),
    (35, &["pastis", "pastees", "पस्तीस"]),
    (36, &["छत्तीस"]),
    (37, &["sadtis", "sadatis", "sadtees", "सदतीस"]),
    (38, &["adtis", "अडतीस"]),
    (39, &["ekonchalis", "ekonchalees", "एकोणचाळीस"]),
    (40, &["chalis", "चाळीस"]),
    (41, &["ekkechalis", "ekechalis", "एक्केचाळीस"]),
    (42, &["bechalis", "बेचाळीस"]),
    (43, &["trechalis", "त्रेचाळीस"]),
    (44, &["chavvechalis", "chauvechalis", "चव्वेचाळीस"]),
    (45, &["panchechalis", "पंचेचाळीस"]),
    (46, &["sehechalis", "sechalis", "सेहेचाळीस", "सेहचाळीस"]),
    (47, &["sattechalis", "सत्तेचाळीस"]),
    (48, &["aththechalis", "atthechalis", "अठ्ठेचाळीस"]),
    (49, &["ekonpannas", "एकोणपन्नास"]),
    (50, &["pannas", "पन्नास"]),
    (51, &["ekkavanna", "ekkavan", "एक्कावन्न", "एक्कावन"]),
    (52, &["bavanna", "बावन्न"]),
    (53, &["trepanna", "trepan", "त्रेपन्न", "त्रेपन"]),
    (54, &["chopanna", "chopan", "चोपन्न"]),
    (55, &["panchavanna", "panchavan", "पंचावन्न"]),
    (56, &["chhappanna", "छप्पन्न"]),
    (57, &["sattavanna", "सत्तावन्न"]),
    (58, &["aththavanna", "atthavanna", "अठ्ठावन्न"]),
    (59, &["ekonsath", "ekonsaath", "एकोणसाठ"]),
    (60, &["साठ"]),
    (61, &["eksashta", "eksasht", "एकसष्ट"]),
    (62, &["basashta", "basasht", "बासष्ट"]),
    (63, &["tresashta", "tresasht", "त्रेसष्ट"]),
    (64, &["chausashta", "chausasht", "चौसष्ट"]),
    (65, &["pasashta", "pasasht", "पासष्ट"]),
    (66, &["sahasashta", "sahasasht", "सहासष्ट"]),
    (67, &["sadusashta", "sadusasht", "सदुसष्ट"]),
    (68, &["adusashta", "adusasht", "अडुसष्ट"]),
    (69, &["ekonsattar", "एकोणसत्तर"]),
    (70, &["सत्तर"]),
    (71, &["ekkahattar", "एक्काहत्तर"]),
    (72, &["bahattar", "बाहत्तर"]),
    (73, &["tryahattar", "त्र्याहत्तर"]),
    (74, &["chauryahattar", "चौऱ्याहत्तर", "चौर्‍याहत्तर"]),
    (75, &["panchyahattar", "pachyahattar", "पंच्याहत्तर", "पंचाहत्तर"]),
    (76, &["shahattar", "शहात्तर"]),
    (77, &["satyahattar", "सत्याहत्तर"]),
    (78, &["aththyahattar", "athyahattar", "अठ्ठ्याहत्तर"]),
    (79, &["ekonainshi", "एकोणऐंशी"]),
    (80, &["ainshi", "ainshee", "aenshi", "ऐंशी"]),
    (81, &["ekkyaainshi", "ekkyainshi", "एक्क्याऐंशी"]),
    (82, &["byaainshi", "byainshi", "ब्याऐंशी"]),
    (83, &["tryaainshi", "tryainshi", "त्र्याऐंशी"]),
    (84, &["chauryaainshi", "chauryainshi", "चौऱ्याऐंशी"]),
    (85, &["panchyaainshi", "panchyainshi", "पंच्याऐंशी"]),
    (86, &["shahaainshi", "shahainshi", "शहाऐंशी"]),
    (87, &["sattyaainshi", "sattyainshi", "सत्त्याऐंशी"]),
    (88, &["aththyaainshi", "aththyainshi", "अठ्ठ्याऐंशी"]),
    (89, &["ekonnavvad", "ekonnavad", "एकोणनव्वद"]),
    (90, &["navvad", "navad", "नव्वद"]),
    (91, &["ekkyannav", "ekkyanav", "एक्क्याण्णव"]),
    (92, &["byannav", "byanav", "ब्याण्णव"]),
    (93, &["tryannav", "tryanav", "त्र्याण्णव"]),
    (94, &["chauryannav", "chauryanav", "चौऱ्याण्णव"]),
    (95, &["panchyannav", "panchyanav", "पंच्याण्णव"]),
    (96, &["shahannav", "shahanav", "शहाण्णव"]),
    (97, &["sattyannav", "sattyanav", "सत्त्याण्णव"]),
    (98, &["aththyannav", "aththyanav", "अठ्ठ्याण्णव"]),
    (99, &["navvyannav", "navvyanav", "नव्व्याण्णव"]),
];

const FRACTION_WORDS: &[(u64, &[&str])] = &[
    (250, &["pav", "paav", "pao", "quarter", "पाव"]),
    (500, &["aadha", "adha", "aadhi", "adhi", "aadhe", "ardha", "ardhi", "half", "आधा", "आधी", "अर्धा", "अर्धी"]),
    (750, &["pauna", "paun", "पौना", "पाउण", "पाऊण"]),
    (1500, &["dedh", "derh", "deed", "डेढ़", "डेढ", "दीड"]),
    (2500, &["dhai", "dhaai", "adhai", "adich", "adeech", "ढाई", "अढ़ाई", "अडीच"]),
];

const UNIT_WORDS: &[(SpokenUnit, &[&str])] = &[
    (SpokenUnit::Kg, &["kg", "kgs", "kilo", "kilos", "kilogram", "kilograms", "किलो"]),
    (SpokenUnit::G, &["g", "gm", "gms", "gram", "grams", "gramm", "ग्राम", "ग्रॅम"]),
    (SpokenUnit::Litre, &["l", "ltr", "litre", "liter", "litres", "liters", "लीटर", "लिटर"]),
    (SpokenUnit::Ml, &["ml", "millilitre", "milliliter", "एमएल"]),
    (SpokenUnit::Plate, &["plate", "plates", "plet", "pleat", "प्लेट"]),
    (
        SpokenUnit::Piece,
        &[
            "piece",
            "pieces",
            "pcs",
            "pc",
            "nag",
            "peace",
            "glass",
            "cup",
            "cups",
            "bottle",
            "bottles",
            "vati",
            "bowl",
            "नग",
            "पीस",
            "गिलास",
            "ग्लास",
            "कप",
            "बोतल",
            "वाटी",
        ],
    ),
    (
        SpokenUnit::Pack,
        &[
            "pack",
            "packs",
            "packet",
            "packets",
            "paket",
            "pakit",
            "strip",
            "strips",
            "patta",
            "patte",
            "patti",
            "bunch",
            "bunches",
            "gaddi",
            "gaddiyan",
            "judi",
            "ladi",
            "पत्ता",
            "पत्ते",
            "गड्डी",
            "जुडी",
            "लडी",
            "पैकेट",
            "पॅकेट",
            "पाकीट",
            "पाकिटे",
            "पाकिटं",
            "pakite",
            "paakite",
            "पुडा",
            "box",
            "boxes",
            "dabba",
            "dabbe",
            "डबा",
            "डब्बा",
            "डबे",
        ],
    ),
    (SpokenUnit::Dozen, &["dozen", "dozens", "darjan", "darjen", "dajan", "दर्जन", "डझन", "डज़न"]),
];

fn lexicon() -> &'static HashMap<String, Word> {
    &lexicons().0
}

/// Number, fraction and unit words by light key, and by light key without
/// nasals for Devanagari words whose anusvara an ASR dropped or added
/// (keys that would mean two words left out).
type Lexicons = (HashMap<String, Word>, HashMap<String, Option<Word>>);

fn lexicons() -> &'static Lexicons {
    static LEXICON: OnceLock<Lexicons> = OnceLock::new();
    LEXICON.get_or_init(|| {
        let mut map = HashMap::new();
        let mut short_a: Vec<(String, Word)> = Vec::new();
        let mut put = |spelling: &str, word: Word| {
            // Multi-word English numbers ("twenty one") are read word by word.
            if !spelling.contains(' ') {
                for token in crate::normalize::tokenize(spelling) {
                    map.insert(token.light, word);
                }
                // Latin with the last vowel or h unheard ("tw", "ded", "plat").
                if spelling.is_ascii() && spelling.len() >= 3 && spelling.ends_with(['a', 'e', 'i', 'o', 'u', 'h']) {
                    let clipped = &spelling[..spelling.len() - 1];
                    if !CLIPPED_LOOKALIKES.contains(&clipped) {
                        for token in crate::normalize::tokenize(clipped) {
                            short_a.push((token.light, word));
                        }
                    }
                }
                // Devanagari with the long ā heard short ("ढई" for ढाई).
                if spelling.contains('ा') && spelling.chars().count() >= 3 {
                    for token in crate::normalize::tokenize(&spelling.replace('ा', "")) {
                        short_a.push((token.light, word));
                    }
                }
            }
        };
        for (n, spellings) in ENGLISH_NUMBERS.iter().chain(HINDI_NUMBERS).chain(MARATHI_NUMBERS) {
            spellings.iter().for_each(|s| put(s, Word::Value(n * 1000)));
        }
        for (milli, spellings) in FRACTION_WORDS {
            spellings.iter().for_each(|s| put(s, Word::Value(*milli)));
        }
        for (unit, spellings) in UNIT_WORDS {
            spellings.iter().for_each(|s| put(s, Word::Unit(*unit)));
        }
        for s in ["sawa", "sava", "savva", "sawwa", "सवा", "सव्वा"] {
            put(s, Word::Sawa);
        }
        for s in ["paune", "pone", "paune", "पौने", "पावणे", "pavne"] {
            put(s, Word::Paune);
        }
        for s in ["saadhe", "sadhe", "saade", "sade", "साढ़े", "साडे"] {
            put(s, Word::Saadhe);
        }
        for s in ["sau", "hundred", "सौ", "शंभर", "shambhar"] {
            put(s, Word::Times(100));
        }
        for s in ["hazar", "hazaar", "hajar", "thousand", "हज़ार", "हजार"] {
            put(s, Word::Times(1000));
        }
        // Where the short spelling means no other word.
        let mut short_counts: HashMap<&str, usize> = HashMap::new();
        for (key, _) in &short_a {
            *short_counts.entry(key.as_str()).or_default() += 1;
        }
        for (key, word) in &short_a {
            let same = short_a.iter().filter(|(k, w)| k == key && w == word).count();
            if !map.contains_key(key) && short_counts[key.as_str()] == same {
                map.insert(key.clone(), *word);
            }
        }
        let mut nasal_free: HashMap<String, Option<Word>> = HashMap::new();
        for (key, word) in &map {
            let entry = nasal_free.entry(without_nasal(key)).or_insert(Some(*word));
            if *entry != Some(*word) {
                *entry = None;
            }
        }
        (map, nasal_free)
    })
}

/// Number and unit words with the last letter unheard that are words of
/// their own ("on", "saw", "bar", "sol" of sol kadhi).
const CLIPPED_LOOKALIKES: &[&str] = &[
    "on", "in", "an", "as", "is", "it", "at", "to", "so", "no", "he", "me", "we", "be", "or", "of", "up", "us", "my",
    "by", "go", "na", "sa", "saw", "bar", "sol", "fiv", "ter", "aad", "pa", "paa",
];

/// Latin words whose light key meets a number word's but which are common
/// English words: "did" is not दीड (1½), "tin" and "sat" are not 3 and 7.
const ENGLISH_LOOKALIKES: &[&str] = &["did", "tin", "sat"];

/// Marathi's genitive endings said as words ("एक किलो चा डबा"), as
/// transliterated: चा, ची, चे, च्या. Their keys meet clipped spellings of
/// छह (6).
const MARATHI_GENITIVES: &[&str] = &["chaa", "chee", "che", "chyaa"];

fn word_at(tokens: &[Token], i: usize) -> Option<Word> {
    let token = tokens.get(i)?;
    // "tin kilo", "did kilo": before a unit they are the numbers.
    if !token.devanagari && ENGLISH_LOOKALIKES.contains(&token.text.as_str()) && unit_at(tokens, i + 1).is_none() {
        return None;
    }
    if token.devanagari && MARATHI_GENITIVES.contains(&token.text.as_str()) {
        return None;
    }
    let light = &token.light;
    if let Some(word) = lexicon().get(light) {
        return Some(*word);
    }
    if token.devanagari
        && let Some(Some(word)) = lexicons().1.get(&without_nasal(light))
    {
        return Some(*word);
    }
    // Marathi glues hundreds and saade to the number: "दोनशे" 200,
    // "अडीचशे" 250, "साडेतीन" 3½.
    if let Some(Word::Value(v)) = light.strip_suffix("se").and_then(|n| lexicon().get(n))
        && *v >= 1000
    {
        return Some(Word::Value(v * 100));
    }
    let glued = light.strip_prefix("sade").or_else(|| light.strip_prefix("sadhe"));
    match glued.and_then(|n| lexicon().get(n)) {
        Some(Word::Value(v)) if *v >= 1000 && v % 1000 == 0 => Some(Word::Value(v + 500)),
        _ => None,
    }
}

/// Whether the word is a unit ("kilo", "plate").
pub fn unit_at(tokens: &[Token], i: usize) -> Option<SpokenUnit> {
    match word_at(tokens, i) {
        Some(Word::Unit(u)) => Some(u),
        _ => None,
    }
}

/// A spoken amount found in an utterance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmountMatch {
    pub amount: Amount,
    /// Tokens it covers.
    pub len: usize,
    /// It is the single word "pav", which is also bread ("misal pav").
    pub bare_pav: bool,
}

fn digits(text: &str) -> Option<u64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || whole.len() > 9 || frac.len() > 3 || !text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let frac_milli = format!("{frac:0<3}").parse::<u64>().ok()?;
    Some(whole.parse::<u64>().ok()? * 1000 + frac_milli)
}

/// Whether word `i` is one of `words`, given as light keys ("aand" is
/// "and"; "quarter" is "kuarter").
fn is(tokens: &[Token], i: usize, words: &[&str]) -> bool {
    tokens.get(i).is_some_and(|t| words.contains(&t.light.as_str()))
}

/// Reads an amount starting at token `i`: a number (digits, words,
/// fractions, "sawa do", "dedh sau", "two hundred fifty", "one and a
/// half") and an optional unit, or a unit alone that means one of it
/// ("kilo aata", "dozen eggs").
pub fn parse_amount(tokens: &[Token], i: usize) -> Option<AmountMatch> {
    let mut j = i;
    let prefix = match word_at(tokens, j) {
        Some(w @ (Word::Sawa | Word::Paune | Word::Saadhe)) => {
            j += 1;
            Some(w)
        }
        _ => None,
    };
    let (base, base_is_times) = match (tokens.get(j).and_then(|t| digits(&t.text)), word_at(tokens, j)) {
        (Some(v), _) => (Some(v), false),
        (None, Some(Word::Value(v))) => (Some(v), false),
        // "sau gram", "sawa sau": a hundred on its own.
        (None, Some(Word::Times(m))) => (Some(m * 1000), true),
        // "a kilo", "a dozen": "a" counts as one only before a unit.
        (None, _) if is(tokens, j, &["a", "an"]) && unit_at(tokens, j + 1).is_some() => (Some(1000), false),
        _ => (None, false),
    };
    let mut value = match (prefix, base) {
        // "साडे तीनशे": a glued hundred is N hundred, so saadhe adds to N
        // (350), as in "साढ़े तीन सौ"; only a bare "sau" takes a fraction
        // of itself ("sawa sau" 125).
        (Some(p), Some(b)) if !base_is_times && b >= 100_000 && b % 100_000 == 0 => {
            j += 1;
            apply_prefix(p, b / 100)? * 100
        }
        (Some(p), Some(b)) => {
            j += 1;
            apply_prefix(p, b)?
        }
        (None, Some(b)) => {
            j += 1;
            b
        }
        (Some(Word::Sawa), None) => 1250,
        (Some(Word::Paune), None) => 750,
        (Some(_), None) => return None,
        (None, None) => {
            let unit = unit_at(tokens, i)?;
            return matches!(unit, SpokenUnit::Kg | SpokenUnit::Litre | SpokenUnit::Dozen).then_some(AmountMatch {
                amount: Amount { value: Qty::ONE, unit: Some(unit) },
                len: 1,
                bare_pav: false,
            });
        }
    };
    if let Some(Word::Times(m)) = word_at(tokens, j)
        && !base_is_times
    {
        value *= m;
        j += 1;
    }
    if value >= 100_000 && value % 100_000 == 0 {
        // "ek sau bees", "two hundred fifty"
        if let Some(rest) = number_below(tokens, j, 100_000) {
            value += rest.0;
            j += rest.1;
        }
    } else if let Some(Word::Value(rest)) = word_at(tokens, j)
        && (20_000..100_000).contains(&value)
        && value % 10_000 == 0
        && rest < 10_000
        && rest % 1000 == 0
        && !tokens[j - 1].devanagari
    {
        // "twenty five": English tens and units.
        value += rest;
        j += 1;
    }
    // "three quarter": quarters counted.
    if is(tokens, j, &["kuarter", "kuarters"]) && (1000..=3000).contains(&value) && value % 1000 == 0 {
        value /= 4;
        j += 1;
    }
    // "one and a half", "do aur aadha", "one and a quarter", "one and three quarters"
    if is(tokens, j, &["and", "aur", "ani"]) && value % 1000 == 0 {
        let mut k = j + 1;
        if is(tokens, k, &["a"]) {
            k += 1;
        }
        let fraction = match word_at(tokens, k) {
            Some(Word::Value(f @ (250 | 500))) => Some((f, k + 1)),
            Some(Word::Value(3000)) if is(tokens, k + 1, &["kuarter", "kuarters"]) => Some((750, k + 2)),
            _ => None,
        };
        if let Some((f, end)) = fraction {
            value += f;
            j = end;
        }
    }
    // "half a kilo", "quarter of a kg"
    let mut k = j;
    while is(tokens, k, &["a", "of"]) {
        k += 1;
    }
    let unit = unit_at(tokens, k);
    if unit.is_some() {
        j = k + 1;
    }
    if value == 0 {
        return None;
    }
    let bare_pav = j == i + 1 && value == 250 && prefix.is_none();
    Some(AmountMatch { amount: Amount { value: Qty(value), unit }, len: j - i, bare_pav })
}

/// sawa/paune/saadhe N is N ± a fraction of one ("sawa do" 2¼); of a
/// hundred or more, a fraction of N ("sawa sau" 125).
fn apply_prefix(prefix: Word, base: u64) -> Option<u64> {
    let large = base >= 100_000;
    match prefix {
        Word::Sawa if large => Some(base + base / 4),
        Word::Sawa => Some(base + 250),
        Word::Paune if large => Some(base - base / 4),
        Word::Paune if base > 250 => Some(base - 250),
        Word::Saadhe if large => Some(base + base / 2),
        Word::Saadhe if base >= 1000 => Some(base + 500),
        _ => None,
    }
}

/// A whole number word or digits below `limit` at `j`: (value, tokens).
fn number_below(tokens: &[Token], j: usize, limit: u64) -> Option<(u64, usize)> {
    let value = match (tokens.get(j).and_then(|t| digits(&t.text)), word_at(tokens, j)) {
        (Some(v), _) => v,
        (None, Some(Word::Value(v))) if v % 1000 == 0 => v,
        _ => return None,
    };
    if value >= limit {
        return None;
    }
    // "two hundred twenty five"
    if value >= 20_000
        && value % 10_000 == 0
        && let Some(Word::Value(unit)) = word_at(tokens, j + 1)
        && unit < 10_000
        && unit % 1000 == 0
    {
        return Some((value + unit, 2));
    }
    Some((value, 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::tokenize;

    fn amount(text: &str) -> Option<(f64, Option<SpokenUnit>, usize)> {
        let tokens = tokenize(text);
        parse_amount(&tokens, 0).map(|m| (m.amount.value.as_f64(), m.amount.unit, m.len))
    }

    #[test]
    fn numbers_in_four_languages() {
        use SpokenUnit::*;
        let cases: &[(&str, f64, Option<SpokenUnit>)] = &[
            ("2", 2.0, None),
            ("2.5 kg", 2.5, Some(Kg)),
            ("do", 2.0, None),
            ("teen plate", 3.0, Some(Plate)),
            ("dus", 10.0, None),
            ("bees", 20.0, None),
            ("pachaas", 50.0, None),
            ("sau", 100.0, None),
            ("ek sau bees", 120.0, None),
            ("दो", 2.0, None),
            ("तीन", 3.0, None),
            ("दोन", 2.0, None),
            ("पाच", 5.0, None),
            ("don", 2.0, None),
            ("paach", 5.0, None),
            ("char", 4.0, None),
            ("one", 1.0, None),
            ("twenty five", 25.0, None),
            ("two hundred fifty ml", 250.0, Some(Ml)),
            ("hundred grams", 100.0, Some(G)),
            ("sau gram", 100.0, Some(G)),
            ("500 gram", 500.0, Some(G)),
            ("500g", 500.0, Some(G)),
            ("ek kilo", 1.0, Some(Kg)),
            ("एक किलो", 1.0, Some(Kg)),
            ("250 ml", 250.0, Some(Ml)),
            ("half plate", 0.5, Some(Plate)),
            ("paav kilo", 0.25, Some(Kg)),
            ("पाव किलो", 0.25, Some(Kg)),
            ("aadha kilo", 0.5, Some(Kg)),
            ("अर्धा किलो", 0.5, Some(Kg)),
            ("sawa kilo", 1.25, Some(Kg)),
            ("sawa do", 2.25, None),
            ("dedh", 1.5, None),
            ("डेढ़ किलो", 1.5, Some(Kg)),
            ("दीड किलो", 1.5, Some(Kg)),
            ("dhai", 2.5, None),
            ("ढाई सौ ग्राम", 250.0, Some(G)),
            ("अडीच किलो", 2.5, Some(Kg)),
            ("paune do", 1.75, None),
            ("paune teen kilo", 2.75, Some(Kg)),
            ("saadhe teen", 3.5, None),
            ("darjan", 1.0, Some(Dozen)),
            ("do darjan", 2.0, Some(Dozen)),
            ("डझन", 1.0, Some(Dozen)),
            ("dedh sau gram", 150.0, Some(G)),
            ("sawa sau", 125.0, None),
            ("one and a half kg", 1.5, Some(Kg)),
            ("half a kilo", 0.5, Some(Kg)),
            ("a dozen", 1.0, Some(Dozen)),
            // Compared on light keys, as an ASR may spell them.
            ("one aand a half kilo", 1.5, Some(Kg)),
            ("three kuarter kilo", 0.75, Some(Kg)),
            // saadhe with hundreds, glued in Marathi or said apart.
            ("साडे तीनशे ग्राम", 350.0, Some(G)),
            ("साढ़े तीन सौ", 350.0, None),
            ("saade teen sau", 350.0, None),
            ("सव्वा दोनशे", 225.0, None),
            ("one and a half litre", 1.5, Some(Litre)),
        ];
        for (text, value, unit) in cases {
            let got = amount(text);
            let (v, u, len) = got.unwrap_or_else(|| panic!("{text}: no amount"));
            assert_eq!((v, u), (*value, *unit), "{text}");
            assert_eq!(len, tokenize(text).len(), "{text} covers every word");
        }
        assert!(amount("misal").is_none());
        assert!(amount("a misal").is_none());
    }

    #[test]
    fn every_number_from_one_to_ninety_nine_has_words_and_no_spelling_means_two_numbers() {
        let mut seen: HashMap<String, (u64, &str)> = HashMap::new();
        for table in [HINDI_NUMBERS, MARATHI_NUMBERS] {
            assert_eq!(table.iter().map(|(n, _)| *n).collect::<Vec<_>>(), (1..=99).collect::<Vec<_>>());
        }
        for (n, spellings) in ENGLISH_NUMBERS.iter().chain(HINDI_NUMBERS).chain(MARATHI_NUMBERS) {
            for spelling in *spellings {
                for token in tokenize(spelling) {
                    if let Some((other, said)) = seen.insert(token.light.clone(), (*n, spelling))
                        && other != *n
                    {
                        panic!("{spelling} ({n}) and {said} ({other}) share the key {}", token.light);
                    }
                }
                let tokens = tokenize(spelling);
                let parsed = parse_amount(&tokens, 0).map(|m| (m.amount.value, m.len));
                assert_eq!(parsed, Some((Qty::whole(*n), tokens.len())), "{spelling}");
            }
        }
    }

    #[test]
    fn bare_pav_is_flagged() {
        let tokens = tokenize("pav");
        assert!(parse_amount(&tokens, 0).unwrap().bare_pav);
        let tokens = tokenize("pav kilo");
        assert!(!parse_amount(&tokens, 0).unwrap().bare_pav);
    }

    #[test]
    fn spoken_units_convert_to_the_items_unit() {
        let a = |v: u64, u| Amount { value: Qty(v), unit: Some(u) };
        assert_eq!(a(500_000, SpokenUnit::G).in_unit(Unit::Kg), (Qty(500), UnitFit::Exact));
        assert_eq!(a(1000, SpokenUnit::Kg).in_unit(Unit::G), (Qty(1_000_000), UnitFit::Exact));
        assert_eq!(a(1000, SpokenUnit::Dozen).in_unit(Unit::Piece), (Qty(12_000), UnitFit::Exact));
        assert_eq!(a(2000, SpokenUnit::Kg).in_unit(Unit::Plate), (Qty(2000), UnitFit::Mismatch));
        assert_eq!(Qty(1500).to_string(), "1.5");
        assert_eq!(serde_json::to_string(&Qty(250)).unwrap(), "0.25");
        assert_eq!(serde_json::from_str::<Qty>("2").unwrap(), Qty(2000));
    }
}
