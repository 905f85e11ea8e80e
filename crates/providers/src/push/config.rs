//! Which push backend to use and how to reach it, from the values of the
//! server's environment variables.

use std::fmt;
use std::time::Duration;

use url::Url;

use super::service_account::{InvalidServiceAccount, ServiceAccountKey};

/// `fcm` or `app`.
pub const PUSH_PROVIDER: &str = "PUSH_PROVIDER";
/// The Firebase project; defaults to the service account's `project_id`.
pub const FCM_PROJECT_ID: &str = "FCM_PROJECT_ID";
/// The service-account key: its JSON text, or the path of the JSON file.
pub const FCM_SERVICE_ACCOUNT_JSON: &str = "FCM_SERVICE_ACCOUNT_JSON";
/// FCM's base URL; defaults to [`FCM_DEFAULT_BASE_URL`] (the sandbox points
/// it at the push simulator).
pub const FCM_BASE_URL: &str = "FCM_BASE_URL";
/// Base URL of the app backend (`{url}/api/push/send`).
pub const APP_PUSH_URL: &str = "APP_PUSH_URL";
/// The app backend's `X-API-Key`.
pub const APP_PUSH_API_KEY: &str = "APP_PUSH_API_KEY";

pub const FCM_DEFAULT_BASE_URL: &str = "https://fcm.googleapis.com";

/// The backend pushes go to.
#[derive(Debug, Clone)]
pub enum PushConfig {
    Fcm(FcmConfig),
    AppBackend(AppBackendConfig),
}

/// FCM HTTP v1 with a service-account key.
#[derive(Debug, Clone)]
pub struct FcmConfig {
    pub project_id: String,
    pub service_account: ServiceAccountKey,
    /// Scheme and host, optionally with a path prefix:
    /// `https://fcm.googleapis.com`, or the simulator's URL.
    pub base_url: String,
    /// A cached access token is replaced this long before it expires (at
    /// most half its lifetime), so that no push goes out with a token that
    /// expires in flight.
    pub token_refresh_margin: Duration,
}

impl FcmConfig {
    /// Production defaults: Google's base URL, refresh 5 minutes early.
    pub fn new(project_id: impl Into<String>, service_account: ServiceAccountKey) -> Self {
        FcmConfig {
            project_id: project_id.into(),
            service_account,
            base_url: FCM_DEFAULT_BASE_URL.to_string(),
            token_refresh_margin: Duration::from_secs(300),
        }
    }

    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }
}

/// The app backend's `POST {url}/api/push/send`.
#[derive(Clone)]
pub struct AppBackendConfig {
    pub url: Url,
    pub api_key: String,
}

impl AppBackendConfig {
    pub fn new(url: Url, api_key: impl Into<String>) -> Self {
        AppBackendConfig { url, api_key: api_key.into() }
    }
}

impl fmt::Debug for AppBackendConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppBackendConfig").field("url", &self.url.as_str()).field("api_key", &"***").finish()
    }
}

/// The raw values of the push variables, as the server read them (blank
/// counts as unset). `Debug` hides the key and the API key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PushEnv {
    pub provider: Option<String>,
    pub fcm_project_id: Option<String>,
    pub fcm_service_account_json: Option<String>,
    pub fcm_base_url: Option<String>,
    pub app_push_url: Option<String>,
    pub app_push_api_key: Option<String>,
}

impl fmt::Debug for PushEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("PushEnv")
            .field("provider", &self.provider)
            .field("fcm_project_id", &self.fcm_project_id)
            .field("fcm_service_account_json", &hidden(&self.fcm_service_account_json))
            .field("fcm_base_url", &self.fcm_base_url)
            .field("app_push_url", &self.app_push_url)
            .field("app_push_api_key", &hidden(&self.app_push_api_key))
            .finish()
    }
}

impl PushEnv {
    /// Reads the variables through `lookup` (`|name| std::env::var(name).ok()`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        PushEnv {
            provider: lookup(PUSH_PROVIDER),
            fcm_project_id: lookup(FCM_PROJECT_ID),
            fcm_service_account_json: lookup(FCM_SERVICE_ACCOUNT_JSON),
            fcm_base_url: lookup(FCM_BASE_URL),
            app_push_url: lookup(APP_PUSH_URL),
            app_push_api_key: lookup(APP_PUSH_API_KEY),
        }
    }
}

