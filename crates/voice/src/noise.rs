//! Simulated speech-recognition errors, for measuring understanding on
//! text as a noisy ASR would write it (`voice eval --noise 0.1`).
//!
//! Each word is hit with probability `rate` by one of the errors ASRs make
//! on Hinglish, Marathi and Hindi speech: a phonetic misspelling ("paav" →
//! "pav", "misal" → "missal", "wada", "मिसळ" → "मिसल", "दीड" → "दिड"), a
//! split ("samosa" → "sam osa"), a merge with the next word ("vada pav" →
//! "vadapav") or a dropped word. Number words are words like any other. The
//! output depends only on the rate, the seed, the salt and the text, so an
//! evaluation is repeatable.

/// Deterministic ASR-like corruption of utterances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AsrNoise {
    /// The share of words hit, 0..1.
    pub rate: f64,
    pub seed: u64,
}

/// One kind of error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Error {
    Substitute,
    Split,
    Merge,
    Drop,
}

/// Latin letter swaps an ASR makes between spellings of one sound, each
/// tried in both directions.
const LATIN_SWAPS: &[(&str, &str)] =
    &[("aa", "a"), ("ee", "i"), ("oo", "u"), ("v", "w"), ("ph", "f"), ("sh", "s"), ("z", "j"), ("k", "c"), ("k", "q")];

/// Devanagari swaps: vowel signs of near length, ळ/ल, a dropped nukta.
const DEVANAGARI_SWAPS: &[(&str, &str)] =
    &[("ि", "ी"), ("ी", "ि"), ("ु", "ू"), ("ू", "ु"), ("ा", ""), ("ळ", "ल"), ("ल", "ळ"), ("\u{093C}", "")];

const ANUSVARA: char = 'ं';

impl AsrNoise {
    pub fn new(rate: f64, seed: u64) -> AsrNoise {
        AsrNoise { rate, seed }
    }

    /// The text as a noisy ASR might have written it. `salt` tells apart
    /// texts corrupted under one seed (an evaluation passes the case's
    /// index), so that equal turns of different cases get different errors.
    pub fn corrupt(&self, text: &str, salt: u64) -> String {
        self.corrupt_counted(text, salt).0
    }

    /// The corrupted text and how many of the original words were hit.
    fn corrupt_counted(&self, text: &str, salt: u64) -> (String, usize) {
        let words: Vec<&str> = text.split_whitespace().collect();
        if self.rate <= 0.0 || words.is_empty() {
            return (words.join(" "), 0);
        }
        let mut rng = SplitMix64::new(self.seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ fnv1a(text));
        let mut out: Vec<String> = Vec::with_capacity(words.len());
        let mut hit = 0;
        let mut i = 0;
        while i < words.len() {
            let word = words[i];
            i += 1;
            if rng.unit() >= self.rate {
                out.push(word.to_string());
                continue;
            }
            hit += 1;
            let roll = rng.unit();
            let mut error = match roll {
                r if r < 0.6 => Error::Substitute,
                r if r < 0.72 => Error::Split,
                r if r < 0.86 => Error::Merge,
                _ => Error::Drop,
            };
            // A merge needs a next word; dropping the only word leaves
            // nothing. A word nothing else fits is dropped.
            if (error == Error::Merge && i >= words.len()) || (error == Error::Drop && words.len() == 1) {
                error = Error::Substitute;
            }
            match error {
                Error::Substitute => match substitute(word, &mut rng).or_else(|| split(word, &mut rng)) {
                    Some(Ok(w)) => out.push(w),
                    Some(Err((a, b))) => out.extend([a, b]),
                    None => {}
                },
                Error::Split => match split(word, &mut rng).or_else(|| substitute(word, &mut rng)) {
                    Some(Ok(w)) => out.push(w),
                    Some(Err((a, b))) => out.extend([a, b]),
                    None => {}
                },
                Error::Merge => {
                    out.push(format!("{word}{}", words[i]));
                    i += 1;
                }
                Error::Drop => {}
            }
        }
        (out.join(" "), hit)
    }
}

/// One word written another way: `Ok` a word, `Err` two words.
type Rewrite = Result<String, (String, String)>;

/// A phonetic misspelling of the word, always different from it; a
/// number in digits is written in words ("250" → "two hundred fifty"), as
/// ASRs do either. `None` when nothing in the word is confusable.
fn substitute(word: &str, rng: &mut SplitMix64) -> Option<Rewrite> {
    if let Ok(n) = word.parse::<u32>() {
        let spelled = english_number(n)?;
        return Some(match spelled.split_once(' ') {
            Some((a, b)) => Err((a.to_string(), b.to_string())),
            None => Ok(spelled),
        });
    }
    let edits = if word.chars().any(is_devanagari) { devanagari_edits(word) } else { latin_edits(word) };
    if edits.is_empty() {
        return None;
    }
    let (at, len, to) = &edits[rng.below(edits.len())];
    Some(Ok(format!("{}{}{}", &word[..*at], to, &word[at + len..])))
}

