//! The production Exotel client against the Exotel simulator (`mangwale-sim`),
//! over real HTTP: every endpoint, every error class, and what the client
//! records for each attempt. The simulator runs on a manual clock; the only
//! real waiting is the sub-second delay of the timeout test and the client's
//! retry back-off (kept at a few milliseconds).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use mangwale_core::E164;
use mangwale_providers::exotel::client::{
    BulkSms, BulkSmsMessage, CallOptions, ConnectToFlow, ConnectToVoicebot, ConnectTwoNumbers, ExotelClient,
    ExotelClientConfig, ExotelError, FlowTarget, MemoryRecorder, Outcome, RateLimit, RecordingChannels, RequestRecord,
    RetryPolicy, SendSms, SmsType, StatusCallback, TransientReason,
};
use mangwale_providers::exotel::inbound::{
    CallStatus, CallStatusCallback, CallbackEvent, Direction, SmsStatus, SmsStatusCallback,
};
use mangwale_providers::exotel::params::Params;
use mangwale_sim::clock::parse_ist;
use mangwale_sim::exotel::{CallMode, CalleeScript, Endpoint, Fault, ReceivedRequest, SimConfig};
use mangwale_sim::{ExotelSim, SimHandle};
use url::Url;

const AGENT: &str = "+919800000001";
const CUSTOMER: &str = "+919800000002";
const EXOPHONE: &str = "+918047112233";
const START: &str = "2025-01-15 10:00:00";

const TEMPLATE_ID: &str = "1107160000000000001";
const TEMPLATE: &str = "Your OTP is {#var#} - MANGWALE";
const ENTITY: &str = "1201160000000000001";

fn e164(number: &str) -> E164 {
    E164::parse(number).unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn start() -> DateTime<Utc> {
    parse_ist(START).unwrap()
}

/// The default simulator account on a manual clock at 10:00 IST.
fn sim_config() -> SimConfig {
    SimConfig::manual(start())
}

fn sms_config() -> SimConfig {
    SimConfig { dlt_entity_id: Some(ENTITY.to_string()), ..sim_config() }.with_template(TEMPLATE_ID, TEMPLATE)
}

async fn start_sim(config: SimConfig) -> ExotelSim {
    ExotelSim::start(config).await.unwrap()
}

/// The production defaults, pointed at `base_url`, with client-side limits
/// high enough never to interfere, and a few milliseconds of retry back-off.
fn client_config(sim: &SimHandle, base_url: &str) -> ExotelClientConfig {
    let mut config = ExotelClientConfig::new(base_url, sim.account_sid(), sim.api_key(), sim.api_token());
    config.voice_rate = RateLimit::per_minute(60_000).with_burst(1_000);
    config.sms_rate = RateLimit::per_minute(60_000).with_burst(1_000);
    config.retry = RetryPolicy { max_retries: 2, base: Duration::from_millis(5), cap: Duration::from_millis(20) };
    config
}

fn build(config: ExotelClientConfig) -> (ExotelClient, Arc<MemoryRecorder>) {
    let recorder = Arc::new(MemoryRecorder::new());
    let client = ExotelClient::new(config, recorder.clone()).unwrap();
    (client, recorder)
}

fn client_for(sim: &SimHandle) -> (ExotelClient, Arc<MemoryRecorder>) {
    build(client_config(sim, sim.base_url()))
}

/// What matters of each recorded attempt: endpoint, attempt number, HTTP
/// status, outcome, and whether another attempt followed.
fn attempts(recorder: &MemoryRecorder) -> Vec<(&'static str, u32, Option<u16>, Outcome, bool)> {
    recorder.records().iter().map(|r| (r.endpoint, r.attempt, r.status, r.outcome, r.will_retry)).collect()
}

fn last_record(recorder: &MemoryRecorder) -> RequestRecord {
    recorder.records().pop().expect("a record")
}

/// The simulator's log entries of one endpoint.
fn received(sim: &SimHandle, endpoint: Endpoint) -> Vec<ReceivedRequest> {
    sim.received().into_iter().filter(|r| r.endpoint == Some(endpoint)).collect()
}

fn options() -> CallOptions {
    CallOptions::new(e164(EXOPHONE))
}

fn bridge(custom_field: &str) -> ConnectTwoNumbers {
    ConnectTwoNumbers {
        from: e164(AGENT),
        to: e164(CUSTOMER),
        wait_url: None,
        options: CallOptions { custom_field: Some(custom_field.to_string()), ..options() },
    }
}

// ---------------------------------------------------------------------------
// A callback receiver and a recording tap in front of the simulator.

/// One request as an axum test server saw it.
#[derive(Debug, Clone)]
struct Captured {
    method: String,
    /// Path and query.
    uri: String,
    content_type: String,
    body: Bytes,
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The voice status callback, parsed by the service's own parser.
    fn call_callback(&self) -> CallStatusCallback {
        assert_eq!(self.content_type, "application/json", "the client asks for JSON callbacks");
        CallStatusCallback::from_params(&Params::from_json(&self.body).unwrap()).unwrap()
    }

    /// The SMS delivery report, parsed by the service's own parser.
    fn sms_callback(&self) -> SmsStatusCallback {
        assert_eq!(self.content_type, "application/x-www-form-urlencoded");
        SmsStatusCallback::from_params(&Params::from_urlencoded(&self.body)).unwrap()
    }
}

type Log = Arc<Mutex<Vec<Captured>>>;

fn capture(log: &Log, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    log.lock().unwrap().push(Captured {
        method: method.to_string(),
        uri: uri.to_string(),
        content_type,
        body: body.clone(),
    });
}

/// An HTTP server on 127.0.0.1:0 that answers 200 to everything and keeps
/// what it received: our status callback endpoint.
struct Receiver {
    url: String,
    log: Log,
}

impl Receiver {
    async fn start() -> Receiver {
        async fn handle(
            State(log): State<Log>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            capture(&log, &method, &uri, &headers, &body);
            StatusCode::OK
        }
        let log = Log::default();
        let app = Router::new().fallback(handle).with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, log }
    }

    fn at(&self, path_and_query: &str) -> Url {
        Url::parse(&format!("{}{path_and_query}", self.url)).unwrap()
    }

    fn captured(&self) -> Vec<Captured> {
        self.log.lock().unwrap().clone()
    }
}

/// A pass-through proxy in front of the simulator that keeps the raw request
/// bodies: the simulator logs decoded form pairs, which cannot show whether
/// brackets went over the wire literally or percent-encoded.
struct Tap {
    url: String,
    log: Log,
}

#[derive(Clone)]
struct TapState {
    target: String,
    http: reqwest::Client,
    log: Log,
}

