//! The FCM HTTP v1 backend: the OAuth token cache, the message shape, and
//! the reading of Google's error bodies.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::config::FcmConfig;
use super::error::{PushBackend, PushError, PushErrorKind, network_message, transient_status};
use super::service_account::ServiceAccountKey;
use super::{PushClock, PushMessage, SentPush, check_fcm_payload, check_recipient};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// FCM's longest `ttl`: four weeks.
const MAX_TTL: Duration = Duration::from_secs(28 * 24 * 3600);
/// The `expires_in` assumed when the token endpoint sends none (Google's lifetime).
const DEFAULT_TOKEN_LIFETIME: u64 = 3600;

pub(crate) struct Fcm {
    send_url: String,
    key: ServiceAccountKey,
    refresh_margin: Duration,
    /// The cached access token. A tokio mutex held across the grant, so
    /// that concurrent sends wait for one grant instead of each making one.
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

struct CachedToken {
    value: String,
    refresh_at: DateTime<Utc>,
}

/// One HTTP answer, read whole.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

impl Fcm {
    pub fn new(config: FcmConfig) -> Self {
        let send_url =
            format!("{}/v1/projects/{}/messages:send", config.base_url.trim_end_matches('/'), config.project_id);
        Fcm {
            send_url,
            key: config.service_account,
            refresh_margin: config.token_refresh_margin,
            token: tokio::sync::Mutex::new(None),
        }
    }

    /// One send, with at most one token refresh when FCM answers 401.
    pub async fn attempt(
        &self,
        http: &reqwest::Client,
        clock: &dyn PushClock,
        message: &PushMessage,
    ) -> Result<SentPush, PushError> {
        check_recipient(PushBackend::Fcm, &message.recipient)?;
        check_fcm_payload(message)?;
        let body = message_body(message, clock.now());
        let mut token = self.token(http, clock).await?;
        let mut refreshed = false;
        loop {
            let request = http.post(&self.send_url).bearer_auth(&token).json(&body);
            let answer = exchange(request, "send", clock).await?;
            if (200..300).contains(&answer.status) {
                return parse_sent(&answer.body);
            }
            let google = GoogleError::parse(&answer.body);
            // A 401 without THIRD_PARTY_AUTH_ERROR is about our token (revoked,
            // expired early): a fresh one fixes it. Once: a second 401 means
            // the account itself is refused.
            let token_refused = answer.status == 401 && google.fcm_code.as_deref() != Some("THIRD_PARTY_AUTH_ERROR");
            if token_refused && !refreshed {
                tracing::debug!("fcm refused the access token; fetching a new one");
                self.forget(&token).await;
                token = self.token(http, clock).await?;
                refreshed = true;
                continue;
            }
            if token_refused {
                let message = format!("a fresh access token was refused: {}", google.message_or(answer.status));
                return Err(PushError::new(PushBackend::Fcm, "send", PushErrorKind::Auth, Some(401), message)
                    .with_code(google.code()));
            }
            return Err(google.into_error(answer.status, answer.retry_after));
        }
    }

