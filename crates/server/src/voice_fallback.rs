//! The voice dialog's second opinion: the NLU service of the user's stack
//! and an LLM behind an OpenAI-compatible chat endpoint, asked about words
//! the parser could not resolve. Either answer becomes an [`Understanding`]
//! only after `mangwale_voice::fallback` has checked it against the
//! catalog; a failure, a timeout or an answer with anything invented is
//! `None` (counted and logged, never the caller's words or a key).
//!
//! Order: the NLU service first, then the LLM. The NLU service is a
//! trained classifier on the user's own hardware, answering in tens of
//! milliseconds; the LLM takes up to its timeout (2.5 s by default) and is
//! the last resort. A turn waits at most both timeouts, and an open circuit
//! skips a service that is down without waiting at all.

use std::sync::Arc;
use std::time::Duration;

use mangwale_providers::fallback::{
    FallbackError, LlmClient, LlmConfig, NluClient, NluConfig, NluEntity, NluParse, NluRequest,
};
use mangwale_voice::fallback::{self, Proposal, Rejection, Source};
use mangwale_voice::{Catalog, Context, ModifierChoice, Understanding};
use reqwest::Url;

use crate::config::Config;

/// Longest utterance sent out: an ASR turn is a sentence or two.
const MAX_UTTERANCE_CHARS: usize = 500;

/// The configured fallbacks; built only when at least one is.
#[derive(Debug, Clone)]
pub struct VoiceFallback {
    nlu: Option<NluClient>,
    llm: Option<LlmClient>,
}

impl VoiceFallback {
    /// From `NLU_URL` and `LLM_URL`; `None` when neither is set.
    pub fn from_config(config: &Config) -> Option<Arc<VoiceFallback>> {
        let llm = config.llm.as_ref().map(|s| {
            LlmClient::new(LlmConfig {
                api_key: s.api_key.as_ref().map(|k| k.expose().to_string()),
                timeout: s.timeout,
                ..LlmConfig::new(s.url.clone(), s.model.clone())
            })
        });
        let nlu = config
            .nlu
            .as_ref()
            .map(|s| NluClient::new(NluConfig { timeout: s.timeout, ..NluConfig::new(s.url.clone()) }));
        VoiceFallback::new(nlu, llm).map(Arc::new)
    }

    pub fn new(nlu: Option<NluClient>, llm: Option<LlmClient>) -> Option<VoiceFallback> {
        (nlu.is_some() || llm.is_some()).then_some(VoiceFallback { nlu, llm })
    }

    pub fn llm_url(&self) -> Option<&Url> {
        self.llm.as_ref().map(LlmClient::url)
    }

    pub fn nlu_url(&self) -> Option<&Url> {
        self.nlu.as_ref().map(NluClient::url)
    }

    /// What the NLU service, else the LLM, understood of `utterance`,
    /// checked against `catalog`; `None` when neither had anything valid.
    pub async fn resolve(&self, utterance: &str, catalog: &Catalog, context: &Context) -> Option<Understanding> {
        let utterance: String = utterance.trim().chars().take(MAX_UTTERANCE_CHARS).collect();
        if utterance.is_empty() {
            return None;
        }
        if let Some(nlu) = &self.nlu {
            let answer = self.ask_nlu(nlu, &utterance, catalog, context).await;
            if let Some(understood) = outcome(Source::Nlu, answer) {
                return Some(understood);
            }
        }
        if let Some(llm) = &self.llm {
            let answer = ask_llm(llm, &utterance, catalog, context).await;
            return outcome(Source::Llm, answer);
        }
        None
    }

    async fn ask_nlu(
        &self,
        nlu: &NluClient,
        utterance: &str,
        catalog: &Catalog,
        context: &Context,
    ) -> Result<Result<Understanding, Rejection>, FallbackError> {
        let request =
            NluRequest { text: utterance, language: catalog.store.language.code(), store_id: &catalog.store.id };
        let parse = nlu.parse(&request).await?;
        Ok(fallback::validate(&nlu_proposals(parse), catalog, context, utterance, Source::Nlu))
    }

    /// The LLM's health: `GET /v1/models` lists the model. `None` when no
    /// LLM is configured.
    pub async fn llm_health(&self) -> Option<Result<Duration, FallbackError>> {
        Some(self.llm.as_ref()?.health().await)
    }

    /// The NLU service's `GET /health`. `None` when it is not configured.
    pub async fn nlu_health(&self) -> Option<Result<Duration, FallbackError>> {
        Some(self.nlu.as_ref()?.health().await)
    }
}

async fn ask_llm(
    llm: &LlmClient,
    utterance: &str,
    catalog: &Catalog,
    context: &Context,
) -> Result<Result<Understanding, Rejection>, FallbackError> {
    let prompt = fallback::llm_prompt(catalog, context, utterance);
    let content = llm.complete_json(&prompt.system, &prompt.user).await?;
    Ok(fallback::understand_llm_answer(&content, catalog, context, utterance))
}

/// Counts and logs how an answer fared, and keeps it if it was used.
fn outcome(source: Source, answer: Result<Result<Understanding, Rejection>, FallbackError>) -> Option<Understanding> {
    let service = source.name();
    let (label, reason, understood) = match answer {
        Ok(Ok(understood)) => {
            tracing::info!(service, ops = understood.ops.len(), "voice fallback understood the words");
            ("used", "ok", Some(understood))
        }
        Ok(Err(rejection)) => {
            tracing::warn!(service, reason = rejection.reason(), detail = %rejection, "voice fallback answer not used");
            ("rejected", rejection.reason(), None)
        }
        Err(e) => {
            tracing::warn!(service, error = %e, "voice fallback unavailable");
            ("failed", e.kind.name(), None)
        }
    };
    metrics::counter!("mangwale_voice_fallback_total", "service" => service, "outcome" => label, "reason" => reason)
        .increment(1);
    understood
}

/// The NLU contract's intent over its entities, as proposals: one per
/// entity, or one alone for an intent without entities (confirm, cancel).
fn nlu_proposals(parse: NluParse) -> Vec<Proposal> {
    let NluParse { intent, confidence, topic, entities } = parse;
    let base = Proposal { op: intent, topic, confidence, ..Proposal::default() };
    if entities.is_empty() {
        return vec![base];
    }
    entities
        .into_iter()
        .map(|NluEntity { item_id, quantity, variant_id, modifiers, text }| Proposal {
            item_id,
            quantity,
            variant_id,
            modifiers: modifiers
                .into_iter()
                .map(|m| ModifierChoice { group_id: m.group_id, option_id: m.option_id })
                .collect(),
            heard: text,
            ..base.clone()
        })
        .collect()
}
