//! A simulator of OpenAI's transcription API (`/v1/audio/transcriptions`),
//! answering from a [`TranscriptBook`].
//!
//! | method | path | answer |
//! |---|---|---|
//! | POST | `/v1/audio/transcriptions` | `{"text", "usage": {"type": "duration", "seconds"}}` (`response_format` `json`, the default), or the bare text (`text`); empty text when no registered utterance is in the audio |
//! | GET | `/v1/models`, `/v1/models/{model}` | the models served (`whisper-1` by default) |
//!
//! Requests are checked as OpenAI's API reference and its observed errors
//! describe them, with its error body (`{"error": {"message", "type",
//! "param", "code"}}`): with a key configured, a missing or wrong Bearer
//! key is a 401; a body that is not `multipart/form-data`, or a multipart
//! body that does not parse, is a 400; so are a missing `file` (FastAPI's
//! "field required" wording) or `model`, a file whose name's extension is
//! not a supported format, a `.wav` that is not 16-bit PCM mono WAV, a
//! `language` not in ISO-639-1 form, a `temperature` outside 0..1 and an
//! unknown `response_format`; `srt`, `vtt` and `verbose_json` are valid
//! but not simulated (400 saying so). An unknown model is a 404
//! `model_not_found`; a file over 25 MB a 413.
//!
//! Faults ([`SpeechFault`]) are injected with [`OpenAiAsrSim::set_fault`]
//! or `POST /_sim/fault`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::{fmt, io};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::faults::{FaultSlot, HttpResponse, Injected, SpeechFault, garbage, json_response};
use super::transcripts::TranscriptBook;
use crate::clock::lock;
use crate::http::{DropConnection, LoopbackServer};

/// OpenAI's upload limit.
pub const MAX_FILE_BYTES: usize = 25 * 1024 * 1024;

/// The formats OpenAI accepts, by file name extension.
pub const FORMATS: &[&str] = &["flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"];

/// Configuration of an [`OpenAiAsrSim`].
#[derive(Clone)]
pub struct OpenAiAsrSimConfig {
    pub book: TranscriptBook,
    /// The models served.
    pub models: Vec<String>,
    /// The Bearer key required, if any.
    pub api_key: Option<String>,
}

impl Default for OpenAiAsrSimConfig {
    fn default() -> Self {
        OpenAiAsrSimConfig { book: TranscriptBook::new(), models: vec!["whisper-1".to_string()], api_key: None }
    }
}

impl fmt::Debug for OpenAiAsrSimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiAsrSimConfig")
            .field("models", &self.models)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

/// A transcription request as received: its text fields and its file.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptionRequest {
    pub path: String,
    pub authorization: Option<String>,
    /// The text fields (`model`, `language`, `prompt`, …) in order.
    pub fields: BTreeMap<String, String>,
    /// The `file` part's name, content type and length.
    pub file_name: Option<String>,
    pub file_type: Option<String>,
    pub file_bytes: usize,
    pub status: u16,
}

struct Inner {
    config: OpenAiAsrSimConfig,
    fault: FaultSlot,
    requests: Mutex<Vec<TranscriptionRequest>>,
}

/// A running simulator; clones share it. Dropping the last clone stops it.
#[derive(Clone)]
pub struct OpenAiAsrSim {
    inner: Arc<Inner>,
    server: LoopbackServer,
}

impl fmt::Debug for OpenAiAsrSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiAsrSim").field("addr", &self.server.addr()).finish_non_exhaustive()
    }
}

impl OpenAiAsrSim {
    pub async fn start(config: OpenAiAsrSimConfig) -> io::Result<OpenAiAsrSim> {
        let inner = Arc::new(Inner { config, fault: FaultSlot::default(), requests: Mutex::new(Vec::new()) });
        let handler = inner.clone();
        let server = LoopbackServer::start("openai asr sim", move |req| {
            let inner = handler.clone();
            async move { handle(inner, req).await }
        })
        .await?;
        Ok(OpenAiAsrSim { inner, server })
    }

    /// `http://127.0.0.1:<port>/v1`, as `OPENAI_ASR_URL` takes it.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.server.addr())
    }

    pub fn book(&self) -> &TranscriptBook {
        &self.inner.config.book
    }

    /// Injects `fault` until cleared with `None`.
    pub fn set_fault(&self, fault: Option<SpeechFault>) {
        self.inner.fault.set(fault);
    }

    pub fn requests(&self) -> Vec<TranscriptionRequest> {
        lock(&self.inner.requests).clone()
    }
}

