//! Configuration from the environment (and an optional `.env` file), with the
//! seed's variable names. Every value is validated at start-up; an invalid one
//! stops the service with a message that names the variable.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use mangwale_core::E164;
use mangwale_core::campaign::{LanguageKey, TemplateBook, TemplateCategory, TemplateKey};
use mangwale_core::ladder::{LadderBook, LadderKind};
use reqwest::Url;

/// A secret value. It is never displayed or debug-printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for comparing or sending; never for logging.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Sandbox runs against the built-in simulators; live talks to Exotel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Sandbox,
    Live,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sandbox => "sandbox",
            Mode::Live => "live",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Exotel account credentials; present in live mode only.
#[derive(Debug, Clone)]
pub struct ExotelCredentials {
    pub sid: String,
    pub api_key: Secret,
    pub api_token: Secret,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub database_url: String,
    /// How Exotel reaches us: the base of every callback URL we hand it.
    pub public_base_url: Url,
    pub exotel: Option<ExotelCredentials>,
    pub exotel_subdomain: String,
    pub exotel_region: Option<String>,
    /// The Exotel API base URL of live mode (`EXOTEL_API_URL`, e.g. a proxy
    /// or an Exotel simulator outside the process); unset:
    /// `https://<subdomain>[.<region>].exotel.com`.
    pub exotel_api_url: Option<Url>,
    /// Host of flow URLs (`EXOTEL_FLOW_HOST`); unset: `my[.<region>].exotel.com`.
    pub exotel_flow_host: Option<String>,
    pub exotel_caller_id: Option<E164>,
    pub did_new_order: Option<E164>,
    pub did_reminder: Option<E164>,
    pub did_address: Option<E164>,
    pub jupiter_url: Option<Url>,
    pub php_backend_url: Option<Url>,
    pub jupiter_api_key: Option<Secret>,
    pub jupiter_webhook_secret: Option<Secret>,
    /// Refuse Jupiter webhooks without `X-Jupiter-Timestamp`, so that a
    /// captured request can be replayed for 5 minutes at most.
    pub jupiter_require_timestamp: bool,
    /// Keys internal callers present; empty in sandbox mode until generated.
    pub api_keys: Vec<Secret>,
    pub exotel_webhook_token: Option<Secret>,
    pub admin_support_phone: Option<E164>,
    /// Where a caller who wants to order is connected while a person takes
    /// orders (`ORDER_DESK_PHONE`, else `ADMIN_SUPPORT_PHONE`).
    pub order_desk_phone: Option<E164>,
    /// Inbound calls: how long caller identification may take before the
    /// Passthru answers from what is known (`CALLER_LOOKUP_DEADLINE_MS`).
    pub caller_lookup_deadline: std::time::Duration,
    /// Missed calls: the callback is placed this long after the first one.
    pub missed_call_callback_delay: std::time::Duration,
    /// Missed calls from one number within this window bring one callback.
    pub missed_call_window: std::time::Duration,
    /// When callbacks may ring (India time); outside, at opening time.
    pub callback_hours: CallbackHours,
    /// The pool of ExoPhones masked calls go through (`EXOTEL_MASKING_NUMBERS`).
    pub masking_numbers: Vec<E164>,
    /// A masking session expires this long after it opens.
    pub masking_ttl: std::time::Duration,
    /// Delivered orders keep their masking sessions this long.
    pub masking_grace: std::time::Duration,
    /// Record masked calls (`MASKING_RECORD`).
    pub masking_record: bool,
    /// Exotel app (flow) id of each of our flows (`flows/exotel-flows.toml`),
    /// for IVR calls. In sandbox mode the simulator knows every flow by its
    /// own id.
    pub exotel_app_ids: std::collections::BTreeMap<String, String>,
    /// Our budget of Exotel voice API requests per minute (Exotel allows 200).
    pub exotel_voice_per_minute: u32,
    /// Our budget of Exotel SMS API requests per minute (Exotel allows 200).
    pub exotel_sms_per_minute: u32,
    /// The sender of our SMS (DLT header or ExoPhone); the default caller id
    /// when unset.
    pub exotel_sms_sender: Option<String>,
    /// DLT principal entity id and the admin-alert template id of our SMS.
    pub exotel_dlt_entity_id: Option<String>,
    pub exotel_dlt_template_admin_alert: Option<String>,
    /// DLT template id of the SMS a caller gets when their missed call
    /// could not be called back (`EXOTEL_DLT_TEMPLATE_MISSED_CALL`).
    pub exotel_dlt_template_missed_call: Option<String>,
    /// DLT template id of the SMS that gives an accepting rider the pickup location.
    pub exotel_dlt_template_rider_pickup: Option<String>,
    /// DLT template id of the SMS that carries a voice order's UPI payment
    /// link (`EXOTEL_DLT_TEMPLATE_PAYMENT_LINK`).
    pub exotel_dlt_template_payment_link: Option<String>,
    /// The escalation ladders (LADDERS_FILE, else `config/ladders.toml`).
    pub ladders: LadderBook,
    /// The SMS templates of campaigns and of the ladders' `sms` steps
    /// (`CAMPAIGN_TEMPLATES_FILE`, else `config/campaign_templates.toml`)
    /// with the DLT template ids of `EXOTEL_DLT_TEMPLATE_CAMPAIGN_<TYPE>_<LANG>`.
    pub campaign_templates: TemplateBook,
    /// The numeric DLT header promotional SMS go out under
    /// (`EXOTEL_SMS_SENDER_PROMOTIONAL`, 6 digits); service SMS use
    /// `EXOTEL_SMS_SENDER`.
    pub exotel_sms_sender_promotional: Option<String>,
    /// The number people give a missed call to stop campaign messages
    /// (`OPT_OUT_NUMBER`, one of our ExoPhones): such a call records an
    /// opt-out and is never called back.
    pub opt_out_number: Option<E164>,
    /// Campaigns' default pacing (`CAMPAIGN_*_PER_SECOND`, `CAMPAIGN_MAX_CONCURRENT_CALLS`).
    pub campaigns: crate::campaigns::CampaignSettings,
    /// The WhatsApp Cloud API account; `None`: the simulator in sandbox
    /// mode, no WhatsApp steps in live mode.
    pub whatsapp: Option<WhatsAppSettings>,
    /// App push (PUSH_PROVIDER=fcm|app); `None`: the simulator in sandbox
    /// mode, no push steps in live mode.
    pub push: Option<mangwale_providers::push::PushConfig>,
    /// The voice dialog's LLM fallback (`LLM_URL`); `None`: off.
    pub llm: Option<LlmSettings>,
    /// The voice dialog's NLU service (`NLU_URL`); `None`: off.
    pub nlu: Option<NluSettings>,
    /// The speech engines to run (`ASR_BACKEND`, `TTS_BACKEND`, …).
    pub speech: SpeechSettings,
    pub log_format: LogFormat,
    pub mode: Mode,
}

/// An OpenAI-compatible chat endpoint (vLLM) the voice dialog asks about
/// words its parser cannot resolve.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// The server's root (`http://vllm:8000`; a trailing `/v1` is accepted).
    pub url: Url,
    pub model: String,
    /// Sent as `Authorization: Bearer`.
    pub api_key: Option<Secret>,
    pub timeout: std::time::Duration,
}

/// The NLU service of the user's stack (the contract is in docs/voice.md).
#[derive(Debug, Clone)]
pub struct NluSettings {
    pub url: Url,
    pub timeout: std::time::Duration,
}

/// The WhatsApp Cloud API account.
#[derive(Debug, Clone)]
pub struct WhatsAppSettings {
    pub phone_number_id: String,
    pub access_token: Secret,
    /// Signs the webhooks Meta sends us (`X-Hub-Signature-256`).
    pub app_secret: Option<Secret>,
    /// What Meta presents when the webhook is subscribed.
    pub verify_token: Option<Secret>,
    /// The Graph API base; Meta's by default.
    pub api_url: Option<Url>,
    /// The WhatsApp Business Account id: at start-up its templates are
    /// listed and ours checked against them.
    pub business_account_id: Option<String>,
}

/// The daily window in which callbacks may ring, in India time (IST,
/// UTC+05:30), `CALLBACK_HOURS=08:00-23:00`. `open == close` means always.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackHours {
    pub open: chrono::NaiveTime,
    pub close: chrono::NaiveTime,
}

impl Default for CallbackHours {
    fn default() -> Self {
        let at = |h| chrono::NaiveTime::from_hms_opt(h, 0, 0).unwrap_or_default();
        CallbackHours { open: at(8), close: at(23) }
    }
}

impl CallbackHours {
    /// India's offset: no daylight saving, so a fixed offset is exact.
    pub fn ist() -> chrono::FixedOffset {
        chrono::FixedOffset::east_opt(5 * 3600 + 1800).unwrap_or_else(|| chrono::FixedOffset::east_opt(0).unwrap())
    }

    /// Parses `HH:MM-HH:MM` (a window may wrap past midnight: `20:00-02:00`).
    pub fn parse(text: &str) -> Result<CallbackHours, String> {
        let (open, close) = text.split_once('-').ok_or_else(|| format!("'{text}' is not HH:MM-HH:MM"))?;
        let time = |t: &str| {
            chrono::NaiveTime::parse_from_str(t.trim(), "%H:%M")
                .map_err(|_| format!("'{}' is not a time HH:MM", t.trim()))
        };
        Ok(CallbackHours { open: time(open)?, close: time(close)? })
    }

    /// `at` itself when it lies inside the window, else the next opening.
    pub fn next_allowed(&self, at: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        if self.open == self.close {
            return at;
        }
        let local = at.with_timezone(&Self::ist());
        let t = local.time();
        let inside =
            if self.open < self.close { t >= self.open && t < self.close } else { t >= self.open || t < self.close };
        if inside {
            return at;
        }
        let mut day = local.date_naive();
        if t >= self.open {
            day = day.succ_opt().unwrap_or(day);
        }
        day.and_time(self.open)
            .and_local_timezone(Self::ist())
            .single()
            .map(|d| d.with_timezone(&chrono::Utc))
            .unwrap_or(at)
    }
}

