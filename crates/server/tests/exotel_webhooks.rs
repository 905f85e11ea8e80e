//! Exotel's requests to us, in every encoding Exotel uses, over real HTTP.

mod common;

use common::TestApp;
use mangwale_store::{CallState, NewCall};
use serde_json::{Value, json};

/// The Passthru sample of exotel-wire.md §4.1.
const PASSTHRU: &str = "CallSid=d50e19c31e3911190a7e601f1056d69a&CallFrom=07799828555&CallTo=08039513882\
    &CallStatus=ringing&Direction=incoming&Created=Tue%2C+16+Feb+2016+15%3A56%3A26&DialCallDuration=0\
    &StartTime=2016-02-16+15%3A56%3A26&EndTime=0000-00-00+00%3A00%3A00&CallType=call-attempt\
    &DialWhomNumber=&flow_id=68135&tenant_id=39&From=07799828555&To=08039513882\
    &CurrentTime=2016-02-16+15%3A56%3A49&digits=%222%22";

/// The JSON terminal callback of exotel-wire.md §3.
const TERMINAL_JSON: &str = r#"{"CallSid":"80bfbec2d78bbbf10fb851f4fa165211","EventType":"terminal","Status":"completed",
 "DateCreated":"2024-01-15 14:25:10","DateUpdated":"2024-01-15 14:30:45",
 "StartTime":"2024-01-15 14:25:12","EndTime":"2024-01-15 14:30:45",
 "From":"09876543210","To":"09123456789","PhoneNumberSid":"08047112233",
 "ConversationDuration":320,"Direction":"outbound-api","CustomField":"c:att-42",
 "RecordingUrl":"https://s3-ap-southeast-1.amazonaws.com/exotelrecordings/acme1/80bf.mp3",
 "Legs":[{"OnCallDuration":335,"Status":"completed","AnsweredBy":"NA"},
         {"OnCallDuration":320,"Status":"completed","AnsweredBy":"Human"}]}"#;

async fn json_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn events_of(app: &TestApp, kind: &str) -> Vec<mangwale_store::TimelineEvent> {
    app.state.store.events_after(0, 10_000).await.unwrap().into_iter().filter(|e| e.kind == kind).collect()
}