/// OpenAI's error body.
fn error(status: u16, message: &str, param: Option<&str>, code: Option<&str>) -> (u16, Value) {
    let kind = if status >= 500 { "server_error" } else { "invalid_request_error" };
    (status, json!({"error": {"message": message, "type": kind, "param": param, "code": code}}))
}

/// The parsed multipart body.
#[derive(Default)]
struct Upload {
    fields: BTreeMap<String, String>,
    file: Option<(Option<String>, Option<String>, Bytes)>,
}

async fn handle(inner: Arc<Inner>, req: Request<Incoming>) -> Result<HttpResponse, DropConnection> {
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, MAX_FILE_BYTES + 64 * 1024).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let (status, body) = error(413, "Maximum content size limit (26214400) exceeded.", None, None);
            return Ok(json_response(status, &body));
        }
    };
    let path = parts.uri.path().trim_end_matches('/').to_string();
    if let Some(answer) = inner.fault.control(&parts.method, &path, &bytes) {
        return Ok(answer);
    }
    let injected = inner.fault.inject().await?;
    match injected {
        Injected::Garbage => return Ok(garbage()),
        Injected::Status(status) => {
            let (status, body) =
                error(status, "The server had an error while processing your request. Sorry about that!", None, None);
            return Ok(json_response(status, &body));
        }
        Injected::None => {}
    }
    let authorization = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(refused) = authenticate(&inner.config, authorization.as_deref()) {
        return Ok(json_response(refused.0, &refused.1));
    }
    if parts.method == Method::GET && (path == "/v1/models" || path.starts_with("/v1/models/")) {
        let (status, body) = models(&inner.config, path.strip_prefix("/v1/models/"));
        return Ok(json_response(status, &body));
    }
    if !(parts.method == Method::POST && path == "/v1/audio/transcriptions") {
        let (status, body) = error(404, &format!("Invalid URL ({} {path})", parts.method), None, None);
        return Ok(json_response(status, &body));
    }
    let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let mut record = TranscriptionRequest {
        path,
        authorization,
        fields: BTreeMap::new(),
        file_name: None,
        file_type: None,
        file_bytes: 0,
        status: 0,
    };
    let outcome = match parse_multipart(&content_type, bytes).await {
        Err(answer) => Err(answer),
        Ok(upload) => {
            record.fields = upload.fields.clone();
            if let Some((name, kind, data)) = &upload.file {
                record.file_name = name.clone();
                record.file_type = kind.clone();
                record.file_bytes = data.len();
            }
            transcribe(&inner.config, upload)
        }
    };
    let response = match outcome {
        Ok(Answer::Json(body)) => json_response(200, &body),
        Ok(Answer::Text(text)) => {
            let mut r = Response::new(Full::new(Bytes::from(text)));
            r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            r
        }
        Err((status, body)) => json_response(status, &body),
    };
    record.status = response.status().as_u16();
    lock(&inner.requests).push(record);
    Ok(response)
}

fn authenticate(config: &OpenAiAsrSimConfig, authorization: Option<&str>) -> Option<(u16, Value)> {
    let key = config.api_key.as_ref()?;
    match authorization.and_then(|a| a.strip_prefix("Bearer ")) {
        None => Some(error(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            None,
            None,
        )),
        Some(sent) if sent != key => {
            let shown = format!("{}***{}", &sent[..sent.len().min(3)], &sent[sent.len().saturating_sub(2)..]);
            Some(error(401, &format!("Incorrect API key provided: {shown}."), None, Some("invalid_api_key")))
        }
        Some(_) => None,
    }
}

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": "system"})
}

fn models(config: &OpenAiAsrSimConfig, one: Option<&str>) -> (u16, Value) {
    match one {
        None => {
            (200, json!({"object": "list", "data": config.models.iter().map(|m| model_object(m)).collect::<Vec<_>>()}))
        }
        Some(id) if config.models.iter().any(|m| m == id) => (200, model_object(id)),
        Some(id) => error(404, &format!("The model '{id}' does not exist"), Some("model"), Some("model_not_found")),
    }
}

async fn parse_multipart(content_type: &str, bytes: Bytes) -> Result<Upload, (u16, Value)> {
    if !content_type.to_ascii_lowercase().starts_with("multipart/form-data") {
        return Err(error(
            400,
            &format!(
                "Invalid Content-Type header ({}), expected multipart/form-data. (HINT: If you're using curl, you can pass -H 'Content-Type: multipart/form-data')",
                if content_type.is_empty() { "none" } else { content_type }
            ),
            None,
            None,
        ));
    }
    let invalid = |e: multer::Error| error(400, &format!("Could not parse multipart form: {e}"), None, None);
    let boundary = multer::parse_boundary(content_type).map_err(invalid)?;
    let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(bytes) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut upload = Upload::default();
    while let Some(field) = multipart.next_field().await.map_err(invalid)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            let file_name = field.file_name().map(str::to_string);
            let kind = field.content_type().map(|m| m.to_string());
            let data = field.bytes().await.map_err(invalid)?;
            upload.file = Some((file_name, kind, data));
        } else {
            let value = field.text().await.map_err(invalid)?;
            upload.fields.insert(name, value);
        }
    }
    Ok(upload)
}

