//! The client over real HTTP against small fake Exotel servers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use mangwale_core::E164;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

use super::*;
use crate::exotel::inbound::{CallStatus, CallbackEvent, SmsStatus};

/// `base64("key:token")`.
const BASIC_AUTH: &str = "Basic a2V5OnRva2Vu";

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

/// exotel-wire.md §2 (a completed call with `details=true`).
const DETAILS_RESPONSE: &str = r#"{"Call": {
  "Sid": "c5797dcbaaeed7678c4062a4a3ed2f8a", "ParentCallSid": null, "AccountSid": "acme1",
  "To": "09123456789", "From": "09876543210", "PhoneNumberSid": "08047112233", "Status": "completed",
  "StartTime": "2024-03-03 10:48:33", "EndTime": "2024-03-03 10:49:02", "Duration": "29", "Price": "1.500",
  "Direction": "outbound-api", "RecordingUrl": null, "SomethingNew": {"x": 1},
  "Details": {"ConversationDuration": 8, "Leg1Status": "completed", "Leg2Status": "completed",
              "Legs": [{"Leg": {"Id": 1, "OnCallDuration": 21}}, {"Leg": {"Id": 2, "OnCallDuration": 8}}]}
}}"#;

/// exotel-wire.md §6.1.
const SMS_RESPONSE: &str = r#"{"SMSMessage": {"Sid":"6dbfdc50133d0e51ec8d793356559868","AccountSid":"acme1",
  "From":"08047112233/ACMEIN","To":"09876543210","DateCreated":"2024-01-15 10:30:00",
  "DateUpdated":"2024-01-15 10:30:00","DateSent":null,"Body":"Your OTP is 123456 - ACME",
  "Direction":"outbound-api","Uri":"/v1/Accounts/acme1/SMS/Messages/6dbfdc50133d0e51ec8d793356559868.json",
  "ApiVersion":null,"Price":null,"Status":"queued","SmsUnits":null,
  "DetailedStatusCode":21010,"DetailedStatus":"PENDING_TO_OPERATOR"}}"#;

const UNAUTHORIZED: &str = r#"{"RestException": {"Status": 401, "Message": "Unauthorized; ", "Code": 34010}}"#;

/// A request as the fake saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    content_type: Option<String>,
    body: String,
}

/// A scripted answer.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    body: String,
    headers: Vec<(&'static str, String)>,
    delay: Duration,
}

impl Reply {
    fn new(status: u16, body: &str) -> Self {
        Reply { status, body: body.to_string(), headers: Vec::new(), delay: Duration::ZERO }
    }

