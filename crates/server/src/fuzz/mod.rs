//! The fuzz harness: every parser of bytes that arrive from the network,
//! fed with generated and mutated inputs, each call inside
//! `catch_unwind`, counting inputs and panics per parser.
//!
//! It runs on stable Rust: `cargo run --release -p mangwale-server --example
//! fuzz -- --inputs 1000000` (docs/fuzzing.md), and a bounded run is part of
//! the tests (`tests/fuzz.rs`). Parsers behind an axum extractor or a
//! provider client are called through their own functions (the narrow
//! `#[doc(hidden)]` entry points of `mangwale_providers::*::fuzz`), never
//! through copies.

pub mod generate;
pub mod seeds;

use std::cell::{Cell, RefCell};
use std::hint::black_box;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::str::FromStr;
use std::sync::Once;
use std::time::{Duration, Instant};

use axum::extract::FromRequest;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use mangwale_core::ivr::{Menu, interpret};
use mangwale_core::ladder::{Channel, LadderKind, LadderState, StepState, StopAction};
use mangwale_core::{E164, Language, OrderId, mask_phone_numbers};
use mangwale_providers::exotel::inbound::{AppletRequest, CallStatusCallback, SmsStatusCallback, clean_digits};
use mangwale_providers::exotel::params::Params;
use mangwale_providers::exotel::time::{format_ist, parse_ist};
use mangwale_providers::exotel::voicebot::InboundEvent as VoicebotEvent;
use mangwale_providers::whatsapp::{
    InboundEvent as WhatsAppEvent, parse_webhook, verify_signature, verify_subscription,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::comms::answers::parse_button;
use crate::exotel_params::{ExotelParams, mask_json};
use crate::extract::{parse_form, parse_json};
use crate::jupiter::events::WebhookEvent;
use crate::jupiter::{resolve, signature};
use crate::routes::jupiter_webhooks::parse_body as jupiter_body;
use crate::routes::whatsapp::Handshake;
use generate::Gen;

/// The secret the generated Jupiter and WhatsApp requests are signed with
/// (some correctly, so that parsing past the signature check is reached).
pub const SECRET: &str = "fuzz-webhook-secret";
const VERIFY_TOKEN: &str = "fuzz-verify-token";

/// A parser under test.
pub struct Target {
    pub name: &'static str,
    /// What is parsed, for the table.
    pub about: &'static str,
    generate: fn(&mut Gen) -> Vec<u8>,
    parse: fn(&[u8]),
}

impl Target {
    /// Runs the parser on one input, as the harness does (tests replay a
    /// found input with this).
    pub fn parse(&self, input: &[u8]) {
        (self.parse)(input)
    }

    pub fn generate(&self, g: &mut Gen) -> Vec<u8> {
        (self.generate)(g)
    }
}

/// An input that made a parser panic.
#[derive(Debug, Clone)]
pub struct Failure {
    pub input: Vec<u8>,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub name: &'static str,
    pub inputs: u64,
    pub panics: u64,
    pub elapsed: Duration,
    /// The shortest failing input of each distinct panic (the first few).
    pub failures: Vec<Failure>,
}

/// Failing inputs kept per parser.
const KEPT_FAILURES: usize = 5;

thread_local! {
    static FUZZING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Routes panics raised while a parser runs to the report instead of
/// stderr (a million inputs could print a million backtraces); other
/// panics still reach the previous hook.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if FUZZING.with(Cell::get) {
                LAST_PANIC.with(|last| *last.borrow_mut() = Some(info.to_string()));
            } else {
                previous(info);
            }
        }));
    });
}

