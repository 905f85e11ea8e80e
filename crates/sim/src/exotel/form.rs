//! Request fields and the `RestException` errors the API answers with.

use super::payload::Payload;

/// Form fields in arrival order (urlencoded or multipart, keys already
/// decoded once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Form(pub(crate) Vec<(String, String)>);

impl Form {
    /// The first non-empty value of `name`, trimmed.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, v)| k == name && !v.trim().is_empty()).map(|(_, v)| v.trim())
    }

    /// Values of a PHP-style array field: `name`, `name[]`, `name[3]`
    /// (brackets literal or percent-encoded), each possibly a comma list.
    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            let key = if k.contains('%') { percent_decode(k) } else { k.clone() };
            let Some(rest) = key.strip_prefix(name) else { continue };
            let is_array = rest.is_empty()
                || (rest.starts_with('[')
                    && rest.ends_with(']')
                    && rest[1..rest.len() - 1].chars().all(|c| c.is_ascii_digit()));
            if !is_array {
                continue;
            }
            for part in v.split(',') {
                let part = part.trim().trim_matches(|c| matches!(c, '[' | ']' | '"' | '\'')).trim();
                if !part.is_empty() {
                    out.push(part.to_string());
                }
            }
        }
        out
    }

    /// Groups of `prefix[i][field]` keys by index `i`, in index order.
    pub(crate) fn indexed(&self, prefix: &str) -> Vec<(usize, Form)> {
        let mut groups: Vec<(usize, Form)> = Vec::new();
        for (k, v) in &self.0 {
            let key = if k.contains('%') { percent_decode(k) } else { k.clone() };
            let Some(rest) = key.strip_prefix(prefix).and_then(|r| r.strip_prefix('[')) else { continue };
            let Some((index, field)) = rest.split_once("][") else { continue };
            let (Ok(index), Some(field)) = (index.parse::<usize>(), field.strip_suffix(']')) else { continue };
            match groups.iter_mut().find(|(i, _)| *i == index) {
                Some((_, form)) => form.0.push((field.to_string(), v.clone())),
                None => groups.push((index, Form(vec![(field.to_string(), v.clone())]))),
            }
        }
        groups.sort_by_key(|(i, _)| *i);
        groups
    }
}

/// Decodes `%XX` escapes (not `+`), leaving malformed escapes as they are.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// An error answer: `{"RestException": {"Status", "Message", "Code"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub message: String,
    pub code: Option<u32>,
}

impl ApiError {
    pub(crate) fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), code: None }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, message)
    }

    pub(crate) fn with_code(mut self, code: u32) -> Self {
        self.code = Some(code);
        self
    }

    pub(crate) fn unauthorized() -> Self {
        ApiError::new(401, "Unauthorized; ").with_code(34010)
    }

    pub(crate) fn payload(&self) -> Payload {
        let mut inner = Payload::new().int("Status", i64::from(self.status)).str("Message", self.message.clone());
        if let Some(code) = self.code {
            inner = inner.int("Code", i64::from(code));
        }
        Payload::new().obj("RestException", inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Form {
        Form(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn lists_in_every_encoding() {
        for f in [
            form(&[("StatusCallbackEvents[0]", "terminal"), ("StatusCallbackEvents[1]", "answered")]),
            form(&[("StatusCallbackEvents[]", "terminal"), ("StatusCallbackEvents[]", "answered")]),
            form(&[("StatusCallbackEvents", "terminal,answered")]),
            form(&[("StatusCallbackEvents%5B0%5D", "terminal"), ("StatusCallbackEvents%5b1%5d", "answered")]),
            form(&[("StatusCallbackEvents", r#"["terminal", "answered"]"#)]),
        ] {
            assert_eq!(f.list("StatusCallbackEvents"), vec!["terminal", "answered"], "{f:?}");
        }
        assert!(form(&[("StatusCallbackEventsX", "a")]).list("StatusCallbackEvents").is_empty());
    }

    #[test]
    fn indexed_groups() {
        let f = form(&[("Messages[1][To]", "b"), ("Messages[0][To]", "a"), ("Messages%5B0%5D%5BBody%5D", "hi")]);
        let groups = f.indexed("Messages");
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].1.get("Body"), Some("hi"));
        assert_eq!(groups[1].1.get("To"), Some("b"));
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("%2B91%zz%"), "+91%zz%");
    }
}
