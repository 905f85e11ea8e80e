//! Who may call what. One table ([`access_for`]) classifies every path, so a
//! route added later cannot be left open by forgetting an extractor.
//!
//! Internal routes take an API key, or the operations console's session
//! cookie ([`SESSION_COOKIE`]): a stateless token, MACed with a key derived
//! from the API key that logged in and the server's console secret (kept in
//! the store), so it survives restarts, works on every replica, and ends
//! when that API key is rotated out. A cookie-authenticated request with an
//! unsafe method must repeat the session's CSRF token in [`CSRF_HEADER`].

use axum::extract::{FromRequestParts, Request, State};
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use rand::Rng;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::error::AppError;
use crate::state::AppState;

/// The credentials the service accepts, fixed at start-up.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// API keys of internal callers (Jupiter, the dashboard, operators).
    pub api_keys: Vec<Secret>,
    /// The token Exotel presents in the `token` query parameter of every
    /// callback URL we give it (Exotel does not sign its requests).
    pub webhook_token: Secret,
    /// The server's half of the console session keys (random on first use,
    /// kept in the settings store, the same on every replica).
    pub console_secret: Secret,
}

/// How a path is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// An API key (`X-API-Key` or `Authorization: Bearer`).
    Internal,
    /// The Exotel webhook token (`?token=`).
    ExotelCallback,
    /// The Jupiter HMAC signature, checked by the webhook handlers over the
    /// exact body bytes.
    JupiterSigned,
    /// Meta's `X-Hub-Signature-256`, checked by the WhatsApp webhook handler
    /// over the exact body bytes (the subscription handshake checks the
    /// verify token).
    WhatsAppSigned,
}

const INTERNAL_PREFIXES: &[&str] = &[
    "/comms/",
    "/campaigns",
    "/masking/",
    "/exotel/ivr/notify/",
    "/exotel/ivr/bridge/",
    "/exotel/ivr/voice/process",
    "/exotel/ivr/analytics",
    "/voice/",
    "/exotel/auth/check",
    "/_sim/",
    "/ops/",
];

/// Classifies a request path.
pub fn access_for(path: &str) -> Access {
    let under = |prefix: &str| match prefix.strip_suffix('/') {
        Some(base) => path == base || path.starts_with(prefix),
        None => path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/')),
    };
    if INTERNAL_PREFIXES.iter().any(|p| under(p)) {
        Access::Internal
    } else if path == "/webhooks/jupiter/health" {
        Access::Public
    } else if under("/webhooks/jupiter/") {
        Access::JupiterSigned
    } else if under("/webhooks/whatsapp") {
        Access::WhatsAppSigned
    } else if under("/exotel/docs") {
        // Swagger UI: it describes the API; the calls made from it still
        // need their credentials.
        Access::Public
    } else if under("/exotel/") {
        Access::ExotelCallback
    } else {
        Access::Public
    }
}

fn matches_any(presented: &str, accepted: &[Secret]) -> bool {
    // Check every key (no early exit) in constant time per key, so timing
    // does not tell which key, or how much of one, matched.
    accepted.iter().fold(false, |found, key| found | bool::from(presented.as_bytes().ct_eq(key.expose().as_bytes())))
}

fn presented_api_key(parts: &Parts) -> Option<&str> {
    if let Some(key) = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim());
    }
    let auth = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

fn presented_token(parts: &Parts) -> Option<String> {
    let query = parts.uri.query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned())
}

/// The console's session cookie.
pub const SESSION_COOKIE: &str = "mw_console";
/// The header an unsafe console request repeats its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a console session lasts (12 hours).
pub const SESSION_SECONDS: i64 = 43_200;
const TOKEN_VERSION: &str = "v1";

type HmacSha256 = hmac::Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The key of the sessions one API key opened: bound to the server's
/// console secret and to that API key, so rotating the key out ends them.
fn session_key(credentials: &Credentials, api_key: &Secret) -> [u8; 32] {
    hmac(credentials.console_secret.expose().as_bytes(), &[b"mw_console session\0", api_key.expose().as_bytes()])
}

