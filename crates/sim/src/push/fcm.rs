//! `POST /v1/projects/{p}/messages:send`: FCM HTTP v1's authorisation,
//! message checks, error bodies and the recipients' scripts.

use std::collections::BTreeMap;
use std::time::Duration;

use http::HeaderMap;
use serde_json::{Map, Value, json};

use super::server::{Reply, bearer};
use super::{CLOUD_PLATFORM_SCOPE, Delivery, FCM_SCOPE, Inner, PushEndpoint, PushScript};
use crate::clock::lock;

/// FCM's limit on a message's payload, keys and values of the notification
/// and data together (FCM's ErrorCode reference, "Message too big": "4096
/// bytes for most messages, or 2048 bytes in the case of messages to
/// topics. This includes both the keys and the values").
const MAX_PAYLOAD: usize = 4096;
/// The same limit for a message to a topic.
const MAX_TOPIC_PAYLOAD: usize = 2048;
/// APNs' longest `apns-collapse-id`.
const MAX_APNS_COLLAPSE_ID: usize = 64;
const MAX_TOPIC: usize = 900;
/// Four weeks, the longest `android.ttl`.
const MAX_TTL_SECS: u64 = 28 * 24 * 3600;
const FCM_ERROR: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";

/// Google's canonical status name of an HTTP status.
pub(crate) fn google_status(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

/// `{"error": {"code", "message", "status", "details": [FcmError]}}`.
pub(crate) fn google_error(status: u16, message: &str, fcm_code: Option<&str>) -> Value {
    let mut error = json!({"code": status, "message": message, "status": google_status(status)});
    if let Some(code) = fcm_code {
        error["details"] = json!([{"@type": FCM_ERROR, "errorCode": code}]);
    }
    json!({"error": error})
}

fn refused(status: u16, message: &str, fcm_code: Option<&str>) -> Reply {
    let log = format!("{} {message}", fcm_code.unwrap_or(google_status(status)));
    Reply::refused(status, google_error(status, message, fcm_code), log)
}

/// 400 INVALID_ARGUMENT naming the field, as FCM words it.
fn invalid(field: &str, message: &str) -> Reply {
    let mut body = google_error(400, message, Some("INVALID_ARGUMENT"));
    if let Some(details) = body["error"]["details"].as_array_mut() {
        details.push(json!({"@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": field, "description": message}]}));
    }
    Reply::refused(400, body, format!("INVALID_ARGUMENT {field}: {message}"))
}

/// The error FCM documents for a status, for [`PushScript::Fails`].
fn scripted_failure(status: u16) -> Reply {
    let (code, message) = match status {
        400 => ("INVALID_ARGUMENT", "Request contains an invalid argument."),
        401 => ("THIRD_PARTY_AUTH_ERROR", "Auth error from APNS or Web Push Service"),
        403 => ("SENDER_ID_MISMATCH", "SenderId mismatch"),
        404 => ("UNREGISTERED", "Requested entity was not found."),
        429 => ("QUOTA_EXCEEDED", "Quota exceeded for quota metric 'Send requests'."),
        500 => ("INTERNAL", "Internal error encountered."),
        503 => ("UNAVAILABLE", "The service is currently unavailable."),
        _ => ("UNSPECIFIED_ERROR", "Unspecified error."),
    };
    refused(status, message, Some(code))
}

