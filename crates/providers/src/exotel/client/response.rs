//! Typed responses, parsed leniently: numbers may arrive as strings or
//! numbers, unknown times as `null`, unknown fields are ignored. Only what we
//! cannot work without (a sid, the DND flag of a number look-up) is required.

use chrono::{DateTime, Utc};
use mangwale_core::E164;
use serde::Serialize;
use serde_json::{Map, Value};

use super::error::scalar_text;
use crate::exotel::inbound::{CallStatus, Direction, SmsStatus};
use crate::exotel::time::parse_ist;

/// A call, as `Calls/connect` and `Calls/{sid}` return it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    pub sid: String,
    pub parent_call_sid: Option<String>,
    pub account_sid: Option<String>,
    /// Normally `in-progress` (sometimes `queued`) right after `connect`.
    /// A missing status is `Other("")`.
    pub status: CallStatus,
    /// Unparsable numbers (SIP URIs, withheld ids) are `None`.
    pub from: Option<E164>,
    pub to: Option<E164>,
    /// The ExoPhone, as Exotel writes it (`08047112233`).
    pub phone_number_sid: Option<String>,
    pub direction: Option<Direction>,
    pub date_created: Option<DateTime<Utc>>,
    pub date_updated: Option<DateTime<Utc>>,
    pub start_time: Option<DateTime<Utc>>,
    /// Filled asynchronously, minutes after hang-up.
    pub end_time: Option<DateTime<Utc>>,
    /// Seconds; filled asynchronously, minutes after hang-up.
    pub duration: Option<u32>,
    /// Decimal text as Exotel sent it (`"1.500"`), to avoid float rounding;
    /// filled asynchronously.
    pub price: Option<String>,
    pub answered_by: Option<String>,
    pub recording_url: Option<String>,
    /// Present when asked for with `details=true`.
    pub details: Option<CallLegDetails>,
}

/// The `Details` block of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallLegDetails {
    /// Seconds both legs were connected.
    pub conversation_duration: Option<u32>,
    pub leg1_status: Option<CallStatus>,
    pub leg2_status: Option<CallStatus>,
    pub legs: Vec<CallLeg>,
}

/// One entry of `Details.Legs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallLeg {
    pub id: Option<u32>,
    pub on_call_duration: Option<u32>,
    pub status: Option<CallStatus>,
}

/// An SMS, as `Sms/send` returns it. `200` means accepted, not delivered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmsMessage {
    pub sid: String,
    pub account_sid: Option<String>,
    /// A missing status is `Other("")`.
    pub status: SmsStatus,
    /// `PENDING_TO_OPERATOR`, `DELIVERED_TO_HANDSET`, …
    pub detailed_status: Option<String>,
    /// `21010`, `20005`, …
    pub detailed_status_code: Option<u32>,
    /// As echoed, often `<ExoPhone>/<SENDERID>`.
    pub from: Option<String>,
    pub to: Option<E164>,
    pub body: Option<String>,
    pub direction: Option<Direction>,
    pub date_created: Option<DateTime<Utc>>,
    pub date_updated: Option<DateTime<Utc>>,
    pub date_sent: Option<DateTime<Utc>>,
    pub price: Option<String>,
    pub sms_units: Option<u32>,
}

/// A per-message failure of `Sms/bulksend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BulkItemError {
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: String,
}

/// The result of one message of `Sms/bulksend`, in Exotel's answer order
/// (the order of the request's messages).
pub type BulkSmsResult = Result<SmsMessage, BulkItemError>;

/// One ExoPhone of the account, from the documented "List all ExoPhones"
/// API (`GET /v2_beta/Accounts/{sid}/IncomingPhoneNumbers`,
/// developer.exotel.com/api/exophone-details; JSON only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExoPhone {
    /// The number's unique identifier.
    pub sid: String,
    pub phone_number: Option<E164>,
    pub friendly_name: Option<String>,
}

/// One page of the account's ExoPhones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExoPhones {
    pub numbers: Vec<ExoPhone>,
    /// Another page follows (`next_page_uri` is set).
    pub more: bool,
}