/// Feeds `inputs` generated inputs to `target`, from a seed that makes the
/// run reproducible.
pub fn run(target: &Target, inputs: u64, seed: u64) -> Report {
    install_panic_hook();
    let mut g = Gen::new(seed ^ name_hash(target.name));
    let mut report = Report { name: target.name, inputs: 0, panics: 0, elapsed: Duration::ZERO, failures: Vec::new() };
    let started = Instant::now();
    for _ in 0..inputs {
        let input = target.generate(&mut g);
        FUZZING.with(|f| f.set(true));
        let outcome = catch_unwind(AssertUnwindSafe(|| target.parse(&input)));
        FUZZING.with(|f| f.set(false));
        report.inputs += 1;
        if let Err(payload) = outcome {
            report.panics += 1;
            let message = LAST_PANIC.with(|last| last.borrow_mut().take()).unwrap_or_else(|| {
                payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".to_string())
            });
            // One input per distinct panic (message and place), the
            // shortest seen so far.
            let kept = report.failures.len();
            match report.failures.iter_mut().find(|f| f.message == message) {
                Some(same) if input.len() < same.input.len() => same.input = input,
                Some(_) => {}
                None if kept < KEPT_FAILURES => report.failures.push(Failure { input, message }),
                None => {}
            }
        }
    }
    report.elapsed = started.elapsed();
    report
}

