//! The Graph API's checks of `POST /{version}/{phone_number_id}/messages`
//! and its error envelope.

use std::collections::BTreeMap;

use mangwale_core::E164;
use serde_json::{Map, Value, json};

use super::templates::ApprovedTemplate;

/// A Graph API error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GraphError {
    pub status: u16,
    pub code: i64,
    /// `OAuthException` for most; `GraphMethodException` for unknown objects.
    pub kind: &'static str,
    pub message: String,
    pub details: Option<String>,
    pub subcode: Option<i64>,
}

impl GraphError {
    pub fn new(status: u16, code: i64, message: impl Into<String>) -> Self {
        GraphError { status, code, kind: "OAuthException", message: message.into(), details: None, subcode: None }
    }

    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// `(#100) The parameter {param} is required.`
    pub fn missing(param: &str) -> Self {
        GraphError::new(400, 100, format!("(#100) The parameter {param} is required."))
            .details(format!("Parameter '{param}' is required."))
    }

    /// `(#100) Invalid parameter`, the details naming `param`.
    pub fn invalid(param: &str, why: &str) -> Self {
        GraphError::new(400, 100, format!("(#100) Invalid parameter {param}"))
            .details(format!("Parameter '{param}' {why}"))
    }

    /// The envelope, with Meta's `messaging_product` inside `error_data`.
    pub fn body(&self, fbtrace_id: &str) -> Value {
        let mut error = json!({
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "fbtrace_id": fbtrace_id,
        });
        if let Some(details) = &self.details {
            error["error_data"] = json!({"messaging_product": "whatsapp", "details": details});
        }
        if let Some(subcode) = self.subcode {
            error["error_subcode"] = json!(subcode);
        }
        json!({"error": error})
    }
}

/// The title Meta gives a failure code (in sync errors' messages and in
/// `failed` statuses' `errors[].title`).
pub fn error_title(code: i64) -> &'static str {
    match code {
        1 => "API Unknown",
        2 => "Service temporarily unavailable",
        130_429 => "Rate limit hit",
        130_472 => "User's number is part of an experiment",
        131_000 => "Something went wrong",
        131_021 => "Recipient cannot be sender",
        131_026 => "Message undeliverable",
        131_030 => "Recipient phone number not in allowed list",
        131_042 => "Business eligibility payment issue",
        131_047 => "Re-engagement message",
        131_049 => "This message was not delivered to maintain healthy ecosystem engagement.",
        131_050 => "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages.",
        131_051 => "Unsupported message type",
        131_053 => "Media upload error",
        131_056 => "(Business Account, Consumer Account) pair rate limit hit",
        132_000 => "Number of parameters does not match the expected number of params",
        132_001 => "Template name does not exist in the translation",
        132_015 => "Template is Paused",
        132_016 => "Template is Disabled",
        _ => "Message failed to send",
    }
}

/// A send that passed every check.
#[derive(Debug, Clone)]
pub(crate) struct ValidSend {
    /// `to` exactly as sent (echoed as `contacts[].input`).
    pub to_input: String,
    pub to: E164,
    /// The digits of `to` (the `wa_id`).
    pub wa_id: String,
    pub template: ApprovedTemplate,
    pub language: String,
    pub body_params: Vec<String>,
    /// Quick-reply payloads by button index.
    pub payloads: BTreeMap<usize, String>,
    /// `biz_opaque_callback_data`, echoed in the message's status webhooks.
    pub callback_data: Option<String>,
}

