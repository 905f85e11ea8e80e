//! Input generators: structure-aware (query strings, JSON, multipart bodies
//! built from the field names and the awkward values each protocol has),
//! libFuzzer-style mutation of real payloads, and plain random bytes.

use rand::{Rng, RngCore};

/// Longest input produced: well past every real payload, small enough to
/// keep a million runs quick.
pub const MAX_INPUT: usize = 16 * 1024;

/// The multipart boundary the `exotel.multipart` parser is called with.
pub const BOUNDARY: &str = "fuzzboundary";

/// Field names Exotel sends us (exotel-wire.md §3, §4, §6.4) and that our
/// applet URLs carry.
pub const EXOTEL_KEYS: &[&str] = &[
    "CallSid",
    "call_sid",
    "callSid",
    "CallFrom",
    "From",
    "from_phone",
    "from",
    "CallTo",
    "To",
    "to",
    "CallStatus",
    "Direction",
    "CallType",
    "digits",
    "Digits",
    "CustomField",
    "RecordingUrl",
    "recording_url",
    "DialCallStatus",
    "DialCallDuration",
    "DialWhomNumber",
    "StartTime",
    "CurrentTime",
    "Created",
    "EndTime",
    "flow_id",
    "tenant_id",
    "Stream",
    "Stream[StreamSID]",
    "Stream[StreamSid]",
    "Stream[Status]",
    "Stream[Duration]",
    "Stream[RecordingUrl]",
    "Stream[StreamUrl]",
    "Stream[DisconnectedBy]",
    "Status",
    "EventType",
    "DateCreated",
    "DateUpdated",
    "PhoneNumberSid",
    "ConversationDuration",
    "Legs",
    "SmsSid",
    "Sid",
    "SmsUnits",
    "DetailedStatus",
    "DetailedStatusCode",
    "DateSent",
    "flow",
    "context",
    "step",
    "token",
    "order_id",
    "ForwardedFrom",
    "AgentEmail",
];

/// Field names of Jupiter's webhooks and of its and the PHP backend's answers.
pub const JUPITER_KEYS: &[&str] = &[
    "order_id",
    "orderId",
    "id",
    "store_id",
    "storeId",
    "rider_id",
    "riderId",
    "vendor_phone",
    "rider_phone",
    "customer_phone",
    "customer_name",
    "amount",
    "orderAmount",
    "order_amount",
    "order_status",
    "status",
    "delivery_charge",
    "deliveryCharge",
    "payment_method",
    "paymentMethod",
    "payment_status",
    "order_note",
    "orderNote",
    "reason",
    "address",
    "landmark",
    "latitude",
    "longitude",
    "items",
    "details",
    "food",
    "product_details",
    "item_id",
    "itemId",
    "name",
    "f_name",
    "l_name",
    "phone",
    "quantity",
    "price",
    "customer",
    "store",
    "delivery_man",
    "deliveryMan",
    "rider",
    "sender_details",
    "receiver_details",
    "delivery_address",
    "pickupAddress",
    "deliveryAddress",
    "contact_person_name",
    "contact_person_number",
    "contactName",
    "contactPhone",
    "data",
    "success",
    "order",
    "error",
    "message",
    "errors",
    "stores",
    "delivery_men",
    "products",
    "aliases",
    "unit",
    "packSize",
    "available",
    "category",
    "category_name",
    "language",
    "isRegistered",
    "addresses",
    "label",
    "active",
    "module_type",
    "minimum_order",
    "delivery_time",
    "vehicle_type",
    "current_orders",
    "email",
    "field",
];

/// Field names of WhatsApp webhooks and Graph answers.
pub const WHATSAPP_KEYS: &[&str] = &[
    "object",
    "entry",
    "id",
    "changes",
    "field",
    "value",
    "messaging_product",
    "metadata",
    "contacts",
    "wa_id",
    "profile",
    "messages",
    "statuses",
    "from",
    "timestamp",
    "type",
    "context",
    "button",
    "payload",
    "text",
    "interactive",
    "button_reply",
    "title",
    "body",
    "status",
    "recipient_id",
    "errors",
    "code",
    "message",
    "error_data",
    "details",
    "error",
    "error_subcode",
    "fbtrace_id",
    "message_status",
    "input",
];

/// Field names of Voicebot events (exotel-wire.md §5).
pub const VOICEBOT_KEYS: &[&str] = &[
    "event",
    "sequence_number",
    "stream_sid",
    "start",
    "media",
    "dtmf",
    "mark",
    "stop",
    "call_sid",
    "account_sid",
    "from",
    "to",
    "custom_parameters",
    "media_format",
    "chunk",
    "timestamp",
    "payload",
    "digit",
    "duration",
    "name",
    "reason",
    "encoding",
    "sample_rate",
];

