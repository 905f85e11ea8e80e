//! Text normalisation for understanding: Devanagari is transliterated to
//! Latin the way an ASR writes Hinglish ("मिसळ पाव" → "misal pav"), text is
//! lower-cased, punctuation goes, and every word gets two comparison keys
//! that absorb common spelling variation ("misal paav", "missal").

/// One word of an utterance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Lower-case Latin text (transliterated when the word was Devanagari).
    pub text: String,
    /// The fuzzy key catalog aliases are compared on ([`word_key`]).
    pub key: String,
    /// The stricter key number and marker words are compared on ([`light_key`]).
    pub light: String,
    pub devanagari: bool,
}

impl Token {
    /// A word from its Latin text (transliterated already when it was
    /// Devanagari).
    pub fn new(text: String, devanagari: bool) -> Token {
        Token { key: word_key(&text), light: light_key(&text), text, devanagari }
    }
}

/// Splits an utterance into normalised words. Digits and letters are split
/// apart ("500g" → "500", "g"); Devanagari digits become ASCII digits; a
/// decimal point between digits is kept ("2.5").
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut class = Class::Space;
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let c = devanagari_digit(c).unwrap_or(c);
        let next_class = classify(c);
        let decimal_point = c == '.'
            && class == Class::Digit
            && chars.get(i + 1).is_some_and(|n| devanagari_digit(*n).unwrap_or(*n).is_ascii_digit());
        if decimal_point {
            word.push('.');
            continue;
        }
        // Apostrophes join ("don't"), and so do the zero-width joiners
        // Devanagari text carries ("चौर्‍याहत्तर"); other punctuation separates.
        if matches!(c, '\'' | '’' | '\u{200C}' | '\u{200D}') {
            continue;
        }
        if next_class != class || next_class == Class::Space {
            flush(&mut word, class, &mut tokens);
        }
        class = next_class;
        if class != Class::Space {
            word.extend(c.to_lowercase());
        }
    }
    flush(&mut word, class, &mut tokens);
    tokens
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Space,
    Digit,
    Latin,
    Devanagari,
}

fn classify(c: char) -> Class {
    if c.is_ascii_digit() {
        Class::Digit
    } else if ('\u{0900}'..='\u{097F}').contains(&c) && c != '।' && c != '॥' {
        Class::Devanagari
    } else if c.is_alphabetic() {
        Class::Latin
    } else {
        Class::Space
    }
}

fn devanagari_digit(c: char) -> Option<char> {
    ('०'..='९').contains(&c).then(|| char::from(b'0' + (c as u32 - '०' as u32) as u8))
}

fn flush(word: &mut String, class: Class, tokens: &mut Vec<Token>) {
    if word.is_empty() {
        return;
    }
    let devanagari = class == Class::Devanagari;
    let text = if devanagari { transliterate(word) } else { std::mem::take(word) };
    word.clear();
    if !text.is_empty() {
        tokens.push(Token { key: word_key(&text), light: light_key(&text), text, devanagari });
    }
}

/// One Devanagari syllable: a consonant cluster, its vowel, and a coda
/// (anusvara, chandrabindu, visarga).
struct Syllable {
    consonants: String,
    vowel: &'static str,
    inherent: bool,
    coda: &'static str,
}

