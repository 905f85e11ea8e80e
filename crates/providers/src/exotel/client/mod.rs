//! The Exotel v1 REST client.
//!
//! - `.json` endpoints under `{base}/v1/Accounts/{sid}/…`, HTTP Basic auth
//!   (API key, API token); form bodies are built by hand so that array keys
//!   keep literal brackets (`StatusCallbackEvents[0]=terminal`).
//! - Every failure is one [`ExotelError`]: transient (retried here with
//!   backoff, then returned), permanent, ambiguous (a call or SMS that may
//!   have gone out: never retried), or invalid (refused before sending).
//! - Client-side rate limits per lane (voice, SMS) with a bounded wait.
//! - Every attempt is reported to an [`ExotelRecorder`]; logs carry masked
//!   numbers only and never credentials or callback URLs.
//! - Call recordings are fetched with the account's credentials, sent only
//!   to Exotel's own hosts (see `recording`).

mod config;
mod error;
mod form;
#[doc(hidden)]
pub mod fuzz;
mod recorder;
mod recording;
mod request;
mod response;

#[cfg(test)]
mod tests;

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use mangwale_core::E164;
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use tokio::time::Instant;
use url::Url;

pub use config::{BracketStyle, BulkKeyPrefix, ExotelClientConfig, NumberFormat, RateLimit, RetryPolicy};
pub use error::{ExotelError, TransientReason};
pub use recorder::{ExotelRecorder, MemoryRecorder, NoopRecorder, Outcome, RequestRecord};
pub use recording::{Recording, RecordingAccess, RecordingUrl};
pub use request::{
    BulkSms, BulkSmsMessage, CallOptions, CallbackContentType, ConnectToFlow, ConnectToVoicebot, ConnectTwoNumbers,
    FlowTarget, MAX_BULK_MESSAGES, MAX_CUSTOM_FIELD_CHARS, MAX_SMS_BODY_CHARS, MAX_STREAM_NAME_CHARS,
    MAX_STREAM_URL_CHARS, MAX_TIME_LIMIT_SECS, RecordingChannels, SendSms, SmsEncoding, SmsPriority, SmsType,
    StatusCallback,
};
pub use response::{
    BulkItemError, BulkSmsResult, Call, CallLeg, CallLegDetails, ExoPhone, ExoPhones, NumberMetadata, SmsMessage,
};

use error::parse_error_body;
use request::FormContext;

/// The Exotel v1 client. Cheap to clone; clones share the connection pool,
/// the rate limiters and the recorder.
#[derive(Clone)]
pub struct ExotelClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// `base_url` without a trailing slash.
    base: Url,
    config: ExotelClientConfig,
    voice: Limiter,
    sms: Limiter,
    recorder: Arc<dyn ExotelRecorder>,
}

struct Limiter {
    limiter: DefaultDirectRateLimiter,
    clock: DefaultClock,
}

/// Which client-side rate limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Voice,
    Sms,
}

impl Lane {
    fn as_str(self) -> &'static str {
        match self {
            Lane::Voice => "voice",
            Lane::Sms => "sms",
        }
    }
}

/// One logical request, before any attempt.
struct Spec {
    endpoint: &'static str,
    method: Method,
    lane: Lane,
    /// Safe to send twice: GETs. Non-idempotent requests are never retried
    /// once they may have reached Exotel.
    idempotent: bool,
    url: Url,
    body: Option<String>,
    timeout: Duration,
    sid: Option<String>,
    custom_field: Option<String>,
    from_masked: Option<String>,
    to_masked: Option<String>,
}

/// When an attempt started, for the record.
#[derive(Clone, Copy)]
struct Started {
    at: chrono::DateTime<Utc>,
    instant: Instant,
}

impl Started {
    fn now() -> Self {
        Started { at: Utc::now(), instant: Instant::now() }
    }
}

/// A failed attempt and whether another may follow.
struct Failure {
    error: ExotelError,
    retryable: bool,
}

impl fmt::Debug for ExotelClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExotelClient").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

