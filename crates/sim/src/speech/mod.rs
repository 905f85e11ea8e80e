//! Speech services of the simulated world: the ASR servers the service can
//! be configured with, and the book of what simulated callers said.
//!
//! - [`tts`]: the user's TTS server (`POST /synthesize`, raw audio), with
//!   fault injection.
//! - [`transcripts`]: the [`TranscriptBook`]. A simulated caller that speaks
//!   registers its audio and the sentence it stands for; the simulated ASR
//!   servers answer with that sentence when the audio they are sent contains
//!   it. This is the "exact transcript" recogniser the tests and the sandbox
//!   use when no real recogniser (Whisper) is installed.
//! - [`asr`]: the user's own ASR server (`POST /transcribe`, raw PCM).
//! - [`openai`]: OpenAI's `/v1/audio/transcriptions`.
//! - [`faults`]: what both inject on demand (down, failing, slow, garbage).
//! - [`caller`]: the [`CallerVoice`], the one function that makes a
//!   simulated caller's audio for a sentence (espeak-ng, or tones) and
//!   registers it in the book.

pub mod asr;
pub mod caller;
pub mod faults;
pub mod openai;
pub mod transcripts;
pub mod tts;

pub use asr::AsrSim;
pub use caller::{CallerVoice, Spoken, Voice};
pub use faults::SpeechFault;
pub use openai::{OpenAiAsrSim, OpenAiAsrSimConfig};
pub use transcripts::{TranscriptBook, voice_like_noise};