pub const VOICEBOT_EVENTS: &[&str] = &["connected", "start", "media", "dtmf", "mark", "stop", "clear", "START", ""];

/// Field names of Exotel's, Meta's and Google's answers to our requests.
pub const ANSWER_KEYS: &[&str] = &[
    "Call",
    "SMSMessage",
    "Account",
    "Accounts",
    "Numbers",
    "Number",
    "Sid",
    "Status",
    "To",
    "From",
    "DateCreated",
    "DateUpdated",
    "DateSent",
    "StartTime",
    "EndTime",
    "Duration",
    "Price",
    "Direction",
    "Details",
    "Legs",
    "Leg",
    "OnCallDuration",
    "ConversationDuration",
    "DetailedStatus",
    "DetailedStatusCode",
    "SmsUnits",
    "RestException",
    "Message",
    "Code",
    "DND",
    "PhoneNumber",
    "Circle",
    "error",
    "message",
    "code",
    "error_subcode",
    "error_data",
    "details",
    "fbtrace_id",
    "messages",
    "contacts",
    "wa_id",
    "id",
    "name",
    "status",
    "@type",
    "errorCode",
];

/// Values that have broken parsers before: empty and blank text, numbers at
/// and past every integer width, floats out of range, Exotel's quoted
/// digits and "no time" placeholders, dates at and past chrono's range,
/// phone numbers in every form, non-ASCII text, and the separators of each
/// encoding.
pub const VALUES: &[&str] = &[
    "",
    " ",
    "0",
    "-0",
    "1",
    "-1",
    "45",
    "45.0",
    "\"45\"",
    "\"1\"",
    "\"\"",
    "\"",
    "1e309",
    "-1e309",
    "NaN",
    "inf",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "9223372036854775807",
    "0.000001",
    "1.5e10",
    "null",
    "true",
    "false",
    "{}",
    "[]",
    "09876543210",
    "+919876543210",
    "919876543210",
    "9876543210",
    "0985001122 3",
    "+1",
    "+",
    "+91",
    "0000000000",
    "99999999999999999999999999",
    "sip:agent@example",
    "2024-01-15 14:25:10",
    "0000-00-00 00:00:00",
    "1970-01-01 05:30:00",
    "Tue, 16 Feb 2016 15:56:26",
    "+262143-12-31 23:59:59",
    "-262143-01-01 00:00:00",
    "262144-01-01 00:00:00",
    "2024-02-30 25:61:61",
    "Fri, 31 Dec 9999 23:59:59 +0000",
    "Mon, 01 Jan 0000 00:00:00 GMT",
    "-262143-01-01",
    "completed",
    "in-progress",
    "ringing",
    "no-answer",
    "busy",
    "failed",
    "failed_dnd",
    "failed-dnd",
    "sent",
    "delivered",
    "read",
    "queued",
    "terminal",
    "answered",
    "incoming",
    "outbound-api",
    "call-attempt",
    "whatsapp_business_account",
    "messages",
    "button",
    "interactive",
    "button_reply",
    "text",
    "MW-2025-001234",
    "12345",
    "vendor_new_order",
    "rider_assign",
    "address_update",
    "menu",
    "vendor_order_MW-1|accept",
    "x|reject",
    "|accept",
    "accept|",
    "||",
    "wamid.HBgM",
    "sha256=",
    "स्वीकार करें",
    "é",
    "🙂",
    "\u{0}",
    "\u{feff}",
    "\u{202e}",
    "\u{10ffff}",
    "\r\n",
    "%",
    "%ZZ",
    "%C3%28",
    "%00",
    "&",
    "=",
    "[",
    "]",
    "[0]",
    "][",
    "{",
    "}",
    ":",
    ",",
    "\\",
    "\\u0000",
    "\\ud800",
];

/// JSON number tokens a `Value` cannot always hold.
const NUMBER_TOKENS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "45",
    "45.5",
    "1e308",
    "1e309",
    "-1e309",
    "1e-400",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "4294967296",
    "123456789012345678901234567890",
    "0.5",
];

/// A JSON text stops growing past this many bytes (a generated tree could
/// otherwise grow exponentially with its depth).
const JSON_BUDGET: usize = 2048;

/// SplitMix64: fast in debug builds too (the bounded run is part of the
/// tests), and reproducible. Fuzzing needs variety, not cryptography.
struct SplitMix(u64);

impl RngCore for SplitMix {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// Random choices for one parser, reproducible from a seed.
pub struct Gen {
    rng: SplitMix,
}

impl Gen {
    pub fn new(seed: u64) -> Self {
        Gen { rng: SplitMix(seed) }
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.rng.random_range(0..n) }
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    pub fn number(&mut self) -> i64 {
        match self.below(4) {
            0 => self.rng.random(),
            1 => self.rng.random_range(-10..100),
            2 => i64::from(self.rng.random::<u32>()),
            _ => self.rng.random_range(1_600_000_000..1_900_000_000),
        }
    }

