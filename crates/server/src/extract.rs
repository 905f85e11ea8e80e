//! Body extractors that reject bad input with a 4xx naming the field, instead
//! of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// Largest request body accepted anywhere.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A JSON body. A missing or mistyped field is a 400 naming it; a body over
/// [`BODY_LIMIT`] is a 413.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// An `application/x-www-form-urlencoded` body, with the same errors.
#[derive(Debug, Clone)]
pub struct ApiForm<T>(pub T);

pub(crate) async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, AppError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge(BODY_LIMIT)
        } else {
            AppError::BadRequest { code: "unreadable_body", message: rejection.body_text(), field: None }
        }
    })
}

fn content_type(req: &Request) -> Option<String> {
    req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|v| v.to_ascii_lowercase())
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = content_type(&req)
            && !(ct.starts_with("application/json") || ct.contains("+json"))
        {
            return Err(AppError::UnsupportedMediaType(format!("expected application/json, got {ct}")));
        }
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiForm<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = content_type(&req)
            && !ct.starts_with("application/x-www-form-urlencoded")
        {
            return Err(AppError::UnsupportedMediaType(format!(
                "expected application/x-www-form-urlencoded, got {ct}"
            )));
        }
        let bytes = body_bytes(req, state).await?;
        parse_form(&bytes).map(ApiForm)
    }
}

/// Parses JSON, turning serde's error into a 400 that names the field.
/// A paging cursor `after` (an id, 0 or more; absent: `None`), or a 400
/// naming `after` that says what kind of id it takes.
pub fn parse_after(after: Option<&str>, what: &str) -> Result<Option<i64>, AppError> {
    after
        .map(|a| {
            a.trim()
                .parse::<i64>()
                .ok()
                .filter(|a| *a >= 0)
                .ok_or_else(|| AppError::invalid("after", format!("after: {what}, 0 or more")))
        })
        .transpose()
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let syntax =
            matches!(e.inner().classify(), serde_json::error::Category::Syntax | serde_json::error::Category::Eof);
        if syntax {
            return AppError::BadRequest {
                code: "malformed_json",
                message: format!("body is not valid JSON: {}", e.inner()),
                field: None,
            };
        }
        let message = e.inner().to_string();
        field_error(e.path().to_string(), message)
    })
}

/// Parses a urlencoded form, turning serde's error into a 400 naming the field.
pub fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(bytes));
    serde_path_to_error::deserialize(de).map_err(|e| field_error(e.path().to_string(), e.inner().to_string()))
}

/// Builds the 400 for a deserialisation error at `path`. serde reports a
/// missing field at its parent's path, with the name only in the message.
fn field_error(path: String, message: String) -> AppError {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .map(|name| if path == "." { name.to_string() } else { format!("{path}.{name}") });
    let field = missing.or_else(|| (path != ".").then_some(path));
    let message = match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    };
    AppError::BadRequest { code: "invalid_field", message, field }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::DefaultBodyLimit;
    use axum::http::{Request as HttpRequest, StatusCode};
    use axum::routing::post;
    use mangwale_core::{E164, OrderId};
    use serde::Deserialize;
    use tower::ServiceExt;

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Item {
        name: String,
        price: u32,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Order {
        order_id: OrderId,
        vendor_phone: E164,
        #[serde(default)]
        items: Vec<Item>,
    }

    async fn send(content_type: &str, body: impl Into<Body>) -> (StatusCode, serde_json::Value) {
        let app: Router = Router::new()
            .route("/json", post(|ApiJson(_): ApiJson<Order>| async { "ok" }))
            .route("/form", post(|ApiForm(_): ApiForm<Order>| async { "ok" }))
            .layer(DefaultBodyLimit::max(BODY_LIMIT));
        let path = if content_type.contains("form") { "/form" } else { "/json" };
        let req = HttpRequest::post(path).header("content-type", content_type).body(body.into()).unwrap();
        let res = app.oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    #[tokio::test]
    async fn accepts_a_valid_body() {
        let (status, _) = send("application/json", r#"{"order_id": 1, "vendor_phone": "9876543210"}"#).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn names_the_missing_field() {
        let (status, body) = send("application/json", r#"{"order_id": "MW-1"}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["field"], "vendor_phone");
        assert_eq!(body["error"]["code"], "invalid_field");
    }

    #[tokio::test]
    async fn names_the_invalid_field_and_nested_paths() {
        let (_, body) = send("application/json", r#"{"order_id": "MW-1", "vendor_phone": "12"}"#).await;
        assert_eq!(body["error"]["field"], "vendor_phone");
        let (_, body) = send(
            "application/json",
            r#"{"order_id": "MW-1", "vendor_phone": "9876543210", "items": [{"name": "Poha", "price": "x"}]}"#,
        )
        .await;
        assert_eq!(body["error"]["field"], "items[0].price");
    }

    #[tokio::test]
    async fn malformed_json_is_a_400() {
        let (status, body) = send("application/json", "{not json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "malformed_json");
    }

    #[tokio::test]
    async fn wrong_content_type_is_a_415() {
        let (status, body) = send("text/plain", "{}").await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(body["error"]["code"], "unsupported_media_type");
    }

    #[tokio::test]
    async fn oversized_body_is_a_413() {
        let big = format!(r#"{{"order_id": "{}"}}"#, "x".repeat(BODY_LIMIT + 10));
        let (status, body) = send("application/json", big).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"]["code"], "payload_too_large");
    }

    #[tokio::test]
    async fn forms_name_the_field_too() {
        let (status, body) = send("application/x-www-form-urlencoded", "order_id=MW-1&vendor_phone=abc").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["field"], "vendor_phone");
        let (_, body) = send("application/x-www-form-urlencoded", "order_id=MW-1").await;
        assert_eq!(body["error"]["field"], "vendor_phone");
    }
}
