//! Routing and handlers of the Exotel v1 REST API.

use chrono::DateTime;
use chrono::Utc;
use http::Method;
use mangwale_core::E164;

use super::Inner;
use super::calls::call_document;
use super::faults::Endpoint;
use super::form::{ApiError, Form, percent_decode};
use super::payload::{Payload, xml_document};
use super::sms::sms_document;
use crate::clock::{format_ist, lock};

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// `None`: not under `/v1/Accounts/`.
    pub account: Option<String>,
    pub endpoint: Option<Endpoint>,
    /// The path ends in `.json`.
    pub json: bool,
    /// The CallSid, SmsSid or number in the path.
    pub arg: Option<String>,
}

/// Only the endpoints Exotel documents are served; any other path under an
/// account (`GET /v1/Accounts/{sid}` among them: Exotel documents no such
/// resource) is a 404, so a client that strays from the documentation fails
/// its tests.
pub(crate) fn route(path: &str) -> Route {
    let json = path.trim_end_matches('/').ends_with(".json");
    if let Some(rest) = path.strip_prefix("/v2_beta/Accounts/") {
        // "List all ExoPhones" (developer.exotel.com/api/exophone-details):
        // JSON only, no `.json` suffix.
        let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        let endpoint = matches!(segments[1..], ["IncomingPhoneNumbers"]).then_some(Endpoint::ExoPhones);
        return Route { account: Some(segments[0].to_string()), endpoint, json: true, arg: None };
    }
    let Some(rest) = path.strip_prefix("/v1/Accounts/") else {
        return Route { account: None, endpoint: None, json, arg: None };
    };
    let mut segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    if let Some(last) = segments.last_mut() {
        *last = last.strip_suffix(".json").unwrap_or(last);
    }
    let account = Some(segments[0].to_string());
    let arg = |s: &str| Some(percent_decode(s));
    let (endpoint, arg) = match segments[1..] {
        ["Calls", "connect"] => (Some(Endpoint::CallsConnect), None),
        ["Calls", sid] if !sid.is_empty() => (Some(Endpoint::CallDetails), arg(sid)),
        ["Sms" | "SMS", "send"] => (Some(Endpoint::SmsSend), None),
        ["Sms" | "SMS", "bulksend"] => (Some(Endpoint::SmsBulkSend), None),
        ["Sms" | "SMS", "Messages", sid] if !sid.is_empty() => (Some(Endpoint::SmsDetails), arg(sid)),
        ["Numbers", number] if !number.is_empty() => (Some(Endpoint::Numbers), arg(number)),
        _ => (None, None),
    };
    Route { account, endpoint, json, arg }
}

/// An answer: one document, or a JSON array of them.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub docs: Vec<Payload>,
    pub array: bool,
}

impl Reply {
    pub(crate) fn one(status: u16, doc: Payload) -> Self {
        Reply { status, docs: vec![doc], array: false }
    }

    pub(crate) fn error(e: &ApiError) -> Self {
        Reply::one(e.status, e.payload())
    }

    /// Content type and body.
    pub(crate) fn render(&self, json: bool) -> (&'static str, String) {
        if !json {
            return ("application/xml", xml_document(&self.docs));
        }
        let body = if self.array {
            let items: Vec<String> = self.docs.iter().map(Payload::to_json_string).collect();
            format!("[{}]", items.join(","))
        } else {
            self.docs.first().map(Payload::to_json_string).unwrap_or_else(|| "{}".to_string())
        };
        ("application/json", body)
    }
}

/// A parsed API request.
pub(crate) struct ApiRequest<'a> {
    pub method: &'a Method,
    pub route: &'a Route,
    pub auth: Option<&'a (String, String)>,
    pub form: &'a Result<Form, String>,
    pub query: &'a [(String, String)],
}

fn not_found() -> ApiError {
    ApiError::new(404, "The requested resource was not found")
}

