//! The simulated caller's voice: what a scripted caller says, as audio.
//!
//! [`CallerVoice::speak`] is the one place that turns a sentence into the
//! caller's audio, for every path a caller's voice takes (the Voicebot
//! stream, a recording served to the record path). It synthesises the
//! sentence with espeak-ng (or the deterministic tones of the simulator's
//! original stand-in), converts it to the line's rate, makes the rendition
//! unique and registers it in the [`TranscriptBook`], so that the simulated
//! ASR servers answer with exactly what was said.
//!
//! Why unique: the book finds utterances by exact runs of samples, and
//! espeak-ng renders the same sentence to the same samples every time. A
//! caller who says "haan" twice, or two callers who say the same thing at
//! once, would otherwise be found twice in one cut. Every rendition gets a
//! ±1 LSB dither of its own (inaudible, below any recogniser's notice), as
//! no person ever says a sentence twice the same way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mangwale_speech::audio::resample;
use mangwale_speech::espeak::Espeak;
use mangwale_speech::translit;
use mangwale_voice::catalog::Lang;
use mangwale_voice::speech::SpeechError;
use serde::Serialize;

use super::TranscriptBook;

/// How the simulated caller sounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Voice {
    /// One triangle-wave tone per character, `per_char` long: no external
    /// program, the same bytes on every platform (the simulator's tests).
    Tones { per_char: Duration },
    /// espeak-ng's command line: real speech a recogniser can hear
    /// (sandbox mode, the end-to-end tests).
    Espeak { program: PathBuf, words_per_minute: u32 },
}

impl Voice {
    /// espeak-ng on the PATH, at a caller's unhurried 150 words a minute.
    pub fn espeak() -> Voice {
        let defaults = Espeak::default();
        Voice::Espeak { program: defaults.program, words_per_minute: defaults.words_per_minute }
    }
}

/// The espeak-ng voice for a caller's language tag: Hindi and Hinglish by
/// the Hindi voice, Marathi by the Marathi voice, anything else English.
pub fn espeak_voice(language: &str) -> &'static str {
    match Lang::from_code(language.trim()) {
        Some(lang) => Espeak::voice(lang),
        None => "en",
    }
}

/// The text espeak-ng is given for a caller's words: Latin Hinglish,
/// Hindi or Marathi words rewritten in Devanagari (espeak's Indic voices
/// read Latin letters with English sounds), as an Indian caller would say
/// them; English as written. The book still holds the words as scripted.
fn for_voice(text: &str, language: &str) -> String {
    match Lang::from_code(language.trim()) {
        Some(lang) => translit::for_speech(text, lang).into_owned(),
        None => text.to_string(),
    }
}

/// One sentence as the caller says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spoken {
    #[serde(skip)]
    pub samples: Vec<i16>,
    pub sample_rate: u32,
    /// What produced it: `espeak-ng en`, `tones`.
    pub voice: String,
    /// Whether the book holds it (audio too quiet or short is not registered).
    pub registered: bool,
}

impl Spoken {
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.samples.len() as u64 * 1_000_000 / u64::from(self.sample_rate.max(1)))
    }
}

/// espeak-ng renders by (voice, text): espeak's rate and its samples.
type Renders = HashMap<(String, String), (u32, Arc<Vec<i16>>)>;

/// Renditions made so far, process-wide, so that no two are alike.
static RENDITIONS: AtomicU64 = AtomicU64::new(0);

/// The pace of the tones a caller falls back on when espeak-ng fails.
const FALLBACK_PER_CHAR: Duration = Duration::from_millis(60);

/// The caller's voice and the book it registers what it says in; cheap to
/// clone (clones share the book and the render cache).
#[derive(Debug, Clone)]
pub struct CallerVoice {
    voice: Voice,
    book: TranscriptBook,
    /// espeak-ng renders by (voice, text), at espeak's own rate.
    renders: Arc<Mutex<Renders>>,
}

impl CallerVoice {
    pub fn new(voice: Voice, book: TranscriptBook) -> CallerVoice {
        CallerVoice { voice, book, renders: Arc::default() }
    }

    pub fn voice(&self) -> &Voice {
        &self.voice
    }

    pub fn book(&self) -> &TranscriptBook {
        &self.book
    }

    /// The caller's audio for `text` in `language` ("hi", "mr", "en",
    /// "hi-en"), mono PCM16 at `sample_rate`, registered in the book.
    pub async fn speak(&self, text: &str, language: &str, sample_rate: u32) -> Result<Spoken, SpeechError> {
        let (samples, voice) = match &self.voice {
            Voice::Tones { per_char } => {
                (crate::exotel::audio::synthesize(text, sample_rate, *per_char), "tones".into())
            }
            Voice::Espeak { program, words_per_minute } => {
                let name = espeak_voice(language);
                let said = for_voice(text, language);
                let (rate, rendered) = self.render(program, *words_per_minute, &said, name).await?;
                (resample(&rendered, rate, sample_rate), format!("espeak-ng {name}"))
            }
        };
        let samples = dithered(samples, RENDITIONS.fetch_add(1, Ordering::Relaxed));
        let registered = self.book.register(&samples, sample_rate, text, language);
        Ok(Spoken { samples, sample_rate, voice, registered })
    }

