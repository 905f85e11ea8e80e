//! The user's own ASR server, called as the incumbent service calls it
//! (skyagarwal/mercury, `voice-streaming.service.js`):
//!
//! ```text
//! POST {ASR_URL}/transcribe
//! Content-Type: audio/raw          (the body: PCM16 little-endian mono)
//! X-Language: hi-IN | mr-IN | en-IN
//! X-Sample-Rate: 8000 | 16000
//! → 200 {"text": "...", "isFinal": true, ...}
//! ```
//!
//! The incumbent sends BCP-47 tags with the India region (`hi-IN` by
//! default, `mr-IN`, `en-IN`); Hinglish goes as `hi-IN`, the server's Hindi
//! model being the one that hears it. The server (faster-whisper) also
//! answers `language`, `confidence` and `provider`; they are read when
//! present. The incumbent gives it 5 s (`ASR_TIMEOUT_MS`, default 5000).
//!
//! The server has `GET {ASR_URL}/health` (the incumbent's runbooks probe it:
//! `curl http://…:7001/health`); [`HttpAsr::check`] uses it, so `/health`
//! never spends a transcription on a probe.

use std::time::Duration;

use async_trait::async_trait;
use mangwale_voice::catalog::Lang;
use mangwale_voice::speech::{Pcm16, RecognitionHints, Recognizer, SpeechError, Transcript};
use reqwest::Url;
use serde::Deserialize;

/// The largest answer read: a transcript is a sentence or two of JSON.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The incumbent's timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5_000);

/// The name `/health` shows for this recogniser.
pub const NAME: &str = "asr-http";

/// A client of the user's ASR server.
#[derive(Debug, Clone)]
pub struct HttpAsr {
    http: reqwest::Client,
    base: Url,
    timeout: Duration,
    name: String,
}

impl HttpAsr {
    /// `base` is `ASR_URL`, the server's root (`http://mercury:7001`).
    pub fn new(base: Url, timeout: Duration) -> Result<HttpAsr, SpeechError> {
        Ok(HttpAsr { http: client(timeout)?, base, timeout, name: NAME.to_string() })
    }

    /// Renames the recogniser for `/health` (the sandbox says it is the
    /// simulator).
    pub fn with_name(mut self, name: impl Into<String>) -> HttpAsr {
        self.name = name.into();
        self
    }

    pub fn url(&self) -> &Url {
        &self.base
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// The `X-Language` value the incumbent sends for `lang`.
pub fn language_tag(lang: Lang) -> &'static str {
    match lang {
        Lang::Hi | Lang::HiEn => "hi-IN",
        Lang::Mr => "mr-IN",
        Lang::En => "en-IN",
    }
}

/// Reads a language an ASR answers (`hi-IN`, `hi`, `mr`, `en-US`, `hi-en`).
pub fn language_of_tag(tag: &str) -> Option<Lang> {
    let tag = tag.trim().to_ascii_lowercase();
    if let Some(lang) = Lang::from_code(&tag) {
        return Some(lang);
    }
    Lang::from_code(tag.split(['-', '_']).next()?)
}

/// The server's answer. Only `text` is required: the incumbent reads
/// `text` and `isFinal`, and its server adds `language` and `confidence`.
#[derive(Debug, Deserialize)]
struct Answer {
    text: String,
    /// The incumbent streams partial results and acts on final ones only;
    /// our request carries one whole utterance (cut by our VAD), so its
    /// transcript is final whatever the flag says (a `false` is logged).
    #[serde(rename = "isFinal", default)]
    is_final: Option<bool>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    confidence: Option<f32>,
}

#[async_trait]
impl Recognizer for HttpAsr {
    fn name(&self) -> &str {
        &self.name
    }

    async fn recognize(&self, audio: &Pcm16, hints: &RecognitionHints) -> Result<Transcript, SpeechError> {
        let hinted = hints.language.unwrap_or(Lang::Hi);
        let url = join(&self.base, "transcribe")?;
        let request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "audio/raw")
            .header("X-Language", language_tag(hinted))
            .header("X-Sample-Rate", audio.sample_rate.hz().to_string())
            .header(reqwest::header::ACCEPT, "application/json")
            .body(audio.to_le_bytes());
        let body = exchange(request, self.timeout).await?;
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|e| SpeechError::BadResponse(format!("the ASR answer is not {{text, isFinal}} JSON: {e}")))?;
        if answer.is_final == Some(false) {
            tracing::debug!(recognizer = %self.name, "the ASR server marked a whole utterance's transcript partial");
        }
        // A detected language of the same family keeps the hinted variant
        // (the server says `hi-IN` for Hinglish too).
        let language = match answer.language.as_deref().and_then(language_of_tag) {
            Some(detected) if language_tag(detected) == language_tag(hinted) => hinted,
            Some(detected) => detected,
            None => hinted,
        };
        Ok(Transcript {
            text: answer.text.trim().to_string(),
            language,
            // A server that does not grade its answers is taken at its word.
            confidence: answer.confidence.filter(|c| c.is_finite()).map_or(1.0, |c| c.clamp(0.0, 1.0)),
        })
    }

    /// `GET {ASR_URL}/health`: any 2xx is up.
    async fn check(&self) -> Result<(), SpeechError> {
        let url = join(&self.base, "health")?;
        exchange(self.http.get(url), self.timeout).await.map(|_| ())
    }
}

