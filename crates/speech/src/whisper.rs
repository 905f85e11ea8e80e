//! The embedded offline recogniser: multilingual Whisper in CTranslate2's
//! format (the weights `mangwale-exotel models fetch` puts in
//! `MODELS_DIR/whisper-<model>/`), run through `ct2rs` when the crate is
//! built with the `whisper` feature.
//!
//! One recognition:
//! - the caller's 8 kHz PCM is resampled to 16 kHz and scaled to f32
//!   ([`whisper_input`]), then turned into Whisper's log-mel features
//!   ([`crate::mel`]);
//! - the store's catalog biases the decoding through the *previous-text*
//!   prompt (`<|startofprev|>` + the hint phrases), never through the
//!   answer's prefix: the model is told which words are likely, not what
//!   was said ([`prompt_tokens`], capped to [`WhisperConfig::prompt_budget`]
//!   tokens);
//! - the language is the hinted one (Hinglish is decoded as Hindi) or, with
//!   no hint, the likeliest of Hindi, Marathi and English;
//! - greedy decoding at temperature 0, at most `WHISPER_MAX_TOKENS` tokens,
//!   with a repetition penalty and n-gram blocking, because a prompted
//!   Whisper can loop on the prompt's words;
//! - no speech (Whisper's no-speech probability high and the text unlikely),
//!   or an answer that only recites the prompt, is an empty transcript.
//!
//! The model is loaded once and shared; recognitions run on tokio's blocking
//! pool, at most [`WhisperConfig::parallel_recognitions`] at a time, so that
//! calls queue instead of oversubscribing the cores.

use std::path::{Path, PathBuf};

use mangwale_voice::catalog::Lang;
use mangwale_voice::speech::Pcm16;

use crate::audio::resample;
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
}

/// Whisper's text context: prompt, start tokens and answer share it.
pub const TEXT_CONTEXT: usize = 448;
/// The most previous-text tokens Whisper was trained with (half the
/// context, less the `<|startofprev|>` token).
pub const MAX_PROMPT_TOKENS: usize = TEXT_CONTEXT / 2 - 1;
/// `<|startoftranscript|>`, the language, `<|transcribe|>`,
/// `<|notimestamps|>`, and `<|startofprev|>`.
const CONTROL_TOKENS: usize = 5;

/// The files a model folder holds once `models fetch` has finished (the
/// manifest is written last, so a half-written folder is not "present").
pub const MODEL_FILES: [&str; 4] = ["model.bin", "tokenizer.json", "vocabulary.json", "config.json"];

