//! The campaign sender end to end (issue 13): campaigns created through the
//! API, sent by the sender driven step by step on the controlled clock, to
//! the Exotel simulator over real HTTP; the promotional window, a STOP reply
//! mid-campaign, a restart mid-batch, the breaker and the incumbent's shapes.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use mangwale_core::E164;
use mangwale_core::campaign::{CampaignId, MessageChannel, PromoWindow};
use mangwale_providers::exotel::client::SendSms;
use mangwale_server::campaigns::sender::{CampaignSender, LEASE, message_key};
use mangwale_server::comms::channels::{SentOnce, SmsPurpose, send_sms_once};
use mangwale_sim::exotel::{Endpoint, Fault};
use mangwale_store::Clock;
use serde_json::{Value, json};

use crate::common::SimEnv;

const OPT_OUT: &str = "+918047112266";
const ORDER_DESK: &str = "+919800000101";

/// `h:m` IST on `day` December 2026.
fn ist(day: u32, h: u32, m: u32) -> DateTime<Utc> {
    mangwale_core::campaign::ist().with_ymd_and_hms(2026, 12, day, h, m, 0).unwrap().with_timezone(&Utc)
}

fn phone(n: usize) -> String {
    format!("+9197{n:08}")
}

fn builder() -> crate::common::SimEnvBuilder {
    SimEnv::builder()
        .var("OPT_OUT_NUMBER", OPT_OUT)
        .var("ORDER_DESK_PHONE", ORDER_DESK)
        // The client's own real-time budgets: the pacing under test is the
        // sender's, on the test's clock.
        .var("EXOTEL_SMS_PER_MINUTE", "10000")
        .var("EXOTEL_VOICE_PER_MINUTE", "10000")
        .exotel_retries(0)
}

async fn start(at: DateTime<Utc>, vars: &[(&str, &str)]) -> SimEnv {
    let mut builder = builder().at(at);
    for (k, v) in vars {
        builder = builder.var(k, v);
    }
    builder.start().await
}