impl Tap {
    async fn start(target: &str) -> Tap {
        async fn forward(
            State(tap): State<TapState>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            capture(&tap.log, &method, &uri, &headers, &body);
            let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
            let mut request = tap.http.request(method, format!("{}{uri}", tap.target)).body(body);
            for name in ["authorization", "content-type", "accept"] {
                if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
                    request = request.header(name, value);
                }
            }
            match request.send().await {
                Ok(answer) => {
                    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
                    let content_type = answer
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("application/octet-stream")
                        .to_string();
                    let body = answer.bytes().await.unwrap_or_default();
                    (status, [("content-type", content_type)], body).into_response()
                }
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
        let log = Log::default();
        let state = TapState {
            target: target.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            log: log.clone(),
        };
        let app = Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Tap { url, log }
    }

    fn captured(&self) -> Vec<Captured> {
        self.log.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------
// Account and number look-ups.

#[tokio::test]
async fn exophones_lists_the_simulators_numbers_at_the_documented_endpoint() {
    let sim = start_sim(sim_config()).await;
    let (client, recorder) = client_for(&sim);

    let list = client.exophones().await.unwrap();
    let numbers: Vec<E164> = list.numbers.iter().filter_map(|e| e.phone_number.clone()).collect();
    assert_eq!(numbers, sim.config().exophones);
    assert!(!list.more);

    let seen = received(&sim, Endpoint::ExoPhones);
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/v2_beta/Accounts/mangwalesim1/IncomingPhoneNumbers")
    );
    assert_eq!(seen[0].auth_user.as_deref(), Some(sim.api_key()), "Basic auth with the API key");
    assert_eq!(attempts(&recorder), [("exophones", 1, Some(200), Outcome::Ok, false)]);

    // The undocumented account resource is not served.
    let raw = reqwest::Client::new()
        .get(format!("{}/v1/Accounts/{}.json", sim.base_url(), sim.account_sid()))
        .basic_auth(sim.api_key(), Some(sim.api_token()))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 404);
}

#[tokio::test]
async fn number_metadata_of_a_dnd_and_a_non_dnd_number() {
    let mut config = sim_config();
    config.dnd_numbers.push(e164(CUSTOMER));
    let sim = start_sim(config).await;
    let (client, recorder) = client_for(&sim);

    let dnd = client.number_metadata(&e164(CUSTOMER)).await.unwrap();
    assert!(dnd.dnd);
    assert_eq!(dnd.phone_number, Some(e164(CUSTOMER)));
    assert_eq!(dnd.number_type.as_deref(), Some("Mobile"));
    for (name, value) in [
        ("Circle", &dnd.circle),
        ("CircleName", &dnd.circle_name),
        ("Operator", &dnd.operator),
        ("OperatorName", &dnd.operator_name),
    ] {
        assert!(value.as_deref().is_some_and(|v| !v.is_empty()), "{name}: {value:?}");
    }

    let clean = client.number_metadata(&e164(AGENT)).await.unwrap();
    assert!(!clean.dnd);
    assert_eq!(clean.phone_number, Some(e164(AGENT)));

    let paths: Vec<String> = received(&sim, Endpoint::Numbers).into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        ["/v1/Accounts/mangwalesim1/Numbers/09800000002.json", "/v1/Accounts/mangwalesim1/Numbers/09800000001.json"],
        "numbers go into the path in national form"
    );
    assert_eq!(attempts(&recorder), [("numbers", 1, Some(200), Outcome::Ok, false); 2]);
    let masked: Vec<Option<String>> = recorder.records().into_iter().map(|r| r.from_masked).collect();
    assert_eq!(masked, [Some(e164(CUSTOMER).masked()), Some(e164(AGENT).masked())]);
}

// ---------------------------------------------------------------------------
// Calls.

