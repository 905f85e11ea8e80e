//! `Idempotency-Key` on the routes that place real calls (`POST
//! /comms/bridge`, `POST /exotel/ivr/notify/*`): a client that retries a
//! request whose answer it did not get must not place a second call.
//!
//! Wrap a route's handler in [`idempotent`]. A request without the header
//! runs as before. With it:
//! - the first request with a key claims it in the store, runs, and its
//!   answer (status, content type, body) is stored with the key for
//!   [`KEEP_KEYS`];
//! - the same key with the same request (method, path, JSON body) gets that
//!   stored answer again, marked `Idempotent-Replayed: true`, and nothing runs;
//! - the same key with another body is a 422 naming the header;
//! - the same key while the first is still running is a 409 (retry later).
//!   A request cut off by a crash leaves its key running until it expires: it
//!   may have placed its call, so it is never run again under that key.
//!
//! A 503 answer (a dependency was unavailable and nothing was done: see
//! `AppError::Unavailable`) releases the key, so that the retry the 503 asks
//! for runs; every other answer is kept.
//!
//! The handler runs in a task of its own: a client that hangs up, or the
//! request timeout, cannot stop it between placing a call and storing the
//! answer.

use std::future::Future;
use std::pin::Pin;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::handler::Handler;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mangwale_store::{IdempotencyClaim, StoredResponse};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::extract::BODY_LIMIT;
use crate::state::AppState;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on an answer that was stored earlier and is replayed.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// How long a key and its answer are kept.
pub const KEEP_KEYS: chrono::Duration = chrono::Duration::hours(24);

/// A handler that honours `Idempotency-Key`; see the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct Idempotent<H>(H);

/// Wraps a route's handler: `post(idempotent(bridge))`.
pub fn idempotent<H>(handler: H) -> Idempotent<H> {
    Idempotent(handler)
}

impl<H, T> Handler<T, AppState> for Idempotent<H>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    type Future = Pin<Box<dyn Future<Output = Response> + Send>>;

    fn call(self, req: Request, state: AppState) -> Self::Future {
        Box::pin(async move { run(self.0, req, state).await.unwrap_or_else(IntoResponse::into_response) })
    }
}

/// The key, if the request has one: 1 to 255 visible ASCII characters.
fn key(req: &Request) -> Result<Option<String>, AppError> {
    let Some(raw) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let invalid = || {
        AppError::invalid("Idempotency-Key", format!("Idempotency-Key: 1 to {MAX_KEY_LEN} visible ASCII characters"))
    };
    let key = raw.to_str().map_err(|_| invalid())?.trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid());
    }
    Ok(Some(key.to_string()))
}

/// What identifies a request's content: its method, path and query, and its
/// body (as JSON re-serialised when it is JSON, so that spacing does not
/// matter).
fn fingerprint(parts: &axum::http::request::Parts, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(parts.method.as_str().as_bytes());
    hash.update(b"\n");
    hash.update(parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("").as_bytes());
    hash.update(b"\n");
    match serde_json::from_slice::<Value>(body) {
        Ok(json) => hash.update(json.to_string().as_bytes()),
        Err(_) => hash.update(body),
    }
    hex::encode(hash.finalize())
}

