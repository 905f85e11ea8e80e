//! Sandbox mode: the in-process Exotel simulator's control endpoints on the
//! service's own port (`/_sim/exotel/*`), so that one curl places a pretend
//! inbound call into one of our flows.

use std::sync::Arc;

use mangwale_server::PrepareOptions;
use mangwale_sim::exotel::{DEFAULT_EXOPHONE, DEFAULT_MISSED_CALL_EXOPHONE, SimConfig};
use mangwale_store::{Clock, ManualClock};
use serde_json::{Value, json};

use crate::common::{API_KEY, Setup, TestApp};

const CALLER: &str = "+919812345678";
const MASKING_NUMBER: &str = "+918047119900";

async fn sandbox() -> TestApp {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    TestApp::start_setup(Setup {
        vars: vec![("EXOTEL_MASKING_NUMBERS".into(), MASKING_NUMBER.into())],
        clock: clock.clone(),
        prepare: PrepareOptions { exotel_sim: Some(SimConfig::manual(clock.now())), ..PrepareOptions::default() },
        ..Setup::default()
    })
    .await
}

async fn sim_post(app: &TestApp, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = app.http.post(format!("{}/_sim/exotel/{path}", app.base)).json(&body);
    if let Some(key) = key {
        request = request.header("X-API-Key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn one_request_on_the_services_port_places_a_pretend_inbound_call() {
    let app = sandbox().await;

    // The index names the ExoPhones and the flow each runs: the caller id
    // runs the incoming flow, the masking number the masked call.
    let (status, index) = app.get("/_sim/exotel", Some(API_KEY)).await;
    assert_eq!(status, 200, "{index}");
    let flows: Vec<(&str, &str)> = index["exophone_flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["exophone"].as_str().unwrap(), e["flow_id"].as_str().unwrap()))
        .collect();
    for pair in [
        (DEFAULT_EXOPHONE, "customer_voice_order"),
        (DEFAULT_MISSED_CALL_EXOPHONE, "missed_call"),
        (MASKING_NUMBER, "masked_call"),
    ] {
        assert!(flows.contains(&pair), "{pair:?} in {flows:?}");
    }

    // A missed call: the flow reaches our missed-call URL with Exotel's
    // parameters, and the call is never answered.
    let (status, placed) =
        sim_post(&app, "incoming", Some(API_KEY), json!({"from": CALLER, "to": DEFAULT_MISSED_CALL_EXOPHONE})).await;
    assert_eq!((status, placed["flow_id"].as_str()), (200, Some("missed_call")), "{placed}");
    let sid = placed["call_sid"].as_str().unwrap().to_string();
    let (status, _) = sim_post(&app, "advance", Some(API_KEY), json!({"seconds": 5})).await;
    assert_eq!(status, 200);
    let (status, run) = app.get(&format!("/_sim/exotel/flows/{sid}"), Some(API_KEY)).await;
    assert_eq!(status, 200, "{run}");
    let record = &run["entries"][0];
    assert_eq!(record["applet_id"], "record");
    assert_eq!(record["requests"][0]["url"], format!("{}/exotel/ivr/missed-call?flow=missed_call", app.base));
    assert_eq!(record["requests"][0]["response"]["status"], 200, "{record}");
    let params: Vec<(String, String)> = serde_json::from_value(record["requests"][0]["params"].clone()).unwrap();
    assert!(params.contains(&("CallFrom".into(), "09812345678".into())), "{params:?}");
    assert!(params.contains(&("Direction".into(), "incoming".into())), "{params:?}");
    let (_, call) = app.get(&format!("/_sim/exotel/calls/{sid}"), Some(API_KEY)).await;
    assert_eq!(call["status"], "no-answer", "{call}");

    // A call into the masking number runs the masked call.
    let (status, placed) =
        sim_post(&app, "incoming", Some(API_KEY), json!({"from": CALLER, "to": MASKING_NUMBER})).await;
    assert_eq!((status, placed["flow_id"].as_str()), (200, Some("masked_call")), "{placed}");

    // The simulator's own refusals come back as it gives them; its control
    // endpoints need the service's API key.
    let (status, refused) =
        sim_post(&app, "incoming", Some(API_KEY), json!({"from": CALLER, "to": "+918000000000"})).await;
    assert_eq!(status, 400, "{refused}");
    let (status, _) =
        sim_post(&app, "incoming", None, json!({"from": CALLER, "to": DEFAULT_MISSED_CALL_EXOPHONE})).await;
    assert_eq!(status, 401);
    let (status, _) = app.get("/_sim/exotel/nothing-here", Some(API_KEY)).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn one_request_places_a_pretend_voice_order_and_says_where_to_watch_it() {
    let app = sandbox().await;
    let body = json!({
        "from": CALLER,
        "say": ["Godavari Misal House se do misal pav aur ek cutting chai"],
        "then_keys": "1",
    });
    let (status, placed) = sim_post(&app, "voice-order", Some(API_KEY), body).await;
    assert_eq!(status, 200, "{placed}");
    assert_eq!(
        (placed["flow_id"].as_str(), placed["exophone"].as_str()),
        (Some("customer_voice_order"), Some(DEFAULT_EXOPHONE))
    );
    let sid = placed["call_sid"].as_str().unwrap().to_string();
    let turns = placed["script"]["utterances"].as_array().unwrap();
    assert_eq!(turns.len(), 2, "{placed}");
    assert_eq!((turns[0]["prompt"].as_str(), turns[0]["cue"]["kind"].as_str()), (Some("bot"), Some("after_reply")));
    assert_eq!(placed["script"]["keypresses"][1], json!({"prompt": "menu", "digits": "1"}));
    let timeline = placed["watch"]["timeline"].as_str().unwrap();
    assert_eq!(timeline, format!("{}/_sim/exotel/timeline/{sid}", app.base));

    let (status, _) = sim_post(&app, "advance", Some(API_KEY), json!({"seconds": 30})).await;
    assert_eq!(status, 200);
    let (status, run) = app.get(&format!("/_sim/exotel/flows/{sid}"), Some(API_KEY)).await;
    assert_eq!(status, 200, "{run}");
    let path: Vec<&str> = run["entries"].as_array().unwrap().iter().map(|e| e["applet_id"].as_str().unwrap()).collect();
    assert_eq!(path[..4], ["incoming", "caller", "welcome", "menu"], "{path:?}");
    let (status, streams) = app.get(&format!("/_sim/exotel/calls/{sid}/streams"), Some(API_KEY)).await;
    assert_eq!((status, streams.is_array()), (200, true), "{streams}");
    let (status, events) = app.get(&timeline.replace(&app.base, ""), Some(API_KEY)).await;
    assert_eq!(status, 200, "{events}");
    let kinds: Vec<&str> = events["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"inbound.caller") && kinds.contains(&"inbound.key"), "{kinds:?}");
    assert!(events["events"].as_array().unwrap().iter().all(|e| e["call_sid"] == sid.as_str()));

    let (status, refused) =
        sim_post(&app, "voice-order", Some(API_KEY), json!({"from": CALLER, "then_keys": "one"})).await;
    assert_eq!(status, 400, "{refused}");
    let (status, _) = sim_post(&app, "voice-order", None, json!({"from": CALLER})).await;
    assert_eq!(status, 401);
    app.stop().await;
}
