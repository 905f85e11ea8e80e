//! What the Cloud API sends us: the `messages` webhook (replies and
//! delivery statuses), its `X-Hub-Signature-256`, and the GET handshake
//! that subscribes the callback URL.
//!
//! The parser is lenient inside a valid envelope: an entry, change, message
//! or status it cannot read, or of a kind we do not handle (images,
//! reactions, template status updates, …), is skipped rather than failing
//! the whole delivery, because Meta batches several events in one POST and
//! retries a failed delivery for days.

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use mangwale_core::E164;
use serde_json::{Map, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The signature header of webhooks, as lower case (HTTP header names are
/// case-insensitive; Meta sends `X-Hub-Signature-256`).
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// The `object` of WhatsApp webhooks.
pub const WEBHOOK_OBJECT: &str = "whatsapp_business_account";

/// Longest `hub.challenge` echoed back. Meta sends a short number; anything
/// else is not from Meta and is not reflected.
const MAX_CHALLENGE: usize = 256;

/// A delivery status of a message we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Left Meta for the person's phone.
    Sent,
    /// Reached the phone.
    Delivered,
    /// Opened (only when the person has read receipts on).
    Read,
    /// Will not be delivered; `errors` says why.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "sent" => Some(DeliveryStatus::Sent),
            "delivered" => Some(DeliveryStatus::Delivered),
            "read" => Some(DeliveryStatus::Read),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// One thing a webhook told us, in the order it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundEvent {
    /// The person tapped a button: a template's quick reply
    /// (`"type": "button"`) or an interactive message's reply button
    /// (`"type": "interactive"`, `button_reply`).
    ButtonReply {
        from: E164,
        /// The reply's own `wamid`.
        message_id: String,
        /// `context.id`: the message the button belonged to (the template
        /// we sent).
        context_message_id: Option<String>,
        /// The payload we put on the button (a quick reply's `payload`, an
        /// interactive button's `id`). A quick reply sent without a payload
        /// comes back with its label here.
        payload: String,
        /// The button's label as the person saw it.
        text: String,
        timestamp: DateTime<Utc>,
    },
    /// The person wrote a text message.
    Text { from: E164, message_id: String, body: String, timestamp: DateTime<Utc> },
    /// A message we sent moved on.
    Status {
        message_id: String,
        /// `recipient_id`, when it is a phone number.
        recipient: Option<E164>,
        status: DeliveryStatus,
        timestamp: DateTime<Utc>,
        /// `(code, title)` of each error of a `failed` status.
        errors: Vec<(i64, String)>,
        /// `biz_opaque_callback_data` as the send gave it.
        callback_data: Option<String>,
    },
}

/// A webhook body that is not a WhatsApp webhook at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook body is not JSON: {0}")]
    NotJson(String),
    #[error("the webhook body is not a JSON object with an entry array")]
    NotAnEnvelope,
    /// Another product's webhook (`page`, `instagram`, …) sent to this URL.
    #[error("the webhook is about '{0}', not whatsapp_business_account")]
    WrongObject(String),
}

/// Parses a `messages` webhook:
/// `{"object": "whatsapp_business_account", "entry": [{"id", "changes": [{"field": "messages", "value": {…}}]}]}`.
///
/// Fails only when the body is not such an envelope; inside it, whatever
/// cannot be read is skipped (see the module documentation).
pub fn parse_webhook(body: &[u8]) -> Result<Vec<InboundEvent>, WebhookError> {
    let root: Value = serde_json::from_slice(body).map_err(|e| WebhookError::NotJson(e.to_string()))?;
    let root = root.as_object().ok_or(WebhookError::NotAnEnvelope)?;
    match root.get("object").and_then(Value::as_str) {
        Some(WEBHOOK_OBJECT) => {}
        Some(other) => return Err(WebhookError::WrongObject(other.chars().take(64).collect())),
        None => return Err(WebhookError::NotAnEnvelope),
    }
    let entries = root.get("entry").and_then(Value::as_array).ok_or(WebhookError::NotAnEnvelope)?;
    let mut events = Vec::new();
    for change in entries.iter().filter_map(|e| e.get("changes")?.as_array()).flatten() {
        if change.get("field").and_then(Value::as_str) != Some("messages") {
            continue;
        }
        let Some(value) = change.get("value").and_then(Value::as_object) else { continue };
        for message in array(value, "messages") {
            if let Some(event) = message.as_object().and_then(inbound_message) {
                events.push(event);
            }
        }
        for status in array(value, "statuses") {
            if let Some(event) = status.as_object().and_then(status_event) {
                events.push(event);
            }
        }
    }
    Ok(events)
}