/// Checks a send body against the Cloud API's rules and the approved
/// templates, in the order Meta reports problems: shape (100), then the
/// template's existence (132001), then its parameter counts (132000).
pub(crate) fn validate(body: &[u8], templates: &[ApprovedTemplate]) -> Result<ValidSend, GraphError> {
    let root: Value = serde_json::from_slice(body).map_err(|_| GraphError::invalid("body", "must be a JSON object"))?;
    let root = root.as_object().ok_or_else(|| GraphError::invalid("body", "must be a JSON object"))?;
    match root.get("messaging_product") {
        None => return Err(GraphError::missing("messaging_product")),
        Some(Value::String(p)) if p == "whatsapp" => {}
        Some(_) => return Err(GraphError::invalid("messaging_product", "must be \"whatsapp\"")),
    }
    match root.get("recipient_type") {
        None => {}
        Some(Value::String(t)) if t == "individual" => {}
        Some(_) => return Err(GraphError::invalid("recipient_type", "must be \"individual\"")),
    }
    let to_input = match root.get("to") {
        None => return Err(GraphError::missing("to")),
        Some(Value::String(to)) => to.clone(),
        Some(_) => return Err(GraphError::invalid("to", "must be a string")),
    };
    let wa_id: String = to_input.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '+')).collect();
    let to = (wa_id.len() <= 15 && wa_id.bytes().all(|b| b.is_ascii_digit()))
        .then(|| E164::parse(&format!("+{wa_id}")).ok())
        .flatten()
        .ok_or_else(|| GraphError::invalid("to", "must be a phone number with its country code"))?;
    match root.get("type").and_then(Value::as_str) {
        Some("template") => {}
        Some(other) if ["text", "image", "interactive", "document", "audio", "video", "location"].contains(&other) => {
            return Err(GraphError::new(400, 131_051, "(#131051) Unsupported message type")
                .details(format!("the simulator sends templates only, not {other} messages")));
        }
        _ => return Err(GraphError::invalid("type", "must be \"template\" (the simulator sends templates only)")),
    }
    let template = match root.get("template") {
        None => return Err(GraphError::missing("template")),
        Some(Value::Object(t)) => t,
        Some(_) => return Err(GraphError::invalid("template", "must be an object")),
    };
    let name = match template.get("name") {
        None => return Err(GraphError::missing("template.name")),
        Some(Value::String(n)) if !n.is_empty() => n.clone(),
        Some(_) => return Err(GraphError::invalid("template.name", "must be a non-empty string")),
    };
    if !super::templates::valid_template_name(&name) {
        // Meta creates no template by such a name, so none can be sent.
        return Err(GraphError::new(404, 132_001, "(#132001) Template name does not exist in the translation")
            .details(format!("template name ({name}) is not a valid template name: names match ^[a-z0-9_]+$")));
    }
    let language = match template.get("language") {
        None => return Err(GraphError::missing("template.language")),
        Some(Value::Object(l)) => match l.get("code") {
            None => return Err(GraphError::missing("template.language.code")),
            Some(Value::String(c)) if !c.is_empty() => c.clone(),
            Some(_) => return Err(GraphError::invalid("template.language.code", "must be a language code")),
        },
        Some(_) => return Err(GraphError::invalid("template.language", "must be an object with a code")),
    };
    if let Some(policy) = template.get("language").and_then(|l| l.get("policy"))
        && policy.as_str() != Some("deterministic")
    {
        return Err(GraphError::invalid("template.language.policy", "must be \"deterministic\""));
    }
    let components = match template.get("components") {
        None => Vec::new(),
        Some(Value::Array(c)) => c.clone(),
        Some(_) => return Err(GraphError::invalid("template.components", "must be an array")),
    };
    let callback_data = match root.get("biz_opaque_callback_data") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) if !d.is_empty() && d.chars().count() <= 512 => Some(d.clone()),
        Some(_) => {
            return Err(GraphError::invalid("biz_opaque_callback_data", "must be a string of 1 to 512 characters"));
        }
    };
    let parsed = parse_components(&components)?;
    let approved = templates
        .iter()
        .find(|t| t.name == name && t.approved_in(&language))
        .ok_or_else(|| {
            GraphError::new(404, 132_001, "(#132001) Template name does not exist in the translation")
                .details(format!("template name ({name}) does not exist in {language}"))
        })?
        .clone();
    match approved.status.as_str() {
        "APPROVED" => {}
        "PAUSED" => return Err(GraphError::new(400, 132_015, "(#132015) Template is Paused")),
        "DISABLED" => return Err(GraphError::new(400, 132_016, "(#132016) Template is Disabled")),
        other => {
            return Err(GraphError::new(404, 132_001, "(#132001) Template name does not exist in the translation")
                .details(format!("template name ({name}) is {other} in {language}, not APPROVED")));
        }
    }
    count_matches("header", parsed.header_params, 0)?;
    count_matches("body", parsed.body_params.len(), approved.body_params)?;
    for index in parsed.payloads.keys() {
        if *index >= approved.buttons.len() {
            return Err(GraphError::new(400, 131_009, "(#131009) Parameter value is not valid")
                .details(format!("Button at index {index} is not a quick reply button of template {name}")));
        }
    }
    Ok(ValidSend {
        to_input,
        to,
        wa_id,
        template: approved,
        language,
        body_params: parsed.body_params,
        payloads: parsed.payloads,
        callback_data,
    })
}

