//! What simulated callers said, found again in the audio a recogniser is
//! sent.
//!
//! The audio a bot hands its recogniser is a stretch of what the caller
//! streamed, byte for byte (PCM is not altered on the way), cut where its
//! voice activity detector heard a turn begin and end. So each registered
//! utterance leaves short "needles" (runs of samples taken at several
//! places inside it), and an utterance is recognised when at least one of
//! its needles occurs exactly in the audio. Matching on samples, not on
//! arrival order, keeps concurrent calls apart.

use std::sync::{Arc, Mutex};

/// Samples per needle: 20 ms at 8 kHz, long enough never to match by chance
/// in speech (silence is never used as a needle).
const NEEDLE: usize = 160;
/// Needles per utterance, spread over its voiced part.
const NEEDLES: usize = 8;
/// A needle must carry sound, not near-silence that any pause would match.
const MIN_NEEDLE_PEAK: i16 = 500;
/// Utterances kept (oldest forgotten first).
const CAPACITY: usize = 4_096;

/// One registered utterance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpokenUtterance {
    pub text: String,
    /// The language tag the caller spoke in ("hi", "mr", "en", "hi-en").
    pub language: String,
    /// Its sample rate.
    pub sample_rate: u32,
    needles: Vec<Vec<i16>>,
}

/// The shared book; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct TranscriptBook {
    entries: Arc<Mutex<Vec<SpokenUtterance>>>,
}

impl TranscriptBook {
    pub fn new() -> TranscriptBook {
        TranscriptBook::default()
    }

    /// Registers what `samples` (mono PCM16 at `sample_rate`) say. Audio
    /// too quiet or too short to carry a needle is not registered (returns
    /// false): nothing could be found again.
    pub fn register(&self, samples: &[i16], sample_rate: u32, text: &str, language: &str) -> bool {
        let needles = needles_of(samples);
        if needles.is_empty() {
            return false;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.remove(0);
        }
        entries.push(SpokenUtterance { text: text.to_string(), language: language.to_string(), sample_rate, needles });
        true
    }

    /// The utterances heard in `samples` (at `sample_rate`), in the order
    /// they occur, joined by a space; `None` when none is found.
    pub fn transcribe(&self, samples: &[i16], sample_rate: u32) -> Option<(String, String)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut found: Vec<(usize, &SpokenUtterance)> = entries
            .iter()
            .filter(|u| u.sample_rate == sample_rate)
            .filter_map(|u| u.needles.iter().filter_map(|n| find(samples, n)).min().map(|at| (at, u)))
            .collect();
        if found.is_empty() {
            return None;
        }
        found.sort_by_key(|(at, _)| *at);
        let text = found.iter().map(|(_, u)| u.text.as_str()).collect::<Vec<_>>().join(" ");
        Some((text, found[0].1.language.clone()))
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Up to [`NEEDLES`] loud runs of [`NEEDLE`] samples, spread evenly.
fn needles_of(samples: &[i16]) -> Vec<Vec<i16>> {
    if samples.len() < NEEDLE {
        return Vec::new();
    }
    let starts = samples.len() - NEEDLE;
    (1..=NEEDLES)
        .map(|i| starts * i / (NEEDLES + 1))
        .map(|at| &samples[at..at + NEEDLE])
        .filter(|run| run.iter().any(|s| s.unsigned_abs() >= MIN_NEEDLE_PEAK as u16))
        .map(<[i16]>::to_vec)
        .collect()
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[i16], needle: &[i16]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `len` samples of noise standing in for speech, different for every
/// `seed` (a linear congruential generator, a quarter of full scale): loud
/// everywhere, so every needle of it is distinct. For tests of the book and
/// of the recognisers that answer from it, where what is said does not
/// need to sound like words.
pub fn voice_like_noise(seed: u32, len: usize) -> Vec<i16> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((state >> 16) as i16) / 4
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_utterance_is_found_inside_a_longer_cut() {
        let book = TranscriptBook::new();
        let first = voice_like_noise(1, 8_000);
        let second = voice_like_noise(2, 6_000);
        assert!(book.register(&first, 8_000, "do misal pav", "hi-en"));
        assert!(book.register(&second, 8_000, "haan", "hi-en"));
        // The bot's cut: silence, the utterance less its edges, silence.
        let mut cut = vec![0i16; 1_600];
        cut.extend_from_slice(&first[400..7_600]);
        cut.extend(vec![0i16; 800]);
        assert_eq!(book.transcribe(&cut, 8_000), Some(("do misal pav".into(), "hi-en".into())));
        // Two utterances in one cut come out in spoken order.
        let mut both = second.clone();
        both.extend_from_slice(&first);
        assert_eq!(book.transcribe(&both, 8_000).unwrap().0, "haan do misal pav");
        // Silence, other audio, or another rate: nothing.
        assert_eq!(book.transcribe(&[0; 4_000], 8_000), None);
        assert_eq!(book.transcribe(&voice_like_noise(3, 8_000), 8_000), None);
        assert_eq!(book.transcribe(&first, 16_000), None);
        assert!(!book.register(&[0; 8_000], 8_000, "silence", "hi"));
    }
}
