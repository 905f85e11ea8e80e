//! `POST /api/push/send`: the Mangwale app backend's push endpoint.

use std::collections::BTreeMap;
use std::time::Duration;

use http::HeaderMap;
use serde_json::{Value, json};

use super::server::{Reply, header};
use super::{Delivery, Inner, PushEndpoint, PushScript};
use crate::clock::lock;

const RECIPIENT_TYPES: [&str; 3] = ["vendor", "rider", "customer"];

fn refused(status: u16, error: &str, field: Option<&str>) -> Reply {
    let mut body = json!({"success": false, "error": error});
    if let Some(field) = field {
        body["field"] = json!(field);
    }
    Reply::refused(status, body, error)
}

fn bad(field: &str, error: &str) -> Reply {
    refused(400, error, Some(field))
}

pub(crate) fn send(inner: &Inner, seq: u64, headers: &HeaderMap, bytes: &[u8]) -> Reply {
    if header(headers, "x-api-key") != Some(inner.config.app_api_key.as_str()) {
        return refused(401, "invalid api key", None);
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(bytes) else {
        return refused(400, "the body must be a JSON object", None);
    };
    let text = |name: &str| body.get(name).and_then(Value::as_str);
    let Some(kind) = text("recipientType").filter(|k| RECIPIENT_TYPES.contains(k)) else {
        return bad("recipientType", "recipientType must be vendor, rider or customer");
    };
    let Some(id) = text("recipientId").map(str::trim).filter(|id| !id.is_empty()) else {
        return bad("recipientId", "recipientId is required");
    };
    let (Some(title), Some(message)) = (text("title"), text("body")) else {
        return bad(if text("title").is_none() { "title" } else { "body" }, "title and body are required strings");
    };
    let mut data = BTreeMap::new();
    match body.get("data") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                let Value::String(value) = value else {
                    return bad(&format!("data.{key}"), "data values must be strings");
                };
                data.insert(key.clone(), value.clone());
            }
        }
        Some(_) => return bad("data", "data must be an object"),
    }
    let ttl = match body.get("ttlSeconds") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(secs) => Some(Duration::from_secs(secs)),
            None => return bad("ttlSeconds", "ttlSeconds must be a non-negative integer"),
        },
    };
    let collapse_key = match body.get("collapseKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(key.clone()),
        Some(_) => return bad("collapseKey", "collapseKey must be a string"),
    };

    let recipient = format!("{kind}_{id}");
    let mut st = lock(&inner.state);
    if let Some(entry) = st.request_mut(seq) {
        entry.recipient = Some(recipient.clone());
    }
    match st.script(&recipient) {
        PushScript::Delivers => {}
        PushScript::Unregistered => return refused(404, "no device registered", None),
        PushScript::Fails { status } => {
            let reason = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("error");
            return refused(status, &format!("push failed: {reason}"), None);
        }
    }
    let message_id = format!("push-{}", st.ids.next_sid());
    st.deliver(Delivery {
        seq,
        at: inner.now(),
        via: PushEndpoint::AppSend,
        recipient,
        message_id: message_id.clone(),
        title: Some(title.to_string()),
        body: Some(message.to_string()),
        data,
        ttl,
        collapse_key,
        priority: None,
    });
    Reply::ok(json!({"success": true, "messageId": message_id}))
}
