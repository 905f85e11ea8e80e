//! The REST surface: auth, validation, JSON vs XML, rate limits, faults,
//! reproducible ids and the control endpoints.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mangwale_sim::exotel::{CallbackEvent, CalleeScript, Endpoint, Fault, SimConfig};
use mangwale_sim::{ExotelSim, SimClock};

#[tokio::test]
async fn bad_credentials_get_34010_in_json_and_xml() {
    let sim = sim().await;
    let url = format!("{}/Calls/connect.json", sim.account_url());
    let form = [("From", AGENT), ("To", CUSTOMER), ("CallerId", EXOPHONE)];
    for request in [
        client().post(&url).form(&form),
        client().post(&url).basic_auth(sim.api_key(), Some("wrong")).form(&form),
        client().post(&url).basic_auth("someone-else", Some(sim.api_token())).form(&form),
        client()
            .post(format!("{}/v1/Accounts/other/Calls/connect.json", sim.base_url()))
            .basic_auth(sim.api_key(), Some(sim.api_token()))
            .form(&form),
    ] {
        let (status, body) = json(request.send().await.unwrap()).await;
        assert_eq!(status, 401);
        assert_eq!(
            body,
            serde_json::json!({"RestException": {"Status": 401, "Message": "Unauthorized; ", "Code": 34010}})
        );
    }
    let xml = client().post(format!("{}/Calls/connect", sim.account_url())).form(&form).send().await.unwrap();
    assert_eq!(xml.status(), 401);
    assert_eq!(xml.headers()["content-type"], "application/xml");
    let text = xml.text().await.unwrap();
    assert!(
        text.contains("<TwilioResponse><RestException><Status>401</Status><Message>Unauthorized; </Message><Code>34010</Code></RestException></TwilioResponse>"),
        "{text}"
    );
    assert!(sim.calls().is_empty());
    let received = sim.received();
    assert_eq!(received.len(), 5);
    assert_eq!(received[1].auth_user.as_deref(), Some(sim.api_key()));
    assert!(!serde_json::to_string(&received).unwrap().contains(sim.api_token()), "the token is never logged");
}

