//! Scripted calls: leg progress, the final-status rule, status callbacks in
//! both encodings, call details and the flow-runner hook.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::future::BoxFuture;
use mangwale_sim::exotel::{
    AnsweredBy, CallStatus, CalleeScript, FlowCall, FlowMode, FlowRunner, FlowStep, SentCallback,
};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const EVENTS_JSON: [(&str, &str); 3] = [
    ("StatusCallbackEvents[0]", "terminal"),
    ("StatusCallbackEvents[1]", "answered"),
    ("StatusCallbackContentType", "application/json"),
];

#[tokio::test]
async fn bridge_call_both_answer_json_callbacks() {
    let sim = sim().await;
    let receiver = Receiver::start().await;
    sim.script(AGENT, CalleeScript::answers_after(secs(3)).stays_for(secs(60))).unwrap();
    sim.script(CUSTOMER, CalleeScript::answers_after(secs(5)).stays_for(secs(10)).answered_by(AnsweredBy::Human))
        .unwrap();
    let callback = receiver.at("/exotel/status?token=t1");
    let mut extra = EVENTS_JSON.to_vec();
    extra.extend([("StatusCallback", callback.as_str()), ("CustomField", "order_4711"), ("Record", "true")]);
    let sid = bridge(&sim, &extra).await;

    sim.advance(secs(2)).await;
    assert!(receiver.captured().is_empty());
    sim.advance(secs(1)).await;
    let captured = receiver.captured();
    assert_eq!(captured.len(), 1, "leg 1 answered");
    assert_eq!(captured[0].path, "/exotel/status?token=t1");
    assert_eq!(captured[0].content_type, "application/json");
    let first = captured[0].json();
    assert_eq!(first["EventType"], "answered");
    assert_eq!(first["Status"], "in-progress");
    assert_eq!(first["Legs"][0]["Status"], "in-progress");
    assert_eq!(first["Legs"][1]["Status"], "");
    assert!(first.get("CustomField").is_none(), "CustomField only on terminal");
    assert_eq!(first["EndTime"], serde_json::Value::Null);

    sim.advance(secs(60)).await;
    let captured = receiver.captured();
    assert_eq!(captured.len(), 3);
    let second = captured[1].json();
    assert_eq!(second["EventType"], "answered");
    assert_eq!(
        (second["Legs"][0]["Status"].as_str(), second["Legs"][1]["Status"].as_str()),
        (Some("in-progress"), Some("in-progress"))
    );
    assert!(second.get("CustomField").is_none());

    let terminal = captured[2].json();
    let recording = format!("https://s3-ap-southeast-1.amazonaws.com/exotelrecordings/{}/{sid}.mp3", sim.account_sid());
    assert_eq!(
        terminal,
        serde_json::json!({
            "CallSid": sid, "EventType": "terminal", "Status": "completed",
            "DateCreated": "2025-01-15 10:00:00", "DateUpdated": "2025-01-15 10:00:18",
            "StartTime": "2025-01-15 10:00:00", "EndTime": "2025-01-15 10:00:18",
            "From": "09800000001", "To": "09800000002", "PhoneNumberSid": "08047112233",
            "ConversationDuration": 10, "Direction": "outbound-api", "CustomField": "order_4711",
            "RecordingUrl": recording,
            "Legs": [
                {"OnCallDuration": 15, "Status": "completed", "AnsweredBy": "NA"},
                {"OnCallDuration": 10, "Status": "completed", "AnsweredBy": "Human"}
            ]
        })
    );
    // The sim's own log agrees with what the receiver got.
    let sent = sim.callbacks_for(&sid);
    assert_eq!(
        sent.iter().map(SentCallback::event).collect::<Vec<_>>(),
        vec![Some("answered"), Some("answered"), Some("terminal")]
    );
    assert!(sent.iter().all(|c| c.response_status == Some(200)));
    assert_eq!(sent[2].field("Legs[1][OnCallDuration]"), Some("10"));
    assert_eq!(sent[2].json.as_ref().unwrap()["ConversationDuration"], 10);
    let call = sim.call(&sid).unwrap();
    assert_eq!(call.status, CallStatus::Completed);
    assert_eq!(call.legs[1].status, Some(CallStatus::Completed));
    assert_eq!(sim.pending_events(), 0);
}

