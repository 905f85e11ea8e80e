//! The extractor for requests Exotel makes to us, in whatever encoding they
//! arrive: query parameters (applet GETs, HEAD), JSON, urlencoded or
//! multipart bodies (status callbacks), and the seed's JSON POST bodies.

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::Method;
use axum::http::header::CONTENT_TYPE;
use bytes::Bytes;
use mangwale_providers::exotel::params::Params;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::extract::BODY_LIMIT;

/// Every parameter of an Exotel request; body fields first, then query
/// parameters that the body did not carry.
#[derive(Debug, Clone)]
pub struct ExotelParams(pub Params);

impl<S: Send + Sync> FromRequest<S> for ExotelParams {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let query = Params::from_urlencoded(req.uri().query().unwrap_or("").as_bytes());
        if matches!(*req.method(), Method::GET | Method::HEAD) {
            return Ok(ExotelParams(query));
        }
        let content_type =
            req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let mut params = if content_type.starts_with("multipart/form-data") {
            let mut multipart = Multipart::from_request(req, state).await.map_err(|e| AppError::BadRequest {
                code: "malformed_body",
                message: format!("multipart body: {}", e.body_text()),
                field: None,
            })?;
            let mut pairs = Params::default();
            while let Some(field) = multipart.next_field().await.map_err(|e| AppError::BadRequest {
                code: "malformed_body",
                message: format!("multipart body: {}", e.body_text()),
                field: None,
            })? {
                let name = field.name().unwrap_or("").to_string();
                let value = field.text().await.map_err(|e| AppError::BadRequest {
                    code: "malformed_body",
                    message: format!("multipart field {name}: {}", e.body_text()),
                    field: Some(name.clone()),
                })?;
                pairs.push(name, value);
            }
            pairs
        } else {
            let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::PayloadTooLarge(BODY_LIMIT)
                } else {
                    AppError::BadRequest { code: "unreadable_body", message: rejection.body_text(), field: None }
                }
            })?;
            let looks_like_json = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
            if content_type.contains("json") || (content_type.is_empty() && looks_like_json) {
                Params::from_json(&bytes).map_err(|message| AppError::BadRequest {
                    code: "malformed_json",
                    message,
                    field: None,
                })?
            } else {
                Params::from_urlencoded(&bytes)
            }
        };
        params.merge_missing(query);
        Ok(ExotelParams(params))
    }
}

impl ExotelParams {
    /// A stable fingerprint of the request (sorted parameters, without the
    /// webhook token and without `CurrentTime`, Exotel's server time when it
    /// sent the request): a re-sent request has the same fingerprint,
    /// anything else that differs does not.
    pub fn fingerprint(&self) -> String {
        let mut pairs: Vec<_> = self.0.pairs().iter().filter(|(k, _)| !VOLATILE.contains(&k.as_str())).collect();
        pairs.sort();
        let mut hasher = Sha256::new();
        for (k, v) in pairs {
            hasher.update(k.as_bytes());
            hasher.update([0]);
            hasher.update(v.as_bytes());
            hasher.update([0]);
        }
        hex::encode(&hasher.finalize()[..16])
    }
}

/// Parameters that differ between two sendings of the same request.
const VOLATILE: &[&str] = &["token", "CurrentTime"];

/// `value` with every occurrence of `secret` (raw or percent-encoded)
/// replaced by `***`: the webhook token never reaches a stored event, even
/// when Exotel echoes it in a field we did not expect.
pub fn without_secret(value: Value, secret: &str) -> Value {
    if secret.is_empty() {
        return value;
    }
    let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    match value {
        Value::String(s) if s.contains(secret) || s.contains(&encoded) => {
            Value::String(s.replace(secret, "***").replace(&encoded, "***"))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(|v| without_secret(v, secret)).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, without_secret(v, secret))).collect()),
        other => other,
    }
}

/// Masks every phone number inside a JSON value (timeline details are shown
/// on dashboards and returned by APIs). A number sent as a JSON number
/// (`"phone": 919876543210`) is masked like the same digits in a string, and
/// becomes the masked string; other numbers (amounts, ids, times) stay.
pub fn mask_json(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(mangwale_core::mask_phone_numbers(&s).into_owned()),
        Value::Number(n) => match n.as_u64() {
            Some(digits) => {
                let text = digits.to_string();
                match mangwale_core::mask_phone_numbers(&text) {
                    std::borrow::Cow::Owned(masked) => Value::String(masked),
                    std::borrow::Cow::Borrowed(_) => Value::Number(n),
                }
            }
            None => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(mask_json).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, mask_json(v))).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_secret_is_scrubbed_raw_or_encoded_anywhere_in_a_value() {
        let secret = "S3CR3T/token+0001";
        let value =
            json!({"a": format!("wss://h/v?token={secret}"), "b": ["x", "token=S3CR3T%2Ftoken%2B0001"], "n": 1});
        let scrubbed = without_secret(value, secret);
        assert_eq!(scrubbed, json!({"a": "wss://h/v?token=***", "b": ["x", "token=***"], "n": 1}));
        assert_eq!(without_secret(json!("keep"), ""), json!("keep"));
    }

    #[test]
    fn a_resent_request_has_the_same_fingerprint() {
        let first = ExotelParams(Params::from_urlencoded(
            b"CallSid=a&digits=%221%22&CurrentTime=2024-01-01+10%3A00%3A00&token=t",
        ));
        let again =
            ExotelParams(Params::from_urlencoded(b"CallSid=a&digits=%221%22&CurrentTime=2024-01-01+10%3A00%3A07"));
        let other =
            ExotelParams(Params::from_urlencoded(b"CallSid=a&digits=%222%22&CurrentTime=2024-01-01+10%3A00%3A07"));
        assert_eq!(first.fingerprint(), again.fingerprint());
        assert_ne!(first.fingerprint(), other.fingerprint());
    }

    #[test]
    fn phone_numbers_are_masked_whether_strings_or_numbers() {
        let masked = mask_json(json!({
            "customer_phone": 919876543210u64, "vendor_phone": 9876543210u64, "text": "call +919876543210",
            "nested": [{"phone": 9988776655u64}], "order_id": 12345, "amount": 325.5, "at": 1795000000000u64,
        }));
        assert_eq!(masked["customer_phone"], "9198xxxxx210");
        assert_eq!(masked["vendor_phone"], "98xxxxx210");
        assert_eq!(masked["text"], "call +9198xxxxx210");
        assert_eq!(masked["nested"][0]["phone"], "99xxxxx655");
        assert_eq!((masked["order_id"].clone(), masked["amount"].clone()), (json!(12345), json!(325.5)));
        assert_eq!(masked["at"], json!(1795000000000u64));
        assert!(!masked.to_string().contains("9876543210"));
    }
}