#[tokio::test]
async fn every_connect_validation_rule_names_its_parameter() {
    let sim = sim().await;
    let base = [("From", AGENT), ("CallerId", EXOPHONE)];
    let flow = "http://my.exotel.com/mangwalesim1/exoml/start_voice/926";
    let long = "x".repeat(129);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("To", CUSTOMER), ("CallerId", EXOPHONE)], "'From'"),
        (vec![("From", "12"), ("To", CUSTOMER), ("CallerId", EXOPHONE)], "'From'"),
        (vec![("From", AGENT), ("To", CUSTOMER)], "'CallerId'"),
        (vec![("From", AGENT), ("To", CUSTOMER), ("CallerId", "+918000000000")], "'CallerId'"),
        (base.to_vec(), "'To', 'Url' or 'StreamUrl'"),
        ([&base[..], &[("To", CUSTOMER), ("Url", flow)]].concat(), "only one of"),
        (
            [&base[..], &[("Url", flow), ("StreamUrl", "wss://bot.example/ws"), ("StreamType", "bidirectional")]]
                .concat(),
            "'Url' and 'StreamUrl'",
        ),
        ([&base[..], &[("StreamUrl", "wss://bot.example/ws")]].concat(), "'StreamType'"),
        (
            [&base[..], &[("StreamUrl", "wss://bot.example/ws"), ("StreamType", "unidirectional")]].concat(),
            "'StreamType'",
        ),
        (
            [&base[..], &[("StreamUrl", "https://bot.example/ws"), ("StreamType", "bidirectional")]].concat(),
            "'StreamUrl'",
        ),
        ([&base[..], &[("Url", flow), ("StreamType", "bidirectional")]].concat(), "'StreamUrl'"),
        ([&base[..], &[("Url", "https://example.com/anything")]].concat(), "'Url'"),
        ([&base[..], &[("To", "not-a-number")]].concat(), "'To'"),
        ([&base[..], &[("To", CUSTOMER), ("TimeLimit", "14401")]].concat(), "'TimeLimit'"),
        ([&base[..], &[("To", CUSTOMER), ("TimeLimit", "ten")]].concat(), "'TimeLimit'"),
        ([&base[..], &[("To", CUSTOMER), ("TimeOut", "0")]].concat(), "'TimeOut'"),
        ([&base[..], &[("To", CUSTOMER), ("CustomField", long.as_str())]].concat(), "'CustomField'"),
        ([&base[..], &[("To", CUSTOMER), ("StatusCallbackEvents[0]", "hangup")]].concat(), "'StatusCallbackEvents'"),
        (
            [&base[..], &[("To", CUSTOMER), ("StatusCallbackContentType", "text/xml")]].concat(),
            "'StatusCallbackContentType'",
        ),
        ([&base[..], &[("To", CUSTOMER), ("StatusCallback", "ftp://x")]].concat(), "'StatusCallback'"),
        ([&base[..], &[("To", CUSTOMER), ("Record", "yes")]].concat(), "'Record'"),
        ([&base[..], &[("To", CUSTOMER), ("CallType", "promo")]].concat(), "'CallType'"),
    ];
    for (form, names) in cases {
        let (status, body) = json(post(&sim, "/Calls/connect.json", &form).await).await;
        assert_eq!(status, 400, "{form:?} → {body}");
        assert_eq!(body["RestException"]["Status"], 400);
        let message = body["RestException"]["Message"].as_str().unwrap();
        assert!(message.contains(names), "{form:?}: {message}");
    }
    assert!(sim.calls().is_empty());

    let ok: Vec<Vec<(&str, &str)>> = vec![
        [&base[..], &[("To", CUSTOMER), ("TimeLimit", "14400"), ("CustomField", &long[..128])]].concat(),
        [&base[..], &[("Url", flow)]].concat(),
        [&base[..], &[("StreamUrl", "wss://bot.example/ws?sample-rate=8000"), ("StreamType", "bidirectional")]]
            .concat(),
    ];
    for form in ok {
        let (status, body) = json(post(&sim, "/Calls/connect.json", &form).await).await;
        assert_eq!(status, 200, "{form:?} → {body}");
    }
}

#[tokio::test]
async fn status_callback_events_are_accepted_in_every_encoding() {
    let sim = sim().await;
    let base = "From=%2B919800000001&To=%2B919800000002&CallerId=%2B918047112233";
    for events in [
        "StatusCallbackEvents[0]=terminal&StatusCallbackEvents[1]=answered",
        "StatusCallbackEvents%5B0%5D=terminal&StatusCallbackEvents%5B1%5D=answered",
        "StatusCallbackEvents[]=terminal&StatusCallbackEvents[]=answered",
        "StatusCallbackEvents%5B%5D=terminal&StatusCallbackEvents%5B%5D=answered",
        "StatusCallbackEvents=terminal,answered",
        "StatusCallbackEvents=terminal%2Canswered",
    ] {
        let (status, body) = json(post_raw(&sim, "/Calls/connect.json", &format!("{base}&{events}")).await).await;
        assert_eq!(status, 200, "{events}: {body}");
        let call = sim.call(body["Call"]["Sid"].as_str().unwrap()).unwrap();
        assert_eq!(call.callback_events, vec![CallbackEvent::Terminal, CallbackEvent::Answered], "{events}");
    }
    // Multipart bodies work too.
    let form = reqwest::multipart::Form::new()
        .text("From", AGENT)
        .text("To", CUSTOMER)
        .text("CallerId", EXOPHONE)
        .text("StatusCallbackEvents[0]", "answered");
    let response = client()
        .post(format!("{}/Calls/connect.json", sim.account_url()))
        .basic_auth(sim.api_key(), Some(sim.api_token()))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, body) = json(response).await;
    assert_eq!(status, 200, "{body}");
    let call = sim.call(body["Call"]["Sid"].as_str().unwrap()).unwrap();
    assert_eq!(call.callback_events, vec![CallbackEvent::Answered]);
}

