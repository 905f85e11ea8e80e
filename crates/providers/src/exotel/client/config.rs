//! Configuration of the Exotel client, with the defaults production uses.

use std::fmt;
use std::time::Duration;

/// Everything the client needs, as plain values (the server fills it from its
/// environment; tests point `base_url` at a fake or the simulator).
#[derive(Clone)]
pub struct ExotelClientConfig {
    /// Scheme and host, optionally with a path prefix:
    /// `https://api.in.exotel.com` in production (see [`Self::host_for`]),
    /// `http://127.0.0.1:PORT` against the simulator.
    pub base_url: String,
    /// Goes into the path only (`/v1/Accounts/{sid}/…`).
    pub account_sid: String,
    /// Basic-auth user name.
    pub api_key: String,
    /// Basic-auth password.
    pub api_token: String,
    /// Whole-request timeout of POSTs (`Calls/connect`, `Sms/send`,
    /// `Sms/bulksend`). `Calls/connect` is synchronous at Exotel (it answers
    /// after leg 1 reached the operator), so this is generous.
    pub timeout: Duration,
    /// Whole-request timeout of GETs (call details, account, numbers).
    pub query_timeout: Duration,
    /// TCP + TLS connection set-up timeout. A failure here happens before the
    /// request is sent, so it is always safe to retry.
    pub connect_timeout: Duration,
    /// Client-side limit of voice requests (`Calls/*`, and the account and
    /// number look-ups, which share the account's API budget).
    pub voice_rate: RateLimit,
    /// Client-side limit of SMS requests (`Sms/send`, `Sms/bulksend`).
    pub sms_rate: RateLimit,
    /// Longest a request waits for a rate-limit permit before it fails with a
    /// transient rate-limited error.
    pub rate_limit_max_wait: Duration,
    pub retry: RetryPolicy,
    /// How array keys are written in form bodies.
    pub bracket_style: BracketStyle,
    /// The array name of `Sms/bulksend`.
    pub bulk_key_prefix: BulkKeyPrefix,
    /// How `CallerId` (our ExoPhone) is written.
    pub caller_id_format: NumberFormat,
    /// Host of flow URLs built from an app id:
    /// `{flow_base_url}/{sid}/exoml/start_voice/{app_id}` (Exotel's
    /// documented form is `http://my.exotel.com/...`; Mumbai-cluster
    /// accounts use `http://my.in.exotel.com`, see [`Self::flow_host_for`]).
    pub flow_base_url: String,
    /// Where Exotel reports each SMS's delivery (`StatusCallback` of
    /// `Sms/send` and `Sms/bulksend`), used when a request names none, so
    /// that every SMS we send has its DLT and DND failures reported. Carries
    /// our webhook token: never logged.
    pub sms_status_callback: Option<url::Url>,
    /// Whole-request timeout of a recording fetch (`fetch_recording`): it
    /// runs while Exotel waits on a Passthru, so it is short.
    pub recording_timeout: Duration,
    /// The largest recording fetched; larger ones are refused unread.
    pub recording_max_bytes: usize,
}

impl ExotelClientConfig {
    /// A configuration with the production defaults.
    pub fn new(
        base_url: impl Into<String>,
        account_sid: impl Into<String>,
        api_key: impl Into<String>,
        api_token: impl Into<String>,
    ) -> Self {
        ExotelClientConfig {
            base_url: base_url.into(),
            account_sid: account_sid.into(),
            api_key: api_key.into(),
            api_token: api_token.into(),
            timeout: Duration::from_secs(30),
            query_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            voice_rate: RateLimit::per_minute(200),
            sms_rate: RateLimit::per_minute(200),
            rate_limit_max_wait: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            bracket_style: BracketStyle::default(),
            bulk_key_prefix: BulkKeyPrefix::default(),
            caller_id_format: NumberFormat::default(),
            flow_base_url: "http://my.exotel.com".to_string(),
            sms_status_callback: None,
            recording_timeout: super::recording::DEFAULT_RECORDING_TIMEOUT,
            recording_max_bytes: super::recording::DEFAULT_RECORDING_MAX_BYTES,
        }
    }