fn token_mac(key: &[u8; 32], expiry: i64, id: &str) -> String {
    hex::encode(hmac(key, &[TOKEN_VERSION.as_bytes(), b".", expiry.to_string().as_bytes(), b".", id.as_bytes()]))
}

/// The index of the API key `presented` is, checking every key in constant
/// time per key (no early exit).
fn matching_key(presented: &str, accepted: &[Secret]) -> Option<usize> {
    accepted.iter().enumerate().fold(None, |found, (i, key)| {
        let hit = bool::from(presented.as_bytes().ct_eq(key.expose().as_bytes()));
        if hit && found.is_none() { Some(i) } else { found }
    })
}

/// A new console session for the API key `presented`, valid until
/// `now + SESSION_SECONDS`: `v1.<expiry>.<random id>.<HMAC-SHA256>`.
/// `None` when `presented` is not an accepted key.
pub fn open_session(credentials: &Credentials, presented: &str, now: DateTime<Utc>) -> Option<String> {
    let index = matching_key(presented, &credentials.api_keys)?;
    let key = session_key(credentials, &credentials.api_keys[index]);
    let expiry = now.timestamp() + SESSION_SECONDS;
    let id = hex::encode(rand::rng().random::<[u8; 16]>());
    let mac = token_mac(&key, expiry, &id);
    Some(format!("{TOKEN_VERSION}.{expiry}.{id}.{mac}"))
}

/// Whether `token` is a session one of the current API keys opened and it
/// has not expired.
pub fn session_valid(credentials: &Credentials, token: &str, now: DateTime<Utc>) -> bool {
    let mut parts = token.split('.');
    let (Some(TOKEN_VERSION), Some(expiry), Some(id), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(expiry) = expiry.parse::<i64>() else {
        return false;
    };
    if expiry <= now.timestamp() || id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    // Every key is tried, so timing does not tell which one opened it.
    credentials.api_keys.iter().fold(false, |found, api_key| {
        let expected = token_mac(&session_key(credentials, api_key), expiry, id);
        found | bool::from(expected.as_bytes().ct_eq(mac.as_bytes()))
    })
}

/// The CSRF token of a session (double submit: the page reads it from the
/// login or `/console/session` answer and sends it in [`CSRF_HEADER`]).
pub fn csrf_token(credentials: &Credentials, session: &str) -> String {
    hex::encode(hmac(credentials.console_secret.expose().as_bytes(), &[b"mw_console csrf\0", session.as_bytes()]))
}

/// The value of the session cookie, if the request carries one.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// How an internal request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InternalCaller {
    ApiKey,
    ConsoleSession,
}

impl FromRequestParts<AppState> for InternalCaller {
    type Rejection = AppError;

    /// An API key, when one is presented, decides alone. Otherwise a valid
    /// console session: a safe method is enough; an unsafe one needs the
    /// session's CSRF token too (403 without it).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(key) = presented_api_key(parts) {
            return if matches_any(key, &state.credentials.api_keys) {
                Ok(InternalCaller::ApiKey)
            } else {
                Err(AppError::Unauthorized)
            };
        }
        let Some(session) = session_cookie(&parts.headers) else {
            return Err(AppError::Unauthorized);
        };
        if !session_valid(&state.credentials, session, state.clock.now()) {
            return Err(AppError::Unauthorized);
        }
        if !is_safe(&parts.method) {
            let expected = csrf_token(&state.credentials, session);
            let presented = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !bool::from(presented.trim().as_bytes().ct_eq(expected.as_bytes())) {
                return Err(AppError::Forbidden {
                    code: "csrf_token_invalid",
                    message: format!("a console request that changes something needs the session's {CSRF_HEADER}"),
                });
            }
        }
        Ok(InternalCaller::ConsoleSession)
    }
}

/// Extractor proving the request carries the Exotel webhook token.
#[derive(Debug, Clone, Copy)]
pub struct ExotelCallback;