fn name_hash(name: &str) -> u64 {
    // FNV-1a: stable across builds, unlike `DefaultHasher`.
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The reports as a table: parser, inputs, panics, time, inputs per second.
pub fn table(reports: &[Report]) -> String {
    let mut out = format!("{:<22} {:>10} {:>7} {:>10} {:>10}\n", "parser", "inputs", "panics", "time", "inputs/s");
    for r in reports {
        let secs = r.elapsed.as_secs_f64();
        let rate = if secs > 0.0 { r.inputs as f64 / secs } else { 0.0 };
        out.push_str(&format!("{:<22} {:>10} {:>7} {:>9.1}s {:>10.0}\n", r.name, r.inputs, r.panics, secs, rate));
    }
    let inputs: u64 = reports.iter().map(|r| r.inputs).sum();
    let panics: u64 = reports.iter().map(|r| r.panics).sum();
    let secs: f64 = reports.iter().map(|r| r.elapsed.as_secs_f64()).sum();
    out.push_str(&format!("{:<22} {:>10} {:>7} {:>9.1}s\n", "total", inputs, panics, secs));
    out
}

/// The failing inputs of the reports, escaped so that they paste into a
/// `b"..."` regression test.
pub fn failures(reports: &[Report]) -> String {
    let mut out = String::new();
    for r in reports {
        for f in &r.failures {
            out.push_str(&format!("{}: input b\"{}\"\n  {}\n", r.name, f.input.escape_ascii(), f.message.trim()));
        }
    }
    out
}

/// Every parser of network input.
pub fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "exotel.query",
            about: "applet GET/HEAD query strings -> Params -> applet, call and SMS parsers, IVR menus",
            generate: |g| {
                g.input(seeds::EXOTEL_QUERIES, generate::EXOTEL_KEYS, |g| g.urlencoded(generate::EXOTEL_KEYS))
            },
            parse: |input| exercise_params(Params::from_urlencoded(input)),
        },
        Target {
            name: "exotel.form",
            about: "urlencoded POST bodies through the ExotelParams extractor",
            generate: |g| {
                g.input(seeds::EXOTEL_QUERIES, generate::EXOTEL_KEYS, |g| g.urlencoded(generate::EXOTEL_KEYS))
            },
            parse: |input| extract("application/x-www-form-urlencoded", input),
        },
        Target {
            name: "exotel.json",
            about: "JSON POST bodies through the ExotelParams extractor (declared and sniffed)",
            generate: |g| g.input(seeds::EXOTEL_JSON, generate::EXOTEL_KEYS, |g| g.json(generate::EXOTEL_KEYS)),
            parse: |input| {
                extract("application/json", input);
                extract("", input);
            },
        },
        Target {
            name: "exotel.multipart",
            about: "multipart/form-data POST bodies through the ExotelParams extractor",
            generate: |g| {
                if g.chance(0.4) {
                    // A real sample in multipart form, mutated.
                    let query = g.pick(seeds::EXOTEL_QUERIES);
                    let body = generate::multipart_from_query(g, query);
                    g.mutate(&body, generate::EXOTEL_KEYS, &[])
                } else {
                    g.input(&[], generate::EXOTEL_KEYS, |g| g.multipart(generate::EXOTEL_KEYS))
                }
            },
            parse: |input| extract(&format!("multipart/form-data; boundary={}", generate::BOUNDARY), input),
        },
        Target {
            name: "exotel.call_status",
            about: "voice status callbacks, JSON or flattened form (Legs[i][...])",
            generate: |g| {
                if g.chance(0.5) {
                    g.input(seeds::EXOTEL_JSON, generate::EXOTEL_KEYS, |g| g.json(STATUS_KEYS))
                } else {
                    g.input(seeds::EXOTEL_QUERIES, STATUS_KEYS, |g| g.urlencoded(STATUS_KEYS))
                }
            },
            parse: |input| {
                let params = if input.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
                    Params::from_json(input).unwrap_or_default()
                } else {
                    Params::from_urlencoded(input)
                };
                if let Ok(callback) = CallStatusCallback::from_params(&params) {
                    black_box(callback.dedup_key());
                    black_box(mask_json(serde_json::to_value(&callback).unwrap_or_default()));
                }
            },
        },
        Target {
            name: "exotel.sms_status",
            about: "SMS delivery callbacks (form)",
            generate: |g| g.input(seeds::EXOTEL_QUERIES, SMS_KEYS, |g| g.urlencoded(SMS_KEYS)),
            parse: |input| {
                if let Ok(callback) = SmsStatusCallback::from_params(&Params::from_urlencoded(input)) {
                    black_box(callback.dedup_key());
                    black_box(mask_json(serde_json::to_value(&callback).unwrap_or_default()));
                }
            },
        },
        Target {
            name: "exotel.time",
            about: "Exotel's IST timestamps (both forms)",
            generate: |g| g.input(TIMES, generate::VALUES, timestamp),
            parse: |input| {
                if let Some(at) = parse_ist(&String::from_utf8_lossy(input)) {
                    black_box(format_ist(at));
                }
            },
        },
        Target {
            name: "exotel.voicebot",
            about: "Voicebot WebSocket events",
            generate: |g| g.input(seeds::VOICEBOT, generate::VOICEBOT_KEYS, voicebot_event),
            parse: voicebot,
        },
        Target {
            name: "exotel.client",
            about: "Exotel's answers: call, SMS, bulk, ExoPhones, number, errors, Retry-After",
            generate: |g| answer_frame(g, seeds::EXOTEL_ANSWERS, generate::ANSWER_KEYS),
            parse: |input| {
                use mangwale_providers::exotel::client::fuzz::{Endpoint, error_answer, retry_after, success_body};
                let [endpoint, status, retry, body] = split(input);
                let status = status_code(status);
                let retry = std::str::from_utf8(retry).ok();
                black_box(retry.map(|v| retry_after(v, now())));
                if (200..300).contains(&status) {
                    let endpoint = Endpoint::ALL[endpoint.first().map_or(0, |b| usize::from(*b)) % Endpoint::ALL.len()];
                    black_box(success_body(endpoint, body));
                } else {
                    black_box(error_answer(status, body, retry, now()));
                }
            },
        },
        Target {
            name: "jupiter.webhook",
            about: "Jupiter webhooks: signature headers, body, order id, the jobs they enqueue",
            generate: jupiter_request,
            parse: jupiter_webhook,
        },
        Target {
            name: "jupiter.client",
            about: "Jupiter and PHP backend answers -> orders, stores, riders, customers, items",
            generate: |g| g.input(seeds::JUPITER_ANSWERS, generate::JUPITER_KEYS, |g| g.json(generate::JUPITER_KEYS)),
            parse: |input| {
                black_box(mangwale_providers::jupiter::fuzz::answer(input));
            },
        },
        Target {
            name: "whatsapp.webhook",
            about: "WhatsApp webhooks: signature, subscription handshake, messages and statuses",
            generate: whatsapp_request,
            parse: whatsapp_webhook,
        },
        Target {
            name: "whatsapp.client",
            about: "Cloud API answers: sent messages, Graph errors, Retry-After",
            generate: |g| answer_frame(g, seeds::WHATSAPP_ANSWERS, generate::WHATSAPP_KEYS),
            parse: |input| {
                let [_, status, retry_after, body] = split(input);
                let (status, retry_after) = (status_code(status), std::str::from_utf8(retry_after).ok());
                if (200..300).contains(&status) {
                    black_box(mangwale_providers::whatsapp::fuzz::sent(body));
                } else {
                    black_box(mangwale_providers::whatsapp::fuzz::error_answer(status, body, retry_after, now()));
                }
            },
        },
        Target {
            name: "push.fcm",
            about: "FCM v1 answers: sent names, Google errors, Retry-After",
            generate: |g| answer_frame(g, seeds::FCM_ANSWERS, generate::ANSWER_KEYS),
            parse: |input| {
                let [_, status, retry_after, body] = split(input);
                let (status, retry_after) = (status_code(status), std::str::from_utf8(retry_after).ok());
                if (200..300).contains(&status) {
                    black_box(mangwale_providers::push::fuzz::sent(body));
                } else {
                    black_box(mangwale_providers::push::fuzz::error_answer(status, body, retry_after, now()));
                }
            },
        },
        Target {
            name: "api.analytics",
            about: "the analytics query's from/to dates",
            generate: |g| {
                let seeds =
                    &["from=2024-01-15&to=2024-01-16", "to=2024-01-15T10:00:00Z", "from=2024-01-15T10:00:00%2B05:30"];
                g.input(seeds, &["from", "to", "T", "Z", "+05:30"], |g| {
                    let date = |g: &mut Gen| {
                        if g.chance(0.3) {
                            // The edges of chrono's range, in both forms the route reads.
                            return g
                                .pick(&[
                                    "-262143-01-01",
                                    "-262143-01-01T00:00:00Z",
                                    "+262143-12-31",
                                    "+262143-12-31T23:59:59Z",
                                    "-262144-12-31",
                                    "0000-01-01",
                                    "9999-12-31T23:59:59+23:59",
                                ])
                                .to_string();
                        }
                        if g.chance(0.1) {
                            return g.value();
                        }
                        let text = String::from_utf8_lossy(&timestamp(g)).replace(' ', "T");
                        if g.chance(0.5) { text.split('T').next().unwrap_or("").to_string() } else { text + "Z" }
                    };
                    let (from, to) = (date(g), date(g));
                    match g.below(3) {
                        0 => format!("to={to}"),
                        1 => format!("from={from}"),
                        _ => format!("from={from}&to={to}"),
                    }
                    .into_bytes()
                })
            },
            parse: |input| {
                if let Err(e) = crate::routes::comms::analytics_range(input, now()) {
                    black_box(e.into_response());
                }
            },
        },
        Target {
            name: "core.values",
            about: "phone numbers, order ids, languages, ladder names, digits, button payloads, masking",
            generate: |g| g.input(generate::VALUES, generate::VALUES, |g| g.value().into_bytes()),
            parse: core_values,
        },
        Target {
            name: "api.body",
            about: "API JSON and form bodies: field-naming 400s",
            generate: |g| {
                if g.chance(0.5) {
                    g.input(seeds::JUPITER_WEBHOOKS, API_KEYS, |g| g.json(API_KEYS))
                } else {
                    g.input(&["order_id=MW-1&vendor_phone=9876543210&price=12"], API_KEYS, |g| g.urlencoded(API_KEYS))
                }
            },
            parse: api_body,
        },
    ]
}