impl SimEnv {
    /// Creates and starts a campaign of `n` recipients; its id.
    async fn campaign(&self, channel: &str, n: usize, pacing: Value) -> String {
        let numbers: Vec<String> = (1..=n).map(phone).collect();
        let (status, created) = self
            .post(
                "/campaigns/create",
                json!({"name": "Nashik wave", "type": "area_launch", "channel": channel, "phone_numbers": numbers,
                       "language": "hi", "pacing": pacing}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["campaignId"].as_str().unwrap().to_string();
        let (status, started) = self.post(&format!("/campaigns/{id}/start"), json!({})).await;
        assert_eq!(status, 200, "{started}");
        id
    }

    /// Moves the clocks `secs` in steps of `step` seconds; at each step the
    /// simulator acts, the jobs (status callbacks) run and the sender sends
    /// what is due.
    async fn drive(&self, sender: &CampaignSender, secs: u64, step: u64) {
        for _ in 0..secs.div_ceil(step) {
            self.clock.advance(Duration::from_secs(step));
            self.exotel.advance(Duration::from_secs(step)).await;
            self.run_jobs().await;
            sender.run_until_idle().await.unwrap();
        }
    }

    async fn status(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/campaigns/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn campaign_events(&self, id: &str, kind: &str) -> Vec<Value> {
        let party = format!("campaign:{id}");
        let (mut found, mut after) = (Vec::new(), 0);
        loop {
            let page = self.app.state.store.events_after(after, 5000).await.unwrap();
            let Some(last) = page.last() else { return found };
            after = last.id;
            found.extend(
                page.into_iter()
                    .filter(|e| e.kind == kind && e.party.as_deref() == Some(party.as_str()))
                    .map(|e| e.detail),
            );
        }
    }
}

/// How many SMS and calls each number got from the simulator.
fn per_number(env: &SimEnv) -> (HashMap<String, usize>, HashMap<String, usize>) {
    let mut sms = HashMap::new();
    for m in env.exotel.sms_messages() {
        *sms.entry(m.to.as_str().to_string()).or_default() += 1;
    }
    let mut calls = HashMap::new();
    for c in env.exotel.calls() {
        *calls.entry(c.from.as_str().to_string()).or_default() += 1;
    }
    (sms, calls)
}

#[tokio::test]
async fn a_thousand_recipient_campaign_started_at_ten_to_nine_waits_for_the_morning() {
    let env = start(ist(6, 20, 50), &[]).await;
    let sender = CampaignSender::new(&env.app.state);
    let pacing = json!({"smsPerSecond": 1, "callsPerSecond": 1, "maxConcurrentCalls": 40});
    let id = env.campaign("both", 1000, pacing).await;

    // Ten minutes to 21:00 IST, in steps of a second (the sender's passes
    // come several a second; a slot may be taken a second early).
    env.drive(&sender, 600, 1).await;
    assert_eq!(env.clock.now(), ist(6, 21, 0));
    let (sms, calls) = per_number(&env);
    let (sent_sms, sent_calls) = (sms.len(), calls.len());
    // 600 s at 1/s (no head start: an idle limiter's schedule starts a
    // tolerance ahead).
    assert!((595..=601).contains(&sent_sms), "{sent_sms} SMS by 21:00");
    assert!((580..=602).contains(&sent_calls), "{sent_calls} calls by 21:00");
    let status = env.status(&id).await;
    assert_eq!(status["state"], "running");
    assert_eq!(status["progress"]["total"], 2000);
    let expected: DateTime<Utc> = status["expectedFinishAt"].as_str().unwrap().parse().unwrap();
    assert!(expected > ist(7, 9, 0) && expected < ist(7, 9, 10), "finishes next morning: {expected}");

    // The night: nothing goes out, and the wait is on the feed once.
    env.drive(&sender, 3600, 600).await;
    env.drive(&sender, 11 * 3600, 3600).await;
    assert_eq!(env.clock.now(), ist(7, 9, 0));
    let night = |at: DateTime<Utc>| at >= ist(6, 21, 0) && at < ist(7, 9, 0);
    assert!(!env.exotel.sms_messages().iter().any(|m| night(m.created_at)), "no SMS at night");
    assert!(!env.exotel.calls().iter().any(|c| night(c.created_at)), "no calls at night");
    // The morning's first pass, at 09:00:00, has sent its first slots.
    let (sms, calls) = per_number(&env);
    assert!(sms.len() - sent_sms <= 2 && calls.len() - sent_calls <= 2, "{} {}", sms.len(), calls.len());
    let waiting = env.campaign_events(&id, "campaign.waiting").await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["nextAllowedAt"], ist(7, 9, 0).to_rfc3339());

    // The morning: the rest, then completed.
    env.drive(&sender, 480, 1).await;
    let (sms, calls) = per_number(&env);
    assert_eq!(sms.len(), 1000);
    assert_eq!(calls.len(), 1000);
    assert!(sms.values().all(|n| *n == 1), "one SMS per number");
    assert!(calls.values().all(|n| *n == 1), "one call per number");
    let window = PromoWindow::default();
    assert!(env.exotel.sms_messages().iter().all(|m| window.is_open(m.created_at)), "every SMS inside the window");
    assert!(env.exotel.calls().iter().all(|c| window.is_open(c.created_at)), "every call inside the window");
    env.drive(&sender, 60, 5).await;
    let status = env.status(&id).await;
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(status["progress"]["final"], 2000);
    assert_eq!(
        status["counts"]["sms"]["sent"].as_u64().unwrap() + status["counts"]["sms"]["delivered"].as_u64().unwrap(),
        1000
    );
    assert_eq!(status["breaker"]["state"], "closed");
    assert_eq!(env.campaign_events(&id, "campaign.completed").await.len(), 1);
    let progress = env.campaign_events(&id, "campaign.progress").await;
    assert!(!progress.is_empty());
    assert!(progress.iter().all(|e| e["totals"]["queued"].is_u64()), "each carries the store's totals: {progress:?}");
    env.app.stop().await;
}

#[tokio::test]
async fn a_stop_reply_mid_campaign_suppresses_the_numbers_remaining_messages() {
    let env = start(ist(6, 11, 0), &[]).await;
    let sender = CampaignSender::new(&env.app.state);
    // SMS go within two seconds (no head start: one at once, then ten a
    // second); one call every ten seconds.
    let id = env.campaign("both", 6, json!({"smsPerSecond": 10, "callsPerSecond": 0.1})).await;
    env.drive(&sender, 2, 1).await;
    let (sms, calls) = per_number(&env);
    assert_eq!(sms.len(), 6, "every SMS went: {sms:?}");
    assert_eq!(calls.len(), 1, "one call so far: {calls:?}");
    let customer = (1..=6).map(phone).find(|p| !calls.contains_key(p)).unwrap();

    let exophone = env.exotel.config().exophones[0].clone();
    let forwarded = env.exotel.send_incoming_sms(customer.as_str(), exophone, "STOP").await.unwrap();
    assert_eq!(forwarded.response_status, Some(200));
    env.drive(&sender, 120, 5).await;

    let (_, calls) = per_number(&env);
    assert_eq!(calls.len(), 5, "every other number was called: {calls:?}");
    assert!(!calls.contains_key(&customer), "the number that said STOP was not called");
    let status = env.status(&id).await;
    assert_eq!(status["counts"]["voice"]["suppressed"], 1, "{status}");
    assert_eq!(status["state"], "completed");
    let page = env.app.state.store.recipients_page(&CampaignId::parse(&id).unwrap(), 0, 10).await.unwrap();
    let recipient = page.iter().find(|r| r.phone.as_str() == customer).unwrap();
    let voice = recipient.messages.iter().find(|m| m.channel == MessageChannel::Voice).unwrap();
    assert!(voice.last_error.as_deref().unwrap().contains("sms_stop"), "{voice:?}");
    env.app.stop().await;
}

#[tokio::test]
async fn a_restart_mid_batch_sends_nobody_a_second_message() {
    let env = start(ist(6, 11, 0), &[]).await;
    let sender = CampaignSender::new(&env.app.state);
    let id = env.campaign("sms", 20, json!({"smsPerSecond": 2})).await;
    let cid = CampaignId::parse(&id).unwrap();
    env.drive(&sender, 3, 1).await;
    let before = env.exotel.sms_messages().len();
    assert!((5..=9).contains(&before), "{before}");

    // A replica claims three messages and dies: the first after Exotel
    // accepted it, the second with its answer lost (the connection dropped
    // after Exotel took it), the third before it was tried.
    let store = env.app.state.store.clone();
    let now = env.clock.now();
    let dead = store.claim_messages(&cid, MessageChannel::Sms, now, LEASE, 3).await.unwrap();
    assert_eq!(dead.len(), 3);
    let sms = |m: &mangwale_store::ClaimedMessage| SendSms::new("MNGWLE", m.phone.clone(), "Mangwale is live");
    let key = |m: &mangwale_store::ClaimedMessage| message_key(&cid, MessageChannel::Sms, m.seq, None);
    let SentOnce::Sent { id: accepted_sid, .. } =
        send_sms_once(&env.app.state, SmsPurpose::Campaign, &key(&dead[0]), &sms(&dead[0])).await
    else {
        panic!("the simulator accepts it")
    };
    env.exotel.inject_fault(Endpoint::SmsSend, Fault::DropAfterProcessing, 1);
    let lost = send_sms_once(&env.app.state, SmsPurpose::Campaign, &key(&dead[1]), &sms(&dead[1])).await;
    assert!(matches!(lost, SentOnce::Unknown { .. }), "{lost:?}");
    let first_run = env.exotel.sms_messages();
    let clock = env.clock.clone();
    let db = env.app.stop_keeping_db().await;

    // A new process on the same database, after the dead claims' leases.
    let env = builder().clock(clock).db(Some(db)).start().await;
    let sender = CampaignSender::new(&env.app.state);
    env.drive(&sender, LEASE.as_secs() + 30, 5).await;

    let mut per_phone: HashMap<String, usize> = HashMap::new();
    for m in first_run.iter().chain(env.exotel.sms_messages().iter()) {
        *per_phone.entry(m.to.as_str().to_string()).or_default() += 1;
    }
    assert_eq!(per_phone.len(), 20, "everyone got one: {per_phone:?}");
    assert!(per_phone.values().all(|n| *n == 1), "nobody got two: {per_phone:?}");
    let status = env.status(&id).await;
    assert_eq!(status["state"], "completed", "{status}");
    let outcomes = env.app.state.store.recipients_page(&cid, 0, 100).await.unwrap();
    let of = |seq: i64| outcomes.iter().find(|r| r.seq == seq).unwrap().messages[0].clone();
    let accepted = of(dead[0].seq);
    assert_eq!(accepted.state, mangwale_core::campaign::MessageState::Sent, "finished from the stored answer");
    assert_eq!(accepted.provider_sid.as_deref(), Some(accepted_sid.as_str()));
    let unknown = of(dead[1].seq);
    assert_eq!(unknown.state, mangwale_core::campaign::MessageState::Failed);
    assert!(unknown.last_error.unwrap().contains("outcome unknown"));
    // Sent, and Exotel's delivery report has come since.
    assert_eq!(of(dead[2].seq).state, mangwale_core::campaign::MessageState::Delivered, "the untried one is sent");
    env.app.stop().await;
}

#[tokio::test]
async fn the_breaker_pauses_a_campaign_whose_sms_exotel_rejects() {
    let env =
        start(ist(6, 11, 0), &[("CAMPAIGN_BREAKER_WINDOW", "10"), ("CAMPAIGN_BREAKER_FAILURE_SHARE", "0.5")]).await;
    let sender = CampaignSender::new(&env.app.state);
    env.exotel.inject_fault(Endpoint::SmsSend, Fault::status(503), 10_000);
    let id = env.campaign("sms", 40, json!({"smsPerSecond": 4})).await;
    env.drive(&sender, 10, 1).await;

    let status = env.status(&id).await;
    assert_eq!(status["state"], "paused", "{status}");
    let reason = status["stateReason"].as_str().unwrap();
    assert!(reason.starts_with("breaker: 10 of the last 10 sends failed"), "{reason}");
    assert_eq!(status["breaker"]["state"], "tripped");
    assert_eq!(status["expectedFinishAt"], Value::Null);
    assert!(env.exotel.sms_messages().is_empty());
    let paused = env.campaign_events(&id, "campaign.paused").await;
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0]["by"], "sender");
    assert_eq!(paused[0]["breaker"]["failed"], 10);
    // Failed tries wait for their retry, nothing is dropped.
    assert_eq!(status["counts"]["sms"]["queued"], 40, "{status}");
    let requests = env.exotel.received().len();
    env.drive(&sender, 120, 5).await;
    assert_eq!(env.exotel.received().len(), requests, "a paused campaign sends nothing");

