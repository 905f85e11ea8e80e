//! The embedded offline recogniser: multilingual Whisper, its weights
//! fetched once by `mangwale-exotel models fetch` into `MODELS_DIR`.
//!
//! INTERFACE ONLY until the Whisper engine lands (issue 12, this session):
//! loading always reports the engine as unavailable.

use std::path::{Path, PathBuf};

use mangwale_voice::speech::SpeechError;

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

impl WhisperConfig {
    /// The folder holding this model's files.
    pub fn model_dir(&self) -> PathBuf {
        self.models_dir.join(format!("whisper-{}", self.model))
    }
}

/// Whether `models fetch` has put the model in place.
pub fn models_present(config: &WhisperConfig) -> bool {
    Path::new(&config.model_dir()).join("model.bin").is_file()
}

/// A loaded Whisper model; implements `Recognizer`.
pub struct Whisper {
    _private: (),
}

impl Whisper {
    /// Loads the model (blocking, seconds: call from `spawn_blocking`).
    pub fn load(config: &WhisperConfig) -> Result<Whisper, SpeechError> {
        Err(SpeechError::Unavailable(format!("whisper engine not built yet ({})", config.model_dir().display())))
    }
}
