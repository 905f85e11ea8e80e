//! The user's own TTS server, called as the incumbent service calls it
//! (skyagarwal/mercury, `voice-streaming.service.js`):
//!
//! ```text
//! POST {TTS_URL}/synthesize
//! Content-Type: application/json
//! {"text": "…", "language": "hi", "voice": "female", "format": "raw",
//!  "sampleRate": 8000, "encoding": "linear16"}
//! ```
//!
//! answering the audio bytes themselves. What the incumbent's code and its
//! TTS servers settle:
//! - `language` is the short code its servers route on (`hi`, `mr`, `en`);
//!   Hinglish is sent as `hi`, its text in Devanagari ([`crate::translit`]),
//!   since the Indic voices behind the server are trained on Devanagari.
//! - `sampleRate` is a JSON number; `voice` defaults to the incumbent's
//!   `"female"` when `TTS_VOICE` is not set.
//! - `encoding` names follow the incumbent (`"mulaw"`, Deepgram's names):
//!   we ask for `"linear16"` (16-bit little-endian PCM), which is what the
//!   Voicebot stream carries; `"mulaw"` can be chosen for a server that
//!   only speaks the incumbent's encoding ([`TtsEncoding`]).
//! - The incumbent's servers (ChatterBox, Indic-Parler) answer WAV whatever
//!   the format asked, so an answer in a RIFF/WAVE container is unpacked and
//!   resampled to the rate asked for rather than played as noise.
//!
//! Failures map onto [`SpeechError`]: no answer in time is `Timeout`; a
//! refused connection, a 5xx or a 429 is `Unavailable`; another 4xx is
//! `Unsupported` (the server refused this text, language or rate); a 200
//! with a JSON or HTML body, no audio, or an odd number of bytes is
//! `BadResponse`.

use std::time::Duration;

use async_trait::async_trait;
use mangwale_voice::catalog::Lang;
use mangwale_voice::speech::{Pcm16, SampleRate, SpeechError, Synthesizer};
use reqwest::header::CONTENT_TYPE;
use serde::Serialize;

use crate::audio::{parse_wav, resample, ulaw_to_linear};
use crate::translit;

/// Longest text sent in one request (a reply is a few sentences).
pub const MAX_TEXT_CHARS: usize = 2_000;

/// The most audio read from one answer: longer than any reply at 48 kHz
/// (a server ignoring the rate asked), short of exhausting memory.
pub const MAX_AUDIO_BYTES: usize = 32 << 20;

/// The voice asked for when none is configured: the incumbent's default.
pub const DEFAULT_VOICE: &str = "female";

/// How the server is asked to encode the samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TtsEncoding {
    /// 16-bit signed little-endian PCM, two bytes a sample.
    Linear16,
    /// G.711 µ-law, one byte a sample (the incumbent's choice).
    Mulaw,
}

/// The request body of `POST /synthesize`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SynthesizeRequest<'a> {
    text: &'a str,
    language: &'static str,
    voice: &'a str,
    format: &'static str,
    sample_rate: u32,
    encoding: TtsEncoding,
}

/// The client of the user's TTS server.
#[derive(Debug, Clone)]
pub struct TtsHttp {
    client: reqwest::Client,
    /// `TTS_URL` without a trailing slash.
    base: String,
    voice: String,
    timeout: Duration,
    encoding: TtsEncoding,
    transliterate: bool,
}