/// Transliterates one Devanagari word to Latin as Hinglish is commonly
/// written, with Hindi/Marathi schwa deletion: the inherent "a" of the last
/// consonant is not spoken ("मिसळ" → "misal"), nor that of a medial one
/// between two full vowels ("चकली" → "chaklee").
pub fn transliterate(word: &str) -> String {
    let mut syllables: Vec<Syllable> = Vec::new();
    let mut chars = word.chars().peekable();
    let mut joined = false; // the previous consonant carried a virama
    while let Some(c) = chars.next() {
        let nukta = chars.peek() == Some(&'\u{093C}');
        if nukta {
            chars.next();
        }
        if let Some(cons) = consonant(c, nukta) {
            match syllables.last_mut() {
                Some(last) if joined => {
                    last.consonants.push_str(cons);
                    last.vowel = "a";
                    last.inherent = true;
                }
                _ => syllables.push(Syllable { consonants: cons.into(), vowel: "a", inherent: true, coda: "" }),
            }
            joined = false;
        } else if c == '\u{094D}' {
            if let Some(last) = syllables.last_mut() {
                last.vowel = "";
                last.inherent = false;
            }
            joined = true;
        } else if let Some(v) = matra(c) {
            if let Some(last) = syllables.last_mut() {
                last.vowel = v;
                last.inherent = false;
            }
            joined = false;
        } else if let Some(v) = independent_vowel(c) {
            syllables.push(Syllable { consonants: String::new(), vowel: v, inherent: false, coda: "" });
            joined = false;
        } else if let Some(coda) = coda(c) {
            if let Some(last) = syllables.last_mut() {
                last.coda = coda;
            }
            joined = false;
        }
    }
    let n = syllables.len();
    if n > 1 && syllables[n - 1].inherent && syllables[n - 1].coda.is_empty() {
        syllables[n - 1].vowel = "";
    }
    let mut i = 1;
    while i + 1 < n {
        let medial = syllables[i].inherent
            && syllables[i].coda.is_empty()
            && !syllables[i - 1].vowel.is_empty()
            && syllables[i - 1].coda.is_empty()
            && !syllables[i + 1].vowel.is_empty()
            && !syllables[i + 1].consonants.is_empty();
        if medial {
            syllables[i].vowel = "";
            i += 2;
        } else {
            i += 1;
        }
    }
    let mut out = String::new();
    for s in &syllables {
        out.push_str(&s.consonants);
        out.push_str(s.vowel);
        out.push_str(s.coda);
    }
    out
}

fn consonant(c: char, nukta: bool) -> Option<&'static str> {
    Some(match (c, nukta) {
        ('क', false) => "k",
        ('क', true) | ('\u{0958}', _) => "k",
        ('ख', false) => "kh",
        ('ख', true) | ('\u{0959}', _) => "kh",
        ('ग', _) | ('\u{095A}', _) => "g",
        ('घ', _) => "gh",
        ('ङ', _) => "n",
        ('च', _) => "ch",
        ('छ', _) => "chh",
        ('ज', false) => "j",
        ('ज', true) | ('\u{095B}', _) => "z",
        ('झ', _) => "jh",
        ('ञ', _) => "n",
        ('ट', _) => "t",
        ('ठ', _) => "th",
        ('ड', _) | ('\u{095C}', _) => "d",
        ('ढ', _) | ('\u{095D}', _) => "dh",
        ('ण', _) => "n",
        ('त', _) => "t",
        ('थ', _) => "th",
        ('द', _) => "d",
        ('ध', _) => "dh",
        ('न', _) | ('ऩ', _) => "n",
        ('प', _) => "p",
        ('फ', false) => "ph",
        ('फ', true) | ('\u{095E}', _) => "f",
        ('ब', _) => "b",
        ('भ', _) => "bh",
        ('म', _) => "m",
        ('य', _) | ('\u{095F}', _) => "y",
        ('र', _) | ('ऱ', _) => "r",
        ('ल', _) => "l",
        ('ळ', _) | ('ऴ', _) => "l",
        ('व', _) => "v",
        ('श', _) => "sh",
        ('ष', _) => "sh",
        ('स', _) => "s",
        ('ह', _) => "h",
        _ => return None,
    })
}

fn matra(c: char) -> Option<&'static str> {
    Some(match c {
        'ा' => "aa",
        'ि' => "i",
        'ी' => "ee",
        'ु' => "u",
        'ू' => "oo",
        'ृ' => "ri",
        'े' => "e",
        'ै' => "ai",
        'ो' => "o",
        'ौ' => "au",
        'ॉ' | 'ॊ' => "o",
        // The candra e of English loans ("पॅकेट" packet, "बॅग" bag) is
        // written "a" in Latin.
        'ॅ' => "a",
        'ॆ' => "e",
        _ => return None,
    })
}

