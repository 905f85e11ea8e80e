//! Campaign compliance end to end (issue 13): opt-outs from every source
//! land on the suppression ledger through the simulators' real HTTP
//! callbacks, and the gate in front of `POST /campaigns/send/sms` honours
//! them and the promotional window on the controlled clock.

use chrono::{DateTime, TimeZone, Utc};
use mangwale_core::E164;
use mangwale_store::Clock;
use serde_json::{Value, json};

use crate::common::{API_KEY, SimEnv};

const CUSTOMER: &str = "+919876501234";
const OPT_OUT: &str = "+918047112266";

/// `h:m` IST on 5 December 2026.
fn ist(h: u32, m: u32) -> DateTime<Utc> {
    mangwale_core::campaign::ist().with_ymd_and_hms(2026, 12, 5, h, m, 0).unwrap().with_timezone(&Utc)
}

/// The order desk the templates' `phone` variable names.
const ORDER_DESK: &str = "+919800000101";

async fn start(at: DateTime<Utc>) -> SimEnv {
    start_with(at, |config| config).await
}

async fn start_with(
    at: DateTime<Utc>,
    exotel: impl FnOnce(mangwale_sim::exotel::SimConfig) -> mangwale_sim::exotel::SimConfig + Send + 'static,
) -> SimEnv {
    SimEnv::builder()
        .at(at)
        .var("OPT_OUT_NUMBER", OPT_OUT)
        .var("ORDER_DESK_PHONE", ORDER_DESK)
        .whatsapp()
        .exotel(exotel)
        .start()
        .await
}

impl SimEnv {
    async fn send_campaign_sms(&self, phone: &str) -> (u16, Value) {
        self.post("/campaigns/send/sms", json!({"phone": phone, "type": "area_launch"})).await
    }

    async fn sources(&self, phone: &str) -> Vec<String> {
        let (status, body) = self.get(&format!("/campaigns/suppressions?phone={}", phone.replace('+', "%2B"))).await;
        assert_eq!(status, 200, "{body}");
        body["entries"].as_array().unwrap().iter().map(|e| e["source"].as_str().unwrap().to_string()).collect()
    }

    async fn opt_out_events(&self) -> Vec<Value> {
        self.all_events().await.into_iter().filter(|e| e.kind == "campaign.opt_out").map(|e| e.detail).collect()
    }
}

#[tokio::test]
async fn an_sms_stop_reply_through_exotel_stops_the_next_campaign_sms() {
    let env = start(ist(11, 0)).await;
    let (status, body) = env.send_campaign_sms(CUSTOMER).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "SMS sent");
    let sid = body["sid"].as_str().unwrap();
    let sent = env.exotel.sms(sid).expect("the simulator has the SMS");
    assert!(sent.body.contains("STOP"), "the rendered template: {}", sent.body);
    assert!(sent.body.contains(&E164::parse(OPT_OUT).unwrap().national()), "opt_out filled: {}", sent.body);

    // The customer replies STOP to our ExoPhone; Exotel forwards it.
    let exophone = env.exotel.config().exophones[0].clone();
    let forwarded = env.exotel.send_incoming_sms(CUSTOMER, exophone, "STOP").await.unwrap();
    assert_eq!(forwarded.response_status, Some(200), "{forwarded:?}");

    let (status, body) = env.send_campaign_sms(CUSTOMER).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "suppressed");
    assert_eq!(body["error"]["source"], "sms_stop");
    assert_eq!(env.sources(CUSTOMER).await, ["sms_stop"]);
    let events = env.opt_out_events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["recorded"], true);
    assert!(!events[0].to_string().contains("9876501234"), "no full number on the timeline");

    // Another text is just recorded.
    let other = E164::parse("+919876501235").unwrap();
    let exophone = env.exotel.config().exophones[0].clone();
    env.exotel.send_incoming_sms(other.clone(), exophone, "when do you open?").await.unwrap();
    assert!(env.sources(other.as_str()).await.is_empty());
    env.app.stop().await;
}

#[tokio::test]
async fn a_whatsapp_stop_is_an_opt_out_and_other_texts_are_not() {
    let env = start(ist(11, 0)).await;
    let customer = E164::parse(CUSTOMER).unwrap();
    env.whatsapp.inbound_text(&customer, "hello");
    env.whatsapp.inbound_text(&customer, "Stop please");
    env.whatsapp.run_due().await;
    assert_eq!(env.sources(CUSTOMER).await, ["whatsapp_stop"]);
    let kinds: Vec<String> = env.all_events().await.into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "whatsapp.text").count(), 2, "both texts are kept: {kinds:?}");
    let (status, body) = env.send_campaign_sms(CUSTOMER).await;
    assert_eq!((status, body["error"]["source"].as_str()), (409, Some("whatsapp_stop")), "{body}");
    env.app.stop().await;
}

#[tokio::test]
async fn a_missed_call_to_the_opt_out_number_is_recorded_and_never_called_back() {
    let env = start(ist(11, 0)).await;
    env.exotel.incoming_call(CUSTOMER, OPT_OUT, "missed_call").unwrap();
    env.exotel.run_due().await;
    env.run_jobs().await;
    env.tick(120).await;
    assert_eq!(env.sources(CUSTOMER).await, ["missed_call"]);
    let customer = E164::parse(CUSTOMER).unwrap();
    let since = env.clock.now() - chrono::Duration::days(1);
    assert!(env.app.state.store.callback_for_phone(&customer, since).await.unwrap().is_none(), "no callback");
    // Our calls to the caller are flow calls from their number into a flow.
    let calls_to_customer = env
        .exotel
        .calls()
        .into_iter()
        .filter(|c| c.from.as_str() == CUSTOMER && matches!(c.mode, mangwale_sim::exotel::CallMode::Flow { .. }))
        .count();
    assert_eq!(calls_to_customer, 0, "nobody rang the caller back");
    env.app.stop().await;
}

