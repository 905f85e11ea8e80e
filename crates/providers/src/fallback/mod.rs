//! Clients of the optional second opinions the voice dialog asks when its
//! own parser cannot resolve a caller's words: an LLM behind an
//! OpenAI-compatible chat endpoint ([`LlmClient`], vLLM in the user's
//! stack) and the user's NLU service ([`NluClient`]). Their answers are
//! proposals that `mangwale_voice::fallback` checks against the catalog;
//! these clients only speak the wire formats.
//!
//! Both sit on a live call's turn, so they are fast or nothing: one attempt
//! within a short timeout, no retries, and a circuit breaker that makes an
//! outage fail at once instead of costing every turn its timeout. Answers
//! are read with a size cap. API keys and callers' words never reach logs
//! or error messages.

mod llm;
mod nlu;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde::Serialize;
use tokio::time::Instant;
use url::Url;

use crate::jupiter::BreakerConfig;
use crate::jupiter::resilience::Breaker;

pub use llm::{LlmClient, LlmConfig};
pub use nlu::{NluClient, NluConfig, NluEntity, NluModifier, NluParse, NluRequest};

/// Largest answer read: a chat completion of a few hundred tokens, or an
/// NLU parse, is far below it.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Which service a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FallbackService {
    Llm,
    Nlu,
}

impl FallbackService {
    pub fn name(self) -> &'static str {
        match self {
            FallbackService::Llm => "llm",
            FallbackService::Nlu => "nlu",
        }
    }
}

impl fmt::Display for FallbackService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackErrorKind {
    /// No answer within the timeout.
    Timeout,
    /// No connection, 408, 429 or 5xx.
    Unavailable,
    /// The breaker is open after repeated failures: not sent.
    CircuitOpen,
    /// 4xx other than 408/429: our request or key was refused.
    Refused,
    /// 2xx with a body that is not the documented shape.
    BadResponse,
}

impl FallbackErrorKind {
    pub fn name(self) -> &'static str {
        match self {
            FallbackErrorKind::Timeout => "timeout",
            FallbackErrorKind::Unavailable => "unavailable",
            FallbackErrorKind::CircuitOpen => "circuit_open",
            FallbackErrorKind::Refused => "refused",
            FallbackErrorKind::BadResponse => "bad_response",
        }
    }
}

/// A failed request to the LLM or the NLU service. The message never holds
/// the API key or the caller's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service} {operation} failed ({}{}): {message}", kind.name(), status.map(|s| format!(", HTTP {s}")).unwrap_or_default())]
pub struct FallbackError {
    pub service: FallbackService,
    pub operation: &'static str,
    pub kind: FallbackErrorKind,
    pub status: Option<u16>,
    pub message: String,
}

/// The HTTP side both clients share: connection pool, timeouts, breaker,
/// metrics.
struct Endpoint {
    service: FallbackService,
    http: reqwest::Client,
    base: Url,
    api_key: Option<String>,
    timeout: Duration,
    breaker: Breaker,
}

/// One request.
struct Call<'a, B: Serialize> {
    operation: &'static str,
    method: Method,
    path: &'a str,
    body: Option<&'a B>,
    /// Health probes pass an open breaker: they are how it learns the
    /// service is back.
    bypass_breaker: bool,
}

