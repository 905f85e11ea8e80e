//! `application/x-www-form-urlencoded` bodies with PHP-style array keys
//! written the way Exotel expects (see [`BracketStyle`]). Generic encoders
//! (reqwest's `.form()`, serde_urlencoded) percent-encode the brackets, which
//! is why bodies are built here.

use super::config::BracketStyle;

/// A form body under construction.
#[derive(Debug, Clone)]
pub(crate) struct Form {
    style: BracketStyle,
    body: String,
}

impl Form {
    pub fn new(style: BracketStyle) -> Self {
        Form { style, body: String::new() }
    }

    /// `name=value`.
    pub fn field(&mut self, name: &str, value: &str) -> &mut Self {
        let key = encode(name);
        self.pair(&key, value)
    }

    /// `name=value` when there is a value.
    pub fn optional(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.field(name, value);
        }
        self
    }

    /// A flat array: `name[0]=a&name[1]=b` (or `name[]=…`, or encoded).
    pub fn array<'a>(&mut self, name: &str, values: impl IntoIterator<Item = &'a str>) -> &mut Self {
        for (index, value) in values.into_iter().enumerate() {
            let key = match self.style {
                BracketStyle::LiteralIndexed => format!("{}[{index}]", encode(name)),
                BracketStyle::LiteralEmpty => format!("{}[]", encode(name)),
                BracketStyle::PercentEncoded => format!("{}%5B{index}%5D", encode(name)),
            };
            self.pair(&key, value);
        }
        self
    }

    /// One field of an element of an array of objects:
    /// `name[index][field]=value`. Always indexed, since `name[][field]`
    /// cannot be grouped back into objects by the receiver.
    pub fn nested(&mut self, name: &str, index: usize, field: &str, value: &str) -> &mut Self {
        let key = match self.style {
            BracketStyle::LiteralIndexed | BracketStyle::LiteralEmpty => {
                format!("{}[{index}][{}]", encode(name), encode(field))
            }
            BracketStyle::PercentEncoded => format!("{}%5B{index}%5D%5B{}%5D", encode(name), encode(field)),
        };
        self.pair(&key, value)
    }

    fn pair(&mut self, encoded_key: &str, value: &str) -> &mut Self {
        if !self.body.is_empty() {
            self.body.push('&');
        }
        self.body.push_str(encoded_key);
        self.body.push('=');
        self.body.push_str(&encode(value));
        self
    }

    pub fn finish(self) -> String {
        self.body
    }
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(style: BracketStyle) -> String {
        let mut form = Form::new(style);
        form.field("StatusCallback", "https://x.in/cb?token=a b&c=1")
            .array("StatusCallbackEvents", ["terminal", "answered"])
            .nested("Messages", 0, "To", "+919876543210")
            .optional("Absent", None);
        form.finish()
    }

    #[test]
    fn literal_indexed_keeps_brackets_and_encodes_values() {
        assert_eq!(
            sample(BracketStyle::LiteralIndexed),
            "StatusCallback=https%3A%2F%2Fx.in%2Fcb%3Ftoken%3Da+b%26c%3D1\
             &StatusCallbackEvents[0]=terminal&StatusCallbackEvents[1]=answered&Messages[0][To]=%2B919876543210"
        );
    }

    #[test]
    fn the_alternative_styles() {
        assert!(sample(BracketStyle::LiteralEmpty).ends_with(
            "&StatusCallbackEvents[]=terminal&StatusCallbackEvents[]=answered&Messages[0][To]=%2B919876543210"
        ));
        assert!(sample(BracketStyle::PercentEncoded).ends_with(
            "&StatusCallbackEvents%5B0%5D=terminal&StatusCallbackEvents%5B1%5D=answered\
             &Messages%5B0%5D%5BTo%5D=%2B919876543210"
        ));
    }

    #[test]
    fn decodes_to_the_same_pairs() {
        let body = sample(BracketStyle::LiteralIndexed);
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(body.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        assert_eq!(pairs[0], ("StatusCallback".into(), "https://x.in/cb?token=a b&c=1".into()));
        assert_eq!(pairs[2], ("StatusCallbackEvents[1]".into(), "answered".into()));
    }
}