struct Components {
    header_params: usize,
    body_params: Vec<String>,
    payloads: BTreeMap<usize, String>,
}

fn parse_components(components: &[Value]) -> Result<Components, GraphError> {
    let mut parsed = Components { header_params: 0, body_params: Vec::new(), payloads: BTreeMap::new() };
    for (i, component) in components.iter().enumerate() {
        let at = |field: &str| format!("template.components[{i}]{field}");
        let component = component.as_object().ok_or_else(|| GraphError::invalid(&at(""), "must be an object"))?;
        let parameters = match component.get("parameters") {
            None => Vec::new(),
            Some(Value::Array(p)) => p.clone(),
            Some(_) => return Err(GraphError::invalid(&at(".parameters"), "must be an array")),
        };
        match component.get("type").and_then(Value::as_str) {
            Some("header") => parsed.header_params += parameters.len(),
            Some("body") => {
                for (j, parameter) in parameters.iter().enumerate() {
                    parsed.body_params.push(body_parameter(&at(&format!(".parameters[{j}]")), parameter)?);
                }
            }
            Some("button") => {
                let (index, payload) = button(&at, component, &parameters)?;
                if parsed.payloads.insert(index, payload).is_some() {
                    return Err(GraphError::invalid(&at(".index"), "repeats a button index"));
                }
            }
            Some(_) => return Err(GraphError::invalid(&at(".type"), "must be header, body or button")),
            None => return Err(GraphError::missing(&at(".type"))),
        }
    }
    Ok(parsed)
}

/// A body parameter's value (for `text`), or a placeholder for the other
/// kinds Meta localises itself.
fn body_parameter(at: &str, parameter: &Value) -> Result<String, GraphError> {
    let parameter = parameter.as_object().ok_or_else(|| GraphError::invalid(at, "must be an object"))?;
    match parameter.get("type").and_then(Value::as_str) {
        Some("text") => {
            let text = match parameter.get("text") {
                None => return Err(GraphError::missing(&format!("{at}.text"))),
                Some(Value::String(t)) if !t.trim().is_empty() => t,
                Some(_) => return Err(GraphError::invalid(&format!("{at}.text"), "must be a non-empty string")),
            };
            if text.contains(['\n', '\t']) || text.contains("     ") {
                return Err(GraphError::invalid(
                    &format!("{at}.text"),
                    "cannot have new-line/tab characters or more than 4 consecutive spaces",
                ));
            }
            Ok(text.clone())
        }
        Some(kind @ ("currency" | "date_time")) => {
            let value = parameter.get(kind).and_then(Value::as_object).and_then(fallback);
            value.ok_or_else(|| GraphError::invalid(&format!("{at}.{kind}"), "needs a fallback_value"))
        }
        Some(_) => Err(GraphError::invalid(&format!("{at}.type"), "must be text, currency or date_time")),
        None => Err(GraphError::missing(&format!("{at}.type"))),
    }
}

fn fallback(value: &Map<String, Value>) -> Option<String> {
    value.get("fallback_value").and_then(Value::as_str).map(str::to_string)
}

/// A quick-reply button component: its index and payload.
fn button(
    at: &dyn Fn(&str) -> String,
    component: &Map<String, Value>,
    parameters: &[Value],
) -> Result<(usize, String), GraphError> {
    match component.get("sub_type").and_then(Value::as_str) {
        Some("quick_reply") => {}
        Some(_) => return Err(GraphError::invalid(&at(".sub_type"), "must be quick_reply (the simulator's buttons)")),
        None => return Err(GraphError::missing(&at(".sub_type"))),
    }
    let index = match component.get("index") {
        None => return Err(GraphError::missing(&at(".index"))),
        Some(Value::String(s)) => s.trim().parse::<usize>().ok(),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Some(_) => None,
    }
    .filter(|i| *i < 10)
    .ok_or_else(|| GraphError::invalid(&at(".index"), "must be a button index from 0 to 9"))?;
    let [parameter] = parameters else {
        return Err(GraphError::invalid(&at(".parameters"), "must hold exactly one payload parameter"));
    };
    let payload = parameter
        .as_object()
        .filter(|p| p.get("type").and_then(Value::as_str) == Some("payload"))
        .and_then(|p| p.get("payload"))
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| GraphError::invalid(&at(".parameters[0]"), "must be {\"type\": \"payload\", \"payload\": …}"))?;
    Ok((index, payload.to_string()))
}

