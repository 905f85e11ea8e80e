//! Word error rate, for the audio evaluation bench: the word-level edit
//! distance between what a caller said and what a recogniser heard, over
//! the words said.

/// Words as compared: lower case, punctuation (Latin and Devanagari
/// danda) dropped, Devanagari's nukta and chandrabindu folded into their
/// plain letters, since recognisers differ on them and the dialog reads
/// both alike.
pub fn words(text: &str) -> Vec<String> {
    text.chars()
        .filter_map(|c| match c {
            '\u{093C}' => None,             // nukta
            '\u{0901}' => Some('\u{0902}'), // chandrabindu -> anusvara
            c if c.is_alphanumeric() || ('\u{0900}'..='\u{097F}').contains(&c) && c != '।' && c != '॥' => Some(c),
            _ => Some(' '),
        })
        .collect::<String>()
        .to_lowercase()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Substitutions, insertions and deletions turning `reference` into
/// `hypothesis`, and the reference's word count.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let (r, h) = (words(reference), words(hypothesis));
    let mut previous: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut current = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let substitution = previous[j] + usize::from(rw != hw);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    (previous[h.len()], r.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_count_substitutions_insertions_and_deletions_over_normalised_words() {
        assert_eq!(word_errors("Do misal pav, aur ek chai.", "do misal paav aur ek chai"), (1, 6));
        assert_eq!(word_errors("दो मिसल पाव।", "दो मिसल पाव"), (0, 3));
        assert_eq!(word_errors("ज़रा", "जरा"), (0, 1));
        assert_eq!(word_errors("one two", ""), (2, 2));
        assert_eq!(word_errors("", "noise"), (1, 0));
        assert_eq!(word_errors("a b c", "a x b c"), (1, 3));
    }
}