#[tokio::test]
async fn applet_gets_are_recorded_once_per_request() {
    let app = TestApp::start(&[]).await;
    for route in ["/exotel/ivr/incoming", "/exotel/ivr/dtmf", "/exotel/applet/passthru"] {
        let url = app.exotel_url(&format!("{route}?{PASSTHRU}"));
        let first = app.http.get(&url).send().await.unwrap();
        assert_eq!(first.status().as_u16(), 200, "{route}");
        let again = app.http.get(&url).send().await.unwrap();
        assert_eq!(again.status().as_u16(), 200);
    }
    let (_, a) =
        json_of(app.http.get(app.exotel_url(&format!("/exotel/ivr/incoming?{PASSTHRU}"))).send().await.unwrap()).await;
    assert_eq!(a["duplicate"], true, "a retried request is a duplicate");
    for kind in ["exotel.incoming", "exotel.dtmf", "exotel.passthru"] {
        assert_eq!(events_of(&app, kind).await.len(), 1, "{kind}: recorded once");
    }
    // A different key press on the same call is a new event.
    let url = app.exotel_url(&format!("/exotel/ivr/dtmf?{}", PASSTHRU.replace("%222%22", "%221%22")));
    assert_eq!(app.http.get(&url).send().await.unwrap().status().as_u16(), 200);
    assert_eq!(events_of(&app, "exotel.dtmf").await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_re_sent_applet_request_counts_once_though_its_current_time_differs() {
    let app = TestApp::start(&[]).await;
    let resent = PASSTHRU.replace("CurrentTime=2016-02-16+15%3A56%3A49", "CurrentTime=2016-02-16+15%3A56%3A55");
    assert_ne!(resent, PASSTHRU);
    for query in [PASSTHRU, resent.as_str()] {
        let (status, body) =
            json_of(app.http.get(app.exotel_url(&format!("/exotel/ivr/incoming?{query}"))).send().await.unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(body["duplicate"], query != PASSTHRU, "{query}");
    }
    assert_eq!(events_of(&app, "exotel.incoming").await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn the_passthru_before_a_switch_answers_exactly_select_in_text_plain() {
    let app = TestApp::start(&[]).await;
    let url = app.exotel_url(&format!("/exotel/ivr/dtmf?flow=vendor_new_order&step=menu&{PASSTHRU}"));
    let res = app.http.get(&url).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain");
    assert_eq!(res.text().await.unwrap(), r#"{"select":"done"}"#);
    // What the answer no longer carries is on the timeline.
    let ignored = events_of(&app, "ivr.key_ignored").await;
    assert_eq!(ignored.len(), 1);
    assert_eq!(ignored[0].call_sid.as_deref(), Some("d50e19c31e3911190a7e601f1056d69a"));
    assert_eq!(ignored[0].detail["select"], "done");
    assert_eq!(ignored[0].detail["note"], "a call we did not place");
    assert_eq!(ignored[0].detail["digits"], "2");
    // The seed's JSON POST gets the same answer.
    let res = app
        .http
        .post(app.exotel_url("/exotel/ivr/dtmf"))
        .json(&json!({"CallSid": "EXO-456", "digits": "1", "context": "vendor_new_order"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/plain");
    assert_eq!(res.text().await.unwrap(), r#"{"select":"done"}"#);
    app.stop().await;
}

#[tokio::test]
async fn every_applet_url_answers_head_like_get_even_without_parameters() {
    let app = TestApp::start(&[]).await;
    let routes = [
        "/exotel/ivr/incoming",
        "/exotel/ivr/missed-call",
        "/exotel/ivr/dtmf",
        "/exotel/applet/greeting",
        "/exotel/applet/gather",
        "/exotel/applet/connect",
        "/exotel/applet/passthru",
    ];
    for route in routes {
        // A Gather answers only where one of our menus is.
        let menu = if route.ends_with("/gather") { "&flow=vendor_new_order&step=menu" } else { "" };
        let get = app.http.get(app.exotel_url(&format!("{route}?{PASSTHRU}{menu}"))).send().await.unwrap();
        for query in ["", "?flow=vendor_new_order&step=announce", &format!("?{PASSTHRU}")] {
            let head = app.http.head(app.exotel_url(&format!("{route}{query}"))).send().await.unwrap();
            assert_eq!(head.status(), get.status(), "{route}{query}");
            assert_eq!(head.headers().get("content-type"), get.headers().get("content-type"), "{route}{query}");
            // The same headers, except the per-response ones; no length is
            // claimed, since the GET's depends on the call.
            let names = |r: &reqwest::Response| -> Vec<String> {
                let mut n: Vec<String> = r
                    .headers()
                    .keys()
                    .map(|k| k.to_string())
                    .filter(|k| !["date", "x-request-id", "content-length"].contains(&k.as_str()))
                    .collect();
                n.sort();
                n
            };
            assert_eq!(names(&head), names(&get), "{route}{query}");
            assert!(head.headers().get("content-length").is_none(), "{route}{query}");
        }
        // Without the token it is still refused.
        assert_eq!(app.http.head(format!("{}{route}", app.base)).send().await.unwrap().status().as_u16(), 401);
    }
    // A HEAD does nothing: only the GETs were recorded.
    let recorded = app.state.store.events_after(0, 10_000).await.unwrap();
    assert_eq!(recorded.iter().filter(|e| e.kind.starts_with("exotel.")).count(), routes.len());
    app.stop().await;
}

#[tokio::test]
async fn the_webhook_token_echoed_by_exotel_is_never_stored() {
    let app = TestApp::start(&[]).await;
    let stream_url =
        format!("wss://exotel.mangwale.ai/exotel/voicebot?flow=customer_voice_order&token={}", common::TOKEN);
    let query = format!(
        "CallSid=vb-call-9&From=09876543210&Stream%5BStreamSID%5D=st9&Stream%5BStatus%5D=completed&Stream%5BStreamUrl%5D={}&flow=customer_voice_order&step=after_bot",
        form_urlencoded::byte_serialize(stream_url.as_bytes()).collect::<String>()
    );
    let res = app.http.get(app.exotel_url(&format!("/exotel/applet/passthru?{query}"))).send().await.unwrap();
    // No dialog ran on the stream: the caller goes to the order desk (302).
    assert_eq!(res.status().as_u16(), 302);
    let events = app.state.store.events_after(0, 10_000).await.unwrap();
    let stored = serde_json::to_string(&events.iter().map(|e| &e.detail).collect::<Vec<_>>()).unwrap();
    assert!(stored.contains("customer_voice_order"), "{stored}");
    assert!(!stored.contains(common::TOKEN), "{stored}");
    app.stop().await;
}

#[tokio::test]
async fn the_seed_post_bodies_are_accepted() {
    let app = TestApp::start(&[]).await;
    let (status, body) = json_of(
        app.http
            .post(app.exotel_url("/exotel/ivr/incoming"))
            .json(&json!({"CallSid": "EXO-123", "From": "+919876543210", "To": "+919999999999"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["callSid"].as_str()), (200, Some("EXO-123")));
    let (status, _) = json_of(
        app.http
            .post(app.exotel_url("/exotel/ivr/missed-call"))
            .json(&json!({"From": "+919876543210", "To": "+919999999999", "CallType": "missed"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = json_of(
        app.http
            .post(app.exotel_url("/exotel/ivr/missed-call"))
            .json(&json!({"To": "+919999999999", "CallType": "missed"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("From")));
    let (status, _) = json_of(
        app.http
            .post(app.exotel_url("/exotel/ivr/dtmf"))
            .json(&json!({"CallSid": "EXO-456", "digits": "1", "context": "vendor_new_order", "order_id": "MW-2025-001234", "vendor_id": "V-42"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test]
async fn status_callbacks_arrive_as_json_form_or_multipart() {
    let app = TestApp::start(&[]).await;
    let url = app.exotel_url("/exotel/webhooks/call-status");
    let (status, body) = json_of(
        app.http.post(&url).header("content-type", "application/json").body(TERMINAL_JSON).send().await.unwrap(),
    )
    .await;
    assert_eq!((status, &body["duplicate"]), (200, &json!(false)));
    let (_, body) = json_of(
        app.http.post(&url).header("content-type", "application/json").body(TERMINAL_JSON).send().await.unwrap(),
    )
    .await;
    assert_eq!(body["duplicate"], true, "Exotel's retry is acknowledged and ignored");

    // A bridge reports `answered` for each leg; both are kept, a retry is not.
    let leg1 = "CallSid=form-1&EventType=answered&Status=in-progress&Legs%5B0%5D%5BStatus%5D=in-progress&Legs%5B1%5D%5BStatus%5D=";
    let leg2 = "CallSid=form-1&EventType=answered&Status=in-progress&Legs%5B0%5D%5BStatus%5D=in-progress&Legs%5B1%5D%5BStatus%5D=in-progress";
    for (form, duplicate) in [(leg1, false), (leg2, false), (leg2, true), (leg1, true)] {
        let (status, body) = json_of(
            app.http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((status, &body["duplicate"]), (200, &json!(duplicate)), "{form}");
    }

    let multipart = reqwest::multipart::Form::new()
        .text("CallSid", "multi-1")
        .text("Status", "no-answer")
        .text("EventType", "terminal")
        .text("Legs[0][Status]", "no-answer")
        .text("ConversationDuration", "0");
    let (status, body) = json_of(app.http.post(&url).multipart(multipart).send().await.unwrap()).await;
    assert_eq!((status, body["callSid"].as_str()), (200, Some("multi-1")));
    app.stop().await;
}

#[tokio::test]
async fn malformed_callbacks_are_a_400_naming_the_field() {
    let app = TestApp::start(&[]).await;
    let url = app.exotel_url("/exotel/webhooks/call-status");
    let (status, body) = json_of(
        app.http
            .post(&url)
            .header("content-type", "application/json")
            .body(r#"{"Status":"completed"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("CallSid")));
    let (status, body) =
        json_of(app.http.post(&url).header("content-type", "application/json").body("{oops").send().await.unwrap())
            .await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("malformed_json")));
    let (status, body) = json_of(
        app.http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("CallSid=abc")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("Status")));
    let (status, body) =
        json_of(app.http.get(app.exotel_url("/exotel/ivr/incoming?From=09876543210")).send().await.unwrap()).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("CallSid")));
    app.stop().await;
}

#[tokio::test]
async fn a_terminal_callback_reconciles_our_call_attempt() {
    let app = TestApp::start(&[]).await;
    let store = &app.state.store;
    store
        .create_call(
            NewCall {
                id: "att-42".into(),
                purpose: "vendor_ivr".into(),
                order_id: Some("MW-7".into()),
                escalation_id: Some("vendor_order_MW-7".into()),
                party: Some("vendor:V-42".into()),
                to_masked: "+9191xxxxx789".into(),
                to: None,
                bridge_to: None,
            },
            None,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    store.update_call("att-42", CallState::Unknown, None, Some("connect timed out"), chrono::Utc::now()).await.unwrap();
    let res = app
        .http
        .post(app.exotel_url("/exotel/webhooks/call-status"))
        .header("content-type", "application/json")
        .body(TERMINAL_JSON)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    mangwale_server::build_worker(&app.state).run_until_idle().await.unwrap();
    let attempt = store.call_by_id("att-42").await.unwrap().unwrap();
    assert_eq!(attempt.state, CallState::Completed);
    assert_eq!(attempt.call_sid.as_deref(), Some("80bfbec2d78bbbf10fb851f4fa165211"));
    let timeline = store.events_for_order("MW-7").await.unwrap();
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].kind, "call_ended");
    assert_eq!(timeline[0].detail["conversation_duration"], 320);
    assert_eq!(timeline[0].escalation_id.as_deref(), Some("vendor_order_MW-7"));
    app.stop().await;
}

#[tokio::test]
async fn applet_answers_have_exotels_shapes() {
    let app = TestApp::start(&[]).await;
    let url = app.exotel_url(&format!("/exotel/applet/greeting?{PASSTHRU}"));
    let head = app.http.head(&url).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(head.headers()["content-type"], "text/plain");
    let get = app.http.get(&url).send().await.unwrap();
    assert_eq!(get.headers()["content-type"], "text/plain");
    assert!(!get.text().await.unwrap().is_empty());
    let menu = format!("/exotel/applet/gather?{PASSTHRU}&flow=vendor_new_order&step=menu");
    let (status, gather) = json_of(app.http.get(app.exotel_url(&menu)).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(gather["gather_prompt"]["text"].is_string());
    assert_eq!(gather["max_input_digits"], 1);
    let (_, connect) =
        json_of(app.http.get(app.exotel_url(&format!("/exotel/applet/connect?{PASSTHRU}"))).send().await.unwrap())
            .await;
    assert_eq!(connect["destination"]["numbers"], json!([]));
    // Where no menu of ours is, no menu is made up: a 400 naming the step.
    let (status, error) =
        json_of(app.http.get(app.exotel_url(&format!("/exotel/applet/gather?{PASSTHRU}"))).send().await.unwrap()).await;
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("step")), "{error}");
    app.stop().await;
}

#[tokio::test]
async fn sms_delivery_reports_are_recorded_once() {
    let app = TestApp::start(&[]).await;
    let body = "SmsSid=6dbfdc50&To=09876543210&Status=sent&SmsUnits=1&DetailedStatus=DELIVERED_TO_HANDSET&DetailedStatusCode=20005&DateSent=2024-01-15+10%3A30%3A04";
    let send = || {
        app.http
            .post(app.exotel_url("/exotel/webhooks/sms-status"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let (status, first) = json_of(send().await.unwrap()).await;
    assert_eq!((status, &first["duplicate"]), (200, &json!(false)));
    let (_, second) = json_of(send().await.unwrap()).await;
    assert_eq!(second["duplicate"], true);
    app.stop().await;
}

#[tokio::test]
async fn the_voicebot_socket_speaks_exotels_protocol_and_records_the_stream() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let app = TestApp::start(&[]).await;
    let ws_base = app.base.replace("http://", "ws://");
    // Without the token the upgrade is refused.
    assert!(tokio_tungstenite::connect_async(format!("{ws_base}/exotel/voicebot")).await.is_err());

    let url = format!("{ws_base}/exotel/voicebot?flow=customer_voice_order&token={}", common::TOKEN);
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    socket.send(Message::text(r#"{"event":"connected"}"#)).await.unwrap();
    socket
        .send(Message::text(
            r#"{"event":"start","sequence_number":1,"stream_sid":"st1","start":{"stream_sid":"st1","call_sid":"vb-call-1","account_sid":"acme1","from":"09876543210","to":"08047112233","custom_parameters":{"flow":"customer_voice_order","token":"test-webhook-token-0123456789"},"media_format":{"encoding":"raw","sample_rate":"8000","bit_rate":"128kbps"}}}"#,
        ))
        .await
        .unwrap();
    // The bot greets (media in 320-byte multiples, then a mark) when it has a
    // synthesiser, or closes the stream when it cannot talk.
    let mut answered = false;
    while let Ok(Some(message)) = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next()).await {
        match message {
            Ok(Message::Text(text)) => {
                let frame: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                if frame["event"] == "mark" {
                    answered = true;
                    break;
                }
            }
            Ok(Message::Close(_)) | Err(_) => {
                answered = true;
                break;
            }
            Ok(_) => continue,
        }
    }
    assert!(answered, "the bot greeted or closed");
    let _ = socket
        .send(Message::text(
            r#"{"event":"stop","stream_sid":"st1","stop":{"call_sid":"vb-call-1","reason":"callended"}}"#,
        ))
        .await;
    let events = app.state.store.events_after(0, 10_000).await.unwrap();
    let started: Vec<_> = events.iter().filter(|e| e.kind == "voicebot.stream_started").collect();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].detail["custom_parameters"], json!({"flow": "customer_voice_order"}));
    assert!(!serde_json::to_string(&started[0].detail).unwrap().contains(common::TOKEN));
    app.stop().await;
}

#[tokio::test]
async fn a_voicebot_message_over_the_size_limit_ends_the_stream() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let app = TestApp::start(&[]).await;
    let ws_base = app.base.replace("http://", "ws://");
    let url = format!("{ws_base}/exotel/voicebot?token={}", common::TOKEN);
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    socket.send(Message::text(r#"{"event":"connected"}"#)).await.unwrap();
    let payload = "A".repeat(mangwale_server::routes::exotel_voicebot::MAX_MESSAGE_BYTES + 1);
    let oversized = format!(r#"{{"event":"media","stream_sid":"st1","media":{{"payload":"{payload}"}}}}"#);
    // The send may already fail once the server has closed.
    let _ = socket.send(Message::text(oversized)).await;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
    .expect("the server ends the stream instead of buffering the message");
    // 1009: message too big, when the close frame gets through.
    assert!(matches!(ended, None | Some(1009)), "{ended:?}");
    app.stop().await;
}
