//! SMS: the queued answer, delivery reports, DLT scrubbing, DND and the
//! promotional window.

mod common;

use std::time::Duration;

use common::*;
use mangwale_core::E164;
use mangwale_sim::exotel::{SmsStatus, SmsType};

const TEMPLATE_ID: &str = "1107160000000000001";
const TEMPLATE: &str = "Your OTP is {#var#} - MANGWALE";
const ENTITY: &str = "1201160000000000001";

fn config_with_template(ist: &str) -> mangwale_sim::SimConfig {
    mangwale_sim::SimConfig { dlt_entity_id: Some(ENTITY.to_string()), ..config_at(ist) }
        .with_template(TEMPLATE_ID, TEMPLATE)
}

async fn send(sim: &mangwale_sim::ExotelSim, form: &[(&str, &str)]) -> serde_json::Value {
    let (status, body) = json(post(sim, "/Sms/send.json", form).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn send_answers_queued_then_reports_delivery() {
    let sim = sim_with(config_with_template(START)).await;
    let receiver = Receiver::start().await;
    let callback = receiver.at("/sms/status?token=s");
    let body = send(
        &sim,
        &[
            ("From", EXOPHONE),
            ("To", CUSTOMER),
            ("Body", "Your OTP is 123456 - MANGWALE"),
            ("DltTemplateId", TEMPLATE_ID),
            ("DltEntityId", ENTITY),
            ("StatusCallback", &callback),
            ("CustomField", "otp_77"),
        ],
    )
    .await;
    let m = &body["SMSMessage"];
    let sid = m["Sid"].as_str().unwrap();
    assert_eq!(m["Status"], "queued");
    assert_eq!(m["DetailedStatusCode"], 21010);
    assert_eq!(m["DetailedStatus"], "PENDING_TO_OPERATOR");
    assert_eq!(m["From"], "08047112233/MNGWLE");
    assert_eq!(m["To"], "09800000002");
    assert_eq!(m["DateSent"], serde_json::Value::Null);
    assert_eq!(m["SmsUnits"], serde_json::Value::Null);
    assert_eq!(m["Uri"], format!("/v1/Accounts/{}/SMS/Messages/{sid}.json", sim.account_sid()));

    sim.advance(Duration::from_secs(1)).await;
    assert!(receiver.captured().is_empty());
    sim.advance(Duration::from_secs(5)).await;
    let captured = receiver.captured();
    assert_eq!(captured.len(), 1);
    assert_eq!(captured[0].content_type, "application/x-www-form-urlencoded");
    assert_eq!(captured[0].path, "/sms/status?token=s");
    let fields = captured[0].fields().await;
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["SmsSid", "To", "Status", "SmsUnits", "DetailedStatus", "DetailedStatusCode", "DateSent", "CustomField"]
    );
    assert_eq!(field(&fields, "SmsSid"), Some(sid));
    assert_eq!(field(&fields, "Status"), Some("sent"));
    assert_eq!(field(&fields, "SmsUnits"), Some("1"));
    assert_eq!(field(&fields, "DetailedStatus"), Some("DELIVERED_TO_HANDSET"));
    assert_eq!(field(&fields, "DetailedStatusCode"), Some("20005"));
    assert_eq!(field(&fields, "DateSent"), Some("2025-01-15 10:00:03"));
    assert_eq!(field(&fields, "CustomField"), Some("otp_77"));

    for path in [format!("/SMS/Messages/{sid}.json"), format!("/Sms/Messages/{sid}.json")] {
        let (status, details) = json(get(&sim, &path).await).await;
        assert_eq!(status, 200);
        assert_eq!(details["SMSMessage"]["Status"], "sent");
        assert_eq!(details["SMSMessage"]["DateSent"], "2025-01-15 10:00:03");
        assert_eq!(details["SMSMessage"]["SmsUnits"], "1");
    }
    let xml =
        post(&sim, "/Sms/send", &[("From", EXOPHONE), ("To", CUSTOMER), ("Body", "Your OTP is 9 - MANGWALE")]).await;
    let xml = xml.text().await.unwrap();
    assert!(xml.contains("<TwilioResponse><SMSMessage><Sid>"), "{xml}");
    assert!(xml.contains("<DateSent>1970-01-01 05:30:00</DateSent>"), "{xml}");
}

async fn outcome(sim: &mangwale_sim::ExotelSim, form: &[(&str, &str)]) -> (SmsStatus, u32) {
    let body = send(sim, form).await;
    let sid = body["SMSMessage"]["Sid"].as_str().unwrap().to_string();
    sim.advance(Duration::from_secs(5)).await;
    let m = sim.sms(&sid).unwrap();
    (m.status, m.detailed_status_code)
}

#[tokio::test]
async fn dlt_scrubbing_fails_unknown_entities_templates_and_mismatches() {
    let sim = sim_with(config_with_template(START)).await;
    let receiver = Receiver::start().await;
    let callback = receiver.at("/cb");
    let base = [("From", EXOPHONE), ("To", CUSTOMER), ("StatusCallback", callback.as_str())];
    let with = |extra: &[(&'static str, &'static str)]| [&base[..], extra].concat();
    let too_long = format!("Your OTP is {} - MANGWALE", "1".repeat(31));
    assert_eq!(
        outcome(&sim, &with(&[("Body", "Your OTP is 1234 - MANGWALE!"), ("DltTemplateId", TEMPLATE_ID)])).await,
        (SmsStatus::Failed, 23185)
    );
    assert_eq!(
        outcome(&sim, &with(&[("Body", "Your OTP is 1234 - MANGWALE"), ("DltTemplateId", "999")])).await,
        (SmsStatus::Failed, 23182)
    );
    assert_eq!(
        outcome(&sim, &with(&[("Body", "Your OTP is 1234 - MANGWALE"), ("DltEntityId", "1201000000000000999")])).await,
        (SmsStatus::Failed, 23281)
    );
    // Without a template id the body must match some registered template.
    assert_eq!(outcome(&sim, &with(&[("Body", "Free pizza!")])).await, (SmsStatus::Failed, 23185));
    assert_eq!(outcome(&sim, &with(&[("Body", "Your OTP is 55 - MANGWALE")])).await, (SmsStatus::Sent, 20005));
    assert_eq!(
        outcome(&sim, &[&base[..], &[("Body", too_long.as_str()), ("DltTemplateId", TEMPLATE_ID)]].concat()).await,
        (SmsStatus::Failed, 23185)
    );

    let first = receiver.captured()[0].fields().await;
    assert_eq!(field(&first, "Status"), Some("failed"));
    assert_eq!(field(&first, "DetailedStatus"), Some("DLT_TEMPLATE_DOES_NOT_MATCH"));
    assert_eq!(field(&first, "DetailedStatusCode"), Some("23185"));
}

#[tokio::test]
async fn promotional_sms_to_dnd_numbers_fail_dnd() {
    let mut config = config_at(START);
    config.dnd_numbers.push(E164::parse(CUSTOMER).unwrap());
    let sim = sim_with(config).await;
    let receiver = Receiver::start().await;
    let callback = receiver.at("/cb");
    let form = [("From", EXOPHONE), ("To", CUSTOMER), ("Body", "Sale today"), ("StatusCallback", callback.as_str())];
    assert_eq!(
        outcome(&sim, &[&form[..], &[("SmsType", "promotional")]].concat()).await,
        (SmsStatus::FailedDnd, 23005)
    );
    // Transactional messages reach DND numbers.
    assert_eq!(outcome(&sim, &[&form[..], &[("SmsType", "transactional")]].concat()).await, (SmsStatus::Sent, 20005));
    let fields = receiver.captured()[0].fields().await;
    assert_eq!(field(&fields, "Status"), Some("failed_dnd"));
    assert_eq!(field(&fields, "DetailedStatus"), Some("FAILED_REJECTED_DND"));
}

#[tokio::test]
async fn promotional_sms_at_22h_are_held_until_09h() {
    let sim = sim_with(config_at("2025-01-15 22:00:00")).await;
    let receiver = Receiver::start().await;
    let callback = receiver.at("/cb");
    let body = send(
        &sim,
        &[
            ("From", EXOPHONE),
            ("To", CUSTOMER),
            ("Body", "Sale today"),
            ("SmsType", "promotional"),
            ("StatusCallback", &callback),
        ],
    )
    .await;
    let sid = body["SMSMessage"]["Sid"].as_str().unwrap().to_string();
    sim.advance(Duration::from_secs(10)).await;
    let held = sim.sms(&sid).unwrap();
    assert_eq!((held.status, held.detailed_status_code), (SmsStatus::Submitted, 21020));
    assert_eq!(held.sms_type, SmsType::Promotional);
    let (_, details) = json(get(&sim, &format!("/SMS/Messages/{sid}.json")).await).await;
    assert_eq!(details["SMSMessage"]["Status"], "submitted");
    assert_eq!(details["SMSMessage"]["DetailedStatus"], "PENDING_ON_OPERATOR");
    assert!(receiver.captured().is_empty(), "no callback before a final status");

    sim.advance_to(mangwale_sim::clock::parse_ist("2025-01-16 08:59:59").unwrap()).await;
    assert!(receiver.captured().is_empty());
    sim.advance(Duration::from_secs(1)).await;
    let captured = receiver.captured();
    assert_eq!(captured.len(), 1);
    let fields = captured[0].fields().await;
    assert_eq!(field(&fields, "Status"), Some("sent"));
    assert_eq!(field(&fields, "DetailedStatusCode"), Some("20005"));
    assert_eq!(field(&fields, "DateSent"), Some("2025-01-16 09:00:00"));
}

#[tokio::test]
async fn send_validation_and_static_bulk() {
    let sim = sim().await;
    for (form, code) in [
        (vec![("To", CUSTOMER), ("Body", "x")], 40205),
        (vec![("From", EXOPHONE), ("Body", "x")], 40203),
        (vec![("From", EXOPHONE), ("To", "12"), ("Body", "x")], 40203),
        (vec![("From", EXOPHONE), ("To", CUSTOMER), ("Body", "x"), ("SmsType", "spam")], 40204),
        (vec![("From", EXOPHONE), ("To", CUSTOMER), ("Body", "x"), ("EncodingType", "utf9")], 40209),
        (vec![("From", "+918000000000"), ("To", CUSTOMER), ("Body", "x")], 40205),
        (vec![("From", "MNGWLE"), ("To", CUSTOMER), ("Body", "x"), ("SmsType", "promotional")], 40206),
    ] {
        let (status, body) = json(post(&sim, "/Sms/send.json", &form).await).await;
        assert_eq!(status, 400, "{form:?}: {body}");
        assert_eq!(body["RestException"]["Code"], code, "{form:?}: {body}");
    }
    let (status, body) = json(post(&sim, "/Sms/send.json", &[("From", EXOPHONE), ("To", CUSTOMER)]).await).await;
    assert_eq!(status, 400);
    assert!(body["RestException"]["Message"].as_str().unwrap().contains("'Body'"));

    // A DLT header as From, several recipients, a long unicode body.
    let body = "नमस्ते ".repeat(12);
    let (status, answer) = json(
        post(&sim, "/Sms/send.json", &[("From", "MNGWLE"), ("To[0]", CUSTOMER), ("To[1]", AGENT), ("Body", &body)])
            .await,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let items = answer.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["SMSMessage"]["From"], "08047112233/MNGWLE");
    assert_eq!(items[1]["SMSMessage"]["To"], "09800000001");
    let m = sim.sms(items[0]["SMSMessage"]["Sid"].as_str().unwrap()).unwrap();
    assert!(m.unicode);
    assert_eq!(m.units, 2);
}

#[tokio::test]
async fn bulksend_accepts_messages_and_message_keys() {
    let sim = sim().await;
    for prefix in ["Messages", "Message"] {
        let to0 = format!("{prefix}[0][To]");
        let body0 = format!("{prefix}[0][Body]");
        let to1 = format!("{prefix}[1][To]");
        let body1 = format!("{prefix}[1][Body]");
        let (status, answer) = json(
            post(
                &sim,
                "/Sms/bulksend.json",
                &[("From", EXOPHONE), (&to0, CUSTOMER), (&body0, "one"), (&to1, AGENT), (&body1, "two")],
            )
            .await,
        )
        .await;
        assert_eq!(status, 200, "{prefix}: {answer}");
        let items = answer.as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["SMSMessage"]["Body"], "one");
        assert_eq!(items[1]["SMSMessage"]["To"], "09800000001");
    }
    let (status, answer) = json(
        post(
            &sim,
            "/Sms/bulksend.json",
            &[
                ("From", EXOPHONE),
                ("Messages[0][To]", CUSTOMER),
                ("Messages[0][Body]", "ok"),
                ("Messages[1][To]", "bad"),
                ("Messages[1][Body]", "x"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, 207);
    assert_eq!(answer[0]["SMSMessage"]["Status"], "queued");
    assert_eq!(answer[1]["RestException"]["Status"], 400);
    assert_eq!(sim.sms_messages().len(), 5);
}