fn array<'a>(object: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    object.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn text<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

fn inbound_message(message: &Map<String, Value>) -> Option<InboundEvent> {
    let from = text(message, "from").and_then(wa_number)?;
    let message_id = text(message, "id").filter(|id| !id.is_empty())?.to_string();
    let timestamp = message.get("timestamp").and_then(unix_time)?;
    let context_message_id = message
        .get("context")
        .and_then(|c| c.get("id"))
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_string);
    match text(message, "type")? {
        "button" => {
            let button = message.get("button")?.as_object()?;
            let label = text(button, "text").unwrap_or_default().to_string();
            let payload = text(button, "payload").map(str::to_string).unwrap_or_else(|| label.clone());
            Some(InboundEvent::ButtonReply { from, message_id, context_message_id, payload, text: label, timestamp })
        }
        "interactive" => {
            let interactive = message.get("interactive")?.as_object()?;
            if text(interactive, "type")? != "button_reply" {
                return None;
            }
            let reply = interactive.get("button_reply")?.as_object()?;
            let payload = text(reply, "id")?.to_string();
            let label = text(reply, "title").unwrap_or_default().to_string();
            Some(InboundEvent::ButtonReply { from, message_id, context_message_id, payload, text: label, timestamp })
        }
        "text" => {
            let body = message.get("text")?.get("body")?.as_str()?.to_string();
            Some(InboundEvent::Text { from, message_id, body, timestamp })
        }
        _ => None,
    }
}

fn status_event(status: &Map<String, Value>) -> Option<InboundEvent> {
    let message_id = text(status, "id").filter(|id| !id.is_empty())?.to_string();
    let kind = DeliveryStatus::parse(text(status, "status")?)?;
    let timestamp = status.get("timestamp").and_then(unix_time)?;
    let recipient = text(status, "recipient_id").and_then(wa_number);
    let errors = array(status, "errors")
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|error| {
            let code = error.get("code").and_then(|c| c.as_i64().or_else(|| c.as_str()?.trim().parse().ok()))?;
            let title = text(error, "title").or_else(|| text(error, "message")).unwrap_or_default();
            Some((code, mangwale_core::mask_phone_numbers(title).into_owned()))
        })
        .collect();
    let callback_data =
        text(status, "biz_opaque_callback_data").filter(|d| !d.is_empty()).map(|d| d.chars().take(512).collect());
    Some(InboundEvent::Status { message_id, recipient, status: kind, timestamp, errors, callback_data })
}

/// A Unix time in seconds, as a string (Meta's form) or a number.
fn unix_time(value: &Value) -> Option<DateTime<Utc>> {
    let secs = match value {
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    DateTime::from_timestamp(secs, 0)
}

/// A WhatsApp id (`919876543210`: the number's digits with the country
/// code, no `+`) as a phone number.
pub(crate) fn wa_number(wa_id: &str) -> Option<E164> {
    let digits = wa_id.trim().trim_start_matches('+');
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    E164::parse(&format!("+{digits}")).ok()
}

/// Checks `X-Hub-Signature-256: sha256=<hex>`: the HMAC-SHA256 of the exact
/// body bytes with the app secret, compared in constant time. An empty
/// secret verifies nothing (anyone can compute an HMAC with an empty key).
pub fn verify_signature(app_secret: &str, body: &[u8], header: Option<&str>) -> bool {
    if app_secret.is_empty() {
        return false;
    }
    let Some(value) = header.map(str::trim) else { return false };
    let Some(hex_digits) = value.get(..7).filter(|p| p.eq_ignore_ascii_case("sha256=")).map(|_| &value[7..]) else {
        return false;
    };
    let Ok(presented) = hex::decode(hex_digits) else { return false };
    if presented.len() != 32 {
        return false;
    }
    let Ok(mut mac) = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(app_secret.as_bytes()) else { return false };
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&presented).is_ok()
}