#[tokio::test]
async fn leg_2_busy_ends_busy() {
    let sim = sim().await;
    let receiver = Receiver::start().await;
    sim.script(AGENT, CalleeScript::answers_after(secs(3))).unwrap();
    sim.script(CUSTOMER, CalleeScript::busy_after(secs(4))).unwrap();
    let callback = receiver.at("/cb");
    let mut extra = EVENTS_JSON.to_vec();
    extra.push(("StatusCallback", callback.as_str()));
    let sid = bridge(&sim, &extra).await;
    sim.advance(secs(120)).await;
    let captured = receiver.captured();
    assert_eq!(captured.len(), 2, "one answered (leg 1), one terminal");
    let terminal = captured[1].json();
    assert_eq!(terminal["Status"], "busy");
    assert_eq!(terminal["EndTime"], "2025-01-15 10:00:07");
    assert_eq!(terminal["ConversationDuration"], 0);
    assert_eq!(
        terminal["Legs"][0],
        serde_json::json!({"OnCallDuration": 4, "Status": "completed", "AnsweredBy": "NA"})
    );
    assert_eq!(terminal["Legs"][1]["Status"], "busy");
    assert_eq!(terminal["RecordingUrl"], serde_json::Value::Null);
    assert_eq!(sim.call(&sid).unwrap().status, CallStatus::Busy);
}

#[tokio::test]
async fn leg_1_no_answer_ends_no_answer_after_time_out_multipart() {
    let sim = sim().await;
    let receiver = Receiver::start().await;
    sim.script(AGENT, CalleeScript::no_answer()).unwrap();
    let callback = receiver.at("/cb");
    let sid = bridge(
        &sim,
        &[
            ("TimeOut", "20"),
            ("StatusCallback", callback.as_str()),
            ("StatusCallbackEvents[0]", "terminal"),
            ("StatusCallbackEvents[1]", "answered"),
            ("CustomField", "lead_42"),
        ],
    )
    .await;
    sim.advance(secs(19)).await;
    assert!(receiver.captured().is_empty());
    sim.advance(secs(1)).await;
    let captured = receiver.captured();
    assert_eq!(captured.len(), 1, "no answered event: nobody answered");
    assert!(captured[0].content_type.starts_with("multipart/form-data; boundary="), "{}", captured[0].content_type);
    let fields = captured[0].fields().await;
    assert_eq!(field(&fields, "EventType"), Some("terminal"));
    assert_eq!(field(&fields, "Status"), Some("no-answer"));
    assert_eq!(field(&fields, "CustomField"), Some("lead_42"));
    assert_eq!(field(&fields, "ConversationDuration"), Some("0"));
    assert_eq!(field(&fields, "Legs[0][Status]"), Some("no-answer"));
    assert_eq!(field(&fields, "Legs[0][OnCallDuration]"), Some("0"));
    assert_eq!(field(&fields, "Legs[0][AnsweredBy]"), Some("NA"));
    assert_eq!(field(&fields, "Legs[1][Status]"), Some(""));
    assert_eq!(field(&fields, "EndTime"), Some("2025-01-15 10:00:20"));
    assert_eq!(field(&fields, "RecordingUrl"), Some(""));
    assert_eq!(sim.call(&sid).unwrap().status, CallStatus::NoAnswer);
}

