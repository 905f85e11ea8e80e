//! A simulator of an OpenAI-compatible chat completions server (vLLM, or
//! OpenAI itself) that answers from a scripted table, for the voice
//! fallback's tests and the sandbox.
//!
//! | method | path | answer |
//! |---|---|---|
//! | POST | `/v1/chat/completions` | a `chat.completion` whose `choices[0].message.content` is the first scripted answer whose needle is in the last user message (default `{"ops": []}`) |
//! | GET | `/v1/models` | `{"object": "list", "data": [{"id", "object": "model", …}]}` |
//!
//! Requests are checked as OpenAI checks them, with its error bodies
//! (`{"error": {"message", "type", "param", "code"}}`): a body that is not
//! JSON, or without `model` or `messages`, or with a field OpenAI does not
//! know, is a 400; a model the server does not serve is a 404
//! `model_not_found`; JSON mode without the word "json" in the messages is
//! a 400; with an API key configured, a missing or wrong Bearer key is a
//! 401 that quotes part of the key back, as OpenAI does.

use std::sync::{Arc, Mutex};
use std::{fmt, io};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::clock::lock;
use crate::http::{DropConnection, LoopbackServer};

/// Configuration of an [`LlmSim`].
#[derive(Clone)]
pub struct LlmSimConfig {
    /// The models served (`GET /v1/models`); requests for others are 404.
    pub models: Vec<String>,
    /// The Bearer key required, if any.
    pub api_key: Option<String>,
}

impl Default for LlmSimConfig {
    fn default() -> Self {
        LlmSimConfig { models: vec![DEFAULT_MODEL.to_string()], api_key: None }
    }
}

impl fmt::Debug for LlmSimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmSimConfig")
            .field("models", &self.models)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The model the default configuration serves.
pub const DEFAULT_MODEL: &str = "mangwale-sim/qwen2.5-7b-instruct";

/// How the simulator answers a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LlmScript {
    /// A completion with this content (any text: valid JSON or not).
    Content(String),
    /// A completion cut off at `max_tokens` (`finish_reason: "length"`).
    Truncated(String),
    /// This status with an OpenAI error body.
    Status(u16),
    /// Never answer (the client's timeout ends it).
    Hang,
}

/// A request as received.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRequest {
    pub method: String,
    pub path: String,
    /// The `Authorization` header, as sent.
    pub authorization: Option<String>,
    pub body: Option<Value>,
    pub status: Option<u16>,
}

impl LlmRequest {
    /// The content of the message with this role, for chat requests.
    pub fn message(&self, role: &str) -> Option<&str> {
        self.body
            .as_ref()?
            .get("messages")?
            .as_array()?
            .iter()
            .rev()
            .find_map(|m| (m.get("role")?.as_str()? == role).then(|| m.get("content")?.as_str()).flatten())
    }
}

#[derive(Default)]
struct State {
    table: Vec<(String, LlmScript)>,
    requests: Vec<LlmRequest>,
    completions: u64,
}

struct Inner {
    config: LlmSimConfig,
    state: Mutex<State>,
}

/// A running simulator; clones share it. Dropping the last clone stops it.
#[derive(Clone)]
pub struct LlmSim {
    inner: Arc<Inner>,
    server: LoopbackServer,
}

impl fmt::Debug for LlmSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmSim").field("addr", &self.server.addr()).finish_non_exhaustive()
    }
}

impl LlmSim {
    /// Listens on a free loopback port.
    pub async fn start(config: LlmSimConfig) -> io::Result<LlmSim> {
        let inner = Arc::new(Inner { config, state: Mutex::new(State::default()) });
        let handler = inner.clone();
        let server = LoopbackServer::start("llm sim", move |req| {
            let inner = handler.clone();
            async move { handle(inner, req).await }
        })
        .await?;
        Ok(LlmSim { inner, server })
    }

    /// `http://127.0.0.1:<port>`: the server root, as `LLM_URL` takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Answers chat requests whose last user message contains `needle`
    /// with `script`; earlier rules win.
    pub fn answer(&self, needle: &str, script: LlmScript) {
        lock(&self.inner.state).table.push((needle.to_string(), script));
    }

    pub fn requests(&self) -> Vec<LlmRequest> {
        lock(&self.inner.state).requests.clone()
    }

    /// Completions answered (status 200) so far.
    pub fn completions(&self) -> u64 {
        lock(&self.inner.state).completions
    }
}

type HttpResponse = Response<Full<Bytes>>;

fn respond(status: u16, body: &Value) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// OpenAI's error body.
fn error(status: u16, message: &str, param: Option<&str>, code: Option<&str>) -> (u16, Value) {
    let kind = match status {
        401 => "invalid_request_error",
        429 => "rate_limit_exceeded",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    };
    (status, json!({"error": {"message": message, "type": kind, "param": param, "code": code}}))
}

/// The fields of a chat request OpenAI knows (the ones a client of ours
/// could send); anything else is "Unrecognized request argument".
const KNOWN_FIELDS: &[&str] = &[
    "model",
    "messages",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "response_format",
    "stream",
    "stop",
    "seed",
    "n",
    "presence_penalty",
    "frequency_penalty",
    "user",
];

