//! The HTTP listener: plain hyper, so that a fault can close a connection
//! without answering. Every request is logged first; then an injected fault
//! may answer it; then the token, FCM or app-backend handler does.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{AuthUsed, Inner, PushEndpoint, PushFault, PushRequest, app, control, fcm, oauth};
use crate::clock::lock;

const MAX_BODY: usize = 1 << 20;

pub(crate) type HttpResponse = Response<Full<Bytes>>;

pub(crate) use crate::http::DropConnection;

/// An answer, with what the log should say about it.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
    pub retry_after_secs: Option<u64>,
    /// Why the request was refused, for [`PushRequest::error`].
    pub error: Option<String>,
}

impl Reply {
    pub fn ok(body: Value) -> Reply {
        Reply { status: 200, body, retry_after_secs: None, error: None }
    }

    pub fn refused(status: u16, body: Value, error: impl Into<String>) -> Reply {
        Reply { status, body, retry_after_secs: None, error: Some(error.into()) }
    }
}

pub(crate) fn json_response(status: u16, body: &Value) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=UTF-8"));
    r
}

pub(crate) async fn serve(inner: Arc<Inner>, listener: TcpListener, shutdown: watch::Receiver<bool>) {
    crate::http::serve("push sim", listener, shutdown, move |req| handle(inner.clone(), req)).await
}

/// Which endpoint a request is for, with the project of an FCM send.
fn route(method: &Method, path: &str) -> Option<(PushEndpoint, Option<String>)> {
    if *method != Method::POST {
        return None;
    }
    if path == "/token" {
        return Some((PushEndpoint::Token, None));
    }
    if path == "/api/push/send" {
        return Some((PushEndpoint::AppSend, None));
    }
    let project = path.strip_prefix("/v1/projects/")?.strip_suffix("/messages:send")?;
    (!project.is_empty() && !project.contains('/')).then(|| (PushEndpoint::FcmSend, Some(project.to_string())))
}

async fn handle(inner: Arc<Inner>, req: Request<Incoming>) -> Result<HttpResponse, DropConnection> {
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(json_response(413, &json!({"error": "request body too large"}))),
    };
    let path = parts.uri.path().to_string();
    if path == "/_sim" || path.starts_with("/_sim/") {
        return Ok(control::handle(&inner, &parts.method, &path, &bytes));
    }
    let route = route(&parts.method, &path);
    let endpoint = route.as_ref().map(|(e, _)| *e);
    let form: Vec<(String, String)> = match endpoint {
        Some(PushEndpoint::Token) => form_urlencoded::parse(&bytes).into_owned().collect(),
        _ => Vec::new(),
    };
    let json_body = match endpoint {
        Some(PushEndpoint::FcmSend | PushEndpoint::AppSend) => serde_json::from_slice::<Value>(&bytes).ok(),
        _ => None,
    };

    let (seq, fault) = {
        let mut st = lock(&inner.state);
        let fault = endpoint.and_then(|e| st.take_fault(e));
        let seq = st.record(PushRequest {
            seq: 0,
            at: inner.now(),
            method: parts.method.to_string(),
            path: path.clone(),
            endpoint,
            auth: auth_used(&parts.headers, &form),
            body: json_body,
            form,
            recipient: None,
            fault,
            status: None,
            error: None,
            dropped: false,
        });
        (seq, fault)
    };

    let Some((endpoint, project)) = route else {
        let reply = Reply::refused(404, json!({"error": "not found"}), "unknown path");
        return Ok(finish(&inner, seq, reply));
    };
    let mut drop_after = false;
    match fault {
        Some(PushFault::Status { status }) => return Ok(finish(&inner, seq, fault_reply(endpoint, status, None))),
        Some(PushFault::RateLimited { retry_after_secs }) => {
            return Ok(finish(&inner, seq, fault_reply(endpoint, 429, Some(retry_after_secs))));
        }
        Some(PushFault::Drop) => {
            mark_dropped(&inner, seq);
            return Err(DropConnection);
        }
        Some(PushFault::DropAfterProcessing) => drop_after = true,
        None => {}
    }

    let reply = match endpoint {
        PushEndpoint::Token => oauth::grant(&inner, &bytes),
        PushEndpoint::FcmSend => fcm::send(&inner, seq, project.as_deref().unwrap_or_default(), &parts.headers, &bytes),
        PushEndpoint::AppSend => app::send(&inner, seq, &parts.headers, &bytes),
        PushEndpoint::Any => Reply::refused(404, json!({"error": "not found"}), "unknown path"),
    };
    let response = finish(&inner, seq, reply);
    if drop_after {
        // The effect is done; only the answer is lost.
        mark_dropped(&inner, seq);
        return Err(DropConnection);
    }
    Ok(response)
}