impl TtsHttp {
    /// A client of the server at `url` (`TTS_URL`), asking for `voice`
    /// (`TTS_VOICE`, else [`DEFAULT_VOICE`]) and giving up after `timeout`
    /// (`TTS_TIMEOUT_MS`).
    pub fn new(url: &str, voice: Option<String>, timeout: Duration) -> Result<TtsHttp, SpeechError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .build()
            .map_err(|e| SpeechError::Unavailable(format!("TTS HTTP client: {e}")))?;
        Ok(TtsHttp {
            client,
            base: url.trim_end_matches('/').to_string(),
            voice: voice.filter(|v| !v.trim().is_empty()).unwrap_or_else(|| DEFAULT_VOICE.to_string()),
            timeout,
            encoding: TtsEncoding::Linear16,
            transliterate: true,
        })
    }

    /// Asks for another encoding (a server that only does µ-law).
    pub fn with_encoding(mut self, encoding: TtsEncoding) -> TtsHttp {
        self.encoding = encoding;
        self
    }

    /// Sends Latin Hinglish as written instead of in Devanagari (for a
    /// server whose voices read romanised Hindi well).
    pub fn with_transliteration(mut self, on: bool) -> TtsHttp {
        self.transliterate = on;
        self
    }

    /// The `language` field for `lang`.
    pub fn language_code(lang: Lang) -> &'static str {
        match lang {
            Lang::Hi | Lang::HiEn => "hi",
            Lang::Mr => "mr",
            Lang::En => "en",
        }
    }

    fn timeout_error(&self) -> SpeechError {
        SpeechError::Timeout { after_ms: self.timeout.as_millis() as u64 }
    }

    /// A transport failure as a speech error.
    fn transport(&self, e: reqwest::Error) -> SpeechError {
        if e.is_timeout() {
            self.timeout_error()
        } else {
            // Without the URL: it is configuration, not news, and may carry
            // credentials in its userinfo.
            SpeechError::Unavailable(format!("TTS server: {}", e.without_url()))
        }
    }

    /// A status the server answered other than 200.
    fn refused(status: reqwest::StatusCode, body: &[u8]) -> SpeechError {
        let said: String = String::from_utf8_lossy(body).chars().take(200).collect();
        let what = format!("TTS server answered {status}: {}", said.trim());
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            SpeechError::Unavailable(what)
        } else if status.is_client_error() {
            SpeechError::Unsupported(what)
        } else {
            SpeechError::BadResponse(what)
        }
    }

    /// The samples of an answer body at `sample_rate`.
    fn decode(&self, content_type: Option<&str>, body: &[u8], sample_rate: SampleRate) -> Result<Pcm16, SpeechError> {
        let mime = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        let is_wav = body.len() >= 12 && &body[..4] == b"RIFF" && &body[8..12] == b"WAVE";
        if let Some(mime) = &mime
            && !(mime.starts_with("audio/") || mime == "application/octet-stream")
        {
            let said: String = String::from_utf8_lossy(body).chars().take(120).collect();
            return Err(SpeechError::BadResponse(format!("TTS server answered {mime}, not audio: {}", said.trim())));
        }
        if is_wav {
            let wav = parse_wav(body).map_err(|e| SpeechError::BadResponse(format!("TTS WAV answer: {e}")))?;
            let samples = resample(&wav.samples, wav.sample_rate, sample_rate.hz());
            return non_empty(Pcm16 { sample_rate, samples });
        }
        let audio = match self.encoding {
            TtsEncoding::Linear16 => Pcm16::from_le_bytes(sample_rate, body).ok_or_else(|| {
                SpeechError::BadResponse(format!(
                    "{} bytes of 16-bit audio is not a whole number of samples",
                    body.len()
                ))
            })?,
            TtsEncoding::Mulaw => Pcm16 { sample_rate, samples: body.iter().map(|b| ulaw_to_linear(*b)).collect() },
        };
        non_empty(audio)
    }
}

fn non_empty(audio: Pcm16) -> Result<Pcm16, SpeechError> {
    if audio.samples.is_empty() {
        return Err(SpeechError::BadResponse("TTS server answered no audio".into()));
    }
    Ok(audio)
}

#[async_trait]
impl Synthesizer for TtsHttp {
    fn name(&self) -> &str {
        "tts-http"
    }

    async fn synthesize(&self, text: &str, language: Lang, sample_rate: SampleRate) -> Result<Pcm16, SpeechError> {
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(SpeechError::Unsupported(format!("text longer than {MAX_TEXT_CHARS} characters")));
        }
        if text.trim().is_empty() {
            return Err(SpeechError::Unsupported("nothing to say".into()));
        }
        let spoken = if self.transliterate { translit::for_speech(text, language) } else { text.into() };
        let body = SynthesizeRequest {
            text: &spoken,
            language: TtsHttp::language_code(language),
            voice: &self.voice,
            format: "raw",
            sample_rate: sample_rate.hz(),
            encoding: self.encoding,
        };
        let exchange = async {
            let response = self
                .client
                .post(format!("{}/synthesize", self.base))
                .json(&body)
                .send()
                .await
                .map_err(|e| self.transport(e))?;
            let status = response.status();
            let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
            let mut response = response;
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(e))? {
                if bytes.len() + chunk.len() > MAX_AUDIO_BYTES {
                    return Err(SpeechError::BadResponse(format!("TTS answer longer than {MAX_AUDIO_BYTES} bytes")));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok::<_, SpeechError>((status, content_type, bytes))
        };
        let (status, content_type, bytes) =
            tokio::time::timeout(self.timeout, exchange).await.map_err(|_| self.timeout_error())??;
        if status != reqwest::StatusCode::OK {
            return Err(TtsHttp::refused(status, &bytes));
        }
        self.decode(content_type.as_deref(), &bytes, sample_rate)
    }

