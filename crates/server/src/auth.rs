//! Who may call what. One table ([`access_for`]) classifies every path, so a
//! route added later cannot be left open by forgetting an extractor.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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

/// Extractor proving the caller presented a valid API key.
#[derive(Debug, Clone, Copy)]
pub struct InternalCaller;

impl FromRequestParts<AppState> for InternalCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        match presented_api_key(parts) {
            Some(key) if matches_any(key, &state.credentials.api_keys) => Ok(InternalCaller),
            _ => Err(AppError::Unauthorized),
        }
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
            metrics::counter!("mangwale_auth_rejections_total", "access" => format!("{:?}", access_for(parts.uri.path())))
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
        ] {
            assert_eq!(access_for(p), Access::Internal, "{p}");
        }
        for p in ["/exotel/ivr/incoming", "/exotel/ivr/missed-call", "/exotel/ivr/dtmf", "/exotel/webhooks/call-status"]
        {
            assert_eq!(access_for(p), Access::ExotelCallback, "{p}");
        }
        assert_eq!(access_for("/webhooks/jupiter/order/new"), Access::JupiterSigned);
        assert_eq!(access_for("/webhooks/whatsapp"), Access::WhatsAppSigned);
        for p in ["/health", "/metrics", "/webhooks/jupiter/health", "/", "/campaignsx", "/voicex"] {
            assert_eq!(access_for(p), Access::Public, "{p}");
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
}