#[tokio::test]
async fn multipart_answered_callbacks_flatten_legs_with_strings() {
    let sim = sim().await;
    let receiver = Receiver::start().await;
    sim.script(AGENT, CalleeScript::answers_after(secs(1)).stays_for(secs(30))).unwrap();
    sim.script(CUSTOMER, CalleeScript::answers_after(secs(4)).stays_for(secs(6)).answered_by(AnsweredBy::Machine))
        .unwrap();
    let callback = receiver.at("/cb");
    bridge(
        &sim,
        &[
            ("StatusCallback", callback.as_str()),
            ("StatusCallbackEvents[]", "answered"),
            ("StatusCallbackContentType", "multipart/form-data"),
            ("CustomField", "cf"),
        ],
    )
    .await;
    sim.advance(secs(60)).await;
    let captured = receiver.captured();
    assert_eq!(captured.len(), 3);
    let answered_1 = captured[0].fields().await;
    assert_eq!(field(&answered_1, "Status"), Some("in-progress"));
    assert_eq!(field(&answered_1, "Legs[0][Status]"), Some("in-progress"));
    assert_eq!(field(&answered_1, "Legs[1][Status]"), Some(""));
    assert_eq!(field(&answered_1, "CustomField"), None);
    let answered_2 = captured[1].fields().await;
    assert_eq!(field(&answered_2, "Legs[1][Status]"), Some("in-progress"));
    assert_eq!(field(&answered_2, "Legs[0][OnCallDuration]"), Some("4"));
    let terminal = captured[2].fields().await;
    assert_eq!(field(&terminal, "EventType"), Some("terminal"));
    assert_eq!(field(&terminal, "Status"), Some("completed"));
    assert_eq!(field(&terminal, "ConversationDuration"), Some("6"));
    assert_eq!(field(&terminal, "Legs[1][AnsweredBy]"), Some("Machine"));
    assert_eq!(field(&terminal, "CustomField"), Some("cf"));
    for key in [
        "CallSid",
        "DateCreated",
        "DateUpdated",
        "StartTime",
        "EndTime",
        "From",
        "To",
        "PhoneNumberSid",
        "Direction",
        "RecordingUrl",
    ] {
        assert!(field(&terminal, key).is_some(), "{key}");
    }
}

#[tokio::test]
async fn without_events_only_the_four_default_fields() {
    let sim = sim().await;
    let receiver = Receiver::start().await;
    for content_type in [None, Some("application/json")] {
        let callback = receiver.at("/cb");
        let mut extra = vec![("StatusCallback", callback.as_str()), ("CustomField", "x")];
        if let Some(ct) = content_type {
            extra.push(("StatusCallbackContentType", ct));
        }
        bridge(&sim, &extra).await;
    }
    sim.advance(secs(120)).await;
    let captured = receiver.captured();
    assert_eq!(captured.len(), 2);
    for c in &captured {
        let fields = c.fields().await;
        let mut keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["CallSid", "DateUpdated", "RecordingUrl", "Status"], "{}", c.content_type);
        assert_eq!(field(&fields, "Status"), Some("completed"));
    }
    assert!(captured[0].content_type.starts_with("multipart/form-data"));
    let sent = sim.callbacks_sent();
    let order: Vec<&str> = sent[1].fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(order, ["CallSid", "Status", "DateUpdated", "RecordingUrl"]);
    assert_eq!(captured[1].json()["RecordingUrl"], serde_json::Value::Null);
    assert!(sim.callbacks_sent().iter().all(|c| c.event().is_none()));
}

async fn details(sim: &mangwale_sim::ExotelSim, sid: &str) -> serde_json::Value {
    json(get(sim, &format!("/Calls/{sid}.json?details=true")).await).await.1["Call"].clone()
}

