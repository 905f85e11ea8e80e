//! Exotel sends the same logical fields as a GET query, a urlencoded or
//! multipart form, or JSON. Everything is normalised into [`Params`], a flat
//! list of string pairs with PHP-style keys (`Legs[0][Status]`), so that one
//! parser serves every encoding.

use serde_json::Value;

/// Flat key/value pairs in arrival order. Keys are case-sensitive, as
/// Exotel's are; lookups by several alias names are supported because Exotel
/// names the same field differently in different places (`CallFrom`/`From`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Params(pairs)
    }

    /// Parses a query string or urlencoded body.
    pub fn from_urlencoded(bytes: &[u8]) -> Self {
        Params(form_urlencoded::parse(bytes).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    /// Flattens a JSON object: nested objects and arrays become PHP-style keys
    /// (`{"Legs":[{"Status":"x"}]}` → `Legs[0][Status]=x`); numbers and
    /// booleans become their text; `null` is left out. A body that is not a
    /// JSON object is an error.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("body is not valid JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err("body must be a JSON object".to_string());
        };
        let mut pairs = Vec::new();
        for (key, value) in map {
            flatten(&key, &value, &mut pairs, 0);
        }
        Ok(Params(pairs))
    }

    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.push((key.into(), value.into()));
    }

    /// Adds every pair of `other` whose key is not present yet (query
    /// parameters complement a POST body).
    pub fn merge_missing(&mut self, other: Params) {
        for (k, v) in other.0 {
            if self.get(&k).is_none() {
                self.0.push((k, v));
            }
        }
    }

    /// The first non-empty value of the first name that has one.
    pub fn get_any(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|name| self.get(name))
    }

    /// The first non-empty value of `name` (trimmed).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, v)| k == name && !v.trim().is_empty()).map(|(_, v)| v.trim())
    }

    /// Values of keys `prefix[0][field]`, `prefix[1][field]`, ... grouped by
    /// index, for arrays flattened PHP-style.
    pub fn indexed(&self, prefix: &str) -> Vec<Vec<(&str, &str)>> {
        let mut groups: Vec<(usize, Vec<(&str, &str)>)> = Vec::new();
        for (k, v) in &self.0 {
            let Some(rest) = k.strip_prefix(prefix).and_then(|r| r.strip_prefix('[')) else {
                continue;
            };
            let Some((index, field)) = rest.split_once("][") else {
                continue;
            };
            let (Ok(index), Some(field)) = (index.parse::<usize>(), field.strip_suffix(']')) else {
                continue;
            };
            if index > 64 {
                continue;
            }
            match groups.iter_mut().find(|(i, _)| *i == index) {
                Some((_, fields)) => fields.push((field, v.as_str())),
                None => groups.push((index, vec![(field, v.as_str())])),
            }
        }
        groups.sort_by_key(|(i, _)| *i);
        groups.into_iter().map(|(_, fields)| fields).collect()
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// Deep structures are not part of Exotel's protocol; stop early so that a
/// hostile body cannot make flattening expensive.
const MAX_DEPTH: usize = 4;

fn flatten(key: &str, value: &Value, out: &mut Vec<(String, String)>, depth: usize) {
    match value {
        Value::Null => {}
        Value::String(s) => out.push((key.to_string(), s.clone())),
        Value::Bool(b) => out.push((key.to_string(), b.to_string())),
        Value::Number(n) => out.push((key.to_string(), n.to_string())),
        Value::Array(items) if depth < MAX_DEPTH => {
            for (i, item) in items.iter().enumerate().take(100) {
                flatten(&format!("{key}[{i}]"), item, out, depth + 1);
            }
        }
        Value::Object(map) if depth < MAX_DEPTH => {
            for (k, v) in map {
                flatten(&format!("{key}[{k}]"), v, out, depth + 1);
            }
        }
        // Too deep: keep the raw JSON so nothing is silently lost.
        other => out.push((key.to_string(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_form_flatten_to_the_same_keys() {
        let json = Params::from_json(br#"{"CallSid":"a","ConversationDuration":45,"Legs":[{"Status":"completed","OnCallDuration":"12"},{"Status":""}]}"#).unwrap();
        let form = Params::from_urlencoded(
            b"CallSid=a&ConversationDuration=45&Legs[0][Status]=completed&Legs[0][OnCallDuration]=12&Legs%5B1%5D%5BStatus%5D=",
        );
        for p in [&json, &form] {
            assert_eq!(p.get("CallSid"), Some("a"));
            assert_eq!(p.get("ConversationDuration"), Some("45"));
            let legs = p.indexed("Legs");
            assert_eq!(legs.len(), 2);
            assert!(legs[0].contains(&("Status", "completed")));
            assert!(legs[0].contains(&("OnCallDuration", "12")));
        }
    }

    #[test]
    fn empty_values_count_as_missing() {
        let p = Params::from_urlencoded(b"From=&CallFrom=09876543210");
        assert_eq!(p.get_any(&["From", "CallFrom"]), Some("09876543210"));
    }

    #[test]
    fn non_objects_are_rejected() {
        assert!(Params::from_json(b"[1,2]").is_err());
        assert!(Params::from_json(b"nope").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let p = Params::from_urlencoded(&bytes);
            let _ = p.indexed("Legs");
            let _ = Params::from_json(&bytes);
        }
    }
}
