//! The user's NLU service (`NLU_URL`). The old service (mercury) only
//! probed its `/health` and never documented a parse call, so the contract
//! is ours, kept small (docs/voice.md, "Fallbacks and speech interfaces"):
//!
//! `POST {NLU_URL}/parse` `{"text", "language", "store_id"}` →
//! `{"intent", "confidence"?, "topic"?, "entities": [{"item_id"?,
//! "quantity"?, "variant_id"?, "modifiers"?: [{"group_id", "option_id"}],
//! "text"?}]}`. Other top-level fields (`latency_ms`) are ignored; an
//! entity with a field outside the contract (a price) makes the answer
//! unreadable. `GET {NLU_URL}/health` answers 2xx when it is up.

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
pub struct NluConfig {
    /// `NLU_URL`, the service's root.
    pub url: Url,
    /// `NLU_TIMEOUT_MS`.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub breaker: BreakerConfig,
}

impl NluConfig {
    pub fn new(url: Url) -> NluConfig {
        NluConfig {
            url,
            timeout: Duration::from_millis(1000),
            connect_timeout: Duration::from_millis(500),
            breaker: BreakerConfig { failure_threshold: 3, open_for: Duration::from_secs(30) },
        }
    }
}

impl fmt::Debug for NluConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NluConfig").field("url", &self.url.as_str()).field("timeout", &self.timeout).finish()
    }
}

/// What is sent to `/parse`.
#[derive(Debug, Clone, Serialize)]
pub struct NluRequest<'a> {
    pub text: &'a str,
    /// `hi`, `mr`, `en` or `hi-en`.
    pub language: &'a str,
    pub store_id: &'a str,
}

/// The service's reading of an utterance: one intent (an operation name
/// of the voice fallback: add, remove, set_quantity, …) over its entities.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NluParse {
    pub intent: String,
    #[serde(default)]
    pub confidence: Option<f64>,
    /// For `ask`: price, menu, delivery_time, human, repeat, total.
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub entities: Vec<NluEntity>,
}

/// One item mention, by catalog id.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NluEntity {
    #[serde(default)]
    pub item_id: Option<String>,
    #[serde(default)]
    pub quantity: Option<f64>,
    #[serde(default)]
    pub variant_id: Option<String>,
    #[serde(default)]
    pub modifiers: Vec<NluModifier>,
    /// The words of the utterance the entity came from.
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NluModifier {
    pub group_id: String,
    pub option_id: String,
}

/// The NLU client. Cheap to clone.
#[derive(Clone)]
pub struct NluClient {
    endpoint: Arc<Endpoint>,
}

impl fmt::Debug for NluClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NluClient").field("url", &self.endpoint.base.as_str()).finish()
    }
}

impl NluClient {
    pub fn new(config: NluConfig) -> NluClient {
        let endpoint = Endpoint::new(
            FallbackService::Nlu,
            config.url,
            None,
            config.timeout,
            config.connect_timeout,
            config.breaker,
        );
        NluClient { endpoint: Arc::new(endpoint) }
    }

    pub fn url(&self) -> &Url {
        &self.endpoint.base
    }

    pub async fn parse(&self, request: &NluRequest<'_>) -> Result<NluParse, FallbackError> {
        const OP: &str = "parse";
        let call =
            Call { operation: OP, method: Method::POST, path: "/parse", body: Some(request), bypass_breaker: false };
        let body = self.endpoint.send(call).await?;
        serde_json::from_slice(&body).map_err(|e| {
            self.endpoint.error(OP, FallbackErrorKind::BadResponse, Some(200), format!("not an NLU parse: {e}"))
        })
    }

    /// `GET /health`, once, past an open breaker.
    pub async fn health(&self) -> Result<Duration, FallbackError> {
        let started = Instant::now();
        let call =
            Call::<()> { operation: "health", method: Method::GET, path: "/health", body: None, bypass_breaker: true };
        self.endpoint.send(call).await?;
        Ok(started.elapsed())
    }
}
