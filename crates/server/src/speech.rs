//! The speech engines this process runs, chosen once at start from the
//! configuration: a recogniser for callers' audio and a synthesiser for the
//! agent's replies. Either may be absent; calls then fall back to the keypad
//! and the order desk, and `/health` says so.

use std::sync::Arc;

use mangwale_voice::speech::{Recognizer, SpeechStatus, Synthesizer};

/// The engines in use.
#[derive(Clone, Default)]
pub struct Speech {
    pub recognizer: Option<Arc<dyn Recognizer>>,
    pub synthesizer: Option<Arc<dyn Synthesizer>>,
}

impl Speech {
    /// No engines: text and keys only.
    pub fn none() -> Speech {
        Speech::default()
    }

    /// What `/health` shows.
    pub fn status(&self) -> SpeechStatus {
        SpeechStatus::of(self.recognizer.as_deref(), self.synthesizer.as_deref())
    }
}