impl fmt::Display for CallbackHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.open.format("%H:%M"), self.close.format("%H:%M"))
    }
}

/// An invalid configuration value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

/// Every ladder's `sms_template` names a service-implicit template of the
/// book: a ladder SMS goes out around the clock and to DND numbers, which
/// only a service-implicit DLT template allows.
fn ladder_sms_templates_exist(ladders: &LadderBook, templates: &TemplateBook) -> Result<(), ConfigError> {
    for kind in LadderKind::ALL {
        let Some(name) = ladders.get(kind).sms_template.as_deref() else { continue };
        let template = TemplateKey::parse(name).ok().and_then(|key| templates.get(&key));
        match template {
            None => {
                return Err(err(
                    "LADDERS_FILE",
                    format!("ladder {kind}: sms_template '{name}' is not in the campaign templates"),
                ));
            }
            Some(t) if t.category != TemplateCategory::ServiceImplicit => {
                return Err(err(
                    "LADDERS_FILE",
                    format!("ladder {kind}: sms_template '{name}' is {}, not service_implicit", t.category.as_str()),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn err(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { var, message: message.into() }
}

/// Shortest API key or webhook token accepted: long enough not to be guessed.
pub const MIN_SECRET_LEN: usize = 16;

/// Where the SQLite database lives when DATABASE_URL is not set.
pub const DEFAULT_DATABASE_URL: &str = "sqlite:./data/mangwale-exotel.db";

/// The sandbox's masking pool when `EXOTEL_MASKING_NUMBERS` is unset: the
/// simulator's ExoPhone connected to the masked-call flow.
pub const SANDBOX_MASKING_NUMBER: &str = mangwale_sim::exotel::DEFAULT_MASKING_EXOPHONE;
/// Demo order desk and admin support of the sandbox (simulated phones).
pub const SANDBOX_ORDER_DESK_PHONE: &str = "+919800000101";
pub const SANDBOX_ADMIN_SUPPORT_PHONE: &str = "+919800000102";

/// The prefix of the campaign templates' DLT ids:
/// `EXOTEL_DLT_TEMPLATE_CAMPAIGN_<TYPE>_<LANG>` (`…_AREA_LAUNCH_HI`).
pub const CAMPAIGN_DLT_PREFIX: &str = "EXOTEL_DLT_TEMPLATE_CAMPAIGN_";

/// Whether the service reads `name`: one of [`VARIABLES`], or a campaign
/// template's DLT id.
pub fn is_variable(name: &str) -> bool {
    VARIABLES.contains(&name) || name.starts_with(CAMPAIGN_DLT_PREFIX)
}

/// A promotional DLT header: 6 digits (TRAI; Exotel's "Sender ID" docs).
pub fn is_promotional_header(h: &str) -> bool {
    h.len() == 6 && h.bytes().all(|b| b.is_ascii_digit())
}

/// A transactional or service DLT header: 6 letters A-Z (TRAI; Exotel's
/// "DLT Header Registration" docs).
pub fn is_service_header(h: &str) -> bool {
    h.len() == 6 && h.bytes().all(|b| b.is_ascii_uppercase())
}

/// The campaign templates: `CAMPAIGN_TEMPLATES_FILE` or the built-in ones,
/// with each `EXOTEL_DLT_TEMPLATE_CAMPAIGN_<TYPE>_<LANG>` set as the DLT
/// template id of that template's language. A variable naming no template
/// or language, or an id that is not digits, stops start-up.
fn campaign_templates(vars: &HashMap<String, String>, file: Option<String>) -> Result<TemplateBook, ConfigError> {
    let mut book = match file {
        None => TemplateBook::defaults(),
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| err("CAMPAIGN_TEMPLATES_FILE", format!("{path} could not be read: {e}")))?;
            TemplateBook::from_toml(&text).map_err(|e| err("CAMPAIGN_TEMPLATES_FILE", format!("{path}: {e}")))?
        }
    };
    let mut ids: Vec<(&String, &String)> = vars.iter().filter(|(k, _)| k.starts_with(CAMPAIGN_DLT_PREFIX)).collect();
    ids.sort();
    for (name, id) in ids {
        let id = id.trim();
        let rest = &name[CAMPAIGN_DLT_PREFIX.len()..];
        let lang = rest.rsplit_once('_').map(|(_, l)| l.to_ascii_lowercase());
        let key = rest.rsplit_once('_').map(|(t, _)| t.to_ascii_lowercase());
        let lang = match lang.as_deref() {
            Some("hi") => LanguageKey::Hi,
            Some("en") => LanguageKey::En,
            Some("mr") => LanguageKey::Mr,
            _ => return Err(err("EXOTEL_DLT_TEMPLATE_CAMPAIGN_", format!("{name}: must end in _HI, _EN or _MR"))),
        };
        let key = key
            .as_deref()
            .and_then(|k| TemplateKey::parse(k).ok())
            .ok_or_else(|| err("EXOTEL_DLT_TEMPLATE_CAMPAIGN_", format!("{name}: names no template")))?;
        if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(
                "EXOTEL_DLT_TEMPLATE_CAMPAIGN_",
                format!("{name}: '{id}' is not a DLT template id (digits)"),
            ));
        }
        if !book.set_dlt_template_id(&key, lang, id.to_string()) {
            return Err(err(
                "EXOTEL_DLT_TEMPLATE_CAMPAIGN_",
                format!("{name}: template '{key}' has no such language (or no such template)"),
            ));
        }
    }
    Ok(book)
}

/// Every variable the service reads, for `check-config` and the README.
pub const VARIABLES: &[&str] = &[
    "PORT",
    "HOST",
    "DATABASE_URL",
    "PUBLIC_BASE_URL",
    "EXOTEL_SID",
    "EXOTEL_API_KEY",
    "EXOTEL_API_TOKEN",
    "EXOTEL_SUBDOMAIN",
    "EXOTEL_REGION",
    "EXOTEL_API_URL",
    "EXOTEL_FLOW_HOST",
    "EXOTEL_CALLER_ID",
    "EXOTEL_DID_NEW_ORDER",
    "EXOTEL_DID_REMINDER",
    "EXOTEL_DID_ADDRESS",
    "EXOTEL_WEBHOOK_TOKEN",
    "JUPITER_URL",
    "PHP_BACKEND_URL",
    "JUPITER_API_KEY",
    "JUPITER_WEBHOOK_SECRET",
    "JUPITER_REQUIRE_TIMESTAMP",
    "API_KEYS",
    "ADMIN_SUPPORT_PHONE",
    "ORDER_DESK_PHONE",
    "CALLER_LOOKUP_DEADLINE_MS",
    "MISSED_CALL_CALLBACK_SECONDS",
    "MISSED_CALL_WINDOW_MINUTES",
    "CALLBACK_HOURS",
    "EXOTEL_MASKING_NUMBERS",
    "MASKING_TTL_MINUTES",
    "MASKING_GRACE_MINUTES",
    "MASKING_RECORD",
    "EXOTEL_APP_IDS",
    "EXOTEL_VOICE_PER_MINUTE",
    "EXOTEL_SMS_PER_MINUTE",
    "EXOTEL_SMS_SENDER",
    "EXOTEL_DLT_ENTITY_ID",
    "EXOTEL_DLT_TEMPLATE_ADMIN_ALERT",
    "EXOTEL_DLT_TEMPLATE_MISSED_CALL",
    "EXOTEL_DLT_TEMPLATE_RIDER_PICKUP",
    "EXOTEL_DLT_TEMPLATE_PAYMENT_LINK",
    "LADDERS_FILE",
    "CAMPAIGN_TEMPLATES_FILE",
    "EXOTEL_SMS_SENDER_PROMOTIONAL",
    "OPT_OUT_NUMBER",
    "CAMPAIGN_SMS_PER_SECOND",
    "CAMPAIGN_CALLS_PER_SECOND",
    "CAMPAIGN_MAX_CONCURRENT_CALLS",
    "CAMPAIGN_BREAKER_FAILURE_SHARE",
    "CAMPAIGN_BREAKER_WINDOW",
    "CAMPAIGN_VOICE_REQUESTS_PER_MINUTE",
    "CAMPAIGN_CLAIM_LEASE_SECONDS",
    "WHATSAPP_PHONE_NUMBER_ID",
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_API_URL",
    "WHATSAPP_BUSINESS_ACCOUNT_ID",
    "PUSH_PROVIDER",
    "FCM_PROJECT_ID",
    "FCM_SERVICE_ACCOUNT_JSON",
    "FCM_BASE_URL",
    "APP_PUSH_URL",
    "APP_PUSH_API_KEY",
    "LLM_URL",
    "LLM_MODEL",
    "LLM_API_KEY",
    "LLM_TIMEOUT_MS",
    "NLU_URL",
    "NLU_TIMEOUT_MS",
    "ASR_BACKEND",
    "ASR_URL",
    "ASR_TIMEOUT_MS",
    "OPENAI_ASR_URL",
    "OPENAI_ASR_API_KEY",
    "OPENAI_ASR_MODEL",
    "MODELS_DIR",
    "WHISPER_MODEL",
    "WHISPER_THREADS",
    "WHISPER_MAX_TOKENS",
    "TTS_BACKEND",
    "TTS_URL",
    "TTS_VOICE",
    "TTS_TIMEOUT_MS",
    "ESPEAK_PROGRAM",
    "LOG_FORMAT",
];

impl Config {
    /// Reads the process environment, after loading `.env` from the working
    /// directory if there is one (variables already set win).
    pub fn from_env() -> Result<Config, ConfigError> {
        if Path::new(".env").exists() {
            dotenvy::dotenv().map_err(|e| err("DOTENV", format!(".env could not be read: {e}")))?;
        }
        Config::from_vars(std::env::vars())
    }

    /// Builds a configuration from variables; empty values count as unset.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> =
            vars.into_iter().filter(|(k, v)| is_variable(k) && !v.trim().is_empty()).collect();
        let get = |name: &str| vars.get(name).map(|v| v.trim().to_string());

        let port = match get("PORT") {
            None => 3100,
            Some(p) => p.parse::<u16>().map_err(|_| err("PORT", format!("'{p}' is not a port number (0-65535)")))?,
        };
        let host = match get("HOST") {
            None => IpAddr::from([0, 0, 0, 0]),
            Some(h) => h.parse().map_err(|_| err("HOST", format!("'{h}' is not an IP address")))?,
        };
        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(err("DATABASE_URL", "must start with sqlite:, postgres:// or postgresql://"));
        }
        let public_base_url = match get("PUBLIC_BASE_URL") {
            None => Url::parse(&format!("http://127.0.0.1:{port}")).map_err(|e| err("PORT", e.to_string()))?,
            Some(u) => http_url("PUBLIC_BASE_URL", &u)?,
        };

        let sid = get("EXOTEL_SID");
        let key = get("EXOTEL_API_KEY");
        let token = get("EXOTEL_API_TOKEN");
        let exotel = match (sid, key, token) {
            (None, None, None) => None,
            (Some(sid), Some(key), Some(token)) => {
                if !sid.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    return Err(err("EXOTEL_SID", "may contain only letters, digits, '-' and '_'"));
                }
                Some(ExotelCredentials { sid, api_key: Secret(key), api_token: Secret(token) })
            }
            (sid, key, _) => {
                let missing = if sid.is_none() {
                    "EXOTEL_SID"
                } else if key.is_none() {
                    "EXOTEL_API_KEY"
                } else {
                    "EXOTEL_API_TOKEN"
                };
                return Err(err(
                    missing,
                    "is required when any Exotel credential is set (set EXOTEL_SID, EXOTEL_API_KEY and EXOTEL_API_TOKEN, or none for sandbox mode)",
                ));
            }
        };
        let mode = if exotel.is_some() { Mode::Live } else { Mode::Sandbox };

        let exotel_subdomain = get("EXOTEL_SUBDOMAIN").unwrap_or_else(|| "api".to_string());
        if !is_dns_label(&exotel_subdomain) {
            return Err(err("EXOTEL_SUBDOMAIN", "must be a host label such as 'api'"));
        }
        let exotel_region = get("EXOTEL_REGION").map(|r| r.to_ascii_lowercase());
        if let Some(region) = &exotel_region
            && !is_dns_label(region)
        {
            return Err(err("EXOTEL_REGION", "must be a host label such as 'in' (Mumbai cluster)"));
        }
        let exotel_api_url = get("EXOTEL_API_URL").map(|u| exotel_api_url(&u)).transpose()?;
        if exotel_api_url.is_some() && exotel.is_none() {
            return Err(err(
                "EXOTEL_API_URL",
                "is for live mode: set EXOTEL_SID, EXOTEL_API_KEY and EXOTEL_API_TOKEN too (sandbox mode runs its own simulator)",
            ));
        }
        let exotel_flow_host = get("EXOTEL_FLOW_HOST").map(|h| h.to_ascii_lowercase());
        if let Some(host) = &exotel_flow_host
            && !host.split('.').all(is_dns_label)
        {
            return Err(err("EXOTEL_FLOW_HOST", "must be a host name such as 'my.in.exotel.com'"));
        }

        let phone = |name: &'static str| -> Result<Option<E164>, ConfigError> {
            get(name).map(|v| E164::parse(&v).map_err(|e| err(name, e.0))).transpose()
        };
        let url = |name: &'static str| -> Result<Option<Url>, ConfigError> {
            get(name).map(|v| http_url(name, &v)).transpose()
        };
        let secret = |name: &'static str| -> Result<Option<Secret>, ConfigError> {
            match get(name) {
                None => Ok(None),
                Some(v) if v.len() < MIN_SECRET_LEN && matches!(name, "EXOTEL_WEBHOOK_TOKEN") => {
                    Err(err(name, format!("must be at least {MIN_SECRET_LEN} characters")))
                }
                Some(v) => Ok(Some(Secret(v))),
            }
        };

        let api_keys = match get("API_KEYS") {
            None => Vec::new(),
            Some(list) => {
                let keys: Vec<Secret> =
                    list.split(',').map(str::trim).filter(|k| !k.is_empty()).map(Secret::new).collect();
                if keys.iter().any(|k| k.0.len() < MIN_SECRET_LEN) {
                    return Err(err("API_KEYS", format!("every key must be at least {MIN_SECRET_LEN} characters")));
                }
                keys
            }
        };
        let mut exotel_app_ids = std::collections::BTreeMap::new();
        if let Some(list) = get("EXOTEL_APP_IDS") {
            for pair in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (flow, app) = pair
                    .split_once('=')
                    .map(|(f, a)| (f.trim(), a.trim()))
                    .filter(|(f, a)| !f.is_empty() && !a.is_empty())
                    .ok_or_else(|| err("EXOTEL_APP_IDS", format!("'{pair}' is not flow=app_id")))?;
                if !app.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    return Err(err(
                        "EXOTEL_APP_IDS",
                        format!("app id '{app}' may contain only letters, digits, '-', '_'"),
                    ));
                }
                exotel_app_ids.insert(flow.to_string(), app.to_string());
            }
        }
        let per_minute = |name: &'static str| match get(name) {
            None => Ok(200),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or_else(|| err(name, format!("'{v}' is not a number from 1 to 10000"))),
        };
        let exotel_voice_per_minute = per_minute("EXOTEL_VOICE_PER_MINUTE")?;
        let exotel_sms_per_minute = per_minute("EXOTEL_SMS_PER_MINUTE")?;
        let jupiter_require_timestamp =
            match get("JUPITER_REQUIRE_TIMESTAMP").map(|v| v.to_ascii_lowercase()).as_deref() {
                None | Some("false") | Some("0") | Some("no") => false,
                Some("true") | Some("1") | Some("yes") => true,
                Some(other) => {
                    return Err(err("JUPITER_REQUIRE_TIMESTAMP", format!("'{other}' is not 'true' or 'false'")));
                }
            };
        let bounded =
            |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| match get(name) {
                None => Ok(default),
                Some(v) => v.parse::<u64>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                    err(name, format!("'{v}' is not a number from {} to {}", range.start(), range.end()))
                }),
            };
        let seconds = std::time::Duration::from_secs;
        let caller_lookup_deadline =
            std::time::Duration::from_millis(bounded("CALLER_LOOKUP_DEADLINE_MS", 1500, 50..=10_000)?);
        let missed_call_callback_delay = seconds(bounded("MISSED_CALL_CALLBACK_SECONDS", 30, 0..=3600)?);
        let missed_call_window = seconds(60 * bounded("MISSED_CALL_WINDOW_MINUTES", 10, 1..=1440)?);
        let callback_hours = match get("CALLBACK_HOURS") {
            None => CallbackHours::default(),
            Some(v) => CallbackHours::parse(&v).map_err(|m| err("CALLBACK_HOURS", m))?,
        };
        let masking_ttl = seconds(60 * bounded("MASKING_TTL_MINUTES", 120, 1..=10_080)?);
        let masking_grace = seconds(60 * bounded("MASKING_GRACE_MINUTES", 30, 0..=1440)?);
        let masking_record = match get("MASKING_RECORD").map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false") | Some("0") | Some("no") => false,
            Some("true") | Some("1") | Some("yes") => true,
            Some(other) => return Err(err("MASKING_RECORD", format!("'{other}' is not 'true' or 'false'"))),
        };
        let mut masking_numbers: Vec<E164> = Vec::new();
        for number in get("EXOTEL_MASKING_NUMBERS").iter().flat_map(|l| l.split(',')).map(str::trim) {
            if number.is_empty() {
                continue;
            }
            let parsed = E164::parse(number).map_err(|e| err("EXOTEL_MASKING_NUMBERS", e.0))?;
            if !masking_numbers.contains(&parsed) {
                masking_numbers.push(parsed);
            }
        }
        let log_format = match get("LOG_FORMAT").map(|f| f.to_ascii_lowercase()).as_deref() {
            None | Some("text") | Some("pretty") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(err("LOG_FORMAT", format!("'{other}' is not 'json' or 'text'"))),
        };

        let ladders = match get("LADDERS_FILE") {
            None => LadderBook::defaults(),
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| err("LADDERS_FILE", format!("{path} could not be read: {e}")))?;
                LadderBook::from_toml(&text).map_err(|e| err("LADDERS_FILE", format!("{path}: {e}")))?
            }
        };
        let campaign_templates = campaign_templates(&vars, get("CAMPAIGN_TEMPLATES_FILE"))?;
        ladder_sms_templates_exist(&ladders, &campaign_templates)?;
        let exotel_sms_sender_promotional = match get("EXOTEL_SMS_SENDER_PROMOTIONAL") {
            Some(h) if !is_promotional_header(&h) => {
                return Err(err(
                    "EXOTEL_SMS_SENDER_PROMOTIONAL",
                    format!("'{h}' is not a promotional DLT header: exactly 6 digits"),
                ));
            }
            header => header,
        };
        let whatsapp = match (get("WHATSAPP_PHONE_NUMBER_ID"), get("WHATSAPP_ACCESS_TOKEN")) {
            (None, None) => None,
            (Some(phone_number_id), Some(token)) => Some(WhatsAppSettings {
                phone_number_id,
                access_token: Secret(token),
                app_secret: secret("WHATSAPP_APP_SECRET")?,
                verify_token: secret("WHATSAPP_VERIFY_TOKEN")?,
                api_url: url("WHATSAPP_API_URL")?,
                business_account_id: match get("WHATSAPP_BUSINESS_ACCOUNT_ID") {
                    Some(id) if id.len() <= 32 && id.bytes().all(|b| b.is_ascii_digit()) => Some(id),
                    Some(_) => {
                        return Err(err(
                            "WHATSAPP_BUSINESS_ACCOUNT_ID",
                            "must be the numeric id of the WhatsApp Business Account",
                        ));
                    }
                    None => None,
                },
            }),
            (None, Some(_)) => return Err(err("WHATSAPP_PHONE_NUMBER_ID", "is required with WHATSAPP_ACCESS_TOKEN")),
            (Some(_), None) => return Err(err("WHATSAPP_ACCESS_TOKEN", "is required with WHATSAPP_PHONE_NUMBER_ID")),
        };
        let push = match get("PUSH_PROVIDER") {
            None => None,
            Some(_) => {
                let env = mangwale_providers::push::PushEnv::from_lookup(|name| get(name));
                let config = mangwale_providers::push::PushConfig::from_env(&env)
                    .map_err(|e| err(e.variable, e.message.clone()))?;
                Some(config)
            }
        };
        let llm = match (url("LLM_URL")?, get("LLM_MODEL")) {
            (Some(url), Some(model)) => Some(LlmSettings {
                url,
                model,
                api_key: get("LLM_API_KEY").map(Secret),
                timeout: std::time::Duration::from_millis(bounded("LLM_TIMEOUT_MS", 2500, 100..=30_000)?),
            }),
            (Some(_), None) => return Err(err("LLM_MODEL", "is required with LLM_URL (the model the server serves)")),
            (None, _) => {
                if let Some(var) = ["LLM_MODEL", "LLM_API_KEY", "LLM_TIMEOUT_MS"].into_iter().find(|v| get(v).is_some())
                {
                    return Err(err("LLM_URL", format!("is required with {var} (without it the LLM fallback is off)")));
                }
                None
            }
        };
        let nlu = match url("NLU_URL")? {
            Some(url) => Some(NluSettings {
                url,
                timeout: std::time::Duration::from_millis(bounded("NLU_TIMEOUT_MS", 1000, 100..=10_000)?),
            }),
            None if get("NLU_TIMEOUT_MS").is_some() => {
                return Err(err("NLU_URL", "is required with NLU_TIMEOUT_MS (without it the NLU fallback is off)"));
            }
            None => None,
        };

        let speech = SpeechSettings::from_lookup(&get)?;
        let campaigns = crate::campaigns::CampaignSettings::from_lookup(&get)?;

        let config = Config {
            host,
            port,
            database_url,
            public_base_url,
            exotel,
            exotel_subdomain,
            exotel_region,
            exotel_api_url,
            exotel_flow_host,
            exotel_caller_id: phone("EXOTEL_CALLER_ID")?,
            did_new_order: phone("EXOTEL_DID_NEW_ORDER")?,
            did_reminder: phone("EXOTEL_DID_REMINDER")?,
            did_address: phone("EXOTEL_DID_ADDRESS")?,
            jupiter_url: url("JUPITER_URL")?,
            php_backend_url: url("PHP_BACKEND_URL")?,
            jupiter_api_key: secret("JUPITER_API_KEY")?,
            jupiter_webhook_secret: secret("JUPITER_WEBHOOK_SECRET")?,
            jupiter_require_timestamp,
            api_keys,
            exotel_webhook_token: secret("EXOTEL_WEBHOOK_TOKEN")?,
            admin_support_phone: phone("ADMIN_SUPPORT_PHONE")?,
            order_desk_phone: phone("ORDER_DESK_PHONE")?,
            caller_lookup_deadline,
            missed_call_callback_delay,
            missed_call_window,
            callback_hours,
            masking_numbers,
            masking_ttl,
            masking_grace,
            masking_record,
            exotel_app_ids,
            exotel_voice_per_minute,
            exotel_sms_per_minute,
            exotel_sms_sender: get("EXOTEL_SMS_SENDER"),
            exotel_dlt_entity_id: get("EXOTEL_DLT_ENTITY_ID"),
            exotel_dlt_template_admin_alert: get("EXOTEL_DLT_TEMPLATE_ADMIN_ALERT"),
            exotel_dlt_template_missed_call: get("EXOTEL_DLT_TEMPLATE_MISSED_CALL"),
            exotel_dlt_template_rider_pickup: get("EXOTEL_DLT_TEMPLATE_RIDER_PICKUP"),
            exotel_dlt_template_payment_link: get("EXOTEL_DLT_TEMPLATE_PAYMENT_LINK"),
            ladders,
            campaign_templates,
            exotel_sms_sender_promotional,
            opt_out_number: phone("OPT_OUT_NUMBER")?,
            campaigns,
            whatsapp,
            push,
            llm,
            nlu,
            speech,
            log_format,
            mode,
        };
        config.check_live_requirements()?;
        config.check_jupiter_webhooks_are_signed()?;
        Ok(config)
    }

    /// The real systems this configuration reaches (as opposed to the
    /// built-in simulators): an unsigned Jupiter webhook could act on them.
    pub fn real_counterparts(&self) -> Vec<&'static str> {
        let mut real = Vec::new();
        if self.exotel.is_some() {
            real.push("Exotel (EXOTEL_SID)");
        }
        if self.jupiter_url.is_some() {
            real.push("Jupiter (JUPITER_URL)");
        }
        if self.whatsapp.is_some() {
            real.push("WhatsApp (WHATSAPP_PHONE_NUMBER_ID)");
        }
        if self.push.is_some() {
            real.push("app push (PUSH_PROVIDER)");
        }
        real
    }

    /// Jupiter's webhooks start ladders and tell Jupiter to reassign orders.
    /// Unsigned ones are accepted only while everything they could reach is
    /// simulated.
    fn check_jupiter_webhooks_are_signed(&self) -> Result<(), ConfigError> {
        if self.jupiter_webhook_secret.is_some() {
            return Ok(());
        }
        let real = self.real_counterparts();
        if !real.is_empty() {
            return Err(err(
                "JUPITER_WEBHOOK_SECRET",
                format!(
                    "is required when a real system is configured ({}): unsigned Jupiter webhooks would act on it",
                    real.join(", ")
                ),
            ));
        }
        if self.jupiter_require_timestamp {
            return Err(err("JUPITER_WEBHOOK_SECRET", "is required with JUPITER_REQUIRE_TIMESTAMP"));
        }
        Ok(())
    }

    /// Live mode spends money and reaches real phones: it refuses to start
    /// open or half-configured.
    fn check_live_requirements(&self) -> Result<(), ConfigError> {
        if self.mode != Mode::Live {
            return Ok(());
        }
        if self.api_keys.is_empty() {
            return Err(err("API_KEYS", "is required in live mode (internal routes are never open)"));
        }
        if self.exotel_webhook_token.is_none() {
            return Err(err("EXOTEL_WEBHOOK_TOKEN", "is required in live mode (Exotel callbacks are never open)"));
        }
        if self.exotel_caller_id.is_none() {
            return Err(err("EXOTEL_CALLER_ID", "is required in live mode (every call needs an ExoPhone)"));
        }
        if self.jupiter_url.is_none() {
            return Err(err("JUPITER_URL", "is required in live mode"));
        }
        if self.jupiter_webhook_secret.is_none() {
            return Err(err(
                "JUPITER_WEBHOOK_SECRET",
                "is required in live mode (Jupiter webhooks are never unsigned)",
            ));
        }
        if self.whatsapp.as_ref().is_some_and(|w| w.app_secret.is_none()) {
            return Err(err(
                "WHATSAPP_APP_SECRET",
                "is required in live mode with WhatsApp (its webhooks are verified by it)",
            ));
        }
        let host = self.public_base_url.host_str().unwrap_or("");
        if host == "127.0.0.1" || host == "localhost" || host == "0.0.0.0" {
            return Err(err("PUBLIC_BASE_URL", "must be an address Exotel can reach in live mode"));
        }
        Ok(())
    }

    /// Fills in, in sandbox mode, what the demo's inbound calls need to
    /// reach someone when it is unset: the simulator's masked-call ExoPhone
    /// as the masking pool, and demo numbers (answered by the simulator) for
    /// the order desk and admin support. `serve` calls it; tests do not, so
    /// they see exactly what they configure. Returns the variables it set.
    pub fn apply_sandbox_demo_defaults(&mut self) -> Vec<&'static str> {
        let mut applied = Vec::new();
        if self.mode != Mode::Sandbox {
            return applied;
        }
        let demo = |number: &str| E164::parse(number).ok();
        if self.masking_numbers.is_empty()
            && let Some(number) = demo(SANDBOX_MASKING_NUMBER)
        {
            self.masking_numbers.push(number);
            applied.push("EXOTEL_MASKING_NUMBERS");
        }
        // Only when neither is set: a set ADMIN_SUPPORT_PHONE is the order
        // desk's documented fallback.
        if self.order_desk_phone.is_none() && self.admin_support_phone.is_none() {
            self.order_desk_phone = demo(SANDBOX_ORDER_DESK_PHONE);
            applied.extend(self.order_desk_phone.as_ref().map(|_| "ORDER_DESK_PHONE"));
        }
        if self.admin_support_phone.is_none() {
            self.admin_support_phone = demo(SANDBOX_ADMIN_SUPPORT_PHONE);
            applied.extend(self.admin_support_phone.as_ref().map(|_| "ADMIN_SUPPORT_PHONE"));
        }
        applied
    }

    /// Where a caller who wants to order is connected: the order desk, else
    /// admin support.
    pub fn order_desk(&self) -> Option<&E164> {
        self.order_desk_phone.as_ref().or(self.admin_support_phone.as_ref())
    }

    /// The Exotel API host: `<subdomain>[.<region>].exotel.com`.
    pub fn exotel_host(&self) -> String {
        match &self.exotel_region {
            Some(region) => format!("{}.{region}.exotel.com", self.exotel_subdomain),
            None => format!("{}.exotel.com", self.exotel_subdomain),
        }
    }

    /// The base URL of Exotel's API in live mode: `EXOTEL_API_URL` when set
    /// (without a trailing slash), else `https://` and [`Self::exotel_host`].
    pub fn exotel_api_base(&self) -> String {
        match &self.exotel_api_url {
            Some(url) => url.as_str().trim_end_matches('/').to_string(),
            None => format!("https://{}", self.exotel_host()),
        }
    }

    /// [`Config::describe`] for the operations console (`/ops/config`):
    /// each secret is only "set" or "not set", and no line tells a
    /// secret's length.
    pub fn report(&self) -> Vec<ConfigVariable> {
        self.describe()
            .into_iter()
            .map(|(name, value)| {
                let secret = SECRET_VARIABLES.contains(&name);
                let value = if !secret {
                    without_secret_lengths(&value)
                } else if value.starts_with("not set") || value.starts_with("0 key") {
                    "not set".to_string()
                } else {
                    "set".to_string()
                };
                ConfigVariable { name, value, secret }
            })
            .collect()
    }

    /// The effective configuration as lines of `NAME = value`, with secrets
    /// and phone numbers masked. For `check-config`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let secret = |s: &Option<Secret>| match s {
            Some(s) => format!("set ({} characters)", s.0.len()),
            None => "not set".to_string(),
        };
        let phone = |p: &Option<E164>| p.as_ref().map(E164::masked).unwrap_or_else(|| "not set".into());
        let url = |u: &Option<Url>| u.as_ref().map(Url::to_string).unwrap_or_else(|| "not set".into());
        vec![
            ("MODE", self.mode.as_str().to_string()),
            ("HOST", self.host.to_string()),
            ("PORT", self.port.to_string()),
            ("DATABASE_URL", mangwale_store::redact_url(&self.database_url)),
            ("PUBLIC_BASE_URL", self.public_base_url.to_string()),
            ("EXOTEL_SID", self.exotel.as_ref().map(|e| e.sid.clone()).unwrap_or_else(|| "not set".into())),
            ("EXOTEL_API_KEY", secret(&self.exotel.as_ref().map(|e| e.api_key.clone()))),
            ("EXOTEL_API_TOKEN", secret(&self.exotel.as_ref().map(|e| e.api_token.clone()))),
            ("EXOTEL_HOST", self.exotel_host()),
            (
                "EXOTEL_API_URL",
                match (&self.exotel_api_url, self.mode) {
                    (Some(_), _) => self.exotel_api_base(),
                    (None, Mode::Live) => format!("{} (from EXOTEL_SUBDOMAIN/EXOTEL_REGION)", self.exotel_api_base()),
                    (None, Mode::Sandbox) => "the built-in simulator (sandbox mode)".into(),
                },
            ),
            ("EXOTEL_FLOW_HOST", crate::exotel::flow_base_url(self)),
            ("EXOTEL_CALLER_ID", phone(&self.exotel_caller_id)),
            ("EXOTEL_DID_NEW_ORDER", phone(&self.did_new_order)),
            ("EXOTEL_DID_REMINDER", phone(&self.did_reminder)),
            ("EXOTEL_DID_ADDRESS", phone(&self.did_address)),
            ("EXOTEL_WEBHOOK_TOKEN", secret(&self.exotel_webhook_token)),
            ("JUPITER_URL", url(&self.jupiter_url)),
            ("PHP_BACKEND_URL", url(&self.php_backend_url)),
            ("JUPITER_API_KEY", secret(&self.jupiter_api_key)),
            ("JUPITER_WEBHOOK_SECRET", secret(&self.jupiter_webhook_secret)),
            ("JUPITER_REQUIRE_TIMESTAMP", self.jupiter_require_timestamp.to_string()),
            ("API_KEYS", format!("{} key(s)", self.api_keys.len())),
            ("ADMIN_SUPPORT_PHONE", phone(&self.admin_support_phone)),
            ("ORDER_DESK_PHONE", phone(&self.order_desk_phone)),
            ("CALLER_LOOKUP_DEADLINE_MS", self.caller_lookup_deadline.as_millis().to_string()),
            ("MISSED_CALL_CALLBACK_SECONDS", self.missed_call_callback_delay.as_secs().to_string()),
            ("MISSED_CALL_WINDOW_MINUTES", (self.missed_call_window.as_secs() / 60).to_string()),
            ("CALLBACK_HOURS", format!("{} IST", self.callback_hours)),
            (
                "EXOTEL_MASKING_NUMBERS",
                match self.masking_numbers.len() {
                    0 => "none (masked calls go to support)".into(),
                    n => {
                        format!("{n}: {}", self.masking_numbers.iter().map(E164::masked).collect::<Vec<_>>().join(","))
                    }
                },
            ),
            ("MASKING_TTL_MINUTES", (self.masking_ttl.as_secs() / 60).to_string()),
            ("MASKING_GRACE_MINUTES", (self.masking_grace.as_secs() / 60).to_string()),
            ("MASKING_RECORD", self.masking_record.to_string()),
            (
                "EXOTEL_APP_IDS",
                self.exotel_app_ids.iter().map(|(f, a)| format!("{f}={a}")).collect::<Vec<_>>().join(","),
            ),
            ("EXOTEL_VOICE_PER_MINUTE", self.exotel_voice_per_minute.to_string()),
            ("EXOTEL_SMS_PER_MINUTE", self.exotel_sms_per_minute.to_string()),
            ("EXOTEL_SMS_SENDER", self.exotel_sms_sender.clone().unwrap_or_else(|| "the caller id".into())),
            ("EXOTEL_DLT_ENTITY_ID", self.exotel_dlt_entity_id.clone().unwrap_or_else(|| "not set".into())),
            (
                "EXOTEL_DLT_TEMPLATE_ADMIN_ALERT",
                self.exotel_dlt_template_admin_alert.clone().unwrap_or_else(|| "not set".into()),
            ),
            (
                "EXOTEL_DLT_TEMPLATE_MISSED_CALL",
                self.exotel_dlt_template_missed_call.clone().unwrap_or_else(|| "not set".into()),
            ),
            (
                "EXOTEL_DLT_TEMPLATE_RIDER_PICKUP",
                self.exotel_dlt_template_rider_pickup.clone().unwrap_or_else(|| "not set".into()),
            ),
            (
                "EXOTEL_DLT_TEMPLATE_PAYMENT_LINK",
                self.exotel_dlt_template_payment_link.clone().unwrap_or_else(|| "not set".into()),
            ),
            (
                "EXOTEL_SMS_SENDER_PROMOTIONAL",
                self.exotel_sms_sender_promotional.clone().unwrap_or_else(|| "not set".into()),
            ),
            ("OPT_OUT_NUMBER", phone(&self.opt_out_number)),
            ("CAMPAIGN_TEMPLATES", {
                let ids = self
                    .campaign_templates
                    .iter()
                    .flat_map(|t| t.texts.values())
                    .filter(|t| t.dlt_template_id.is_some())
                    .count();
                let texts: usize = self.campaign_templates.iter().map(|t| t.texts.len()).sum();
                format!("{} templates, {ids} of {texts} texts with a DLT id", self.campaign_templates.len())
            }),
            (
                "WHATSAPP",
                match &self.whatsapp {
                    Some(w) => format!(
                        "phone number id {}, business account {}, token {}, app secret {}",
                        w.phone_number_id,
                        w.business_account_id.as_deref().unwrap_or("not set"),
                        secret(&Some(w.access_token.clone())),
                        secret(&w.app_secret)
                    ),
                    None => "not set (sandbox: simulator)".into(),
                },
            ),
            (
                "PUSH_PROVIDER",
                match &self.push {
                    Some(mangwale_providers::push::PushConfig::Fcm(_)) => "fcm".into(),
                    Some(_) => "app".into(),
                    None => "not set (sandbox: simulator)".into(),
                },
            ),
            (
                "LLM",
                match &self.llm {
                    Some(llm) => format!(
                        "{} model {}, key {}, timeout {} ms",
                        llm.url,
                        llm.model,
                        secret(&llm.api_key),
                        llm.timeout.as_millis()
                    ),
                    None => "not set (no LLM fallback)".into(),
                },
            ),
            (
                "NLU",
                match &self.nlu {
                    Some(nlu) => format!("{} timeout {} ms", nlu.url, nlu.timeout.as_millis()),
                    None => "not set (no NLU fallback)".into(),
                },
            ),
        ]
        .into_iter()
        .chain(self.speech.describe())
        .chain(self.campaigns.describe())
        .chain([("LOG_FORMAT", format!("{:?}", self.log_format).to_lowercase())])
        .collect()
    }
}