fn independent_vowel(c: char) -> Option<&'static str> {
    Some(match c {
        'अ' | 'ॲ' => "a",
        'आ' => "aa",
        'इ' => "i",
        'ई' => "ee",
        'उ' => "u",
        'ऊ' => "oo",
        'ऋ' => "ri",
        'ऍ' => "a",
        'ए' | 'ऎ' => "e",
        'ऐ' => "ai",
        'ओ' | 'ऑ' | 'ऒ' => "o",
        'औ' => "au",
        'ॐ' => "om",
        _ => return None,
    })
}

fn coda(c: char) -> Option<&'static str> {
    Some(match c {
        'ं' | 'ँ' => "n",
        'ः' => "h",
        _ => return None,
    })
}

/// A key that absorbs vowel length and doubled letters and a few letter
/// swaps ASR output makes (w/v, z/j, ph/f, sh/s), but keeps aspiration:
/// number words need it ("saat" 7, "saath" 60).
pub fn light_key(word: &str) -> String {
    let mut s = word.to_lowercase();
    for (from, to) in [("ph", "f"), ("sh", "s"), ("w", "v"), ("z", "j"), ("ee", "i"), ("oo", "u"), ("q", "k")] {
        s = s.replace(from, to);
    }
    // A hard c is k ("ec", "cilo", "cankel"); "ch" stays.
    let s = collapse_doubles(&s);
    let bytes = s.as_bytes();
    let hard: String =
        s.char_indices().map(|(i, c)| if c == 'c' && bytes.get(i + 1) != Some(&b'h') { 'k' } else { c }).collect();
    collapse_doubles(&hard)
}

/// The key without a nasal before a consonant, which ASRs drop and add
/// around the anusvara ("पांच"/"पाच", "किंलो" for किलो).
pub fn without_nasal(key: &str) -> String {
    let bytes = key.as_bytes();
    let vowel = |c: u8| b"aeiou".contains(&c);
    key.char_indices()
        .filter(|&(i, c)| {
            !(c == 'n'
                && i > 0
                && vowel(bytes[i - 1])
                && bytes.get(i + 1).is_some_and(|n| n.is_ascii_alphabetic() && !vowel(*n)))
        })
        .map(|(_, c)| c)
        .collect()
}

/// The fuzzy key catalog aliases are compared on: [`light_key`] plus hard c
/// as k, no aspiration (th/t, dh/d, kh/k, bh/b, gh/g, jh/j, chh/ch), ay/ai,
/// au/o, and a final h after a vowel dropped ("chah" = "cha").
pub fn word_key(word: &str) -> String {
    let mut s = light_key(word);
    for (from, to) in [("ck", "k"), ("x", "ks"), ("chh", "ch"), ("ch", "\u{1}"), ("c", "k"), ("\u{1}", "ch")] {
        s = s.replace(from, to);
    }
    for (from, to) in
        [("kh", "k"), ("gh", "g"), ("jh", "j"), ("th", "t"), ("dh", "d"), ("bh", "b"), ("rh", "r"), ("au", "o")]
    {
        s = s.replace(from, to);
    }
    // English plurals: "samosas", "potatoes", "pastries".
    if s.len() > 4 && s.ends_with("ies") {
        s.truncate(s.len() - 3);
        s.push('y');
    } else if s.len() > 3 && s.ends_with('s') && !s.ends_with("ss") && !s.ends_with("us") {
        s.pop();
    }
    // English spellings as Devanagari writes them: "tea" टी, "bottle"
    // बोतल, "apple" ॲपल.
    if s.len() > 2 && s.ends_with("ea") {
        s.truncate(s.len() - 2);
        s.push('i');
    } else if s.len() > 4
        && s.ends_with("le")
        && s[..s.len() - 2].ends_with(|c: char| c.is_ascii_alphabetic() && !"aeiou".contains(c))
    {
        s.truncate(s.len() - 2);
        s.push_str("al");
    }
    if s.ends_with("ay") {
        s.truncate(s.len() - 2);
        s.push_str("ai");
    }
    if s.len() > 2 && s.ends_with('h') && s[..s.len() - 1].ends_with(['a', 'e', 'i', 'o', 'u']) {
        s.pop();
    }
    // "moong"/"मूग", "kanda"/"कादा": a nasal before a consonant comes and goes.
    collapse_doubles(&without_nasal(&s))
}

