//! The one error type of the HTTP layer. Client errors carry
//! `{"error": {"code", "message", "field"}}`; internal errors are logged with
//! their cause and answered with a generic 500.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed or a field is invalid.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String, field: Option<String> },
    /// Missing or wrong credentials. Never says which keys exist.
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// Authenticated, but the request is not allowed as made (a console
    /// session's unsafe request without its CSRF token).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Well-formed, but cannot be done as asked (422); names the field.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String, field: Option<String> },
    /// A dependency answered, but refused (bad credentials, say).
    #[error("{message}")]
    BadGateway { code: &'static str, message: String },
    /// A dependency is down or a capability is missing; worth retrying later.
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    /// A 400 that names the offending field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::BadRequest { code: "invalid_field", message: message.into(), field: Some(field.into()) }
    }

    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        AppError::Internal(e.into())
    }

    fn parts(&self) -> (StatusCode, &'static str, Option<&str>) {
        match self {
            AppError::BadRequest { code, field, .. } => (StatusCode::BAD_REQUEST, code, field.as_deref()),
            AppError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            AppError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code, None),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None),
            AppError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", None),
            AppError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None),
            AppError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", None),
            AppError::Conflict { code, .. } => (StatusCode::CONFLICT, code, None),
            AppError::Unprocessable { code, field, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code, field.as_deref()),
            AppError::BadGateway { code, .. } => (StatusCode::BAD_GATEWAY, code, None),
            AppError::Unavailable { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, code, None),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
        }
    }
}

/// A store that failed is a 503 `store_unavailable`: the caller (Exotel,
/// Jupiter, an internal client) retries, and the retry is deduplicated.
/// Stored data that cannot be read is a bug: 500.
impl From<mangwale_store::StoreError> for AppError {
    fn from(e: mangwale_store::StoreError) -> Self {
        match e {
            mangwale_store::StoreError::Corrupt(_) => AppError::Internal(Box::new(e)),
            e => {
                tracing::error!(error = %e, "the store failed");
                AppError::Unavailable { code: "store_unavailable", message: "the store is unavailable; retry".into() }
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code, field) = self.parts();
        let message = match &self {
            AppError::Internal(source) => {
                tracing::error!(error = %source, cause = ?std::error::Error::source(source.as_ref()), "request failed");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        let body = json!({"error": {"code": code, "message": message, "field": field}});
        (status, Json(body)).into_response()
    }
}

pub type AppResult<T> = Result<T, AppError>;