/// 1–999 in English words, joined by spaces after the first ("two
/// hundred fifty" is "two" and "hundred fifty").
fn english_number(n: u32) -> Option<String> {
    use crate::spell::{EN_ONES as ONES, EN_TENS as TENS};
    if n == 0 || n > 999 {
        return None;
    }
    let mut words: Vec<&str> = Vec::new();
    if n >= 100 {
        words.extend([ONES[(n / 100) as usize], "hundred"]);
    }
    let rest = (n % 100) as usize;
    if rest >= 20 {
        words.push(TENS[rest / 10]);
        if !rest.is_multiple_of(10) {
            words.push(ONES[rest % 10]);
        }
    } else if rest > 0 {
        words.push(ONES[rest]);
    }
    Some(words.join(" "))
}

/// Every phonetic edit that applies to a Latin word: (byte offset, bytes
/// replaced, replacement).
fn latin_edits(word: &str) -> Vec<(usize, usize, String)> {
    let mut edits = Vec::new();
    let bytes = word.as_bytes();
    for (a, b) in LATIN_SWAPS {
        for (from, to) in [(a, b), (b, a)] {
            for (at, _) in word.match_indices(from) {
                let before = word[..at].chars().next_back();
                let after = word[at + from.len()..].chars().next();
                // "a" → "aa" only where it is not part of "aa" already; "i"
                // and "u" lengthen as syllables, not in "ai", "au".
                let letter = from.chars().next();
                let lengthens = from.len() == 1 && *to == from.repeat(2);
                if lengthens && (before == letter || after == letter) {
                    continue;
                }
                if lengthens && *from != "a" && before.is_some_and(|c| "aeiou".contains(c)) {
                    continue;
                }
                // "ch" and "kh" are sounds of their own.
                if (*from == "c" || *from == "k") && after == Some('h') {
                    continue;
                }
                edits.push((at, from.len(), to.to_string()));
            }
        }
    }
    let vowel = |c: u8| b"aeiou".contains(&c);
    for i in 0..bytes.len() {
        let c = bytes[i];
        if !c.is_ascii_alphabetic() || vowel(c) {
            continue;
        }
        // A doubled consonant written single ("missal" → "misal"), or a
        // single one between vowels doubled ("misal" → "missal").
        if bytes.get(i + 1) == Some(&c) {
            edits.push((i, 2, (c as char).to_string()));
        } else if i > 0 && vowel(bytes[i - 1]) && bytes.get(i + 1).is_some_and(|n| vowel(*n)) && bytes[i - 1] != c {
            edits.push((i, 1, format!("{0}{0}", c as char)));
        }
    }
    // A final vowel or h not heard ("misala" → "misal", "chah" → "cha").
    if bytes.len() > 2 && matches!(bytes[bytes.len() - 1], b'a' | b'e' | b'i' | b'o' | b'u' | b'h') {
        edits.push((bytes.len() - 1, 1, String::new()));
    }
    edits.retain(|(at, len, to)| word[*at..at + len] != *to);
    edits
}

/// Every phonetic edit that applies to a Devanagari word.
fn devanagari_edits(word: &str) -> Vec<(usize, usize, String)> {
    let mut edits = Vec::new();
    for (from, to) in DEVANAGARI_SWAPS {
        for (at, _) in word.match_indices(from) {
            edits.push((at, from.len(), to.to_string()));
        }
    }
    // The anusvara dropped, or heard after a vowel sign before a consonant
    // ("पाच" → "पांच").
    let chars: Vec<(usize, char)> = word.char_indices().collect();
    for (k, &(at, c)) in chars.iter().enumerate() {
        if c == ANUSVARA {
            edits.push((at, c.len_utf8(), String::new()));
        } else if is_vowel_sign(c) && chars.get(k + 1).is_some_and(|(_, n)| is_consonant(*n)) {
            let end = at + c.len_utf8();
            edits.push((end, 0, ANUSVARA.to_string()));
        }
    }
    edits
}