/// One variable of the effective configuration, as the operations console
/// shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigVariable {
    pub name: &'static str,
    /// The value, or for a secret only whether it is set.
    pub value: String,
    pub secret: bool,
}

/// The variables of [`Config::describe`] whose values are secrets.
pub const SECRET_VARIABLES: &[&str] = &[
    "EXOTEL_API_KEY",
    "EXOTEL_API_TOKEN",
    "EXOTEL_WEBHOOK_TOKEN",
    "JUPITER_API_KEY",
    "JUPITER_WEBHOOK_SECRET",
    "API_KEYS",
    "OPENAI_ASR_API_KEY",
];

/// `set (40 characters)` becomes `set`, wherever it appears in a line that
/// names several settings (`WHATSAPP`, `LLM`).
fn without_secret_lengths(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find("set (") {
        let (before, after) = rest.split_at(at + "set".len());
        out.push_str(before);
        let inner = &after[" (".len()..];
        let digits = inner.bytes().take_while(u8::is_ascii_digit).count();
        match inner[digits..].strip_prefix(" characters)") {
            Some(tail) if digits > 0 => rest = tail,
            _ => {
                out.push_str(" (");
                rest = inner;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Which recogniser runs (`ASR_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsrBackend {
    /// The user's ASR server if `ASR_URL` is set, else the OpenAI-compatible
    /// endpoint if `OPENAI_ASR_URL` is, else Whisper if its model is in
    /// `MODELS_DIR`, else (sandbox) the in-process ASR simulator, else none.
    Auto,
    /// The user's ASR server (`ASR_URL`).
    Http,
    /// An OpenAI-compatible `/audio/transcriptions` (`OPENAI_ASR_URL`).
    OpenAi,
    /// The embedded Whisper (`MODELS_DIR`, `WHISPER_*`).
    Whisper,
    None,
}

impl AsrBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            AsrBackend::Auto => "auto",
            AsrBackend::Http => "http",
            AsrBackend::OpenAi => "openai",
            AsrBackend::Whisper => "whisper",
            AsrBackend::None => "none",
        }
    }
}

/// Which synthesiser runs (`TTS_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtsBackend {
    /// The user's TTS server if `TTS_URL` is set, else espeak-ng if it
    /// runs, else none.
    Auto,
    /// The user's TTS server (`TTS_URL`).
    Http,
    /// espeak-ng's command line (`ESPEAK_PROGRAM`).
    Espeak,
    None,
}

impl TtsBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            TtsBackend::Auto => "auto",
            TtsBackend::Http => "http",
            TtsBackend::Espeak => "espeak",
            TtsBackend::None => "none",
        }
    }
}

/// The speech engines' configuration. Which engines actually run is
/// decided at start ([`crate::speech::Speech::start`]): a configured engine
/// that is missing (no model, no espeak-ng) never stops the service.
#[derive(Debug, Clone)]
pub struct SpeechSettings {
    pub asr_backend: AsrBackend,
    /// The user's ASR server's root (`POST {ASR_URL}/transcribe`).
    pub asr_url: Option<Url>,
    /// How long one recognition may take, for both HTTP recognisers.
    pub asr_timeout: std::time::Duration,
    /// An OpenAI-compatible API base, ending in `/v1`.
    pub openai_asr_url: Option<Url>,
    /// Sent as `Authorization: Bearer`.
    pub openai_asr_api_key: Option<Secret>,
    pub openai_asr_model: String,
    /// Where `models fetch` puts the Whisper model.
    pub models_dir: std::path::PathBuf,
    /// `base` or `small`.
    pub whisper_model: String,
    pub whisper_threads: usize,
    /// The most tokens one utterance may decode to.
    pub whisper_max_tokens: usize,
    pub tts_backend: TtsBackend,
    /// The user's TTS server's root (`POST {TTS_URL}/synthesize`).
    pub tts_url: Option<Url>,
    /// The voice the TTS server is asked for (`TtsHttp`'s default when unset).
    pub tts_voice: Option<String>,
    pub tts_timeout: std::time::Duration,
    /// The espeak-ng program (a name on the PATH or a path).
    pub espeak_program: std::path::PathBuf,
}

impl Default for SpeechSettings {
    fn default() -> Self {
        SpeechSettings::from_lookup(&|_: &str| None).unwrap_or_else(|e| unreachable!("defaults are valid: {e}"))
    }
}

impl SpeechSettings {
    /// Reads and checks the speech variables through `get` (trimmed,
    /// `None` when unset or empty).
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<SpeechSettings, ConfigError> {
        let millis = |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| match get(name) {
            None => Ok(std::time::Duration::from_millis(default)),
            Some(v) => {
                v.parse::<u64>().ok().filter(|n| range.contains(n)).map(std::time::Duration::from_millis).ok_or_else(
                    || {
                        err(
                            name,
                            format!("'{v}' is not a number of milliseconds from {} to {}", range.start(), range.end()),
                        )
                    },
                )
            }
        };
        let count =
            |name: &'static str, default: usize, range: std::ops::RangeInclusive<usize>| match get(name) {
                None => Ok(default),
                Some(v) => v.parse::<usize>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                    err(name, format!("'{v}' is not a number from {} to {}", range.start(), range.end()))
                }),
            };
        let url = |name: &'static str| get(name).map(|v| http_url(name, &v)).transpose();
        let asr_backend = match get("ASR_BACKEND").map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("auto") => AsrBackend::Auto,
            Some("http") => AsrBackend::Http,
            Some("openai") => AsrBackend::OpenAi,
            Some("whisper") => AsrBackend::Whisper,
            Some("none") => AsrBackend::None,
            Some(other) => {
                return Err(err("ASR_BACKEND", format!("'{other}' is none of auto, http, openai, whisper, none")));
            }
        };
        let tts_backend = match get("TTS_BACKEND").map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("auto") => TtsBackend::Auto,
            Some("http") => TtsBackend::Http,
            Some("espeak") | Some("espeak-ng") => TtsBackend::Espeak,
            Some("none") => TtsBackend::None,
            Some(other) => return Err(err("TTS_BACKEND", format!("'{other}' is none of auto, http, espeak, none"))),
        };
        let settings = SpeechSettings {
            asr_backend,
            asr_url: url("ASR_URL")?,
            asr_timeout: millis("ASR_TIMEOUT_MS", 5_000, 100..=60_000)?,
            openai_asr_url: url("OPENAI_ASR_URL")?,
            openai_asr_api_key: get("OPENAI_ASR_API_KEY").map(Secret),
            openai_asr_model: get("OPENAI_ASR_MODEL").unwrap_or_else(|| "whisper-1".to_string()),
            models_dir: get("MODELS_DIR").unwrap_or_else(|| "./models".to_string()).into(),
            whisper_model: match get("WHISPER_MODEL").map(|v| v.to_ascii_lowercase()) {
                None => "base".to_string(),
                Some(m) if m == "base" || m == "small" => m,
                Some(other) => return Err(err("WHISPER_MODEL", format!("'{other}' is not 'base' or 'small'"))),
            },
            whisper_threads: count("WHISPER_THREADS", 2, 1..=64)?,
            whisper_max_tokens: count("WHISPER_MAX_TOKENS", 96, 8..=224)?,
            tts_backend,
            tts_url: url("TTS_URL")?,
            tts_voice: get("TTS_VOICE"),
            tts_timeout: millis("TTS_TIMEOUT_MS", 3_000, 100..=30_000)?,
            espeak_program: get("ESPEAK_PROGRAM").unwrap_or_else(|| "espeak-ng".to_string()).into(),
        };
        if asr_backend == AsrBackend::Http && settings.asr_url.is_none() {
            return Err(err("ASR_URL", "is required with ASR_BACKEND=http (the ASR server's root)"));
        }
        if asr_backend == AsrBackend::OpenAi && settings.openai_asr_url.is_none() {
            return Err(err("OPENAI_ASR_URL", "is required with ASR_BACKEND=openai (e.g. https://api.openai.com/v1)"));
        }
        if settings.openai_asr_api_key.is_none()
            && settings.openai_asr_url.as_ref().and_then(Url::host_str) == Some("api.openai.com")
        {
            return Err(err("OPENAI_ASR_API_KEY", "is required with OpenAI's own OPENAI_ASR_URL"));
        }
        if settings.openai_asr_model.chars().any(char::is_whitespace) {
            return Err(err("OPENAI_ASR_MODEL", "may not contain spaces"));
        }
        if tts_backend == TtsBackend::Http && settings.tts_url.is_none() {
            return Err(err("TTS_URL", "is required with TTS_BACKEND=http (the TTS server's root)"));
        }
        Ok(settings)
    }

    /// `check-config` lines, secrets hidden.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let url = |u: &Option<Url>| u.as_ref().map(Url::to_string).unwrap_or_else(|| "not set".into());
        vec![
            ("ASR_BACKEND", self.asr_backend.as_str().to_string()),
            ("ASR_URL", url(&self.asr_url)),
            ("ASR_TIMEOUT_MS", self.asr_timeout.as_millis().to_string()),
            ("OPENAI_ASR_URL", url(&self.openai_asr_url)),
            (
                "OPENAI_ASR_API_KEY",
                self.openai_asr_api_key
                    .as_ref()
                    .map_or_else(|| "not set".to_string(), |k| format!("set ({} characters)", k.0.len())),
            ),
            ("OPENAI_ASR_MODEL", self.openai_asr_model.clone()),
            ("MODELS_DIR", self.models_dir.display().to_string()),
            ("WHISPER_MODEL", self.whisper_model.clone()),
            ("WHISPER_THREADS", self.whisper_threads.to_string()),
            ("WHISPER_MAX_TOKENS", self.whisper_max_tokens.to_string()),
            ("TTS_BACKEND", self.tts_backend.as_str().to_string()),
            ("TTS_URL", url(&self.tts_url)),
            ("TTS_VOICE", self.tts_voice.clone().unwrap_or_else(|| mangwale_speech::tts_http::DEFAULT_VOICE.into())),
            ("TTS_TIMEOUT_MS", self.tts_timeout.as_millis().to_string()),
            ("ESPEAK_PROGRAM", self.espeak_program.display().to_string()),
        ]
    }
}