    /// Random bytes, up to `max`.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.rng.random()).collect()
    }

    /// A short text: a dictionary value, a number, random characters from
    /// every UTF-8 width, or a long run.
    pub fn value(&mut self) -> String {
        match self.below(10) {
            0..=4 => self.pick(VALUES).to_string(),
            5 => self.number().to_string(),
            6 => format!("{}", self.rng.random::<f64>() * 10f64.powi(self.rng.random_range(-5..320))),
            7 => {
                let len = self.below(24);
                (0..len)
                    .map(|_| match self.below(4) {
                        0 => char::from(self.rng.random_range(0x20u8..0x7f)),
                        1 => char::from(self.rng.random_range(0u8..0x20)),
                        2 => char::from_u32(self.rng.random_range(0x80..0xd800)).unwrap_or('?'),
                        _ => char::from_u32(self.rng.random_range(0x1_0000..0x11_0000)).unwrap_or('?'),
                    })
                    .collect()
            }
            8 => self.pick(VALUES).repeat(self.below(64) + 1),
            _ => format!("{}{}", self.pick(VALUES), self.pick(VALUES)),
        }
    }

    /// A field name: one of `keys`, a PHP-style indexed name (sane or
    /// not), or any value.
    pub fn key(&mut self, keys: &[&str]) -> String {
        match self.below(10) {
            0..=6 => self.pick(keys).to_string(),
            7 | 8 => {
                let prefix = self.pick(&["Legs", "Stream", "Messages", "Legs[0]", ""]);
                let index = self.pick(&["0", "1", "2", "64", "65", "-1", "", "99999999999999999999", "0x1", " 1"]);
                let field = self.pick(&["Status", "OnCallDuration", "AnsweredBy", "StreamSID", "", "]", "[x]"]);
                match self.below(4) {
                    0 => format!("{prefix}[{index}]"),
                    1 => format!("{prefix}[{index}][{field}"),
                    _ => format!("{prefix}[{index}][{field}]"),
                }
            }
            _ => self.value(),
        }
    }

    /// A query string or urlencoded body of fields named from `keys`.
    pub fn urlencoded(&mut self, keys: &[&str]) -> Vec<u8> {
        let pairs: Vec<(String, String)> = (0..self.below(14)).map(|_| (self.key(keys), self.value())).collect();
        if self.chance(0.7) {
            let mut out = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &pairs {
                out.append_pair(k, v);
            }
            out.finish().into_bytes()
        } else {
            // Unencoded, as a careless client sends it.
            let parts: Vec<String> =
                pairs.iter().map(|(k, v)| if self.chance(0.1) { k.clone() } else { format!("{k}={v}") }).collect();
            parts.join(if self.chance(0.9) { "&" } else { "&&" }).into_bytes()
        }
    }

    /// A JSON text whose objects use `keys`. Numbers are written as tokens,
    /// so some are beyond what a `Value` holds.
    pub fn json(&mut self, keys: &[&str]) -> Vec<u8> {
        let mut out = String::new();
        if self.chance(0.02) {
            // Nesting past serde_json's recursion limit.
            let depth = 100 + self.below(200);
            out.push_str(&"[".repeat(depth));
            out.push_str(&"]".repeat(depth));
        } else {
            self.json_object(keys, 0, &mut out);
        }
        out.into_bytes()
    }

    fn json_object(&mut self, keys: &[&str], depth: usize, out: &mut String) {
        out.push('{');
        for i in 0..self.below(10) {
            if out.len() > JSON_BUDGET {
                break;
            }
            if i > 0 {
                out.push(',');
            }
            out.push_str(&quoted(&self.key(keys)));
            out.push(':');
            self.json_value(keys, depth + 1, out);
        }
        out.push('}');
    }

    fn json_value(&mut self, keys: &[&str], depth: usize, out: &mut String) {
        let nested = depth < 5;
        match self.below(if nested { 12 } else { 8 }) {
            0 => out.push_str(self.pick(&["null", "true", "false"])),
            1 | 2 => out.push_str(self.pick(NUMBER_TOKENS)),
            3 => out.push_str(&self.number().to_string()),
            4..=6 => out.push_str(&quoted(&self.value())),
            // A JSON document inside a string, as 6amMart stores some columns
            // and Exotel sends `Stream` (not nested further: each level of
            // quoting doubles the escapes).
            7 if depth < 3 && out.len() < JSON_BUDGET / 2 => {
                let mut inner = String::new();
                self.json_object(keys, 4, &mut inner);
                out.push_str(&quoted(&inner));
            }
            7 => out.push_str(&quoted(&self.value())),
            8 | 9 => {
                out.push('[');
                for i in 0..self.below(5) {
                    if out.len() > JSON_BUDGET {
                        break;
                    }
                    if i > 0 {
                        out.push(',');
                    }
                    self.json_value(keys, depth + 1, out);
                }
                out.push(']');
            }
            _ => self.json_object(keys, depth, out),
        }
    }