/// A push variable that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct PushConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn config_error(variable: &'static str, message: impl Into<String>) -> PushConfigError {
    PushConfigError { variable, message: message.into() }
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn http_url(variable: &'static str, text: &str) -> Result<Url, PushConfigError> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(url),
        Ok(_) => Err(config_error(variable, format!("{text:?} is not an http(s) URL"))),
        Err(e) => Err(config_error(variable, format!("{text:?} is not a URL: {e}"))),
    }
}

/// Firebase project ids: 6 to 30 lower-case letters, digits and hyphens.
fn valid_project_id(id: &str) -> bool {
    (6..=30).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.ends_with('-')
}

impl PushConfig {
    /// Chooses and checks the backend from the variables' values. Reads the
    /// key file when `FCM_SERVICE_ACCOUNT_JSON` is a path rather than JSON.
    pub fn from_env(env: &PushEnv) -> Result<PushConfig, PushConfigError> {
        let provider = present(&env.provider)
            .ok_or_else(|| config_error(PUSH_PROVIDER, "not set; expected \"fcm\" or \"app\""))?;
        match provider.to_ascii_lowercase().as_str() {
            "fcm" => PushConfig::fcm_from_env(env).map(PushConfig::Fcm),
            "app" => PushConfig::app_from_env(env).map(PushConfig::AppBackend),
            other => Err(config_error(PUSH_PROVIDER, format!("{other:?} is not \"fcm\" or \"app\""))),
        }
    }

    fn fcm_from_env(env: &PushEnv) -> Result<FcmConfig, PushConfigError> {
        let source = present(&env.fcm_service_account_json).ok_or_else(|| {
            config_error(FCM_SERVICE_ACCOUNT_JSON, "not set; give the service-account key's JSON or its file path")
        })?;
        let text = if source.starts_with('{') {
            source.to_string()
        } else {
            std::fs::read_to_string(source).map_err(|e| {
                config_error(FCM_SERVICE_ACCOUNT_JSON, format!("cannot read the key file {source:?}: {e}"))
            })?
        };
        let key = ServiceAccountKey::from_json(&text)
            .map_err(|InvalidServiceAccount(why)| config_error(FCM_SERVICE_ACCOUNT_JSON, why))?;
        let project_id = match present(&env.fcm_project_id) {
            Some(id) => id.to_string(),
            None => key.project_id.clone().ok_or_else(|| {
                config_error(FCM_PROJECT_ID, "not set, and the service-account key names no project_id")
            })?,
        };
        if !valid_project_id(&project_id) {
            return Err(config_error(FCM_PROJECT_ID, format!("{project_id:?} is not a Firebase project id")));
        }
        let mut config = FcmConfig::new(project_id, key);
        if let Some(base) = present(&env.fcm_base_url) {
            config.base_url = http_url(FCM_BASE_URL, base)?.as_str().trim_end_matches('/').to_string();
        }
        Ok(config)
    }

    fn app_from_env(env: &PushEnv) -> Result<AppBackendConfig, PushConfigError> {
        let url = present(&env.app_push_url)
            .ok_or_else(|| config_error(APP_PUSH_URL, "not set; the app backend's base URL is needed"))?;
        let url = http_url(APP_PUSH_URL, url)?;
        let api_key = present(&env.app_push_api_key)
            .ok_or_else(|| config_error(APP_PUSH_API_KEY, "not set; the app backend requires an X-API-Key"))?;
        Ok(AppBackendConfig::new(url, api_key))
    }
}

#[cfg(test)]
mod tests {
    use mangwale_sim::push::TEST_PRIVATE_KEY_PEM;
    use serde_json::json;

    use super::*;

