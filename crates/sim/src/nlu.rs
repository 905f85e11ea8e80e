//! A simulator of the NLU service of the user's stack, speaking the small
//! contract of docs/voice.md ("Fallbacks and speech interfaces"), and
//! answering from a scripted table.
//!
//! | method | path | answer |
//! |---|---|---|
//! | POST | `/parse` | the first scripted answer whose needle is in `text`; default `{"intent": "unknown", "confidence": 0, "entities": []}` |
//! | GET | `/health` | `{"status": "ok"}` |
//!
//! `/parse` is as strict as a FastAPI service: a body that is not a JSON
//! object with a non-empty string `text`, a `language` among hi, mr, en,
//! hi-en, and a string `store_id` is a 422 with `{"detail": [{"loc",
//! "msg", "type"}]}` naming the field.

use std::sync::{Arc, Mutex};
use std::{fmt, io};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::clock::lock;
use crate::http::{DropConnection, LoopbackServer};

/// How the simulator answers a matching `/parse`.
#[derive(Debug, Clone, PartialEq)]
pub enum NluScript {
    /// 200 with this body.
    Parse(Value),
    /// 200 with this text as the body (not necessarily JSON).
    Raw(String),
    Status(u16),
    /// Never answer.
    Hang,
}

/// A `/parse` request as received.
#[derive(Debug, Clone, PartialEq)]
pub struct NluRequest {
    pub path: String,
    pub body: Option<Value>,
    pub status: Option<u16>,
}

#[derive(Default)]
struct State {
    table: Vec<(String, NluScript)>,
    requests: Vec<NluRequest>,
}

/// A running simulator; clones share it. Dropping the last clone stops it.
#[derive(Clone)]
pub struct NluSim {
    state: Arc<Mutex<State>>,
    server: LoopbackServer,
}

impl fmt::Debug for NluSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NluSim").field("addr", &self.server.addr()).finish_non_exhaustive()
    }
}

impl NluSim {
    pub async fn start() -> io::Result<NluSim> {
        let state = Arc::new(Mutex::new(State::default()));
        let handler = state.clone();
        let server = LoopbackServer::start("nlu sim", move |req| {
            let state = handler.clone();
            async move { handle(state, req).await }
        })
        .await?;
        Ok(NluSim { state, server })
    }

    /// `http://127.0.0.1:<port>`, as `NLU_URL` takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Answers `/parse` requests whose `text` contains `needle` with
    /// `script`; earlier rules win.
    pub fn answer(&self, needle: &str, script: NluScript) {
        lock(&self.state).table.push((needle.to_string(), script));
    }

    pub fn requests(&self) -> Vec<NluRequest> {
        lock(&self.state).requests.clone()
    }
}

fn respond(status: u16, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn unprocessable(field: &str, msg: &str) -> (u16, Bytes) {
    let body = json!({"detail": [{"loc": ["body", field], "msg": msg, "type": "value_error"}]});
    (422, Bytes::from(body.to_string()))
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, DropConnection> {
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, 1 << 20).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(respond(413, Bytes::from_static(br#"{"detail": "request too large"}"#))),
    };
    let path = parts.uri.path().to_string();
    if parts.method == Method::GET && path == "/health" {
        return Ok(respond(200, Bytes::from_static(br#"{"status": "ok"}"#)));
    }
    if !(parts.method == Method::POST && path == "/parse") {
        return Ok(respond(404, Bytes::from_static(br#"{"detail": "Not Found"}"#)));
    }
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    let seq = {
        let mut st = lock(&state);
        st.requests.push(NluRequest { path, body: parsed.clone(), status: None });
        st.requests.len() - 1
    };
    let (status, body) = match parse(&state, parsed) {
        Some(answer) => answer,
        None => std::future::pending().await,
    };
    lock(&state).requests[seq].status = Some(status);
    Ok(respond(status, body))
}

fn parse(state: &Mutex<State>, body: Option<Value>) -> Option<(u16, Bytes)> {
    let Some(Value::Object(request)) = body else {
        return Some(unprocessable("body", "value is not a valid dict"));
    };
    let text = match request.get("text").and_then(Value::as_str) {
        Some(t) if !t.trim().is_empty() => t.to_string(),
        Some(_) => return Some(unprocessable("text", "ensure this value has at least 1 characters")),
        None => return Some(unprocessable("text", "field required")),
    };
    if !matches!(request.get("language").and_then(Value::as_str), Some("hi" | "mr" | "en" | "hi-en")) {
        return Some(unprocessable("language", "value is not one of hi, mr, en, hi-en"));
    }
    if !request.get("store_id").is_some_and(Value::is_string) {
        return Some(unprocessable("store_id", "field required (a string)"));
    }
    let script = lock(state).table.iter().find(|(needle, _)| text.contains(needle.as_str())).map(|(_, s)| s.clone());
    match script {
        None => Some((200, Bytes::from(json!({"intent": "unknown", "confidence": 0.0, "entities": []}).to_string()))),
        Some(NluScript::Parse(body)) => Some((200, Bytes::from(body.to_string()))),
        Some(NluScript::Raw(text)) => Some((200, Bytes::from(text))),
        Some(NluScript::Status(status)) => Some((status, Bytes::from(json!({"detail": "internal error"}).to_string()))),
        Some(NluScript::Hang) => None,
    }
}
