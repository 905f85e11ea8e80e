//! Template messages as the Cloud API takes them, and its answer.

use mangwale_core::E164;
use serde_json::{Value, json};

use super::error::WhatsAppError;

/// Most buttons a template may have.
pub const MAX_BUTTONS: usize = 10;
/// Longest template name Meta accepts.
pub const MAX_TEMPLATE_NAME: usize = 512;

/// Whether `name` is a template name Meta can have approved: 1 to 512 of
/// `[a-z0-9_]` (`^[a-z0-9_]+$`; Meta's template creation refuses capitals,
/// spaces and dashes, so a send naming one can only fail with 132001).
pub fn valid_template_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TEMPLATE_NAME
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
/// Longest `biz_opaque_callback_data` Meta accepts.
pub const MAX_CALLBACK_DATA: usize = 512;
/// Longest body parameter (Meta's limit on a text parameter).
pub const MAX_PARAM_CHARS: usize = 32_768;

/// An approved template to send to one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateMessage {
    pub to: E164,
    /// The template's name as approved (`vendor_new_order`): lower-case
    /// letters, digits and `_` only.
    pub template: String,
    /// The template's language code as approved (`hi`, `en`, `mr`, `en_US`).
    pub language: String,
    /// Values of `{{1}}`, `{{2}}`, … in the body, in order.
    pub body_params: Vec<String>,
    /// Payloads of the template's quick-reply buttons, by button index. The
    /// person's tap comes back in the webhook with this payload, so it is
    /// where the context goes (the orchestrator sends `<escalation id>|<action>`).
    pub quick_reply_payloads: Vec<String>,
    /// `biz_opaque_callback_data`: up to 512 characters Meta hands back in
    /// every status webhook of this message, so that a `failed` status can
    /// be matched to what sent it (the orchestrator sends the escalation id).
    pub callback_data: Option<String>,
}

impl TemplateMessage {
    pub fn new(to: E164, template: impl Into<String>, language: impl Into<String>) -> Self {
        TemplateMessage {
            to,
            template: template.into(),
            language: language.into(),
            body_params: Vec::new(),
            quick_reply_payloads: Vec::new(),
            callback_data: None,
        }
    }

    pub fn body(mut self, params: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.body_params = params.into_iter().map(Into::into).collect();
        self
    }

    pub fn quick_replies(mut self, payloads: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.quick_reply_payloads = payloads.into_iter().map(Into::into).collect();
        self
    }

    pub fn callback_data(mut self, data: impl Into<String>) -> Self {
        self.callback_data = Some(data.into());
        self
    }
}

/// Meta's answer to an accepted message. Accepted is not delivered: the
/// `sent`, `delivered`, `read` or `failed` statuses arrive by webhook,
/// keyed by `message_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// `wamid.…`: the key of every later status and of replies' `context.id`.
    pub message_id: String,
    /// The WhatsApp id Meta resolved the number to (usually the same
    /// number); `None` when absent or not a number.
    pub wa_id: Option<E164>,
    /// `messages[0].message_status`: `accepted`, or `held_for_quality_assessment`
    /// / `paused` for marketing messages.
    pub status: Option<String>,
}

/// The Cloud API refuses text parameters with a newline, a tab or more than
/// four consecutive spaces (error 100). Addresses and item lists often have
/// them, so they are flattened rather than refused.
pub(crate) fn flatten_param(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut spaces = 0;
    for c in text.trim().chars() {
        let c = if matches!(c, '\n' | '\r' | '\t') { ' ' } else { c };
        if c == ' ' {
            spaces += 1;
            if spaces > 4 {
                continue;
            }
        } else {
            spaces = 0;
        }
        out.push(c);
    }
    out
}

/// The `to` field: digits with the country code, no `+` (what Meta echoes
/// as `contacts[].input` and in every example).
pub(crate) fn wire_number(number: &E164) -> &str {
    number.as_str().trim_start_matches('+')
}

/// Checks a message and builds its JSON body.
pub(crate) fn template_body(message: &TemplateMessage) -> Result<Value, WhatsAppError> {
    let name = message.template.as_str();
    if !valid_template_name(name) {
        return Err(WhatsAppError::invalid("template", "must be 1 to 512 of a-z, 0-9 and _ (^[a-z0-9_]+$)"));
    }
    let language = message.language.trim();
    if language.is_empty() || !language.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(WhatsAppError::invalid("language", "must be a language code such as hi, en or en_US"));
    }
    if message.quick_reply_payloads.len() > MAX_BUTTONS {
        return Err(WhatsAppError::invalid("quick_reply_payloads", "a template has at most 10 buttons"));
    }
    let mut parameters = Vec::with_capacity(message.body_params.len());
    for (i, param) in message.body_params.iter().enumerate() {
        let text = flatten_param(param);
        if text.is_empty() {
            return Err(WhatsAppError::invalid(format!("body_params[{i}]"), "must not be empty"));
        }
        if text.chars().count() > MAX_PARAM_CHARS {
            return Err(WhatsAppError::invalid(format!("body_params[{i}]"), "is too long"));
        }
        parameters.push(json!({"type": "text", "text": text}));
    }
    let mut components = Vec::new();
    if !parameters.is_empty() {
        components.push(json!({"type": "body", "parameters": parameters}));
    }
    for (i, payload) in message.quick_reply_payloads.iter().enumerate() {
        if payload.is_empty() {
            return Err(WhatsAppError::invalid(format!("quick_reply_payloads[{i}]"), "must not be empty"));
        }
        components.push(json!({
            "type": "button",
            "sub_type": "quick_reply",
            "index": i.to_string(),
            "parameters": [{"type": "payload", "payload": payload}],
        }));
    }
    let mut template = json!({"name": name, "language": {"code": language}});
    if !components.is_empty() {
        template["components"] = Value::Array(components);
    }
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": wire_number(&message.to),
        "type": "template",
        "template": template,
    });
    if let Some(data) = &message.callback_data {
        if data.is_empty() || data.chars().count() > MAX_CALLBACK_DATA {
            return Err(WhatsAppError::invalid("callback_data", "must be 1 to 512 characters"));
        }
        body["biz_opaque_callback_data"] = json!(data);
    }
    Ok(body)
}