    fn key_json() -> String {
        json!({
            "type": "service_account",
            "project_id": "mangwale-test",
            "private_key_id": "kid-1",
            "private_key": TEST_PRIVATE_KEY_PEM,
            "client_email": "push@mangwale-test.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        })
        .to_string()
    }

    fn env(pairs: &[(&str, &str)]) -> PushEnv {
        PushEnv::from_lookup(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    fn err(pairs: &[(&str, &str)]) -> PushConfigError {
        PushConfig::from_env(&env(pairs)).unwrap_err()
    }

    #[test]
    fn fcm_from_json_text_or_file_with_the_project_defaulting_to_the_keys() {
        let key = key_json();
        let PushConfig::Fcm(fcm) =
            PushConfig::from_env(&env(&[(PUSH_PROVIDER, "fcm"), (FCM_SERVICE_ACCOUNT_JSON, &key)])).unwrap()
        else {
            panic!("fcm expected")
        };
        assert_eq!(fcm.project_id, "mangwale-test");
        assert_eq!(fcm.base_url, "https://fcm.googleapis.com");

        let path = std::env::temp_dir().join(format!("mangwale-push-key-{}.json", std::process::id()));
        std::fs::write(&path, &key).unwrap();
        let from_file = PushConfig::from_env(&env(&[
            (PUSH_PROVIDER, "FCM"),
            (FCM_PROJECT_ID, "other-project"),
            (FCM_SERVICE_ACCOUNT_JSON, path.to_str().unwrap()),
            (FCM_BASE_URL, "http://127.0.0.1:8099"),
        ]));
        let _ = std::fs::remove_file(&path);
        let PushConfig::Fcm(fcm) = from_file.unwrap() else { panic!("fcm expected") };
        assert_eq!((fcm.project_id.as_str(), fcm.base_url.as_str()), ("other-project", "http://127.0.0.1:8099"));
        let debug = format!("{fcm:?}");
        assert!(!debug.contains("BEGIN") && !debug.contains("MII"), "{debug}");
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(err(&[]).variable, PUSH_PROVIDER);
        assert_eq!(err(&[(PUSH_PROVIDER, "apns")]).variable, PUSH_PROVIDER);
        assert_eq!(err(&[(PUSH_PROVIDER, "fcm")]).variable, FCM_SERVICE_ACCOUNT_JSON);
        let e = err(&[(PUSH_PROVIDER, "fcm"), (FCM_SERVICE_ACCOUNT_JSON, "/nonexistent/key.json")]);
        assert!(e.variable == FCM_SERVICE_ACCOUNT_JSON && e.message.contains("cannot read"), "{e}");
        let e = err(&[(PUSH_PROVIDER, "fcm"), (FCM_SERVICE_ACCOUNT_JSON, "{\"type\":\"service_account\"}")]);
        assert_eq!(e.to_string(), "FCM_SERVICE_ACCOUNT_JSON: \"client_email\" is missing");
        let key = key_json();
        let e = err(&[(PUSH_PROVIDER, "fcm"), (FCM_SERVICE_ACCOUNT_JSON, &key), (FCM_PROJECT_ID, "Bad Project")]);
        assert_eq!(e.variable, FCM_PROJECT_ID);
        let e = err(&[(PUSH_PROVIDER, "fcm"), (FCM_SERVICE_ACCOUNT_JSON, &key), (FCM_BASE_URL, "fcm.local")]);
        assert_eq!(e.variable, FCM_BASE_URL);
        assert_eq!(err(&[(PUSH_PROVIDER, "app")]).variable, APP_PUSH_URL);
        assert_eq!(err(&[(PUSH_PROVIDER, "app"), (APP_PUSH_URL, "ftp://x")]).variable, APP_PUSH_URL);
        assert_eq!(
            err(&[(PUSH_PROVIDER, "app"), (APP_PUSH_URL, "http://app"), (APP_PUSH_API_KEY, " ")]).variable,
            APP_PUSH_API_KEY
        );
    }

    #[test]
    fn the_app_backend_and_debug_hide_the_api_key() {
        let values =
            env(&[(PUSH_PROVIDER, "app"), (APP_PUSH_URL, "https://app.mangwale.in"), (APP_PUSH_API_KEY, "s3cret")]);
        assert!(!format!("{values:?}").contains("s3cret"));
        let config = PushConfig::from_env(&values).unwrap();
        let debug = format!("{config:?}");
        assert!(debug.contains("app.mangwale.in") && !debug.contains("s3cret"), "{debug}");
    }
}