impl WhisperConfig {
    /// `base` with the documented defaults, in `models_dir`.
    pub fn new(models_dir: impl Into<PathBuf>) -> WhisperConfig {
        WhisperConfig { models_dir: models_dir.into(), model: "base".into(), threads: 2, max_tokens: 96 }
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

/// Whether `models fetch` has put the model in place: its files and the
/// manifest written after them.
pub fn models_present(config: &WhisperConfig) -> bool {
    let dir = config.model_dir();
    MODEL_FILES.iter().chain([&crate::models::MANIFEST]).all(|f| Path::new(&dir).join(f).is_file())
}

/// The caller's audio as Whisper takes it: 16 kHz, f32 in [-1, 1].
pub fn whisper_input(audio: &Pcm16) -> Vec<f32> {
    let samples = resample(&audio.samples, audio.sample_rate.hz(), mel::SAMPLE_RATE);
    samples.into_iter().map(|s| f32::from(s) / 32_768.0).collect()
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

/// The previous-text prompt for `phrases`: the phrases, each once (case
/// aside) and in the order given, comma-separated, as whole phrases for as
/// long as they fit in `budget` tokens. `encode` is the model's tokenizer
/// (text to token strings). Empty when there is nothing to say.
pub fn prompt_tokens(phrases: &[String], budget: usize, encode: impl Fn(&str) -> Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut tokens = Vec::new();
    for phrase in phrases {
        let phrase = phrase.split_whitespace().collect::<Vec<_>>().join(" ");
        if phrase.is_empty() || !seen.insert(phrase.to_lowercase()) {
            continue;
        }
        // Whisper's prompts start with a space, as a following sentence
        // would; the byte-level tokenizer splits at spaces and punctuation,
        // so encoding piece by piece gives the tokens of the joined text.
        let piece = if tokens.is_empty() { format!(" {phrase}") } else { format!(", {phrase}") };
        let piece_tokens = encode(&piece);
        if tokens.len() + piece_tokens.len() > budget {
            break;
        }
        tokens.extend(piece_tokens);
    }
    tokens
}

/// CTranslate2's `max_length` for an answer of at most `answer` tokens
/// after a decoder prompt of `prompt_len` tokens: it caps the answer at
/// `min(max_length / 2, max_length - (prompt_len - 1))` (everything before
/// the last start token counts), so a bare `answer` would leave a long
/// prompt no room at all.
pub fn ct2_max_length(prompt_len: usize, answer: usize) -> usize {
    let before_start = prompt_len.saturating_sub(1);
    (before_start + answer).max(2 * answer)
}

/// The decoder's start: the previous text (when there is one), then the
/// transcription task in `language` without timestamps.
pub fn decoder_prompt(previous: &[String], language: &str) -> Vec<String> {
    let mut prompt = Vec::with_capacity(previous.len() + CONTROL_TOKENS);
    if !previous.is_empty() {
        prompt.push("<|startofprev|>".to_string());
        prompt.extend(previous.iter().cloned());
    }
    prompt.push("<|startoftranscript|>".into());
    prompt.push(format!("<|{language}|>"));
    prompt.push("<|transcribe|>".into());
    prompt.push("<|notimestamps|>".into());
    prompt
}

/// Whether an answer only recites the prompt: three or more
/// comma-separated phrases, every one of them a hint phrase. Whisper does
/// this on audio it cannot read, and such a "transcript" would order the
/// menu.
pub fn recites_prompt(text: &str, phrases: &[String]) -> bool {
    let key = |s: &str| {
        s.chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace())
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let known: std::collections::HashSet<String> = phrases.iter().map(|p| key(p)).collect();
    let parts: Vec<String> = text.split([',', '،', '।']).map(key).filter(|p| !p.is_empty()).collect();
    parts.len() >= 3 && parts.iter().all(|p| known.contains(p))
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

    fn chars(text: &str) -> Vec<String> {
        text.chars().map(String::from).collect()
    }

    #[test]
    fn the_prompt_lists_each_phrase_once_in_order_and_stops_at_a_whole_phrase() {
        let phrases: Vec<String> =
            ["Misal Pav", "  vada   pav ", "misal pav", "", "Cutting Chai"].iter().map(|s| s.to_string()).collect();
        let all = prompt_tokens(&phrases, 100, chars);
        assert_eq!(all.concat(), " Misal Pav, vada pav, Cutting Chai");
        // " Misal Pav" is 10 characters and ", vada pav" 10 more: a budget
        // of 25 takes two phrases, never a piece of the third.
        assert_eq!(prompt_tokens(&phrases, 25, chars).concat(), " Misal Pav, vada pav");
        assert!(prompt_tokens(&phrases, 5, chars).is_empty());
        assert!(prompt_tokens(&[], 100, chars).is_empty());
    }

    #[test]
    fn the_prompt_goes_before_the_transcript_never_into_it() {
        let previous = vec![" Mis".to_string(), "al".to_string()];
        assert_eq!(
            decoder_prompt(&previous, "hi"),
            ["<|startofprev|>", " Mis", "al", "<|startoftranscript|>", "<|hi|>", "<|transcribe|>", "<|notimestamps|>"]
        );
        assert_eq!(decoder_prompt(&[], "mr")[0], "<|startoftranscript|>");
        assert_eq!(whisper_language(Lang::HiEn), "hi");
        assert_eq!(whisper_language(Lang::Mr), "mr");
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
        // CTranslate2 caps the answer at min(L / 2, L - prompt before the
        // start token): both leave exactly the configured answer.
        let cap = |prompt_len: usize, answer: usize| {
            let l = ct2_max_length(prompt_len, answer);
            (l / 2).min(l - (prompt_len - 1))
        };
        assert_eq!(cap(4, 96), 96);
        assert_eq!(cap(228, 96), 96);
        assert_eq!(cap(97, 96), 96);
        assert_eq!(cap(228, 1), 1);
        assert!(ct2_max_length(228, 96) <= TEXT_CONTEXT);
        config.threads = 64;
        assert_eq!(config.parallel_recognitions(), 1);
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
        let phrases: Vec<String> = ["Misal Pav", "Vada Pav", "Cutting Chai", "एक", "दो"].map(String::from).to_vec();
        assert!(recites_prompt("Misal Pav, Vada Pav, Cutting Chai.", &phrases));
        assert!(recites_prompt("एक, दो, misal pav", &phrases));
        assert!(!recites_prompt("do misal pav aur ek cutting chai", &phrases));
        assert!(!recites_prompt("Misal Pav, Vada Pav", &phrases));
        assert!(!recites_prompt("Misal Pav, two Vada Pav, Cutting Chai", &phrases));
    }

    #[test]
    fn models_are_present_only_once_every_file_and_the_manifest_are() {
        let dir = tempfile::tempdir().unwrap();
        let config = WhisperConfig::new(dir.path());
        assert!(!models_present(&config));
        std::fs::create_dir_all(config.model_dir()).unwrap();
        for file in MODEL_FILES {
            std::fs::write(config.model_dir().join(file), b"x").unwrap();
        }
        assert!(!models_present(&config), "no manifest yet: a fetch did not finish");
        std::fs::write(config.model_dir().join(crate::models::MANIFEST), b"{}").unwrap();
        assert!(models_present(&config));
        let small = WhisperConfig { model: "small".into(), ..config };
        assert!(!models_present(&small));
    }
}