#[tokio::test]
async fn connect_two_numbers_then_json_status_callbacks_reach_our_receiver() {
    let sim = start_sim(sim_config()).await;
    let tap = Tap::start(sim.base_url()).await;
    let receiver = Receiver::start().await;
    let (client, recorder) = build(client_config(&sim, &tap.url));
    sim.script(AGENT, CalleeScript::answers_after(secs(3)).stays_for(secs(60))).unwrap();
    sim.script(CUSTOMER, CalleeScript::answers_after(secs(5)).stays_for(secs(10))).unwrap();

    let mut request = bridge("order_4711");
    request.options.time_limit = Some(1800);
    request.options.time_out = Some(30);
    request.options.record = Some(true);
    request.options.recording_channels = Some(RecordingChannels::Dual);
    request.options.status_callback =
        Some(StatusCallback::terminal_and_answered(receiver.at("/exotel/status?token=S3CR3T")));
    let call = client.connect_two_numbers(&request).await.unwrap();

    // The answer, as the client parsed it.
    assert_eq!(call.sid.len(), 32);
    assert_eq!(call.status, CallStatus::InProgress);
    assert_eq!(call.direction, Some(Direction::OutboundApi));
    assert_eq!((call.from.as_ref(), call.to.as_ref()), (Some(&e164(AGENT)), Some(&e164(CUSTOMER))));
    assert_eq!(call.phone_number_sid.as_deref(), Some("08047112233"));
    assert_eq!(call.account_sid.as_deref(), Some(sim.account_sid()));
    assert_eq!((call.date_created, call.start_time), (Some(start()), Some(start())), "IST timestamps round-trip");
    assert_eq!((call.end_time, call.duration, call.price.as_deref()), (None, None, None));
    assert_eq!(call.details, None, "not asked for");

    // On the wire: literal, indexed brackets and the national CallerId.
    let raw = tap.captured();
    assert_eq!(raw.len(), 1);
    assert_eq!((raw[0].method.as_str(), raw[0].uri.as_str()), ("POST", "/v1/Accounts/mangwalesim1/Calls/connect.json"));
    assert_eq!(raw[0].content_type, "application/x-www-form-urlencoded");
    let body = raw[0].text();
    assert!(body.contains("&StatusCallbackEvents[0]=terminal&StatusCallbackEvents[1]=answered&"), "{body}");
    assert!(!body.contains("%5B") && !body.contains("%5b"), "no percent-encoded brackets: {body}");
    assert!(body.contains("&CallerId=08047112233&"), "{body}");

    // What the simulator understood.
    let seen = received(&sim, Endpoint::CallsConnect);
    assert_eq!(seen.len(), 1);
    let form = &seen[0];
    for (name, value) in [
        ("From", AGENT),
        ("To", CUSTOMER),
        ("CallerId", "08047112233"),
        ("CallType", "trans"),
        ("TimeLimit", "1800"),
        ("TimeOut", "30"),
        ("Record", "true"),
        ("RecordingChannels", "dual"),
        ("CustomField", "order_4711"),
        ("StatusCallback", receiver.at("/exotel/status?token=S3CR3T").as_str()),
        ("StatusCallbackEvents[0]", "terminal"),
        ("StatusCallbackEvents[1]", "answered"),
        ("StatusCallbackContentType", "application/json"),
    ] {
        assert_eq!(form.field(name), Some(value), "{name}");
    }
    let placed = sim.call(&call.sid).unwrap();
    assert_eq!(placed.mode, CallMode::Bridge);
    assert_eq!(placed.caller_id, e164(EXOPHONE));
    assert_eq!(placed.custom_field.as_deref(), Some("order_4711"));

    // Nothing is sent before the clock moves.
    assert!(receiver.captured().is_empty());
    sim.advance(secs(120)).await;

    // Leg 1 answers at 3 s, leg 2 at 8 s, the customer hangs up at 18 s.
    let captured = receiver.captured();
    assert_eq!(captured.len(), 3, "answered (leg 1), answered (leg 2), terminal");
    assert!(captured.iter().all(|c| c.method == "POST" && c.uri == "/exotel/status?token=S3CR3T"));
    let callbacks: Vec<CallStatusCallback> = captured.iter().map(Captured::call_callback).collect();
    assert!(callbacks.iter().all(|c| c.call_sid == call.sid));
    let events: Vec<&CallbackEvent> = callbacks.iter().map(|c| &c.event).collect();
    assert_eq!(events, [&CallbackEvent::Answered, &CallbackEvent::Answered, &CallbackEvent::Terminal]);
    assert_eq!(callbacks[0].status, CallStatus::InProgress);
    assert_eq!(callbacks[0].custom_field, None, "CustomField only on the terminal event");
    assert_eq!(callbacks[1].legs[1].status, Some(CallStatus::InProgress));

    let terminal = &callbacks[2];
    assert_eq!(terminal.status, CallStatus::Completed);
    assert_eq!(terminal.custom_field.as_deref(), Some("order_4711"));
    assert_eq!(terminal.conversation_duration, Some(10));
    assert_eq!(terminal.end_time, Some(start() + chrono::Duration::seconds(18)));
    assert_eq!((terminal.from.as_ref(), terminal.to.as_ref()), (Some(&e164(AGENT)), Some(&e164(CUSTOMER))));
    assert_eq!(terminal.phone_number_sid.as_deref(), Some("08047112233"));
    assert!(terminal.recording_url.as_deref().is_some_and(|u| u.contains(&call.sid)), "Record=true");
    let legs: Vec<(Option<CallStatus>, Option<u32>)> =
        terminal.legs.iter().map(|l| (l.status.clone(), l.on_call_duration)).collect();
    assert_eq!(legs, [(Some(CallStatus::Completed), Some(15)), (Some(CallStatus::Completed), Some(10))]);
    assert!(sim.callbacks_for(&call.sid).iter().all(|c| c.response_status == Some(200)));

    // One attempt, recorded without the callback URL's token.
    assert_eq!(attempts(&recorder), [("calls.connect", 1, Some(200), Outcome::Ok, false)]);
    let record = last_record(&recorder);
    assert_eq!(record.method, "POST");
    assert_eq!(record.sid.as_deref(), Some(call.sid.as_str()));
    assert_eq!(record.custom_field.as_deref(), Some("order_4711"));
    assert_eq!(record.from_masked, Some(e164(AGENT).masked()));
    assert_eq!(record.to_masked, Some(e164(CUSTOMER).masked()));
    assert!(!format!("{record:?}").contains("S3CR3T"));
}

#[tokio::test]
async fn call_details_before_and_after_the_details_delay() {
    let sim = start_sim(sim_config()).await;
    let (client, recorder) = client_for(&sim);
    sim.script(AGENT, CalleeScript::answers_after(secs(3)).stays_for(secs(60))).unwrap();
    sim.script(CUSTOMER, CalleeScript::answers_after(secs(5)).stays_for(secs(10))).unwrap();
    let mut request = bridge("details");
    request.options.details = true;
    let call = client.connect_two_numbers(&request).await.unwrap();
    let details = call.details.expect("details=true on connect");
    assert_eq!(details.conversation_duration, Some(0));
    assert_eq!(details.leg2_status, Some(CallStatus::Queued), "leg 2 is not dialled yet");
    assert_eq!(received(&sim, Endpoint::CallsConnect)[0].query, [("details".to_string(), "true".to_string())]);

    // Both legs connected.
    sim.advance(secs(10)).await;
    let during = client.call_details(&call.sid, true).await.unwrap();
    assert_eq!(during.status, CallStatus::InProgress);
    let legs = during.details.unwrap();
    assert_eq!((legs.leg1_status, legs.leg2_status), (Some(CallStatus::InProgress), Some(CallStatus::InProgress)));

    // Ended at 18 s: the status is final at once, Duration/Price/EndTime are not yet filled.
    sim.advance(secs(8 + 60)).await;
    let ended = client.call_details(&call.sid, true).await.unwrap();
    assert_eq!(ended.status, CallStatus::Completed);
    assert_eq!((ended.duration, ended.price.as_deref(), ended.end_time), (None, None, None));
    let legs = ended.details.unwrap();
    assert_eq!(legs.conversation_duration, Some(10));
    assert_eq!((legs.leg1_status, legs.leg2_status), (Some(CallStatus::Completed), Some(CallStatus::Completed)));
    let per_leg: Vec<(Option<u32>, Option<u32>)> = legs.legs.iter().map(|l| (l.id, l.on_call_duration)).collect();
    assert_eq!(per_leg, [(Some(1), Some(15)), (Some(2), Some(10))]);

    // The details delay (120 s by default) has passed.
    sim.advance(secs(60)).await;
    let settled = client.call_details(&call.sid, true).await.unwrap();
    assert_eq!(settled.duration, Some(18));
    assert_eq!(settled.price.as_deref(), Some("1.000"));
    assert_eq!(settled.end_time, Some(start() + chrono::Duration::seconds(18)));
    assert!(settled.details.is_some());
    let plain = client.call_details(&call.sid, false).await.unwrap();
    assert_eq!((plain.duration, plain.details), (Some(18), None));

    let queries: Vec<Vec<(String, String)>> =
        received(&sim, Endpoint::CallDetails).into_iter().map(|r| r.query).collect();
    let details_true = vec![("details".to_string(), "true".to_string())];
    assert_eq!(queries, [details_true.clone(), details_true.clone(), details_true, vec![]]);
    let records = recorder.records();
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|r| r.outcome == Outcome::Ok && r.sid.as_deref() == Some(call.sid.as_str())));
    assert!(records[1..].iter().all(|r| r.endpoint == "calls.details" && r.method == "GET"));
}

