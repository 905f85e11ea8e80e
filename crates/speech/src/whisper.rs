//! The embedded offline recogniser: multilingual Whisper run by
//! whisper.cpp (through `whisper-rs`, when the crate is built with the
//! `whisper` feature), from the ggml file `mangwale-exotel models fetch`
//! converts into `MODELS_DIR/whisper-<model>/`.
//!
//! One recognition:
//! - the caller's 8 kHz PCM is resampled to 16 kHz and scaled to f32
//!   ([`whisper_input`]); whisper.cpp computes the log-mel features;
//! - the encoder reads only the utterance, not Whisper's whole 30 s window:
//!   its context is sized to the audio ([`audio_ctx`]: 50 positions a
//!   second, a margin, a multiple of 64, at least 256), which is what makes
//!   a turn's recognition take well under a second;
//! - the store's catalog biases the decoding through the *previous-text*
//!   prompt, never through the answer's prefix, written as a sample order
//!   in the caller's language ("ek Misal Pav aur do Cutting Chai aur …",
//!   [`sample_order`]): the model is told which words are likely and what
//!   an order sounds like, not what was said; it is capped to
//!   [`WhisperConfig::prompt_budget`] tokens, whole pieces only;
//! - the language is the hinted one (Hinglish is decoded as Hindi) or, with
//!   no hint, the likeliest of Hindi, Marathi and English;
//! - greedy decoding at temperature 0 without fallback, no timestamps, one
//!   segment, no carried context, blank and non-speech tokens suppressed, at
//!   most `WHISPER_MAX_TOKENS` tokens;
//! - no speech (Whisper's no-speech probability high and the text
//!   unlikely), or an answer that only recites the prompt, is an empty
//!   transcript; a word or phrase looping three times is cut to one
//!   ([`cut_repetition`]), since a prompted Whisper can loop.
//!
//! The model is loaded once and shared; each recognition borrows one of
//! [`WhisperConfig::parallel_recognitions`] decoder states and runs on
//! tokio's blocking pool, so that calls queue instead of oversubscribing
//! the cores.

use std::path::{Path, PathBuf};

use mangwale_voice::catalog::Lang;
use mangwale_voice::speech::Pcm16;

use crate::audio::resample;
use crate::hints::{Script, closed_words};
use crate::mel;

/// Where the model lives and how it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhisperConfig {
    /// `MODELS_DIR` (default `./models`).
    pub models_dir: PathBuf,
    /// `WHISPER_MODEL`: "base" (default) or "small".
    pub model: String,
    /// `WHISPER_THREADS`: CPU threads per recognition.
    pub threads: usize,
    /// `WHISPER_MAX_TOKENS`: the most tokens one utterance may decode to
    /// (a prompted Whisper can loop).
    pub max_tokens: usize,
    /// The smallest encoder context (in 20 ms positions) an utterance is
    /// read with ([`MIN_AUDIO_CTX`]; the speech bench varies it).
    pub min_audio_ctx: usize,
}

/// Whisper's text context: prompt, start tokens and answer share it.
pub const TEXT_CONTEXT: usize = 448;
/// The most previous-text tokens whisper.cpp passes (half the context,
/// less the `<|startofprev|>` token).
pub const MAX_PROMPT_TOKENS: usize = TEXT_CONTEXT / 2 - 1;
/// `<|startoftranscript|>`, the language, `<|transcribe|>`,
/// `<|notimestamps|>`, and `<|startofprev|>`.
const CONTROL_TOKENS: usize = 5;
/// Encoder positions a second of audio takes (100 mel frames, halved by
/// the second convolution).
pub const AUDIO_CTX_PER_SECOND: usize = 50;
/// Positions read past the utterance's end (about 1.3 s of silence).
pub const AUDIO_CTX_MARGIN: usize = 64;
/// The smallest encoder context a recognition uses: shorter windows
/// start to cost accuracy on the shortest turns ("haan", "do").
pub const MIN_AUDIO_CTX: usize = 256;
/// Whisper's full window, 30 s.
pub const FULL_AUDIO_CTX: usize = 1500;