    /// A `multipart/form-data` body with [`BOUNDARY`]: fields named from
    /// `keys`, some with file names, content types or broken headers.
    pub fn multipart(&mut self, keys: &[&str]) -> Vec<u8> {
        let pairs: Vec<(String, Vec<u8>)> = (0..self.below(10))
            .map(|_| {
                let value = if self.chance(0.1) { self.bytes(64) } else { self.value().into_bytes() };
                (self.key(keys), value)
            })
            .collect();
        multipart_body(self, &pairs)
    }

    /// libFuzzer-style mutations of `data`: bit flips, interesting bytes,
    /// deletions, insertions, duplicated ranges, dictionary tokens, number
    /// swaps, truncation, and splicing with `other`.
    pub fn mutate(&mut self, data: &[u8], dictionary: &[&str], other: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        for _ in 0..=self.below(8) {
            let len = out.len();
            match self.below(10) {
                0 if len > 0 => {
                    let i = self.below(len);
                    out[i] ^= 1 << self.below(8);
                }
                1 if len > 0 => {
                    let i = self.below(len);
                    out[i] = *b"\0\xff\x7f\x80\"\\{}[]&=%,:\n".get(self.below(16)).unwrap_or(&0);
                }
                2 if len > 0 => {
                    let start = self.below(len);
                    let end = (start + self.below(32) + 1).min(len);
                    out.drain(start..end);
                }
                3 => {
                    let at = self.below(len + 1);
                    let bytes = self.bytes(16);
                    out.splice(at..at, bytes);
                }
                4 if len > 0 => {
                    let start = self.below(len);
                    let end = (start + self.below(64) + 1).min(len);
                    let copy = out[start..end].to_vec();
                    let at = self.below(len + 1);
                    out.splice(at..at, copy);
                }
                5 | 6 => {
                    let at = self.below(len + 1);
                    let token = if self.chance(0.5) { self.pick(dictionary) } else { self.pick(VALUES) };
                    out.splice(at..at, token.bytes());
                }
                7 => {
                    // Replace a run of digits with another number.
                    if let Some(start) =
                        (0..8).map(|_| self.below(len)).find(|&i| out.get(i).is_some_and(u8::is_ascii_digit))
                    {
                        let end = (start..len).find(|&i| !out[i].is_ascii_digit()).unwrap_or(len);
                        let number = self.pick(NUMBER_TOKENS).to_string();
                        out.splice(start..end, number.bytes());
                    }
                }
                8 if len > 0 => out.truncate(self.below(len)),
                _ if !other.is_empty() => {
                    let cut = self.below(out.len() + 1);
                    let from = self.below(other.len());
                    out.truncate(cut);
                    out.extend_from_slice(&other[from..]);
                }
                _ => {}
            }
        }
        out.truncate(MAX_INPUT);
        out
    }

    /// One input for a parser: mostly a mutated seed or a structured input,
    /// sometimes a mutated structured input, sometimes random bytes.
    pub fn input(&mut self, seeds: &[&str], dictionary: &[&str], structured: impl Fn(&mut Gen) -> Vec<u8>) -> Vec<u8> {
        let seed = |g: &mut Gen| if seeds.is_empty() { Vec::new() } else { g.pick(seeds).as_bytes().to_vec() };
        let mut input = match self.below(20) {
            0..=7 => {
                let data = seed(self);
                let other = seed(self);
                self.mutate(&data, dictionary, &other)
            }
            8..=15 => structured(self),
            16 | 17 => {
                let data = structured(self);
                let other = seed(self);
                self.mutate(&data, dictionary, &other)
            }
            18 => seed(self),
            _ => self.bytes(512),
        };
        input.truncate(MAX_INPUT);
        input
    }
}

/// A JSON string literal.
pub fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
}

/// `pairs` as a multipart body with [`BOUNDARY`], with the irregularities
/// a client can send.
pub fn multipart_body(g: &mut Gen, pairs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in pairs {
        out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match g.below(10) {
            0 => out.extend_from_slice(b"Content-Disposition: form-data\r\n"),
            1 => out.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n")
                    .as_bytes(),
            ),
            2 => out.extend_from_slice(format!("Content-Disposition: form-data; name={name}\r\n").as_bytes()),
            _ => out.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n").as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if g.chance(0.9) {
        out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    }
    out
}

/// A query string's pairs as a multipart body (the multipart form of a
/// real sample).
pub fn multipart_from_query(g: &mut Gen, query: &str) -> Vec<u8> {
    let pairs: Vec<(String, Vec<u8>)> =
        form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned().into_bytes())).collect();
    multipart_body(g, &pairs)
}