#[tokio::test]
async fn connect_to_a_flow_by_app_id_and_by_url() {
    let sim = start_sim(sim_config()).await;
    let receiver = Receiver::start().await;
    let (client, recorder) = client_for(&sim);
    sim.script(CUSTOMER, CalleeScript::answers_after(secs(2)).stays_for(secs(25))).unwrap();

    let by_id = ConnectToFlow {
        from: e164(CUSTOMER),
        flow: FlowTarget::AppId("926".to_string()),
        options: CallOptions {
            custom_field: Some("lead_42".to_string()),
            status_callback: Some(StatusCallback::new(receiver.at("/flow"))),
            ..options()
        },
    };
    let call = client.connect_to_flow(&by_id).await.unwrap();
    assert_eq!(call.status, CallStatus::InProgress);
    assert_eq!(call.from, Some(e164(CUSTOMER)));
    let flow_url = "http://my.exotel.com/mangwalesim1/exoml/start_voice/926";
    let seen = received(&sim, Endpoint::CallsConnect);
    assert_eq!(seen[0].field("Url"), Some(flow_url));
    assert_eq!(seen[0].field("To"), None);
    assert!(seen[0].field("StatusCallback").is_some());
    assert_eq!(seen[0].field("StatusCallbackEvents[0]"), None, "Exotel documents no events with Url");
    assert_eq!(seen[0].field("StatusCallbackContentType"), None);
    assert_eq!(
        sim.call(&call.sid).unwrap().mode,
        CallMode::Flow { url: flow_url.to_string(), flow_id: Some("926".to_string()) }
    );

    let mumbai = "http://my.in.exotel.com/mangwalesim1/exoml/start_voice/1234";
    let by_url =
        ConnectToFlow { from: e164(CUSTOMER), flow: FlowTarget::Url(Url::parse(mumbai).unwrap()), options: options() };
    let second = client.connect_to_flow(&by_url).await.unwrap();
    assert_eq!(received(&sim, Endpoint::CallsConnect)[1].field("Url"), Some(mumbai));
    assert_eq!(
        sim.call(&second.sid).unwrap().mode,
        CallMode::Flow { url: mumbai.to_string(), flow_id: Some("1234".to_string()) }
    );

    sim.advance(secs(60)).await;
    let captured = receiver.captured();
    assert_eq!(captured.len(), 1, "only the first call has a StatusCallback");
    // A flow call's callback: the four documented default fields, multipart.
    assert!(captured[0].content_type.starts_with("multipart/form-data"), "{}", captured[0].content_type);
    let text = captured[0].text();
    for field in ["CallSid", "Status", "DateUpdated"] {
        assert!(text.contains(&format!("name=\"{field}\"")), "{field}: {text}");
    }
    assert!(text.contains(&call.sid) && text.contains("completed"), "{text}");
    for absent in ["EventType", "CustomField", "Legs", "ConversationDuration"] {
        assert!(!text.contains(absent), "{absent}: {text}");
    }
    assert_eq!(attempts(&recorder), [("calls.connect", 1, Some(200), Outcome::Ok, false); 2]);
    assert_eq!(recorder.records()[0].to_masked, None, "flow calls have no second party");
}

#[tokio::test]
async fn the_simulator_refuses_status_callback_events_with_a_flow_url() {
    let sim = start_sim(sim_config()).await;
    let url = "http://my.exotel.com/mangwalesim1/exoml/start_voice/926";
    let form = [
        ("From", CUSTOMER),
        ("CallerId", EXOPHONE),
        ("Url", url),
        ("StatusCallback", "https://app.example.in/cb"),
        ("StatusCallbackEvents[0]", "terminal"),
    ];
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/Accounts/{}/Calls/connect.json", sim.base_url(), sim.account_sid()))
        .basic_auth(sim.api_key(), Some(sim.api_token()))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    assert!(answer.text().await.unwrap().contains("Invalid 'StatusCallbackEvents' specified"));
    assert!(sim.calls().is_empty());
}

#[tokio::test]
async fn every_sms_names_the_configured_status_callback_and_its_report_arrives() {
    let mut config = sim_config();
    config.dnd_numbers.push(e164(CUSTOMER));
    let sim = start_sim(config).await;
    let receiver = Receiver::start().await;
    let mut client_config = client_config(&sim, sim.base_url());
    client_config.sms_status_callback = Some(receiver.at("/exotel/webhooks/sms-status?token=T"));
    let (client, _) = build(client_config);

    let promo =
        SendSms { sms_type: Some(SmsType::Promotional), ..SendSms::new(EXOPHONE, e164(CUSTOMER), "Sale today") };
    let sms = client.send_sms(&promo).await.unwrap();
    assert_eq!(
        received(&sim, Endpoint::SmsSend)[0].field("StatusCallback"),
        Some(receiver.at("/exotel/webhooks/sms-status?token=T").as_str())
    );
    sim.advance(secs(5)).await;
    let captured = receiver.captured();
    assert_eq!(captured.len(), 1);
    assert_eq!(captured[0].uri, "/exotel/webhooks/sms-status?token=T");
    let report = captured[0].sms_callback();
    assert_eq!((report.sms_sid.as_str(), report.status), (sms.sid.as_str(), SmsStatus::FailedDnd));
    assert_eq!(report.detailed_status.as_deref(), Some("FAILED_REJECTED_DND"));
}

#[tokio::test]
async fn connect_to_a_voicebot_sends_the_stream_parameters() {
    let sim = start_sim(sim_config()).await;
    let (client, recorder) = client_for(&sim);
    sim.script(CUSTOMER, CalleeScript::answers_after(secs(1)).stays_for(secs(9))).unwrap();
    let stream_url = "wss://bot.mangwale.example/exotel/voicebot?sample-rate=8000";
    let request = ConnectToVoicebot {
        from: e164(CUSTOMER),
        stream_url: Url::parse(stream_url).unwrap(),
        stream_name: Some("mangwale-bot".to_string()),
        options: CallOptions { custom_field: Some("bot_1".to_string()), ..options() },
    };
    let call = client.connect_to_voicebot(&request).await.unwrap();
    assert_eq!(call.status, CallStatus::InProgress);

    let seen = &received(&sim, Endpoint::CallsConnect)[0];
    for (name, value) in [
        ("From", CUSTOMER),
        ("StreamUrl", stream_url),
        ("StreamType", "bidirectional"),
        ("StreamName", "mangwale-bot"),
        ("CallerId", "08047112233"),
        ("CustomField", "bot_1"),
    ] {
        assert_eq!(seen.field(name), Some(value), "{name}");
    }
    assert_eq!((seen.field("Url"), seen.field("To")), (None, None));
    assert_eq!(
        sim.call(&call.sid).unwrap().mode,
        CallMode::Voicebot { stream_url: stream_url.to_string(), stream_name: Some("mangwale-bot".to_string()) }
    );
    sim.advance(secs(30)).await;
    let ended = client.call_details(&call.sid, false).await.unwrap();
    assert_eq!(ended.status, CallStatus::Completed);
    assert_eq!(
        attempts(&recorder),
        [("calls.connect", 1, Some(200), Outcome::Ok, false), ("calls.details", 1, Some(200), Outcome::Ok, false)]
    );
}