/// Operator, circle and DND status of a number
/// (`GET /v1/Accounts/{sid}/Numbers/{number}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NumberMetadata {
    pub phone_number: Option<E164>,
    pub circle: Option<String>,
    pub circle_name: Option<String>,
    /// `Type`: `Mobile`, `Landline`, …
    pub number_type: Option<String>,
    pub operator: Option<String>,
    pub operator_name: Option<String>,
    /// On the NCPR (Do-Not-Disturb) registry.
    pub dnd: bool,
}

/// Lenient field access on a JSON object.
struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    fn text(&self, key: &str) -> Option<String> {
        self.0.get(key).and_then(scalar_text).filter(|s| s != "null")
    }

    fn number(&self, key: &str) -> Option<u32> {
        match self.0.get(key)? {
            Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()).or_else(|| float_to_u32(n.as_f64()?)),
            Value::String(s) => s.trim().parse().ok().or_else(|| float_to_u32(s.trim().parse().ok()?)),
            _ => None,
        }
    }

    fn time(&self, key: &str) -> Option<DateTime<Utc>> {
        self.text(key).and_then(|t| parse_ist(&t))
    }

    fn phone(&self, key: &str) -> Option<E164> {
        self.text(key).and_then(|t| E164::parse(&t).ok())
    }

    fn object(&self, key: &str) -> Option<Fields<'a>> {
        self.0.get(key).and_then(Value::as_object).map(Fields)
    }
}

fn float_to_u32(f: f64) -> Option<u32> {
    (f.is_finite() && f >= 0.0 && f <= f64::from(u32::MAX)).then(|| f.round() as u32)
}

fn parse_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("response is not JSON: {e}"))
}

/// The object under `envelope`, or the root itself when it already looks like
/// the inner object (has a `Sid`).
fn envelope<'a>(root: &'a Value, envelope: &str) -> Result<Fields<'a>, String> {
    let object = root.as_object().ok_or("response is not a JSON object")?;
    match object.get(envelope) {
        Some(Value::Object(inner)) => Ok(Fields(inner)),
        Some(Value::Array(items)) => {
            items.iter().find_map(Value::as_object).map(Fields).ok_or_else(|| format!("{envelope} is empty"))
        }
        _ if object.contains_key("Sid") => Ok(Fields(object)),
        _ => Err(format!("response has no {envelope}")),
    }
}

fn required_sid(fields: &Fields<'_>, what: &str) -> Result<String, String> {
    fields.text("Sid").ok_or_else(|| format!("{what} has no Sid"))
}

pub(crate) fn parse_call(body: &[u8]) -> Result<Call, String> {
    let root = parse_json(body)?;
    call_from(&envelope(&root, "Call")?)
}

fn call_from(f: &Fields<'_>) -> Result<Call, String> {
    Ok(Call {
        sid: required_sid(f, "Call")?,
        parent_call_sid: f.text("ParentCallSid"),
        account_sid: f.text("AccountSid"),
        status: f.text("Status").map(|s| CallStatus::parse(&s)).unwrap_or(CallStatus::Other(String::new())),
        from: f.phone("From"),
        to: f.phone("To"),
        phone_number_sid: f.text("PhoneNumberSid"),
        direction: f.text("Direction").map(|d| Direction::parse(&d)),
        date_created: f.time("DateCreated"),
        date_updated: f.time("DateUpdated"),
        start_time: f.time("StartTime"),
        end_time: f.time("EndTime"),
        duration: f.number("Duration"),
        price: f.text("Price"),
        answered_by: f.text("AnsweredBy"),
        recording_url: f.text("RecordingUrl"),
        details: f.object("Details").map(|d| details_from(&d)),
    })
}