/// The HTTP client every speech client uses: bounded connect, our user agent.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, SpeechError> {
    reqwest::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(2)))
        .user_agent(concat!("mangwale-exotel/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SpeechError::Unavailable(format!("the HTTP client could not be built: {e}")))
}

/// `{base}/{path}`, whether or not `base` ends in a slash.
pub(crate) fn join(base: &Url, path: &str) -> Result<Url, SpeechError> {
    Url::parse(&format!("{}/{path}", base.as_str().trim_end_matches('/')))
        .map_err(|e| SpeechError::Unsupported(format!("bad URL: {e}")))
}

/// Sends `request` and reads its 2xx body, all within `timeout`.
/// Connection failures and 5xx are [`SpeechError::Unavailable`] (429 too:
/// the server is overloaded, try later); other 4xx are
/// [`SpeechError::Unsupported`] (this input was refused).
pub(crate) async fn exchange(request: reqwest::RequestBuilder, timeout: Duration) -> Result<Vec<u8>, SpeechError> {
    let run = async {
        let response = request.send().await.map_err(|e| {
            SpeechError::Unavailable(if e.is_connect() {
                "connection refused or unreachable".to_string()
            } else {
                "the request failed before an answer".to_string()
            })
        })?;
        let status = response.status();
        let body = read_capped(response).await?;
        if status.is_success() {
            return Ok(body);
        }
        let detail = error_detail(&body);
        if status.is_server_error() || status.as_u16() == 429 {
            Err(SpeechError::Unavailable(format!("HTTP {}{detail}", status.as_u16())))
        } else {
            Err(SpeechError::Unsupported(format!("HTTP {}{detail}", status.as_u16())))
        }
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| SpeechError::Timeout { after_ms: timeout.as_millis() as u64 })?
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, SpeechError> {
    let too_large = || SpeechError::BadResponse(format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"));
    if response.content_length().is_some_and(|n| n > MAX_ANSWER_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|_| SpeechError::Unavailable("the answer was cut off".to_string()))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A short excerpt of an error body (FastAPI's `detail`, OpenAI's
/// `error.message`), for the error; never the request.
fn error_detail(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .and_then(|m| m.as_str().map(str::to_string))
            .or_else(|| v.get("detail").map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_string)))
    });
    match message {
        Some(m) => format!(": {}", m.chars().take(200).collect::<String>()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_go_as_the_incumbent_sends_them_and_come_back_in_any_form() {
        assert_eq!(language_tag(Lang::Hi), "hi-IN");
        assert_eq!(language_tag(Lang::HiEn), "hi-IN");
        assert_eq!(language_tag(Lang::Mr), "mr-IN");
        assert_eq!(language_tag(Lang::En), "en-IN");
        assert_eq!(language_of_tag("hi-IN"), Some(Lang::Hi));
        assert_eq!(language_of_tag(" MR "), Some(Lang::Mr));
        assert_eq!(language_of_tag("en_US"), Some(Lang::En));
        assert_eq!(language_of_tag("hi-en"), Some(Lang::HiEn));
        assert_eq!(language_of_tag("ta-IN"), None);
    }

    #[test]
    fn urls_join_with_or_without_a_trailing_slash() {
        for base in ["http://asr:7001", "http://asr:7001/"] {
            assert_eq!(join(&Url::parse(base).unwrap(), "transcribe").unwrap().as_str(), "http://asr:7001/transcribe");
        }
        let nested = Url::parse("https://gpu.example/asr/").unwrap();
        assert_eq!(join(&nested, "health").unwrap().as_str(), "https://gpu.example/asr/health");
    }

    #[test]
    fn error_bodies_give_their_message_only() {
        assert_eq!(error_detail(br#"{"detail": "bad header"}"#), ": bad header");
        assert_eq!(error_detail(br#"{"error": {"message": "Invalid file format."}}"#), ": Invalid file format.");
        assert_eq!(error_detail(b"<html>"), "");
    }
}