// ---------------------------------------------------------------------------
// SMS.

fn otp(body: &str, callback: Url) -> SendSms {
    SendSms {
        status_callback: Some(callback),
        dlt_entity_id: Some(ENTITY.to_string()),
        dlt_template_id: Some(TEMPLATE_ID.to_string()),
        sms_type: Some(SmsType::Transactional),
        custom_field: Some("otp_77".to_string()),
        ..SendSms::new("08047112233", e164(CUSTOMER), body)
    }
}

#[tokio::test]
async fn sms_is_queued_then_its_delivery_report_arrives() {
    let sim = start_sim(sms_config()).await;
    let receiver = Receiver::start().await;
    let (client, recorder) = client_for(&sim);

    let sms = client.send_sms(&otp("Your OTP is 123456 - MANGWALE", receiver.at("/sms/status?token=T"))).await.unwrap();
    assert_eq!(sms.sid.len(), 32);
    assert_eq!(sms.status, SmsStatus::Queued);
    assert_eq!(sms.detailed_status_code, Some(21010));
    assert_eq!(sms.detailed_status.as_deref(), Some("PENDING_TO_OPERATOR"));
    assert_eq!(sms.from.as_deref(), Some("08047112233/MNGWLE"));
    assert_eq!(sms.to, Some(e164(CUSTOMER)));
    assert_eq!(sms.date_created, Some(start()));
    assert_eq!((sms.date_sent, sms.sms_units), (None, None));

    let seen = &received(&sim, Endpoint::SmsSend)[0];
    assert_eq!(seen.path, "/v1/Accounts/mangwalesim1/Sms/send.json");
    for (name, value) in [
        ("From", "08047112233"),
        ("To", CUSTOMER),
        ("DltEntityId", ENTITY),
        ("DltTemplateId", TEMPLATE_ID),
        ("SmsType", "transactional"),
        ("CustomField", "otp_77"),
    ] {
        assert_eq!(seen.field(name), Some(value), "{name}");
    }

    sim.advance(secs(1)).await;
    assert!(receiver.captured().is_empty());
    sim.advance(secs(5)).await;
    let captured = receiver.captured();
    assert_eq!(captured.len(), 1);
    assert_eq!(captured[0].uri, "/sms/status?token=T");
    let report = captured[0].sms_callback();
    assert_eq!(report.sms_sid, sms.sid);
    assert_eq!(report.status, SmsStatus::Sent);
    assert_eq!(report.detailed_status_code, Some(20005));
    assert_eq!(report.detailed_status.as_deref(), Some("DELIVERED_TO_HANDSET"));
    assert_eq!(report.custom_field.as_deref(), Some("otp_77"));
    assert_eq!(report.to, Some(e164(CUSTOMER)));

    assert_eq!(attempts(&recorder), [("sms.send", 1, Some(200), Outcome::Ok, false)]);
    let record = last_record(&recorder);
    assert_eq!(record.sid.as_deref(), Some(sms.sid.as_str()));
    assert_eq!(record.to_masked, Some(e164(CUSTOMER).masked()));
    assert_eq!(record.custom_field.as_deref(), Some("otp_77"));
}

#[tokio::test]
async fn a_body_that_does_not_match_its_dlt_template_ends_failed_23185() {
    let sim = start_sim(sms_config()).await;
    let receiver = Receiver::start().await;
    let (client, _) = client_for(&sim);

    // Accepted by the API: DLT scrubbing happens at the operator.
    let sms = client.send_sms(&otp("Your OTP is 123456 - MANGWALE!", receiver.at("/sms"))).await.unwrap();
    assert_eq!(sms.status, SmsStatus::Queued);
    sim.advance(secs(5)).await;
    let report = receiver.captured()[0].sms_callback();
    assert_eq!(report.sms_sid, sms.sid);
    assert_eq!(report.status, SmsStatus::Failed);
    assert_eq!(report.detailed_status_code, Some(23185));
    assert_eq!(report.detailed_status.as_deref(), Some("DLT_TEMPLATE_DOES_NOT_MATCH"));
}

#[tokio::test]
async fn promotional_sms_to_a_dnd_number_ends_failed_dnd() {
    let mut config = sim_config();
    config.dnd_numbers.push(e164(CUSTOMER));
    let sim = start_sim(config).await;
    let receiver = Receiver::start().await;
    let (client, _) = client_for(&sim);

    let promo = SendSms {
        sms_type: Some(SmsType::Promotional),
        status_callback: Some(receiver.at("/sms")),
        ..SendSms::new("08047112233", e164(CUSTOMER), "Sale today")
    };
    let promotional = client.send_sms(&promo).await.unwrap();
    let transactional =
        client.send_sms(&SendSms { sms_type: Some(SmsType::Transactional), ..promo.clone() }).await.unwrap();
    assert_eq!((&promotional.status, &transactional.status), (&SmsStatus::Queued, &SmsStatus::Queued));
    sim.advance(secs(5)).await;

    let reports: Vec<SmsStatusCallback> = receiver.captured().iter().map(Captured::sms_callback).collect();
    assert_eq!(reports.len(), 2);
    let promo_report = reports.iter().find(|r| r.sms_sid == promotional.sid).unwrap();
    assert_eq!(promo_report.status, SmsStatus::FailedDnd);
    assert_eq!(promo_report.detailed_status_code, Some(23005));
    let trans_report = reports.iter().find(|r| r.sms_sid == transactional.sid).unwrap();
    assert_eq!(trans_report.status, SmsStatus::Sent, "transactional SMS reach DND numbers");
}

