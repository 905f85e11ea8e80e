//! An OpenAI-compatible transcription endpoint (OpenAI itself, or a
//! self-hosted server speaking its API):
//!
//! ```text
//! POST {OPENAI_ASR_URL}/audio/transcriptions      (the base ends in /v1)
//! Authorization: Bearer <OPENAI_ASR_API_KEY>
//! Content-Type: multipart/form-data
//!   file=@audio.wav (audio/wav)   model=whisper-1   language=hi
//!   prompt=<catalog phrases>      response_format=json   temperature=0
//! → 200 {"text": "..."}
//! ```
//!
//! As OpenAI's API reference describes it: `file` and `model` are required;
//! the file's format is taken from its name's extension (flac, m4a, mp3,
//! mp4, mpeg, mpga, oga, ogg, wav, webm), so the PCM goes as a WAV named
//! `audio.wav`; `language` is ISO-639-1 (Hinglish is `hi`); `prompt` biases
//! the spelling of the store's item names, and the model considers only its
//! last 224 tokens, so it is cut well under that ([`MAX_PROMPT_TOKENS`]);
//! `temperature` 0 decodes greedily. The `json` answer carries `text` only:
//! the transcript's language is the hinted one.
//!
//! [`OpenAiAsr::check`] is `GET {base}/models/{model}`: free, and it proves
//! the key and the model as well as the server.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use mangwale_voice::catalog::Lang;
use mangwale_voice::speech::{Pcm16, RecognitionHints, Recognizer, SpeechError, Transcript};
use reqwest::Url;
use reqwest::multipart::{Form, Part};
use serde::Deserialize;

use crate::asr_http::{client, exchange, join};
use crate::audio::write_wav;

/// The model OpenAI serves for transcription by default.
pub const DEFAULT_MODEL: &str = "whisper-1";

/// The name `/health` shows.
pub const NAME: &str = "openai-asr";

/// The prompt's budget in estimated tokens: OpenAI reads the last 224, and
/// [`estimated_tokens`] errs high, so the real count stays well under.
pub const MAX_PROMPT_TOKENS: usize = 150;

/// An OpenAI-compatible transcription client.
#[derive(Clone)]
pub struct OpenAiAsr {
    http: reqwest::Client,
    base: Url,
    api_key: Option<String>,
    model: String,
    timeout: Duration,
}

impl fmt::Debug for OpenAiAsr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiAsr")
            .field("base", &self.base.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl OpenAiAsr {
    /// `base` is `OPENAI_ASR_URL` (`https://api.openai.com/v1`); `api_key`
    /// is sent as a Bearer token when given (a local server may need none).
    pub fn new(base: Url, api_key: Option<String>, model: String, timeout: Duration) -> Result<OpenAiAsr, SpeechError> {
        Ok(OpenAiAsr { http: client(timeout)?, base, api_key, model, timeout })
    }

    pub fn url(&self) -> &Url {
        &self.base
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }
}

/// The ISO-639-1 code OpenAI takes for `lang`.
pub fn iso_639_1(lang: Lang) -> &'static str {
    match lang {
        Lang::Hi | Lang::HiEn => "hi",
        Lang::Mr => "mr",
        Lang::En => "en",
    }
}

/// A generous estimate of the tokens `text` takes in Whisper's byte-level
/// BPE: one per two bytes of ASCII (English words average about four
/// characters a token), one per byte otherwise (a byte-level BPE never
/// needs more tokens than bytes).
pub fn estimated_tokens(text: &str) -> usize {
    let ascii = text.bytes().filter(u8::is_ascii).count();
    let other = text.len() - ascii;
    ascii.div_ceil(2) + other
}

/// The prompt for `phrases`: as many as fit in [`MAX_PROMPT_TOKENS`], in
/// their order (the caller puts the likeliest first), comma-separated.
pub fn prompt_of(phrases: &[String]) -> Option<String> {
    let mut prompt = String::new();
    for phrase in phrases.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let candidate = if prompt.is_empty() { phrase.to_string() } else { format!("{prompt}, {phrase}") };
        if estimated_tokens(&candidate) > MAX_PROMPT_TOKENS {
            continue;
        }
        prompt = candidate;
    }
    (!prompt.is_empty()).then_some(prompt)
}

#[derive(Debug, Deserialize)]
struct Answer {
    text: String,
}

#[async_trait]
impl Recognizer for OpenAiAsr {
    fn name(&self) -> &str {
        NAME
    }

    async fn recognize(&self, audio: &Pcm16, hints: &RecognitionHints) -> Result<Transcript, SpeechError> {
        let wav = write_wav(&audio.samples, audio.sample_rate.hz());
        let file = Part::bytes(wav)
            .file_name("audio.wav")
            .mime_str("audio/wav")
            .map_err(|e| SpeechError::Unsupported(format!("the audio part: {e}")))?;
        let mut form = Form::new()
            .part("file", file)
            .text("model", self.model.clone())
            .text("response_format", "json")
            .text("temperature", "0");
        if let Some(lang) = hints.language {
            form = form.text("language", iso_639_1(lang));
        }
        if let Some(prompt) = prompt_of(&hints.phrases) {
            form = form.text("prompt", prompt);
        }
        let url = join(&self.base, "audio/transcriptions")?;
        let request = self.authorized(self.http.post(url)).header(reqwest::header::ACCEPT, "application/json");
        let body = exchange(request.multipart(form), self.timeout).await?;
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|e| SpeechError::BadResponse(format!("the transcription is not {{\"text\"}} JSON: {e}")))?;
        Ok(Transcript {
            text: answer.text.trim().to_string(),
            language: hints.language.unwrap_or(Lang::Hi),
            // The `json` format carries no confidence.
            confidence: 1.0,
        })
    }

    /// `GET {base}/models/{model}`: the server answers, the key is valid
    /// and the model is served.
    async fn check(&self) -> Result<(), SpeechError> {
        let url = join(&self.base, &format!("models/{}", self.model))?;
        exchange(self.authorized(self.http.get(url)), self.timeout).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_keeps_whole_phrases_within_its_budget() {
        assert_eq!(prompt_of(&[]), None);
        assert_eq!(prompt_of(&[" ".into()]), None);
        let phrases: Vec<String> = ["Misal Pav", "Cutting Chai", "ek", "do"].map(String::from).to_vec();
        assert_eq!(prompt_of(&phrases).as_deref(), Some("Misal Pav, Cutting Chai, ek, do"));
        // Hundreds of items: cut, never past the budget, every phrase whole.
        let many: Vec<String> = (0..500).map(|i| format!("मिसळ पाव {i}")).collect();
        let prompt = prompt_of(&many).unwrap();
        assert!(estimated_tokens(&prompt) <= MAX_PROMPT_TOKENS);
        assert!(prompt.split(", ").all(|p| many.contains(&p.to_string())));
        // The estimate errs high: Devanagari counts every byte.
        assert_eq!(estimated_tokens("मिसळ"), 12);
        assert_eq!(estimated_tokens("misal"), 3);
    }

    #[test]
    fn languages_are_iso_639_1_and_keys_never_print() {
        assert_eq!(iso_639_1(Lang::HiEn), "hi");
        assert_eq!(iso_639_1(Lang::Mr), "mr");
        let asr = OpenAiAsr::new(
            Url::parse("https://api.openai.com/v1").unwrap(),
            Some("sk-secret-key".into()),
            DEFAULT_MODEL.into(),
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(!format!("{asr:?}").contains("sk-secret"));
    }
}