    /// The cached access token, or a new one when it is due for refresh.
    async fn token(&self, http: &reqwest::Client, clock: &dyn PushClock) -> Result<String, PushError> {
        let mut cached = self.token.lock().await;
        let now = clock.now();
        if let Some(token) = cached.as_ref().filter(|t| now < t.refresh_at) {
            return Ok(token.value.clone());
        }
        let fresh = self.grant(http, clock, now).await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Drops the cached token if it is still `refused` (a concurrent send
    /// may have replaced it already).
    async fn forget(&self, refused: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == refused) {
            *cached = None;
        }
    }

    /// The JWT-bearer grant: a signed assertion for an access token.
    async fn grant(
        &self,
        http: &reqwest::Client,
        clock: &dyn PushClock,
        now: DateTime<Utc>,
    ) -> Result<CachedToken, PushError> {
        let error = |kind, status, message: String| PushError::new(PushBackend::Fcm, "token", kind, status, message);
        let assertion = self.key.assertion(now).map_err(|e| error(PushErrorKind::Auth, None, e.0))?;
        let request = http.post(&self.key.token_uri).form(&[("grant_type", JWT_BEARER), ("assertion", &assertion)]);
        let answer = exchange(request, "token", clock).await?;
        if !(200..300).contains(&answer.status) {
            let oauth: OAuthError = serde_json::from_slice(&answer.body).unwrap_or_default();
            let message = oauth.error_description.clone().unwrap_or_else(|| format!("HTTP {}", answer.status));
            let kind = if transient_status(answer.status) { PushErrorKind::Transient } else { PushErrorKind::Auth };
            let retry_after = (kind == PushErrorKind::Transient).then_some(answer.retry_after).flatten();
            return Err(error(kind, Some(answer.status), message).with_code(oauth.error).with_retry_after(retry_after));
        }
        let granted: TokenAnswer = serde_json::from_slice(&answer.body).map_err(|e| {
            error(PushErrorKind::BadResponse, Some(answer.status), format!("unreadable token answer: {e}"))
        })?;
        if granted.token_type.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
            || granted.access_token.is_empty()
        {
            return Err(error(PushErrorKind::BadResponse, Some(answer.status), "not a bearer token".into()));
        }
        let lifetime = Duration::from_secs(granted.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME));
        let margin = self.refresh_margin.min(lifetime / 2);
        let refresh_at = add_duration(now, lifetime.saturating_sub(margin));
        tracing::debug!(lifetime_s = lifetime.as_secs(), "fcm access token granted");
        Ok(CachedToken { value: granted.access_token, refresh_at })
    }
}

fn add_duration(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d).ok().and_then(|d| t.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Sends a request and reads the whole answer. Every failure to get an
/// answer is transient: a grant can always be repeated, and a send is
/// retried on purpose (see [`super::PushClient::send`]).
async fn exchange(
    request: reqwest::RequestBuilder,
    operation: &'static str,
    clock: &dyn PushClock,
) -> Result<Answer, PushError> {
    let transient =
        |status, message| PushError::new(PushBackend::Fcm, operation, PushErrorKind::Transient, status, message);
    let response = request.send().await.map_err(|e| transient(None, network_message(&e)))?;
    let status = response.status().as_u16();
    let retry_after = crate::retry::retry_after(response.headers(), clock.now());
    let body = crate::body::read_capped(response, crate::body::DEFAULT_LIMIT)
        .await
        .map_err(|e| transient(Some(status), e.describe(|e| network_message(&e))))?;
    Ok(Answer { status, retry_after, body: body.to_vec() })
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: String,
    expires_in: Option<u64>,
    token_type: Option<String>,
}

#[derive(Deserialize, Default)]
struct OAuthError {
    error: Option<String>,
    error_description: Option<String>,
}

/// The longest `apns-collapse-id` APNs accepts (Apple: "must not exceed
/// 64 bytes").
const MAX_APNS_COLLAPSE_ID: usize = 64;

/// The v1 message: the device's token or the recipient's topic, a
/// notification, string data, high priority on Android (delivered at once,
/// even in Doze) and on APNs. iOS gets the same lifetime and collapsing as
/// Android: FCM passes `apns.headers` to APNs as they are, and APNs keeps
/// a push only until `apns-expiration` (UNIX seconds; without it APNs
/// keeps it up to 30 days) and replaces pending pushes with the same
/// `apns-collapse-id`.
fn message_body(message: &PushMessage, now: DateTime<Utc>) -> Value {
    let ttl = message.ttl.min(MAX_TTL);
    let mut android = json!({"priority": "high", "ttl": ttl_text(ttl)});
    let expires = now.timestamp().saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    let mut apns_headers = json!({"apns-priority": "10", "apns-expiration": expires.to_string()});
    if let Some(key) = &message.collapse_key {
        android["collapse_key"] = json!(key);
        apns_headers["apns-collapse-id"] = json!(apns_collapse_id(key));
    }
    let mut body = json!({
        "notification": {"title": message.title, "body": message.body},
        "data": message.data,
        "android": android,
        "apns": {"headers": apns_headers},
    });
    match &message.token {
        Some(token) => body["token"] = json!(token),
        None => body["topic"] = json!(message.recipient.topic()),
    }
    json!({"message": body})
}

/// The collapse key cut to APNs' 64 bytes, on a character boundary.
fn apns_collapse_id(key: &str) -> &str {
    let mut end = key.len().min(MAX_APNS_COLLAPSE_ID);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

/// A protobuf `Duration` in JSON (`300s`, `1.5s`), capped at FCM's four weeks.
fn ttl_text(ttl: Duration) -> String {
    let ttl = ttl.min(MAX_TTL);
    match ttl.subsec_nanos() {
        0 => format!("{}s", ttl.as_secs()),
        nanos => {
            let fraction = format!("{nanos:09}");
            format!("{}.{}s", ttl.as_secs(), fraction.trim_end_matches('0'))
        }
    }
}

/// `{"name": "projects/<p>/messages/<id>"}`.
pub(super) fn parse_sent(body: &[u8]) -> Result<SentPush, PushError> {
    let name = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            PushError::new(PushBackend::Fcm, "send", PushErrorKind::BadResponse, Some(200), "an answer without a name")
        })?;
    let provider_id = name.rsplit_once("/messages/").map(|(_, id)| id.to_string()).unwrap_or(name);
    Ok(SentPush { provider_id })
}

/// What a Google API error body says:
/// `{"error": {"code", "message", "status", "details": [{"@type":
/// "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode"}]}}`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct GoogleError {
    message: Option<String>,
    /// `NOT_FOUND`, `UNAVAILABLE`, …
    status: Option<String>,
    /// `UNREGISTERED`, `QUOTA_EXCEEDED`, …
    fcm_code: Option<String>,
}