const STATUS_KEYS: &[&str] = &[
    "CallSid",
    "call_sid",
    "Status",
    "CallStatus",
    "EventType",
    "DateCreated",
    "DateUpdated",
    "StartTime",
    "EndTime",
    "From",
    "To",
    "PhoneNumberSid",
    "ConversationDuration",
    "Direction",
    "CustomField",
    "RecordingUrl",
    "Legs",
    "Legs[0][Status]",
    "Legs[0][OnCallDuration]",
    "Legs[0][AnsweredBy]",
    "Legs[1][Status]",
    "Legs[1][OnCallDuration]",
    "Legs[1][AnsweredBy]",
    "Status",
    "OnCallDuration",
    "AnsweredBy",
];

const SMS_KEYS: &[&str] =
    &["SmsSid", "Sid", "To", "Status", "SmsUnits", "DetailedStatus", "DetailedStatusCode", "DateSent", "CustomField"];

const API_KEYS: &[&str] =
    &["order_id", "orderId", "vendor_phone", "items", "name", "price", "amount", "language", "context", "reason"];

const TIMES: &[&str] = &[
    "2024-01-15 14:25:10",
    "0000-00-00 00:00:00",
    "1970-01-01 05:30:00",
    "Tue, 16 Feb 2016 15:56:26",
    "+262143-12-31 23:59:59",
    "-262143-01-01 00:00:00",
];