fn http_url(var: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| err(var, format!("'{value}' is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(err(var, format!("'{value}' must be an http:// or https:// URL")));
    }
    Ok(url)
}

/// `EXOTEL_API_URL`: an http(s) URL with a host, optionally a path prefix;
/// no credentials (those are `EXOTEL_API_KEY`/`EXOTEL_API_TOKEN`), query or
/// fragment, which the client's request paths could not carry. Plain http
/// only to this machine: every request carries the account's key and token.
fn exotel_api_url(value: &str) -> Result<Url, ConfigError> {
    let var = "EXOTEL_API_URL";
    let url = http_url(var, value)?;
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if url.scheme() == "http" && !loopback {
        return Err(err(
            var,
            format!(
                "'{value}' must be https (plain http only to 127.0.0.1, ::1 or localhost: requests carry the API token)"
            ),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err(var, "must not carry credentials (set EXOTEL_API_KEY and EXOTEL_API_TOKEN)"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err(var, format!("'{value}' must be a base URL without a query or fragment")));
    }
    Ok(url)
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sandbox_demo_fills_only_what_is_unset_and_never_in_live_mode() {
        let mut sandbox = Config::from_vars(vars(&[("ORDER_DESK_PHONE", "9876500000")])).expect("sandbox");
        assert_eq!(sandbox.apply_sandbox_demo_defaults(), ["EXOTEL_MASKING_NUMBERS", "ADMIN_SUPPORT_PHONE"]);
        assert_eq!(sandbox.masking_numbers.len(), 1);
        assert_eq!(sandbox.order_desk().map(E164::as_str), Some("+919876500000"));
        // A configured admin phone stays the order desk's fallback.
        let mut admin_only = Config::from_vars(vars(&[("ADMIN_SUPPORT_PHONE", "9876511111")])).expect("sandbox");
        assert_eq!(admin_only.apply_sandbox_demo_defaults(), ["EXOTEL_MASKING_NUMBERS"]);
        assert_eq!(admin_only.order_desk().map(E164::as_str), Some("+919876511111"));
        let mut live = Config::from_vars(vars(&live())).expect("live");
        assert!(live.apply_sandbox_demo_defaults().is_empty());
        assert!(live.masking_numbers.is_empty() && live.admin_support_phone.is_none());
    }

    #[test]
    fn inbound_settings_default_and_parse() {
        let config = Config::from_vars(Vec::<(String, String)>::new()).expect("defaults");
        assert_eq!(config.missed_call_callback_delay.as_secs(), 30);
        assert_eq!(config.missed_call_window.as_secs(), 600);
        assert_eq!(config.callback_hours.to_string(), "08:00-23:00");
        assert!(config.masking_numbers.is_empty());
        let vars = [
            ("EXOTEL_MASKING_NUMBERS", "+912071171001, 02071171002,+912071171001"),
            ("CALLBACK_HOURS", "20:00-02:00"),
            ("ORDER_DESK_PHONE", "9876500000"),
        ];
        let config = Config::from_vars(vars.map(|(k, v)| (k.to_string(), v.to_string()))).expect("valid");
        assert_eq!(config.masking_numbers.len(), 2);
        assert_eq!(config.order_desk().map(E164::as_str), Some("+919876500000"));
        for (var, value) in
            [("CALLBACK_HOURS", "8-23"), ("MISSED_CALL_WINDOW_MINUTES", "0"), ("MASKING_RECORD", "maybe")]
        {
            let e = Config::from_vars([(var.to_string(), value.to_string())]).expect_err(value);
            assert_eq!(e.var, var);
        }
    }

    #[test]
    fn callbacks_wait_for_opening_time_in_india() {
        use chrono::TimeZone;
        let hours = CallbackHours::default();
        let utc = |h, m| chrono::Utc.with_ymd_and_hms(2026, 12, 5, h, m, 0).single().expect("time");
        // 10:00 IST is inside.
        assert_eq!(hours.next_allowed(utc(4, 30)), utc(4, 30));
        // 23:30 IST waits for 08:00 IST the next day (02:30 UTC).
        assert_eq!(hours.next_allowed(utc(18, 0)), utc(2, 30) + chrono::Duration::days(1));
        // 06:00 IST waits for 08:00 IST the same day.
        assert_eq!(hours.next_allowed(utc(0, 30)), utc(2, 30));
        let wrapping = CallbackHours::parse("20:00-02:00").expect("parse");
        assert_eq!(wrapping.next_allowed(utc(19, 0)), utc(19, 0)); // 00:30 IST
        assert_eq!(wrapping.next_allowed(utc(4, 30)), utc(14, 30)); // 10:00 -> 20:00 IST
    }

    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn live() -> Vec<(&'static str, &'static str)> {
        vec![
            ("EXOTEL_SID", "mangwale1"),
            ("EXOTEL_API_KEY", "key"),
            ("EXOTEL_API_TOKEN", "token"),
            ("EXOTEL_CALLER_ID", "08047112233"),
            ("API_KEYS", "0123456789abcdef0123"),
            ("EXOTEL_WEBHOOK_TOKEN", "fedcba9876543210fedc"),
            ("JUPITER_URL", "http://jupiter.internal:3200"),
            ("JUPITER_WEBHOOK_SECRET", "a-long-webhook-secret-0001"),
            ("PUBLIC_BASE_URL", "https://exotel.mangwale.ai"),
        ]
    }

    #[test]
    fn campaign_dlt_ids_and_headers_are_checked_at_start_up() {
        use mangwale_core::Language;
        let config = Config::from_vars(vars(&[
            ("EXOTEL_DLT_TEMPLATE_CAMPAIGN_AREA_LAUNCH_HI", "1107160000000000001"),
            ("EXOTEL_SMS_SENDER_PROMOTIONAL", "880088"),
            ("OPT_OUT_NUMBER", "08047112266"),
        ]))
        .expect("valid");
        let key = TemplateKey::parse("area_launch").unwrap();
        let t = config.campaign_templates.get(&key).unwrap();
        assert_eq!(t.text(Language::Hi).unwrap().dlt_template_id.as_deref(), Some("1107160000000000001"));
        assert_eq!(t.text(Language::En).unwrap().dlt_template_id, None);
        assert_eq!(config.opt_out_number.as_ref().map(E164::as_str), Some("+918047112266"));
        let refused = |name: &str, value: &str| Config::from_vars(vars(&[(name, value)])).unwrap_err();
        assert!(refused("EXOTEL_DLT_TEMPLATE_CAMPAIGN_AREA_LAUNCH_HI", "11071-6").message.contains("digits"));
        assert!(refused("EXOTEL_DLT_TEMPLATE_CAMPAIGN_NO_SUCH_HI", "1").message.contains("no such"));
        assert!(refused("EXOTEL_DLT_TEMPLATE_CAMPAIGN_DIWALI_FR", "1").message.contains("_HI, _EN or _MR"));
        assert_eq!(refused("EXOTEL_SMS_SENDER_PROMOTIONAL", "MNGWLE").var, "EXOTEL_SMS_SENDER_PROMOTIONAL");
        assert!(is_service_header("MNGWLE") && !is_service_header("MNGWL1") && !is_promotional_header("88008"));
    }

    #[test]
    fn defaults_run_the_sandbox() {
        let c = Config::from_vars(vec![]).unwrap();
        assert_eq!(c.mode, Mode::Sandbox);
        assert_eq!(c.port, 3100);
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.public_base_url.as_str(), "http://127.0.0.1:3100/");
        assert_eq!(c.exotel_host(), "api.exotel.com");
        assert_eq!(crate::exotel::flow_base_url(&c), "http://my.exotel.com");
        let own = Config::from_vars(vars(&[("EXOTEL_REGION", "in"), ("EXOTEL_FLOW_HOST", "My.Exotel.com")])).unwrap();
        assert_eq!(crate::exotel::flow_base_url(&own), "http://my.exotel.com", "EXOTEL_FLOW_HOST wins");
        assert!(c.api_keys.is_empty());
    }

    #[test]
    fn a_full_live_configuration_parses() {
        let mut v = live();
        v.push(("EXOTEL_REGION", "IN"));
        v.push(("PORT", "8080"));
        let c = Config::from_vars(vars(&v)).unwrap();
        assert_eq!(c.mode, Mode::Live);
        assert_eq!(c.exotel_host(), "api.in.exotel.com");
        assert_eq!(c.exotel_api_base(), "https://api.in.exotel.com", "derived from subdomain and region");
        assert_eq!(crate::exotel::flow_base_url(&c), "http://my.in.exotel.com", "flows follow the region");
        assert_eq!(c.exotel_caller_id.unwrap().as_str(), "+918047112233");
        assert_eq!(c.port, 8080);
    }

    #[test]
    fn exotel_api_url_points_live_mode_elsewhere_and_is_checked() {
        let mut v = live();
        v.push(("EXOTEL_API_URL", "http://127.0.0.1:9000/"));
        let c = Config::from_vars(vars(&v)).unwrap();
        assert_eq!(c.exotel_api_base(), "http://127.0.0.1:9000");
        let shown = c.describe().into_iter().find(|(k, _)| *k == "EXOTEL_API_URL").unwrap().1;
        assert_eq!(shown, "http://127.0.0.1:9000");
        let mut v = live();
        v.push(("EXOTEL_API_URL", "https://exotel-proxy.internal/exotel"));
        assert_eq!(Config::from_vars(vars(&v)).unwrap().exotel_api_base(), "https://exotel-proxy.internal/exotel");
        let live_default = Config::from_vars(vars(&live())).unwrap();
        let shown = live_default.describe().into_iter().find(|(k, _)| *k == "EXOTEL_API_URL").unwrap().1;
        assert!(shown.starts_with("https://api.exotel.com"), "{shown}");
        for bad in [
            "ftp://x",
            "127.0.0.1:9000",
            "http://user:pass@proxy",
            "https://proxy/?a=1",
            "https://proxy/#x",
            "http://exotel-proxy.internal",
        ] {
            let mut v = live();
            v.push(("EXOTEL_API_URL", bad));
            let e = Config::from_vars(vars(&v)).unwrap_err();
            assert_eq!(e.var, "EXOTEL_API_URL", "{bad}: {e}");
        }
        // Sandbox mode runs its own simulator: the variable would be ignored.
        let e = Config::from_vars(vars(&[("EXOTEL_API_URL", "http://127.0.0.1:9000")])).unwrap_err();
        assert_eq!(e.var, "EXOTEL_API_URL");
        assert!(e.message.contains("EXOTEL_SID"), "{e}");
        // The campaign sender's claim lease.
        let c = Config::from_vars(vars(&[("CAMPAIGN_CLAIM_LEASE_SECONDS", "8")])).unwrap();
        assert_eq!(c.campaigns.claim_lease, std::time::Duration::from_secs(8));
        assert_eq!(Config::from_vars(vec![]).unwrap().campaigns.claim_lease, std::time::Duration::from_secs(300));
        for bad in ["4", "3601", "soon"] {
            let e = Config::from_vars(vars(&[("CAMPAIGN_CLAIM_LEASE_SECONDS", bad)])).unwrap_err();
            assert_eq!(e.var, "CAMPAIGN_CLAIM_LEASE_SECONDS", "{bad}: {e}");
        }
    }

    #[test]
    fn invalid_values_name_their_variable() {
        let cases: &[(&str, &str, &str)] = &[
            ("PORT", "70000", "PORT"),
            ("HOST", "somewhere", "HOST"),
            ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
            ("PUBLIC_BASE_URL", "ftp://x", "PUBLIC_BASE_URL"),
            ("EXOTEL_CALLER_ID", "12", "EXOTEL_CALLER_ID"),
            ("EXOTEL_DID_NEW_ORDER", "abc", "EXOTEL_DID_NEW_ORDER"),
            ("ADMIN_SUPPORT_PHONE", "+91", "ADMIN_SUPPORT_PHONE"),
            ("JUPITER_URL", "not a url", "JUPITER_URL"),
            ("LOG_FORMAT", "xml", "LOG_FORMAT"),
            ("API_KEYS", "short", "API_KEYS"),
            ("EXOTEL_WEBHOOK_TOKEN", "short", "EXOTEL_WEBHOOK_TOKEN"),
            ("EXOTEL_REGION", "in.evil/", "EXOTEL_REGION"),
            ("EXOTEL_FLOW_HOST", "my.exotel.com/x", "EXOTEL_FLOW_HOST"),
            ("EXOTEL_APP_IDS", "vendor_new_order", "EXOTEL_APP_IDS"),
            ("EXOTEL_APP_IDS", "vendor_new_order=9 26", "EXOTEL_APP_IDS"),
            ("EXOTEL_VOICE_PER_MINUTE", "0", "EXOTEL_VOICE_PER_MINUTE"),
            ("EXOTEL_SMS_PER_MINUTE", "lots", "EXOTEL_SMS_PER_MINUTE"),
            ("EXOTEL_SID", "only-the-sid", "EXOTEL_API_KEY"),
        ];
        for (name, value, expected) in cases {
            let e = Config::from_vars(vars(&[(name, value)])).unwrap_err();
            assert_eq!(e.var, *expected, "{name}={value}: {e}");
        }
    }

    #[test]
    fn live_mode_refuses_to_run_open() {
        for missing in [
            "API_KEYS",
            "EXOTEL_WEBHOOK_TOKEN",
            "EXOTEL_CALLER_ID",
            "JUPITER_URL",
            "JUPITER_WEBHOOK_SECRET",
            "PUBLIC_BASE_URL",
        ] {
            let v: Vec<_> = live().into_iter().filter(|(k, _)| *k != missing).collect();
            let e = Config::from_vars(vars(&v)).unwrap_err();
            assert_eq!(e.var, missing);
        }
    }

    #[test]
    fn a_real_counterpart_requires_signed_jupiter_webhooks() {
        let cases: &[&[(&str, &str)]] = &[
            &[("JUPITER_URL", "http://jupiter.internal:3200")],
            &[("WHATSAPP_PHONE_NUMBER_ID", "1234567890"), ("WHATSAPP_ACCESS_TOKEN", "EAAG-token")],
            &[("PUSH_PROVIDER", "app"), ("APP_PUSH_URL", "https://app.mangwale.ai"), ("APP_PUSH_API_KEY", "k")],
        ];
        for case in cases {
            let e = Config::from_vars(vars(case)).unwrap_err();
            assert_eq!(e.var, "JUPITER_WEBHOOK_SECRET", "{case:?}: {e}");
            assert!(e.message.contains("real system"), "{e}");
            let mut with_secret = case.to_vec();
            with_secret.push(("JUPITER_WEBHOOK_SECRET", "a-long-webhook-secret-0001"));
            let c = Config::from_vars(vars(&with_secret)).unwrap_or_else(|e| panic!("{case:?}: {e}"));
            assert_eq!(c.mode, Mode::Sandbox);
        }
        // Everything simulated: unsigned webhooks stay possible.
        assert!(Config::from_vars(vec![]).unwrap().jupiter_webhook_secret.is_none());
    }

    #[test]
    fn a_required_timestamp_needs_a_secret_and_a_boolean() {
        let e = Config::from_vars(vars(&[("JUPITER_REQUIRE_TIMESTAMP", "true")])).unwrap_err();
        assert_eq!(e.var, "JUPITER_WEBHOOK_SECRET");
        let e = Config::from_vars(vars(&[("JUPITER_REQUIRE_TIMESTAMP", "sometimes")])).unwrap_err();
        assert_eq!(e.var, "JUPITER_REQUIRE_TIMESTAMP");
        let c = Config::from_vars(vars(&[
            ("JUPITER_REQUIRE_TIMESTAMP", "true"),
            ("JUPITER_WEBHOOK_SECRET", "a-long-webhook-secret-0001"),
        ]))
        .unwrap();
        assert!(c.jupiter_require_timestamp);
        assert!(!Config::from_vars(vec![]).unwrap().jupiter_require_timestamp);
    }

    #[test]
    fn secrets_never_show() {
        let c = Config::from_vars(vars(&live())).unwrap();
        let debug = format!("{c:?}");
        for secret in ["0123456789abcdef0123", "fedcba9876543210fedc", "\"token\"", "\"key\""] {
            assert!(!debug.contains(secret), "{secret} leaked into {debug}");
        }
        let described: String = c.describe().iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        assert!(!described.contains("0123456789abcdef0123"));
        assert!(described.contains("EXOTEL_CALLER_ID=+9180xxxxx233"));
    }

    #[test]
    fn the_console_report_shows_secrets_only_as_set_or_not_set() {
        let c = Config::from_vars(vars(&live())).unwrap();
        let report = c.report();
        let find = |name: &str| report.iter().find(|v| v.name == name).unwrap().clone();
        assert_eq!((find("EXOTEL_API_TOKEN").value.as_str(), find("EXOTEL_API_TOKEN").secret), ("set", true));
        assert_eq!(find("JUPITER_WEBHOOK_SECRET").value, "set");
        assert_eq!(find("JUPITER_API_KEY").value, "not set");
        assert_eq!(find("API_KEYS").value, "set");
        assert!(!find("EXOTEL_CALLER_ID").secret);
        assert_eq!(find("EXOTEL_CALLER_ID").value, "+9180xxxxx233");
        let all: String = report.iter().map(|v| format!("{}={}\n", v.name, v.value)).collect();
        assert!(!all.contains("characters)") && !all.contains("0123456789abcdef0123"), "{all}");
        assert_eq!(
            without_secret_lengths("token set (40 characters), app secret not set"),
            "token set, app secret not set"
        );
        assert_eq!(without_secret_lengths("reset (x)"), "reset (x)");
    }

    #[test]
    fn speech_settings_default_to_auto_and_name_their_variables() {
        let c = Config::from_vars(vec![]).unwrap();
        let s = &c.speech;
        assert_eq!((s.asr_backend, s.tts_backend), (AsrBackend::Auto, TtsBackend::Auto));
        assert_eq!((s.asr_timeout.as_millis(), s.tts_timeout.as_millis()), (5_000, 3_000));
        assert_eq!((s.openai_asr_model.as_str(), s.whisper_model.as_str()), ("whisper-1", "base"));
        assert_eq!((s.whisper_threads, s.whisper_max_tokens), (2, 96));
        assert_eq!(s.models_dir, std::path::PathBuf::from("./models"));
        let c = Config::from_vars(vars(&[
            ("ASR_BACKEND", "OpenAI"),
            ("OPENAI_ASR_URL", "https://api.openai.com/v1"),
            ("OPENAI_ASR_API_KEY", "sk-very-secret-asr-key"),
            ("TTS_BACKEND", "espeak-ng"),
            ("WHISPER_MODEL", "small"),
        ]))
        .unwrap();
        assert_eq!((c.speech.asr_backend, c.speech.tts_backend), (AsrBackend::OpenAi, TtsBackend::Espeak));
        let described: String = c.describe().iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        assert!(described.contains("ASR_BACKEND=openai") && described.contains("OPENAI_ASR_API_KEY=set"));
        assert!(!described.contains("sk-very-secret") && !format!("{c:?}").contains("sk-very-secret"));
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("ASR_BACKEND", "google")], "ASR_BACKEND"),
            (&[("TTS_BACKEND", "polly")], "TTS_BACKEND"),
            (&[("ASR_URL", "mercury:7001")], "ASR_URL"),
            (&[("ASR_BACKEND", "http")], "ASR_URL"),
            (&[("ASR_BACKEND", "openai")], "OPENAI_ASR_URL"),
            (&[("OPENAI_ASR_URL", "https://api.openai.com/v1")], "OPENAI_ASR_API_KEY"),
            (&[("OPENAI_ASR_URL", "ftp://x/v1")], "OPENAI_ASR_URL"),
            (&[("ASR_TIMEOUT_MS", "0")], "ASR_TIMEOUT_MS"),
            (&[("WHISPER_MODEL", "large")], "WHISPER_MODEL"),
            (&[("WHISPER_THREADS", "none")], "WHISPER_THREADS"),
            (&[("WHISPER_MAX_TOKENS", "4")], "WHISPER_MAX_TOKENS"),
            (&[("TTS_BACKEND", "http")], "TTS_URL"),
            (&[("TTS_URL", "not a url")], "TTS_URL"),
            (&[("TTS_TIMEOUT_MS", "fast")], "TTS_TIMEOUT_MS"),
        ];
        for (list, var) in cases {
            assert_eq!(Config::from_vars(vars(list)).unwrap_err().var, *var, "{list:?}");
        }
    }

    #[test]
    fn voice_fallbacks_are_off_unless_configured_and_name_their_variables() {
        let c = Config::from_vars(vec![]).unwrap();
        assert!(c.llm.is_none() && c.nlu.is_none());
        let c = Config::from_vars(vars(&[
            ("LLM_URL", "http://vllm.internal:8002"),
            ("LLM_MODEL", "Qwen/Qwen2.5-7B-Instruct-AWQ"),
            ("LLM_API_KEY", "sk-very-secret-llm-key"),
            ("NLU_URL", "http://nlu.internal:7010"),
            ("NLU_TIMEOUT_MS", "800"),
        ]))
        .unwrap();
        let llm = c.llm.as_ref().unwrap();
        assert_eq!((llm.model.as_str(), llm.timeout.as_millis()), ("Qwen/Qwen2.5-7B-Instruct-AWQ", 2500));
        assert_eq!(c.nlu.as_ref().unwrap().timeout.as_millis(), 800);
        let described: String = c.describe().iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        assert!(!described.contains("sk-very-secret") && !format!("{c:?}").contains("sk-very-secret"));
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("LLM_URL", "http://vllm:8000")], "LLM_MODEL"),
            (&[("LLM_MODEL", "qwen")], "LLM_URL"),
            (&[("LLM_API_KEY", "sk-1")], "LLM_URL"),
            (&[("LLM_URL", "vllm:8000"), ("LLM_MODEL", "qwen")], "LLM_URL"),
            (&[("LLM_URL", "http://vllm:8000"), ("LLM_MODEL", "qwen"), ("LLM_TIMEOUT_MS", "0")], "LLM_TIMEOUT_MS"),
            (&[("NLU_URL", "nlu")], "NLU_URL"),
            (&[("NLU_TIMEOUT_MS", "500")], "NLU_URL"),
            (&[("NLU_URL", "http://nlu:7010"), ("NLU_TIMEOUT_MS", "fast")], "NLU_TIMEOUT_MS"),
        ];
        for (list, var) in cases {
            assert_eq!(Config::from_vars(vars(list)).unwrap_err().var, *var, "{list:?}");
        }
    }
}