#[tokio::test]
async fn bulk_sms_answers_one_result_per_message() {
    let sim = start_sim(sms_config()).await;
    let receiver = Receiver::start().await;
    let (client, recorder) = client_for(&sim);
    let message = |to: &str, body: &str| BulkSmsMessage {
        dlt_template_id: Some(TEMPLATE_ID.to_string()),
        ..BulkSmsMessage::new(e164(to), body)
    };
    let request = BulkSms {
        from: "08047112233".to_string(),
        messages: vec![
            message(CUSTOMER, "Your OTP is 1111 - MANGWALE"),
            // Not an ExoPhone or a sender id of the account.
            BulkSmsMessage { from: Some("NOT-OURS".to_string()), ..message(AGENT, "Your OTP is 2222 - MANGWALE") },
            message(AGENT, "Your OTP is 3333 - MANGWALE"),
        ],
        encoding: None,
        status_callback: Some(receiver.at("/bulk")),
    };
    let results = client.send_bulk_sms(&request).await.unwrap();
    assert_eq!(results.len(), 3);
    let first = results[0].as_ref().unwrap();
    assert_eq!((first.status.clone(), first.to.clone()), (SmsStatus::Queued, Some(e164(CUSTOMER))));
    assert_eq!(first.body.as_deref(), Some("Your OTP is 1111 - MANGWALE"));
    let refused = results[1].as_ref().unwrap_err();
    assert_eq!((refused.status, refused.code.as_deref()), (Some(400), Some("40205")));
    assert!(refused.message.contains("'From'"), "{}", refused.message);
    let third = results[2].as_ref().unwrap();
    assert_eq!(third.to, Some(e164(AGENT)));

    let seen = &received(&sim, Endpoint::SmsBulkSend)[0];
    assert_eq!(seen.field("Messages[0][To]"), Some(CUSTOMER));
    assert_eq!(seen.field("Messages[1][From]"), Some("NOT-OURS"));
    assert_eq!(seen.field("Messages[2][DltTemplateId]"), Some(TEMPLATE_ID));
    assert_eq!(seen.response.as_ref().map(|r| r.status), Some(207), "partial failure");

    sim.advance(secs(5)).await;
    let mut reported: Vec<String> = receiver.captured().iter().map(|c| c.sms_callback().sms_sid).collect();
    reported.sort();
    let mut accepted = vec![first.sid.clone(), third.sid.clone()];
    accepted.sort();
    assert_eq!(reported, accepted);

    assert_eq!(attempts(&recorder), [("sms.bulksend", 1, Some(207), Outcome::Ok, false)]);
    assert_eq!(last_record(&recorder).message.as_deref(), Some("2 of 3 messages accepted"));
}

// ---------------------------------------------------------------------------
// Error classes.

#[tokio::test]
async fn wrong_credentials_are_permanent_401_code_34010() {
    let sim = start_sim(sim_config()).await;
    let mut config = client_config(&sim, sim.base_url());
    config.api_token = "not-the-token".to_string();
    let (client, recorder) = build(config);

    let error = client.exophones().await.unwrap_err();
    assert!(error.is_permanent(), "{error:?}");
    assert_eq!(error.status(), Some(401));
    assert_eq!(error.code(), Some("34010"));
    assert_eq!(error.message(), "Unauthorized");

    let error = client.connect_two_numbers(&bridge("x")).await.unwrap_err();
    assert_eq!(
        error,
        ExotelError::Permanent { status: 401, code: Some("34010".to_string()), message: "Unauthorized".to_string() }
    );
    assert!(sim.calls().is_empty());
    assert_eq!(sim.received().len(), 2, "never retried");
    assert_eq!(
        attempts(&recorder),
        [
            ("exophones", 1, Some(401), Outcome::Permanent, false),
            ("calls.connect", 1, Some(401), Outcome::Permanent, false)
        ]
    );
    assert!(recorder.records().iter().all(|r| r.error_code.as_deref() == Some("34010")));
}

#[tokio::test]
async fn simulator_validation_is_permanent_400_naming_the_parameter() {
    let sim = start_sim(sim_config()).await;
    let (client, recorder) = client_for(&sim);

    let mut request = bridge("x");
    request.options.caller_id = e164("+918000000000");
    let error = client.connect_two_numbers(&request).await.unwrap_err();
    assert!(error.is_permanent(), "{error:?}");
    assert_eq!(error.status(), Some(400));
    assert!(error.message().contains("'CallerId'"), "{}", error.message());

    // A flow URL that is not an Exotel flow.
    let flow = ConnectToFlow {
        from: e164(CUSTOMER),
        flow: FlowTarget::Url(Url::parse("https://example.com/anything").unwrap()),
        options: options(),
    };
    let error = client.connect_to_flow(&flow).await.unwrap_err();
    assert_eq!(error.status(), Some(400));
    assert!(error.message().contains("'Url'"), "{}", error.message());

    // An unknown call.
    let error = client.call_details("0123456789abcdef0123456789abcdef", false).await.unwrap_err();
    assert!(error.is_permanent() && error.status() == Some(404), "{error:?}");

    assert!(sim.calls().is_empty());
    assert_eq!(sim.received().len(), 3, "never retried");
    assert_eq!(
        attempts(&recorder),
        [
            ("calls.connect", 1, Some(400), Outcome::Permanent, false),
            ("calls.connect", 1, Some(400), Outcome::Permanent, false),
            ("calls.details", 1, Some(404), Outcome::Permanent, false),
        ]
    );
    assert!(recorder.records()[0].message.as_deref().is_some_and(|m| m.contains("'CallerId'")));
}

#[tokio::test]
async fn the_simulators_429_is_retried_then_returned_as_transient() {
    let sim = start_sim(SimConfig { voice_rate_limit_per_minute: 3, ..sim_config() }).await;
    let (client, recorder) = client_for(&sim);

    let call = client.connect_two_numbers(&bridge("rl")).await.unwrap();
    client.call_details(&call.sid, false).await.unwrap();
    client.call_details(&call.sid, false).await.unwrap();
    recorder.clear();

    // The fourth voice request in the (simulated) minute.
    let error = client.connect_two_numbers(&bridge("rl")).await.unwrap_err();
    match &error {
        ExotelError::Transient { status: Some(429), reason: TransientReason::Status, .. } => {}
        other => panic!("expected a transient 429, got {other:?}"),
    }
    assert!(error.is_rate_limited());
    assert_eq!(sim.calls().len(), 1, "a 429 places no call, so retrying the POST was safe");
    let limited = received(&sim, Endpoint::CallsConnect);
    assert_eq!(limited.len(), 4);
    assert!(limited[1..].iter().all(|r| r.response.as_ref().map(|a| a.status) == Some(429)));
    assert_eq!(
        attempts(&recorder),
        [
            ("calls.connect", 1, Some(429), Outcome::Transient, true),
            ("calls.connect", 2, Some(429), Outcome::Transient, true),
            ("calls.connect", 3, Some(429), Outcome::Transient, false),
        ]
    );

    // A minute later the window has room again.
    sim.advance(secs(60)).await;
    recorder.clear();
    client.call_details(&call.sid, false).await.unwrap();
    assert_eq!(attempts(&recorder), [("calls.details", 1, Some(200), Outcome::Ok, false)]);
}