impl Endpoint {
    fn new(
        service: FallbackService,
        base: Url,
        api_key: Option<String>,
        timeout: Duration,
        connect_timeout: Duration,
        breaker: BreakerConfig,
    ) -> Endpoint {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(connect_timeout.min(timeout))
            .user_agent(concat!("mangwale-exotel/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Endpoint { service, http, base, api_key, timeout, breaker: Breaker::new(breaker) }
    }

    fn error(
        &self,
        operation: &'static str,
        kind: FallbackErrorKind,
        status: Option<u16>,
        message: impl Into<String>,
    ) -> FallbackError {
        FallbackError { service: self.service, operation, kind, status, message: message.into() }
    }

    /// `{base}{path}`; `path` starts with `/`.
    fn url(&self, path: &str) -> Result<Url, FallbackError> {
        let joined = format!("{}{path}", self.base.as_str().trim_end_matches('/'));
        Url::parse(&joined).map_err(|e| self.error("config", FallbackErrorKind::Refused, None, format!("bad URL: {e}")))
    }

    /// Sends one request and returns the 2xx body.
    async fn send<B: Serialize>(&self, call: Call<'_, B>) -> Result<Bytes, FallbackError> {
        if !call.bypass_breaker
            && let Err(retry_in) = self.breaker.admit()
        {
            self.record(call.operation, "circuit_open", None);
            return Err(self.error(
                call.operation,
                FallbackErrorKind::CircuitOpen,
                None,
                format!("failing; circuit open for {} ms more", retry_in.as_millis()),
            ));
        }
        let started = Instant::now();
        let result = self.attempt(&call).await;
        metrics::histogram!("mangwale_fallback_request_seconds", "service" => self.service.name(), "op" => call.operation)
            .record(started.elapsed().as_secs_f64());
        match &result {
            Ok(_) => {
                self.breaker.success();
                self.record(call.operation, "ok", None);
            }
            Err(e) => {
                if matches!(e.kind, FallbackErrorKind::Timeout | FallbackErrorKind::Unavailable) {
                    self.breaker.failure();
                } else {
                    self.breaker.success();
                }
                self.record(call.operation, e.kind.name(), e.status);
            }
        }
        result
    }

    async fn attempt<B: Serialize>(&self, call: &Call<'_, B>) -> Result<Bytes, FallbackError> {
        let op = call.operation;
        let mut request = self
            .http
            .request(call.method.clone(), self.url(call.path)?)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = call.body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                self.error(
                    op,
                    FallbackErrorKind::Timeout,
                    None,
                    format!("no answer within {} ms", self.timeout.as_millis()),
                )
            } else if e.is_connect() {
                self.error(op, FallbackErrorKind::Unavailable, None, "connection refused or unreachable")
            } else {
                self.error(op, FallbackErrorKind::Unavailable, None, "request failed")
            }
        })?;
        let status = response.status().as_u16();
        let bytes = crate::body::read_capped(response, MAX_ANSWER_BYTES).await.map_err(|e| match e {
            crate::body::BodyError::TooLarge { .. } => {
                self.error(op, FallbackErrorKind::BadResponse, Some(status), e.to_string())
            }
            crate::body::BodyError::Read(e) if e.is_timeout() => {
                self.error(op, FallbackErrorKind::Timeout, Some(status), "the answer did not finish in time")
            }
            crate::body::BodyError::Read(_) => {
                self.error(op, FallbackErrorKind::Unavailable, Some(status), "the answer could not be read")
            }
        })?;
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let kind = if status == 408 || status == 429 || status >= 500 {
            FallbackErrorKind::Unavailable
        } else {
            FallbackErrorKind::Refused
        };
        // A refused key is described by its status only: some services
        // quote part of the key back.
        let message = if status == 401 || status == 403 {
            "the API key was refused".to_string()
        } else {
            error_message(&bytes).unwrap_or_else(|| format!("HTTP {status}"))
        };
        Err(self.error(op, kind, Some(status), message))
    }

    fn record(&self, operation: &'static str, outcome: &'static str, status: Option<u16>) {
        metrics::counter!("mangwale_fallback_requests_total",
            "service" => self.service.name(), "op" => operation, "outcome" => outcome)
        .increment(1);
        if outcome != "ok" {
            tracing::debug!(service = %self.service, op = operation, outcome, status, "fallback request failed");
        }
    }
}

/// OpenAI's `{"error": {"message"}}`, FastAPI's `{"detail"}`, or
/// `{"error": "…"}`, shortened, with phone numbers masked: it may quote
/// what we sent.
fn error_message(body: &[u8]) -> Option<String> {
    let body: serde_json::Value = serde_json::from_slice(body).ok()?;
    let message = body
        .pointer("/error/message")
        .or_else(|| body.get("error"))
        .or_else(|| body.get("detail"))
        .or_else(|| body.get("message"))?;
    let text = match message {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let short: String = text.chars().take(200).collect();
    Some(mangwale_core::mask_phone_numbers(&short).into_owned())
}
