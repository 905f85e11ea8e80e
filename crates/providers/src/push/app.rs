//! The app-backend backend: the Mangwale app backend's own
//! `POST {url}/api/push/send`, which looks up the recipient's devices itself.

use std::time::Duration;

use serde_json::{Value, json};

use super::config::AppBackendConfig;
use super::error::{PushBackend, PushError, PushErrorKind, network_message, transient_status};
use super::{PushClock, PushMessage, SentPush, check_recipient};

pub(crate) struct AppBackend {
    send_url: String,
    api_key: String,
}

impl AppBackend {
    pub fn new(config: AppBackendConfig) -> Self {
        let send_url = format!("{}/api/push/send", config.url.as_str().trim_end_matches('/'));
        AppBackend { send_url, api_key: config.api_key }
    }

    pub async fn attempt(
        &self,
        http: &reqwest::Client,
        clock: &dyn PushClock,
        message: &PushMessage,
    ) -> Result<SentPush, PushError> {
        check_recipient(PushBackend::AppBackend, &message.recipient)?;
        let error =
            |kind, status, message: String| PushError::new(PushBackend::AppBackend, "send", kind, status, message);
        let request = http.post(&self.send_url).header("X-API-Key", &self.api_key).json(&request_body(message));
        // Failing to get an answer is transient, the send retried on
        // purpose (see `PushClient::send`).
        let response = request.send().await.map_err(|e| error(PushErrorKind::Transient, None, network_message(&e)))?;
        let status = response.status().as_u16();
        let retry_after = crate::retry::retry_after(response.headers(), clock.now());
        let bytes = crate::body::read_capped(response, crate::body::DEFAULT_LIMIT)
            .await
            .map_err(|e| error(PushErrorKind::Transient, Some(status), e.describe(|e| network_message(&e))))?;
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        let said = body.as_ref().and_then(|b| b.get("error")).and_then(Value::as_str).map(str::to_string);
        let success = body.as_ref().and_then(|b| b.get("success")).and_then(Value::as_bool);

        if (200..300).contains(&status) {
            if success == Some(false) {
                return Err(error(
                    PushErrorKind::Rejected,
                    Some(status),
                    said.unwrap_or_else(|| "success: false".into()),
                ));
            }
            let id = body.as_ref().and_then(|b| b.get("messageId")).and_then(id_text);
            return id.map(|provider_id| SentPush { provider_id }).ok_or_else(|| {
                error(PushErrorKind::BadResponse, Some(status), "an answer without a messageId".into())
            });
        }
        let message = said.clone().unwrap_or_else(|| format!("HTTP {status}"));
        let kind = match status {
            // Only the backend's own JSON 404 means "no device": a bare 404
            // is a wrong APP_PUSH_URL.
            404 if success == Some(false) => PushErrorKind::Unregistered,
            404 => {
                let why = format!("no push endpoint at {} (check APP_PUSH_URL)", self.send_url);
                return Err(error(PushErrorKind::Rejected, Some(status), why));
            }
            401 | 403 => PushErrorKind::Auth,
            s if transient_status(s) => PushErrorKind::Transient,
            _ => PushErrorKind::Rejected,
        };
        let retry_after: Option<Duration> = (kind == PushErrorKind::Transient).then_some(retry_after).flatten();
        Err(error(kind, Some(status), message).with_retry_after(retry_after))
    }
}

/// `messageId` as a string or a number.
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn request_body(message: &PushMessage) -> Value {
    // Whole seconds, rounded up: a push is never dropped early.
    let ttl_seconds = message.ttl.as_secs() + u64::from(message.ttl.subsec_nanos() > 0);
    let mut body = json!({
        "recipientType": message.recipient.role.as_str(),
        "recipientId": message.recipient.id,
        "title": message.title,
        "body": message.body,
        "data": message.data,
        "ttlSeconds": ttl_seconds,
    });
    if let Some(key) = &message.collapse_key {
        body["collapseKey"] = json!(key);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::super::Recipient;
    use super::*;

    #[test]
    fn the_body_is_the_app_backends_shape() {
        let message = PushMessage::new(Recipient::vendor("V-42"), "New order", "Order 1042")
            .with_data("orderId", "1042")
            .with_collapse_key("order-1042")
            .with_ttl(Duration::from_millis(299_500));
        assert_eq!(
            request_body(&message),
            json!({"recipientType": "vendor", "recipientId": "V-42", "title": "New order", "body": "Order 1042",
                   "data": {"orderId": "1042"}, "ttlSeconds": 300, "collapseKey": "order-1042"})
        );
    }
}
