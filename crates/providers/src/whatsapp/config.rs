//! Configuration of the WhatsApp Cloud API client, with the defaults
//! production uses.

use std::fmt;
use std::time::Duration;

use url::Url;

/// Meta's Graph API host.
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";
/// The Graph API version the client speaks. Meta keeps a version for about
/// two years; the request and webhook shapes used here are unchanged from
/// v16.0 to v21.0.
pub const DEFAULT_API_VERSION: &str = "v21.0";

/// Everything the client needs (the server fills it from its environment;
/// tests point `base_url` at the simulator).
#[derive(Clone)]
pub struct WhatsAppClientConfig {
    /// Scheme and host, optionally with a path prefix.
    pub base_url: Url,
    /// `v21.0`: the first path segment.
    pub api_version: String,
    /// The business phone number's id (not the number itself): the second
    /// path segment.
    pub phone_number_id: String,
    /// A system-user access token, sent as `Authorization: Bearer`.
    pub access_token: String,
    /// The WhatsApp Business Account's id (`WHATSAPP_BUSINESS_ACCOUNT_ID`):
    /// where the approved templates are listed
    /// ([`super::WhatsAppClient::list_templates`]). Sends do not need it.
    pub business_account_id: Option<String>,
    /// The Meta app's secret. When set, every request carries
    /// `appsecret_proof` (HMAC-SHA256 of the token with this secret), which
    /// apps with "Require App Secret" turned on must send, so a leaked
    /// token alone cannot be used. The same secret signs webhooks.
    pub app_secret: Option<String>,
    /// Whole-request timeout. A send that runs out of it after the request
    /// was written is ambiguous and not retried.
    pub timeout: Duration,
    /// TCP + TLS set-up timeout. A failure here happens before anything is
    /// sent, so it is always safe to retry.
    pub connect_timeout: Duration,
    /// Further attempts after a transient failure.
    pub retries: u32,
    /// First backoff between attempts; doubled each time, with jitter.
    pub retry_base: Duration,
    /// Longest backoff, and the longest `Retry-After` the client waits out
    /// itself; a longer one ends the retries and is returned to the caller.
    pub retry_cap: Duration,
}

impl WhatsAppClientConfig {
    /// A configuration with the production defaults.
    pub fn new(phone_number_id: impl Into<String>, access_token: impl Into<String>) -> Self {
        WhatsAppClientConfig {
            base_url: Url::parse(DEFAULT_BASE_URL).unwrap_or_else(|_| unreachable!("a valid constant URL")),
            api_version: DEFAULT_API_VERSION.to_string(),
            phone_number_id: phone_number_id.into(),
            access_token: access_token.into(),
            business_account_id: None,
            app_secret: None,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            retries: 2,
            retry_base: Duration::from_millis(500),
            retry_cap: Duration::from_secs(10),
        }
    }

    /// The same configuration against another host (the simulator).
    pub fn with_base_url(self, base_url: Url) -> Self {
        WhatsAppClientConfig { base_url, ..self }
    }

    pub fn with_app_secret(self, app_secret: impl Into<String>) -> Self {
        WhatsAppClientConfig { app_secret: Some(app_secret.into()), ..self }
    }

    pub fn with_business_account_id(self, id: impl Into<String>) -> Self {
        WhatsAppClientConfig { business_account_id: Some(id.into()), ..self }
    }
}

impl fmt::Debug for WhatsAppClientConfig {
    /// The token and the app secret are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhatsAppClientConfig")
            .field("base_url", &self.base_url.as_str())
            .field("api_version", &self.api_version)
            .field("phone_number_id", &self.phone_number_id)
            .field("access_token", &"***")
            .field("business_account_id", &self.business_account_id)
            .field("app_secret", &self.app_secret.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retries", &self.retries)
            .field("retry_base", &self.retry_base)
            .field("retry_cap", &self.retry_cap)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secrets() {
        let config = WhatsAppClientConfig::new("106540352242922", "EAAG-secret-token").with_app_secret("app-secret-x");
        let text = format!("{config:?}");
        assert!(!text.contains("EAAG-secret-token") && !text.contains("app-secret-x"), "{text}");
        assert!(text.contains("106540352242922") && text.contains("v21.0") && text.contains("graph.facebook.com"));
        assert_eq!((config.timeout, config.retries), (Duration::from_secs(10), 2));
    }
}
