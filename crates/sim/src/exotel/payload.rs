//! Ordered documents: what the simulator answers and sends, kept in the
//! field order of Exotel's samples and rendered as JSON, XML
//! (`<TwilioResponse>`), or flat PHP-style form pairs (`Legs[0][Status]`).

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Str(String),
    Int(i64),
    Null,
    List(Vec<Payload>),
    Obj(Payload),
}

/// An object whose keys keep their insertion order.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Payload(pub(crate) Vec<(String, Value)>);

impl Payload {
    pub(crate) fn new() -> Self {
        Payload(Vec::new())
    }

    pub(crate) fn str(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.push((key.to_string(), Value::Str(value.into())));
        self
    }

    pub(crate) fn int(mut self, key: &str, value: i64) -> Self {
        self.0.push((key.to_string(), Value::Int(value)));
        self
    }

    pub(crate) fn null(mut self, key: &str) -> Self {
        self.0.push((key.to_string(), Value::Null));
        self
    }

    /// A string, or `null` when absent.
    pub(crate) fn opt(self, key: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.str(key, v),
            None => self.null(key),
        }
    }

    pub(crate) fn list(mut self, key: &str, items: Vec<Payload>) -> Self {
        self.0.push((key.to_string(), Value::List(items)));
        self
    }

    pub(crate) fn obj(mut self, key: &str, value: Payload) -> Self {
        self.0.push((key.to_string(), Value::Obj(value)));
        self
    }

    pub(crate) fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }

    pub(crate) fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Flat pairs with PHP-style keys; numbers become text and `null` an
    /// empty string, as in Exotel's form-encoded callbacks.
    pub(crate) fn flatten(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        flatten_into("", self, &mut out);
        out
    }

    /// The children of an XML element.
    pub(crate) fn write_xml(&self, out: &mut String) {
        for (key, value) in &self.0 {
            match value {
                Value::Str(s) => {
                    out.push_str(&format!("<{key}>{}</{key}>", escape_xml(s)));
                }
                Value::Int(n) => out.push_str(&format!("<{key}>{n}</{key}>")),
                Value::Null => out.push_str(&format!("<{key}/>")),
                Value::Obj(p) => {
                    out.push_str(&format!("<{key}>"));
                    p.write_xml(out);
                    out.push_str(&format!("</{key}>"));
                }
                Value::List(items) => {
                    out.push_str(&format!("<{key}>"));
                    for item in items {
                        item.write_xml(out);
                    }
                    out.push_str(&format!("</{key}>"));
                }
            }
        }
    }
}

fn flatten_into(prefix: &str, payload: &Payload, out: &mut Vec<(String, String)>) {
    for (key, value) in &payload.0 {
        let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}[{key}]") };
        match value {
            Value::Str(s) => out.push((name, s.clone())),
            Value::Int(n) => out.push((name, n.to_string())),
            Value::Null => out.push((name, String::new())),
            Value::Obj(p) => flatten_into(&name, p, out),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    flatten_into(&format!("{name}[{i}]"), item, out);
                }
            }
        }
    }
}

pub(crate) fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole XML answer: `<TwilioResponse>` around the documents.
pub(crate) fn xml_document(items: &[Payload]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<TwilioResponse>");
    for item in items {
        item.write_xml(&mut out);
    }
    out.push_str("</TwilioResponse>\n");
    out
}

/// A `multipart/form-data` body of the flattened pairs.
pub(crate) fn multipart_body(pairs: &[(String, String)], boundary: &str) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        let name = k.replace('"', "%22");
        out.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{v}\r\n"));
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out
}

pub(crate) fn urlencoded_body(pairs: &[(String, String)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    ser.finish()
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Str(v) => s.serialize_str(v),
            Value::Int(n) => s.serialize_i64(*n),
            Value::Null => s.serialize_unit(),
            Value::Obj(p) => p.serialize(s),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Payload {
        Payload::new()
            .str("CallSid", "a&b")
            .int("ConversationDuration", 45)
            .null("EndTime")
            .list("Legs", vec![Payload::new().str("Status", "completed"), Payload::new().str("Status", "")])
    }

    #[test]
    fn json_keeps_order_and_types() {
        assert_eq!(
            sample().to_json_string(),
            r#"{"CallSid":"a&b","ConversationDuration":45,"EndTime":null,"Legs":[{"Status":"completed"},{"Status":""}]}"#
        );
    }

    #[test]
    fn flattening_is_php_style_with_strings() {
        let flat = sample().flatten();
        assert_eq!(flat[1], ("ConversationDuration".to_string(), "45".to_string()));
        assert_eq!(flat[2], ("EndTime".to_string(), String::new()));
        assert_eq!(flat[4], ("Legs[1][Status]".to_string(), String::new()));
    }

    #[test]
    fn xml_escapes_and_nests() {
        let xml = xml_document(&[Payload::new().obj("Call", sample())]);
        assert!(xml.contains("<TwilioResponse><Call><CallSid>a&amp;b</CallSid>"));
        assert!(xml.contains("<EndTime/><Legs><Status>completed</Status><Status></Status></Legs>"));
    }
}
