//! Speech in and out, as interfaces: the telephony layer hands a caller's
//! audio to a [`Recognizer`] and speaks the dialog's replies through a
//! [`Synthesizer`]. This crate defines the contracts only; the engines live
//! in `mangwale-speech`, and a service without any reports
//! [`SpeechStatus::none()`] in `/health`.
//!
//! Audio is 16-bit signed little-endian mono PCM, as Exotel's Voicebot
//! streams it (8 kHz) or as wideband engines take it (16 kHz).

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::catalog::Lang;

/// The sample rates callers' audio comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SampleRate {
    /// Narrowband telephony (Exotel Voicebot, PSTN).
    #[serde(rename = "8000")]
    Hz8000,
    /// Wideband.
    #[serde(rename = "16000")]
    Hz16000,
}

impl SampleRate {
    pub fn hz(self) -> u32 {
        match self {
            SampleRate::Hz8000 => 8000,
            SampleRate::Hz16000 => 16000,
        }
    }

    pub fn from_hz(hz: u32) -> Option<SampleRate> {
        match hz {
            8000 => Some(SampleRate::Hz8000),
            16000 => Some(SampleRate::Hz16000),
            _ => None,
        }
    }
}

/// Mono PCM16 audio: one `i16` per sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcm16 {
    pub sample_rate: SampleRate,
    pub samples: Vec<i16>,
}

impl Pcm16 {
    /// From little-endian bytes as they come off the wire; `None` for an
    /// odd number of bytes.
    pub fn from_le_bytes(sample_rate: SampleRate, bytes: &[u8]) -> Option<Pcm16> {
        if !bytes.len().is_multiple_of(2) {
            return None;
        }
        let samples = bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        Some(Pcm16 { sample_rate, samples })
    }

    pub fn to_le_bytes(&self) -> Vec<u8> {
        self.samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 * 1000 / u64::from(self.sample_rate.hz())
    }
}

/// What the recogniser should expect, so that it can bias its decoding
/// towards the words this call is likely to contain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecognitionHints {
    /// The language the caller is expected to speak (the dialog's current
    /// one); the recogniser may still detect another.
    pub language: Option<Lang>,
    /// Phrases to favour: the store's item names and aliases, number words,
    /// "haan", "nahi", the store names on offer.
    pub phrases: Vec<String>,
}

/// What the recogniser heard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// As an ASR writes it; empty when nothing intelligible was said.
    pub text: String,
    /// The language detected (or the hinted one, for engines that do not
    /// detect).
    pub language: Lang,
    /// 0..1, the engine's own confidence.
    pub confidence: f32,
}

/// Why speech could not be recognised or synthesised. `retryable`
/// separates "the engine is down or slow, say so and offer the keypad or
/// the order desk" from "this input cannot be processed".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpeechError {
    /// The engine did not answer in time.
    #[error("speech engine timed out after {after_ms} ms")]
    Timeout { after_ms: u64 },
    /// The engine could not be reached or failed (5xx, connection).
    #[error("speech engine unavailable: {0}")]
    Unavailable(String),
    /// The engine refused the input (a sample rate or language it lacks,
    /// audio too long, text too long).
    #[error("speech input refused: {0}")]
    Unsupported(String),
    /// The engine answered with something unreadable.
    #[error("speech engine answered badly: {0}")]
    BadResponse(String),
}

impl SpeechError {
    pub fn retryable(&self) -> bool {
        matches!(self, SpeechError::Timeout { .. } | SpeechError::Unavailable(_))
    }
}

/// Audio to text.
#[async_trait]
pub trait Recognizer: Send + Sync {
    /// A short name for `/health` and logs ("whisper", "exotel-asr").
    fn name(&self) -> &str;

    /// Transcribes one utterance. Audio with no speech in it is a
    /// [`Transcript`] with empty text, not an error.
    async fn recognize(&self, audio: &Pcm16, hints: &RecognitionHints) -> Result<Transcript, SpeechError>;

    /// A cheap liveness check for `/health` (a model loaded, a server that
    /// answers); engines with nothing to check are always ready.
    async fn check(&self) -> Result<(), SpeechError> {
        Ok(())
    }
}

/// Text to audio.
#[async_trait]
pub trait Synthesizer: Send + Sync {
    fn name(&self) -> &str;

    /// Speaks `text` (in `language`'s script) as audio at `sample_rate`.
    async fn synthesize(&self, text: &str, language: Lang, sample_rate: SampleRate) -> Result<Pcm16, SpeechError>;

    /// A cheap liveness check for `/health`.
    async fn check(&self) -> Result<(), SpeechError> {
        Ok(())
    }
}

/// Which speech engines the service runs, for `/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeechStatus {
    /// The recogniser's name, or "none configured".
    pub recognizer: String,
    pub synthesizer: String,
}

/// What `/health` says of an engine that is not there.
pub const NONE_CONFIGURED: &str = "none configured";

impl SpeechStatus {
    /// No engines: the service takes text and keys only.
    pub fn none() -> SpeechStatus {
        SpeechStatus { recognizer: NONE_CONFIGURED.to_string(), synthesizer: NONE_CONFIGURED.to_string() }
    }

    pub fn of(recognizer: Option<&dyn Recognizer>, synthesizer: Option<&dyn Synthesizer>) -> SpeechStatus {
        let name = |n: Option<&str>| n.unwrap_or(NONE_CONFIGURED).to_string();
        SpeechStatus {
            recognizer: name(recognizer.map(|r| r.name())),
            synthesizer: name(synthesizer.map(|s| s.name())),
        }
    }
}

impl Default for SpeechStatus {
    fn default() -> Self {
        SpeechStatus::none()
    }
}

impl fmt::Display for SpeechStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "recognizer: {}, synthesizer: {}", self.recognizer, self.synthesizer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_round_trips_little_endian_and_knows_its_length() {
        let audio = Pcm16 { sample_rate: SampleRate::Hz8000, samples: vec![0, 1, -1, i16::MAX, i16::MIN] };
        let bytes = audio.to_le_bytes();
        assert_eq!(&bytes[..4], &[0, 0, 1, 0]);
        assert_eq!(Pcm16::from_le_bytes(SampleRate::Hz8000, &bytes), Some(audio));
        assert_eq!(Pcm16::from_le_bytes(SampleRate::Hz8000, &[1, 2, 3]), None);
        let second = Pcm16 { sample_rate: SampleRate::Hz16000, samples: vec![0; 16000] };
        assert_eq!(second.duration_ms(), 1000);
        assert_eq!(SampleRate::from_hz(16000), Some(SampleRate::Hz16000));
        assert_eq!(SampleRate::from_hz(44100), None);
    }

    #[test]
    fn without_engines_the_status_says_so() {
        let status = SpeechStatus::none();
        assert_eq!(status, SpeechStatus::of(None, None));
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            serde_json::json!({"recognizer": "none configured", "synthesizer": "none configured"})
        );
    }
}