    // Exotel is back: the operator resumes and the rest goes out.
    env.exotel.clear_faults();
    let (status, _) = env.post(&format!("/campaigns/{id}/resume"), json!({})).await;
    assert_eq!(status, 200);
    env.drive(&sender, 120, 5).await;
    let status = env.status(&id).await;
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(status["breaker"]["state"], "closed");
    assert!(status["breaker"]["lastTripReason"].as_str().unwrap().starts_with("breaker:"));
    assert_eq!(env.exotel.sms_messages().len(), 40);
    env.app.stop().await;
}

#[tokio::test]
async fn the_incumbents_shapes_run_a_campaign_to_the_end() {
    let env = start(ist(6, 11, 0), &[]).await;
    let sender = CampaignSender::new(&env.app.state);
    // As the seed writes them: no pacing, no body on start.
    let (status, created) = env
        .post(
            "/campaigns/create",
            json!({"name": "Nashik Launch Wave 2", "type": "area_launch", "channel": "both",
                   "phone_numbers": ["+919876543210", "+919988776655"], "language": "hi"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["campaignId"].as_str().unwrap();
    let res = env
        .app
        .http
        .post(format!("{}/campaigns/{id}/start", env.app.base))
        .header("X-API-Key", crate::common::API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    env.drive(&sender, 60, 5).await;
    let status = env.status(id).await;
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(status["stats"]["total"], 2);
    assert_eq!(status["stats"]["sent"], 4, "two SMS and two calls: {status}");
    let sms = env.exotel.sms_messages();
    assert_eq!(sms.len(), 2);
    let desk = E164::parse(ORDER_DESK).unwrap().national();
    assert!(sms.iter().all(|m| m.body.contains(&desk) && m.body.starts_with("Namaste")), "{sms:?}");
    assert!(sms.iter().all(|m| m.custom_field.as_deref().is_some_and(|f| f.starts_with(&format!("c:{id}:")))));
    assert_eq!(env.exotel.calls().len(), 2);
    env.app.stop().await;
}