    /// `GET {TTS_URL}/health`, as the incumbent's servers offer it; a
    /// server without one (404, 405) is asked to say one word instead.
    async fn check(&self) -> Result<(), SpeechError> {
        let probe = async {
            let response =
                self.client.get(format!("{}/health", self.base)).send().await.map_err(|e| self.transport(e))?;
            Ok::<_, SpeechError>(response.status())
        };
        let status = tokio::time::timeout(self.timeout, probe).await.map_err(|_| self.timeout_error())??;
        if status.is_success() {
            return Ok(());
        }
        if matches!(status, reqwest::StatusCode::NOT_FOUND | reqwest::StatusCode::METHOD_NOT_ALLOWED) {
            return self.synthesize("ok", Lang::En, SampleRate::Hz8000).await.map(|_| ());
        }
        Err(TtsHttp::refused(status, b""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_body_is_the_incumbents() {
        let body = SynthesizeRequest {
            text: "नमस्ते",
            language: TtsHttp::language_code(Lang::HiEn),
            voice: DEFAULT_VOICE,
            format: "raw",
            sample_rate: SampleRate::Hz8000.hz(),
            encoding: TtsEncoding::Linear16,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"text": "नमस्ते", "language": "hi", "voice": "female", "format": "raw", "sampleRate": 8000, "encoding": "linear16"})
        );
        assert_eq!(serde_json::to_value(TtsEncoding::Mulaw).unwrap(), "mulaw");
    }

    #[test]
    fn statuses_map_onto_speech_errors() {
        let refused = |s: u16| TtsHttp::refused(reqwest::StatusCode::from_u16(s).unwrap(), b"{\"detail\": \"x\"}");
        assert!(matches!(refused(503), SpeechError::Unavailable(_)));
        assert!(matches!(refused(429), SpeechError::Unavailable(_)));
        assert!(matches!(refused(422), SpeechError::Unsupported(_)));
        assert!(matches!(refused(302), SpeechError::BadResponse(_)));
    }

    #[test]
    fn answers_are_decoded_or_refused() {
        let tts = TtsHttp::new("http://127.0.0.1:9/", None, Duration::from_millis(100)).unwrap();
        assert_eq!(tts.base, "http://127.0.0.1:9");
        let pcm = tts.decode(Some("application/octet-stream"), &[1, 0, 255, 255], SampleRate::Hz8000).unwrap();
        assert_eq!(pcm.samples, vec![1, -1]);
        let odd = tts.decode(None, &[1, 0, 2], SampleRate::Hz8000).unwrap_err();
        assert!(matches!(odd, SpeechError::BadResponse(_)), "{odd:?}");
        let json = tts.decode(Some("application/json"), b"{\"error\": \"no\"}", SampleRate::Hz8000).unwrap_err();
        assert!(matches!(json, SpeechError::BadResponse(_)), "{json:?}");
        assert!(tts.decode(Some("audio/raw"), b"", SampleRate::Hz8000).is_err());
        // A WAV at 16 kHz where raw 8 kHz was asked: unpacked and resampled.
        let wav = crate::audio::write_wav(&vec![1000; 1600], 16000);
        let pcm = tts.decode(Some("audio/wav"), &wav, SampleRate::Hz8000).unwrap();
        assert_eq!(pcm.samples.len(), 800);
        let mulaw = tts.clone().with_encoding(TtsEncoding::Mulaw);
        let pcm = mulaw.decode(Some("audio/basic"), &[0xFF, 0x00, 0x80], SampleRate::Hz8000).unwrap();
        assert_eq!(pcm.samples.len(), 3);
        assert_eq!(pcm.samples[0], 0);
    }

    #[tokio::test]
    async fn a_closed_port_is_unavailable() {
        // Port 9 (discard) is not listened on here: the connection is refused.
        let tts = TtsHttp::new("http://127.0.0.1:9", None, Duration::from_millis(500)).unwrap();
        let err = tts.synthesize("namaste", Lang::HiEn, SampleRate::Hz8000).await.unwrap_err();
        assert!(err.retryable(), "{err:?}");
        assert!(tts.check().await.is_err());
    }
}