    /// [`CallerVoice::speak`], or the tones stand-in when the voice fails
    /// (espeak-ng missing or broken), with why: a scripted caller always
    /// says something, in a stream or into a recording.
    pub async fn speak_or_tones(&self, text: &str, language: &str, sample_rate: u32) -> (Spoken, Option<String>) {
        match self.speak(text, language, sample_rate).await {
            Ok(spoken) => (spoken, None),
            Err(e) => {
                tracing::warn!(error = %e, "the simulated caller's voice failed; it speaks in tones");
                let spoken = self.speak_tones(text, language, sample_rate, FALLBACK_PER_CHAR);
                (spoken, Some(format!("{e}: spoken as tones instead")))
            }
        }
    }

    /// The tones stand-in for `text`, registered in the book: what the
    /// caller says when espeak-ng cannot speak.
    pub fn speak_tones(&self, text: &str, language: &str, sample_rate: u32, per_char: Duration) -> Spoken {
        let samples = crate::exotel::audio::synthesize(text, sample_rate, per_char);
        let samples = dithered(samples, RENDITIONS.fetch_add(1, Ordering::Relaxed));
        let registered = self.book.register(&samples, sample_rate, text, language);
        Spoken { samples, sample_rate, voice: "tones".into(), registered }
    }

    async fn render(
        &self,
        program: &Path,
        words_per_minute: u32,
        text: &str,
        voice: &str,
    ) -> Result<(u32, Arc<Vec<i16>>), SpeechError> {
        let key = (voice.to_string(), text.to_string());
        if let Some(hit) = self.renders.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(hit.clone());
        }
        let espeak = Espeak { program: program.to_path_buf(), words_per_minute, ..Espeak::default() };
        let (rate, samples) = espeak.render(text, voice).await?;
        if samples.is_empty() {
            return Err(SpeechError::BadResponse(format!("espeak-ng said nothing for {text:?}")));
        }
        let entry = (rate, Arc::new(samples));
        self.renders.lock().unwrap_or_else(|e| e.into_inner()).insert(key, entry.clone());
        Ok(entry)
    }
}

/// `samples` with a ±1 LSB dither seeded by `seed` on every non-silent
/// sample (digital silence stays silence).
fn dithered(mut samples: Vec<i16>, seed: u64) -> Vec<i16> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for s in samples.iter_mut().filter(|s| **s != 0) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let step = (state % 3) as i16 - 1;
        *s = s.saturating_add(step);
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tones() -> CallerVoice {
        CallerVoice::new(Voice::Tones { per_char: Duration::from_millis(60) }, TranscriptBook::new())
    }

    #[tokio::test]
    async fn the_same_sentence_twice_is_two_renditions_each_found_once() {
        let voice = tones();
        let first = voice.speak("haan", "hi-en", 8000).await.unwrap();
        let second = voice.speak("haan", "hi-en", 8000).await.unwrap();
        assert!(first.registered && second.registered);
        assert_ne!(first.samples, second.samples);
        assert_eq!(first.samples.len(), 4 * 480);
        assert_eq!(voice.book().transcribe(&first.samples, 8000), Some(("haan".into(), "hi-en".into())));
        let mut both = first.samples.clone();
        both.extend_from_slice(&second.samples);
        assert_eq!(voice.book().transcribe(&both, 8000).unwrap().0, "haan haan");
    }

    #[test]
    fn languages_pick_espeak_voices() {
        assert_eq!((espeak_voice("hi"), espeak_voice("mr"), espeak_voice("en")), ("hi", "mr", "en"));
        assert_eq!(espeak_voice("hi-en"), "hi", "Latin Hinglish, said in Devanagari");
        assert_eq!(for_voice("do misal pav", "hi-en"), translit::to_devanagari("do misal pav", Lang::HiEn));
        assert_eq!(for_voice("two misal", "en"), "two misal");
    }

    #[tokio::test]
    async fn espeak_speaks_at_the_lines_rate_or_says_why_not() {
        let book = TranscriptBook::new();
        let voice = CallerVoice::new(Voice::espeak(), book.clone());
        match voice.speak("do misal pav", "hi-en", 8000).await {
            Ok(spoken) => {
                assert_eq!((spoken.sample_rate, spoken.voice.as_str()), (8000, "espeak-ng hi"));
                assert!(spoken.duration() > Duration::from_millis(300), "{:?}", spoken.duration());
                assert_eq!(book.transcribe(&spoken.samples, 8000).unwrap().0, "do misal pav");
            }
            // Machines without espeak-ng (it is installed by .ci/run).
            Err(e) => assert!(matches!(e, SpeechError::Unavailable(_)), "{e:?}"),
        }
        let missing = CallerVoice::new(
            Voice::Espeak { program: "/nonexistent/espeak-ng".into(), words_per_minute: 150 },
            TranscriptBook::new(),
        );
        assert!(matches!(missing.speak("haan", "hi", 8000).await, Err(SpeechError::Unavailable(_))));
    }
}