#[tokio::test]
async fn injected_500_503_504_once_are_retried_then_succeed() {
    let sim = start_sim(sim_config()).await;
    let (client, recorder) = client_for(&sim);

    for status in [500u16, 503, 504] {
        recorder.clear();
        sim.inject_fault(Endpoint::CallsConnect, Fault::status(status), 1);
        let calls_before = sim.calls().len();
        let call = client.connect_two_numbers(&bridge("5xx")).await.unwrap();
        assert_eq!(sim.calls().len(), calls_before + 1, "{status}: exactly one call placed");
        assert_eq!(sim.calls().last().map(|c| c.sid.clone()), Some(call.sid.clone()));
        assert_eq!(
            attempts(&recorder),
            [
                ("calls.connect", 1, Some(status), Outcome::Transient, true),
                ("calls.connect", 2, Some(200), Outcome::Ok, false),
            ],
            "{status}"
        );
    }

    // Idempotent GETs too, and SMS.
    let sid = sim.calls()[0].sid.clone();
    recorder.clear();
    sim.inject_fault(Endpoint::CallDetails, Fault::status(503), 1);
    sim.inject_fault(Endpoint::SmsSend, Fault::status(500), 1);
    client.call_details(&sid, false).await.unwrap();
    let sms = client.send_sms(&SendSms::new("08047112233", e164(CUSTOMER), "hello")).await.unwrap();
    assert_eq!(sim.sms_messages().len(), 1);
    assert_eq!(sim.sms_messages()[0].sid, sms.sid);
    assert_eq!(
        attempts(&recorder),
        [
            ("calls.details", 1, Some(503), Outcome::Transient, true),
            ("calls.details", 2, Some(200), Outcome::Ok, false),
            ("sms.send", 1, Some(500), Outcome::Transient, true),
            ("sms.send", 2, Some(200), Outcome::Ok, false),
        ]
    );
}

#[tokio::test]
async fn sms_throttling_503_40405_is_retried_then_transient() {
    let sim = start_sim(SimConfig { sms_rate_limit_per_minute: Some(1), ..sim_config() }).await;
    let (client, recorder) = client_for(&sim);
    let sms = SendSms::new("08047112233", e164(CUSTOMER), "hello");
    client.send_sms(&sms).await.unwrap();
    let error = client.send_sms(&sms).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert_eq!((error.status(), error.code()), (Some(503), Some("40405")));
    assert_eq!(sim.sms_messages().len(), 1);
    assert_eq!(
        attempts(&recorder),
        [
            ("sms.send", 1, Some(200), Outcome::Ok, false),
            ("sms.send", 1, Some(503), Outcome::Transient, true),
            ("sms.send", 2, Some(503), Outcome::Transient, true),
            ("sms.send", 3, Some(503), Outcome::Transient, false),
        ]
    );
}

#[tokio::test]
async fn a_dropped_connect_is_ambiguous_and_sent_once() {
    let sim = start_sim(sim_config()).await;
    let (client, recorder) = client_for(&sim);
    sim.inject_fault(Endpoint::CallsConnect, Fault::Drop, 1);

    let error = client.connect_two_numbers(&bridge("drop")).await.unwrap_err();
    assert!(error.is_ambiguous(), "{error:?}");
    assert_eq!(error.status(), None);

    let seen = received(&sim, Endpoint::CallsConnect);
    assert_eq!(seen.len(), 1, "an ambiguous POST is never retried");
    assert!(seen[0].dropped && seen[0].response.is_none());
    assert_eq!(seen[0].fault, Some(Fault::Drop));
    assert!(sim.calls().is_empty(), "this fault drops the request before it takes effect");
    assert_eq!(attempts(&recorder), [("calls.connect", 1, None, Outcome::Ambiguous, false)]);
    assert_eq!(last_record(&recorder).custom_field.as_deref(), Some("drop"));
}

#[tokio::test]
async fn a_connect_dropped_after_processing_is_ambiguous_but_the_call_exists() {
    let sim = start_sim(sim_config()).await;
    let receiver = Receiver::start().await;
    let (client, recorder) = client_for(&sim);
    sim.inject_fault(Endpoint::CallsConnect, Fault::DropAfterProcessing, 1);

    let mut request = bridge("attempt_7");
    request.options.status_callback = Some(StatusCallback::new(receiver.at("/status")));
    let error = client.connect_two_numbers(&request).await.unwrap_err();
    assert!(error.is_ambiguous(), "{error:?}");

    assert_eq!(received(&sim, Endpoint::CallsConnect).len(), 1);
    let calls = sim.calls();
    assert_eq!(calls.len(), 1, "Exotel placed the call although we got no answer");
    assert_eq!(calls[0].custom_field.as_deref(), Some("attempt_7"));
    assert_eq!(attempts(&recorder), [("calls.connect", 1, None, Outcome::Ambiguous, false)]);

    // Reconciliation: the terminal callback names the call and carries our CustomField.
    sim.advance(secs(120)).await;
    let terminal = receiver.captured()[0].call_callback();
    assert_eq!(terminal.call_sid, calls[0].sid);
    assert_eq!(terminal.custom_field.as_deref(), Some("attempt_7"));
    assert_eq!(terminal.status, CallStatus::Completed);
    let details = client.call_details(&calls[0].sid, false).await.unwrap();
    assert_eq!(details.status, CallStatus::Completed);
}

#[tokio::test]
async fn a_dropped_call_details_request_is_retried_then_succeeds() {
    let sim = start_sim(sim_config()).await;
    let (client, recorder) = client_for(&sim);
    let call = client.connect_two_numbers(&bridge("get")).await.unwrap();
    recorder.clear();
    sim.inject_fault(Endpoint::CallDetails, Fault::Drop, 1);

    let details = client.call_details(&call.sid, true).await.unwrap();
    assert_eq!(details.sid, call.sid);

    let seen = received(&sim, Endpoint::CallDetails);
    assert_eq!(seen.len(), 2);
    assert!(seen[0].dropped && !seen[1].dropped);
    assert_eq!(seen[1].response.as_ref().map(|r| r.status), Some(200));
    assert_eq!(
        attempts(&recorder),
        [("calls.details", 1, None, Outcome::Transient, true), ("calls.details", 2, Some(200), Outcome::Ok, false)]
    );
}