pub(crate) fn dispatch(inner: &Inner, req: &ApiRequest<'_>, now: DateTime<Utc>) -> Reply {
    let cfg = &inner.config;
    let Some(account) = &req.route.account else { return Reply::error(&not_found()) };
    let authorised = req.auth.is_some_and(|(user, pass)| *user == cfg.api_key && *pass == cfg.api_token);
    if !authorised || *account != cfg.account_sid {
        return Reply::error(&ApiError::unauthorized());
    }
    let Some(endpoint) = req.route.endpoint else { return Reply::error(&not_found()) };
    let expected = match endpoint {
        Endpoint::CallsConnect | Endpoint::SmsSend | Endpoint::SmsBulkSend => Method::POST,
        _ => Method::GET,
    };
    if *req.method != expected {
        return Reply::error(&ApiError::new(405, format!("Method {} not allowed", req.method)));
    }
    let form = match req.form {
        Ok(form) => form,
        Err(message) => return Reply::error(&ApiError::bad_request(message.clone())),
    };
    let json = req.route.json;
    let details = req.query.iter().any(|(k, v)| k == "details" && v.eq_ignore_ascii_case("true"));
    let arg = req.route.arg.as_deref().unwrap_or_default();
    let mut st = lock(&inner.state);
    if endpoint.is_voice() && !st.voice_rate.try_acquire(now, cfg.voice_rate_limit_per_minute) {
        return Reply::error(&ApiError::new(
            429,
            format!("Too many requests: at most {} voice API requests per minute", cfg.voice_rate_limit_per_minute),
        ));
    }
    if endpoint.is_sms_send()
        && let Some(limit) = cfg.sms_rate_limit_per_minute
        && !st.sms_rate.try_acquire(now, limit)
    {
        return Reply::error(&ApiError::new(503, "Throttle exceeded").with_code(40405));
    }
    let result = match endpoint {
        Endpoint::ExoPhones => Ok(Reply::one(200, exophones_document(inner))),
        Endpoint::Numbers => number_document(inner, arg).map(|doc| Reply::one(200, doc)),
        Endpoint::CallsConnect => st.connect(cfg, form, now).map(|sid| {
            let call = st.call(&sid).map(|c| call_document(c, cfg, now, json, details)).unwrap_or_default();
            Reply::one(200, call)
        }),
        Endpoint::CallDetails => {
            st.call(arg).map(|c| Reply::one(200, call_document(c, cfg, now, json, details))).ok_or_else(not_found)
        }
        Endpoint::SmsSend => st.send_sms(cfg, form, now).map(|sids| {
            let docs: Vec<Payload> =
                sids.iter().filter_map(|sid| st.sms_message(sid)).map(|m| sms_document(m, cfg, json)).collect();
            Reply { status: 200, array: docs.len() > 1, docs }
        }),
        Endpoint::SmsBulkSend => st.bulk_send_sms(cfg, form, now).map(|results| {
            let all_ok = results.iter().all(Result::is_ok);
            let docs = results
                .iter()
                .map(|r| match r {
                    Ok(sid) => st.sms_message(sid).map(|m| sms_document(m, cfg, json)).unwrap_or_default(),
                    Err(e) => e.payload(),
                })
                .collect();
            Reply { status: if all_ok { 200 } else { 207 }, docs, array: true }
        }),
        Endpoint::SmsDetails => {
            st.sms_message(arg).map(|m| Reply::one(200, sms_document(m, cfg, json))).ok_or_else(not_found)
        }
        Endpoint::Any | Endpoint::Recordings => Err(not_found()),
    };
    result.unwrap_or_else(|e| Reply::error(&e))
}