/// The ggml model file the engine loads (written by `models fetch`).
pub const GGML_FILE: &str = "ggml-model.bin";

impl WhisperConfig {
    /// `base` with the documented defaults, in `models_dir`.
    pub fn new(models_dir: impl Into<PathBuf>) -> WhisperConfig {
        WhisperConfig {
            models_dir: models_dir.into(),
            model: "base".into(),
            threads: 2,
            max_tokens: 96,
            min_audio_ctx: MIN_AUDIO_CTX,
        }
    }

    /// The folder holding this model's files.
    pub fn model_dir(&self) -> PathBuf {
        self.models_dir.join(format!("whisper-{}", self.model))
    }

    /// The answer's token cap: `WHISPER_MAX_TOKENS`, at least 1, and leaving
    /// room in the context for the control tokens.
    pub fn answer_tokens(&self) -> usize {
        self.max_tokens.clamp(1, TEXT_CONTEXT - CONTROL_TOKENS)
    }

    /// How many prompt tokens fit beside the answer.
    pub fn prompt_budget(&self) -> usize {
        MAX_PROMPT_TOKENS.min(TEXT_CONTEXT - CONTROL_TOKENS - self.answer_tokens())
    }

    /// Recognitions that may run at once: the cores divided by the threads
    /// each one uses, at least one.
    pub fn parallel_recognitions(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / self.threads.max(1)).max(1)
    }
}

/// Whether `models fetch` has put the model in place: the ggml file and
/// the manifest written after it (a half-written folder is not "present";
/// a folder fetched before the engine moved to whisper.cpp holds only the
/// CTranslate2 files until `models fetch` converts them).
pub fn models_present(config: &WhisperConfig) -> bool {
    let dir = config.model_dir();
    [GGML_FILE, crate::models::MANIFEST].iter().all(|f| Path::new(&dir).join(f).is_file())
}

/// The caller's audio as Whisper takes it: 16 kHz, f32 in [-1, 1].
pub fn whisper_input(audio: &Pcm16) -> Vec<f32> {
    let samples = resample(&audio.samples, audio.sample_rate.hz(), mel::SAMPLE_RATE);
    samples.into_iter().map(|s| f32::from(s) / 32_768.0).collect()
}

/// The encoder context for `samples` of 16 kHz audio: 50 positions a
/// second and [`AUDIO_CTX_MARGIN`], rounded up to a multiple of 64, at
/// least `floor`, at most the model's `full` window.
pub fn audio_ctx(samples: usize, floor: usize, full: usize) -> usize {
    let positions = (samples * AUDIO_CTX_PER_SECOND).div_ceil(mel::SAMPLE_RATE as usize) + AUDIO_CTX_MARGIN;
    positions.next_multiple_of(64).max(floor).min(full)
}

/// The language Whisper decodes in for a hinted one: Hinglish is Hindi
/// spoken with English words, and Whisper has no code for it.
pub fn whisper_language(lang: Lang) -> &'static str {
    match lang {
        Lang::Hi | Lang::HiEn => "hi",
        Lang::Mr => "mr",
        Lang::En => "en",
    }
}

/// "and" between the lines of a sample order, in the phrases' script.
fn connector(lang: Lang, devanagari: bool) -> &'static str {
    match (lang, devanagari) {
        (Lang::Mr, true) => "आणि",
        (Lang::Mr, false) => "ani",
        (Lang::Hi, true) => "और",
        (Lang::En, _) => "and",
        (Lang::Hi | Lang::HiEn, _) => "aur",
    }
}

fn is_devanagari(text: &str) -> bool {
    text.chars().any(|c| ('\u{0900}'..='\u{097F}').contains(&c))
}

