//! A simulator of the user's TTS server (`TTS_URL`), as strict as the
//! contract the incumbent service calls it by (skyagarwal/mercury,
//! `voice-streaming.service.js`) and as its FastAPI servers answer.
//!
//! | method | path | answer |
//! |---|---|---|
//! | POST | `/synthesize` | the text "spoken" as raw audio at the asked rate (`application/octet-stream`) |
//! | GET | `/health` | `{"status": "healthy", …}` |
//!
//! The request must be `Content-Type: application/json`, an object with
//! exactly the fields `text` (non-empty string), `language` (`hi`, `mr` or
//! `en`), `voice` (a string, or null), `format` (`"raw"`), `sampleRate` (the
//! number 8000 or 16000, not a string) and `encoding` (`"linear16"`: 16-bit
//! little-endian PCM; or `"mulaw"`: G.711 µ-law). A missing, mistyped or
//! unknown field is a 422 in FastAPI's shape (`{"detail": [{"loc", "msg",
//! "type"}]}`); a value the server does not serve (another language, rate,
//! encoding or format) is a 400 `{"detail": "…"}`.
//!
//! The audio is deterministic stand-in speech: a tone per character (the
//! same as the Exotel simulator's callers), so that tests can tell what was
//! said from how long it is. Faults ([`TtsFault`]) make it drop
//! connections, answer a status, hang, answer late, answer garbage or a JSON
//! body with status 200, or answer a WAV container (as the incumbent's
//! servers do whatever the format asked). They are set from Rust
//! ([`TtsSim::set_fault`]) or over HTTP, in the same shape as the simulated
//! ASR servers:
//!
//! | method | path | body |
//! |---|---|---|
//! | POST | `/_sim/fault` | `{"kind": "down"}`, `{"kind": "status", "status": 503}`, `{"kind": "slow", "ms": 8000}`, `{"kind": "garbage"}`, `{"kind": "hang"}`, `{"kind": "json_body"}`, `{"kind": "wav"}` |
//! | DELETE | `/_sim/fault` | clears it |
//! | GET | `/_sim/fault` | the current fault |
//!
//! A fault applies to every request but the control ones until cleared;
//! `down`, `status`, `slow` and `hang` reach the health probe too.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::{fmt, io};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::lock;
use crate::exotel::audio;
use crate::http::{DropConnection, LoopbackServer};

/// The languages the simulated server speaks.
pub const LANGUAGES: &[&str] = &["hi", "mr", "en"];
/// The rates it renders.
pub const SAMPLE_RATES: &[u64] = &[8000, 16000];
/// The encodings of raw audio it writes.
pub const ENCODINGS: &[&str] = &["linear16", "mulaw"];
/// How long each character of the text sounds.
pub const PER_CHAR: Duration = Duration::from_millis(40);
/// The longest text it renders (longer is a 400, as a real server limits it).
pub const MAX_TEXT_CHARS: usize = 2_000;

/// A failure the simulator plays instead of answering well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TtsFault {
    /// Closes every connection unanswered (a crashed or unreachable server).
    Down,
    /// This status with a `{"detail"}` body (503: "TTS models not loaded").
    Status { status: u16 },
    /// Answers normally after this many milliseconds.
    Slow { ms: u64 },
    /// 200 with an odd number of bytes (not 16-bit samples).
    Garbage,
    /// Never answers (the client's timeout ends it).
    Hang,
    /// 200 with a JSON error body (`application/json`).
    JsonBody,
    /// 200 with a WAV container (16-bit, the asked rate) instead of raw.
    Wav,
}

/// A request as received.
#[derive(Debug, Clone, PartialEq)]
pub struct TtsRequest {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub body: Option<Value>,
    /// The status answered (`None` while hanging or when dropped).
    pub status: Option<u16>,
}

impl TtsRequest {
    /// A string field of the JSON body.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.body.as_ref()?.get(name)?.as_str()
    }
}

#[derive(Default)]
struct State {
    fault: Option<TtsFault>,
    requests: Vec<TtsRequest>,
    syntheses: u64,
}