    /// The base of flow URLs of an account's cluster:
    /// `http://my[.{region}].exotel.com` (the Mumbai cluster, region `in`,
    /// serves its flows at `my.in.exotel.com`), or `http://{host}` when a
    /// host is configured explicitly.
    pub fn flow_host_for(region: Option<&str>, host: Option<&str>) -> String {
        if let Some(host) = host.map(|h| h.trim().trim_end_matches('/')).filter(|h| !h.is_empty()) {
            return if host.contains("://") { host.to_string() } else { format!("http://{host}") };
        }
        match region.map(|r| r.trim().trim_matches('.')).filter(|r| !r.is_empty()) {
            Some(region) => format!("http://my.{region}.exotel.com"),
            None => "http://my.exotel.com".to_string(),
        }
    }

    /// The API base URL of an account's cluster:
    /// `https://{subdomain}[.{region}].exotel.com` (for example `api` and
    /// `in` give the Mumbai cluster `https://api.in.exotel.com`; no region
    /// gives the Singapore cluster `https://api.exotel.com`).
    pub fn host_for(subdomain: &str, region: Option<&str>) -> String {
        let subdomain = subdomain.trim().trim_matches('.');
        match region.map(|r| r.trim().trim_matches('.')).filter(|r| !r.is_empty()) {
            Some(region) => format!("https://{subdomain}.{region}.exotel.com"),
            None => format!("https://{subdomain}.exotel.com"),
        }
    }
}

impl fmt::Debug for ExotelClientConfig {
    /// Credentials are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExotelClientConfig")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("api_key", &"***")
            .field("api_token", &"***")
            .field("timeout", &self.timeout)
            .field("query_timeout", &self.query_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("voice_rate", &self.voice_rate)
            .field("sms_rate", &self.sms_rate)
            .field("rate_limit_max_wait", &self.rate_limit_max_wait)
            .field("retry", &self.retry)
            .field("bracket_style", &self.bracket_style)
            .field("bulk_key_prefix", &self.bulk_key_prefix)
            .field("caller_id_format", &self.caller_id_format)
            .field("flow_base_url", &self.flow_base_url)
            .field("sms_status_callback", &self.sms_status_callback.as_ref().map(|_| "***"))
            .field("recording_timeout", &self.recording_timeout)
            .field("recording_max_bytes", &self.recording_max_bytes)
            .finish()
    }
}

/// A client-side rate limit (GCRA): a steady `per_minute` rate with bursts of
/// up to `burst` requests. Any 60-second window then carries at most
/// `burst + per_minute - 1` requests, so the default burst of 1 never exceeds
/// Exotel's documented 200 requests per minute; raise it to trade that
/// guarantee for lower latency of bursts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

impl RateLimit {
    pub fn per_minute(per_minute: u32) -> Self {
        RateLimit { per_minute, burst: 1 }
    }

    pub fn with_burst(self, burst: u32) -> Self {
        RateLimit { burst, ..self }
    }
}

/// The retry policy of every provider client (see [`crate::retry`]);
/// Exotel's default is 3 retries from 500 ms, capped at 10 s.
pub use crate::retry::RetryPolicy;

/// How array keys are written in form bodies. Exotel documents PHP-style
/// indexed keys with literal brackets; integrators report a 400 ("Invalid
/// 'StatusCallbackEvents' specified") with percent-encoded brackets, while
/// others send encoded brackets successfully. Values are always
/// percent-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BracketStyle {
    /// `StatusCallbackEvents[0]=terminal&StatusCallbackEvents[1]=answered`
    /// (Exotel's documented form).
    #[default]
    LiteralIndexed,
    /// `StatusCallbackEvents[]=terminal&StatusCallbackEvents[]=answered`
    /// (Exotel's own script). Nested arrays (`Messages[0][To]`) keep their
    /// index, since `Messages[][To]` cannot be grouped by the receiver.
    LiteralEmpty,
    /// `StatusCallbackEvents%5B0%5D=terminal` (what generic form encoders
    /// such as python-requests or reqwest produce).
    PercentEncoded,
}

/// The array name of `Sms/bulksend`: Exotel's docs name the parameter
/// `Messages`; Exotel's own MCP code sends `Message[0][To]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BulkKeyPrefix {
    #[default]
    Messages,
    Message,
}

impl BulkKeyPrefix {
    pub fn as_str(self) -> &'static str {
        match self {
            BulkKeyPrefix::Messages => "Messages",
            BulkKeyPrefix::Message => "Message",
        }
    }
}

/// How a number is written in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NumberFormat {
    /// `08047112233` for Indian numbers (E.164 for others): the form in
    /// every Exotel example of `CallerId`, and the form Exotel echoes back as
    /// `PhoneNumberSid`.
    #[default]
    National,
    /// `+918047112233`.
    E164,
}