/// The one page of "List all ExoPhones": the configured ExoPhones.
fn exophones_document(inner: &Inner) -> Payload {
    let cfg = &inner.config;
    let uri = format!("/v2_beta/Accounts/{}/IncomingPhoneNumbers?Page=0&PageSize=50", cfg.account_sid);
    let numbers = cfg
        .exophones
        .iter()
        .map(|n| {
            Payload::new()
                .str("sid", n.national())
                .str("friendly_name", format!("{} {}", cfg.friendly_name, n.national()))
                .str("phone_number", n.as_str())
                .str("date_created", format_ist(inner.started_at))
        })
        .collect();
    Payload::new()
        .int("page", 0)
        .int("page_size", 50)
        .str("uri", uri.clone())
        .str("first_page_uri", uri)
        .null("next_page_uri")
        .null("previous_page_uri")
        .list("incoming_phone_numbers", numbers)
}

/// Telecom circles and operators handed out deterministically per number.
const CIRCLES: [(&str, &str); 6] = [
    ("MH", "Maharashtra"),
    ("MU", "Mumbai"),
    ("KA", "Karnataka"),
    ("DL", "Delhi"),
    ("TN", "Tamil Nadu"),
    ("UE", "Uttar Pradesh (East)"),
];
const OPERATORS: [(&str, &str); 4] = [("A", "Airtel"), ("R", "Reliance Jio"), ("V", "Vodafone Idea"), ("B", "BSNL")];

fn number_document(inner: &Inner, raw: &str) -> Result<Payload, ApiError> {
    let number = E164::parse(raw).map_err(|e| ApiError::bad_request(format!("Invalid number '{raw}': {}", e.0)))?;
    let digits: u64 = number.as_str().bytes().filter(u8::is_ascii_digit).map(|b| u64::from(b - b'0')).sum();
    let national = number.as_str().strip_prefix("+91");
    let mobile =
        national.is_some_and(|n| n.starts_with(['6', '7', '8', '9'])) && !inner.config.exophones.contains(&number);
    let (circle, circle_name) = CIRCLES[(digits % CIRCLES.len() as u64) as usize];
    let (operator, operator_name) = OPERATORS[(digits / 3 % OPERATORS.len() as u64) as usize];
    let dnd = inner.config.dnd_numbers.contains(&number);
    Ok(Payload::new().obj(
        "Numbers",
        Payload::new()
            .str("PhoneNumber", number.as_str())
            .str("Circle", circle)
            .str("CircleName", circle_name)
            .str("Type", if mobile { "Mobile" } else { "Landline" })
            .str("Operator", operator)
            .str("OperatorName", operator_name)
            .str("DND", if dnd { "Yes" } else { "No" }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = route("/v1/Accounts/acme/Calls/connect.json");
        assert_eq!((r.account.as_deref(), r.endpoint, r.json), (Some("acme"), Some(Endpoint::CallsConnect), true));
        let r = route("/v1/Accounts/acme/Calls/abc");
        assert_eq!((r.endpoint, r.json, r.arg.as_deref()), (Some(Endpoint::CallDetails), false, Some("abc")));
        assert_eq!(route("/v1/Accounts/acme/SMS/Messages/x.json").endpoint, Some(Endpoint::SmsDetails));
        assert_eq!(route("/v1/Accounts/acme/Sms/Messages/x").endpoint, Some(Endpoint::SmsDetails));
        assert_eq!(route("/v1/Accounts/acme.json").endpoint, None, "not a documented resource");
        let r = route("/v2_beta/Accounts/acme/IncomingPhoneNumbers");
        assert_eq!((r.account.as_deref(), r.endpoint, r.json), (Some("acme"), Some(Endpoint::ExoPhones), true));
        assert_eq!(route("/v2_beta/Accounts/acme/Other").endpoint, None);
        assert_eq!(route("/v1/Accounts/acme/Numbers/%2B919876543210.json").arg.as_deref(), Some("+919876543210"));
        assert_eq!(route("/v1/Accounts/acme/Nope").endpoint, None);
        assert_eq!(route("/elsewhere").account, None);
    }
}