enum Answer {
    Json(Value),
    Text(String),
}

fn transcribe(config: &OpenAiAsrSimConfig, upload: Upload) -> Result<Answer, (u16, Value)> {
    let Some((file_name, _, data)) = upload.file else {
        return Err(error(
            400,
            "1 validation error for Request\nbody -> file\n  field required (type=value_error.missing)",
            None,
            None,
        ));
    };
    let Some(model) = upload.fields.get("model").filter(|m| !m.is_empty()) else {
        return Err(error(400, "you must provide a model parameter", None, None));
    };
    let extension = file_name.as_deref().and_then(|n| n.rsplit_once('.')).map(|(_, e)| e.to_ascii_lowercase());
    if !extension.as_deref().is_some_and(|e| FORMATS.contains(&e)) {
        return Err(error(400, &format!("Invalid file format. Supported formats: {FORMATS:?}"), None, None));
    }
    if let Some(language) = upload.fields.get("language")
        && !(language.len() == 2 && language.bytes().all(|b| b.is_ascii_lowercase()))
    {
        return Err(error(
            400,
            &format!("Invalid language '{language}'. Language parameter must be specified in ISO-639-1 format."),
            Some("language"),
            None,
        ));
    }
    if let Some(t) = upload.fields.get("temperature")
        && !t.parse::<f64>().is_ok_and(|t| (0.0..=1.0).contains(&t))
    {
        return Err(error(400, "Invalid 'temperature': expected a number from 0 to 1.", Some("temperature"), None));
    }
    let format = upload.fields.get("response_format").map(String::as_str).unwrap_or("json");
    match format {
        "json" | "text" => {}
        "srt" | "vtt" | "verbose_json" => {
            return Err(error(
                400,
                &format!("response_format {format} is not simulated"),
                Some("response_format"),
                None,
            ));
        }
        other => {
            return Err(error(
                400,
                &format!(
                    "Invalid value: '{other}'. Supported values are: 'json', 'text', 'srt', 'verbose_json', and 'vtt'."
                ),
                Some("response_format"),
                Some("invalid_value"),
            ));
        }
    }
    if !config.models.iter().any(|m| m == model) {
        return Err(error(
            404,
            &format!("The model `{model}` does not exist or you do not have access to it."),
            None,
            Some("model_not_found"),
        ));
    }
    // The simulator decodes WAV only; other formats are accepted as OpenAI
    // accepts them but cannot be heard.
    let (rate, samples) = if extension.as_deref() == Some("wav") {
        pcm_of_wav(&data).ok_or_else(|| {
            error(400, "The audio file could not be decoded or its format is not supported.", None, None)
        })?
    } else {
        return Err(error(400, "The simulator decodes only .wav (16-bit PCM mono) uploads.", Some("file"), None));
    };
    let text = config.book.transcribe(&samples, rate).map(|(text, _)| text).unwrap_or_default();
    let seconds = (samples.len() as f64 / f64::from(rate.max(1))).ceil();
    Ok(match format {
        "text" => Answer::Text(text),
        _ => Answer::Json(json!({"text": text, "usage": {"type": "duration", "seconds": seconds}})),
    })
}

/// The rate and samples of a 16-bit PCM mono WAV file.
fn pcm_of_wav(bytes: &[u8]) -> Option<(u32, Vec<i16>)> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let mut at = 12;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32_at(at + 4)? as usize;
        let body = at + 8;
        match id {
            b"fmt " => format = Some((u16_at(body)?, u16_at(body + 2)?, u32_at(body + 4)?, u16_at(body + 14)?)),
            b"data" => {
                let (encoding, channels, rate, bits) = format?;
                if encoding != 1 || channels != 1 || bits != 16 || rate == 0 {
                    return None;
                }
                let data = bytes.get(body..body.checked_add(size)?)?;
                if !data.len().is_multiple_of(2) {
                    return None;
                }
                return Some((rate, data.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()));
            }
            _ => {}
        }
        at = body.checked_add(size + (size & 1))?;
    }
    None
}
