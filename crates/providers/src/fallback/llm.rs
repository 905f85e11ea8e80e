//! An OpenAI-compatible chat completions endpoint (vLLM, or OpenAI itself):
//! `POST {LLM_URL}/v1/chat/completions` with `model`, a system and a user
//! message, `temperature: 0`, `max_tokens` and JSON mode
//! (`response_format: {"type": "json_object"}`, which both OpenAI and vLLM
//! take); the answer is `choices[0].message.content`. `GET /v1/models` is
//! the health probe: it proves the server answers and serves the model.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use url::Url;

use super::{Call, Endpoint, FallbackError, FallbackErrorKind, FallbackService};
use crate::jupiter::BreakerConfig;

#[derive(Clone)]
pub struct LlmConfig {
    /// `LLM_URL`: the server's root (`http://vllm:8000`); a trailing `/v1`
    /// is accepted too, as OpenAI clients write base URLs.
    pub url: Url,
    /// `LLM_MODEL`, as the server names it (`Qwen/Qwen2.5-7B-Instruct-AWQ`).
    pub model: String,
    /// `LLM_API_KEY`, sent as `Authorization: Bearer`.
    pub api_key: Option<String>,
    /// `LLM_TIMEOUT_MS`: the whole request, generation included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Enough for a handful of operations; a longer answer is cut off and
    /// so refused.
    pub max_tokens: u32,
    pub breaker: BreakerConfig,
}

impl LlmConfig {
    pub fn new(url: Url, model: impl Into<String>) -> LlmConfig {
        LlmConfig {
            url,
            model: model.into(),
            api_key: None,
            timeout: Duration::from_millis(2500),
            connect_timeout: Duration::from_millis(500),
            max_tokens: 400,
            breaker: BreakerConfig { failure_threshold: 3, open_for: Duration::from_secs(30) },
        }
    }
}

impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmConfig")
            .field("url", &self.url.as_str())
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The chat client. Cheap to clone; clones share the pool and the breaker.
#[derive(Clone)]
pub struct LlmClient {
    endpoint: Arc<Endpoint>,
    model: String,
    max_tokens: u32,
    /// `/v1`, or nothing when `LLM_URL` already ends with it.
    prefix: &'static str,
}

impl fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmClient").field("url", &self.endpoint.base.as_str()).field("model", &self.model).finish()
    }
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: [Message<'a>; 2],
    temperature: f32,
    max_tokens: u32,
    response_format: ResponseFormat,
    stream: bool,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct ResponseFormat {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: AssistantMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct AssistantMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    id: String,
}

impl LlmClient {
    pub fn new(config: LlmConfig) -> LlmClient {
        let prefix = if config.url.path().trim_end_matches('/').ends_with("/v1") { "" } else { "/v1" };
        let endpoint = Endpoint::new(
            FallbackService::Llm,
            config.url,
            config.api_key,
            config.timeout,
            config.connect_timeout,
            config.breaker,
        );
        LlmClient { endpoint: Arc::new(endpoint), model: config.model, max_tokens: config.max_tokens, prefix }
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// The server's URL as configured, for `/health`.
    pub fn url(&self) -> &Url {
        &self.endpoint.base
    }

    /// Asks for one JSON object and returns the assistant's content as
    /// text (its shape is the caller's to check). A cut-off or empty
    /// answer is a [`FallbackErrorKind::BadResponse`].
    pub async fn complete_json(&self, system: &str, user: &str) -> Result<String, FallbackError> {
        const OP: &str = "chat";
        let request = ChatRequest {
            model: &self.model,
            messages: [Message { role: "system", content: system }, Message { role: "user", content: user }],
            temperature: 0.0,
            max_tokens: self.max_tokens,
            response_format: ResponseFormat { kind: "json_object" },
            stream: false,
        };
        let path = format!("{}/chat/completions", self.prefix);
        let call =
            Call { operation: OP, method: Method::POST, path: &path, body: Some(&request), bypass_breaker: false };
        let body = self.endpoint.send(call).await?;
        let bad = |message: String| self.endpoint.error(OP, FallbackErrorKind::BadResponse, Some(200), message);
        let answer: ChatResponse =
            serde_json::from_slice(&body).map_err(|e| bad(format!("not a chat completion: {e}")))?;
        let choice = answer.choices.into_iter().next().ok_or_else(|| bad("no choices".into()))?;
        if choice.finish_reason.as_deref() == Some("length") {
            return Err(bad(format!("cut off at max_tokens ({})", self.max_tokens)));
        }
        match choice.message.content {
            Some(content) if !content.trim().is_empty() => Ok(content),
            _ => Err(bad("empty content".into())),
        }
    }

    /// `GET /v1/models`, once, past an open breaker: the round trip, or an
    /// error when the server does not answer or does not serve the model.
    pub async fn health(&self) -> Result<Duration, FallbackError> {
        const OP: &str = "health";
        let started = Instant::now();
        let path = format!("{}/models", self.prefix);
        let call = Call::<()> { operation: OP, method: Method::GET, path: &path, body: None, bypass_breaker: true };
        let body = self.endpoint.send(call).await?;
        let models: ModelList = serde_json::from_slice(&body).map_err(|e| {
            self.endpoint.error(OP, FallbackErrorKind::BadResponse, Some(200), format!("not a model list: {e}"))
        })?;
        if !models.data.iter().any(|m| m.id == self.model) {
            return Err(self.endpoint.error(
                OP,
                FallbackErrorKind::Refused,
                Some(200),
                format!("the server does not serve model {}", self.model),
            ));
        }
        Ok(started.elapsed())
    }
}
