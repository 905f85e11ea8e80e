//! The Cloud API client: one endpoint (`POST /{version}/{phone_number_id}/messages`),
//! retried only where a retry cannot send a message twice.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use reqwest::header::ACCEPT;
use sha2::Sha256;
use tokio::time::Instant;
use url::Url;

use super::config::WhatsAppClientConfig;
use super::error::{WhatsAppError, WhatsAppErrorKind, status_error};
use super::message::{SentMessage, TemplateMessage, parse_sent, template_body};
use super::templates::{ListedTemplate, parse_template_page};
use super::webhook::verify_signature;
use crate::retry::{RetryPolicy, handed_back_wait};

/// The WhatsApp Cloud API client. Cheap to clone; clones share the
/// connection pool.
#[derive(Clone)]
pub struct WhatsAppClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: WhatsAppClientConfig,
    /// `{base}/{version}/{phone_number_id}/messages[?appsecret_proof=…]`.
    /// Holds a secret-derived value: never logged.
    messages_url: Url,
    /// `{base}/{version}/{waba_id}/message_templates[?appsecret_proof=…]`,
    /// when the business account id is configured. Never logged either.
    templates_url: Option<Url>,
}

impl fmt::Debug for WhatsAppClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhatsAppClient").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl WhatsAppClient {
    /// Builds a client. Fails with an invalid-kind [`WhatsAppError`] naming
    /// the configuration field that is unusable.
    pub fn new(config: WhatsAppClientConfig) -> Result<Self, WhatsAppError> {
        let base = &config.base_url;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(WhatsAppError::invalid("base_url", "must be an http(s) URL"));
        }
        if !valid_version(&config.api_version) {
            return Err(WhatsAppError::invalid("api_version", "must look like v21.0"));
        }
        let id = &config.phone_number_id;
        if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(WhatsAppError::invalid("phone_number_id", "must be the numeric id of the business number"));
        }
        let token = &config.access_token;
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(WhatsAppError::invalid("access_token", "must be a non-empty token without spaces"));
        }
        if config.app_secret.as_deref().is_some_and(str::is_empty) {
            return Err(WhatsAppError::invalid("app_secret", "must not be empty when set"));
        }
        for (field, timeout) in [("timeout", config.timeout), ("connect_timeout", config.connect_timeout)] {
            if timeout.is_zero() {
                return Err(WhatsAppError::invalid(field, "must be more than zero"));
            }
        }
        let mut messages_url = base.clone();
        messages_url
            .path_segments_mut()
            .map_err(|()| WhatsAppError::invalid("base_url", "must be an http(s) URL"))?
            .pop_if_empty()
            .extend([config.api_version.as_str(), id.as_str(), "messages"]);
        let mut templates_url = None;
        if let Some(waba) = &config.business_account_id {
            if waba.is_empty() || waba.len() > 32 || !waba.bytes().all(|b| b.is_ascii_digit()) {
                return Err(WhatsAppError::invalid(
                    "business_account_id",
                    "must be the numeric id of the WhatsApp Business Account",
                ));
            }
            let mut url = base.clone();
            url.path_segments_mut()
                .map_err(|()| WhatsAppError::invalid("base_url", "must be an http(s) URL"))?
                .pop_if_empty()
                .extend([config.api_version.as_str(), waba.as_str(), "message_templates"]);
            templates_url = Some(url);
        }
        if let Some(secret) = &config.app_secret {
            let proof = appsecret_proof(secret, token);
            messages_url.query_pairs_mut().append_pair("appsecret_proof", &proof);
            if let Some(url) = &mut templates_url {
                url.query_pairs_mut().append_pair("appsecret_proof", &proof);
            }
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout.min(config.timeout))
            .redirect(reqwest::redirect::Policy::none())
            // Shorter than common load-balancer keep-alives, so a POST rarely
            // goes out on a connection the server is closing: that would make
            // its outcome ambiguous.
            .pool_idle_timeout(Duration::from_secs(20))
            .user_agent(concat!("mangwale-exotel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WhatsAppError::invalid("http_client", describe(e)))?;
        Ok(WhatsAppClient { inner: Arc::new(Inner { http, config, messages_url, templates_url }) })
    }

    pub fn config(&self) -> &WhatsAppClientConfig {
        &self.inner.config
    }

    /// Sends an approved template. Transient failures that cannot have sent
    /// the message (a refusal with a retryable code, no connection) are
    /// retried with jittered exponential backoff; an ambiguous outcome is
    /// returned at once, since a retry could deliver the message twice.
    pub async fn send_template(&self, message: &TemplateMessage) -> Result<SentMessage, WhatsAppError> {
        let template = message.template.as_str();
        let body = template_body(message).inspect_err(|error| {
            record("invalid");
            tracing::warn!(template, to = %message.to, error = %error, "whatsapp message rejected before sending");
        })?;
        let body = serde_json::to_vec(&body).map_err(|e| WhatsAppError::invalid("message", e.to_string()))?;
        let config = &self.inner.config;
        let policy = RetryPolicy::new(config.retries, config.retry_base, config.retry_cap);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let result = self.attempt(&body).await;
            metrics::histogram!("mangwale_whatsapp_request_seconds").record(started.elapsed().as_secs_f64());
            let error = match result {
                Ok(sent) => {
                    record("ok");
                    tracing::debug!(
                        template,
                        to = %message.to,
                        attempt,
                        message_id = %sent.message_id,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "whatsapp template accepted"
                    );
                    return Ok(sent);
                }
                Err(error) => error,
            };
            record(error.kind.as_str());
            let min_wait = error.min_wait();
            let delay =
                error.is_transient().then(|| policy.next_delay(attempt - 1, error.retry_after, min_wait)).flatten();
            tracing::warn!(
                template,
                to = %message.to,
                attempt,
                outcome = error.kind.as_str(),
                status = error.status,
                code = error.code,
                error = %error,
                retry_in_ms = delay.map(|d| d.as_millis() as u64),
                "whatsapp send failed"
            );
            match delay {
                Some(delay) => tokio::time::sleep(delay).await,
                // What the caller must wait before sending again (the pair
                // rate limit's 6 s, or Meta's Retry-After).
                None if error.is_transient() => {
                    let retry_after = handed_back_wait(error.retry_after, min_wait);
                    return Err(WhatsAppError { retry_after, ..error });
                }
                None => return Err(error),
            }
        }
    }

    /// Every template of the WhatsApp Business Account, in every language:
    /// `GET /{version}/{waba_id}/message_templates?fields=name,language,status`,
    /// page after page (`paging.cursors.after` while `paging.next` is
    /// present). Fails with an invalid-kind error naming
    /// `business_account_id` when none is configured.
    pub async fn list_templates(&self) -> Result<Vec<ListedTemplate>, WhatsAppError> {
        const MAX_PAGES: usize = 50;
        let Some(url) = &self.inner.templates_url else {
            return Err(WhatsAppError::invalid("business_account_id", "is not configured"));
        };
        let mut templates = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut page_url = url.clone();
            page_url.query_pairs_mut().append_pair("fields", "name,language,status").append_pair("limit", "100");
            if let Some(cursor) = &after {
                page_url.query_pairs_mut().append_pair("after", cursor);
            }
            let response = self
                .inner
                .http
                .get(page_url)
                .bearer_auth(&self.inner.config.access_token)
                .header(ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| WhatsAppError::new(WhatsAppErrorKind::Transient, None, describe(e)))?;
            let status = response.status().as_u16();
            let retry_after = crate::retry::retry_after(response.headers(), chrono::Utc::now());
            let success = response.status().is_success();
            let bytes = crate::body::read_capped(response, crate::body::DEFAULT_LIMIT)
                .await
                .map_err(|e| WhatsAppError::new(WhatsAppErrorKind::Transient, Some(status), e.describe(describe)))?;
            if !success {
                return Err(status_error(status, &bytes, retry_after));
            }
            let page = parse_template_page(&bytes).map_err(|problem| {
                WhatsAppError::new(WhatsAppErrorKind::Permanent, Some(status), format!("template list: {problem}"))
            })?;
            templates.extend(page.templates);
            match page.after {
                Some(cursor) => after = Some(cursor),
                None => return Ok(templates),
            }
        }
        Ok(templates)
    }

    /// [`verify_signature`] with the configured app secret; `false` when
    /// none is configured.
    pub fn verify_webhook(&self, body: &[u8], signature_header: Option<&str>) -> bool {
        self.inner.config.app_secret.as_deref().is_some_and(|secret| verify_signature(secret, body, signature_header))
    }

    /// One HTTP exchange, classified.
    async fn attempt(&self, body: &[u8]) -> Result<SentMessage, WhatsAppError> {
        let request = self
            .inner
            .http
            .post(self.inner.messages_url.clone())
            .bearer_auth(&self.inner.config.access_token)
            .header(ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        let response = request.send().await.map_err(send_failure)?;
        let status = response.status().as_u16();
        let retry_after = crate::retry::retry_after(response.headers(), chrono::Utc::now());
        let success = response.status().is_success();
        let bytes = match crate::body::read_capped(response, crate::body::DEFAULT_LIMIT).await {
            Ok(bytes) => bytes,
            Err(error) if success => {
                let message = format!("accepted, but the answer could not be read: {}", error.describe(describe));
                return Err(WhatsAppError::new(WhatsAppErrorKind::Ambiguous, Some(status), message));
            }
            Err(_) => Default::default(),
        };
        if success {
            return parse_sent(&bytes).map_err(|problem| {
                let message = format!("accepted, but the answer is unreadable: {problem}");
                WhatsAppError::new(WhatsAppErrorKind::Ambiguous, Some(status), message)
            });
        }
        Err(status_error(status, &bytes, retry_after))
    }
}

