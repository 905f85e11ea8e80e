//! A simulator of the user's own ASR server (faster-whisper behind FastAPI,
//! port 7001 in the incumbent's stack), as the incumbent calls it, that
//! answers from a [`TranscriptBook`].
//!
//! | method | path | answer |
//! |---|---|---|
//! | POST | `/transcribe` | `{"text", "isFinal": true, "language", "confidence", "provider": "sim"}`; empty `text` when no registered utterance is in the audio (silence, unknown speech) |
//! | GET | `/health` | `{"status": "healthy", "provider": "sim"}` |
//!
//! `/transcribe` checks what the incumbent sends, with FastAPI's error
//! bodies (`{"detail": …}`): `Content-Type` other than `audio/raw` is a 415;
//! a missing or unsupported `X-Sample-Rate` (8000 or 16000) or `X-Language`
//! (`hi-IN`, `mr-IN`, `en-IN`, or a bare `hi`, `mr`, `en`) is a 422 naming
//! the header; an empty body or an odd number of bytes (not 16-bit
//! samples) is a 400; more than 30 s of audio is a 413.
//!
//! Faults ([`SpeechFault`]) are injected with [`AsrSim::set_fault`] or
//! `POST /_sim/fault`.

use std::sync::{Arc, Mutex};
use std::{fmt, io};

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::json;

use super::faults::{FaultSlot, HttpResponse, Injected, SpeechFault, garbage, json_response};
use super::transcripts::TranscriptBook;
use crate::clock::lock;
use crate::http::{DropConnection, LoopbackServer};

/// The longest utterance accepted, in seconds.
pub const MAX_SECONDS: usize = 30;

/// A `/transcribe` request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsrRequest {
    pub content_type: Option<String>,
    pub language: Option<String>,
    pub sample_rate: Option<String>,
    /// The body's length in bytes.
    pub bytes: usize,
    pub status: u16,
    /// The text answered (on 200).
    pub text: Option<String>,
}

struct Inner {
    book: TranscriptBook,
    fault: FaultSlot,
    requests: Mutex<Vec<AsrRequest>>,
}

/// A running simulator; clones share it. Dropping the last clone stops it.
#[derive(Clone)]
pub struct AsrSim {
    inner: Arc<Inner>,
    server: LoopbackServer,
}

impl fmt::Debug for AsrSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsrSim").field("addr", &self.server.addr()).finish_non_exhaustive()
    }
}

impl AsrSim {
    /// Listens on a free loopback port, transcribing from `book`.
    pub async fn start(book: TranscriptBook) -> io::Result<AsrSim> {
        let inner = Arc::new(Inner { book, fault: FaultSlot::default(), requests: Mutex::new(Vec::new()) });
        let handler = inner.clone();
        let server = LoopbackServer::start("asr sim", move |req| {
            let inner = handler.clone();
            async move { handle(inner, req).await }
        })
        .await?;
        Ok(AsrSim { inner, server })
    }

    /// `http://127.0.0.1:<port>`, as `ASR_URL` takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The book it transcribes from (the same one, shared).
    pub fn book(&self) -> &TranscriptBook {
        &self.inner.book
    }

    /// Injects `fault` until cleared with `None`.
    pub fn set_fault(&self, fault: Option<SpeechFault>) {
        self.inner.fault.set(fault);
    }

    pub fn requests(&self) -> Vec<AsrRequest> {
        lock(&self.inner.requests).clone()
    }
}

fn detail(status: u16, detail: serde_json::Value) -> (u16, serde_json::Value) {
    (status, json!({"detail": detail}))
}

/// FastAPI's 422 for a missing or invalid header.
fn header_error(name: &str, msg: &str, kind: &str) -> (u16, serde_json::Value) {
    detail(422, json!([{"loc": ["header", name], "msg": msg, "type": kind}]))
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
}

async fn handle(inner: Arc<Inner>, req: Request<Incoming>) -> Result<HttpResponse, DropConnection> {
    let (parts, body) = req.into_parts();
    // 30 s at 16 kHz, and some slack for the check below to answer 413.
    let limit = MAX_SECONDS * 16_000 * 2 + 1024;
    let bytes: Bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(json_response(413, &json!({"detail": "audio longer than 30 s"}))),
    };
    let path = parts.uri.path().to_string();
    if let Some(answer) = inner.fault.control(&parts.method, &path, &bytes) {
        return Ok(answer);
    }
    let injected = inner.fault.inject().await?;
    let route = (&parts.method, path.trim_end_matches('/'));
    if route == (&Method::GET, "/health") {
        return Ok(match injected {
            Injected::Status(status) => json_response(status, &json!({"detail": "service unavailable"})),
            Injected::Garbage => garbage(),
            Injected::None => json_response(200, &json!({"status": "healthy", "provider": "sim"})),
        });
    }
    if route != (&Method::POST, "/transcribe") {
        return Ok(json_response(404, &json!({"detail": "Not Found"})));
    }
    let mut record = AsrRequest {
        content_type: header(&parts.headers, "content-type"),
        language: header(&parts.headers, "x-language"),
        sample_rate: header(&parts.headers, "x-sample-rate"),
        bytes: bytes.len(),
        status: 0,
        text: None,
    };
    let (status, body) = match injected {
        Injected::Garbage => {
            record.status = 200;
            lock(&inner.requests).push(record);
            return Ok(garbage());
        }
        Injected::Status(status) => detail(status, json!("transcription failed")),
        Injected::None => transcribe(&inner.book, &record, &bytes),
    };
    record.status = status;
    record.text = body.get("text").and_then(|t| t.as_str()).map(str::to_string);
    lock(&inner.requests).push(record);
    Ok(json_response(status, &body))
}

fn transcribe(book: &TranscriptBook, request: &AsrRequest, bytes: &[u8]) -> (u16, serde_json::Value) {
    let media = request.content_type.as_deref().map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if media.as_deref() != Some("audio/raw") {
        return detail(
            415,
            json!(format!("Unsupported Media Type: expected audio/raw, got {}", media.as_deref().unwrap_or("none"))),
        );
    }
    let rate = match request.sample_rate.as_deref() {
        None => return header_error("x-sample-rate", "field required", "value_error.missing"),
        Some(r) => match r.parse::<u32>() {
            Ok(rate @ (8000 | 16000)) => rate,
            _ => return header_error("x-sample-rate", "unsupported sample rate: 8000 or 16000", "value_error"),
        },
    };
    let language = match request.language.as_deref() {
        None => return header_error("x-language", "field required", "value_error.missing"),
        Some(tag @ ("hi-IN" | "mr-IN" | "en-IN" | "hi" | "mr" | "en")) => tag.to_string(),
        Some(_) => return header_error("x-language", "unsupported language: hi-IN, mr-IN or en-IN", "value_error"),
    };
    if bytes.is_empty() {
        return detail(400, json!("empty audio"));
    }
    if !bytes.len().is_multiple_of(2) {
        return detail(400, json!("audio/raw must be 16-bit PCM: an even number of bytes"));
    }
    if bytes.len() > MAX_SECONDS * rate as usize * 2 {
        return detail(413, json!("audio longer than 30 s"));
    }
    let samples: Vec<i16> = bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    let duration = samples.len() as f64 / f64::from(rate);
    match book.transcribe(&samples, rate) {
        Some((text, spoken)) => (
            200,
            json!({"text": text, "isFinal": true, "language": spoken, "confidence": 1.0, "provider": "sim", "duration": duration}),
        ),
        None => (
            200,
            json!({"text": "", "isFinal": true, "language": language, "confidence": 0.0, "provider": "sim", "duration": duration}),
        ),
    }
}