/// The fixed "now" of signature and `Retry-After` checks.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
}

/// Splits a framed input into `N` newline-separated parts (header values
/// first, the body last, which may itself hold newlines).
fn split<const N: usize>(input: &[u8]) -> [&[u8]; N] {
    let mut parts = [&input[..0]; N];
    for (slot, part) in parts.iter_mut().zip(input.splitn(N, |b| *b == b'\n')) {
        *slot = part;
    }
    parts
}

fn status_code(text: &[u8]) -> u16 {
    std::str::from_utf8(text).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(500)
}

/// Everything the Exotel routes read out of a request's parameters.
fn exercise_params(params: Params) {
    let params = ExotelParams(params);
    black_box(params.fingerprint());
    black_box(params.0.indexed("Legs"));
    black_box(params.0.indexed("Stream"));
    if let Ok(request) = AppletRequest::from_params(&params.0) {
        let flow = params.0.get_any(&["flow", "context"]).unwrap_or("");
        let step = params.0.get("step").unwrap_or("menu");
        if let Some(menu) = Menu::at(flow, step) {
            black_box(interpret(menu, request.digits.as_deref()));
        }
        black_box(mask_json(serde_json::to_value(&request).unwrap_or_default()));
    }
    if let Ok(callback) = CallStatusCallback::from_params(&params.0) {
        black_box(callback.dedup_key());
    }
    if let Ok(callback) = SmsStatusCallback::from_params(&params.0) {
        black_box(callback.dedup_key());
    }
}

thread_local! {
    /// The extractor is async; it never waits on I/O here, so a
    /// current-thread runtime per fuzzing thread drives it.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("a current-thread runtime: {e}"));
}

/// A POST with this content type and body through [`ExotelParams`], as
/// axum calls it, then every parser of its parameters.
fn extract(content_type: &str, body: &[u8]) {
    let mut request = axum::http::Request::post("/exotel/ivr/call-status?token=t&flow=vendor_new_order&step=menu");
    if !content_type.is_empty() {
        request = request.header(axum::http::header::CONTENT_TYPE, content_type);
    }
    let Ok(request) = request.body(axum::body::Body::from(body.to_vec())) else { return };
    let extracted = RUNTIME.with(|rt| rt.block_on(ExotelParams::from_request(request, &())));
    match extracted {
        Ok(params) => exercise_params(params.0),
        Err(e) => {
            black_box(e.into_response());
        }
    }
}

/// What the Voicebot socket does with a text frame.
fn voicebot(input: &[u8]) {
    let Ok(event) = serde_json::from_slice::<VoicebotEvent>(input) else { return };
    match event {
        VoicebotEvent::Start { start, .. } => {
            black_box(json!({"stream_sid": start.stream_sid, "custom_parameters": start.custom_parameters,
                             "media_format": start.media_format}));
        }
        VoicebotEvent::Media { media, .. } => {
            black_box((media.payload.len() as u64 * 3) / 4);
        }
        VoicebotEvent::Dtmf { dtmf, .. } => {
            black_box(String::new() + &dtmf.digit);
        }
        VoicebotEvent::Stop { stop, .. } => {
            black_box(stop.and_then(|s| s.reason));
        }
        VoicebotEvent::Connected | VoicebotEvent::Mark { .. } => {}
    }
}

/// A Jupiter webhook as the route reads it: the event path, the signature,
/// timestamp and event-id headers, the body; then the jobs it would enqueue.
fn jupiter_webhook(input: &[u8]) {
    let [path, signature_header, timestamp_header, event_id_header, body] = split(input);
    let event = WebhookEvent::from_path(&String::from_utf8_lossy(path)).unwrap_or(WebhookEvent::OrderNew);
    let headers = signature::SignedHeaders {
        signature: std::str::from_utf8(signature_header).ok(),
        timestamp: std::str::from_utf8(timestamp_header).ok(),
        event_id: std::str::from_utf8(event_id_header).ok(),
    };
    for require_timestamp in [false, true] {
        black_box(signature::verify(SECRET, headers, body, now(), require_timestamp).ok());
    }
    let Ok((payload, order_id)) = jupiter_body(body) else { return };
    let id = order_id.as_str();
    for action in event.actions() {
        black_box(action.job(event, id, &payload));
    }
    black_box(resolve::payload(event, id, &payload, "jupiter:sha256:00"));
    black_box(mask_json(payload));
}