/// A running simulator; clones share it. Dropping the last clone stops it.
#[derive(Clone)]
pub struct TtsSim {
    state: Arc<Mutex<State>>,
    server: LoopbackServer,
}

impl fmt::Debug for TtsSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TtsSim").field("addr", &self.server.addr()).finish_non_exhaustive()
    }
}

impl TtsSim {
    /// Listens on a free loopback port.
    pub async fn start() -> io::Result<TtsSim> {
        let state = Arc::new(Mutex::new(State::default()));
        let handler = state.clone();
        let server = LoopbackServer::start("tts sim", move |req| {
            let state = handler.clone();
            async move { handle(state, req).await }
        })
        .await?;
        Ok(TtsSim { state, server })
    }

    /// `http://127.0.0.1:<port>`: the server root, as `TTS_URL` takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Plays `fault` on every request from now on (`None`: answer well).
    pub fn set_fault(&self, fault: Option<TtsFault>) {
        lock(&self.state).fault = fault;
    }

    pub fn requests(&self) -> Vec<TtsRequest> {
        lock(&self.state).requests.clone()
    }

    /// Texts rendered with status 200 so far.
    pub fn syntheses(&self) -> u64 {
        lock(&self.state).syntheses
    }

    /// The samples the simulator renders for `text` at `rate` Hz: what a
    /// test compares an answer with.
    pub fn render(text: &str, rate: u32) -> Vec<i16> {
        audio::synthesize(text, rate, PER_CHAR)
    }
}

type HttpResponse = Response<Full<Bytes>>;

fn respond(status: u16, content_type: &'static str, body: Vec<u8>) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_response(status: u16, body: &Value) -> HttpResponse {
    respond(status, "application/json", body.to_string().into_bytes())
}

/// FastAPI's validation error: 422 with one entry per failed field.
fn invalid(field: &str, msg: &str, kind: &str) -> (u16, Value) {
    (422, json!({"detail": [{"loc": ["body", field], "msg": msg, "type": kind}]}))
}

/// An answer, decided before any fault or delay is played.
enum Answer {
    Json(u16, Value),
    Audio { samples: Vec<i16>, rate: u32, encoding: &'static str },
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Result<HttpResponse, DropConnection> {
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, 1 << 20).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(json_response(413, &json!({"detail": "request too large"}))),
    };
    let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    let path = parts.uri.path().trim_end_matches('/').to_string();
    let (seq, fault) = {
        let mut st = lock(&state);
        st.requests.push(TtsRequest {
            method: parts.method.to_string(),
            path: path.clone(),
            content_type: content_type.clone(),
            body: parsed.clone(),
            status: None,
        });
        (st.requests.len() - 1, st.fault.clone())
    };
    if path == "/_sim/fault" {
        let mut st = lock(&state);
        let (status, body) = match parts.method {
            Method::POST => match serde_json::from_slice::<TtsFault>(&bytes) {
                Ok(fault) => {
                    st.fault = Some(fault.clone());
                    (200, json!({"fault": fault}))
                }
                Err(e) => (400, json!({"error": format!("not a fault: {e}")})),
            },
            Method::DELETE => {
                st.fault = None;
                (200, json!({"fault": null}))
            }
            Method::GET => (200, json!({"fault": st.fault})),
            _ => (405, json!({"error": "use GET, POST or DELETE"})),
        };
        st.requests[seq].status = Some(status);
        return Ok(json_response(status, &body));
    }
    // Faults that reach every request, the health probe included.
    match &fault {
        Some(TtsFault::Down) => return Err(DropConnection),
        Some(TtsFault::Hang) => std::future::pending::<()>().await,
        Some(TtsFault::Slow { ms }) => tokio::time::sleep(Duration::from_millis(*ms)).await,
        _ => {}
    }
    let answer = match (&parts.method, path.as_str()) {
        (&Method::GET, "/health") => Answer::Json(200, json!({"status": "healthy", "languages": LANGUAGES})),
        (&Method::POST, "/synthesize") => validate(content_type.as_deref(), parsed),
        (_, "/synthesize" | "/health") => Answer::Json(405, json!({"detail": "Method Not Allowed"})),
        _ => Answer::Json(404, json!({"detail": "Not Found"})),
    };
    let synthesis = matches!(answer, Answer::Audio { .. });
    let response = match (fault, answer) {
        (Some(TtsFault::Status { status }), _) => {
            let detail = if status == 503 { "TTS models not loaded" } else { "injected failure" };
            json_response(status, &json!({"detail": detail}))
        }
        (Some(TtsFault::Garbage), Answer::Audio { .. }) => {
            respond(200, "application/octet-stream", vec![0x52, 0x00, 0x7f])
        }
        (Some(TtsFault::JsonBody), Answer::Audio { .. }) => {
            json_response(200, &json!({"error": "synthesis failed", "audio": null}))
        }
        (Some(TtsFault::Wav), Answer::Audio { samples, rate, .. }) => {
            respond(200, "audio/wav", audio::wav(&audio::to_le_bytes(&samples), rate))
        }
        (_, Answer::Audio { samples, encoding, .. }) => {
            let body = match encoding {
                "mulaw" => samples.iter().map(|s| linear_to_ulaw(*s)).collect(),
                _ => audio::to_le_bytes(&samples),
            };
            respond(200, "application/octet-stream", body)
        }
        (_, Answer::Json(status, body)) => json_response(status, &body),
    };
    let status = response.status().as_u16();
    let mut st = lock(&state);
    st.requests[seq].status = Some(status);
    if status == 200 && synthesis {
        st.syntheses += 1;
    }
    Ok(response)
}