/// The body an injected error status answers with, in the endpoint's own shape.
fn fault_reply(endpoint: PushEndpoint, status: u16, retry_after_secs: Option<u64>) -> Reply {
    let reason = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
    let message = format!("{reason} (injected fault)");
    let mut reply = match endpoint {
        PushEndpoint::FcmSend => {
            // A 401 here is the plain bad-token answer; the FCM error codes
            // name the quota and outage statuses.
            let code = match status {
                429 => Some("QUOTA_EXCEEDED"),
                500 => Some("INTERNAL"),
                503 => Some("UNAVAILABLE"),
                _ => None,
            };
            let body = fcm::google_error(status, &message, code);
            Reply::refused(status, body, format!("{} {message}", code.unwrap_or(fcm::google_status(status))))
        }
        PushEndpoint::Token => {
            let error = match status {
                429 => "rate_limit_exceeded",
                s if s >= 500 => "internal_failure",
                _ => "invalid_request",
            };
            Reply::refused(status, json!({"error": error, "error_description": message}), format!("{error} {message}"))
        }
        PushEndpoint::AppSend | PushEndpoint::Any => {
            Reply::refused(status, json!({"success": false, "error": message}), message.clone())
        }
    };
    reply.retry_after_secs = retry_after_secs;
    reply
}

/// Records the answer and renders it.
fn finish(inner: &Inner, seq: u64, reply: Reply) -> HttpResponse {
    if let Some(entry) = lock(&inner.state).request_mut(seq) {
        entry.status = Some(reply.status);
        entry.error = reply.error;
    }
    let mut response = json_response(reply.status, &reply.body);
    if let Some(secs) = reply.retry_after_secs {
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn mark_dropped(inner: &Inner, seq: u64) {
    if let Some(entry) = lock(&inner.state).request_mut(seq) {
        entry.dropped = true;
        entry.status = None;
    }
}

pub(crate) fn header(headers: &HeaderMap, name: impl http::header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// `Authorization: Bearer <token>`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let (scheme, token) = header(headers, AUTHORIZATION)?.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn auth_used(headers: &HeaderMap, form: &[(String, String)]) -> AuthUsed {
    if let Some((_, assertion)) = form.iter().find(|(k, _)| k == "assertion") {
        let mut parts = assertion.split('.');
        let decode = |part: Option<&str>| {
            part.and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .unwrap_or(Value::Null)
        };
        let header = decode(parts.next());
        let claims = decode(parts.next());
        return AuthUsed::JwtGrant { kid: header["kid"].as_str().map(str::to_string), claims };
    }
    if let Some(token) = bearer(headers) {
        return AuthUsed::Bearer { token: token.to_string() };
    }
    if let Some(scheme) = header(headers, AUTHORIZATION) {
        return AuthUsed::Other { scheme: scheme.split(' ').next().unwrap_or_default().to_string() };
    }
    match header(headers, "x-api-key") {
        Some(key) => AuthUsed::ApiKey { key: key.to_string() },
        None => AuthUsed::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(&Method::POST, "/token"), Some((PushEndpoint::Token, None)));
        assert_eq!(
            route(&Method::POST, "/v1/projects/p-1/messages:send"),
            Some((PushEndpoint::FcmSend, Some("p-1".to_string())))
        );
        assert_eq!(route(&Method::POST, "/api/push/send"), Some((PushEndpoint::AppSend, None)));
        assert_eq!(route(&Method::GET, "/token"), None);
        assert_eq!(route(&Method::POST, "/v1/projects//messages:send"), None);
        assert_eq!(route(&Method::POST, "/v1/projects/a/b/messages:send"), None);
    }
}