/// A WhatsApp webhook as the route reads it: the signature header, the
/// subscription handshake's query (as axum's `Query` decodes it), the body.
fn whatsapp_webhook(input: &[u8]) {
    let [signature_header, handshake, body] = split(input);
    black_box(verify_signature(SECRET, body, std::str::from_utf8(signature_header).ok()));
    if let Ok(q) = serde_urlencoded::from_bytes::<Handshake>(handshake) {
        black_box(verify_subscription(q.mode.as_deref(), q.token.as_deref(), q.challenge.as_deref(), VERIFY_TOKEN));
    }
    let Ok(events) = parse_webhook(body) else { return };
    for event in events {
        match event {
            WhatsAppEvent::ButtonReply { from, payload, text, .. } => {
                black_box(parse_button(&payload));
                black_box((from.masked(), text));
            }
            WhatsAppEvent::Text { from, body, .. } => {
                black_box((from.masked(), body.chars().count()));
            }
            WhatsAppEvent::Status { recipient, status, errors, .. } => {
                black_box((recipient.map(|r| r.masked()), status.as_str(), errors));
            }
        }
    }
}

/// Every parser of a single value that arrives in a field.
fn core_values(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    if let Ok(phone) = E164::parse(&text) {
        black_box((phone.national(), phone.masked()));
    }
    black_box(OrderId::parse(&text).is_ok());
    black_box(mask_phone_numbers(&text));
    black_box(Language::from_str(&text).is_ok());
    black_box(LadderKind::from_str(&text).is_ok());
    black_box(StopAction::from_str(&text).is_ok());
    black_box((Channel::parse(&text), LadderState::parse(&text), StepState::parse(&text)));
    black_box(clean_digits(&text));
    black_box(parse_button(&text));
    for (flow, step) in [("vendor_new_order", "menu"), ("rider_assignment", "menu"), ("address_update", "menu")] {
        if let Some(menu) = Menu::at(flow, step) {
            black_box(interpret(menu, Some(&text)));
        }
    }
    black_box(Menu::at(&text, &text));
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
struct ProbeItem {
    name: String,
    price: u32,
}

/// A body shaped like the API's: typed ids and numbers, nested lists.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
struct ProbeBody {
    order_id: OrderId,
    vendor_phone: Option<E164>,
    #[serde(default)]
    items: Vec<ProbeItem>,
    amount: Option<f64>,
    language: Option<Language>,
    context: Option<serde_json::Map<String, Value>>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
struct ProbeForm {
    order_id: OrderId,
    vendor_phone: Option<E164>,
    price: Option<u32>,
}

/// The API's body extractors' parsing and their field-naming errors.
fn api_body(input: &[u8]) {
    if let Err(e) = parse_json::<ProbeBody>(input) {
        black_box(e.into_response());
    }
    if let Err(e) = parse_form::<ProbeForm>(input) {
        black_box(e.into_response());
    }
}

/// An IST timestamp in either of Exotel's forms, with fields in and out of
/// range.
fn timestamp(g: &mut Gen) -> Vec<u8> {
    let year = match g.below(5) {
        0 => g.number().to_string(),
        1 => format!("{:+}", g.number() % 300_000),
        // The edges of chrono's range and of four-digit years.
        2 => g
            .pick(&["-262143", "-262144", "+262142", "+262143", "262143", "0000", "-0001", "9999", "10000"])
            .to_string(),
        _ => (1960 + g.below(100)).to_string(),
    };
    let field = |g: &mut Gen, max: usize| match g.below(10) {
        0..=3 => [0, 1, max - 2, max - 1][g.below(4)],
        9 => g.below(100_000),
        _ => g.below(max),
    };
    let (month, day, hour, minute, second) = (field(g, 13), field(g, 32), field(g, 25), field(g, 61), field(g, 62));
    let text = if g.chance(0.6) {
        format!("{year}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}")
    } else {
        let weekday = g.pick(&["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Xyz", ""]);
        let name = g.pick(&["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "J"]);
        format!("{weekday}, {day} {name} {year} {hour:02}:{minute:02}:{second:02}")
    };
    text.into_bytes()
}

/// A Voicebot event: one of the event names, then fields of every event.
fn voicebot_event(g: &mut Gen) -> Vec<u8> {
    let body = g.json(generate::VOICEBOT_KEYS);
    let event = generate::quoted(g.pick(generate::VOICEBOT_EVENTS));
    match body.strip_prefix(b"{") {
        Some(rest) if rest != b"}" => [format!("{{\"event\":{event},").as_bytes(), rest].concat(),
        Some(_) => format!("{{\"event\":{event}}}").into_bytes(),
        None => body,
    }
}

/// `endpoint \n status \n retry-after \n body`: a provider's answer to
/// one of our requests (the endpoint's first byte picks which answer
/// parser reads a 2xx body).
fn answer_frame(g: &mut Gen, seeds: &[&str], keys: &[&str]) -> Vec<u8> {
    let endpoint = g.below(256) as u8;
    let status =
        g.pick(&["200", "200", "201", "400", "401", "404", "408", "429", "500", "502", "503", "504", "99", "x"]);
    let retry_after = if g.chance(0.7) { g.pick(seeds::RETRY_AFTER).to_string() } else { g.value() };
    let body = g.input(seeds, keys, |g| g.json(keys));
    let head = [&[endpoint][..], format!("\n{status}\n{}\n", retry_after.replace('\n', " ")).as_bytes()].concat();
    [head, body].concat()
}

/// `path \n X-Jupiter-Signature \n X-Jupiter-Timestamp \n X-Jupiter-Event-Id
/// \n body`, signed correctly half of the time.
fn jupiter_request(g: &mut Gen) -> Vec<u8> {
    let event = WebhookEvent::ALL[g.below(WebhookEvent::ALL.len())];
    let path = if g.chance(0.9) { event.path().to_string() } else { g.value().replace('\n', " ") };
    let body = g.input(seeds::JUPITER_WEBHOOKS, generate::JUPITER_KEYS, |g| g.json(generate::JUPITER_KEYS));
    let timestamp = match g.below(4) {
        0 => None,
        1 => Some(now().timestamp() + g.below(600) as i64 - 300),
        2 => Some(g.number()),
        _ => Some(now().timestamp()),
    };
    let event_id = match g.below(4) {
        0 => None,
        1 => Some(g.value().replace('\n', " ")),
        _ => Some(format!("evt_{}", g.number())),
    };
    let signed_id = if g.chance(0.7) { event_id.as_deref() } else { None };
    let signature = match g.below(4) {
        0 | 1 => signature::sign(SECRET, timestamp, signed_id, &body),
        2 => format!("sha256={}", signature::sign(SECRET, timestamp, signed_id, &body)),
        _ => g.value().replace('\n', " "),
    };
    let timestamp_header = match timestamp {
        Some(ts) if g.chance(0.9) => ts.to_string(),
        _ => g.value().replace('\n', " "),
    };
    let event_id = event_id.unwrap_or_default();
    let frame = [format!("{path}\n{signature}\n{timestamp_header}\n{event_id}\n").as_bytes(), &body].concat();
    if g.chance(0.1) { g.mutate(&frame, generate::JUPITER_KEYS, &[]) } else { frame }
}

/// `X-Hub-Signature-256 \n handshake query \n body`, signed correctly
/// half of the time.
fn whatsapp_request(g: &mut Gen) -> Vec<u8> {
    let body = g.input(seeds::WHATSAPP_WEBHOOKS, generate::WHATSAPP_KEYS, |g| g.json(generate::WHATSAPP_KEYS));
    let signature = if g.chance(0.5) {
        mangwale_providers::whatsapp::signature_header(SECRET, &body)
    } else {
        g.value().replace('\n', " ")
    };
    let handshake = if g.chance(0.5) {
        format!("hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge={}", g.value())
    } else {
        String::from_utf8_lossy(&g.urlencoded(&["hub.mode", "hub.verify_token", "hub.challenge"])).into_owned()
    };
    let frame = [format!("{}\n{}\n", signature, handshake.replace('\n', " ")).as_bytes(), &body].concat();
    if g.chance(0.1) { g.mutate(&frame, generate::WHATSAPP_KEYS, &[]) } else { frame }
}