    fn delayed(self, delay: Duration) -> Self {
        Reply { delay, ..self }
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
}

struct FakeState {
    seen: Mutex<Vec<Seen>>,
    /// Answers in order; the last one repeats.
    script: Mutex<VecDeque<Reply>>,
}

/// A fake Exotel on `127.0.0.1:0`.
struct Fake {
    base: String,
    state: Arc<FakeState>,
}

async fn fake_handler(
    State(state): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    state.seen.lock().unwrap().push(Seen {
        method,
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let reply = {
        let mut script = state.script.lock().unwrap();
        if script.len() > 1 { script.pop_front().unwrap() } else { script.front().unwrap().clone() }
    };
    tokio::time::sleep(reply.delay).await;
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    response.headers_mut().insert("content-type", "application/json".parse().unwrap());
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

impl Fake {
    async fn start(replies: Vec<Reply>) -> Fake {
        let state = Arc::new(FakeState { seen: Mutex::new(Vec::new()), script: Mutex::new(replies.into()) });
        let app = Router::new().fallback(fake_handler).with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fake { base, state }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

fn test_config(base: &str) -> ExotelClientConfig {
    let mut config = ExotelClientConfig::new(base, "acme1", "key", "token");
    config.retry = RetryPolicy { max_retries: 3, base: Duration::from_millis(5), cap: Duration::from_millis(50) };
    config.timeout = Duration::from_secs(5);
    config.query_timeout = Duration::from_secs(5);
    // The default pacing (one request per 300 ms) would only slow the tests down.
    config.voice_rate = RateLimit::per_minute(60_000).with_burst(100);
    config.sms_rate = RateLimit::per_minute(60_000).with_burst(100);
    config
}

fn client_with(config: ExotelClientConfig) -> (ExotelClient, Arc<MemoryRecorder>) {
    let recorder = Arc::new(MemoryRecorder::new());
    let client = ExotelClient::new(config, recorder.clone()).unwrap();
    (client, recorder)
}

fn client(base: &str) -> (ExotelClient, Arc<MemoryRecorder>) {
    client_with(test_config(base))
}

fn phone(s: &str) -> E164 {
    E164::parse(s).unwrap()
}

fn bridge() -> ConnectTwoNumbers {
    ConnectTwoNumbers {
        from: phone("09876543210"),
        to: phone("+919123456789"),
        wait_url: None,
        options: CallOptions::new(phone("08047112233")),
    }
}

fn full_bridge() -> ConnectTwoNumbers {
    let callback =
        StatusCallback::terminal_and_answered(Url::parse("https://app.example.in/exotel/status?token=S3CR3T").unwrap());
    ConnectTwoNumbers {
        wait_url: Some(Url::parse("https://cdn.example.in/wait.wav").unwrap()),
        options: CallOptions {
            time_limit: Some(1800),
            time_out: Some(30),
            record: Some(true),
            recording_channels: Some(RecordingChannels::Dual),
            custom_field: Some("order_4711".into()),
            status_callback: Some(callback),
            details: true,
            ..CallOptions::new(phone("08047112233"))
        },
        ..bridge()
    }
}

fn outcomes(recorder: &MemoryRecorder) -> Vec<(u32, &'static str, bool)> {
    recorder.records().iter().map(|r| (r.attempt, r.outcome.as_str(), r.will_retry)).collect()
}

#[tokio::test]
async fn connect_two_numbers_sends_the_documented_wire_form() {
    let fake = Fake::start(vec![Reply::new(200, CONNECT_RESPONSE)]).await;
    let (client, recorder) = client(&fake.base);

    let call = client.connect_two_numbers(&full_bridge()).await.unwrap();

    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/v1/Accounts/acme1/Calls/connect.json");
    assert_eq!(request.query.as_deref(), Some("details=true"));
    assert_eq!(request.authorization.as_deref(), Some(BASIC_AUTH));
    assert_eq!(request.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(
        request.body,
        "From=%2B919876543210&To=%2B919123456789&WaitUrl=https%3A%2F%2Fcdn.example.in%2Fwait.wav\
         &CallerId=08047112233&CallType=trans&TimeLimit=1800&TimeOut=30&Record=true&RecordingChannels=dual\
         &CustomField=order_4711&StatusCallback=https%3A%2F%2Fapp.example.in%2Fexotel%2Fstatus%3Ftoken%3DS3CR3T\
         &StatusCallbackEvents[0]=terminal&StatusCallbackEvents[1]=answered\
         &StatusCallbackContentType=application%2Fjson"
    );

    assert_eq!(call.sid, "c5797dcbaaeed7678c4062a4a3ed2f8a");
    assert_eq!(call.status, CallStatus::InProgress);
    assert_eq!(call.to.as_ref().map(E164::as_str), Some("+919123456789"));
    assert_eq!(call.phone_number_sid.as_deref(), Some("08047112233"));

    let records = recorder.records();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!((record.endpoint, record.method, record.attempt), ("calls.connect", "POST", 1));
    assert_eq!((record.status, record.outcome, record.will_retry), (Some(200), Outcome::Ok, false));
    assert_eq!(record.sid.as_deref(), Some("c5797dcbaaeed7678c4062a4a3ed2f8a"));
    assert_eq!(record.custom_field.as_deref(), Some("order_4711"));
    assert_eq!(record.from_masked.as_deref(), Some("+9198xxxxx210"));
    assert_eq!(record.to_masked.as_deref(), Some("+9191xxxxx789"));
    assert!(record.finished_at >= record.started_at);
}

#[tokio::test]
async fn flow_and_voicebot_modes() {
    let fake = Fake::start(vec![Reply::new(200, CONNECT_RESPONSE)]).await;
    let (client, _) = client(&fake.base);
    let options = CallOptions { custom_field: Some("lead_42".into()), ..CallOptions::new(phone("08047112233")) };

    let options = CallOptions {
        status_callback: Some(StatusCallback::terminal_and_answered(
            Url::parse("https://app.example.in/exotel/status?token=S3CR3T").unwrap(),
        )),
        ..options
    };
    let flow = ConnectToFlow { from: phone("+919123456789"), flow: FlowTarget::AppId("926".into()), options };
    client.connect_to_flow(&flow).await.unwrap();
    let given_url = Url::parse("http://my.in.exotel.com/acme1/exoml/start_voice/927").unwrap();
    client.connect_to_flow(&ConnectToFlow { flow: FlowTarget::Url(given_url), ..flow.clone() }).await.unwrap();

    let bot = ConnectToVoicebot {
        from: phone("+919123456789"),
        stream_url: Url::parse("wss://bot.example.in/ws?sample-rate=8000").unwrap(),
        stream_name: Some("order-bot".into()),
        options: CallOptions::new(phone("08047112233")),
    };
    client.connect_to_voicebot(&bot).await.unwrap();

    let seen = fake.seen();
    assert!(seen.iter().all(|s| s.path == "/v1/Accounts/acme1/Calls/connect.json" && s.query.is_none()));
    assert_eq!(
        seen[0].body,
        "From=%2B919123456789&Url=http%3A%2F%2Fmy.exotel.com%2Facme1%2Fexoml%2Fstart_voice%2F926\
         &CallerId=08047112233&CallType=trans&CustomField=lead_42\
         &StatusCallback=https%3A%2F%2Fapp.example.in%2Fexotel%2Fstatus%3Ftoken%3DS3CR3T",
        "a flow call sends the documented StatusCallback only: no StatusCallbackEvents with Url"
    );
    assert!(seen[1].body.contains("&Url=http%3A%2F%2Fmy.in.exotel.com%2Facme1%2Fexoml%2Fstart_voice%2F927&"));
    assert_eq!(
        seen[2].body,
        "From=%2B919123456789&StreamUrl=wss%3A%2F%2Fbot.example.in%2Fws%3Fsample-rate%3D8000\
         &StreamType=bidirectional&StreamName=order-bot&CallerId=08047112233&CallType=trans"
    );
}

#[tokio::test]
async fn send_sms_wire_form_and_response() {
    let fake = Fake::start(vec![Reply::new(200, SMS_RESPONSE)]).await;
    let (client, recorder) = client(&fake.base);
    let request = SendSms {
        encoding: Some(SmsEncoding::Unicode),
        priority: Some(SmsPriority::High),
        status_callback: Some(Url::parse("https://app.example.in/exotel/sms?token=S3CR3T").unwrap()),
        dlt_entity_id: Some("1201159143".into()),
        dlt_template_id: Some("1207161".into()),
        sms_type: Some(SmsType::TransactionalOptIn),
        custom_field: Some("otp_77".into()),
        ..SendSms::new("ACMEIN", phone("09876543210"), "Your OTP is 123456 - ACME")
    };

    let sms = client.send_sms(&request).await.unwrap();

    let seen = fake.seen();
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("POST", "/v1/Accounts/acme1/Sms/send.json"));
    assert_eq!(seen[0].authorization.as_deref(), Some(BASIC_AUTH));
    assert_eq!(
        seen[0].body,
        "From=ACMEIN&To=%2B919876543210&Body=Your+OTP+is+123456+-+ACME&EncodingType=unicode&Priority=high\
         &StatusCallback=https%3A%2F%2Fapp.example.in%2Fexotel%2Fsms%3Ftoken%3DS3CR3T&DltEntityId=1201159143\
         &DltTemplateId=1207161&SmsType=transactional_opt_in&CustomField=otp_77"
    );
    assert_eq!(sms.sid, "6dbfdc50133d0e51ec8d793356559868");
    assert_eq!((sms.status, sms.detailed_status_code), (SmsStatus::Queued, Some(21010)));
    assert_eq!(sms.from.as_deref(), Some("08047112233/ACMEIN"));
    let record = &recorder.records()[0];
    assert_eq!((record.endpoint, record.sid.as_deref()), ("sms.send", Some("6dbfdc50133d0e51ec8d793356559868")));
    assert_eq!(record.to_masked.as_deref(), Some("+9198xxxxx210"));
}

#[tokio::test]
async fn bulk_sms_sends_indexed_messages_and_returns_per_item_results() {
    let answer = r#"[{"SMSMessage": {"Sid": "s1", "Status": "queued", "To": "09876543210"}},
        {"RestException": {"Status": 400, "Code": 40203, "Message": "Invalid number"}}]"#;
    let fake = Fake::start(vec![Reply::new(200, answer)]).await;
    let (client, recorder) = client(&fake.base);
    let mut second = BulkSmsMessage::new(phone("09123456789"), "Order 2 shipped");
    second.dlt_template_id = Some("1207162".into());
    let request = BulkSms {
        from: "ACMEIN".into(),
        messages: vec![BulkSmsMessage::new(phone("09876543210"), "Order 1 shipped"), second],
        encoding: None,
        status_callback: None,
    };

    let results = client.send_bulk_sms(&request).await.unwrap();

    let seen = fake.seen();
    assert_eq!(seen[0].path, "/v1/Accounts/acme1/Sms/bulksend.json");
    assert_eq!(
        seen[0].body,
        "From=ACMEIN&Messages[0][To]=%2B919876543210&Messages[0][Body]=Order+1+shipped\
         &Messages[1][To]=%2B919123456789&Messages[1][Body]=Order+2+shipped&Messages[1][DltTemplateId]=1207162"
    );
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].as_ref().unwrap().sid, "s1");
    let failed = results[1].as_ref().unwrap_err();
    assert_eq!(
        (failed.status, failed.code.as_deref(), failed.message.as_str()),
        (Some(400), Some("40203"), "Invalid number")
    );
    assert_eq!(recorder.records()[0].message.as_deref(), Some("1 of 2 messages accepted"));

    let mut config = test_config(&fake.base);
    config.bulk_key_prefix = BulkKeyPrefix::Message;
    let (client, _) = client_with(config);
    client.send_bulk_sms(&request).await.unwrap();
    assert!(fake.seen()[1].body.starts_with("From=ACMEIN&Message[0][To]=%2B919876543210&Message[0][Body]="));
}

#[tokio::test]
async fn call_details_parses_legs_and_late_fields() {
    let fake = Fake::start(vec![Reply::new(200, DETAILS_RESPONSE)]).await;
    let (client, recorder) = client(&fake.base);

    let call = client.call_details("c5797dcbaaeed7678c4062a4a3ed2f8a", true).await.unwrap();

    let seen = fake.seen();
    assert_eq!(seen[0].method, Method::GET);
    assert_eq!(seen[0].path, "/v1/Accounts/acme1/Calls/c5797dcbaaeed7678c4062a4a3ed2f8a.json");
    assert_eq!(seen[0].query.as_deref(), Some("details=true"));
    assert_eq!(seen[0].authorization.as_deref(), Some(BASIC_AUTH));
    assert_eq!(seen[0].body, "");
    assert_eq!(call.status, CallStatus::Completed);
    assert_eq!((call.duration, call.price.as_deref()), (Some(29), Some("1.500")));
    assert_eq!(call.end_time.unwrap().to_rfc3339(), "2024-03-03T05:19:02+00:00");
    let details = call.details.unwrap();
    assert_eq!(details.conversation_duration, Some(8));
    assert_eq!((details.leg1_status, details.leg2_status), (Some(CallStatus::Completed), Some(CallStatus::Completed)));
    assert_eq!(
        details.legs.iter().map(|l| (l.id, l.on_call_duration)).collect::<Vec<_>>(),
        [(Some(1), Some(21)), (Some(2), Some(8))]
    );
    assert_eq!(recorder.records()[0].endpoint, "calls.details");
}

#[tokio::test]
async fn exophones_and_number_metadata() {
    let fake = Fake::start(vec![
        Reply::new(
            200,
            r#"{"page": 0, "page_size": 50, "next_page_uri": null,
                "incoming_phone_numbers": [{"sid": "011XXXXXXX1", "phone_number": "08047112233"}]}"#,
        ),
        Reply::new(
            200,
            r#"{"Numbers": {"PhoneNumber": "09876543210", "Circle": "KA", "CircleName": "Karnataka",
                "Type": "Mobile", "Operator": "AT", "OperatorName": "Airtel", "DND": "Yes"}}"#,
        ),
    ])
    .await;
    let (client, recorder) = client(&fake.base);