fn limiter(field: &str, rate: RateLimit) -> Result<Limiter, ExotelError> {
    let invalid = || ExotelError::invalid(field, "per_minute and burst must be at least 1");
    let per_minute = NonZeroU32::new(rate.per_minute).ok_or_else(invalid)?;
    let burst = NonZeroU32::new(rate.burst).ok_or_else(invalid)?;
    let quota = Quota::with_period(Duration::from_secs(60) / per_minute.get()).ok_or_else(invalid)?.allow_burst(burst);
    Ok(Limiter { limiter: RateLimiter::direct(quota), clock: DefaultClock::default() })
}

fn check_id(field: &str, value: &str) -> Result<(), ExotelError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok { Ok(()) } else { Err(ExotelError::invalid(field, "must be 1 to 64 letters, digits, _ or -")) }
}

/// A reqwest error as text, without the URL (it can carry a phone number) and
/// with its causes.
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

impl ExotelClient {
    /// Builds a client. Fails with [`ExotelError::Invalid`] naming the
    /// configuration field that is unusable.
    pub fn new(config: ExotelClientConfig, recorder: Arc<dyn ExotelRecorder>) -> Result<Self, ExotelError> {
        let base = Url::parse(config.base_url.trim().trim_end_matches('/'))
            .map_err(|e| ExotelError::invalid("base_url", format!("not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ExotelError::invalid("base_url", "must be an http(s) URL"));
        }
        check_id("account_sid", &config.account_sid)?;
        if config.api_key.trim().is_empty() {
            return Err(ExotelError::invalid("api_key", "must not be empty"));
        }
        if config.api_token.trim().is_empty() {
            return Err(ExotelError::invalid("api_token", "must not be empty"));
        }
        Url::parse(&config.flow_base_url)
            .map_err(|e| ExotelError::invalid("flow_base_url", format!("not a URL: {e}")))?;
        if let Some(url) = &config.sms_status_callback
            && !matches!(url.scheme(), "http" | "https")
        {
            return Err(ExotelError::invalid("sms_status_callback", "must be an http(s) URL"));
        }
        for (field, timeout) in [
            ("timeout", config.timeout),
            ("query_timeout", config.query_timeout),
            ("connect_timeout", config.connect_timeout),
            ("recording_timeout", config.recording_timeout),
        ] {
            if timeout.is_zero() {
                return Err(ExotelError::invalid(field, "must be more than zero"));
            }
        }
        let voice = limiter("voice_rate", config.voice_rate)?;
        let sms = limiter("sms_rate", config.sms_rate)?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout.min(config.timeout).min(config.query_timeout))
            .redirect(reqwest::redirect::Policy::none())
            // Shorter than common load-balancer keep-alives (60 s and more), so a
            // POST rarely goes out on a connection the server is closing: that
            // would make the outcome ambiguous.
            .pool_idle_timeout(Duration::from_secs(20))
            .user_agent(concat!("mangwale-exotel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ExotelError::invalid("http_client", describe(e)))?;
        Ok(ExotelClient { inner: Arc::new(Inner { http, base, config, voice, sms, recorder }) })
    }

    pub fn account_sid(&self) -> &str {
        &self.inner.config.account_sid
    }

    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// `POST Calls/connect.json` in bridge mode (`From`, then `To`).
    pub async fn connect_two_numbers(&self, request: &ConnectTwoNumbers) -> Result<Call, ExotelError> {
        let form = request.form(&self.form_context());
        self.connect(form, &request.from, Some(&request.to), &request.options).await
    }

    /// `POST Calls/connect.json` in flow mode (`From`, `Url`).
    pub async fn connect_to_flow(&self, request: &ConnectToFlow) -> Result<Call, ExotelError> {
        let form = request.form(&self.form_context());
        self.connect(form, &request.from, None, &request.options).await
    }

    /// `POST Calls/connect.json` in Voicebot mode (`From`, `StreamUrl`,
    /// `StreamType=bidirectional`).
    pub async fn connect_to_voicebot(&self, request: &ConnectToVoicebot) -> Result<Call, ExotelError> {
        let form = request.form(&self.form_context());
        self.connect(form, &request.from, None, &request.options).await
    }

    /// `GET Calls/{sid}.json[?details=true]`. `Duration`, `Price` and
    /// `EndTime` are filled by Exotel minutes after hang-up.
    pub async fn call_details(&self, call_sid: &str, details: bool) -> Result<Call, ExotelError> {
        let endpoint = "calls.details";
        let url =
            check_id("call_sid", call_sid).and_then(|()| self.url(&["Calls", &format!("{call_sid}.json")], details));
        let url = match url {
            Ok(url) => url,
            Err(error) => return Err(self.rejected(endpoint, error, None, Some(call_sid.to_string()))),
        };
        let mut spec = self.get(endpoint, url);
        spec.sid = Some(call_sid.to_string());
        self.execute(spec, response::parse_call, |call| (Some(call.sid.clone()), None)).await
    }

    /// `POST Sms/send.json`. Success means accepted, not delivered.
    pub async fn send_sms(&self, request: &SendSms) -> Result<SmsMessage, ExotelError> {
        let endpoint = "sms.send";
        let form = request.form(&self.form_context());
        let spec = self.post(endpoint, Lane::Sms, &["Sms", "send.json"], false, form, |spec| {
            spec.custom_field = request.custom_field.clone();
            spec.to_masked = Some(request.to.masked());
        })?;
        self.execute(spec, response::parse_sms, |sms| (Some(sms.sid.clone()), None)).await
    }

    /// `POST Sms/bulksend.json`: one result per message, in request order.
    /// The request as a whole fails only when Exotel refuses all of it.
    pub async fn send_bulk_sms(&self, request: &BulkSms) -> Result<Vec<BulkSmsResult>, ExotelError> {
        let endpoint = "sms.bulksend";
        let form = request.form(&self.form_context());
        let spec = self.post(endpoint, Lane::Sms, &["Sms", "bulksend.json"], false, form, |_| {})?;
        let sent = request.messages.len();
        let results = self
            .execute(spec, response::parse_bulk, |items: &Vec<BulkSmsResult>| {
                let accepted = items.iter().filter(|i| i.is_ok()).count();
                (None, Some(format!("{accepted} of {} messages accepted", items.len())))
            })
            .await?;
        if results.len() != sent {
            tracing::warn!(sent, answered = results.len(), "exotel bulk SMS answer has a different number of items");
        }
        Ok(results)
    }

    /// `GET /v2_beta/Accounts/{sid}/IncomingPhoneNumbers`: the account's
    /// ExoPhones (first page). Exotel's documented "List all ExoPhones" API
    /// (developer.exotel.com/api/exophone-details, JSON only): a 200 proves
    /// that the credentials reach the account, and the list shows whether
    /// our caller ids are its numbers. (Exotel documents no
    /// `GET /v1/Accounts/{sid}` resource.)
    pub async fn exophones(&self) -> Result<ExoPhones, ExotelError> {
        let endpoint = "exophones";
        let url = match self.exophones_url() {
            Ok(url) => url,
            Err(error) => return Err(self.rejected(endpoint, error, None, None)),
        };
        self.execute(self.get(endpoint, url), response::parse_exophones, |list| {
            (None, Some(format!("{} ExoPhones", list.numbers.len())))
        })
        .await
    }

    /// `GET Numbers/{number}.json`: operator, circle and DND flag. The number
    /// goes into the path in national form (`09876543210`), which needs no
    /// escaping and is how Exotel writes numbers.
    pub async fn number_metadata(&self, number: &E164) -> Result<NumberMetadata, ExotelError> {
        let endpoint = "numbers";
        let url = match self.url(&["Numbers", &format!("{}.json", number.national())], false) {
            Ok(url) => url,
            Err(error) => return Err(self.rejected(endpoint, error, Some(number.masked()), None)),
        };
        let mut spec = self.get(endpoint, url);
        spec.from_masked = Some(number.masked());
        self.execute(spec, response::parse_number, |_| (None, None)).await
    }

    async fn connect(
        &self,
        form: Result<String, ExotelError>,
        from: &E164,
        to: Option<&E164>,
        options: &CallOptions,
    ) -> Result<Call, ExotelError> {
        let spec =
            self.post("calls.connect", Lane::Voice, &["Calls", "connect.json"], options.details, form, |spec| {
                spec.custom_field = options.custom_field.clone();
                spec.from_masked = Some(from.masked());
                spec.to_masked = to.map(E164::masked);
            })?;
        self.execute(spec, response::parse_call, |call| (Some(call.sid.clone()), None)).await
    }

    fn form_context(&self) -> FormContext<'_> {
        let config = &self.inner.config;
        FormContext {
            account_sid: &config.account_sid,
            bracket_style: config.bracket_style,
            bulk_key_prefix: config.bulk_key_prefix,
            caller_id_format: config.caller_id_format,
            flow_base_url: &config.flow_base_url,
            sms_status_callback: config.sms_status_callback.as_ref(),
        }
    }

    /// `{base}/v1/Accounts/{sid}/{segments…}`.
    fn url(&self, segments: &[&str], details: bool) -> Result<Url, ExotelError> {
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .map_err(|()| ExotelError::invalid("base_url", "must be an http(s) URL"))?
            .pop_if_empty()
            .extend(["v1", "Accounts", self.inner.config.account_sid.as_str()])
            .extend(segments);
        if details {
            url.set_query(Some("details=true"));
        }
        Ok(url)
    }

    fn exophones_url(&self) -> Result<Url, ExotelError> {
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .map_err(|()| ExotelError::invalid("base_url", "must be an http(s) URL"))?
            .pop_if_empty()
            .extend(["v2_beta", "Accounts", self.inner.config.account_sid.as_str(), "IncomingPhoneNumbers"]);
        Ok(url)
    }

    fn get(&self, endpoint: &'static str, url: Url) -> Spec {
        Spec {
            endpoint,
            method: Method::GET,
            lane: Lane::Voice,
            idempotent: true,
            url,
            body: None,
            timeout: self.inner.config.query_timeout,
            sid: None,
            custom_field: None,
            from_masked: None,
            to_masked: None,
        }
    }

    /// A POST spec, or the recorded validation error.
    fn post(
        &self,
        endpoint: &'static str,
        lane: Lane,
        segments: &[&str],
        details: bool,
        form: Result<String, ExotelError>,
        describe: impl FnOnce(&mut Spec),
    ) -> Result<Spec, ExotelError> {
        let mut spec = Spec {
            endpoint,
            method: Method::POST,
            lane,
            idempotent: false,
            url: self.inner.base.clone(),
            body: None,
            timeout: self.inner.config.timeout,
            sid: None,
            custom_field: None,
            from_masked: None,
            to_masked: None,
        };
        describe(&mut spec);
        match form.and_then(|body| Ok((body, self.url(segments, details)?))) {
            Ok((body, url)) => {
                spec.body = Some(body);
                spec.url = url;
                Ok(spec)
            }
            Err(error) => {
                self.record(&spec, 0, None, &Err(&error), false, Started::now());
                tracing::warn!(endpoint, error = %error, "exotel request rejected before sending");
                Err(error)
            }
        }
    }

    /// Records and returns a validation error of a GET.
    fn rejected(
        &self,
        endpoint: &'static str,
        error: ExotelError,
        from_masked: Option<String>,
        sid: Option<String>,
    ) -> ExotelError {
        let mut spec = self.get(endpoint, self.inner.base.clone());
        spec.from_masked = from_masked;
        spec.sid = sid;
        self.record(&spec, 0, None, &Err(&error), false, Started::now());
        tracing::warn!(endpoint, error = %error, "exotel request rejected before sending");
        error
    }

    /// Runs `spec` with rate limiting, retries and recording. `summary` gives
    /// the sid and a note of a successful answer for the record.
    async fn execute<T>(
        &self,
        spec: Spec,
        parse: fn(&[u8]) -> Result<T, String>,
        summary: impl Fn(&T) -> (Option<String>, Option<String>),
    ) -> Result<T, ExotelError> {
        let policy = self.inner.config.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Started::now();
            if let Err(error) = self.acquire(spec.lane).await {
                self.record(&spec, attempt, None, &Err(&error), false, started);
                tracing::warn!(endpoint = spec.endpoint, attempt, error = %error, "exotel request not sent");
                return Err(error);
            }
            tracing::debug!(
                endpoint = spec.endpoint,
                attempt,
                from = spec.from_masked.as_deref(),
                to = spec.to_masked.as_deref(),
                "exotel request"
            );
            match self.attempt(&spec, parse).await {
                Ok((status, value)) => {
                    let (sid, note) = summary(&value);
                    let ok = Ok((sid.as_deref(), note.as_deref()));
                    self.record(&spec, attempt, Some(status), &ok, false, started);
                    tracing::debug!(
                        endpoint = spec.endpoint,
                        attempt,
                        status,
                        sid = sid.as_deref(),
                        elapsed_ms = started.instant.elapsed().as_millis() as u64,
                        "exotel request succeeded"
                    );
                    return Ok(value);
                }
                Err(Failure { error, retryable }) => {
                    let delay = retryable
                        .then(|| policy.next_delay(attempt - 1, error.retry_after(), Duration::ZERO))
                        .flatten();
                    self.record(&spec, attempt, error.status(), &Err(&error), delay.is_some(), started);
                    tracing::warn!(
                        endpoint = spec.endpoint,
                        attempt,
                        outcome = error.outcome().as_str(),
                        status = error.status(),
                        code = error.code(),
                        error = %error,
                        retry_in_ms = delay.map(|d| d.as_millis() as u64),
                        "exotel request failed"
                    );
                    match delay {
                        Some(delay) => tokio::time::sleep(delay).await,
                        None => return Err(error),
                    }
                }
            }
        }
    }

    /// Waits for a permit of `lane`, at most `rate_limit_max_wait` in total.
    async fn acquire(&self, lane: Lane) -> Result<(), ExotelError> {
        let limiter = match lane {
            Lane::Voice => &self.inner.voice,
            Lane::Sms => &self.inner.sms,
        };
        let max_wait = self.inner.config.rate_limit_max_wait;
        let mut waited = Duration::ZERO;
        loop {
            match limiter.limiter.check() {
                Ok(()) => return Ok(()),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(limiter.clock.now());
                    if waited + wait > max_wait {
                        return Err(ExotelError::Transient {
                            status: None,
                            code: None,
                            message: format!(
                                "client-side {} rate limit: no permit within {} ms",
                                lane.as_str(),
                                max_wait.as_millis()
                            ),
                            retry_after: Some(wait),
                            reason: TransientReason::RateLimited,
                        });
                    }
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
            }
        }
    }

    /// One HTTP exchange, classified.
    async fn attempt<T>(&self, spec: &Spec, parse: fn(&[u8]) -> Result<T, String>) -> Result<(u16, T), Failure> {
        let config = &self.inner.config;
        let mut request = self
            .inner
            .http
            .request(spec.method.clone(), spec.url.clone())
            .basic_auth(&config.api_key, Some(&config.api_token))
            .header(ACCEPT, "application/json")
            .timeout(spec.timeout);
        if let Some(body) = &spec.body {
            request = request.header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(body.clone());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Err(send_failure(error, spec.idempotent)),
        };
        let status = response.status().as_u16();
        let retry_after = crate::retry::retry_after(response.headers(), Utc::now());
        let success = response.status().is_success();
        let body = match crate::body::read_capped(response, crate::body::DEFAULT_LIMIT).await {
            Ok(body) => body,
            Err(error) if success && !spec.idempotent => {
                return Err(Failure {
                    error: ExotelError::Ambiguous {
                        status: Some(status),
                        message: format!("accepted, but the answer could not be read: {}", error.describe(describe)),
                    },
                    retryable: false,
                });
            }
            Err(error) if success => {
                return Err(Failure {
                    error: ExotelError::Transient {
                        status: Some(status),
                        code: None,
                        message: format!("the answer could not be read: {}", error.describe(describe)),
                        retry_after: None,
                        reason: TransientReason::Network,
                    },
                    retryable: true,
                });
            }
            Err(_) => Default::default(),
        };
        if success {
            return match parse(&body) {
                Ok(value) => Ok((status, value)),
                Err(problem) if spec.idempotent => Err(Failure {
                    error: ExotelError::Permanent {
                        status,
                        code: None,
                        message: format!("unexpected answer: {problem}"),
                    },
                    retryable: false,
                }),
                Err(problem) => Err(Failure {
                    error: ExotelError::Ambiguous {
                        status: Some(status),
                        message: format!("accepted, but the answer is unreadable: {problem}"),
                    },
                    retryable: false,
                }),
            };
        }
        Err(status_failure(status, &body, retry_after, spec.idempotent))
    }

    /// Reports one attempt (`result` is the sid and note of a success).
    fn record(
        &self,
        spec: &Spec,
        attempt: u32,
        status: Option<u16>,
        result: &Result<(Option<&str>, Option<&str>), &ExotelError>,
        will_retry: bool,
        started: Started,
    ) {
        let (outcome, error_code, message, sid) = match result {
            Ok((sid, note)) => {
                (Outcome::Ok, None, note.map(str::to_string), sid.map(str::to_string).or_else(|| spec.sid.clone()))
            }
            Err(error) => {
                (error.outcome(), error.code().map(str::to_string), Some(error.to_string()), spec.sid.clone())
            }
        };
        self.inner.recorder.record(RequestRecord {
            endpoint: spec.endpoint,
            method: if spec.method == Method::GET { "GET" } else { "POST" },
            attempt,
            status,
            outcome,
            error_code,
            message,
            sid,
            custom_field: spec.custom_field.clone(),
            from_masked: spec.from_masked.clone(),
            to_masked: spec.to_masked.clone(),
            will_retry,
            started_at: started.at,
            finished_at: Utc::now(),
            duration: started.instant.elapsed(),
        });
    }
}

/// A request that got no HTTP answer. Failing to connect happens before the
/// request is written, so it is always retryable; anything later (timeout,
/// reset) is retryable for idempotent requests and ambiguous otherwise.
fn send_failure(error: reqwest::Error, idempotent: bool) -> Failure {
    if error.is_builder() {
        return Failure { error: ExotelError::invalid("request", describe(error)), retryable: false };
    }
    let connect = error.is_connect();
    let timeout = error.is_timeout();
    let text = describe(error);
    if connect || idempotent {
        let what = if connect {
            "could not connect"
        } else if timeout {
            "timed out"
        } else {
            "connection failed"
        };
        return Failure {
            error: ExotelError::Transient {
                status: None,
                code: None,
                message: format!("{what}: {text}"),
                retry_after: None,
                reason: TransientReason::Network,
            },
            retryable: true,
        };
    }
    let what =
        if timeout { "timed out after the request was sent" } else { "connection lost after the request was sent" };
    Failure { error: ExotelError::Ambiguous { status: None, message: format!("{what}: {text}") }, retryable: false }
}

/// A non-2xx answer. 408 and 429 say "not done"; a 500/503/504 carrying
/// Exotel's own `RestException` is Exotel saying it could not place the call
/// (or is throttling SMS). Any other 5xx of a non-idempotent request (a
/// proxy's 502 page, an empty 500) may hide an executed request.
fn status_failure(status: u16, body: &[u8], retry_after: Option<Duration>, idempotent: bool) -> Failure {
    let parsed = parse_error_body(status, body);
    let transient = |parsed: error::ErrorBody| Failure {
        error: ExotelError::Transient {
            status: Some(status),
            code: parsed.code,
            message: parsed.message,
            retry_after,
            reason: TransientReason::Status,
        },
        retryable: true,
    };
    match status {
        408 | 429 => transient(parsed),
        500..=599 if idempotent || (parsed.rest_exception && matches!(status, 500 | 503 | 504)) => transient(parsed),
        500..=599 => Failure {
            error: ExotelError::Ambiguous { status: Some(status), message: parsed.message },
            retryable: false,
        },
        _ => Failure {
            error: ExotelError::Permanent { status, code: parsed.code, message: parsed.message },
            retryable: false,
        },
    }
}