#[tokio::test]
async fn a_failed_dnd_report_suppresses_promotional_sms_to_the_number() {
    let env = start_with(ist(11, 0), |mut config| {
        config.dnd_numbers.push(E164::parse(CUSTOMER).unwrap());
        config
    })
    .await;
    let (status, body) = env.send_campaign_sms(CUSTOMER).await;
    assert_eq!(status, 200, "Exotel accepts it; the operator rejects it: {body}");
    env.tick(10).await;
    let sid = body["sid"].as_str().unwrap();
    assert_eq!(env.exotel.sms(sid).unwrap().status, mangwale_sim::exotel::SmsStatus::FailedDnd);
    assert_eq!(env.sources(CUSTOMER).await, ["exotel_dnd"]);
    let (status, body) = env.send_campaign_sms(CUSTOMER).await;
    assert_eq!((status, body["error"]["source"].as_str()), (409, Some("exotel_dnd")), "{body}");
    env.app.stop().await;
}

#[tokio::test]
async fn promotional_sms_wait_for_nine_in_the_morning_ist() {
    let env = start(ist(22, 0)).await;
    let (status, body) = env.send_campaign_sms(CUSTOMER).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "outside_promotional_window");
    let next: DateTime<Utc> = body["error"]["nextAllowedAt"].as_str().unwrap().parse().unwrap();
    let nine_next_day = mangwale_core::campaign::ist().with_ymd_and_hms(2026, 12, 6, 9, 0, 0).unwrap();
    assert_eq!(next, nine_next_day.with_timezone(&Utc));
    assert!(env.exotel.sms_messages().is_empty(), "nothing went to Exotel");

    env.clock.advance(std::time::Duration::from_secs(11 * 3600));
    let (status, body) = env.send_campaign_sms(CUSTOMER).await;
    assert_eq!(status, 200, "at 09:00 the window is open: {body}");
    env.app.stop().await;
}

#[tokio::test]
async fn operators_add_lift_list_and_import_suppressions() {
    let env = start(ist(11, 0)).await;
    let http = &env.app.http;
    let base = &env.app.base;

    let (status, body) =
        env.post("/campaigns/suppressions", json!({"phone": "98765 01234", "note": "asked by phone"})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["entry"]["source"], "api");
    let (status, body) = env.post("/campaigns/suppressions", json!({"phone": CUSTOMER})).await;
    assert_eq!((status, &body["alreadySuppressed"]), (200, &json!(true)), "{body}");
    let (status, _) = env.post("/campaigns/suppressions", json!({"phone": "12"})).await;
    assert_eq!(status, 400);

    // A removal is an entry of its own.
    let (status, body) =
        env.post(&format!("/campaigns/suppressions/{CUSTOMER}/remove"), json!({"note": "resubscribed"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["entry"]["action"], "remove");
    let deleted = http
        .delete(format!("{base}/campaigns/suppressions/{CUSTOMER}"))
        .header("X-API-Key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 404, "nothing left to lift");
    let (status, _) = env.send_campaign_sms(CUSTOMER).await;
    assert_eq!(status, 200, "lifted: sendable again");

    // A scrub list: a header, numbers in many shapes, a blank and a bad line.
    let csv = "number,name\n+919876500001,A\n09876500002,B\n\n9876500003\nnot-a-number,C\n+919876500001,dup\n";
    let res = http
        .post(format!("{base}/campaigns/suppressions/scrub?note=NCPR%202026-12"))
        .header("X-API-Key", API_KEY)
        .header("Content-Type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let report: Value = res.json().await.unwrap();
    assert_eq!(report["added"], 3, "{report}");
    assert_eq!(report["invalid"], 1, "{report}");
    assert_eq!(report["errors"][0]["line"], 6, "{report}");
    let (status, body) = env.send_campaign_sms("+919876500002").await;
    assert_eq!((status, body["error"]["source"].as_str()), (409, Some("scrub_list")), "{body}");

    let (status, list) = env.get("/campaigns/suppressions?source=scrub_list&limit=2").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["entries"].as_array().unwrap().len(), 2);
    assert_eq!(list["bySource"]["scrub_list"], 3);
    let before = list["nextBefore"].as_i64().unwrap();
    let (_, rest) = env.get(&format!("/campaigns/suppressions?source=scrub_list&limit=2&before={before}")).await;
    assert_eq!(rest["entries"].as_array().unwrap().len(), 1);

    let unauthenticated = http.get(format!("{base}/campaigns/suppressions")).send().await.unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
    env.app.stop().await;
}

#[tokio::test]
async fn a_custom_message_must_be_the_dlt_text_filled_in() {
    let env = start(ist(11, 0)).await;
    let (status, body) = env
        .post(
            "/campaigns/send/sms",
            json!({"phone": CUSTOMER, "type": "area_launch", "custom_message": "Big sale today only!"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "custom_message");
    let (status, body) = env.post("/campaigns/send/sms", json!({"phone": CUSTOMER, "type": "no_such_campaign"})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("type")), "{body}");

    // The same Idempotency-Key sends once.
    let send = || {
        env.app
            .http
            .post(format!("{}/campaigns/send/sms", env.app.base))
            .header("X-API-Key", API_KEY)
            .header("Idempotency-Key", "campaign-test-1")
            .json(&json!({"phone": CUSTOMER, "type": "diwali", "language": "en"}))
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    let second: Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(first["sid"], second["sid"], "{first} {second}");
    assert_eq!(second["duplicate"], true);
    assert_eq!(env.exotel.sms_messages().len(), 1);
    env.app.stop().await;
}