pub(crate) fn send(inner: &Inner, seq: u64, project: &str, headers: &HeaderMap, bytes: &[u8]) -> Reply {
    let now = inner.now();
    let scopes = bearer(headers).and_then(|token| lock(&inner.state).live_token_scopes(token, now));
    let Some(scopes) = scopes else {
        return refused(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other \
             valid authentication credential.",
            None,
        );
    };
    if !scopes.iter().any(|s| s == FCM_SCOPE || s == CLOUD_PLATFORM_SCOPE) {
        return refused(403, "Request had insufficient authentication scopes.", None);
    }
    if project != inner.config.project_id {
        let message = format!(
            "Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/{project}' (or it may not exist)."
        );
        return refused(403, &message, None);
    }
    let document = match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => v,
        Err(e) => return invalid("", &format!("Invalid JSON payload received. {e}")),
    };
    let message = match validate(&document) {
        Ok(message) => message,
        Err(reply) => return reply,
    };
    let script = {
        let mut st = lock(&inner.state);
        if let Some(entry) = st.request_mut(seq) {
            entry.recipient = Some(message.recipient.clone());
        }
        st.script(&message.recipient)
    };
    match script {
        PushScript::Delivers => {}
        // UNREGISTERED is about a registration token (the app was removed
        // or the token expired). A topic nobody subscribes to is accepted:
        // FCM does not tell a sender who subscribes.
        PushScript::Unregistered if message.to_topic => {}
        PushScript::Unregistered => return scripted_failure(404),
        PushScript::Fails { status } => return scripted_failure(status),
    }
    if message.validate_only {
        return Reply::ok(json!({"name": format!("projects/{project}/messages/fake_message_id")}));
    }
    let mut st = lock(&inner.state);
    let id = format!("0:{}%{:016x}", now.timestamp_micros(), st.ids.next_u64());
    st.deliver(Delivery {
        seq,
        at: now,
        via: PushEndpoint::FcmSend,
        recipient: message.recipient,
        message_id: id.clone(),
        title: message.title,
        body: message.body,
        data: message.data,
        ttl: message.ttl,
        collapse_key: message.collapse_key,
        priority: message.priority,
    });
    Reply::ok(json!({"name": format!("projects/{project}/messages/{id}")}))
}

/// A message that passed FCM's checks.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Checked {
    pub recipient: String,
    /// Sent to a topic (not a token or a condition).
    pub to_topic: bool,
    pub title: Option<String>,
    pub body: Option<String>,
    pub data: BTreeMap<String, String>,
    pub ttl: Option<Duration>,
    pub collapse_key: Option<String>,
    pub priority: Option<String>,
    pub validate_only: bool,
}

fn unknown_fields(object: &Map<String, Value>, known: &[&str], at: &str) -> Result<(), Reply> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(name) => Err(invalid(
            at,
            &format!("Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field."),
        )),
        None => Ok(()),
    }
}

fn object<'a>(value: &'a Value, at: &str) -> Result<Option<&'a Map<String, Value>>, Reply> {
    match value {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(Some(map)),
        other => {
            Err(invalid(at, &format!("Invalid value at '{at}' (type.googleapis.com/google.protobuf.Struct), {other}")))
        }
    }
}

fn string(value: &Value, at: &str) -> Result<Option<String>, Reply> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(invalid(at, &format!("Invalid value at '{at}' (TYPE_STRING), {other}"))),
    }
}

fn topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '%')
}

/// `^\d+(\.\d{1,9})?s$`, as a duration.
fn parse_ttl(text: &str) -> Option<Duration> {
    let number = text.strip_suffix('s')?;
    let (secs, fraction) = match number.split_once('.') {
        Some((s, f)) => (s, Some(f)),
        None => (number, None),
    };
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let nanos = match fraction {
        None => 0,
        Some(f) if (1..=9).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<9}").parse::<u32>().ok()?
        }
        Some(_) => return None,
    };
    Some(Duration::new(secs, nanos))
}

fn reserved_data_key(key: &str) -> bool {
    matches!(key, "from" | "notification" | "message_type") || key.starts_with("google") || key.starts_with("gcm")
}