#[tokio::test]
async fn connect_answers_json_or_xml_as_exotel_does() {
    let sim = sim().await;
    let (status, body) =
        json(post(&sim, "/Calls/connect.json", &[("From", AGENT), ("To", CUSTOMER), ("CallerId", EXOPHONE)]).await)
            .await;
    assert_eq!(status, 200);
    let call = &body["Call"];
    let sid = call["Sid"].as_str().unwrap();
    assert_eq!(sid.len(), 32);
    assert!(sid.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    let expected = serde_json::json!({
        "Sid": sid, "ParentCallSid": null,
        "DateCreated": "2025-01-15 10:00:00", "DateUpdated": "2025-01-15 10:00:00",
        "AccountSid": sim.account_sid(), "To": "09800000002", "From": "09800000001",
        "PhoneNumberSid": "08047112233", "Status": "in-progress",
        "StartTime": "2025-01-15 10:00:00", "EndTime": null, "Duration": null, "Price": null,
        "Direction": "outbound-api", "AnsweredBy": null, "ForwardedFrom": null, "CallerName": null,
        "Uri": format!("/v1/Accounts/{}/Calls/{sid}.json", sim.account_sid()), "RecordingUrl": null
    });
    assert_eq!(call, &expected);

    let response = post(&sim, "/Calls/connect", &[("From", AGENT), ("To", CUSTOMER), ("CallerId", EXOPHONE)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/xml");
    let xml = response.text().await.unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(xml.contains("<TwilioResponse><Call><Sid>"), "{xml}");
    assert!(xml.contains("<Status>in-progress</Status>") && xml.contains("<EndTime/>"), "{xml}");
    assert!(xml.contains("<From>09800000001</From>"), "{xml}");

    // details=true on connect adds the Details block.
    let (_, body) = json(
        post(&sim, "/Calls/connect.json?details=true", &[("From", AGENT), ("To", CUSTOMER), ("CallerId", EXOPHONE)])
            .await,
    )
    .await;
    let details = &body["Call"]["Details"];
    assert_eq!(details["ConversationDuration"], 0);
    assert_eq!(details["Leg1Status"], "ringing");
    assert_eq!(details["Leg2Status"], "queued");
    assert_eq!(details["Legs"][1]["Leg"]["Id"], 2);
}

#[tokio::test]
async fn account_and_number_lookups() {
    let mut config = config_at(START);
    config.dnd_numbers.push(mangwale_core::E164::parse(CUSTOMER).unwrap());
    let sim = sim_with(config).await;
    // Only documented endpoints: there is no `GET /v1/Accounts/{sid}`.
    let (status, _) = json(get(&sim, ".json").await).await;
    assert_eq!(status, 404);
    let (status, body) = json(get_exophones(&sim).await).await;
    assert_eq!(status, 200);
    let numbers = body["incoming_phone_numbers"].as_array().unwrap();
    assert_eq!(numbers.len(), sim.config().exophones.len());
    assert_eq!(numbers[0]["phone_number"], sim.config().exophones[0].as_str());
    assert!(numbers[0]["sid"].is_string());
    assert_eq!((body["page"].as_i64(), body["next_page_uri"].is_null()), (Some(0), true));

    let (status, body) = json(get(&sim, "/Numbers/%2B919800000002.json").await).await;
    assert_eq!(status, 200);
    let n = &body["Numbers"];
    assert_eq!(
        (n["PhoneNumber"].as_str(), n["DND"].as_str(), n["Type"].as_str()),
        (Some(CUSTOMER), Some("Yes"), Some("Mobile"))
    );
    for key in ["Circle", "CircleName", "Operator", "OperatorName"] {
        assert!(n[key].as_str().is_some_and(|v| !v.is_empty()), "{key}");
    }
    let (_, body) = json(get(&sim, "/Numbers/09800000001.json").await).await;
    assert_eq!(body["Numbers"]["DND"], "No");
    let xml = get(&sim, "/Numbers/09800000001").await.text().await.unwrap();
    assert!(xml.contains("<Numbers><PhoneNumber>+919800000001</PhoneNumber>"), "{xml}");
    let (status, _) = json(get(&sim, "/Numbers/12.json").await).await;
    assert_eq!(status, 400);
    let (status, _) = json(get(&sim, "/Calls/0123456789abcdef0123456789abcdef.json").await).await;
    assert_eq!(status, 404);
    let (status, _) = json(get(&sim, "/Calls/connect.json").await).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn more_than_200_voice_requests_a_minute_get_429() {
    let sim = sim().await;
    assert_eq!(SimConfig::default().voice_rate_limit_per_minute, 200);
    let sid = bridge(&sim, &[]).await;
    for _ in 0..199 {
        assert_eq!(get(&sim, &format!("/Calls/{sid}.json")).await.status(), 200);
    }
    let (status, body) = json(get(&sim, &format!("/Calls/{sid}.json")).await).await;
    assert_eq!(status, 429);
    assert_eq!(body["RestException"]["Status"], 429);
    // Non-voice endpoints are not limited by it.
    assert_eq!(get_exophones(&sim).await.status(), 200);
    sim.advance(Duration::from_secs(60)).await;
    assert_eq!(get(&sim, &format!("/Calls/{sid}.json")).await.status(), 200);
}

#[tokio::test]
async fn status_faults_answer_with_a_rest_exception_and_do_nothing() {
    let sim = sim().await;
    for code in [500u16, 503, 504] {
        sim.inject_fault(Endpoint::CallsConnect, Fault::status(code), 1);
        let (status, body) =
            json(post(&sim, "/Calls/connect.json", &[("From", AGENT), ("To", CUSTOMER), ("CallerId", EXOPHONE)]).await)
                .await;
        assert_eq!(status, code);
        assert_eq!(body["RestException"]["Status"], code);
        assert!(sim.calls().is_empty());
    }
    // Faults target their endpoint only, and run out.
    sim.inject_fault(Endpoint::SmsSend, Fault::status(503), 2);
    bridge(&sim, &[]).await;
    assert_eq!(sim.calls().len(), 1);
    let last = sim.received().pop().unwrap();
    assert_eq!(last.response.unwrap().status, 200);
}

#[tokio::test]
async fn slow_answers_are_delayed() {
    let sim = sim().await;
    sim.inject_fault(Endpoint::ExoPhones, Fault::delay(Duration::from_secs(5)), 1);
    let timed_out = client()
        .get(format!("{}/v2_beta/Accounts/{}/IncomingPhoneNumbers", sim.base_url(), sim.account_sid()))
        .basic_auth(sim.api_key(), Some(sim.api_token()))
        .timeout(Duration::from_millis(50))
        .send()
        .await
        .unwrap_err();
    assert!(timed_out.is_timeout(), "{timed_out:?}");

    sim.inject_fault(Endpoint::Any, Fault::delay(Duration::from_millis(30)), 1);
    let started = Instant::now();
    assert_eq!(get_exophones(&sim).await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(30));
}

#[tokio::test]
async fn dropped_connections_get_no_answer() {
    let sim = sim().await;
    let form = [("From", AGENT), ("To", CUSTOMER), ("CallerId", EXOPHONE)];
    let send = || {
        client()
            .post(format!("{}/Calls/connect.json", sim.account_url()))
            .basic_auth(sim.api_key(), Some(sim.api_token()))
            .form(&form)
            .send()
    };
    sim.inject_fault(Endpoint::CallsConnect, Fault::Drop, 1);
    let error = send().await.unwrap_err();
    assert!(!error.is_timeout() && error.status().is_none(), "{error:?}");
    assert!(sim.calls().is_empty(), "a dropped request has no effect");
    let entry = sim.received().pop().unwrap();
    assert!(entry.dropped && entry.response.is_none());
    assert_eq!(entry.fault, Some(Fault::Drop));

    sim.inject_fault(Endpoint::CallsConnect, Fault::DropAfterProcessing, 1);
    assert!(send().await.is_err());
    assert_eq!(sim.calls().len(), 1, "the call was placed although the client got no answer");
    assert!(sim.received().pop().unwrap().dropped);

    assert_eq!(send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn seeded_ids_are_reproducible() {
    let mut sids = Vec::new();
    for seed in [42, 42, 43] {
        let sim = sim_with(SimConfig { seed, ..config_at(START) }).await;
        let call = bridge(&sim, &[]).await;
        let (_, sms) =
            json(post(&sim, "/Sms/send.json", &[("From", EXOPHONE), ("To", CUSTOMER), ("Body", "hi")]).await).await;
        sids.push((call, sms["SMSMessage"]["Sid"].as_str().unwrap().to_string()));
    }
    assert_eq!(sids[0], sids[1]);
    assert_ne!(sids[0].0, sids[2].0);
    assert_ne!(sids[0].0, sids[0].1);
}

#[tokio::test]
async fn control_endpoints_script_fault_inspect_and_advance() {
    let sim = sim().await;
    let http = client();
    let control = |path: &str| format!("{}/_sim/{path}", sim.base_url());
    let r = http
        .post(control("script"))
        .json(&serde_json::json!({"number": CUSTOMER, "script": {"pickup": {"kind": "busy", "after": 4}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(control("faults"))
        .json(&serde_json::json!({"endpoint": "calls_connect", "fault": {"kind": "status", "status": 503}, "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        post(&sim, "/Calls/connect.json", &[("From", AGENT), ("To", CUSTOMER), ("CallerId", EXOPHONE)]).await.status(),
        503
    );
    let sid = bridge(&sim, &[]).await;

    let (status, body) =
        json(http.post(control("advance")).json(&serde_json::json!({"seconds": 60})).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let (_, call) = json(http.get(control(&format!("calls/{sid}"))).send().await.unwrap()).await;
    assert_eq!(call["status"], "busy");
    assert_eq!(call["legs"][1]["status"], "busy");

    let (_, log) = json(http.get(control("log")).send().await.unwrap()).await;
    let received = log["received"].as_array().unwrap();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0]["response"]["status"], 503);
    assert_eq!(received[1]["form"][0], serde_json::json!(["From", AGENT]));
    let (_, summary) = json(http.get(format!("{}/_sim", sim.base_url())).send().await.unwrap()).await;
    assert_eq!(summary["account_sid"], sim.account_sid());
    assert_eq!(summary["manual_clock"], true);
    assert!(http.delete(control("log")).send().await.unwrap().status().is_success());
    assert!(sim.received().is_empty());
}

#[tokio::test]
async fn the_system_clock_fires_events_by_itself() {
    let config = SimConfig { clock: SimClock::system(), ..SimConfig::default() };
    let sim = ExotelSim::start(config).await.unwrap();
    let ms = Duration::from_millis;
    sim.script(AGENT, CalleeScript::answers_after(ms(5)).stays_for(ms(200))).unwrap();
    sim.script(CUSTOMER, CalleeScript::answers_after(ms(5)).stays_for(ms(5))).unwrap();
    let sid = bridge(&sim, &[]).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sim.call(&sid).unwrap().is_ended() {
        assert!(Instant::now() < deadline, "the call never ended");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(sim.call(&sid).unwrap().status.as_str(), "completed");
    sim.shutdown().await;
}

#[tokio::test]
async fn run_standalone_stops_on_shutdown() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(mangwale_sim::run_standalone(0, async move {
        let _ = rx.await;
    }));
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
}