/// `{"messaging_product", "contacts": [{"input", "wa_id"}], "messages": [{"id", "message_status"}]}`.
pub(crate) fn parse_sent(body: &[u8]) -> Result<SentMessage, String> {
    let root: Value = serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let message = root.pointer("/messages/0").ok_or("the answer has no messages[0]")?;
    let message_id = message
        .get("id")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or("the answer has no message id")?
        .to_string();
    let wa_id = root.pointer("/contacts/0/wa_id").and_then(Value::as_str).and_then(super::webhook::wa_number);
    let status = message.get("message_status").and_then(Value::as_str).map(str::to_string);
    Ok(SentMessage { message_id, wa_id, status })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vendor() -> E164 {
        E164::parse("+919876543210").unwrap()
    }

    #[test]
    fn builds_the_documented_template_body() {
        let message = TemplateMessage::new(vendor(), "vendor_new_order", "hi")
            .body(["MW-2025-001234", "2 x Paneer Tikka", "₹325"])
            .quick_replies(["accept:MW-2025-001234", "reject:MW-2025-001234"]);
        let body = template_body(&message).unwrap();
        assert_eq!(
            body,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "919876543210",
                "type": "template",
                "template": {
                    "name": "vendor_new_order",
                    "language": {"code": "hi"},
                    "components": [
                        {"type": "body", "parameters": [
                            {"type": "text", "text": "MW-2025-001234"},
                            {"type": "text", "text": "2 x Paneer Tikka"},
                            {"type": "text", "text": "₹325"}
                        ]},
                        {"type": "button", "sub_type": "quick_reply", "index": "0",
                         "parameters": [{"type": "payload", "payload": "accept:MW-2025-001234"}]},
                        {"type": "button", "sub_type": "quick_reply", "index": "1",
                         "parameters": [{"type": "payload", "payload": "reject:MW-2025-001234"}]}
                    ]
                }
            })
        );
        let tracked = template_body(&message.clone().callback_data("vendor_order_MW-2025-001234")).unwrap();
        assert_eq!(tracked["biz_opaque_callback_data"], "vendor_order_MW-2025-001234");
        assert!(template_body(&message.clone().callback_data("x".repeat(513))).is_err());
        let bare = template_body(&TemplateMessage::new(vendor(), "customer_status", "en")).unwrap();
        assert_eq!(bare["template"].get("components"), None, "no empty components array");
    }

    #[test]
    fn refuses_what_meta_would_refuse() {
        let base = TemplateMessage::new(vendor(), "customer_status", "en");
        let field = |m: TemplateMessage| template_body(&m).unwrap_err().field().map(str::to_string);
        assert_eq!(field(TemplateMessage { template: " ".into(), ..base.clone() }).as_deref(), Some("template"));
        for bad in ["Vendor_New_Order", "vendor-new-order", "vendor new", "", "ä"] {
            assert_eq!(field(TemplateMessage { template: bad.into(), ..base.clone() }).as_deref(), Some("template"));
        }
        assert!(valid_template_name("vendor_new_order") && valid_template_name("a1_"));
        assert!(!valid_template_name(&"a".repeat(513)));
        assert_eq!(field(TemplateMessage { language: "".into(), ..base.clone() }).as_deref(), Some("language"));
        assert_eq!(field(base.clone().body(["ok", "  "])).as_deref(), Some("body_params[1]"));
        assert_eq!(field(base.clone().quick_replies([""])).as_deref(), Some("quick_reply_payloads[0]"));
        assert_eq!(field(base.quick_replies((0..11).map(|i| i.to_string()))).as_deref(), Some("quick_reply_payloads"));
    }

    #[test]
    fn flattens_newlines_tabs_and_long_runs_of_spaces() {
        assert_eq!(flatten_param("Flat 4,\nGangapur Road\t Nashik"), "Flat 4, Gangapur Road  Nashik");
        assert_eq!(flatten_param("a          b"), "a    b");
        assert_eq!(flatten_param("  plain  "), "plain");
    }

    #[test]
    fn parses_the_documented_answer() {
        let body = br#"{"messaging_product": "whatsapp",
            "contacts": [{"input": "919876543210", "wa_id": "919876543210"}],
            "messages": [{"id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSQjdGRjQ3NjJCNzlDQzc0NTdGAA==", "message_status": "accepted"}]}"#;
        let sent = parse_sent(body).unwrap();
        assert_eq!(sent.message_id, "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSQjdGRjQ3NjJCNzlDQzc0NTdGAA==");
        assert_eq!(sent.wa_id, Some(vendor()));
        assert_eq!(sent.status.as_deref(), Some("accepted"));
        assert!(parse_sent(br#"{"messages": []}"#).is_err());
        assert!(parse_sent(b"<html>").is_err());
        assert_eq!(parse_sent(br#"{"messages": [{"id": "wamid.x"}]}"#).unwrap().wa_id, None);
    }
}