/// `appsecret_proof`: hex HMAC-SHA256 of the access token, keyed with the
/// app secret.
fn appsecret_proof(app_secret: &str, access_token: &str) -> String {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(app_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(access_token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn valid_version(version: &str) -> bool {
    let Some(rest) = version.strip_prefix('v') else { return false };
    let mut parts = rest.split('.');
    let digits = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    digits(parts.next()) && parts.next().is_none_or(|minor| digits(Some(minor))) && parts.next().is_none()
}

/// A request that got no HTTP answer. Failing to connect happens before the
/// request is written, so it is retryable; a timeout or a lost connection
/// after that may hide a sent message.
fn send_failure(error: reqwest::Error) -> WhatsAppError {
    if error.is_builder() {
        return WhatsAppError::invalid("request", describe(error));
    }
    if error.is_connect() {
        return WhatsAppError::new(
            WhatsAppErrorKind::Transient,
            None,
            format!("could not connect: {}", describe(error)),
        );
    }
    let what = if error.is_timeout() {
        "timed out after the request was sent"
    } else {
        "connection lost after the request was sent"
    };
    WhatsAppError::new(WhatsAppErrorKind::Ambiguous, None, format!("{what}: {}", describe(error)))
}

/// A reqwest error as text, without the URL (it carries `appsecret_proof`)
/// and with its causes, numbers masked.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    mangwale_core::mask_phone_numbers(&text).into_owned()
}

fn record(outcome: &'static str) {
    metrics::counter!("mangwale_whatsapp_requests_total", "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for ok in ["v21.0", "v16.0", "v9", "v100.12"] {
            assert!(valid_version(ok), "{ok}");
        }
        for bad in ["", "21.0", "v", "v21.", "v21.0.1", "vx.0", "v21/x"] {
            assert!(!valid_version(bad), "{bad}");
        }
    }

    #[test]
    fn the_proof_is_an_hmac_of_the_token() {
        // RFC 4231, test case 2, with the "token" as the message.
        assert_eq!(
            appsecret_proof("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_configuration_is_checked() {
        let good = || WhatsAppClientConfig::new("106540352242922", "EAAG-token");
        assert!(WhatsAppClient::new(good()).is_ok());
        let field = |config: WhatsAppClientConfig| WhatsAppClient::new(config).unwrap_err().field().map(str::to_string);
        assert_eq!(field(WhatsAppClientConfig { api_version: "21".into(), ..good() }).as_deref(), Some("api_version"));
        assert_eq!(
            field(WhatsAppClientConfig { phone_number_id: "+91 80".into(), ..good() }).as_deref(),
            Some("phone_number_id")
        );
        assert_eq!(
            field(WhatsAppClientConfig { access_token: "a b".into(), ..good() }).as_deref(),
            Some("access_token")
        );
        assert_eq!(field(good().with_app_secret("")).as_deref(), Some("app_secret"));
        assert_eq!(field(WhatsAppClientConfig { timeout: Duration::ZERO, ..good() }).as_deref(), Some("timeout"));
        let client = WhatsAppClient::new(good().with_app_secret("s")).unwrap();
        let url = client.inner.messages_url.as_str();
        assert!(url.starts_with("https://graph.facebook.com/v21.0/106540352242922/messages?appsecret_proof="), "{url}");
        assert!(!format!("{client:?}").contains("appsecret_proof"));
    }
}