pub(crate) fn validate(document: &Value) -> Result<Checked, Reply> {
    let Some(root) = document.as_object() else {
        return Err(invalid("", "Invalid JSON payload received. Expected an object."));
    };
    unknown_fields(root, &["message", "validate_only", "validateOnly"], "")?;
    let validate_only = root.get("validate_only").or_else(|| root.get("validateOnly")).and_then(Value::as_bool);
    let Some(message) = object(root.get("message").unwrap_or(&Value::Null), "message")? else {
        return Err(invalid("message", "Request contains an invalid argument: message is required."));
    };
    let known =
        ["name", "data", "notification", "android", "webpush", "apns", "fcm_options", "token", "topic", "condition"];
    unknown_fields(message, &known, "message")?;

    let field = |name: &str| message.get(name).unwrap_or(&Value::Null);
    let token = string(field("token"), "message.token")?;
    let topic = string(field("topic"), "message.topic")?;
    let condition = string(field("condition"), "message.condition")?;
    let targets = [&token, &topic, &condition].iter().filter(|t| t.is_some()).count();
    if targets != 1 {
        return Err(invalid(
            "message",
            "Exactly one of message.token, message.topic or message.condition must be set.",
        ));
    }
    let to_topic = topic.is_some();
    let recipient = if let Some(topic) = topic {
        let name = topic.strip_prefix("/topics/").unwrap_or(&topic).to_string();
        if name.is_empty() || name.len() > MAX_TOPIC || !name.chars().all(topic_char) {
            return Err(invalid("message.topic", &format!("Invalid topic name: {topic:?}")));
        }
        name
    } else {
        let target = token.or(condition).unwrap_or_default();
        if target.trim().is_empty() {
            return Err(invalid("message", "The registration token or condition is empty."));
        }
        target
    };

    let (mut title, mut body) = (None, None);
    if let Some(notification) = object(field("notification"), "message.notification")? {
        unknown_fields(notification, &["title", "body", "image"], "message.notification")?;
        title = string(notification.get("title").unwrap_or(&Value::Null), "message.notification.title")?;
        body = string(notification.get("body").unwrap_or(&Value::Null), "message.notification.body")?;
        string(notification.get("image").unwrap_or(&Value::Null), "message.notification.image")?;
    }
    let mut data = BTreeMap::new();
    if let Some(map) = object(field("data"), "message.data")? {
        for (i, (key, value)) in map.iter().enumerate() {
            let Value::String(value) = value else {
                let at = format!("message.data[{i}].value");
                return Err(invalid(&at, &format!("Invalid value at '{at}' (TYPE_STRING), {value}")));
            };
            if reserved_data_key(key) {
                return Err(invalid("message.data", &format!("Invalid data payload key: {key}")));
            }
            data.insert(key.clone(), value.clone());
        }
    }
    let texts = |v: Option<&Map<String, Value>>| -> usize {
        v.map(|m| m.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum()).unwrap_or(0)
    };
    let payload = texts(field("notification").as_object()) + data.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    let limit = if to_topic { MAX_TOPIC_PAYLOAD } else { MAX_PAYLOAD };
    if payload > limit {
        return Err(invalid("message", &format!("Message is too big: {payload} bytes, at most {limit}.")));
    }

    let (mut ttl, mut collapse_key, mut priority) = (None, None, None);
    if let Some(android) = object(field("android"), "message.android")? {
        let known = [
            "collapse_key",
            "priority",
            "ttl",
            "restricted_package_name",
            "data",
            "notification",
            "fcm_options",
            "direct_boot_ok",
        ];
        unknown_fields(android, &known, "message.android")?;
        let get = |name: &str| android.get(name).unwrap_or(&Value::Null);
        collapse_key = string(get("collapse_key"), "message.android.collapse_key")?;
        if let Some(p) = string(get("priority"), "message.android.priority")? {
            if !p.eq_ignore_ascii_case("normal") && !p.eq_ignore_ascii_case("high") {
                let at = "message.android.priority";
                let why = format!(
                    "Invalid value at '{at}' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), \"{p}\""
                );
                return Err(invalid(at, &why));
            }
            priority = Some(p.to_ascii_lowercase());
        }
        if let Some(text) = string(get("ttl"), "message.android.ttl")? {
            let at = "message.android.ttl";
            let Some(parsed) = parse_ttl(&text) else {
                let why = format!("Invalid value at '{at}' (type.googleapis.com/google.protobuf.Duration), \"{text}\"");
                return Err(invalid(at, &why));
            };
            if parsed > Duration::from_secs(MAX_TTL_SECS) {
                return Err(invalid(at, "TTL must not exceed 4 weeks."));
            }
            ttl = Some(parsed);
        }
    }
    if let Some(apns) = object(field("apns"), "message.apns")? {
        unknown_fields(apns, &["headers", "payload", "fcm_options", "live_activity_token"], "message.apns")?;
        if let Some(headers) = object(apns.get("headers").unwrap_or(&Value::Null), "message.apns.headers")? {
            for (name, value) in headers {
                string(value, &format!("message.apns.headers[{name}]"))?;
            }
            if let Some(p) = headers.get("apns-priority").and_then(Value::as_str)
                && !matches!(p, "1" | "5" | "10")
            {
                return Err(invalid("message.apns.headers", &format!("Invalid apns-priority: {p:?}")));
            }
            // APNs: a UNIX epoch date in seconds; 0 is "do not store".
            if let Some(e) = headers.get("apns-expiration").and_then(Value::as_str)
                && (e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) || e.len() > 12)
            {
                return Err(invalid("message.apns.headers", &format!("Invalid apns-expiration: {e:?}")));
            }
            if let Some(c) = headers.get("apns-collapse-id").and_then(Value::as_str)
                && (c.is_empty() || c.len() > MAX_APNS_COLLAPSE_ID)
            {
                return Err(invalid("message.apns.headers", "apns-collapse-id must be 1 to 64 bytes"));
            }
        }
    }
    object(field("webpush"), "message.webpush")?;
    object(field("fcm_options"), "message.fcm_options")?;

    Ok(Checked {
        recipient,
        to_topic,
        title,
        body,
        data,
        ttl,
        collapse_key,
        priority,
        validate_only: validate_only == Some(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(message: Value) -> Result<Checked, String> {
        validate(&json!({"message": message})).map_err(|r| r.error.unwrap_or_default())
    }

    #[test]
    fn a_well_formed_message_passes() {
        let checked = check(json!({
            "topic": "vendor_V-42",
            "notification": {"title": "New order", "body": "Order 1042"},
            "data": {"orderId": "1042"},
            "android": {"priority": "high", "ttl": "300s", "collapse_key": "order-1042"},
            "apns": {"headers": {"apns-priority": "10"}},
        }))
        .unwrap();
        assert_eq!((checked.recipient.as_str(), checked.to_topic), ("vendor_V-42", true));
        assert_eq!(checked.ttl, Some(Duration::from_secs(300)));
        assert_eq!(checked.data.get("orderId").map(String::as_str), Some("1042"));
        assert_eq!((checked.priority.as_deref(), checked.collapse_key.as_deref()), (Some("high"), Some("order-1042")));
        assert_eq!(check(json!({"topic": "/topics/rider_7"})).unwrap().recipient, "rider_7");
        assert_eq!(check(json!({"token": "abc:def"})).unwrap().recipient, "abc:def");
    }

    #[test]
    fn malformed_messages_are_refused_as_fcm_refuses_them() {
        let refused = |m: Value| check(m).unwrap_err();
        assert!(refused(json!({})).contains("Exactly one"));
        assert!(refused(json!({"topic": "a", "token": "b"})).contains("Exactly one"));
        assert!(refused(json!({"topic": "vendor V-42"})).contains("Invalid topic name"));
        assert!(refused(json!({"topic": "x".repeat(901)})).contains("Invalid topic name"));
        assert!(refused(json!({"topic": "t", "data": {"n": 5}})).contains("message.data[0].value"));
        assert!(refused(json!({"topic": "t", "data": {"from": "x"}})).contains("Invalid data payload key"));
        assert!(refused(json!({"topic": "t", "android": {"ttl": "5m"}})).contains("message.android.ttl"));
        assert!(refused(json!({"topic": "t", "android": {"ttl": "300"}})).contains("message.android.ttl"));
        assert!(refused(json!({"topic": "t", "android": {"ttl": "2419201s"}})).contains("4 weeks"));
        assert!(refused(json!({"topic": "t", "android": {"priority": "urgent"}})).contains("AndroidMessagePriority"));
        assert!(refused(json!({"topic": "t", "tittle": "x"})).contains("Unknown name \"tittle\""));
        assert!(refused(json!({"topic": "t", "data": {"big": "x".repeat(5000)}})).contains("too big"));
        let topic_big = json!({"topic": "t", "data": {"big": "x".repeat(2100)}});
        assert!(refused(topic_big).contains("at most 2048"), "2,048 bytes to a topic");
        assert!(check(json!({"token": "t", "data": {"big": "x".repeat(2100)}})).is_ok(), "4,096 to a token");
        let apns = |h: Value| json!({"topic": "t", "apns": {"headers": h}});
        assert!(refused(apns(json!({"apns-expiration": "soon"}))).contains("apns-expiration"));
        assert!(refused(apns(json!({"apns-collapse-id": "x".repeat(65)}))).contains("apns-collapse-id"));
        assert!(check(apns(json!({"apns-expiration": "1767225900", "apns-collapse-id": "vendor_order_MW-1"}))).is_ok());
        assert!(validate(&json!({"msg": {}})).is_err());
    }

    #[test]
    fn ttls_are_protobuf_durations() {
        assert_eq!(parse_ttl("300s"), Some(Duration::from_secs(300)));
        assert_eq!(parse_ttl("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_ttl("0.000000001s"), Some(Duration::from_nanos(1)));
        for bad in ["s", ".5s", "1.s", "1.0000000001s", "-1s", "1e3s", "300"] {
            assert_eq!(parse_ttl(bad), None, "{bad}");
        }
    }
}