/// The word cut in two where an ASR hears a pause ("samosa" → "sam osa"):
/// between letters, never before a vowel sign or after a virama.
fn split(word: &str, rng: &mut SplitMix64) -> Option<Rewrite> {
    let chars: Vec<(usize, char)> = word.char_indices().collect();
    let cuts: Vec<usize> = (2..chars.len().saturating_sub(1))
        .filter(|&k| {
            let (prev, next) = (chars[k - 1].1, chars[k].1);
            !is_combining(next) && prev != '\u{094D}' && prev.is_alphabetic() == next.is_alphabetic()
                || prev.is_ascii_digit() != next.is_ascii_digit()
        })
        .map(|k| chars[k].0)
        .collect();
    if cuts.is_empty() {
        return None;
    }
    let at = cuts[rng.below(cuts.len())];
    Some(Err((word[..at].to_string(), word[at..].to_string())))
}

fn is_devanagari(c: char) -> bool {
    ('\u{0900}'..='\u{097F}').contains(&c)
}

fn is_consonant(c: char) -> bool {
    ('\u{0915}'..='\u{0939}').contains(&c) || ('\u{0958}'..='\u{095F}').contains(&c) || c == 'ळ'
}

fn is_vowel_sign(c: char) -> bool {
    ('\u{093E}'..='\u{094C}').contains(&c)
}

/// Marks that belong to the letter before them: vowel signs, virama,
/// nukta, anusvara, chandrabindu, visarga.
fn is_combining(c: char) -> bool {
    ('\u{0900}'..='\u{0903}').contains(&c) || ('\u{093A}'..='\u{094F}').contains(&c)
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// splitmix64: small, fast and good enough to pick errors.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "do plate misal paav aur ek cutting chai bina pyaaz \
        दोन मिसळ पाव आणि एक कटिंग चहा पाहिजे \
        dedh kilo kaju katli aur paav kilo shrikhand \
        तीन वडा पाव और दो समोसा चाहिए \
        two masala dosa and one filter coffee please";

    #[test]
    fn the_same_input_gives_the_same_output() {
        let noise = AsrNoise::new(0.3, 7);
        assert_eq!(noise.corrupt(TEXT, 3), noise.corrupt(TEXT, 3));
        assert_ne!(noise.corrupt(TEXT, 3), noise.corrupt(TEXT, 4), "the salt changes the errors");
        assert_ne!(noise.corrupt(TEXT, 3), AsrNoise::new(0.3, 8).corrupt(TEXT, 3), "so does the seed");
    }

    #[test]
    fn rate_zero_is_the_identity() {
        let noise = AsrNoise::new(0.0, 42);
        for salt in 0..20 {
            assert_eq!(noise.corrupt(TEXT, salt), TEXT.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }

    #[test]
    fn rate_one_tenth_hits_about_a_tenth_of_the_words_and_changes_each() {
        let noise = AsrNoise::new(0.1, 11);
        let (mut words, mut hit, mut unchanged) = (0, 0, 0);
        for salt in 0..200 {
            let (out, n) = noise.corrupt_counted(TEXT, salt);
            words += TEXT.split_whitespace().count();
            hit += n;
            if n > 0 && out == TEXT.split_whitespace().collect::<Vec<_>>().join(" ") {
                unchanged += 1;
            }
        }
        let share = hit as f64 / words as f64;
        assert!((0.085..0.115).contains(&share), "{share} of words hit");
        assert_eq!(unchanged, 0, "a hit always changes the text");
    }

    #[test]
    fn substitutions_are_the_ones_asrs_make() {
        let mut rng = SplitMix64::new(1);
        let mut seen = |word: &str| -> std::collections::HashSet<String> {
            (0..400).filter_map(|_| substitute(word, &mut rng)?.ok()).collect()
        };
        let paav = seen("paav");
        assert!(paav.contains("pav") && paav.contains("paaw"), "{paav:?}");
        let missal = seen("missal");
        assert!(missal.contains("misal") && missal.contains("mishsal"), "{missal:?}");
        let misal = seen("मिसळ");
        assert!(misal.contains("मिसल") && misal.contains("मीसळ"), "{misal:?}");
        assert!(seen("पांच").contains("पाच"));
        assert!(!seen("ek").contains("ek"));
        assert_eq!(substitute("2", &mut rng), Some(Ok("two".into())));
        assert_eq!(substitute("250", &mut rng), Some(Err(("two".into(), "hundred fifty".into()))));
        assert_eq!(substitute("x", &mut rng), None, "nothing to confuse");
    }

    #[test]
    fn splits_keep_devanagari_letters_whole() {
        let mut rng = SplitMix64::new(5);
        for _ in 0..100 {
            let Some(Err((a, b))) = split("मिसळपाव", &mut rng) else { panic!("long enough to split") };
            assert!(!b.starts_with(is_combining), "{a} {b}");
            assert_eq!(format!("{a}{b}"), "मिसळपाव");
        }
        assert_eq!(split("ek", &mut rng), None);
    }
}
