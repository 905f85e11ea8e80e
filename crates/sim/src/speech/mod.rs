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

pub mod transcripts;
pub mod tts;

pub use transcripts::TranscriptBook;