/// The request checked field by field, as the server's pydantic model and
/// its handler would.
fn validate(content_type: Option<&str>, parsed: Option<Value>) -> Answer {
    let json_type = content_type.is_some_and(|c| c.split(';').next().unwrap_or("").trim() == "application/json");
    let reject = |(status, body): (u16, Value)| Answer::Json(status, body);
    if !json_type {
        return reject(invalid(
            "",
            "Input should be a valid dictionary or object to extract fields from",
            "model_attributes_type",
        ));
    }
    let Some(Value::Object(request)) = parsed else {
        return reject((
            422,
            json!({"detail": [{"loc": ["body", 0], "msg": "JSON decode error", "type": "json_invalid"}]}),
        ));
    };
    const FIELDS: &[&str] = &["text", "language", "voice", "format", "sampleRate", "encoding"];
    if let Some(unknown) = request.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return reject(invalid(unknown, "Extra inputs are not permitted", "extra_forbidden"));
    }
    for field in FIELDS {
        if *field != "voice" && !request.contains_key(*field) {
            return reject(invalid(field, "Field required", "missing"));
        }
    }
    for field in ["text", "language", "format", "encoding"] {
        if !request[field].is_string() {
            return reject(invalid(field, "Input should be a valid string", "string_type"));
        }
    }
    if let Some(voice) = request.get("voice")
        && !(voice.is_string() || voice.is_null())
    {
        return reject(invalid("voice", "Input should be a valid string", "string_type"));
    }
    let Some(rate) = request["sampleRate"].as_u64() else {
        return reject(invalid("sampleRate", "Input should be a valid integer", "int_type"));
    };
    let text = request["text"].as_str().unwrap_or_default();
    let language = request["language"].as_str().unwrap_or_default();
    let format = request["format"].as_str().unwrap_or_default();
    let encoding = request["encoding"].as_str().unwrap_or_default();
    if text.trim().is_empty() {
        return reject((400, json!({"detail": "text is empty"})));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return reject((400, json!({"detail": format!("text longer than {MAX_TEXT_CHARS} characters")})));
    }
    if !LANGUAGES.contains(&language) {
        return reject((400, json!({"detail": format!("Unsupported language: {language}")})));
    }
    if format != "raw" {
        return reject((400, json!({"detail": format!("Unsupported format: {format} (this server streams raw)")})));
    }
    if !SAMPLE_RATES.contains(&rate) {
        return reject((400, json!({"detail": format!("Unsupported sampleRate: {rate}")})));
    }
    let Some(encoding) = ENCODINGS.iter().find(|e| **e == encoding) else {
        return reject((400, json!({"detail": format!("Unsupported encoding: {encoding}")})));
    };
    let rate = rate as u32;
    Answer::Audio { samples: TtsSim::render(text, rate), rate, encoding }
}