    let exophones = client.exophones().await.unwrap();
    assert_eq!(exophones.numbers[0].phone_number.as_ref().map(E164::as_str), Some("+918047112233"));
    let number = client.number_metadata(&phone("+919876543210")).await.unwrap();
    assert!(number.dnd);
    assert_eq!(number.operator_name.as_deref(), Some("Airtel"));

    let seen = fake.seen();
    assert_eq!(seen[0].path, "/v2_beta/Accounts/acme1/IncomingPhoneNumbers");
    assert_eq!(seen[1].path, "/v1/Accounts/acme1/Numbers/09876543210.json");
    assert!(seen.iter().all(|s| s.method == Method::GET && s.authorization.as_deref() == Some(BASIC_AUTH)));
    let records = recorder.records();
    assert_eq!(records.iter().map(|r| r.endpoint).collect::<Vec<_>>(), ["exophones", "numbers"]);
    assert_eq!(records[1].from_masked.as_deref(), Some("+9198xxxxx210"));
}

#[tokio::test]
async fn every_sms_carries_the_configured_status_callback() {
    let fake = Fake::start(vec![Reply::new(200, SMS_RESPONSE)]).await;
    let mut config = test_config(&fake.base);
    config.sms_status_callback =
        Some(Url::parse("https://app.example.in/exotel/webhooks/sms-status?token=S3CR3T").unwrap());
    let (client, _) = client_with(config);
    client.send_sms(&SendSms::new("ACMEIN", phone("09876543210"), "Hello")).await.unwrap();
    let own = Url::parse("https://elsewhere.example.in/cb").unwrap();
    client
        .send_sms(&SendSms { status_callback: Some(own), ..SendSms::new("ACMEIN", phone("09876543210"), "Hello") })
        .await
        .unwrap();
    let bulk = BulkSms {
        from: "ACMEIN".into(),
        messages: vec![BulkSmsMessage::new(phone("09876543210"), "Hello")],
        encoding: None,
        status_callback: None,
    };
    let _ = client.send_bulk_sms(&bulk).await;
    let seen = fake.seen();
    let configured = "StatusCallback=https%3A%2F%2Fapp.example.in%2Fexotel%2Fwebhooks%2Fsms-status%3Ftoken%3DS3CR3T";
    assert!(seen[0].body.contains(configured), "{}", seen[0].body);
    assert!(seen[1].body.contains("StatusCallback=https%3A%2F%2Felsewhere.example.in%2Fcb"), "a request's own wins");
    assert!(seen[2].body.contains(configured), "{}", seen[2].body);
}