#[tokio::test]
async fn details_fill_duration_and_price_only_after_the_delay() {
    let sim = sim().await;
    sim.script(AGENT, CalleeScript::answers_after(secs(3)).stays_for(secs(60))).unwrap();
    sim.script(CUSTOMER, CalleeScript::answers_after(secs(5)).stays_for(secs(10))).unwrap();
    let sid = bridge(&sim, &[]).await;
    sim.advance(secs(10)).await;
    let during = details(&sim, &sid).await;
    assert_eq!(during["Status"], "in-progress");
    assert_eq!(during["Details"]["Leg1Status"], "in-progress");
    assert_eq!(during["Details"]["Leg2Status"], "in-progress");

    sim.advance(secs(8 + 60)).await;
    let ended = details(&sim, &sid).await;
    assert_eq!(ended["Status"], "completed", "the status is final at once");
    assert_eq!(
        (&ended["Duration"], &ended["Price"], &ended["EndTime"]),
        (&serde_json::Value::Null, &serde_json::Value::Null, &serde_json::Value::Null)
    );

    sim.advance(secs(60)).await;
    let settled = details(&sim, &sid).await;
    assert_eq!(settled["Duration"], "18");
    assert_eq!(settled["Price"], "1.000");
    assert_eq!(settled["EndTime"], "2025-01-15 10:00:18");
    assert_eq!(
        settled["Details"],
        serde_json::json!({
            "ConversationDuration": 10, "Leg1Status": "completed", "Leg2Status": "completed",
            "Legs": [{"Leg": {"Id": 1, "OnCallDuration": 15}}, {"Leg": {"Id": 2, "OnCallDuration": 10}}]
        })
    );
    let xml = get(&sim, &format!("/Calls/{sid}")).await.text().await.unwrap();
    assert!(xml.contains("<Duration>18</Duration><Price>1.000</Price>"), "{xml}");
}

#[tokio::test]
async fn flow_calls_stay_connected_for_the_talk_time_without_a_runner() {
    let sim = sim().await;
    let receiver = Receiver::start().await;
    sim.script(CUSTOMER, CalleeScript::answers_after(secs(2)).stays_for(secs(25))).unwrap();
    let callback = receiver.at("/cb");
    let flow = "http://my.exotel.com/mangwalesim1/exoml/start_voice/926";
    let mut form = vec![
        ("From", CUSTOMER),
        ("CallerId", EXOPHONE),
        ("Url", flow),
        ("StatusCallback", callback.as_str()),
        ("StatusCallbackContentType", "application/json"),
        ("StatusCallbackEvents[0]", "terminal"),
    ];
    // Exotel documents no StatusCallbackEvents for flow calls; integrators
    // report this 400 when they come with `Url`.
    let (status, body) = json(post(&sim, "/Calls/connect.json", &form).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["RestException"]["Message"], "Invalid Call Parameters: Invalid 'StatusCallbackEvents' specified");
    form.pop();
    let (status, body) = json(post(&sim, "/Calls/connect.json", &form).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["Call"]["To"], "08047112233", "flow calls echo the ExoPhone as To");
    sim.advance(secs(60)).await;
    let captured = receiver.captured();
    assert_eq!(captured.len(), 1);
    let terminal = captured[0].json();
    let mut fields: Vec<&str> = terminal.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["CallSid", "DateUpdated", "RecordingUrl", "Status"], "the four default fields");
    assert_eq!(terminal["Status"], "completed");
    assert_eq!(terminal["DateUpdated"], "2025-01-15 10:00:27");
}

/// A flow engine stand-in: waits 5 s, reads the callee's keypress, hangs up.
#[derive(Default)]
struct RecordingRunner {
    seen: Mutex<Vec<String>>,
}