/// G.711 µ-law encoding of one sample (ITU-T G.711, with the bias of 0x84).
fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    let s = s.min(CLIP) + BIAS;
    let top = (s >> 7) as u32;
    let exponent = if top == 0 { 0 } else { (31 - top.leading_zeros()) as i32 };
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mangwale_speech::tts_http::{TtsEncoding, TtsHttp};
    use mangwale_voice::catalog::Lang;
    use mangwale_voice::speech::{SampleRate, SpeechError, Synthesizer};

    #[test]
    fn mulaw_encodes_as_g711() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        for s in [-20_000_i16, -300, 0, 5, 1000, 31_000] {
            let back = mangwale_speech::audio::ulaw_to_linear(linear_to_ulaw(s));
            assert!((i32::from(back) - i32::from(s)).abs() <= i32::from(s).abs() / 16 + 8, "{s} -> {back}");
        }
    }

    fn client(sim: &TtsSim) -> TtsHttp {
        TtsHttp::new(&sim.url(), None, Duration::from_secs(5)).unwrap()
    }

    #[tokio::test]
    async fn the_client_speaks_the_incumbents_protocol() {
        let sim = TtsSim::start().await.unwrap();
        let tts = client(&sim);
        let audio = tts.synthesize("Aapka order ho gaya.", Lang::HiEn, SampleRate::Hz8000).await.unwrap();
        let sent = "आपका ऑर्डर हो गया.";
        assert_eq!(audio.sample_rate, SampleRate::Hz8000);
        assert_eq!(audio.samples, TtsSim::render(sent, 8000));
        let request = sim.requests().pop().unwrap();
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/synthesize"));
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
        assert_eq!(
            request.body.unwrap(),
            json!({"text": sent, "language": "hi", "voice": "female", "format": "raw", "sampleRate": 8000, "encoding": "linear16"})
        );
        assert_eq!(request.status, Some(200));

        // English as written, a configured voice, 16 kHz.
        let tts =
            TtsHttp::new(&format!("{}/", sim.url()), Some("kokoro-af_heart".into()), Duration::from_secs(5)).unwrap();
        let audio = tts.synthesize("Your order is placed.", Lang::En, SampleRate::Hz16000).await.unwrap();
        assert_eq!(audio.samples, TtsSim::render("Your order is placed.", 16000));
        let request = sim.requests().pop().unwrap();
        assert_eq!(request.field("voice"), Some("kokoro-af_heart"));
        assert_eq!(request.body.unwrap()["sampleRate"], 16000);

        // The incumbent's µ-law, decoded back to samples of the same length.
        let tts = client(&sim).with_encoding(TtsEncoding::Mulaw);
        let audio = tts.synthesize("नमस्कार", Lang::Mr, SampleRate::Hz8000).await.unwrap();
        assert_eq!(audio.samples.len(), TtsSim::render("नमस्कार", 8000).len());
        assert_eq!(sim.requests().pop().unwrap().field("encoding"), Some("mulaw"));
        assert_eq!(sim.syntheses(), 3);
        assert!(tts.check().await.is_ok());
    }

    #[tokio::test]
    async fn faults_become_the_right_speech_errors() {
        let sim = TtsSim::start().await.unwrap();
        let tts = TtsHttp::new(&sim.url(), None, Duration::from_millis(300)).unwrap();
        let say = || tts.synthesize("Theek hai.", Lang::HiEn, SampleRate::Hz8000);

        sim.set_fault(Some(TtsFault::Down));
        assert!(matches!(say().await, Err(SpeechError::Unavailable(_))));
        assert!(matches!(tts.check().await, Err(SpeechError::Unavailable(_))));
        sim.set_fault(Some(TtsFault::Status { status: 503 }));
        assert!(matches!(say().await, Err(SpeechError::Unavailable(_))));
        assert!(matches!(tts.check().await, Err(SpeechError::Unavailable(_))));
        sim.set_fault(Some(TtsFault::Status { status: 400 }));
        assert!(matches!(say().await, Err(SpeechError::Unsupported(_))));
        sim.set_fault(Some(TtsFault::Hang));
        assert_eq!(say().await, Err(SpeechError::Timeout { after_ms: 300 }));
        sim.set_fault(Some(TtsFault::Garbage));
        assert!(matches!(say().await, Err(SpeechError::BadResponse(_))));
        sim.set_fault(Some(TtsFault::JsonBody));
        assert!(matches!(say().await, Err(SpeechError::BadResponse(_))));
        // Answers that still play.
        sim.set_fault(Some(TtsFault::Wav));
        assert_eq!(say().await.unwrap().samples, TtsSim::render("ठीक है.", 8000));
        sim.set_fault(Some(TtsFault::Slow { ms: 5 }));
        assert_eq!(say().await.unwrap().samples, TtsSim::render("ठीक है.", 8000));
        sim.set_fault(None);
        assert!(tts.check().await.is_ok());
    }

    #[tokio::test]
    async fn faults_are_set_over_http_too() {
        let sim = TtsSim::start().await.unwrap();
        let http = reqwest::Client::new();
        let control = format!("{}/_sim/fault", sim.url());
        let set = http.post(&control).json(&json!({"kind": "status", "status": 503})).send().await.unwrap();
        assert_eq!(set.status(), 200);
        let tts = client(&sim);
        assert!(matches!(
            tts.synthesize("Theek hai.", Lang::HiEn, SampleRate::Hz8000).await,
            Err(SpeechError::Unavailable(_))
        ));
        let now: Value = http.get(&control).send().await.unwrap().json().await.unwrap();
        assert_eq!(now, json!({"fault": {"kind": "status", "status": 503}}));
        assert_eq!(http.post(&control).json(&json!({"kind": "melt"})).send().await.unwrap().status(), 400);
        assert_eq!(http.delete(&control).send().await.unwrap().status(), 200);
        assert!(tts.synthesize("Theek hai.", Lang::HiEn, SampleRate::Hz8000).await.is_ok());
    }

    #[tokio::test]
    async fn requests_are_checked_as_the_server_checks_them() {
        let sim = TtsSim::start().await.unwrap();
        let http = reqwest::Client::new();
        let post = |body: Value| http.post(format!("{}/synthesize", sim.url())).json(&body).send();
        let good = json!({"text": "नमस्ते", "language": "hi", "voice": null, "format": "raw", "sampleRate": 8000, "encoding": "linear16"});
        let with = |field: &str, value: Value| {
            let mut body = good.clone();
            body[field] = value;
            body
        };
        assert_eq!(post(good.clone()).await.unwrap().status(), 200);
        for (body, status) in [
            (with("sampleRate", json!("8000")), 422),
            (with("text", json!(42)), 422),
            (with("speed", json!(1.0)), 422),
            (with("format", json!("wav")), 400),
            (with("language", json!("hi-IN")), 400),
            (with("sampleRate", json!(22050)), 400),
            (with("encoding", json!("pcm_s16le")), 400),
            (with("text", json!("  ")), 400),
        ] {
            let response = post(body.clone()).await.unwrap();
            assert_eq!(response.status(), status, "{body}");
            let detail: Value = response.json().await.unwrap();
            assert!(detail.get("detail").is_some(), "{detail}");
        }
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("encoding");
        assert_eq!(post(missing).await.unwrap().status(), 422);
        let form = http.post(format!("{}/synthesize", sim.url())).body(good.to_string()).send().await.unwrap();
        assert_eq!(form.status(), 422, "a body without Content-Type: application/json");
        let get = http.get(format!("{}/synthesize", sim.url())).send().await.unwrap();
        assert_eq!(get.status(), 405);
        assert_eq!(sim.syntheses(), 1);
    }
}