async fn run<H, T>(handler: H, req: Request, state: AppState) -> Result<Response, AppError>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let Some(key) = key(&req)? else {
        return Ok(handler.call(req, state).await);
    };
    let (parts, body) = req.into_parts();
    let bytes = crate::extract::body_bytes(Request::from_parts(parts.clone(), body), &state).await?;
    let fingerprint = fingerprint(&parts, &bytes);
    let scope = format!("{} {}", parts.method, parts.uri.path());
    let now = state.clock.now();
    let store_unavailable = |e: mangwale_store::StoreError| {
        tracing::error!(error = %e, "idempotency key store failed");
        AppError::Unavailable { code: "store_unavailable", message: "the request could not be recorded; retry".into() }
    };
    let claim = state
        .store
        .idempotency_claim(&scope, &key, &fingerprint, now, now + KEEP_KEYS)
        .await
        .map_err(store_unavailable)?;
    let reused = || {
        metrics::counter!("mangwale_idempotency_total", "outcome" => "mismatch").increment(1);
        AppError::Unprocessable {
            code: "idempotency_key_reused",
            message: "Idempotency-Key was already used with a different request body; use a new key".into(),
            field: Some("Idempotency-Key".into()),
        }
    };
    match claim {
        IdempotencyClaim::Completed { fingerprint: first, response } if first == fingerprint => {
            metrics::counter!("mangwale_idempotency_total", "outcome" => "replayed").increment(1);
            Ok(replay(response))
        }
        IdempotencyClaim::InFlight { fingerprint: first } if first == fingerprint => {
            metrics::counter!("mangwale_idempotency_total", "outcome" => "in_flight").increment(1);
            let mut response = AppError::Conflict {
                code: "idempotency_key_in_use",
                message: "a request with this Idempotency-Key is still being processed; retry later".into(),
            }
            .into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            Ok(response)
        }
        IdempotencyClaim::Completed { .. } | IdempotencyClaim::InFlight { .. } => Err(reused()),
        IdempotencyClaim::Claimed => {
            metrics::counter!("mangwale_idempotency_total", "outcome" => "claimed").increment(1);
            let request = Request::from_parts(parts, Body::from(bytes));
            let task = tokio::spawn(async move {
                // A panicking handler is answered as a 500 and that answer
                // is kept: it may have acted before it panicked.
                let response = match tokio::spawn(handler.call(request, state.clone())).await {
                    Ok(response) => response,
                    Err(e) => AppError::internal(format!("handler failed: {e}")).into_response(),
                };
                settle(&state, &scope, &key, response).await
            });
            task.await.map_err(|e| AppError::internal(format!("idempotent request failed: {e}")))
        }
    }
}

/// Keeps the answer of a claimed key (or releases the key after a 503) and
/// hands the answer on.
async fn settle(state: &AppState, scope: &str, key: &str, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(e) => {
            // Keep an answer anyway: the request may have acted.
            let failed = AppError::internal(format!("reading the answer: {e}")).into_response();
            let (failed_parts, failed_body) = failed.into_parts();
            let failed_bytes = axum::body::to_bytes(failed_body, BODY_LIMIT).await.unwrap_or_default();
            return keep(state, scope, key, failed_parts, failed_bytes).await;
        }
    };
    if parts.status == StatusCode::SERVICE_UNAVAILABLE {
        if let Err(e) = state.store.idempotency_release(scope, key).await {
            // The key stays running until it expires: retries get a 409.
            tracing::error!(error = %e, "releasing an idempotency key failed");
        }
        return Response::from_parts(parts, Body::from(bytes));
    }
    keep(state, scope, key, parts, bytes).await
}

async fn keep(state: &AppState, scope: &str, key: &str, parts: axum::http::response::Parts, bytes: Bytes) -> Response {
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        content_type: parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string),
        body: bytes.to_vec(),
    };
    match state.store.idempotency_complete(scope, key, &stored, state.clock.now()).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(scope, "an idempotency key was no longer held when its answer came"),
        Err(e) => {
            // The key stays running until it expires: retries get a 409,
            // never a second call.
            tracing::error!(error = %e, scope, "storing an idempotent answer failed");
            metrics::counter!("mangwale_idempotency_store_failures_total").increment(1);
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    if let Some(ct) = stored.content_type.and_then(|ct| HeaderValue::from_str(&ct).ok()) {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(path: &str) -> axum::http::request::Parts {
        Request::post(path).body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_fingerprint_ignores_json_spacing_but_not_content() {
        let a = fingerprint(&parts("/comms/bridge"), br#"{"order_id": 1, "reason": "x"}"#);
        assert_eq!(a, fingerprint(&parts("/comms/bridge"), br#"{"order_id":1,"reason":"x"}"#));
        assert_ne!(a, fingerprint(&parts("/comms/bridge"), br#"{"order_id": 2, "reason": "x"}"#));
        assert_ne!(a, fingerprint(&parts("/exotel/ivr/notify/vendor/order"), br#"{"order_id": 1, "reason": "x"}"#));
    }

    #[test]
    fn keys_are_bounded_visible_ascii() {
        let with = |v: &str| Request::post("/").header(HEADER, v).body(Body::empty()).unwrap();
        assert_eq!(key(&with("order-42-bridge-1")).unwrap().as_deref(), Some("order-42-bridge-1"));
        assert!(key(&Request::post("/").body(Body::empty()).unwrap()).unwrap().is_none());
        for bad in ["", "   ", "has space", &"k".repeat(256)] {
            let e = key(&with(bad)).unwrap_err();
            assert!(matches!(&e, AppError::BadRequest { field: Some(f), .. } if f == "Idempotency-Key"), "{bad}");
        }
    }
}
