//! The flow engine against a small axum app playing our service, over real
//! HTTP and WebSocket, on the manual clock: Exotel's applet requests
//! (parameters, headers, HEAD before a Greeting), branching, timing,
//! failures, Connect, incoming calls and the Voicebot stream.

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use chrono::{DateTime, Utc};
use common::*;
use mangwale_sim::clock::{format_ist, parse_ist};
use mangwale_sim::exotel::{
    AppletType, CallStatus, CalleeScript, DEFAULT_MASKING_EXOPHONE, DEFAULT_MISSED_CALL_EXOPHONE, ExotelSim,
    FlowConfig, FlowDefinitions, FlowOutcome, SimConfig, SimError, StreamDirection,
};
use serde_json::{Value, json};

const TOKEN: &str = "test-webhook-token-0123";
const VENDOR: &str = "+919800000003";
const RIDER_A: &str = "+919800000004";
const RIDER_B: &str = "+919800000005";
const GREETING: &str = "Namaste ji";
const MENU: &str = "Accept 1, reject 2";
const REPEAT: &str = "Phir se dabayein";
const FLOW_URL: &str = "http://my.exotel.com/mangwalesim1/exoml/start_voice/926";

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Speaking time of a text at 60 ms per character, in ms.
fn spoken(text: &str) -> u64 {
    60 * text.chars().count() as u64
}

fn start() -> DateTime<Utc> {
    parse_ist(START).unwrap()
}

/// START + `millis`.
fn t(millis: u64) -> DateTime<Utc> {
    start() + chrono::Duration::milliseconds(millis as i64)
}

/// One request our service received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    raw_query: String,
    query: Vec<(String, String)>,
    exotel_version: Option<String>,
    authorization: Option<String>,
}

impl Seen {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.query.iter().map(|(k, _)| k.as_str()).collect()
    }

    fn step(&self) -> String {
        let step = self.param("step").or(self.param("flow")).unwrap_or_default();
        format!("{} {}:{step}", self.method, self.path)
    }
}

#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    content_type: &'static str,
    body: String,
    delay: Duration,
}