fn details_from(f: &Fields<'_>) -> CallLegDetails {
    let legs =
        f.0.get("Legs")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_object)
                    .map(|item| {
                        let leg = Fields(item);
                        let leg = leg.object("Leg").unwrap_or(leg);
                        CallLeg {
                            id: leg.number("Id"),
                            on_call_duration: leg.number("OnCallDuration"),
                            status: leg.text("Status").map(|s| CallStatus::parse(&s)),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
    CallLegDetails {
        conversation_duration: f.number("ConversationDuration"),
        leg1_status: f.text("Leg1Status").map(|s| CallStatus::parse(&s)),
        leg2_status: f.text("Leg2Status").map(|s| CallStatus::parse(&s)),
        legs,
    }
}

pub(crate) fn parse_sms(body: &[u8]) -> Result<SmsMessage, String> {
    let root = parse_json(body)?;
    sms_from(&envelope(&root, "SMSMessage")?)
}

fn sms_from(f: &Fields<'_>) -> Result<SmsMessage, String> {
    Ok(SmsMessage {
        sid: required_sid(f, "SMSMessage")?,
        account_sid: f.text("AccountSid"),
        status: f.text("Status").map(|s| SmsStatus::parse(&s)).unwrap_or(SmsStatus::Other(String::new())),
        detailed_status: f.text("DetailedStatus"),
        detailed_status_code: f.number("DetailedStatusCode"),
        from: f.text("From"),
        to: f.phone("To"),
        body: f.text("Body"),
        direction: f.text("Direction").map(|d| Direction::parse(&d)),
        date_created: f.time("DateCreated"),
        date_updated: f.time("DateUpdated"),
        date_sent: f.time("DateSent"),
        price: f.text("Price"),
        sms_units: f.number("SmsUnits"),
    })
}

/// A JSON array of `{"SMSMessage": …}` items, some of which may be errors.
/// A single object (one message, or an envelope holding the array) is
/// accepted too.
pub(crate) fn parse_bulk(body: &[u8]) -> Result<Vec<BulkSmsResult>, String> {
    let root = parse_json(body)?;
    let items: Vec<&Value> = match &root {
        Value::Array(items) => items.iter().collect(),
        Value::Object(object) => match object.get("SMSMessage") {
            Some(Value::Array(items)) => items.iter().collect(),
            _ => vec![&root],
        },
        _ => return Err("response is neither a JSON array nor an object".to_string()),
    };
    Ok(items.into_iter().map(bulk_item).collect())
}

fn bulk_item(item: &Value) -> BulkSmsResult {
    let Some(object) = item.as_object() else {
        return Err(BulkItemError { status: None, code: None, message: format!("unexpected item: {item}") });
    };
    let fields = Fields(object);
    let error_fields = fields.object("RestException").unwrap_or(Fields(object));
    let message_ok = fields.object("SMSMessage").map(|m| sms_from(&m));
    match message_ok {
        Some(Ok(message)) => Ok(message),
        Some(Err(_)) | None => {
            let message = error_fields
                .text("Message")
                .or_else(|| fields.object("SMSMessage").and_then(|m| m.text("DetailedStatus")))
                .unwrap_or_else(|| "message not accepted".to_string());
            Err(BulkItemError {
                status: error_fields.number("Status").and_then(|s| u16::try_from(s).ok()),
                code: error_fields.text("Code"),
                message: mangwale_core::mask_phone_numbers(&message).into_owned(),
            })
        }
    }
}

/// `{"page", "page_size", …, "next_page_uri", "incoming_phone_numbers": [{"sid", …}]}`.
pub(crate) fn parse_exophones(body: &[u8]) -> Result<ExoPhones, String> {
    let root = parse_json(body)?;
    let items = root
        .get("incoming_phone_numbers")
        .and_then(Value::as_array)
        .ok_or("response has no incoming_phone_numbers list")?;
    let numbers = items
        .iter()
        .map(|item| {
            let f = Fields(item.as_object().ok_or("an ExoPhone is not a JSON object")?);
            let sid = f.text("sid").filter(|s| !s.trim().is_empty()).ok_or("an ExoPhone has no sid")?;
            Ok(ExoPhone { sid, phone_number: f.phone("phone_number"), friendly_name: f.text("friendly_name") })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let more = Fields(root.as_object().ok_or("response is not a JSON object")?).text("next_page_uri").is_some();
    Ok(ExoPhones { numbers, more })
}

/// `{"Numbers": {"PhoneNumber", "Circle", …, "DND": "Yes|No"}}`.
pub(crate) fn parse_number(body: &[u8]) -> Result<NumberMetadata, String> {
    let root = parse_json(body)?;
    let object = root.as_object().ok_or("response is not a JSON object")?;
    let f = ["Numbers", "Number"]
        .iter()
        .find_map(|key| match object.get(*key) {
            Some(Value::Object(inner)) => Some(Fields(inner)),
            Some(Value::Array(items)) => items.iter().find_map(Value::as_object).map(Fields),
            _ => None,
        })
        .ok_or("response has no Numbers")?;
    let dnd = match f.text("DND").map(|d| d.to_ascii_lowercase()).as_deref() {
        Some("yes" | "true" | "1" | "y") => true,
        Some("no" | "false" | "0" | "n") => false,
        Some(other) => return Err(format!("unexpected DND value {other:?}")),
        None => return Err("response has no DND flag".to_string()),
    };
    Ok(NumberMetadata {
        phone_number: f.phone("PhoneNumber"),
        circle: f.text("Circle"),
        circle_name: f.text("CircleName"),
        number_type: f.text("Type"),
        operator: f.text("Operator"),
        operator_name: f.text("OperatorName"),
        dnd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// exotel-wire.md §1.3.
    const CONNECT_RESPONSE: &str = r#"{"Call": {
      "Sid": "c5797dcbaaeed7678c4062a4a3ed2f8a", "ParentCallSid": null,
      "DateCreated": "2024-03-03 10:48:33", "DateUpdated": "2024-03-03 10:48:33",
      "AccountSid": "acme1", "To": "09123456789", "From": "09876543210",
      "PhoneNumberSid": "08047112233", "Status": "in-progress",
      "StartTime": "2024-03-03 10:48:33", "EndTime": null, "Duration": null, "Price": null,
      "Direction": "outbound-api", "AnsweredBy": null, "ForwardedFrom": null, "CallerName": null,
      "Uri": "/v1/Accounts/acme1/Calls/c5797dcbaaeed7678c4062a4a3ed2f8a.json", "RecordingUrl": null
    }}"#;

    #[test]
    fn parses_the_documented_connect_response() {
        let call = parse_call(CONNECT_RESPONSE.as_bytes()).unwrap();
        assert_eq!(call.sid, "c5797dcbaaeed7678c4062a4a3ed2f8a");
        assert_eq!(call.status, CallStatus::InProgress);
        assert_eq!(call.from.unwrap().as_str(), "+919876543210");
        assert_eq!(call.to.unwrap().as_str(), "+919123456789");
        assert_eq!(call.phone_number_sid.as_deref(), Some("08047112233"));
        assert_eq!(call.direction, Some(Direction::OutboundApi));
        assert_eq!(call.start_time.unwrap().to_rfc3339(), "2024-03-03T05:18:33+00:00");
        assert_eq!((call.end_time, call.duration, call.price, call.parent_call_sid), (None, None, None, None));
        assert_eq!(call.details, None);
    }

    #[test]
    fn parses_details_with_strings_numbers_and_wrapped_legs() {
        let body = r#"{"Call": {"Sid": "abc", "Status": "completed", "Duration": "17", "Price": "1.500",
            "EndTime": "2024-03-03 10:49:00", "Details": {"ConversationDuration": 8, "Leg1Status": "completed",
            "Leg2Status": "no-answer", "Legs": [{"Leg": {"Id": 1, "OnCallDuration": 21}}, {"Id": "2", "OnCallDuration": "8.0"}]}}}"#;
        let call = parse_call(body.as_bytes()).unwrap();
        assert_eq!((call.duration, call.price.as_deref()), (Some(17), Some("1.500")));
        let details = call.details.unwrap();
        assert_eq!(details.conversation_duration, Some(8));
        assert_eq!(details.leg2_status, Some(CallStatus::NoAnswer));
        assert_eq!(details.legs[0], CallLeg { id: Some(1), on_call_duration: Some(21), status: None });
        assert_eq!(details.legs[1], CallLeg { id: Some(2), on_call_duration: Some(8), status: None });
    }

    #[test]
    fn a_call_without_sid_is_an_error() {
        assert!(parse_call(br#"{"Call": {"Status": "queued"}}"#).is_err());
        assert!(parse_call(b"<html></html>").is_err());
    }

    #[test]
    fn parses_the_documented_sms_response() {
        let body = r#"{"SMSMessage": {"Sid":"6dbfdc50133d0e51ec8d793356559868","AccountSid":"acme1",
          "From":"08047112233/ACMEIN","To":"09876543210","DateCreated":"2024-01-15 10:30:00",
          "DateUpdated":"2024-01-15 10:30:00","DateSent":null,"Body":"Your OTP is 123456 - ACME",
          "Direction":"outbound-api","Uri":"/v1/Accounts/acme1/SMS/Messages/6dbfdc50133d0e51ec8d793356559868.json",
          "ApiVersion":null,"Price":null,"Status":"queued","SmsUnits":null,
          "DetailedStatusCode":21010,"DetailedStatus":"PENDING_TO_OPERATOR"}}"#;
        let sms = parse_sms(body.as_bytes()).unwrap();
        assert_eq!(sms.sid, "6dbfdc50133d0e51ec8d793356559868");
        assert_eq!(sms.status, SmsStatus::Queued);
        assert_eq!(sms.detailed_status_code, Some(21010));
        assert_eq!(sms.detailed_status.as_deref(), Some("PENDING_TO_OPERATOR"));
        assert_eq!(sms.from.as_deref(), Some("08047112233/ACMEIN"));
        assert_eq!(sms.to.unwrap().as_str(), "+919876543210");
        assert_eq!((sms.date_sent, sms.sms_units), (None, None));
    }

    #[test]
    fn bulk_items_are_results() {
        let body = br#"[{"SMSMessage": {"Sid": "a1", "Status": "queued"}},
            {"RestException": {"Status": 400, "Code": 40203, "Message": "Invalid To 09876543210"}},
            {"SMSMessage": {"Status": "failed", "DetailedStatus": "FAILED_INVALID_DESTINATION_NUMBER"}}, 7]"#;
        let items = parse_bulk(body).unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!(items[0].as_ref().unwrap().sid, "a1");
        let error = items[1].as_ref().unwrap_err();
        assert_eq!((error.status, error.code.as_deref()), (Some(400), Some("40203")));
        assert_eq!(error.message, "Invalid To 098xxxxx210");
        assert_eq!(items[2].as_ref().unwrap_err().message, "FAILED_INVALID_DESTINATION_NUMBER");
        assert!(items[3].is_err());
        assert_eq!(parse_bulk(br#"{"SMSMessage": {"Sid": "one"}}"#).unwrap().len(), 1);
    }

    #[test]
    fn exophones_as_documented() {
        let body = br#"{"page": 0, "page_size": 50,
            "uri": "http://twilix.exotel.com/v2_beta/Accounts/Exotel/IncomingPhoneNumbers?Page=0&PageSize=50",
            "next_page_uri": null, "previous_page_uri": null,
            "incoming_phone_numbers": [{"sid": "011XXXXXXX1", "phone_number": "08047112233", "friendly_name": "New Order"},
                                       {"sid": "022XXXXXXX2"}]}"#;
        let list = parse_exophones(body).unwrap();
        assert_eq!(list.numbers.len(), 2);
        assert_eq!(list.numbers[0].phone_number.as_ref().unwrap().as_str(), "+918047112233");
        assert_eq!((list.numbers[1].sid.as_str(), list.more), ("022XXXXXXX2", false));
        assert!(parse_exophones(br#"{"Account": {"Sid": "acme1"}}"#).is_err());
        assert!(parse_exophones(br#"{"incoming_phone_numbers": [{"phone_number": "x"}]}"#).is_err());
        assert!(parse_exophones(br#"{"incoming_phone_numbers": [], "next_page_uri": "/x?Page=1"}"#).unwrap().more);
    }

    #[test]
    fn number_metadata() {
        let body = br#"{"Numbers": {"PhoneNumber": "09876543210", "Circle": "KA", "CircleName": "Karnataka",
            "Type": "Mobile", "Operator": "AT", "OperatorName": "Airtel", "DND": "Yes"}}"#;
        let n = parse_number(body).unwrap();
        assert!(n.dnd);
        assert_eq!(n.phone_number.unwrap().as_str(), "+919876543210");
        assert_eq!((n.circle_name.as_deref(), n.number_type.as_deref()), (Some("Karnataka"), Some("Mobile")));
        assert!(!parse_number(br#"{"Numbers": {"DND": "No"}}"#).unwrap().dnd);
        assert!(parse_number(br#"{"Numbers": {"PhoneNumber": "x"}}"#).is_err());
    }
}