/// The catalog prompt for `phrases` (a [`crate::hints`] list: number
/// words, yes and no, then names) written as a sample order: the number
/// words one to ten in turn before each name, joined by the language's
/// "and" — `[" ek Misal Pav", " aur do Cutting Chai", …]`, each piece to be
/// kept or dropped whole. Names come once each (case aside) and in the
/// order given; a name whose words are inside an earlier one (the alias
/// "misal" after "Misal Pav") and the closed words are left out. The number words are
/// Devanagari when the phrases' are, Latin otherwise. Empty without names.
pub fn sample_order(lang: Lang, phrases: &[String]) -> Vec<String> {
    let clean = |p: &String| p.split_whitespace().collect::<Vec<_>>().join(" ");
    let key = |p: &str| p.to_lowercase();
    let closed: std::collections::HashSet<String> = [Script::Latin, Script::Native]
        .iter()
        .flat_map(|&script| closed_words(lang, script).iter().map(|w| key(w)))
        .collect();
    let numbers_of = |script| closed_words(lang, script)[..10].iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let (native, latin) = (numbers_of(Script::Native), numbers_of(Script::Latin));
    let count =
        |numbers: &[String]| phrases.iter().filter(|p| numbers.iter().any(|n| key(n) == key(&clean(p)))).count();
    // Devanagari number words when the hints are written in Devanagari.
    let hinted_native = native.iter().any(|n| is_devanagari(n)) && count(&native) > count(&latin);
    let numbers = if hinted_native { native } else { latin };
    let and = connector(lang, hinted_native);
    let names = phrases.iter().map(clean).filter(|p| !p.is_empty() && !closed.contains(&key(p)));
    let mut kept: Vec<String> = Vec::new();
    let mut pieces = Vec::new();
    for name in names {
        // A name already in the prompt, or an alias inside one ("misal"
        // after "Misal Pav"), adds nothing but length.
        let words_of = |n: &str| format!(" {} ", words(n).join(" "));
        if kept.iter().any(|k| words_of(k).contains(&words_of(&name))) {
            continue;
        }
        kept.push(name.clone());
        let number = &numbers[pieces.len() % numbers.len()];
        // Whisper's prompts start with a space, as a following sentence
        // would; the byte-level tokenizer splits at spaces, so encoding
        // piece by piece gives the tokens of the joined text.
        pieces.push(if pieces.is_empty() { format!(" {number} {name}") } else { format!(" {and} {number} {name}") });
    }
    pieces
}

/// The prompt's tokens: whole `pieces` in order, for as long as they fit
/// in `budget` tokens. `encode` is the model's tokenizer; a piece it
/// refuses (`None`) is left out.
pub fn prompt_within<T>(pieces: &[String], budget: usize, encode: impl Fn(&str) -> Option<Vec<T>>) -> Vec<T> {
    let mut tokens = Vec::new();
    for piece in pieces {
        let Some(piece_tokens) = encode(piece) else { continue };
        if tokens.len() + piece_tokens.len() > budget {
            break;
        }
        tokens.extend(piece_tokens);
    }
    tokens
}