fn count_matches(component: &str, given: usize, expected: usize) -> Result<(), GraphError> {
    if given == expected {
        return Ok(());
    }
    Err(GraphError::new(400, 132_000, "(#132000) Number of parameters does not match the expected number of params")
        .details(format!(
            "{component}: number of localizable_params ({given}) does not match the expected number of params ({expected})"
        )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatsapp::templates::default_templates;

    fn send(template: Value) -> Value {
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "919876543210",
               "type": "template", "template": template})
    }

    fn check(body: &Value) -> Result<ValidSend, GraphError> {
        validate(body.to_string().as_bytes(), &default_templates())
    }

    fn body(params: &[&str]) -> Value {
        json!({"type": "body", "parameters": params.iter().map(|p| json!({"type": "text", "text": p})).collect::<Vec<_>>()})
    }

    #[test]
    fn accepts_a_documented_send() {
        let ok = check(&send(json!({"name": "rider_address_updated", "language": {"code": "mr"}, "components": [
            body(&["MW-1", "Flat 4, College Road", "https://maps.app.goo.gl/x"]),
            {"type": "button", "sub_type": "quick_reply", "index": "1", "parameters": [{"type": "payload", "payload": "problem:MW-1"}]},
            {"type": "button", "sub_type": "quick_reply", "index": 0, "parameters": [{"type": "payload", "payload": "confirm:MW-1"}]}
        ]})))
        .unwrap();
        assert_eq!((ok.to.as_str(), ok.wa_id.as_str(), ok.language.as_str()), ("+919876543210", "919876543210", "mr"));
        assert_eq!(ok.body_params, ["MW-1", "Flat 4, College Road", "https://maps.app.goo.gl/x"]);
        assert_eq!(ok.payloads[&0], "confirm:MW-1");
        assert_eq!(ok.payloads[&1], "problem:MW-1");
    }

    #[test]
    fn names_what_is_wrong() {
        let code_and_details = |v: Value| {
            let e = check(&v).unwrap_err();
            (e.status, e.code, e.details.unwrap_or_default())
        };
        let mut no_product = send(json!({"name": "customer_status", "language": {"code": "en"}}));
        no_product.as_object_mut().unwrap().remove("messaging_product");
        assert_eq!(code_and_details(no_product), (400, 100, "Parameter 'messaging_product' is required.".into()));
        let mut bad_to = send(json!({"name": "customer_status", "language": {"code": "en"}}));
        bad_to["to"] = json!("09876543210");
        assert_eq!(code_and_details(bad_to).1, 100);
        let (_, code, details) = code_and_details(send(json!({"name": "customer_status", "language": {}})));
        assert_eq!((code, details.as_str()), (100, "Parameter 'template.language.code' is required."));
        let (status, code, details) =
            code_and_details(send(json!({"name": "order_shipped", "language": {"code": "en"}})));
        assert_eq!(
            (status, code, details.as_str()),
            (404, 132_001, "template name (order_shipped) does not exist in en")
        );
        assert_eq!(code_and_details(send(json!({"name": "customer_status", "language": {"code": "ta"}}))).1, 132_001);
        let (_, code, details) = code_and_details(send(
            json!({"name": "customer_status", "language": {"code": "en"}, "components": [body(&["MW-1"])]}),
        ));
        assert_eq!(
            (code, details.as_str()),
            (132_000, "body: number of localizable_params (1) does not match the expected number of params (3)")
        );
        let (_, code, details) = code_and_details(send(
            json!({"name": "customer_status", "language": {"code": "en"}, "components": [body(&["MW-1", "a\nb", "5"])]}),
        ));
        assert_eq!(code, 100);
        assert!(details.contains("template.components[0].parameters[1].text"), "{details}");
        let (_, code, _) = code_and_details(send(json!({"name": "customer_status", "language": {"code": "en"},
            "components": [body(&["MW-1", "late", "5"]), {"type": "button", "sub_type": "quick_reply", "index": "0",
            "parameters": [{"type": "payload", "payload": "x"}]}]})));
        assert_eq!(code, 131_009, "customer_status has no buttons");
        let (status, code, details) =
            code_and_details(send(json!({"name": "Customer_Status", "language": {"code": "en"}})));
        assert_eq!((status, code), (404, 132_001));
        assert!(details.contains("^[a-z0-9_]+$"), "{details}");
    }
}