impl FromRequestParts<AppState> for ExotelCallback {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        match presented_token(parts) {
            Some(token) if matches_any(&token, std::slice::from_ref(&state.credentials.webhook_token)) => {
                Ok(ExotelCallback)
            }
            _ => Err(AppError::Unauthorized),
        }
    }
}

/// Middleware applying [`access_for`] to every request.
pub async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let verdict = match access_for(parts.uri.path()) {
        Access::Public | Access::JupiterSigned | Access::WhatsAppSigned => Ok(()),
        Access::Internal => InternalCaller::from_request_parts(&mut parts, &state).await.map(|_| ()),
        Access::ExotelCallback => ExotelCallback::from_request_parts(&mut parts, &state).await.map(|_| ()),
    };
    match verdict {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(e) => {
            let reason = if matches!(e, AppError::Forbidden { .. }) { "csrf" } else { "credentials" };
            metrics::counter!("mangwale_auth_rejections_total", "access" => format!("{:?}", access_for(parts.uri.path())), "reason" => reason)
                .increment(1);
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_seed_routes() {
        for p in [
            "/comms/notify/vendor/order",
            "/comms/stop",
            "/comms/timeline/MW-1",
            "/campaigns",
            "/campaigns/create",
            "/campaigns/abc/start",
            "/masking/sessions",
            "/exotel/ivr/notify/vendor/order",
            "/exotel/ivr/bridge/masked",
            "/exotel/ivr/voice/process",
            "/exotel/ivr/analytics",
            "/exotel/auth/check",
            "/_sim/exotel",
            "/_sim/exotel/incoming",
            "/voice/sessions",
            "/voice/sessions/vs_1/turns",
            "/ops/jobs/dead",
            "/ops/jobs/12/retry",
            "/ops/queue",
            "/ops/config",
            "/ops",
            "/comms/escalations/vendor_order_MW-1/escalate",
        ] {
            assert_eq!(access_for(p), Access::Internal, "{p}");
        }
        for p in ["/exotel/ivr/incoming", "/exotel/ivr/missed-call", "/exotel/ivr/dtmf", "/exotel/webhooks/call-status"]
        {
            assert_eq!(access_for(p), Access::ExotelCallback, "{p}");
        }
        assert_eq!(access_for("/webhooks/jupiter/order/new"), Access::JupiterSigned);
        assert_eq!(access_for("/webhooks/whatsapp"), Access::WhatsAppSigned);
        for p in [
            "/health",
            "/metrics",
            "/webhooks/jupiter/health",
            "/",
            "/campaignsx",
            "/voicex",
            "/opsx",
            "/console",
            "/console/",
            "/console/app.js",
            "/console/login",
            "/console/session",
        ] {
            assert_eq!(access_for(p), Access::Public, "{p}");
        }
    }

    #[test]
    fn swagger_ui_is_public_but_nothing_else_under_exotel() {
        for p in ["/exotel/docs", "/exotel/docs/", "/exotel/docs/swagger-ui.css", "/exotel/docs/swagger-ui-bundle.js"] {
            assert_eq!(access_for(p), Access::Public, "{p}");
        }
        for p in ["/exotel/docsx", "/exotel/documents", "/exotel/doc", "/exotel/ivr/docs"] {
            assert_eq!(access_for(p), Access::ExotelCallback, "{p}");
        }
    }

    #[test]
    fn key_matching_checks_every_key() {
        let keys = vec![Secret::new("aaaaaaaaaaaaaaaa"), Secret::new("bbbbbbbbbbbbbbbb")];
        assert!(matches_any("bbbbbbbbbbbbbbbb", &keys));
        assert!(!matches_any("bbbbbbbbbbbbbbb", &keys));
        assert!(!matches_any("", &keys));
        assert!(!matches_any("x", &[]));
    }

    fn credentials(keys: &[&str], secret: &str) -> Credentials {
        Credentials {
            api_keys: keys.iter().map(|k| Secret::new(*k)).collect(),
            webhook_token: Secret::new("token"),
            console_secret: Secret::new(secret),
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn a_session_opens_only_for_an_accepted_key_and_lasts_twelve_hours() {
        let creds = credentials(&["key-one-0123456789", "key-two-0123456789"], "server-secret");
        assert_eq!(open_session(&creds, "key-three", at(1_000)), None);
        assert_eq!(open_session(&creds, "", at(1_000)), None);
        let token = open_session(&creds, "key-two-0123456789", at(1_000)).unwrap();
        assert!(token.starts_with(&format!("v1.{}.", 1_000 + SESSION_SECONDS)), "{token}");
        assert!(session_valid(&creds, &token, at(1_000)));
        assert!(session_valid(&creds, &token, at(1_000 + SESSION_SECONDS - 1)));
        assert!(!session_valid(&creds, &token, at(1_000 + SESSION_SECONDS)), "expired");
        let other = open_session(&creds, "key-two-0123456789", at(1_000)).unwrap();
        assert_ne!(token, other, "each session has its own random id");
    }

    #[test]
    fn a_session_survives_a_restart_and_ends_with_its_api_key() {
        let creds = credentials(&["key-one-0123456789", "key-two-0123456789"], "server-secret");
        let token = open_session(&creds, "key-one-0123456789", at(0)).unwrap();
        // Another replica, or the same after a restart: the same keys and secret.
        let again = credentials(&["key-one-0123456789", "key-two-0123456789"], "server-secret");
        assert!(session_valid(&again, &token, at(10)));
        // key-one rotated out: its sessions end; key-two's do not.
        let rotated = credentials(&["key-two-0123456789", "key-new-0123456789"], "server-secret");
        assert!(!session_valid(&rotated, &token, at(10)));
        let kept = open_session(&creds, "key-two-0123456789", at(0)).unwrap();
        assert!(session_valid(&rotated, &kept, at(10)));
        // Another server secret (another deployment) knows none of them.
        let elsewhere = credentials(&["key-one-0123456789", "key-two-0123456789"], "other-secret");
        assert!(!session_valid(&elsewhere, &token, at(10)));
    }

    #[test]
    fn a_forged_or_altered_session_is_refused() {
        let creds = credentials(&["key-one-0123456789"], "server-secret");
        let token = open_session(&creds, "key-one-0123456789", at(0)).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let longer = format!("v1.{}.{}.{}", parts[1].parse::<i64>().unwrap() + 3600, parts[2], parts[3]);
        let flipped = format!("{}0", &token[..token.len() - 1]);
        let flipped = if flipped == token { format!("{}1", &token[..token.len() - 1]) } else { flipped };
        for bad in [
            longer.as_str(),
            flipped.as_str(),
            "",
            "v1",
            "v1.x.y.z",
            &format!("v2.{}.{}.{}", parts[1], parts[2], parts[3]),
            &format!("{token}.extra"),
        ] {
            assert!(!session_valid(&creds, bad, at(10)), "{bad}");
        }
    }

    #[test]
    fn the_csrf_token_belongs_to_its_session() {
        let creds = credentials(&["key-one-0123456789"], "server-secret");
        let a = open_session(&creds, "key-one-0123456789", at(0)).unwrap();
        let b = open_session(&creds, "key-one-0123456789", at(0)).unwrap();
        assert_eq!(csrf_token(&creds, &a), csrf_token(&creds, &a));
        assert_ne!(csrf_token(&creds, &a), csrf_token(&creds, &b));
        assert_eq!(csrf_token(&creds, &a).len(), 64);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = axum::http::HeaderMap::new();
        assert_eq!(session_cookie(&headers), None);
        headers.append(axum::http::header::COOKIE, "theme=dark; mw_console_x=no".parse().unwrap());
        assert_eq!(session_cookie(&headers), None);
        headers.append(axum::http::header::COOKIE, "a=1; mw_console=v1.2.3.4; b=2".parse().unwrap());
        assert_eq!(session_cookie(&headers), Some("v1.2.3.4"));
        let mut empty = axum::http::HeaderMap::new();
        empty.append(axum::http::header::COOKIE, "mw_console=".parse().unwrap());
        assert_eq!(session_cookie(&empty), None);
    }
}