#[tokio::test]
async fn unauthorized_is_permanent_and_not_retried() {
    let fake = Fake::start(vec![Reply::new(401, UNAUTHORIZED)]).await;
    let (client, recorder) = client(&fake.base);

    let error = client.connect_two_numbers(&bridge()).await.unwrap_err();

    assert!(error.is_permanent() && !error.is_transient() && !error.is_ambiguous());
    assert_eq!((error.status(), error.code(), error.message()), (Some(401), Some("34010"), "Unauthorized"));
    assert_eq!(fake.seen().len(), 1);
    assert_eq!(outcomes(&recorder), [(1, "permanent", false)]);
    assert_eq!(recorder.records()[0].error_code.as_deref(), Some("34010"));

    let error = client.exophones().await.unwrap_err();
    assert!(error.is_permanent());
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn too_many_requests_is_retried_then_transient() {
    let body = r#"{"RestException": {"Status": 429, "Message": "Too many requests", "Code": 40402}}"#;
    let fake = Fake::start(vec![Reply::new(429, body)]).await;
    let (client, recorder) = client(&fake.base);

    let error = client.connect_two_numbers(&bridge()).await.unwrap_err();

    assert!(error.is_transient() && error.is_rate_limited() && !error.is_ambiguous());
    assert_eq!((error.status(), error.code()), (Some(429), Some("40402")));
    assert_eq!(fake.seen().len(), 4, "one attempt and three retries");
    assert_eq!(
        outcomes(&recorder),
        [(1, "transient", true), (2, "transient", true), (3, "transient", true), (4, "transient", false)]
    );
    assert!(recorder.records().iter().all(|r| r.status == Some(429)));
}

#[tokio::test]
async fn retry_after_is_honoured_or_handed_back_when_too_long() {
    let fake = Fake::start(vec![
        Reply::new(429, "").header("retry-after", "0"),
        Reply::new(200, SMS_RESPONSE),
        Reply::new(429, "").header("retry-after", "3600"),
    ])
    .await;
    let (client, _) = client(&fake.base);
    let sms = SendSms::new("ACMEIN", phone("09876543210"), "hello");

    assert!(client.send_sms(&sms).await.is_ok());
    assert_eq!(fake.seen().len(), 2);

    let error = client.send_sms(&sms).await.unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3600)));
    assert_eq!(fake.seen().len(), 3, "a Retry-After beyond the backoff cap is not waited for");
}