fn collapse_doubles(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last = None;
    for c in s.chars() {
        if Some(c) != last || c.is_ascii_digit() {
            out.push(c);
        }
        last = Some(c);
    }
    out
}

/// Edit distance over bytes (keys are ASCII), an adjacent transposition
/// counting as one edit: Devanagari's schwa lands on either side of a
/// consonant ("बांसमती" basamti, basmati), giving up past `max`.
pub fn edit_distance(a: &str, b: &str, max: usize) -> Option<usize> {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        let mut row_min = cur[0];
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let mut d = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 && ca == b[j - 1] && a[i - 1] == cb {
                d = d.min(before[j - 1] + 1);
            }
            cur[j + 1] = d;
            row_min = row_min.min(d);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[b.len()]).filter(|d| *d <= max)
}

/// How alike two fuzzy keys are, 0 (not at all) to 1 (equal). Short words
/// must match exactly; longer ones tolerate one edit per four letters, at
/// most two.
pub fn similarity(a: &str, b: &str) -> f32 {
    if a == b {
        return 1.0;
    }
    let len = a.len().max(b.len());
    // "vad" for vada, "ped" for peda: a short word with its last vowel unheard.
    let (short, long) = if a.len() < b.len() { (a, b) } else { (b, a) };
    if short.len() == 3 && long.len() == 4 && long.starts_with(short) && long.ends_with(['a', 'e', 'i', 'o', 'u']) {
        return 0.7;
    }
    let allowed = match a.len().min(b.len()) {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    };
    match edit_distance(a, b, allowed) {
        Some(d) if allowed > 0 => 1.0 - d as f32 / len as f32,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devanagari_is_transliterated_with_schwa_deletion() {
        let cases = [
            ("मिसळ", "misal"),
            ("पाव", "paav"),
            ("कटिंग", "kating"),
            ("समोसा", "samosaa"),
            ("चकली", "chaklee"),
            ("दोन", "don"),
            ("तीन", "teen"),
            ("पाँच", "paanch"),
            ("डेढ़", "dedh"),
            ("प्याज़", "pyaaz"),
            ("अडीच", "adeech"),
            ("नको", "nako"),
            ("अर्धा", "ardhaa"),
            ("दही", "dahee"),
            ("किलो", "kilo"),
        ];
        for (dev, latin) in cases {
            assert_eq!(transliterate(dev), latin, "{dev}");
        }
    }

    #[test]
    fn asr_spellings_share_a_key() {
        let same = [
            ("misal", "missal"),
            ("pav", "paav"),
            ("chai", "chay"),
            ("pyaaz", "pyaj"),
            ("teekha", "tikha"),
            ("phulka", "fulka"),
            ("wada", "vada"),
            ("cha", "chah"),
            ("shakkar", "sakar"),
        ];
        for (a, b) in same {
            assert_eq!(word_key(a), word_key(b), "{a} / {b}");
        }
        assert_ne!(light_key("saat"), light_key("saath"));
        assert!(similarity(&word_key("cutting"), &word_key("kating")) >= 0.8);
        assert_eq!(word_key("moong"), word_key(&transliterate("मूग")), "a nasal before a consonant comes and goes");
        assert_eq!(similarity(&word_key("do"), &word_key("dosa")), 0.0);
    }

    #[test]
    fn tokens_split_digits_units_and_punctuation() {
        let texts: Vec<String> = tokenize("500g Sugar, 2.5 KG! दोन-मिसळ ३ प्लेट").into_iter().map(|t| t.text).collect();
        assert_eq!(texts, ["500", "g", "sugar", "2.5", "kg", "don", "misal", "3", "plet"]);
    }

    #[test]
    fn a_schwa_on_the_other_side_of_a_consonant_is_one_edit() {
        assert_eq!(edit_distance("basamti", "basmati", 1), Some(1));
        assert_eq!(edit_distance("basmati", "basmati", 1), Some(0));
        assert_eq!(edit_distance("abcd", "badc", 1), None);
        assert_eq!(tokenize("टी")[0].key, word_key("tea"));
        assert_eq!(tokenize("बोतल")[0].key, word_key("bottle"));
    }
}