/// The `X-Hub-Signature-256` value Meta would send for `body`
/// (`sha256=<lower-case hex>`), for tests and tools.
pub fn signature_header(app_secret: &str, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(app_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The GET handshake Meta makes when the callback URL is set:
/// `?hub.mode=subscribe&hub.verify_token=<ours>&hub.challenge=<n>`. Returns
/// the challenge to answer with (as `text/plain`, status 200) when the mode
/// and token are right; `None` means refuse it (any non-200; our route answers 401). The token is compared in
/// constant time, an empty expected token matches nothing, and a challenge
/// that is not a short alphanumeric string is not echoed.
pub fn verify_subscription(
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&str>,
    expected_token: &str,
) -> Option<String> {
    if mode != Some("subscribe") || expected_token.is_empty() {
        return None;
    }
    let token = token?;
    if !bool::from(token.as_bytes().ct_eq(expected_token.as_bytes())) {
        return None;
    }
    let challenge = challenge?;
    let plain = !challenge.is_empty()
        && challenge.len() <= MAX_CHALLENGE
        && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    plain.then(|| challenge.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(n: &str) -> E164 {
        E164::parse(n).unwrap()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    /// A delivery as Meta batches it in production, modelled on captured
    /// traffic: two entries, a reply to a template's quick-reply button with
    /// the contact's profile, an interactive reply, a text, the statuses of
    /// our template (with `conversation` and `pricing`), a failure, and the
    /// kinds we ignore (an image, a reaction, a template status update, an
    /// unknown status).
    const PRODUCTION_SAMPLE: &str = r#"{
      "object": "whatsapp_business_account",
      "entry": [
        {
          "id": "102290129340398",
          "changes": [
            {
              "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "918047112233", "phone_number_id": "106540352242922"},
                "contacts": [{"profile": {"name": "Sharma Sweets"}, "wa_id": "919876543210"}],
                "messages": [
                  {
                    "context": {"from": "918047112233", "id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSOUE3QjFGNjdCRjA4QjI5NzU3AA=="},
                    "from": "919876543210",
                    "id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhggM0VCMDQ3RDhBNzE3NTNGNkM5QkQA",
                    "timestamp": "1736925612",
                    "type": "button",
                    "button": {"payload": "accept:MW-2025-001234", "text": "स्वीकार करें"}
                  },
                  {
                    "context": {"from": "918047112233", "id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSQUJDREVGMDEyMzQ1Njc4OQA="},
                    "from": "919876543210",
                    "id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUM0E5RkQ0QjY5NEM3MEI3QjI5MkYA",
                    "timestamp": "1736925640",
                    "type": "interactive",
                    "interactive": {"type": "button_reply", "button_reply": {"id": "ready:MW-2025-001234", "title": "Ready"}}
                  },
                  {
                    "from": "919876543210",
                    "id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUM0FGMjVENEM0MUQ2MjA5MkFCMDYA",
                    "timestamp": "1736925700",
                    "type": "text",
                    "text": {"body": "10 minute mein ready hoga"}
                  },
                  {
                    "from": "919876543210",
                    "id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUM0E3MUI4QjE3RjQxQkYyNDg3NzkA",
                    "timestamp": "1736925701",
                    "type": "image",
                    "image": {"mime_type": "image/jpeg", "sha256": "aGVsbG8=", "id": "1234567890123456"}
                  },
                  {
                    "from": "919876543210",
                    "id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUM0FCQzEyMzQ1Njc4OTBBQkNERUYA",
                    "timestamp": "1736925702",
                    "type": "reaction",
                    "reaction": {"message_id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSOUE3QjFGNjdCRjA4QjI5NzU3AA==", "emoji": "\ud83d\udc4d"}
                  }
                ]
              },
              "field": "messages"
            }
          ]
        },
        {
          "id": "102290129340398",
          "changes": [
            {
              "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "918047112233", "phone_number_id": "106540352242922"},
                "statuses": [
                  {
                    "id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSOUE3QjFGNjdCRjA4QjI5NzU3AA==",
                    "status": "delivered",
                    "timestamp": "1736925601",
                    "recipient_id": "919876543210",
                    "conversation": {"id": "2bd9f3b6a3e0f1c5b4a1e7d8c9f0a1b2", "origin": {"type": "utility"}},
                    "pricing": {"billable": true, "pricing_model": "CBP", "category": "utility"}
                  },
                  {
                    "id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSOUE3QjFGNjdCRjA4QjI5NzU3AA==",
                    "status": "read",
                    "timestamp": "1736925610",
                    "recipient_id": "919876543210"
                  },
                  {
                    "id": "wamid.HBgMOTE5OTg3NjU0MzIxFQIAERgSMDBGQjQ0NDdDODE1RUNDNUQ3AA==",
                    "status": "failed",
                    "timestamp": "1736925620",
                    "recipient_id": "919998765432",
                    "errors": [
                      {
                        "code": 131026,
                        "title": "Message undeliverable",
                        "message": "Message undeliverable",
                        "error_data": {"details": "Message Undeliverable."},
                        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
                      }
                    ]
                  },
                  {
                    "id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSOUE3QjFGNjdCRjA4QjI5NzU3AA==",
                    "status": "deleted",
                    "timestamp": "1736925630",
                    "recipient_id": "919876543210"
                  }
                ]
              },
              "field": "messages"
            },
            {
              "value": {"event": "APPROVED", "message_template_id": 1234567890, "message_template_name": "vendor_new_order", "message_template_language": "hi", "reason": "NONE"},
              "field": "message_template_status_update"
            }
          ]
        }
      ]
    }"#;

    #[test]
    fn replays_a_production_delivery() {
        let events = parse_webhook(PRODUCTION_SAMPLE.as_bytes()).unwrap();
        let template = "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSOUE3QjFGNjdCRjA4QjI5NzU3AA==";
        let vendor = number("+919876543210");
        assert_eq!(events.len(), 6, "{events:#?}");
        assert_eq!(
            events[0],
            InboundEvent::ButtonReply {
                from: vendor.clone(),
                message_id: "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhggM0VCMDQ3RDhBNzE3NTNGNkM5QkQA".into(),
                context_message_id: Some(template.into()),
                payload: "accept:MW-2025-001234".into(),
                text: "स्वीकार करें".into(),
                timestamp: at(1_736_925_612),
            }
        );
        assert!(matches!(&events[1], InboundEvent::ButtonReply { payload, text, .. }
            if payload == "ready:MW-2025-001234" && text == "Ready"));
        assert_eq!(
            events[2],
            InboundEvent::Text {
                from: vendor.clone(),
                message_id: "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUM0FGMjVENEM0MUQ2MjA5MkFCMDYA".into(),
                body: "10 minute mein ready hoga".into(),
                timestamp: at(1_736_925_700),
            }
        );
        assert_eq!(
            events[3],
            InboundEvent::Status {
                message_id: template.into(),
                recipient: Some(vendor.clone()),
                status: DeliveryStatus::Delivered,
                timestamp: at(1_736_925_601),
                errors: vec![],
                callback_data: None,
            }
        );
        assert!(matches!(&events[4], InboundEvent::Status { status: DeliveryStatus::Read, .. }));
        assert_eq!(
            events[5],
            InboundEvent::Status {
                message_id: "wamid.HBgMOTE5OTg3NjU0MzIxFQIAERgSMDBGQjQ0NDdDODE1RUNDNUQ3AA==".into(),
                recipient: Some(number("+919998765432")),
                status: DeliveryStatus::Failed,
                timestamp: at(1_736_925_620),
                errors: vec![(131_026, "Message undeliverable".into())],
                callback_data: None,
            }
        );
    }

    #[test]
    fn a_quick_reply_without_payload_carries_its_label() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
            "messages":[{"from":"16315551234","id":"wamid.A","timestamp":1736925612,"type":"button","button":{"text":"Yes"}}]}}]}]}"#;
        let events = parse_webhook(body).unwrap();
        assert!(matches!(&events[..], [InboundEvent::ButtonReply { from, payload, context_message_id: None, .. }]
            if payload == "Yes" && from.as_str() == "+16315551234"));
    }

    #[test]
    fn envelopes_that_are_not_whatsapp_are_errors() {
        assert!(matches!(parse_webhook(b"not json"), Err(WebhookError::NotJson(_))));
        assert_eq!(parse_webhook(b"[]"), Err(WebhookError::NotAnEnvelope));
        assert_eq!(parse_webhook(br#"{"object":"whatsapp_business_account"}"#), Err(WebhookError::NotAnEnvelope));
        assert_eq!(parse_webhook(br#"{"object":"page","entry":[]}"#), Err(WebhookError::WrongObject("page".into())));
        assert_eq!(parse_webhook(br#"{"object":"whatsapp_business_account","entry":[]}"#), Ok(vec![]));
        let unreadable = br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{
            "messages":[{"from":"not a number","id":"x","timestamp":"1","type":"text","text":{"body":"hi"}},
                        {"from":"919876543210","id":"y","timestamp":"soon","type":"text","text":{"body":"hi"}}],
            "statuses":[{"id":"z","status":"sent"}]}}]}, 7]}"#;
        assert_eq!(parse_webhook(unreadable), Ok(vec![]));
    }

    #[test]
    fn signatures() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let header = signature_header("app-secret", body);
        assert!(header.starts_with("sha256=") && header.len() == 7 + 64);
        assert!(verify_signature("app-secret", body, Some(&header)));
        assert!(verify_signature("app-secret", body, Some(&header.to_uppercase().replacen("SHA256", "sha256", 1))));
        assert!(!verify_signature("other-secret", body, Some(&header)));
        assert!(!verify_signature("app-secret", b"{}", Some(&header)));
        assert!(!verify_signature("app-secret", body, Some(header.trim_start_matches("sha256="))));
        assert!(!verify_signature("app-secret", body, Some("sha256=zz")));
        assert!(!verify_signature("app-secret", body, Some("sha256=abcd")));
        assert!(!verify_signature("app-secret", body, None));
        assert!(!verify_signature("", body, Some(&signature_header("", body))), "an empty secret verifies nothing");
        // RFC 4231, test case 2.
        assert_eq!(
            signature_header("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_subscription_handshake() {
        let ok = verify_subscription(Some("subscribe"), Some("tok"), Some("1158201444"), "tok");
        assert_eq!(ok.as_deref(), Some("1158201444"));
        assert_eq!(verify_subscription(Some("subscribe"), Some("bad"), Some("1"), "tok"), None);
        assert_eq!(verify_subscription(Some("unsubscribe"), Some("tok"), Some("1"), "tok"), None);
        assert_eq!(verify_subscription(None, Some("tok"), Some("1"), "tok"), None);
        assert_eq!(verify_subscription(Some("subscribe"), None, Some("1"), "tok"), None);
        assert_eq!(verify_subscription(Some("subscribe"), Some(""), Some("1"), ""), None);
        assert_eq!(verify_subscription(Some("subscribe"), Some("tok"), None, "tok"), None);
        assert_eq!(verify_subscription(Some("subscribe"), Some("tok"), Some("<script>"), "tok"), None);
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let keys = prop::sample::select(vec![
            "object",
            "entry",
            "changes",
            "field",
            "value",
            "messages",
            "statuses",
            "from",
            "id",
            "timestamp",
            "type",
            "button",
            "payload",
            "text",
            "interactive",
            "button_reply",
            "title",
            "context",
            "body",
            "status",
            "recipient_id",
            "errors",
            "code",
            "messages",
            "whatsapp_business_account",
            "button",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
            prop::sample::select(vec![
                "whatsapp_business_account",
                "messages",
                "button",
                "interactive",
                "button_reply",
                "text",
                "sent",
                "delivered",
                "read",
                "failed",
                "919876543210",
                "+",
                "1736925612",
                "-1",
                "99999999999999999999",
                "",
            ])
            .prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(6, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((keys.clone(), inner), 0..6)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_webhook(&bytes);
            let _ = verify_signature("secret", &bytes, std::str::from_utf8(&bytes).ok());
        }

        #[test]
        fn random_json_never_panics(value in json_value(), wrap in 0u8..4) {
            let change = |value: Value| serde_json::json!({
                "object": "whatsapp_business_account",
                "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
            });
            let value = match wrap {
                0 => value,
                1 => change(value),
                2 => change(serde_json::json!({"messages": [value]})),
                _ => change(serde_json::json!({"statuses": [value]})),
            };
            let _ = parse_webhook(value.to_string().as_bytes());
        }
    }
}