async fn handle(inner: Arc<Inner>, req: Request<Incoming>) -> Result<HttpResponse, DropConnection> {
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, 4 << 20).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(respond(413, &json!({"error": {"message": "request too large"}}))),
    };
    let authorization = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let path = parts.uri.path().to_string();
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    let seq = {
        let mut st = lock(&inner.state);
        st.requests.push(LlmRequest {
            method: parts.method.to_string(),
            path: path.clone(),
            authorization: authorization.clone(),
            body: parsed.clone(),
            status: None,
        });
        st.requests.len() - 1
    };
    let outcome = answer(&inner, &parts.method, &path, authorization.as_deref(), parsed);
    let (status, body) = match outcome {
        Some(answer) => answer,
        // Hang: the client gives up and closes the connection.
        None => std::future::pending().await,
    };
    lock(&inner.state).requests[seq].status = Some(status);
    Ok(respond(status, &body))
}

/// The answer, or `None` to hang.
fn answer(
    inner: &Inner,
    method: &Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<Value>,
) -> Option<(u16, Value)> {
    let route = (method.clone(), path.trim_end_matches('/'));
    let chat = route == (Method::POST, "/v1/chat/completions");
    let models = route == (Method::GET, "/v1/models");
    if !chat && !models {
        return Some(error(404, &format!("Invalid URL ({method} {path})"), None, None));
    }
    if let Some(key) = &inner.config.api_key {
        match authorization.and_then(|a| a.strip_prefix("Bearer ")) {
            None => {
                return Some(error(
                    401,
                    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    None,
                    None,
                ));
            }
            Some(sent) if sent != key => {
                let shown = format!("{}***{}", &sent[..sent.len().min(3)], &sent[sent.len().saturating_sub(2)..]);
                return Some(error(
                    401,
                    &format!("Incorrect API key provided: {shown}."),
                    None,
                    Some("invalid_api_key"),
                ));
            }
            Some(_) => {}
        }
    }
    if models {
        let data: Vec<Value> = inner
            .config
            .models
            .iter()
            .map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "vllm"}))
            .collect();
        return Some((200, json!({"object": "list", "data": data})));
    }
    let Some(Value::Object(request)) = body else {
        return Some(error(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
            None,
            None,
        ));
    };
    if let Some(unknown) = request.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str())) {
        return Some(error(400, &format!("Unrecognized request argument supplied: {unknown}"), None, None));
    }
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return Some(error(400, "you must provide a model parameter", None, None));
    };
    let Some(messages) = request.get("messages") else {
        return Some(error(
            400,
            "Missing required parameter: 'messages'.",
            Some("messages"),
            Some("missing_required_parameter"),
        ));
    };
    let Some(messages) = messages.as_array().filter(|m| !m.is_empty()) else {
        return Some(error(400, "Invalid 'messages': expected a non-empty array.", Some("messages"), None));
    };
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str);
        if !matches!(role, Some("system" | "user" | "assistant" | "developer" | "tool")) {
            return Some(error(
                400,
                &format!("Invalid value for 'messages[{i}].role'."),
                Some(&format!("messages[{i}].role")),
                None,
            ));
        }
        if !m.get("content").is_some_and(Value::is_string) {
            return Some(error(
                400,
                &format!("Invalid type for 'messages[{i}].content'."),
                Some(&format!("messages[{i}].content")),
                None,
            ));
        }
    }
    if let Some(t) = request.get("temperature")
        && !t.as_f64().is_some_and(|t| (0.0..=2.0).contains(&t))
    {
        return Some(error(400, "Invalid 'temperature': expected a number from 0 to 2.", Some("temperature"), None));
    }
    if let Some(n) = request.get("max_tokens")
        && n.as_u64().is_none_or(|n| n == 0)
    {
        return Some(error(400, "Invalid 'max_tokens': expected an integer of at least 1.", Some("max_tokens"), None));
    }
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        return Some(error(400, "stream is not simulated", Some("stream"), None));
    }
    let json_mode = match request.get("response_format") {
        None => false,
        Some(format) => match format.get("type").and_then(Value::as_str) {
            Some("json_object") => true,
            Some("text" | "json_schema") => false,
            _ => return Some(error(400, "Invalid 'response_format.type'.", Some("response_format.type"), None)),
        },
    };
    let all_text: String = messages.iter().filter_map(|m| m.get("content")?.as_str()).collect::<Vec<_>>().join("\n");
    if json_mode && !all_text.to_lowercase().contains("json") {
        return Some(error(
            400,
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
            Some("messages"),
            None,
        ));
    }
    if !inner.config.models.iter().any(|m| m == model) {
        return Some(error(
            404,
            &format!("The model `{model}` does not exist or you do not have access to it."),
            None,
            Some("model_not_found"),
        ));
    }
    let user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content")?.as_str())
        .unwrap_or_default()
        .to_string();
    let script = {
        let st = lock(&inner.state);
        st.table.iter().find(|(needle, _)| user.contains(needle.as_str())).map(|(_, s)| s.clone())
    };
    let (content, finish) = match script.unwrap_or_else(|| LlmScript::Content(r#"{"ops": []}"#.into())) {
        LlmScript::Content(c) => (c, "stop"),
        LlmScript::Truncated(c) => (c, "length"),
        LlmScript::Status(status) => {
            return Some(error(status, "The server had an error while processing your request.", None, None));
        }
        LlmScript::Hang => return None,
    };
    let n = {
        let mut st = lock(&inner.state);
        st.completions += 1;
        st.completions
    };
    let prompt_tokens = all_text.split_whitespace().count();
    let completion_tokens = content.split_whitespace().count();
    Some((
        200,
        json!({
            "id": format!("chatcmpl-sim-{n}"),
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": null, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
        }),
    ))
}