#[tokio::test]
async fn origination_failures_with_rest_exception_are_retried() {
    let failed = |status: u16| {
        Reply::new(
            status,
            &format!(r#"{{"RestException": {{"Status": {status}, "Message": "Call could not be placed"}}}}"#),
        )
    };
    let fake = Fake::start(vec![failed(500), failed(504), Reply::new(200, CONNECT_RESPONSE)]).await;
    let (client, recorder) = client(&fake.base);

    let call = client.connect_two_numbers(&bridge()).await.unwrap();

    assert_eq!(call.sid, "c5797dcbaaeed7678c4062a4a3ed2f8a");
    assert_eq!(fake.seen().len(), 3);
    assert_eq!(outcomes(&recorder), [(1, "transient", true), (2, "transient", true), (3, "ok", false)]);
    assert_eq!(recorder.records().iter().map(|r| r.status).collect::<Vec<_>>(), [Some(500), Some(504), Some(200)]);
}

#[tokio::test]
async fn a_bare_gateway_error_is_ambiguous_for_connect_but_retried_for_get() {
    let fake = Fake::start(vec![Reply::new(502, "<html><body>502 Bad Gateway</body></html>")]).await;
    let (client, recorder) = client(&fake.base);

    let error = client.connect_two_numbers(&bridge()).await.unwrap_err();
    assert!(error.is_ambiguous(), "{error:?}");
    assert_eq!(error.status(), Some(502));
    assert_eq!(fake.seen().len(), 1);

    let error = client.call_details("abc", false).await.unwrap_err();
    assert!(error.is_transient());
    assert_eq!(error.message(), "<html><body>502 Bad Gateway</body></html>");
    assert_eq!(fake.seen().len(), 5);
    assert_eq!(recorder.records().len(), 5);
}

#[tokio::test]
async fn a_timeout_on_connect_is_ambiguous_and_never_retried() {
    let fake = Fake::start(vec![Reply::new(200, CONNECT_RESPONSE).delayed(Duration::from_secs(3))]).await;
    let mut config = test_config(&fake.base);
    config.timeout = Duration::from_millis(200);
    let (client, recorder) = client_with(config);

    let error = client.connect_two_numbers(&bridge()).await.unwrap_err();

    assert!(error.is_ambiguous() && !error.is_transient(), "{error:?}");
    assert_eq!(error.status(), None);
    assert_eq!(fake.seen().len(), 1, "the call must not be placed twice");
    assert_eq!(outcomes(&recorder), [(1, "ambiguous", false)]);
}

#[tokio::test]
async fn a_timeout_on_sms_send_is_ambiguous_too() {
    let fake = Fake::start(vec![Reply::new(200, SMS_RESPONSE).delayed(Duration::from_secs(3))]).await;
    let mut config = test_config(&fake.base);
    config.timeout = Duration::from_millis(200);
    let (client, _) = client_with(config);

    let error = client.send_sms(&SendSms::new("ACMEIN", phone("09876543210"), "hi")).await.unwrap_err();

    assert!(error.is_ambiguous());
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn a_timeout_on_get_is_retried() {
    let fake = Fake::start(vec![
        Reply::new(200, DETAILS_RESPONSE).delayed(Duration::from_secs(3)),
        Reply::new(200, DETAILS_RESPONSE),
    ])
    .await;
    let mut config = test_config(&fake.base);
    config.query_timeout = Duration::from_millis(200);
    let (client, recorder) = client_with(config);

    let call = client.call_details("c5797dcbaaeed7678c4062a4a3ed2f8a", true).await.unwrap();

    assert_eq!(call.duration, Some(29));
    assert_eq!(fake.seen().len(), 2);
    assert_eq!(outcomes(&recorder), [(1, "transient", true), (2, "ok", false)]);
    assert_eq!(recorder.records()[0].status, None);
    assert_eq!(recorder.records()[0].sid.as_deref(), Some("c5797dcbaaeed7678c4062a4a3ed2f8a"));
}

#[tokio::test]
async fn connection_refused_is_transient_and_retried_even_for_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let (client, recorder) = client(&base);

    let error = client.connect_two_numbers(&bridge()).await.unwrap_err();

    assert!(error.is_transient() && !error.is_ambiguous(), "{error:?}");
    assert_eq!(
        error,
        ExotelError::Transient {
            status: None,
            code: None,
            message: error.message().to_string(),
            retry_after: None,
            reason: TransientReason::Network,
        }
    );
    assert_eq!(outcomes(&recorder).len(), 4);
}

/// Reads one HTTP request (headers and `Content-Length` body) and then closes
/// the connection without answering.
async fn swallow_request(mut socket: tokio::net::TcpStream) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buffer).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"Call\":").await;
                return;
            }
        }
    }
}