impl FlowRunner for RecordingRunner {
    fn start(&self, call: FlowCall) -> BoxFuture<'_, FlowStep> {
        let flow_id = match &call.mode {
            FlowMode::Flow { flow_id, .. } => flow_id.clone().unwrap_or_default(),
            FlowMode::Voicebot { stream_url, .. } => stream_url.clone(),
            FlowMode::Incoming { flow_id } => flow_id.clone(),
        };
        self.seen.lock().unwrap().push(format!("start {flow_id} at {}", mangwale_sim::clock::format_ist(call.now)));
        Box::pin(async { FlowStep::Wait(Duration::from_secs(5)) })
    }

    fn resume(&self, call: FlowCall) -> BoxFuture<'_, FlowStep> {
        let digits = call.script.digits_for("Press 1 to confirm").unwrap_or("-").to_string();
        self.seen
            .lock()
            .unwrap()
            .push(format!("resume digits={digits} at {}", mangwale_sim::clock::format_ist(call.now)));
        Box::pin(async { FlowStep::HangUp })
    }

    fn ended(&self, call: FlowCall) -> BoxFuture<'_, ()> {
        self.seen.lock().unwrap().push(format!("ended {}", call.call_sid.len()));
        Box::pin(async {})
    }
}

#[tokio::test]
async fn a_flow_runner_drives_flow_calls_on_the_simulated_clock() {
    let sim = sim().await;
    let runner = Arc::new(RecordingRunner::default());
    sim.set_flow_runner(runner.clone());
    sim.script(CUSTOMER, CalleeScript::answers_after(secs(2)).never_hangs_up().presses("confirm", "1")).unwrap();
    let (status, body) = json(
        post(
            &sim,
            "/Calls/connect.json",
            &[
                ("From", CUSTOMER),
                ("CallerId", EXOPHONE),
                ("Url", "http://my.exotel.com/mangwalesim1/exoml/start_voice/926"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    sim.advance(secs(30)).await;
    assert_eq!(
        *runner.seen.lock().unwrap(),
        vec!["start 926 at 2025-01-15 10:00:02", "resume digits=1 at 2025-01-15 10:00:07", "ended 32"]
    );
    let call = sim.call(body["Call"]["Sid"].as_str().unwrap()).unwrap();
    assert_eq!(call.status, CallStatus::Completed);
    assert_eq!(call.conversation_duration, 5);
}

#[tokio::test]
async fn voicebot_calls_complete_like_flows() {
    let sim = sim().await;
    sim.script(CUSTOMER, CalleeScript::answers_after(secs(1)).stays_for(secs(9)).says("name", "Ravi")).unwrap();
    let (status, body) = json(
        post(
            &sim,
            "/Calls/connect.json",
            &[
                ("From", CUSTOMER),
                ("CallerId", EXOPHONE),
                ("StreamUrl", "wss://bot.example/ws"),
                ("StreamType", "bidirectional"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    sim.advance(secs(30)).await;
    let call = sim.call(body["Call"]["Sid"].as_str().unwrap()).unwrap();
    assert_eq!((call.status, call.conversation_duration), (CallStatus::Completed, 9));
    assert_eq!(call.legs[0].script.as_ref().unwrap().speech_for("your name?"), Some("Ravi"));
}

#[tokio::test]
async fn unscripted_numbers_answer_after_2s_and_talk_20s() {
    let sim = sim().await;
    let sid = bridge(&sim, &[]).await;
    sim.advance(secs(100)).await;
    let call = sim.call(&sid).unwrap();
    assert_eq!(call.status, CallStatus::Completed);
    // The agent answers at 2 s and hangs up at 22 s; the customer answers at 4 s.
    assert_eq!((call.legs[0].on_call_duration, call.legs[1].on_call_duration), (20, 18));
    assert_eq!(call.ended_at.map(mangwale_sim::clock::format_ist).as_deref(), Some("2025-01-15 10:00:22"));
}

#[tokio::test]
async fn time_limit_cuts_the_call() {
    let sim = sim().await;
    sim.script(AGENT, CalleeScript::answers_after(secs(1)).never_hangs_up()).unwrap();
    sim.script(CUSTOMER, CalleeScript::answers_after(secs(1)).never_hangs_up()).unwrap();
    let sid = bridge(&sim, &[("TimeLimit", "30")]).await;
    sim.advance(secs(3600)).await;
    let call = sim.call(&sid).unwrap();
    assert_eq!((call.status, call.conversation_duration), (CallStatus::Completed, 29));
}