#[tokio::test]
async fn a_connect_slower_than_the_client_timeout_is_ambiguous() {
    let sim = start_sim(sim_config()).await;
    let mut config = client_config(&sim, sim.base_url());
    config.timeout = Duration::from_millis(150);
    let (client, recorder) = build(config);
    sim.inject_fault(Endpoint::CallsConnect, Fault::delay(Duration::from_millis(400)), 1);

    let error = client.connect_two_numbers(&bridge("slow")).await.unwrap_err();
    assert!(error.is_ambiguous(), "{error:?}");
    assert!(error.message().contains("timed out"), "{}", error.message());
    assert_eq!(received(&sim, Endpoint::CallsConnect).len(), 1, "never retried");
    assert_eq!(attempts(&recorder), [("calls.connect", 1, None, Outcome::Ambiguous, false)]);
    let record = last_record(&recorder);
    assert!(record.duration >= Duration::from_millis(150) && record.duration < Duration::from_millis(400));
    // Exotel placed the call all the same: that is why a retry would ring twice.
    assert_eq!(sim.calls().len(), 1, "the slow request was handled");
}

#[tokio::test]
async fn a_call_details_request_slower_than_the_query_timeout_is_retried() {
    let sim = start_sim(sim_config()).await;
    let mut config = client_config(&sim, sim.base_url());
    config.query_timeout = Duration::from_millis(150);
    let (client, recorder) = build(config);
    let call = client.connect_two_numbers(&bridge("slow_get")).await.unwrap();
    recorder.clear();
    sim.inject_fault(Endpoint::CallDetails, Fault::delay(Duration::from_millis(300)), 1);

    let details = client.call_details(&call.sid, false).await.unwrap();
    assert_eq!(details.sid, call.sid);
    assert_eq!(received(&sim, Endpoint::CallDetails).len(), 2);
    assert_eq!(
        attempts(&recorder),
        [("calls.details", 1, None, Outcome::Transient, true), ("calls.details", 2, Some(200), Outcome::Ok, false)]
    );
    assert!(recorder.records()[0].message.as_deref().is_some_and(|m| m.contains("timed out")));
}

#[tokio::test]
async fn an_unreachable_exotel_is_transient_even_for_posts() {
    let sim = start_sim(sim_config()).await;
    let config = client_config(&sim, sim.base_url());
    sim.shutdown().await;
    let (client, recorder) = build(config);

    // Nothing was sent, so even a call may be retried.
    let error = client.connect_two_numbers(&bridge("down")).await.unwrap_err();
    match &error {
        ExotelError::Transient { status: None, reason: TransientReason::Network, message, .. } => {
            assert!(message.contains("could not connect"), "{message}");
        }
        other => panic!("expected a transient network error, got {other:?}"),
    }
    assert_eq!(
        attempts(&recorder),
        [
            ("calls.connect", 1, None, Outcome::Transient, true),
            ("calls.connect", 2, None, Outcome::Transient, true),
            ("calls.connect", 3, None, Outcome::Transient, false),
        ]
    );
}

#[tokio::test]
async fn errors_raised_before_sending_never_reach_the_simulator() {
    let sim = start_sim(sim_config()).await;
    let mut config = client_config(&sim, sim.base_url());
    config.voice_rate = RateLimit::per_minute(1);
    config.rate_limit_max_wait = Duration::from_millis(10);
    let (client, recorder) = build(config);

    // Client-side validation.
    let mut request = bridge("invalid");
    request.options.time_limit = Some(20_000);
    let error = client.connect_two_numbers(&request).await.unwrap_err();
    assert!(error.is_invalid(), "{error:?}");
    assert!(matches!(&error, ExotelError::Invalid { field, .. } if field == "TimeLimit"), "{error:?}");
    assert!(sim.received().is_empty());

    // The client-side rate limit: one voice request a minute.
    client.connect_two_numbers(&bridge("first")).await.unwrap();
    let error = client.connect_two_numbers(&bridge("second")).await.unwrap_err();
    assert!(
        matches!(&error, ExotelError::Transient { status: None, reason: TransientReason::RateLimited, .. }),
        "{error:?}"
    );
    assert!(error.is_rate_limited());
    assert_eq!(received(&sim, Endpoint::CallsConnect).len(), 1, "the limited request was not sent");
    assert_eq!(
        attempts(&recorder),
        [
            ("calls.connect", 0, None, Outcome::Invalid, false),
            ("calls.connect", 1, Some(200), Outcome::Ok, false),
            ("calls.connect", 1, None, Outcome::Transient, false),
        ]
    );
}

/// Every form encoding the client can be configured for is understood.
#[tokio::test]
async fn every_bracket_style_bulk_prefix_and_caller_id_format_is_understood() {
    use mangwale_providers::exotel::client::{BracketStyle, BulkKeyPrefix, NumberFormat};
    use mangwale_sim::exotel::CallbackEvent as SimEvent;

    let sim = start_sim(sim_config()).await;
    let receiver = Receiver::start().await;
    for (style, prefix, caller_id) in [
        (BracketStyle::LiteralIndexed, BulkKeyPrefix::Messages, NumberFormat::National),
        (BracketStyle::LiteralEmpty, BulkKeyPrefix::Message, NumberFormat::E164),
        (BracketStyle::PercentEncoded, BulkKeyPrefix::Messages, NumberFormat::E164),
        (BracketStyle::PercentEncoded, BulkKeyPrefix::Message, NumberFormat::National),
    ] {
        let case = format!("{style:?}/{prefix:?}/{caller_id:?}");
        let mut config = client_config(&sim, sim.base_url());
        config.bracket_style = style;
        config.bulk_key_prefix = prefix;
        config.caller_id_format = caller_id;
        let (client, _) = build(config);

        let mut request = bridge("style");
        request.options.status_callback = Some(StatusCallback::terminal_and_answered(receiver.at("/style")));
        let call = client.connect_two_numbers(&request).await.unwrap_or_else(|e| panic!("{case}: {e}"));
        let placed = sim.call(&call.sid).unwrap();
        assert_eq!(placed.callback_events, [SimEvent::Terminal, SimEvent::Answered], "{case}");
        assert_eq!(placed.caller_id, e164(EXOPHONE), "{case}");

        let bulk = BulkSms {
            from: "08047112233".to_string(),
            messages: vec![BulkSmsMessage::new(e164(CUSTOMER), "one"), BulkSmsMessage::new(e164(AGENT), "two")],
            encoding: None,
            status_callback: None,
        };
        let results = client.send_bulk_sms(&bulk).await.unwrap_or_else(|e| panic!("{case}: {e}"));
        let bodies: Vec<Option<String>> = results.into_iter().map(|r| r.unwrap().body).collect();
        assert_eq!(bodies, [Some("one".to_string()), Some("two".to_string())], "{case}");
    }
}