impl GoogleError {
    pub(super) fn parse(body: &[u8]) -> GoogleError {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return GoogleError::default();
        };
        let error = &value["error"];
        let text = |v: &Value| v.as_str().map(str::to_string);
        let fcm_code = error["details"].as_array().into_iter().flatten().find_map(|detail| {
            let fcm = detail["@type"].as_str().is_some_and(|t| t.ends_with("google.firebase.fcm.v1.FcmError"));
            if fcm { text(&detail["errorCode"]) } else { None }
        });
        GoogleError { message: text(&error["message"]), status: text(&error["status"]), fcm_code }
    }

    fn code(&self) -> Option<String> {
        self.fcm_code.clone().or_else(|| self.status.clone())
    }

    fn message_or(&self, status: u16) -> String {
        self.message.clone().unwrap_or_else(|| format!("HTTP {status}"))
    }

    /// FCM's documented error codes first, then the HTTP status.
    pub(super) fn into_error(self, status: u16, retry_after: Option<Duration>) -> PushError {
        let kind = match self.fcm_code.as_deref() {
            Some("UNREGISTERED") => PushErrorKind::Unregistered,
            Some("INVALID_ARGUMENT") => PushErrorKind::Rejected,
            Some("SENDER_ID_MISMATCH" | "THIRD_PARTY_AUTH_ERROR") => PushErrorKind::Auth,
            Some("QUOTA_EXCEEDED" | "UNAVAILABLE" | "INTERNAL") => PushErrorKind::Transient,
            _ if transient_status(status) => PushErrorKind::Transient,
            _ if status == 401 || status == 403 => PushErrorKind::Auth,
            _ => PushErrorKind::Rejected,
        };
        let retry_after = (kind == PushErrorKind::Transient).then_some(retry_after).flatten();
        PushError::new(PushBackend::Fcm, "send", kind, Some(status), self.message_or(status))
            .with_code(self.code())
            .with_retry_after(retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Recipient;
    use super::*;

    #[test]
    fn the_message_has_fcms_v1_shape() {
        let message = PushMessage::new(Recipient::vendor("V-42"), "New order", "Order 1042: 2 items")
            .with_data("orderId", "1042")
            .with_collapse_key("order-1042");
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
        assert_eq!(
            message_body(&message, now),
            json!({"message": {
                "topic": "vendor_V-42",
                "notification": {"title": "New order", "body": "Order 1042: 2 items"},
                "data": {"orderId": "1042"},
                "android": {"priority": "high", "ttl": "300s", "collapse_key": "order-1042"},
                "apns": {"headers": {
                    "apns-priority": "10",
                    "apns-expiration": (now.timestamp() + 300).to_string(),
                    "apns-collapse-id": "order-1042",
                }},
            }})
        );
        let plain = message_body(&PushMessage::new(Recipient::rider("7"), "t", "b"), now);
        assert!(plain["message"]["android"].get("collapse_key").is_none());
        assert!(plain["message"]["apns"]["headers"].get("apns-collapse-id").is_none());
        let to_device = message_body(&PushMessage::new(Recipient::rider("7"), "t", "b").with_token("dev-token"), now);
        assert_eq!(
            (to_device["message"]["token"].as_str(), to_device["message"].get("topic")),
            (Some("dev-token"), None)
        );
        assert_eq!(apns_collapse_id(&"é".repeat(40)).len(), 64);
    }

    #[test]
    fn ttls_are_protobuf_durations_capped_at_four_weeks() {
        assert_eq!(ttl_text(Duration::from_secs(300)), "300s");
        assert_eq!(ttl_text(Duration::from_millis(1500)), "1.5s");
        assert_eq!(ttl_text(Duration::from_nanos(1_000_000_001)), "1.000000001s");
        assert_eq!(ttl_text(Duration::ZERO), "0s");
        assert_eq!(ttl_text(Duration::from_secs(90 * 24 * 3600)), "2419200s");
    }

    #[test]
    fn google_errors_are_classified_by_fcm_error_code_then_status() {
        let body = |status: &str, code: &str| {
            json!({"error": {"code": 0, "message": "m", "status": status, "details": [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]}})
            .to_string()
        };
        let kind = |status: u16, b: &str| GoogleError::parse(b.as_bytes()).into_error(status, None).kind;
        assert_eq!(kind(404, &body("NOT_FOUND", "UNREGISTERED")), PushErrorKind::Unregistered);
        assert_eq!(kind(400, &body("INVALID_ARGUMENT", "INVALID_ARGUMENT")), PushErrorKind::Rejected);
        assert_eq!(kind(403, &body("PERMISSION_DENIED", "SENDER_ID_MISMATCH")), PushErrorKind::Auth);
        assert_eq!(kind(401, &body("UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR")), PushErrorKind::Auth);
        assert_eq!(kind(429, &body("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED")), PushErrorKind::Transient);
        assert_eq!(kind(503, &body("UNAVAILABLE", "UNAVAILABLE")), PushErrorKind::Transient);
        assert_eq!(kind(500, &body("INTERNAL", "INTERNAL")), PushErrorKind::Transient);
        assert_eq!(kind(502, "<html>Bad Gateway</html>"), PushErrorKind::Transient);
        assert_eq!(kind(403, r#"{"error": {"status": "PERMISSION_DENIED"}}"#), PushErrorKind::Auth);
        assert_eq!(kind(404, r#"{"error": {"status": "NOT_FOUND"}}"#), PushErrorKind::Rejected);
        let e = GoogleError::parse(body("NOT_FOUND", "UNREGISTERED").as_bytes()).into_error(404, None);
        assert_eq!((e.code.as_deref(), e.message.as_str()), (Some("UNREGISTERED"), "m"));
        let e = GoogleError::parse(b"{}").into_error(429, Some(Duration::from_secs(3)));
        assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
    }

    #[test]
    fn the_provider_id_is_the_message_id() {
        let sent = parse_sent(br#"{"name": "projects/p/messages/0:123%abc"}"#).unwrap();
        assert_eq!(sent.provider_id, "0:123%abc");
        assert_eq!(parse_sent(br#"{"name": "odd"}"#).unwrap().provider_id, "odd");
        assert_eq!(parse_sent(b"{}").unwrap_err().kind, PushErrorKind::BadResponse);
    }
}
