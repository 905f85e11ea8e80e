//! The axum application: routes, auth policy, request ids, tracing, metrics,
//! JSON errors for everything axum would otherwise answer in plain text.

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, header};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::AppError;
use crate::extract::BODY_LIMIT;
use crate::state::AppState;
use crate::{auth, routes, telemetry};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest a request may take before it is answered 408; Exotel gives up on
/// applet URLs after a few seconds anyway.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the application. Tests call this with their own state.
pub fn build(state: AppState) -> Router {
    Router::new()
        .merge(routes::system::router())
        .merge(routes::docs::router())
        .merge(routes::exotel_auth::router())
        .merge(routes::exotel_ivr::router())
        .merge(routes::exotel_sms::router())
        .merge(routes::exotel_voicebot::router())
        .merge(routes::jupiter_webhooks::router())
        .merge(routes::comms::router())
        .merge(routes::campaign_compliance::router())
        .merge(routes::campaigns::router())
        .merge(routes::masking::router())
        .merge(routes::ops::router())
        .merge(routes::whatsapp::router())
        .merge(routes::voice::router())
        .merge(routes::sandbox_sim::router())
        .merge(routes::console::router())
        .fallback(|| async { AppError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::authorize))
        .route_layer(axum::middleware::from_fn(telemetry::record_http_metrics))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(CatchPanicLayer::custom(|_| AppError::internal("handler panicked").into_response()))
        .layer(
            TraceLayer::new_for_http()
                // The path only: query strings carry the webhook token.
                .make_span_with(|req: &Request<_>| {
                    let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(|res: &Response, latency: Duration, _span: &tracing::Span| {
                    tracing::info!(status = res.status().as_u16(), latency_ms = latency.as_millis() as u64, "answered");
                }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("x-jupiter-signature"),
        ]))
        .with_state(state)
}