/// Lowercase words, letters and digits only.
fn words(text: &str) -> Vec<String> {
    text.chars()
        .map(|c| if c.is_alphanumeric() || c.is_whitespace() || is_mark(c) { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .map(str::to_lowercase)
        .collect()
}

/// Devanagari vowel signs and viramas are marks, not letters, but part of
/// the word.
fn is_mark(c: char) -> bool {
    ('\u{0900}'..='\u{0903}').contains(&c)
        || ('\u{093A}'..='\u{094F}').contains(&c)
        || ('\u{0951}'..='\u{0957}').contains(&c)
        || ('\u{0962}'..='\u{0963}').contains(&c)
}

/// Whether an answer only recites the prompt: three or more
/// comma-separated phrases, every one of them a hint phrase, or three
/// consecutive lines of the sample-order `prompt`, word for word. Whisper
/// does this on audio it cannot read, and such a "transcript" would order
/// the menu.
pub fn recites_prompt(text: &str, phrases: &[String], prompt: &[String]) -> bool {
    let key = |s: &str| words(s).join(" ");
    let known: std::collections::HashSet<String> = phrases.iter().map(|p| key(p)).collect();
    let parts: Vec<String> = text.split([',', '،', '।']).map(key).filter(|p| !p.is_empty()).collect();
    if parts.len() >= 3 && parts.iter().all(|p| known.contains(p)) {
        return true;
    }
    let said = format!(" {} ", key(text));
    let lines: Vec<String> = prompt.iter().map(|piece| key(piece)).collect();
    lines.windows(3).any(|three| {
        let run = three.join(" ");
        // A run recited from the middle of the prompt may start without
        // its connector.
        let bare = CONNECTORS.iter().find_map(|c| run.strip_prefix(&format!("{c} "))).unwrap_or(&run);
        said.contains(&format!(" {bare} "))
    })
}

/// Every [`connector`].
const CONNECTORS: [&str; 5] = ["aur", "and", "ani", "और", "आणि"];

/// The answer with a loop cut: where a word or a phrase comes three times
/// in a row, it is kept once and the rest of the answer (the loop, and what
/// a looping decoder writes after it) dropped.
pub fn cut_repetition(text: &str) -> String {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let key = |w: &str| words(w).join(" ");
    for start in 0..tokens.len() {
        for n in 1.. {
            if start + 3 * n > tokens.len() {
                break;
            }
            let gram = |k: usize| tokens[start + k * n..start + (k + 1) * n].iter().map(|w| key(w)).collect::<Vec<_>>();
            let first = gram(0);
            if first.iter().all(|w| !w.is_empty()) && gram(1) == first && gram(2) == first {
                return tokens[..start + n].join(" ");
            }
        }
    }
    tokens.join(" ")
}

#[cfg(feature = "whisper")]
mod engine;
#[cfg(feature = "whisper")]
pub use engine::Whisper;

#[cfg(not(feature = "whisper"))]
mod absent {
    use async_trait::async_trait;
    use mangwale_voice::speech::{Pcm16, RecognitionHints, Recognizer, SpeechError, Transcript};

    use super::WhisperConfig;

    /// This build has no Whisper engine (cargo feature `whisper` off):
    /// loading says so, and the service runs on its other backends.
    pub struct Whisper {
        never: std::convert::Infallible,
    }

    impl Whisper {
        pub fn load(config: &WhisperConfig) -> Result<Whisper, SpeechError> {
            Err(SpeechError::Unavailable(format!(
                "this build has no embedded Whisper (cargo feature `whisper`); model {}",
                config.model_dir().display()
            )))
        }
    }

    #[async_trait]
    impl Recognizer for Whisper {
        fn name(&self) -> &str {
            match self.never {}
        }

        async fn recognize(&self, _: &Pcm16, _: &RecognitionHints) -> Result<Transcript, SpeechError> {
            match self.never {}
        }
    }
}
#[cfg(not(feature = "whisper"))]
pub use absent::Whisper;

/// What one recognition is asked, moved onto the blocking pool.
#[cfg(feature = "whisper")]
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub audio: Vec<f32>,
    pub language: Option<Lang>,
    pub phrases: Vec<String>,
}

#[cfg(feature = "whisper")]
impl Request {
    pub(crate) fn new(audio: &Pcm16, hints: &mangwale_voice::speech::RecognitionHints) -> Request {
        Request { audio: whisper_input(audio), language: hints.language, phrases: hints.phrases.clone() }
    }
}

#[cfg(test)]
mod tests {
    use mangwale_voice::speech::SampleRate;

    use super::*;

    fn chars(text: &str) -> Option<Vec<char>> {
        Some(text.chars().collect())
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_prompt_is_a_sample_order_of_the_names_with_the_number_words_in_turn() {
        let hindi = strings(&[
            "ek",
            "do",
            "teen",
            "char",
            "paanch",
            "chhe",
            "saat",
            "aath",
            "nau",
            "das",
            "haan",
            "nahi",
            "Misal Pav",
            "  vada   pav ",
            "misal pav",
            "",
            "Cutting Chai",
        ]);
        assert_eq!(
            sample_order(Lang::Hi, &hindi).concat(),
            " ek Misal Pav aur do vada pav aur teen Cutting Chai",
            "each name once, in order; the closed words are not names"
        );
        let aliases = strings(&["ek", "Misal Pav", "Cutting Chai", "misal", "chai", "Pav Bhaji", "Full plate"]);
        assert_eq!(
            sample_order(Lang::HiEn, &aliases).concat(),
            " ek Misal Pav aur do Cutting Chai aur teen Pav Bhaji aur char Full plate",
            "an alias inside a name already there is left out"
        );
        let marathi = strings(&["ek", "don", "teen", "Misal Pav", "Kokum"]);
        assert_eq!(sample_order(Lang::Mr, &marathi), [" ek Misal Pav", " ani don Kokum"]);
        let devanagari = strings(&["एक", "दोन", "मिसळ पाव", "चहा"]);
        assert_eq!(sample_order(Lang::Mr, &devanagari).concat(), " एक मिसळ पाव आणि दोन चहा");
        let english = strings(&["one", "two", "yes", "no", "Masala Dosa", "Filter Coffee"]);
        assert_eq!(sample_order(Lang::En, &english).concat(), " one Masala Dosa and two Filter Coffee");
        // Past ten names the numbers start again.
        let many: Vec<String> = (0..12).map(|i| format!("item {i}")).collect();
        assert_eq!(sample_order(Lang::HiEn, &many)[10], " aur ek item 10");
        assert!(sample_order(Lang::Hi, &strings(&["ek", "do", "haan"])).is_empty());
    }

    #[test]
    fn the_prompt_keeps_whole_pieces_within_the_budget() {
        let pieces = strings(&[" ek Misal Pav", " aur do Cutting Chai", " aur teen Vada Pav"]);
        let all: String = prompt_within(&pieces, 100, chars).into_iter().collect();
        assert_eq!(all, " ek Misal Pav aur do Cutting Chai aur teen Vada Pav");
        // 13 + 20 characters: a budget of 40 takes two pieces, never a
        // part of the third.
        let two: String = prompt_within(&pieces, 40, chars).into_iter().collect();
        assert_eq!(two, " ek Misal Pav aur do Cutting Chai");
        assert!(prompt_within(&pieces, 5, chars).is_empty());
        // A piece the tokenizer refuses is left out, the rest kept.
        let refusing = |t: &str| if t.contains("Cutting") { None } else { chars(t) };
        let kept: String = prompt_within(&pieces, 100, refusing).into_iter().collect();
        assert_eq!(kept, " ek Misal Pav aur teen Vada Pav");
    }

    #[test]
    fn the_encoder_reads_the_utterance_not_the_whole_window() {
        let second = 16_000;
        // 3.5 s: 175 positions and the margin, 239, rounded to 256.
        assert_eq!(audio_ctx(7 * second / 2, MIN_AUDIO_CTX, FULL_AUDIO_CTX), 256);
        // Short turns never go below the floor.
        assert_eq!(audio_ctx(second / 2, MIN_AUDIO_CTX, FULL_AUDIO_CTX), 256);
        assert_eq!(audio_ctx(second / 2, 0, FULL_AUDIO_CTX), 128);
        // 8 s: 400 + 64 = 464, rounded to 512.
        assert_eq!(audio_ctx(8 * second, MIN_AUDIO_CTX, FULL_AUDIO_CTX), 512);
        assert_eq!(audio_ctx(8 * second, MIN_AUDIO_CTX, FULL_AUDIO_CTX) % 64, 0);
        // 30 s is the whole window.
        assert_eq!(audio_ctx(30 * second, MIN_AUDIO_CTX, FULL_AUDIO_CTX), FULL_AUDIO_CTX);
    }

    #[test]
    fn the_token_cap_bounds_the_answer_and_leaves_the_prompt_what_fits() {
        let mut config = WhisperConfig::new("/nowhere");
        assert_eq!(config.answer_tokens(), 96);
        assert_eq!(config.prompt_budget(), MAX_PROMPT_TOKENS);
        config.max_tokens = 300;
        assert_eq!(config.answer_tokens(), 300);
        assert_eq!(config.prompt_budget(), TEXT_CONTEXT - CONTROL_TOKENS - 300);
        config.max_tokens = 10_000;
        assert_eq!(config.answer_tokens(), TEXT_CONTEXT - CONTROL_TOKENS);
        assert_eq!(config.prompt_budget(), 0);
        config.max_tokens = 0;
        assert_eq!(config.answer_tokens(), 1);
        config.threads = 64;
        assert_eq!(config.parallel_recognitions(), 1);
        assert_eq!(whisper_language(Lang::HiEn), "hi");
        assert_eq!(whisper_language(Lang::Mr), "mr");
    }

    #[test]
    fn phone_audio_reaches_whisper_at_16_khz_in_unit_range() {
        let tone: Vec<i16> = (0..800).map(|i| if i % 2 == 0 { i16::MAX } else { i16::MIN }).collect();
        let input = whisper_input(&Pcm16 { sample_rate: SampleRate::Hz8000, samples: tone });
        assert_eq!(input.len(), 1600);
        assert!(input.iter().all(|s| (-1.0..=1.0).contains(s)));
        let wide = whisper_input(&Pcm16 { sample_rate: SampleRate::Hz16000, samples: vec![16_384; 320] });
        assert_eq!(wide, vec![0.5; 320]);
    }

    #[test]
    fn an_answer_reciting_the_prompt_is_recognised_as_such() {
        let phrases = strings(&["ek", "do", "teen", "Misal Pav", "Vada Pav", "Cutting Chai", "एक", "दो"]);
        let prompt = sample_order(Lang::Hi, &phrases);
        assert!(recites_prompt("Misal Pav, Vada Pav, Cutting Chai.", &phrases, &prompt));
        assert!(recites_prompt("एक, दो, misal pav", &phrases, &prompt));
        assert!(!recites_prompt("do misal pav aur ek cutting chai", &phrases, &prompt));
        assert!(!recites_prompt("Misal Pav, Vada Pav", &phrases, &prompt));
        assert!(!recites_prompt("Misal Pav, two Vada Pav, Cutting Chai", &phrases, &prompt));
        // The sample order read back, whole or from its middle.
        assert!(recites_prompt("Ek Misal Pav aur do Vada Pav aur teen Cutting Chai.", &phrases, &prompt));
        let longer = sample_order(Lang::Hi, &strings(&["A1", "B2", "C3", "D4"]));
        assert!(recites_prompt("do B2 aur teen C3 aur char D4", &phrases, &longer));
        // Two lines of it are an order like any other.
        assert!(!recites_prompt("ek Misal Pav aur do Vada Pav", &phrases, &prompt));
    }

    #[test]
    fn a_looping_answer_is_cut_to_its_first_round() {
        assert_eq!(cut_repetition("वडा वडा वडा वडा"), "वडा");
        assert_eq!(cut_repetition("do misal pav misal pav misal pav misal"), "do misal pav");
        assert_eq!(cut_repetition("ek chai, ek chai, ek chai, ek chai"), "ek chai,");
        let long = "1kg soodel aur do kiro aata ".repeat(9);
        assert_eq!(cut_repetition(&long), "1kg soodel aur do kiro aata");
        // Twice is not a loop ("do do" can be said).
        assert_eq!(cut_repetition("ek  chai aur ek chai"), "ek chai aur ek chai");
        assert_eq!(cut_repetition("haan haan"), "haan haan");
        assert_eq!(cut_repetition(""), "");
    }

    #[test]
    fn models_are_present_only_once_the_ggml_file_and_the_manifest_are() {
        let dir = tempfile::tempdir().unwrap();
        let config = WhisperConfig::new(dir.path());
        assert!(!models_present(&config));
        std::fs::create_dir_all(config.model_dir()).unwrap();
        std::fs::write(config.model_dir().join(crate::models::MANIFEST), b"{}").unwrap();
        std::fs::write(config.model_dir().join("model.bin"), b"x").unwrap();
        assert!(!models_present(&config), "a CTranslate2 folder not yet converted");
        std::fs::write(config.model_dir().join(GGML_FILE), b"x").unwrap();
        assert!(models_present(&config));
        let small = WhisperConfig { model: "small".into(), ..config };
        assert!(!models_present(&small));
    }
}