#[tokio::test]
async fn a_connection_dropped_mid_response_is_ambiguous_for_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(0usize));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            *counter.lock().unwrap() += 1;
            tokio::spawn(swallow_request(socket));
        }
    });
    let (client, recorder) = client(&base);

    let error = client.connect_two_numbers(&bridge()).await.unwrap_err();

    assert!(error.is_ambiguous(), "{error:?}");
    assert_eq!(*accepted.lock().unwrap(), 1);
    assert_eq!(outcomes(&recorder), [(1, "ambiguous", false)]);

    let error = client.call_details("abc", false).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert_eq!(*accepted.lock().unwrap(), 5, "GETs are retried");
}

#[tokio::test]
async fn an_unreadable_success_is_ambiguous_for_connect_and_permanent_for_get() {
    let fake = Fake::start(vec![Reply::new(200, "<html>maintenance</html>")]).await;
    let (client, _) = client(&fake.base);

    assert!(client.connect_two_numbers(&bridge()).await.unwrap_err().is_ambiguous());
    assert!(client.exophones().await.unwrap_err().is_permanent());
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn the_rate_limiter_refuses_without_sending() {
    let fake = Fake::start(vec![Reply::new(200, DETAILS_RESPONSE)]).await;
    let mut config = test_config(&fake.base);
    config.voice_rate = RateLimit::per_minute(2).with_burst(2);
    config.rate_limit_max_wait = Duration::from_millis(50);
    let (client, recorder) = client_with(config);

    client.call_details("a", false).await.unwrap();
    client.call_details("b", false).await.unwrap();
    let error = client.call_details("c", false).await.unwrap_err();

    assert!(error.is_transient() && error.is_rate_limited(), "{error:?}");
    assert!(matches!(error, ExotelError::Transient { reason: TransientReason::RateLimited, status: None, .. }));
    assert!(error.retry_after().unwrap() > Duration::from_secs(1));
    assert_eq!(fake.seen().len(), 2, "the third request never reached the server");
    let records = recorder.records();
    assert_eq!(records.len(), 3);
    assert_eq!(
        (records[2].outcome, records[2].status, records[2].sid.as_deref()),
        (Outcome::Transient, None, Some("c"))
    );

    // SMS has its own budget.
    let fake_sms = Fake::start(vec![Reply::new(200, SMS_RESPONSE)]).await;
    let mut config = test_config(&fake_sms.base);
    config.voice_rate = RateLimit::per_minute(1);
    config.rate_limit_max_wait = Duration::from_millis(50);
    let (client, _) = client_with(config);
    client.call_details("a", false).await.ok();
    client.send_sms(&SendSms::new("ACMEIN", phone("09876543210"), "hi")).await.unwrap();
}

#[tokio::test]
async fn the_rate_limiter_waits_within_the_bound() {
    let fake = Fake::start(vec![Reply::new(200, DETAILS_RESPONSE)]).await;
    let mut config = test_config(&fake.base);
    config.voice_rate = RateLimit::per_minute(1200);
    config.rate_limit_max_wait = Duration::from_secs(2);
    let (client, _) = client_with(config);

    for sid in ["a", "b", "c"] {
        client.call_details(sid, false).await.unwrap();
    }
    assert_eq!(fake.seen().len(), 3);
}

#[tokio::test]
async fn client_side_validation_sends_nothing() {
    let fake = Fake::start(vec![Reply::new(200, CONNECT_RESPONSE)]).await;
    let (client, recorder) = client(&fake.base);

    let mut long_field = bridge();
    long_field.options.custom_field = Some("x".repeat(129));
    let error = client.connect_two_numbers(&long_field).await.unwrap_err();
    assert!(matches!(&error, ExotelError::Invalid { field, .. } if field == "CustomField"), "{error:?}");
    assert!(error.is_invalid());

    let mut long_call = bridge();
    long_call.options.time_limit = Some(MAX_TIME_LIMIT_SECS + 1);
    let error = client.connect_two_numbers(&long_call).await.unwrap_err();
    assert!(matches!(&error, ExotelError::Invalid { field, .. } if field == "TimeLimit"), "{error:?}");

    let mut channels = bridge();
    channels.options.recording_channels = Some(RecordingChannels::Dual);
    assert!(client.connect_two_numbers(&channels).await.unwrap_err().is_invalid());

    let mut odd_event = full_bridge();
    odd_event.options.status_callback.as_mut().unwrap().events.push(CallbackEvent::Other("hangup".into()));
    assert!(client.connect_two_numbers(&odd_event).await.unwrap_err().is_invalid());

    let bot = ConnectToVoicebot {
        from: phone("+919123456789"),
        stream_url: Url::parse("https://bot.example.in/ws").unwrap(),
        stream_name: None,
        options: CallOptions::new(phone("08047112233")),
    };
    assert!(client.connect_to_voicebot(&bot).await.unwrap_err().is_invalid());
    let named = ConnectToVoicebot {
        stream_url: Url::parse("wss://bot.example.in/ws").unwrap(),
        stream_name: Some("n".repeat(33)),
        ..bot
    };
    assert!(client.connect_to_voicebot(&named).await.unwrap_err().is_invalid());

    let flow = ConnectToFlow {
        from: phone("+919123456789"),
        flow: FlowTarget::AppId("../926".into()),
        options: CallOptions::new(phone("08047112233")),
    };
    assert!(client.connect_to_flow(&flow).await.unwrap_err().is_invalid());

    let bulk = BulkSms {
        from: "ACMEIN".into(),
        messages: (0..101).map(|_| BulkSmsMessage::new(phone("09876543210"), "hi")).collect(),
        encoding: None,
        status_callback: None,
    };
    let error = client.send_bulk_sms(&bulk).await.unwrap_err();
    assert!(matches!(&error, ExotelError::Invalid { field, .. } if field == "Messages"), "{error:?}");
    let empty_body = BulkSms { messages: vec![BulkSmsMessage::new(phone("09876543210"), " ")], ..bulk };
    let error = client.send_bulk_sms(&empty_body).await.unwrap_err();
    assert!(matches!(&error, ExotelError::Invalid { field, .. } if field == "Messages[0][Body]"), "{error:?}");

    let long_sms = SendSms::new("ACMEIN", phone("09876543210"), "x".repeat(MAX_SMS_BODY_CHARS + 1));
    assert!(client.send_sms(&long_sms).await.unwrap_err().is_invalid());
    assert!(client.call_details("../secrets", false).await.unwrap_err().is_invalid());

    assert_eq!(fake.seen().len(), 0);
    let records = recorder.records();
    assert_eq!(records.len(), 11);
    assert!(records.iter().all(|r| r.outcome == Outcome::Invalid && r.attempt == 0 && r.status.is_none()));

    // The limits themselves are accepted.
    let mut at_limits = bridge();
    at_limits.options.custom_field = Some("x".repeat(MAX_CUSTOM_FIELD_CHARS));
    at_limits.options.time_limit = Some(MAX_TIME_LIMIT_SECS);
    client.connect_two_numbers(&at_limits).await.unwrap();
    let hundred = BulkSms {
        from: "ACMEIN".into(),
        messages: (0..MAX_BULK_MESSAGES).map(|_| BulkSmsMessage::new(phone("09876543210"), "hi")).collect(),
        encoding: None,
        status_callback: None,
    };
    let _ = client.send_bulk_sms(&hundred).await;
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn bracket_styles_are_configurable() {
    let fake = Fake::start(vec![Reply::new(200, CONNECT_RESPONSE)]).await;
    for (style, expected) in [
        (BracketStyle::LiteralEmpty, "&StatusCallbackEvents[]=terminal&StatusCallbackEvents[]=answered&"),
        (BracketStyle::PercentEncoded, "&StatusCallbackEvents%5B0%5D=terminal&StatusCallbackEvents%5B1%5D=answered&"),
    ] {
        let mut config = test_config(&fake.base);
        config.bracket_style = style;
        let (client, _) = client_with(config);
        client.connect_two_numbers(&full_bridge()).await.unwrap();
        let body = fake.seen().last().unwrap().body.clone();
        assert!(body.contains(expected), "{style:?}: {body}");
    }

    let mut config = test_config(&fake.base);
    config.caller_id_format = NumberFormat::E164;
    let (client, _) = client_with(config);
    client.connect_two_numbers(&bridge()).await.unwrap();
    assert!(fake.seen().last().unwrap().body.contains("&CallerId=%2B918047112233&"));
}

#[tokio::test]
async fn records_never_hold_full_numbers_or_secrets() {
    let fake = Fake::start(vec![
        Reply::new(400, r#"{"RestException": {"Status": 400, "Message": "Invalid To 09123456789"}}"#),
        Reply::new(200, CONNECT_RESPONSE),
    ])
    .await;
    let (client, recorder) = client(&fake.base);

    let error = client.connect_two_numbers(&full_bridge()).await.unwrap_err();
    assert_eq!(error.message(), "Invalid To 091xxxxx789");
    client.connect_two_numbers(&full_bridge()).await.unwrap();
    client.number_metadata(&phone("09876543210")).await.ok();

    let dump = format!("{:?} {error}", recorder.records());
    for secret in ["9876543210", "9123456789", "token", "S3CR3T", BASIC_AUTH, "a2V5OnRva2Vu"] {
        assert!(!dump.contains(secret), "{secret} leaked: {dump}");
    }
    let config = format!("{:?} {client:?}", test_config(&fake.base));
    assert!(!config.contains("\"token\"") && !config.contains("\"key\""), "{config}");
}

#[tokio::test]
async fn a_base_url_with_a_path_prefix_is_kept() {
    let fake = Fake::start(vec![Reply::new(200, r#"{"incoming_phone_numbers": []}"#)]).await;
    let (client, _) = client(&format!("{}/exotel/", fake.base));
    client.exophones().await.unwrap();
    assert_eq!(fake.seen()[0].path, "/exotel/v2_beta/Accounts/acme1/IncomingPhoneNumbers");
}

#[test]
fn configuration_is_validated() {
    let recorder: Arc<dyn ExotelRecorder> = Arc::new(NoopRecorder);
    let field = |config: ExotelClientConfig| match ExotelClient::new(config, recorder.clone()) {
        Err(ExotelError::Invalid { field, .. }) => field,
        other => panic!("expected an invalid config, got {other:?}"),
    };
    assert_eq!(field(ExotelClientConfig::new("ftp://x", "acme1", "k", "t")), "base_url");
    assert_eq!(field(ExotelClientConfig::new("not a url", "acme1", "k", "t")), "base_url");
    assert_eq!(field(ExotelClientConfig::new("https://api.exotel.com", "ac/me", "k", "t")), "account_sid");
    assert_eq!(field(ExotelClientConfig::new("https://api.exotel.com", "acme1", "", "t")), "api_key");
    assert_eq!(field(ExotelClientConfig::new("https://api.exotel.com", "acme1", "k", " ")), "api_token");
    let mut config = ExotelClientConfig::new("https://api.exotel.com", "acme1", "k", "t");
    config.sms_rate = RateLimit::per_minute(0);
    assert_eq!(field(config), "sms_rate");
    assert!(ExotelClient::new(ExotelClientConfig::new("https://api.exotel.com", "acme1", "k", "t"), recorder).is_ok());
}

#[test]
fn host_for_builds_cluster_hosts() {
    assert_eq!(ExotelClientConfig::host_for("api", Some("in")), "https://api.in.exotel.com");
    assert_eq!(ExotelClientConfig::host_for("api", None), "https://api.exotel.com");
    assert_eq!(ExotelClientConfig::host_for("api", Some("")), "https://api.exotel.com");
    assert_eq!(ExotelClientConfig::host_for("ccm-api", Some("in")), "https://ccm-api.in.exotel.com");
}

#[test]
fn backoff_grows_with_jitter_and_is_capped() {
    let policy = RetryPolicy::default();
    for _ in 0..50 {
        let first = policy.backoff(1);
        assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(500), "{first:?}");
        let third = policy.backoff(3);
        assert!(third >= Duration::from_millis(1000) && third <= Duration::from_millis(2000), "{third:?}");
        assert!(policy.backoff(30) <= Duration::from_secs(10));
    }
}

#[test]
fn flow_hosts_follow_the_region_unless_configured() {
    assert_eq!(ExotelClientConfig::flow_host_for(None, None), "http://my.exotel.com");
    assert_eq!(ExotelClientConfig::flow_host_for(Some("in"), None), "http://my.in.exotel.com");
    assert_eq!(ExotelClientConfig::flow_host_for(Some("in"), Some("flows.example.in")), "http://flows.example.in");
    assert_eq!(ExotelClientConfig::flow_host_for(None, Some("https://my.exotel.com/")), "https://my.exotel.com");
}