impl Answer {
    fn text(status: u16, body: &str) -> Answer {
        Answer { status, content_type: "text/plain", body: body.to_string(), delay: Duration::ZERO }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum BotMode {
    /// Plays, marks, clears on speech, answers a key with a 321-byte frame, closes after mark m3.
    #[default]
    Full,
    /// Listens until `stop`.
    Passive,
    /// Closes right after `start`.
    CloseAfterStart,
    /// Refuses the handshake.
    Refuse,
}

#[derive(Default)]
struct ServiceState {
    seen: Mutex<Vec<Seen>>,
    overrides: Mutex<HashMap<String, VecDeque<Answer>>>,
    connect_numbers: Mutex<Vec<String>>,
    bot_mode: Mutex<BotMode>,
    bot_frames: Mutex<Vec<Value>>,
    bot_auth: Mutex<Option<String>>,
    handshakes: Mutex<u32>,
}

/// A stand-in for the Mangwale service's Exotel routes.
struct Service {
    /// `http://127.0.0.1:<port>`.
    url: String,
    state: Arc<ServiceState>,
}

impl Service {
    async fn start() -> Service {
        let state = Arc::new(ServiceState::default());
        let app = Router::new().route("/exotel/voicebot", get(voicebot)).fallback(applet).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Service { url, state }
    }

    /// Answers the next requests of applet URL `key` (as in the flows file) with `answers`, in order.
    fn answer(&self, key: &str, answers: Vec<Answer>) {
        self.state.overrides.lock().unwrap().insert(key.to_string(), answers.into());
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    fn steps(&self) -> Vec<String> {
        self.seen().iter().map(Seen::step).collect()
    }

    fn bot_frames(&self) -> Vec<Value> {
        self.state.bot_frames.lock().unwrap().clone()
    }

    fn flows(&self, definitions: FlowDefinitions) -> FlowConfig {
        FlowConfig::new(self.url.clone(), Some(TOKEN.to_string()), definitions)
            .with_app_id("926", "vendor_new_order")
            .with_app_id("5001", "missed_call")
    }

    async fn sim(&self) -> ExotelSim {
        self.sim_with(|_| {}).await
    }

    async fn sim_with(&self, tweak: impl FnOnce(&mut FlowConfig)) -> ExotelSim {
        let mut flows = self.flows(FlowDefinitions::repository().unwrap());
        tweak(&mut flows);
        sim_with(SimConfig { flows: Some(flows), ..config_at(START) }).await
    }
}

fn applet_key(path: &str, query: &[(String, String)]) -> String {
    let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mut key = path.to_string();
    if let Some(flow) = get("flow") {
        key.push_str(&format!("?flow={flow}"));
    }
    if let Some(step) = get("step") {
        key.push_str(&format!("&step={step}"));
    }
    key
}

fn gather_json() -> String {
    json!({
        "gather_prompt": {"text": MENU},
        "max_input_digits": 1,
        "finish_on_key": "#",
        "input_timeout": 6,
        "repeat_menu": 2,
        "repeat_gather_prompt": {"text": REPEAT},
    })
    .to_string()
}

/// What our IVR selects for the keys pressed at a menu.
fn select(flow: &str, step: &str, digits: Option<&str>) -> &'static str {
    match (flow, step, digits) {
        ("customer_voice_order", _, _) => "bot",
        (_, "menu", Some("3")) => "prep_time",
        (_, "menu", Some("9")) => "repeat",
        (_, "menu", Some("0")) => "admin",
        _ => "done",
    }
}

async fn applet(State(state): State<Arc<ServiceState>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let query: Vec<(String, String)> =
        uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let seen = Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        raw_query: uri.query().unwrap_or_default().to_string(),
        query: query.clone(),
        exotel_version: header("exotel-version"),
        authorization: header("authorization"),
    };
    state.seen.lock().unwrap().push(seen.clone());
    if seen.param("token") != Some(TOKEN) {
        return (StatusCode::UNAUTHORIZED, "bad token").into_response();
    }
    let key = applet_key(uri.path(), &query);
    let queued = {
        let mut overrides = state.overrides.lock().unwrap();
        overrides.get_mut(&key).and_then(|q| if q.len() > 1 { q.pop_front() } else { q.front().cloned() })
    };
    let answer = queued.unwrap_or_else(|| {
        let flow = seen.param("flow").unwrap_or_default();
        let step = seen.param("step").unwrap_or_default();
        match uri.path() {
            "/exotel/applet/greeting" => Answer::text(200, GREETING),
            "/exotel/applet/gather" => {
                Answer { content_type: "application/json", body: gather_json(), ..Answer::text(200, "") }
            }
            "/exotel/ivr/incoming" => Answer::text(200, r#"{"select":"welcome"}"#),
            "/exotel/ivr/dtmf" => {
                let digits = seen.param("digits").map(|d| d.trim_matches('"'));
                Answer::text(200, &json!({"select": select(flow, step, digits)}).to_string())
            }
            // The record flow's turn: the dialog ended.
            "/exotel/applet/passthru" if flow == "voice_order_record" => Answer::text(200, r#"{"select":"done"}"#),
            // The masked-call flow's Passthrus before its Switch Cases: the
            // caller has one session.
            "/exotel/applet/passthru" if flow == "masked_call" && step != "after_connect" => {
                Answer::text(200, r#"{"select":"connect"}"#)
            }
            "/exotel/applet/connect" => {
                let numbers = state.connect_numbers.lock().unwrap().clone();
                let body = json!({
                    "fetch_after_attempt": false,
                    "destination": {"numbers": numbers},
                    "record": true,
                    "max_ringing_duration": 20,
                    "max_conversation_duration": 600,
                });
                Answer { content_type: "application/json", body: body.to_string(), ..Answer::text(200, "") }
            }
            _ => Answer::text(200, "ok"),
        }
    });
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    let status = StatusCode::from_u16(answer.status).unwrap();
    let mut response = (status, [("content-type", answer.content_type)], answer.body).into_response();
    if answer.status == 302 {
        response.headers_mut().insert("location", "/somewhere-else".parse().unwrap());
    }
    response
}

async fn voicebot(
    State(state): State<Arc<ServiceState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    *state.handshakes.lock().unwrap() += 1;
    if query.get("token").map(String::as_str) != Some(TOKEN) {
        return (StatusCode::UNAUTHORIZED, "bad token").into_response();
    }
    if *state.bot_mode.lock().unwrap() == BotMode::Refuse {
        return (StatusCode::FORBIDDEN, "no bot today").into_response();
    }
    *state.bot_auth.lock().unwrap() = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    ws.on_upgrade(move |socket| bot(state, socket))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `n` bytes of a loud square wave.
fn loud(n: usize) -> Vec<u8> {
    (0..n).map(|i| if (i / 16) % 2 == 0 { 0x40 } else { 0xC0 }).collect()
}

async fn send(socket: &mut WebSocket, frame: Value) {
    socket.send(Message::Text(frame.to_string().into())).await.unwrap();
}

async fn bot(state: Arc<ServiceState>, mut socket: WebSocket) {
    let mode = *state.bot_mode.lock().unwrap();
    let mut sid = String::new();
    let mut cleared = false;
    while let Some(Ok(message)) = socket.recv().await {
        let Message::Text(text) = message else { continue };
        let frame: Value = serde_json::from_str(text.as_str()).unwrap();
        state.bot_frames.lock().unwrap().push(frame.clone());
        match (mode, frame["event"].as_str().unwrap_or_default()) {
            (_, "start") => {
                sid = frame["stream_sid"].as_str().unwrap().to_string();
                match mode {
                    BotMode::Full => {
                        let media =
                            |n| json!({"event": "media", "stream_sid": sid, "media": {"payload": b64(&loud(n))}});
                        send(&mut socket, media(8000)).await;
                        send(&mut socket, json!({"event": "mark", "stream_sid": sid, "mark": {"name": "m1"}})).await;
                        send(&mut socket, media(32000)).await;
                        send(&mut socket, json!({"event": "mark", "stream_sid": sid, "mark": {"name": "m2"}})).await;
                    }
                    BotMode::CloseAfterStart => {
                        let _ = socket.send(Message::Close(None)).await;
                        break;
                    }
                    BotMode::Passive | BotMode::Refuse => {}
                }
            }
            (BotMode::Full, "media") if !cleared => {
                let pcm = base64::engine::general_purpose::STANDARD
                    .decode(frame["media"]["payload"].as_str().unwrap())
                    .unwrap();
                if pcm.iter().any(|b| *b != 0) {
                    cleared = true;
                    send(&mut socket, json!({"event": "clear", "stream_sid": sid})).await;
                }
            }
            (BotMode::Full, "dtmf") => {
                // camelCase streamSid, as pipecat sends it; 321 bytes is one too many.
                send(&mut socket, json!({"event": "media", "streamSid": sid, "media": {"payload": b64(&loud(321))}}))
                    .await;
                send(&mut socket, json!({"event": "mark", "streamSid": sid, "mark": {"name": "m3"}})).await;
            }
            (BotMode::Full, "mark") if frame["mark"]["name"] == "m3" => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
            (_, "stop") => break,
            _ => {}
        }
    }
}

/// Places a flow call to `number` for app 926 (vendor_new_order).
async fn flow_call(sim: &ExotelSim, number: &str, extra: &[(&str, &str)]) -> String {
    let mut form = vec![("From", number), ("CallerId", EXOPHONE), ("Url", FLOW_URL)];
    form.extend_from_slice(extra);
    let (status, body) = json(post(sim, "/Calls/connect.json", &form).await).await;
    assert_eq!(status, 200, "{body}");
    body["Call"]["Sid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_repository_flows_file_validates() {
    let embedded = FlowDefinitions::repository().unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../flows/exotel-flows.toml");
    assert_eq!(FlowDefinitions::load(path).unwrap(), embedded);
    for flow in ["vendor_new_order", "customer_voice_order", "missed_call", "masked_call"] {
        assert!(embedded.flow(flow).is_some(), "{flow}");
    }
}

#[tokio::test]
async fn exotel_sends_exactly_its_parameters_and_headers() {
    let service = Service::start().await;
    let sim = service.sim().await;
    let receiver = Receiver::start().await;
    sim.script(VENDOR, CalleeScript::answers_after(secs(2)).never_hangs_up().presses("menu", "1")).unwrap();
    let callback = receiver.at("/cb");
    let sid = flow_call(
        &sim,
        VENDOR,
        &[
            ("CustomField", "order_4711"),
            ("StatusCallback", callback.as_str()),
            ("StatusCallbackContentType", "application/json"),
        ],
    )
    .await;
    sim.advance(secs(30)).await;

    assert_eq!(
        service.steps(),
        [
            "HEAD /exotel/applet/greeting:announce",
            "GET /exotel/applet/greeting:announce",
            "GET /exotel/applet/gather:menu",
            "GET /exotel/ivr/dtmf:menu",
            "HEAD /exotel/applet/greeting:goodbye",
            "GET /exotel/applet/greeting:goodbye",
        ]
    );
    let seen = service.seen();
    // Greeting: a HEAD to the configured URL without Exotel's parameters,
    // then the GET with a few; no Exotel-Version.
    assert_eq!(seen[0].keys(), ["flow", "step", "token"]);
    assert_eq!(seen[1].keys(), ["flow", "step", "token", "CallSid", "From", "To", "DialWhomNumber", "CustomField"]);
    assert_eq!(
        (seen[1].param("CallSid"), seen[1].param("From"), seen[1].param("To")),
        (Some(sid.as_str()), Some("09800000003"), Some("08047112233"))
    );
    assert_eq!((seen[1].param("DialWhomNumber"), seen[1].param("CustomField")), (Some(""), Some("order_4711")));
    assert!(seen[..2].iter().all(|s| s.exotel_version.is_none()));

    // Gather: the full Passthru family, with Exotel-Version.
    let gather = &seen[2];
    assert_eq!(gather.exotel_version.as_deref(), Some("1.0"));
    let family = [
        "CallSid",
        "CallFrom",
        "CallTo",
        "CallStatus",
        "Direction",
        "Created",
        "DialCallDuration",
        "StartTime",
        "EndTime",
        "CallType",
        "DialWhomNumber",
        "flow_id",
        "tenant_id",
        "From",
        "To",
        "CurrentTime",
    ];
    let mut expected = vec!["flow", "step", "token"];
    expected.extend(family);
    expected.push("CustomField");
    assert_eq!(gather.keys(), expected);

    // The Passthru after it: digits in double quotes, no Exotel-Version.
    let dtmf = &seen[3];
    assert_eq!(dtmf.exotel_version, None);
    let mut expected = vec!["flow", "step", "token"];
    expected.extend(family);
    expected.extend(["digits", "CustomField"]);
    assert_eq!(dtmf.keys(), expected);
    let at_dtmf = 2000 + 600 + spoken(MENU) + 300;
    let values: Vec<(&str, String)> = vec![
        ("CallSid", sid.clone()),
        ("CallFrom", "09800000003".into()),
        ("CallTo", "08047112233".into()),
        ("CallStatus", "in-progress".into()),
        ("Direction", "outbound-api".into()),
        ("Created", "Wed, 15 Jan 2025 10:00:00".into()),
        ("DialCallDuration", "0".into()),
        ("StartTime", "2025-01-15 10:00:00".into()),
        ("EndTime", "1970-01-01 05:30:00".into()),
        ("CallType", "call-attempt".into()),
        ("DialWhomNumber", String::new()),
        ("flow_id", "926".into()),
        ("tenant_id", "1".into()),
        ("From", "09800000003".into()),
        ("To", "08047112233".into()),
        ("CurrentTime", format_ist(t(at_dtmf))),
        ("digits", "\"1\"".into()),
        ("CustomField", "order_4711".into()),
    ];
    for (k, v) in values {
        assert_eq!(dtmf.param(k), Some(v.as_str()), "{k}");
    }
    assert!(dtmf.raw_query.contains("digits=%221%22"), "{}", dtmf.raw_query);
    assert!(dtmf.raw_query.starts_with(&format!("flow=vendor_new_order&step=menu&token={TOKEN}&CallSid=")));
    assert!(dtmf.raw_query.contains("Created=Wed%2C+15+Jan+2025+10%3A00%3A00"), "{}", dtmf.raw_query);
    assert_eq!(seen[4].param("digits"), None, "digits reach only the applet after the Gather");

    // The flow log says the same, without the token.
    let run = sim.flow_run(&sid).unwrap();
    assert_eq!(run.flow_id.as_deref(), Some("vendor_new_order"));
    assert_eq!(run.app_id.as_deref(), Some("926"));
    assert_eq!(run.path(), ["announce", "menu", "answer", "route", "goodbye", "end"]);
    let announce = run.entry("announce").unwrap();
    assert_eq!(announce.requests.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(), ["HEAD", "GET"]);
    assert_eq!(
        announce.requests[1].url,
        format!("{}/exotel/applet/greeting?flow=vendor_new_order&step=announce", service.url)
    );
    assert!(run.entries.iter().flat_map(|e| &e.requests).all(|r| !r.url.contains(TOKEN) && r.param("token").is_none()));
    let menu = run.entry("menu").unwrap();
    assert_eq!(menu.applet_type, AppletType::Gather);
    assert_eq!(menu.requests[0].headers, [("Exotel-Version".to_string(), "1.0".to_string())]);
    assert_eq!(menu.detail["digits"], "1");
    assert_eq!(menu.branch.as_deref(), Some("answer"));
    let answer = run.entry("answer").unwrap();
    assert_eq!((answer.status(), answer.body()), (Some(200), Some(r#"{"select":"done"}"#)));
    assert_eq!(answer.param("digits"), Some("\"1\""));
    assert_eq!(run.entry("route").unwrap().detail, json!({"select": "done", "case": "done"}));
    assert_eq!(run.outcome, Some(FlowOutcome::HungUp { applet_id: "end".into() }));
    let end = at_dtmf + 600;
    assert_eq!(run.ended_at, Some(t(end)));

    // The call then ends as usual.
    let call = sim.call(&sid).unwrap();
    assert_eq!((call.status, call.ended_at), (CallStatus::Completed, Some(t(end))));
    let terminal = receiver.captured().last().unwrap().json();
    assert_eq!(terminal["Status"], "completed");
    assert_eq!(terminal["CallSid"], sid.as_str(), "a flow call's callback has the four default fields");
    assert!(terminal.get("CustomField").is_none());
}

#[tokio::test]
async fn a_vendor_who_presses_3_then_2_reaches_the_prep_time_menu() {
    let service = Service::start().await;
    let sim = service.sim().await;
    sim.script(
        VENDOR,
        CalleeScript::answers_after(secs(2)).never_hangs_up().presses("menu", "3").presses("prep_menu", "2"),
    )
    .unwrap();
    let sid = flow_call(&sim, VENDOR, &[]).await;
    sim.advance(secs(60)).await;
    let run = sim.flow_run(&sid).unwrap();
    assert_eq!(
        run.path(),
        ["announce", "menu", "answer", "route", "prep_menu", "prep_answer", "prep_route", "goodbye", "end"]
    );
    assert_eq!(run.entry("answer").unwrap().param("digits"), Some("\"3\""));
    assert_eq!(run.entry("route").unwrap().detail["case"], "prep_time");
    assert_eq!(run.entry("route").unwrap().branch.as_deref(), Some("prep_menu"));
    let prep = run.entry("prep_answer").unwrap();
    assert_eq!(prep.param("digits"), Some("\"2\""));
    assert_eq!(prep.param("step"), None, "the applet's own query is part of the URL, not Exotel's parameters");
    assert!(prep.requests[0].url.ends_with("/exotel/ivr/dtmf?flow=vendor_new_order&step=prep_time"));
    assert_eq!(run.outcome, Some(FlowOutcome::HungUp { applet_id: "end".into() }));
}

#[tokio::test]
async fn the_same_gather_twice_takes_successive_keys() {
    let service = Service::start().await;
    let sim = service.sim().await;
    sim.script(VENDOR, CalleeScript::answers_after(secs(2)).never_hangs_up().presses("menu", "9").presses("menu", "1"))
        .unwrap();
    let sid = flow_call(&sim, VENDOR, &[]).await;
    sim.advance(secs(60)).await;
    let run = sim.flow_run(&sid).unwrap();
    assert_eq!(run.path(), ["announce", "menu", "answer", "route", "menu", "answer", "route", "goodbye", "end"]);
    let answers: Vec<Option<&str>> = run.visits("answer").iter().map(|e| e.param("digits")).collect();
    assert_eq!(answers, [Some("\"9\""), Some("\"1\"")]);
    assert_eq!(run.visits("route")[0].detail["case"], "repeat");
}

#[tokio::test]
async fn no_input_repeats_the_menu_then_takes_the_no_input_branch() {
    let service = Service::start().await;
    let sim = service.sim().await;
    sim.script(VENDOR, CalleeScript::answers_after(secs(2)).never_hangs_up()).unwrap();
    let sid = flow_call(&sim, VENDOR, &[]).await;
    sim.advance(secs(60)).await;
    let run = sim.flow_run(&sid).unwrap();
    let menu = run.entry("menu").unwrap();
    let plays = menu.detail["plays"].as_array().unwrap();
    assert_eq!(plays.len(), 3, "the prompt, then repeat_menu = 2 repeats");
    assert_eq!(plays[0]["prompt"], MENU);
    assert_eq!((plays[1]["prompt"].as_str(), plays[2]["prompt"].as_str()), (Some(REPEAT), Some(REPEAT)));
    assert!(plays.iter().all(|p| p["ended_by"] == "input_timeout" && p["digits"] == ""));
    assert_eq!(menu.detail["digits"], Value::Null);
    let answer = run.entry("answer").unwrap();
    assert_eq!(answer.param("digits"), None, "no input: no digits");
    let at_answer = 2600 + spoken(MENU) + 6000 + 2 * (spoken(REPEAT) + 6000);
    assert_eq!(answer.at, t(at_answer));
    assert_eq!(answer.param("CurrentTime"), Some(format_ist(t(at_answer)).as_str()));
    assert_eq!(run.outcome, Some(FlowOutcome::HungUp { applet_id: "end".into() }));

    // An entry with empty digits stays silent for one play: 1 comes at the first repeat.
    let second = Service::start().await;
    let sim = second.sim().await;
    sim.script(VENDOR, CalleeScript::answers_after(secs(2)).never_hangs_up().presses("menu", "").presses("menu", "1"))
        .unwrap();
    let sid = flow_call(&sim, VENDOR, &[]).await;
    sim.advance(secs(60)).await;
    let run = sim.flow_run(&sid).unwrap();
    let answer = run.entry("answer").unwrap();
    assert_eq!(answer.param("digits"), Some("\"1\""));
    assert_eq!(answer.at, t(2600 + spoken(MENU) + 6000 + spoken(REPEAT) + 300));
}

const GATE_FLOWS: &str = r#"
[[flows]]
id = "gate_check"
title = "Gate"
direction = "outbound"
caller_id = "EXOTEL_CALLER_ID"
start = "gate"

  [[flows.applets]]
  id = "gate"
  type = "passthru"
  url = "/exotel/test/gate?flow=gate_check"
  next = "open"
  on_302 = "closed"

  [[flows.applets]]
  id = "open"
  type = "greeting"
  url = "/exotel/applet/greeting?flow=gate_check&step=open"
  next = "end"

  [[flows.applets]]
  id = "closed"
  type = "greeting"
  url = "/exotel/applet/greeting?flow=gate_check&step=closed"
  next = "end"

  [[flows.applets]]
  id = "end"
  type = "hangup"

[[flows]]
id = "strict_gate"
title = "Gate without a 302 branch"
direction = "outbound"
caller_id = "EXOTEL_CALLER_ID"
start = "gate"

  [[flows.applets]]
  id = "gate"
  type = "passthru"
  url = "/exotel/test/gate?flow=strict_gate"
  next = "open"

  [[flows.applets]]
  id = "open"
  type = "greeting"
  url = "/exotel/applet/greeting?flow=strict_gate&step=open"
  next = "end"

  [[flows.applets]]
  id = "end"
  type = "hangup"
"#;

#[tokio::test]
async fn a_passthru_302_takes_the_other_branch_or_ends_the_call() {
    let service = Service::start().await;
    let definitions = FlowDefinitions::from_toml(GATE_FLOWS).unwrap();
    let flows = service.flows(definitions).with_app_id("77", "gate_check").with_app_id("78", "strict_gate");
    let sim = sim_with(SimConfig { flows: Some(flows), ..config_at(START) }).await;
    service.answer("/exotel/test/gate?flow=gate_check", vec![Answer::text(302, "")]);
    service.answer("/exotel/test/gate?flow=strict_gate", vec![Answer::text(302, "")]);
    sim.script(VENDOR, CalleeScript::answers_after(secs(2)).never_hangs_up()).unwrap();
    let url = |app: &str| format!("http://my.exotel.com/mangwalesim1/exoml/start_voice/{app}");
    let first =
        json(post(&sim, "/Calls/connect.json", &[("From", VENDOR), ("CallerId", EXOPHONE), ("Url", &url("77"))]).await)
            .await
            .1["Call"]["Sid"]
            .as_str()
            .unwrap()
            .to_string();
    let second =
        json(post(&sim, "/Calls/connect.json", &[("From", VENDOR), ("CallerId", EXOPHONE), ("Url", &url("78"))]).await)
            .await
            .1["Call"]["Sid"]
            .as_str()
            .unwrap()
            .to_string();
    sim.advance(secs(30)).await;

    let run = sim.flow_run(&first).unwrap();
    assert_eq!(run.path(), ["gate", "closed", "end"]);
    assert_eq!(run.entry("gate").unwrap().status(), Some(302), "the redirect is not followed");
    assert_eq!(run.entry("gate").unwrap().branch.as_deref(), Some("closed"));

    let run = sim.flow_run(&second).unwrap();
    assert_eq!(run.path(), ["gate"]);
    assert_eq!(run.outcome, Some(FlowOutcome::HungUp { applet_id: "gate".into() }));
    assert_eq!(sim.call(&second).unwrap().ended_at, Some(t(2000)));
    assert!(service.seen().iter().all(|s| s.path != "/somewhere-else"));
}

#[tokio::test]
async fn a_callee_who_hangs_up_mid_flow_ends_it_there() {
    let service = Service::start().await;
    let sim = service.sim().await;
    // Answers at 2 s, hangs up at 3 s: while the menu prompt plays (2.6 s … 3.68 s).
    sim.script(VENDOR, CalleeScript::answers_after(secs(2)).stays_for(secs(1)).presses("menu", "1")).unwrap();
    let sid = flow_call(&sim, VENDOR, &[]).await;
    sim.advance(secs(30)).await;
    assert_eq!(
        service.steps(),
        [
            "HEAD /exotel/applet/greeting:announce",
            "GET /exotel/applet/greeting:announce",
            "GET /exotel/applet/gather:menu"
        ]
    );
    let run = sim.flow_run(&sid).unwrap();
    assert_eq!(run.outcome, Some(FlowOutcome::CallEnded { applet_id: Some("menu".into()) }));
    assert_eq!(run.ended_at, Some(t(3000)));
    let menu = run.entry("menu").unwrap();
    assert_eq!(menu.branch, None);
    assert_eq!(menu.detail["interrupted_at"], "2025-01-15 10:00:03");
    let call = sim.call(&sid).unwrap();
    assert_eq!((call.status, call.conversation_duration), (CallStatus::Completed, 1));
}

#[tokio::test]
async fn our_url_timing_out_or_failing_drops_the_call() {
    let service = Service::start().await;
    let sim = service.sim_with(|f| f.applet_timeout = ms(300)).await;
    sim.script(VENDOR, CalleeScript::answers_after(secs(2)).never_hangs_up().presses("menu", "1")).unwrap();
    let slow = Answer { delay: secs(3), ..Answer::text(200, "{}") };
    service.answer("/exotel/applet/gather?flow=vendor_new_order&step=menu", vec![slow]);
    let sid = flow_call(&sim, VENDOR, &[]).await;
    sim.advance(secs(30)).await;
    let run = sim.flow_run(&sid).unwrap();
    let Some(FlowOutcome::Dropped { applet_id, reason }) = &run.outcome else { panic!("{:?}", run.outcome) };
    assert_eq!(applet_id, "menu");
    assert!(reason.starts_with("timeout"), "{reason}");
    let menu = run.entry("menu").unwrap();
    assert_eq!((menu.requests[0].response.as_ref(), menu.branch.as_ref()), (None, None));
    assert!(menu.error.as_deref().unwrap().starts_with("timeout"));
    let call = sim.call(&sid).unwrap();
    assert_eq!(call.ended_at, Some(t(2600 + 300)), "dropped when Exotel gives up");
    assert_eq!(call.status, CallStatus::Completed);

    // A 5xx drops it at once; so does a Greeting that is not text/plain.
    service.answer("/exotel/applet/gather?flow=vendor_new_order&step=menu", vec![Answer::text(503, "busy")]);
    let sid = flow_call(&sim, VENDOR, &[]).await;
    let placed = sim.now();
    sim.advance(secs(30)).await;
    let run = sim.flow_run(&sid).unwrap();
    assert!(
        matches!(&run.outcome, Some(FlowOutcome::Dropped { applet_id, reason }) if applet_id == "menu" && reason.contains("503"))
    );
    assert_eq!(sim.call(&sid).unwrap().ended_at, Some(placed + chrono::Duration::milliseconds(2600)));

    let json_greeting = Answer { content_type: "application/json", ..Answer::text(200, "{}") };
    service.answer("/exotel/applet/greeting?flow=vendor_new_order&step=announce", vec![json_greeting]);
    let sid = flow_call(&sim, VENDOR, &[]).await;
    sim.advance(secs(30)).await;
    let run = sim.flow_run(&sid).unwrap();
    let Some(FlowOutcome::Dropped { applet_id, reason }) = &run.outcome else { panic!("{:?}", run.outcome) };
    assert_eq!(applet_id, "announce");
    assert!(reason.contains("not text/plain"), "{reason}");
    assert_eq!(run.entry("announce").unwrap().requests.len(), 1, "the HEAD already failed");

    // Nobody listening: a connection error, logged without the token.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let sim = service.sim_with(|f| f.service_base_url = format!("http://127.0.0.1:{closed_port}")).await;
    sim.script(VENDOR, CalleeScript::answers_after(secs(2)).never_hangs_up()).unwrap();
    let sid = flow_call(&sim, VENDOR, &[]).await;
    sim.advance(secs(30)).await;
    let run = sim.flow_run(&sid).unwrap();
    let Some(FlowOutcome::Dropped { applet_id, reason }) = &run.outcome else { panic!("{:?}", run.outcome) };
    assert_eq!(applet_id, "announce");
    assert!(reason.starts_with("connection error") && !reason.contains(TOKEN), "{reason}");
    assert_eq!(sim.call(&sid).unwrap().ended_at, Some(t(2000)));
}

/// Exotel's Switch Case reads exactly `{"select":"<case>"}` in `text/plain`
/// (support 3000052018), and a Greeting's HEAD must carry its GET's headers
/// (support 48285): the simulator drops the call on anything else.
#[tokio::test]
async fn a_switch_answer_or_greeting_head_that_strays_from_the_docs_drops_the_call() {
    let service = Service::start().await;
    let sim = service.sim().await;
    sim.script(VENDOR, CalleeScript::answers_after(secs(2)).never_hangs_up().presses("menu", "1")).unwrap();
    let dtmf = "/exotel/ivr/dtmf?flow=vendor_new_order&step=menu";
    let wrong = [
        (Answer { content_type: "application/json", ..Answer::text(200, r#"{"select":"done"}"#) }, "not text/plain"),
        (Answer::text(200, r#"{"ok":true,"select":"done","note":null}"#), "not {\"select\""),
        (Answer::text(200, "done"), "not {\"select\""),
    ];
    for (answer, expected) in wrong {
        service.answer(dtmf, vec![answer]);
        let sid = flow_call(&sim, VENDOR, &[]).await;
        sim.advance(secs(60)).await;
        let run = sim.flow_run(&sid).unwrap();
        let Some(FlowOutcome::Dropped { applet_id, reason }) = &run.outcome else { panic!("{:?}", run.outcome) };
        assert_eq!(applet_id, "answer");
        assert!(reason.contains(expected), "{reason}");
    }

    service.answer(dtmf, vec![Answer::text(200, r#"{"select":"done"}"#)]);
    let head_then_get = vec![
        Answer::text(200, ""),
        Answer { content_type: "text/plain; charset=utf-8", ..Answer::text(200, "Namaste") },
    ];
    service.answer("/exotel/applet/greeting?flow=vendor_new_order&step=announce", head_then_get);
    let sid = flow_call(&sim, VENDOR, &[]).await;
    sim.advance(secs(60)).await;
    let run = sim.flow_run(&sid).unwrap();
    let Some(FlowOutcome::Dropped { applet_id, reason }) = &run.outcome else { panic!("{:?}", run.outcome) };
    assert_eq!(applet_id, "announce");
    assert!(reason.contains("HEAD answered Content-Type"), "{reason}");
}

#[tokio::test]
async fn connect_dials_scripted_numbers_in_order() {
    let service = Service::start().await;
    let sim = service.sim().await;
    *service.state.connect_numbers.lock().unwrap() = vec![RIDER_A.to_string(), RIDER_B.to_string()];
    sim.script(CUSTOMER, CalleeScript::answers_after(secs(1)).never_hangs_up()).unwrap();
    sim.script(RIDER_A, CalleeScript::no_answer()).unwrap();
    sim.script(RIDER_B, CalleeScript::answers_after(secs(3)).stays_for(secs(10))).unwrap();
    let sid = sim.incoming_call(CUSTOMER, EXOPHONE, "masked_call").unwrap();
    sim.advance(secs(120)).await;

    let run = sim.flow_run(&sid).unwrap();
    assert_eq!(run.path(), ["identify", "route", "connect", "after_connect", "end"]);
    let connect = run.entry("connect").unwrap();
    assert_eq!(connect.requests[0].headers, [("Exotel-Version".to_string(), "1.0".to_string())]);
    assert_eq!(connect.param("CallStatus"), Some("in-progress"), "Exotel answered the caller to connect");
    assert_eq!(connect.detail["attempts"][0]["status"], "no-answer");
    assert_eq!(connect.detail["attempts"][1]["status"], "completed");
    let after = run.entry("after_connect").unwrap();
    assert_eq!(after.at, t(20_000 + 3_000 + 10_000), "20 s max_ringing_duration, 3 s ring, 10 s talk");
    for (k, v) in [
        ("DialCallStatus", "completed"),
        ("DialCallDuration", "10"),
        ("DialWhomNumber", "09800000005"),
        ("CallType", "completed"),
        ("Direction", "incoming"),
        ("CallFrom", "09800000002"),
        ("CallTo", "08047112233"),
    ] {
        assert_eq!(after.param(k), Some(v), "{k}");
    }
    let sim_sid = sim.account_sid().to_string();
    assert_eq!(
        after.param("RecordingUrl"),
        Some(format!("https://s3-ap-southeast-1.amazonaws.com/exotelrecordings/{sim_sid}/{sid}.mp3").as_str())
    );
    assert_eq!(after.param("CustomField"), None, "incoming calls have no CustomField");
    let call = sim.call(&sid).unwrap();
    assert_eq!(call.status, CallStatus::Completed);
    let statuses: Vec<_> = call.legs.iter().map(|l| l.status).collect();
    assert_eq!(statuses, [Some(CallStatus::Completed), Some(CallStatus::NoAnswer), Some(CallStatus::Completed)]);
    assert_eq!(call.legs[2].on_call_duration, 10);

    // Nobody to dial: straight on, with DialCallStatus=no-answer.
    service.state.connect_numbers.lock().unwrap().clear();
    let sid = sim.incoming_call(CUSTOMER, EXOPHONE, "masked_call").unwrap();
    let came_in = sim.now();
    sim.advance(secs(10)).await;
    let after = sim.flow_run(&sid).unwrap().entry("after_connect").cloned().unwrap();
    assert_eq!(after.at, came_in);
    for (k, v) in
        [("DialCallStatus", "no-answer"), ("DialCallDuration", "0"), ("DialWhomNumber", ""), ("CallType", "incomplete")]
    {
        assert_eq!(after.param(k), Some(v), "{k}");
    }
    assert_eq!(after.param("RecordingUrl"), None);
}

/// A call into an ExoPhone runs the flow connected to that number, placed
/// with one request to the control endpoint, and the flow run says whom
/// the Connect dialled and who was connected.
#[tokio::test]
async fn a_call_into_an_exophone_runs_its_flow_and_reports_who_was_connected() {
    let service = Service::start().await;
    let sim = service.sim().await;
    let incoming = |body: Value| {
        let url = format!("{}/_sim/incoming", sim.base_url());
        async move { json(client().post(url).json(&body).send().await.unwrap()).await }
    };
    let (_, index) = json(client().get(format!("{}/_sim", sim.base_url())).send().await.unwrap()).await;
    assert_eq!(
        index["exophone_flows"],
        json!([
            {"exophone": EXOPHONE, "flow_id": "customer_voice_order"},
            {"exophone": DEFAULT_MISSED_CALL_EXOPHONE, "flow_id": "missed_call"},
            {"exophone": DEFAULT_MASKING_EXOPHONE, "flow_id": "masked_call"},
        ])
    );

    // The masking number: our Connect names two riders; the first is busy.
    *service.state.connect_numbers.lock().unwrap() = vec![RIDER_A.to_string(), RIDER_B.to_string()];
    sim.script(RIDER_A, CalleeScript::busy_after(secs(2))).unwrap();
    sim.script(RIDER_B, CalleeScript::answers_after(secs(3)).stays_for(secs(10))).unwrap();
    let (status, body) = incoming(json!({"from": CUSTOMER, "to": DEFAULT_MASKING_EXOPHONE})).await;
    assert_eq!((status, body["flow_id"].as_str()), (200, Some("masked_call")), "{body}");
    let sid = body["call_sid"].as_str().unwrap().to_string();
    sim.advance(secs(60)).await;
    let (status, run) = json(client().get(format!("{}/_sim/flows/{sid}", sim.base_url())).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let connect = &run["connects"][0];
    assert_eq!(connect["applet_id"], "connect");
    assert_eq!(
        (connect["caller_id"].as_str(), connect["caller_id_is_exophone"].as_bool()),
        (Some("08047112255"), Some(true))
    );
    assert_eq!(connect["numbers"], json!([RIDER_A, RIDER_B]));
    let attempts: Vec<(&str, &str)> = connect["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["number"].as_str().unwrap(), a["status"].as_str().unwrap()))
        .collect();
    assert_eq!(attempts, [("09800000004", "busy"), ("09800000005", "completed")]);
    assert_eq!(connect["connected"], "09800000005");
    assert_eq!(
        (connect["dial_call_status"].as_str(), connect["duration_secs"].as_u64()),
        (Some("completed"), Some(10))
    );
    let run = sim.flow_run(&sid).unwrap();
    assert_eq!(run.connected(), ["09800000005"]);
    assert_eq!(run.entry("after_connect").unwrap().param("DialCallStatus"), Some("completed"));

    // The caller hangs up mid-conversation: connected all the same.
    sim.script(CUSTOMER, CalleeScript::hangs_up_after(secs(8))).unwrap();
    *service.state.connect_numbers.lock().unwrap() = vec![RIDER_B.to_string()];
    let (sid, flow) = sim.call_exophone(CUSTOMER, DEFAULT_MASKING_EXOPHONE).unwrap();
    assert_eq!(flow, "masked_call");
    sim.advance(secs(60)).await;
    let run = sim.flow_run(&sid).unwrap();
    assert_eq!(run.outcome, Some(FlowOutcome::CallEnded { applet_id: Some("connect".into()) }));
    assert_eq!(run.connects[0].connected.as_deref(), Some("09800000005"));
    assert_eq!(run.connects[0].duration_secs, 5, "answered 3 s in, the caller left at 8 s");

    // The caller gives up while the callee still rings: nobody connected.
    sim.script(RIDER_B, CalleeScript::answers_after(secs(15))).unwrap();
    let (sid, _) = sim.call_exophone(CUSTOMER, DEFAULT_MASKING_EXOPHONE).unwrap();
    sim.advance(secs(60)).await;
    let report = sim.flow_run(&sid).unwrap().connects[0].clone();
    assert_eq!((report.connected, report.dial_call_status), (None, None));
    assert_eq!(report.attempts[0].status, None, "still ringing when the caller left");

    // The missed-call number runs the missed-call flow.
    let (status, body) = incoming(json!({"from": CUSTOMER, "to": DEFAULT_MISSED_CALL_EXOPHONE})).await;
    assert_eq!((status, body["flow_id"].as_str()), (200, Some("missed_call")), "{body}");
    // A flow named explicitly wins over the number's.
    let (status, body) = incoming(json!({"from": CUSTOMER, "to": EXOPHONE, "flow_id": "missed_call"})).await;
    assert_eq!((status, body["flow_id"].as_str()), (200, Some("missed_call")), "{body}");
    // A number of the account with no flow, and one that is not the account's.
    let bare = service.sim_with(|f| f.exophone_flows.clear()).await;
    assert!(matches!(bare.call_exophone(CUSTOMER, EXOPHONE), Err(SimError::NoFlowOnExoPhone(_))));
    let (status, body) = incoming(json!({"from": CUSTOMER, "to": "+918000000000"})).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("no flow is connected"), "{body}");
    let (status, _) = incoming(json!({"from": CUSTOMER})).await;
    assert_eq!(status, 400, "no ExoPhone named");
}

#[tokio::test]
async fn incoming_missed_call_rings_and_is_never_answered() {
    let service = Service::start().await;
    let sim = service.sim().await;
    // Through the control endpoint, as the sandbox would.
    let (status, body) = json(
        client()
            .post(format!("{}/_sim/incoming", sim.base_url()))
            .json(&json!({"from": CUSTOMER, "exophone": EXOPHONE, "flow_id": "missed_call"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sid = body["call_sid"].as_str().unwrap().to_string();
    sim.advance(secs(5)).await;
    assert_eq!(service.steps(), ["GET /exotel/ivr/missed-call:missed_call"]);
    let request = &service.seen()[0];
    for (k, v) in [
        ("CallSid", sid.as_str()),
        ("CallFrom", "09800000002"),
        ("CallTo", "08047112233"),
        ("CallStatus", "ringing"),
        ("Direction", "incoming"),
        ("CallType", "call-attempt"),
        ("flow_id", "5001"),
        ("From", "09800000002"),
        ("To", "08047112233"),
    ] {
        assert_eq!(request.param(k), Some(v), "{k}");
    }
    assert_eq!(request.param("CustomField"), None);
    let call = sim.call(&sid).unwrap();
    assert_eq!((call.status, call.conversation_duration), (CallStatus::NoAnswer, 0));
    assert_eq!(call.ended_at, Some(t(0)));
    let (status, run) = json(client().get(format!("{}/_sim/flows/{sid}", sim.base_url())).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(run["outcome"], json!({"kind": "hung_up", "applet_id": "end"}));
    let details = json(common::get(&sim, &format!("/Calls/{sid}.json")).await).await.1;
    assert_eq!(details["Call"]["Direction"], "inbound");

    assert!(matches!(sim.incoming_call(CUSTOMER, "+918000000000", "missed_call"), Err(SimError::NotAnExoPhone(_))));
    assert!(matches!(sim.incoming_call(CUSTOMER, EXOPHONE, "nope"), Err(SimError::UnknownFlow(_))));
    let plain = sim_with(config_at(START)).await;
    assert!(matches!(plain.incoming_call(CUSTOMER, EXOPHONE, "missed_call"), Err(SimError::FlowsNotConfigured)));
}

/// The customer voice order up to the bot: passthru, greeting (answers the
/// call), menu (1) and its passthru. Returns when the stream starts, in ms.
fn bot_starts_at() -> u64 {
    600 + spoken(MENU) + 300
}

#[tokio::test]
async fn the_voicebot_stream_follows_exotels_protocol() {
    let service = Service::start().await;
    let with_credentials = service.url.replace("http://", "http://bot:s3cret@");
    let mut flows = service.flows(FlowDefinitions::repository().unwrap());
    flows.service_base_url = with_credentials;
    let sim = sim_with(SimConfig { flows: Some(flows), ..config_at(START) }).await;
    sim.script(
        CUSTOMER,
        CalleeScript::answers_after(secs(1))
            .never_hangs_up()
            .presses("menu", "1")
            .says("bot", "do masala dosa")
            .presses("bot", "5"),
    )
    .unwrap();
    let sid = sim.incoming_call(CUSTOMER, EXOPHONE, "customer_voice_order").unwrap();
    sim.advance(secs(30)).await;

    let bot_at = bot_starts_at();
    let run = sim.flow_run(&sid).unwrap();
    assert_eq!(
        run.path(),
        ["incoming", "caller", "welcome", "menu", "answer", "route", "bot", "after_bot", "goodbye", "end"]
    );
    assert_eq!(run.entry("incoming").unwrap().param("CallStatus"), Some("ringing"));
    assert_eq!(run.entry("answer").unwrap().param("CallStatus"), Some("in-progress"));
    let basic = format!("Basic {}", b64(b"bot:s3cret"));
    assert_eq!(service.state.bot_auth.lock().unwrap().as_deref(), Some(basic.as_str()));
    assert!(service.seen().iter().all(|s| s.authorization.as_deref() == Some(basic.as_str())));

    let streams = sim.voicebot_streams(&sid);
    assert_eq!(streams.len(), 1);
    let stream = &streams[0];
    let stream_sid = stream.stream_sid.clone();
    assert_eq!(stream.applet_id.as_deref(), Some("bot"));
    assert_eq!(stream.url, format!("{}/exotel/voicebot?flow=customer_voice_order", service.url.replace("http", "ws")));
    assert_eq!(stream.started_at, t(bot_at));

    // connected, then start (snake_case, custom parameters from the URL query).
    let frames = service.bot_frames();
    assert_eq!(frames[0], json!({"event": "connected"}));
    assert_eq!(
        frames[1],
        json!({
            "event": "start", "sequence_number": 1, "stream_sid": stream_sid,
            "start": {
                "stream_sid": stream_sid, "call_sid": sid, "account_sid": sim.account_sid(),
                "from": "09800000002", "to": "08047112233",
                "custom_parameters": {"flow": "customer_voice_order", "token": TOKEN},
                "media_format": {"encoding": "raw", "sample_rate": "8000", "bit_rate": "128kbps"}
            }
        })
    );
    let seqs: Vec<u64> = frames[1..].iter().map(|f| f["sequence_number"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");

    // Media every 100 ms: 1600 bytes of 8 kHz 16-bit PCM, chunk and timestamp counting up.
    let media = stream.events_of(StreamDirection::ToBot, "media");
    let dtmf_at = bot_at + 1000 + spoken("do masala dosa") + 1000;
    let end_at = dtmf_at + 40;
    assert_eq!(media.len() as u64, (end_at - bot_at) / 100);
    for (i, event) in media.iter().enumerate() {
        let k = i as u64 + 1;
        assert_eq!(event.at, t(bot_at + 100 * k));
        assert_eq!(event.frame["media"]["chunk"], k);
        assert_eq!(event.frame["media"]["timestamp"], (100 * k).to_string());
        assert_eq!(event.frame["media"]["payload_bytes"], 1600);
    }
    let bot_media: Vec<&Value> = frames.iter().filter(|f| f["event"] == "media").collect();
    assert_eq!(bot_media.len(), media.len());
    let decoded =
        |f: &Value| base64::engine::general_purpose::STANDARD.decode(f["media"]["payload"].as_str().unwrap()).unwrap();
    assert!(decoded(bot_media[9]).iter().all(|b| *b == 0), "silence before the caller speaks");
    assert!(decoded(bot_media[10]).iter().any(|b| *b != 0), "speech from 1 s on");

    // The key, as a dtmf event.
    let dtmf: Vec<&Value> = frames.iter().filter(|f| f["event"] == "dtmf").collect();
    assert_eq!(dtmf.len(), 1);
    assert_eq!(dtmf[0]["dtmf"], json!({"digit": "5", "duration": "100"}));
    assert_eq!(stream.events_of(StreamDirection::ToBot, "dtmf")[0].at, t(dtmf_at));

    // Marks echo once the audio before them has played; clear cuts the 2 s clip at 1.1 s.
    assert_eq!(
        stream.marks_echoed,
        [("m1".to_string(), t(bot_at + 500)), ("m2".to_string(), t(bot_at + 1100)), ("m3".to_string(), t(end_at))]
    );
    let echoed: Vec<&str> =
        frames.iter().filter(|f| f["event"] == "mark").map(|f| f["mark"]["name"].as_str().unwrap()).collect();
    assert_eq!(echoed, ["m1", "m2", "m3"]);
    assert_eq!(stream.events_of(StreamDirection::FromBot, "clear")[0].at, t(bot_at + 1100));
    assert_eq!(stream.audio_bytes_received, 8000 + 32000 + 321);
    assert_eq!(stream.audio_bytes_cleared, 22400, "1.4 s of the 2 s clip never played");
    assert_eq!(stream.audio_bytes_played, 8000 + 9600 + 321);

    // The 321-byte frame (sent with camelCase streamSid) is accepted but flagged.
    assert_eq!(stream.violations.len(), 1, "{:?}", stream.violations);
    assert!(stream.violations[0].message.contains("321 bytes is not a multiple of 320"), "{:?}", stream.violations);

    // The bot closed: no stop; the flow goes on with Stream[...].
    assert_eq!((stream.stop_reason.as_deref(), stream.disconnected_by.as_deref()), (None, Some("bot")));
    assert!(frames.iter().all(|f| f["event"] != "stop"));
    let after = run.entry("after_bot").unwrap();
    assert_eq!(after.at, t(end_at));
    let recording_url = format!("{}/_sim/recordings/{stream_sid}.wav", sim.base_url());
    // Exotel echoes the applet's URL, token included; the flow log hides the token.
    let stream_url_logged = after.param("Stream[StreamUrl]").unwrap().to_string();
    assert!(stream_url_logged.starts_with("ws://") && stream_url_logged.ends_with("token=***"), "{stream_url_logged}");
    let stream_params: Vec<(&str, &str)> = after
        .params()
        .iter()
        .filter(|(k, _)| k.starts_with("Stream["))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        stream_params,
        [
            ("Stream[StreamSID]", stream_sid.as_str()),
            ("Stream[Status]", "completed"),
            ("Stream[Duration]", "2"),
            ("Stream[DisconnectedBy]", "bot"),
            ("Stream[StreamUrl]", stream_url_logged.as_str()),
            ("Stream[RecordingUrl]", recording_url.as_str()),
        ]
    );
    assert_eq!(run.entry("goodbye").unwrap().param("Stream[StreamSID]"), None, "only the next applet");
    assert_eq!(run.entry("bot").unwrap().detail["disconnected_by"], "bot");

    // The caller's side is served as a WAV: silence, the utterance, silence.
    let response = client().get(&recording_url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    let wav = response.bytes().await.unwrap();
    assert_eq!(&wav[0..4], b"RIFF");
    assert_eq!(&wav[8..16], b"WAVEfmt ");
    assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 1, "mono");
    assert_eq!(u32::from_le_bytes(wav[24..28].try_into().unwrap()), 8000);
    assert_eq!(u16::from_le_bytes([wav[34], wav[35]]), 16);
    assert_eq!(wav.len(), 44 + media.len() * 1600);
    let samples: Vec<i16> = wav[44..].chunks(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
    let speech_end = 8000 + 8 * spoken("do masala dosa") as usize;
    assert!(samples[..8000].iter().all(|s| *s == 0));
    assert!(samples[8000..speech_end].chunks(160).all(|w| w.iter().any(|s| s.unsigned_abs() > 500)));
    assert!(samples[speech_end..].iter().all(|s| *s == 0));
    assert_eq!(sim.recording(&stream_sid).unwrap(), wav.to_vec());
    assert_eq!(
        client().get(format!("{}/_sim/recordings/nope.wav", sim.base_url())).send().await.unwrap().status(),
        404
    );
}

#[tokio::test]
async fn the_stream_stops_with_callended_or_stopped() {
    let service = Service::start().await;
    *service.state.bot_mode.lock().unwrap() = BotMode::Passive;
    let sim = service.sim_with(|f| f.voicebot.max_session = secs(2)).await;
    let bot_at = bot_starts_at();

    // The caller hangs up 1.5 s into the stream.
    let hang_up = bot_at + 1500;
    sim.script(CUSTOMER, CalleeScript::answers_after(secs(1)).stays_for(ms(hang_up)).presses("menu", "1")).unwrap();
    let sid = sim.incoming_call(CUSTOMER, EXOPHONE, "customer_voice_order").unwrap();
    sim.advance(secs(30)).await;
    let stream = &sim.voicebot_streams(&sid)[0];
    assert_eq!((stream.stop_reason.as_deref(), stream.disconnected_by.as_deref()), (Some("callended"), Some("user")));
    let stop = service.bot_frames().into_iter().find(|f| f["event"] == "stop").unwrap();
    assert_eq!(stop["stop"], json!({"call_sid": sid, "account_sid": sim.account_sid(), "reason": "callended"}));
    assert_eq!(stream.ended_at, Some(t(hang_up)));
    let run = sim.flow_run(&sid).unwrap();
    assert_eq!(run.outcome, Some(FlowOutcome::CallEnded { applet_id: Some("bot".into()) }));
    assert!(run.entry("after_bot").is_none());
    assert_eq!(run.entry("bot").unwrap().branch, None);

    // The caller stays: Exotel stops the stream at the session limit and goes on.
    service.state.bot_frames.lock().unwrap().clear();
    sim.script(CUSTOMER, CalleeScript::answers_after(secs(1)).never_hangs_up().presses("menu", "1")).unwrap();
    let sid = sim.incoming_call(CUSTOMER, EXOPHONE, "customer_voice_order").unwrap();
    let came_in = sim.now();
    sim.advance(secs(30)).await;
    let stream = &sim.voicebot_streams(&sid)[0];
    assert_eq!((stream.stop_reason.as_deref(), stream.disconnected_by.as_deref()), (Some("stopped"), Some("NA")));
    let stop = service.bot_frames().into_iter().find(|f| f["event"] == "stop").unwrap();
    assert_eq!(stop["stop"]["reason"], "stopped");
    let run = sim.flow_run(&sid).unwrap();
    let after = run.entry("after_bot").unwrap();
    assert_eq!(after.at, came_in + chrono::Duration::milliseconds((bot_at + 2000) as i64));
    assert_eq!(after.param("Stream[DisconnectedBy]"), Some("NA"));
    assert_eq!(after.param("Stream[Duration]"), Some("2"));
    assert_eq!(after.param("Stream[Status]"), Some("completed"));
    assert!(stream.violations.is_empty());
    assert_eq!(stream.media_frames_sent, 20);
}

#[tokio::test]
async fn a_stream_url_call_ends_with_its_stream_and_failures_move_on() {
    let service = Service::start().await;
    *service.state.bot_mode.lock().unwrap() = BotMode::CloseAfterStart;
    let sim = service.sim().await;
    sim.script(CUSTOMER, CalleeScript::answers_after(secs(2)).never_hangs_up()).unwrap();
    let stream_url = format!("{}/exotel/voicebot?flow=direct&token={TOKEN}", service.url.replace("http", "ws"));
    let (status, body) = json(
        post(
            &sim,
            "/Calls/connect.json",
            &[("From", CUSTOMER), ("CallerId", EXOPHONE), ("StreamUrl", &stream_url), ("StreamType", "bidirectional")],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sid = body["Call"]["Sid"].as_str().unwrap().to_string();
    sim.advance(secs(10)).await;
    let run = sim.flow_run(&sid).unwrap();
    assert_eq!((run.flow_id.as_deref(), run.outcome.as_ref()), (None, Some(&FlowOutcome::StreamEnded)));
    let stream = &sim.voicebot_streams(&sid)[0];
    assert_eq!((stream.applet_id.as_deref(), stream.disconnected_by.as_deref()), (None, Some("bot")));
    assert_eq!(sim.call(&sid).unwrap().ended_at, Some(t(2000)));

    // A bot that refuses the handshake (twice: Exotel retries once): Stream[Status]=failed, and the flow goes on.
    let refusing = Service::start().await;
    *refusing.state.bot_mode.lock().unwrap() = BotMode::Refuse;
    let sim = refusing.sim().await;
    sim.script(CUSTOMER, CalleeScript::answers_after(secs(1)).never_hangs_up().presses("menu", "1")).unwrap();
    let sid = sim.incoming_call(CUSTOMER, EXOPHONE, "customer_voice_order").unwrap();
    sim.advance(secs(10)).await;
    assert_eq!(*refusing.state.handshakes.lock().unwrap(), 2);
    let run = sim.flow_run(&sid).unwrap();
    assert_eq!(
        run.path(),
        ["incoming", "caller", "welcome", "menu", "answer", "route", "bot", "after_bot", "goodbye", "end"]
    );
    let after = run.entry("after_bot").unwrap();
    assert_eq!(after.at, t(bot_starts_at()));
    for (k, v) in [("Stream[Status]", "failed"), ("Stream[Duration]", "0"), ("Stream[DisconnectedBy]", "NA")] {
        assert_eq!(after.param(k), Some(v), "{k}");
    }
    assert_eq!(after.param("Stream[RecordingUrl]"), None);
    let stream = &sim.voicebot_streams(&sid)[0];
    assert_eq!(stream.status.as_deref(), Some("failed"));
    assert!(stream.error.as_deref().unwrap().contains("handshake failed twice"), "{:?}", stream.error);
}

#[tokio::test]
async fn an_unknown_app_id_hangs_up_and_flow_ids_work_as_app_ids() {
    let service = Service::start().await;
    let sim = service.sim().await;
    sim.script(VENDOR, CalleeScript::answers_after(secs(2)).never_hangs_up()).unwrap();
    let connect = |app: &'static str| {
        let sim = &sim;
        async move {
            let url = format!("http://my.exotel.com/mangwalesim1/exoml/start_voice/{app}");
            let form = [("From", VENDOR), ("CallerId", EXOPHONE), ("Url", url.as_str())];
            json(post(sim, "/Calls/connect.json", &form).await).await.1["Call"]["Sid"].as_str().unwrap().to_string()
        }
    };
    let unknown = connect("999").await;
    let by_flow_id = connect("vendor_reminder").await;
    sim.advance(secs(60)).await;
    let run = sim.flow_run(&unknown).unwrap();
    assert_eq!((run.flow_id, run.outcome), (None, Some(FlowOutcome::UnknownFlow { app_id: "999".into() })));
    assert_eq!(sim.call(&unknown).unwrap().ended_at, Some(t(2000)));
    let run = sim.flow_run(&by_flow_id).unwrap();
    assert_eq!(run.flow_id.as_deref(), Some("vendor_reminder"));
    assert_eq!(run.entry("menu").unwrap().param("flow_id"), Some("vendor_reminder"));
}

#[tokio::test]
async fn run_standalone_with_runs_flows_on_the_system_clock() {
    let service = Service::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let flows = service.flows(FlowDefinitions::repository().unwrap());
    let config = SimConfig { port, flows: Some(flows), ..SimConfig::default() };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(mangwale_sim::run_standalone_with(config, async {
        let _ = stopped.await;
    }));
    let base = format!("http://127.0.0.1:{port}");
    let body = json!({"from": CUSTOMER, "exophone": EXOPHONE, "flow_id": "missed_call"});
    let mut sid = None;
    for _ in 0..100 {
        if let Ok(response) = client().post(format!("{base}/_sim/incoming")).json(&body).send().await {
            sid = json(response).await.1["call_sid"].as_str().map(str::to_string);
            break;
        }
        tokio::time::sleep(ms(20)).await;
    }
    let sid = sid.expect("the standalone simulator listens");
    let mut outcome = Value::Null;
    for _ in 0..100 {
        let (status, run) = json(client().get(format!("{base}/_sim/flows/{sid}")).send().await.unwrap()).await;
        if status == 200 && !run["outcome"].is_null() {
            outcome = run["outcome"].clone();
            break;
        }
        tokio::time::sleep(ms(20)).await;
    }
    assert_eq!(outcome, json!({"kind": "hung_up", "applet_id": "end"}));
    assert_eq!(service.steps(), ["GET /exotel/ivr/missed-call:missed_call"]);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_record_applet_records_the_caller_and_hands_the_url_to_the_passthru() {
    let service = Service::start().await;
    let sim =
        sim_with(SimConfig { flows: Some(service.flows(FlowDefinitions::repository().unwrap())), ..config_at(START) })
            .await;
    sim.script(CUSTOMER, CalleeScript::answers_after(secs(1)).never_hangs_up().says("listen", "do dosa")).unwrap();
    let sid = sim.incoming_call(CUSTOMER, EXOPHONE, "voice_order_record").unwrap();
    sim.advance(secs(30)).await;

    let run = sim.flow_run(&sid).unwrap();
    assert_eq!(run.path(), ["speak", "listen", "heard", "route", "last_words", "end"]);
    let listen = run.entry("listen").unwrap();
    assert!(listen.requests.is_empty(), "a Record applet calls no URL of ours");
    assert_eq!(listen.detail["said"], "do dosa");
    // 300 ms after the beep, 7 characters at 60 ms, then 2 s of silence.
    assert_eq!(listen.detail["duration_ms"], 300 + 420 + 2000);
    let heard = run.entry("heard").unwrap();
    let url = heard.param("RecordingUrl").expect("RecordingUrl on the Passthru after the recording").to_string();
    assert_eq!(url, listen.detail["recording_url"].as_str().unwrap());
    assert_eq!(heard.param("CallType"), Some("voicemail"));
    assert_eq!(heard.at, listen.at + chrono::Duration::milliseconds(2720));

    // Served as Exotel serves recordings: only with the account's credentials.
    assert!(url.starts_with(&format!("{}/exotelrecordings/{}/", sim.base_url(), sim.account_sid())), "{url}");
    let anonymous = client().get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = client().get(&url).basic_auth(sim.api_key(), Some("wrong")).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let fetched = client().get(&url).basic_auth(sim.api_key(), Some(sim.api_token())).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["content-type"], "audio/wav");
    let wav = fetched.bytes().await.unwrap();
    // The caller's words after 300 ms of silence, as the caller's voice
    // registered them: the transcript book hears what was said.
    let samples: Vec<i16> = wav[44..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    assert!(samples[..2_400].iter().all(|&s| s == 0));
    assert!(samples[2_400..2_400 + 420 * 8].iter().any(|&s| s != 0));
    assert_eq!((listen.detail["voice"].as_str(), listen.detail["registered"].as_bool()), (Some("tones"), Some(true)));
    assert_eq!(sim.transcripts().transcribe(&samples, 8_000), Some(("do dosa".into(), "hi-en".into())));
    let missing = url.replace(".wav", "x.wav");
    let absent = client().get(&missing).basic_auth(sim.api_key(), Some(sim.api_token())).send().await.unwrap();
    assert_eq!(absent.status(), 404);
}

/// What our service and its status callback URL received, in order.
#[derive(Debug, PartialEq)]
struct Heard {
    requests: Vec<String>,
    callbacks: Vec<(String, Vec<u8>)>,
}

/// A fresh service, simulator and callback receiver.
async fn phone_setup() -> (Service, ExotelSim, Receiver) {
    let service = Service::start().await;
    let sim = service.sim().await;
    (service, sim, Receiver::start().await)
}

fn heard(service: &Service, receiver: &Receiver) -> Heard {
    Heard {
        requests: service.seen().iter().map(|s| format!("{} {}?{}", s.method, s.path, s.raw_query)).collect(),
        callbacks: receiver.captured().into_iter().map(|c| (c.content_type, c.body.to_vec())).collect(),
    }
}

/// A vendor IVR call to a scripted vendor, played out: what was heard.
async fn scripted_vendor(script: CalleeScript, extra: &[(&str, &str)]) -> Heard {
    let (service, sim, receiver) = phone_setup().await;
    sim.script(VENDOR, script).unwrap();
    let callback = receiver.at("/cb");
    let mut form = vec![("StatusCallback", callback.as_str())];
    form.extend_from_slice(extra);
    flow_call(&sim, VENDOR, &form).await;
    sim.advance(secs(120)).await;
    heard(&service, &receiver)
}

/// A phone held by a person rings until they answer; they read the
/// prompts, and the keys they press reach the Gather: our service receives
/// byte for byte what it receives from a scripted vendor who answers and
/// presses at the same moments.
#[tokio::test]
async fn a_held_phone_rings_until_answered_and_its_keys_reach_the_gather() {
    let scripted =
        scripted_vendor(CalleeScript::answers_after(secs(2)).never_hangs_up().presses("menu", "1"), &[]).await;

    let (service, sim, receiver) = phone_setup().await;
    sim.hold(VENDOR).unwrap();
    assert!(sim.phone(VENDOR).unwrap().held);
    let callback = receiver.at("/cb");
    let sid = flow_call(&sim, VENDOR, &[("StatusCallback", callback.as_str())]).await;
    sim.advance(secs(2)).await;
    let ringing = sim.phone(VENDOR).unwrap().call.expect("the call rings on the phone");
    assert_eq!((ringing.call_sid.as_str(), ringing.status.as_str(), ringing.role), (sid.as_str(), "ringing", "callee"));
    assert_eq!(ringing.rings_until, Some(t(30_000)), "TimeOut defaults to 30 s");
    assert_eq!(ringing.other_number, EXOPHONE);
    assert!(service.seen().is_empty(), "nothing plays before the phone is answered");
    let err = sim.press(VENDOR, "1").await.unwrap_err();
    assert_eq!(err.status(), 409, "{err}");

    let call = sim.answer(VENDOR).await.unwrap().call.expect("in progress");
    assert_eq!(call.status, "in-progress");
    assert_eq!(call.prompts.len(), 1, "{:?}", call.prompts);
    assert_eq!((call.prompts[0].kind.as_str(), call.prompts[0].text.as_str()), ("greeting", GREETING));
    sim.advance_to(t(2000 + spoken(GREETING))).await;
    let call = sim.phone(VENDOR).unwrap().call.unwrap();
    let listening = call.listening.expect("the menu listens");
    assert_eq!((listening.applet_id.as_str(), listening.max_digits), ("menu", 1));
    assert_eq!(listening.until, t(2600 + spoken(MENU) + 6000));
    assert_eq!(call.prompts.last().map(|p| p.text.as_str()), Some(MENU));
    sim.advance_to(t(2600 + spoken(MENU) + 300)).await;
    let view = sim.press(VENDOR, "1").await.unwrap();
    assert!(view.call.as_ref().is_none_or(|c| c.listening.is_none()), "the Gather took its digit");
    sim.advance(secs(120)).await;

    assert_eq!(heard(&service, &receiver), scripted, "applet requests and status callback as the scripted vendor's");
    let run = sim.flow_run(&sid).unwrap();
    assert_eq!(run.entry("answer").unwrap().param("digits"), Some("\"1\""));
    assert_eq!(run.entry("menu").unwrap().detail["plays"][0]["ended_by"], "max_input_digits");
    let last = sim.phone(VENDOR).unwrap().last.expect("the call is over");
    assert_eq!(last.status, "completed");
}

/// A held phone nobody answers rings out `no-answer`, and a rejected one
/// ends `busy`: the callbacks a scripted phone's would be.
#[tokio::test]
async fn a_held_phone_rings_out_no_answer_and_a_rejected_one_is_busy() {
    let extra = [("TimeOut", "20")];
    let scripted = scripted_vendor(CalleeScript::no_answer(), &extra).await;
    let (service, sim, receiver) = phone_setup().await;
    sim.hold(VENDOR).unwrap();
    let callback = receiver.at("/cb");
    let sid = flow_call(&sim, VENDOR, &[("StatusCallback", callback.as_str()), extra[0]]).await;
    assert_eq!(sim.phone(VENDOR).unwrap().call.unwrap().rings_until, Some(t(20_000)));
    sim.advance(secs(120)).await;
    assert_eq!(heard(&service, &receiver), scripted);
    assert_eq!(sim.call(&sid).unwrap().status, CallStatus::NoAnswer);
    let view = sim.phone(VENDOR).unwrap();
    assert_eq!((view.call, view.last.map(|l| l.status)), (None, Some("no-answer".to_string())));
    assert_eq!(sim.answer(VENDOR).await.unwrap_err().status(), 409, "nothing rings any more");

    let scripted = scripted_vendor(CalleeScript::busy_after(secs(3)), &[]).await;
    let (service, sim, receiver) = phone_setup().await;
    sim.hold(VENDOR).unwrap();
    let callback = receiver.at("/cb");
    let sid = flow_call(&sim, VENDOR, &[("StatusCallback", callback.as_str())]).await;
    sim.advance(secs(3)).await;
    sim.reject(VENDOR).await.unwrap();
    sim.advance(secs(120)).await;
    assert_eq!(heard(&service, &receiver), scripted);
    assert_eq!(sim.call(&sid).unwrap().status, CallStatus::Busy);

    // Released, the number answers as unscripted numbers do.
    sim.release(VENDOR).unwrap();
    assert!(!sim.phone(VENDOR).unwrap().held);
    assert_eq!(sim.answer(VENDOR).await.unwrap_err().status(), 404, "not held");
}

/// The control endpoints drive a held phone, and a held rider dialled by a
/// Connect rings until answered, then talks until they hang up.
#[tokio::test]
async fn control_endpoints_drive_held_phones_and_connect_legs() {
    let service = Service::start().await;
    let sim = service.sim().await;
    *service.state.connect_numbers.lock().unwrap() = vec![RIDER_A.to_string()];
    let control = |method: &str, path: &str, body: Value| {
        let sim = &sim;
        let method = http::Method::from_bytes(method.as_bytes()).unwrap();
        let path = path.to_string();
        async move { sim.control(&method, &path, body.to_string().as_bytes()).await }
    };
    let (status, view) = control("POST", "phones/%2B919800000004/hold", Value::Null).await;
    assert_eq!((status, view["held"].as_bool()), (200, Some(true)), "{view}");
    let (status, _) = control("POST", &format!("phones/{CUSTOMER}/hold"), Value::Null).await;
    assert_eq!(status, 200);
    let (status, placed) =
        control("POST", "incoming", json!({"from": CUSTOMER, "to": EXOPHONE, "flow_id": "masked_call"})).await;
    assert_eq!(status, 200, "{placed}");
    let sid = placed["call_sid"].as_str().unwrap().to_string();
    sim.advance(secs(5)).await;
    let (_, phones) = control("GET", "phones", Value::Null).await;
    let rider = phones.as_array().unwrap().iter().find(|p| p["number"] == RIDER_A).cloned().unwrap();
    assert_eq!(
        (rider["call"]["status"].as_str(), rider["call"]["leg"].as_u64()),
        (Some("ringing"), Some(1)),
        "{rider}"
    );
    assert_eq!(rider["call"]["rings_until"], json!(t(20_000)), "max_ringing_duration 20 s");
    let customer = phones.as_array().unwrap().iter().find(|p| p["number"] == CUSTOMER).cloned().unwrap();
    assert_eq!(customer["call"]["role"], "caller", "{customer}");

    let (status, body) = control("POST", &format!("phones/{RIDER_A}/keys"), json!({"digits": "x"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, view) = control("POST", &format!("phones/{RIDER_A}/answer"), Value::Null).await;
    assert_eq!((status, view["call"]["status"].as_str()), (200, Some("in-progress")), "{view}");
    sim.advance(secs(42)).await;
    let (status, _) = control("POST", &format!("phones/{RIDER_A}/hangup"), Value::Null).await;
    assert_eq!(status, 200);
    sim.advance(secs(5)).await;
    let run = sim.flow_run(&sid).unwrap();
    let after = run.entry("after_connect").expect("the Connect is over");
    assert_eq!(after.at, t(5_000 + 42_000));
    for (k, v) in [("DialCallStatus", "completed"), ("DialCallDuration", "42"), ("DialWhomNumber", "09800000004")] {
        assert_eq!(after.param(k), Some(v), "{k}");
    }
    let (status, body) = control("POST", &format!("phones/{RIDER_A}/hangup"), Value::Null).await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = control("DELETE", &format!("phones/{RIDER_A}/hold"), Value::Null).await;
    assert_eq!(status, 200);
    let (status, body) = control("POST", &format!("phones/{RIDER_A}/answer"), Value::Null).await;
    assert_eq!(status, 404, "{body}");
}
