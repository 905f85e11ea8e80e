//! The campaign call and delivery outcomes end to end (issue 13): the
//! simulator plays the `campaign_call` flow against our applet URLs, the
//! callee presses 1 or 9, status callbacks and SMS delivery reports move
//! the campaign messages, busy numbers are called again 30 minutes later,
//! and `POST /campaigns/send/voice` passes the gate. The sender is played
//! here by claiming messages from the store and calling
//! `place_campaign_call`, as the sender does.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use mangwale_core::campaign::{CampaignId, MessageChannel, MessageState};
use mangwale_server::campaigns::call::{CampaignCall, place_campaign_call};
use mangwale_sim::exotel::CalleeScript;
use mangwale_store::{CallAttempt, Clock, MessageOutcome};
use serde_json::{Value, json};

use crate::common::SimEnv;

const ORDER_DESK: &str = "+919800000101";
const OPT_OUT: &str = "+918047112266";

/// `h:m` IST on 5 December 2026.
fn ist(h: u32, m: u32) -> DateTime<Utc> {
    mangwale_core::campaign::ist().with_ymd_and_hms(2026, 12, 5, h, m, 0).unwrap().with_timezone(&Utc)
}

async fn start(at: DateTime<Utc>) -> SimEnv {
    SimEnv::builder()
        .at(at)
        .var("OPT_OUT_NUMBER", OPT_OUT)
        .var("ORDER_DESK_PHONE", ORDER_DESK)
        .tick_step(Duration::from_secs(10))
        .exotel(|mut config| {
            config.dnd_numbers.push(mangwale_core::E164::parse(DND).unwrap());
            config
        })
        .start()
        .await
}

const DND: &str = "+919811100099";

impl SimEnv {
    async fn create_campaign(&self, channel: &str, phones: &[&str]) -> CampaignId {
        let body = json!({"name": "Nashik launch", "type": "area_launch", "channel": channel, "phone_numbers": phones});
        let (status, body) = self.post("/campaigns/create", body).await;
        assert_eq!(status, 201, "{body}");
        CampaignId::parse(body["campaignId"].as_str().unwrap()).unwrap()
    }

    /// What the sender does for voice: claims the due calls, places each
    /// with its rendered text, records the sid.
    async fn call_due(&self, id: &CampaignId) -> Vec<CallAttempt> {
        let state = &self.app.state;
        let campaign = state.store.campaign(id).await.unwrap().unwrap();
        let book = state.campaigns.templates(state.store.as_ref()).await.unwrap();
        let template = book.get(&campaign.template).unwrap().clone();
        let now = self.clock.now();
        let lease = Duration::from_secs(120);
        let claimed = state.store.claim_messages(id, MessageChannel::Voice, now, lease, 100).await.unwrap();
        let mut attempts = Vec::new();
        for message in &claimed {
            let language = message.language.unwrap_or(campaign.language);
            let text = template.text(language).unwrap().voice.clone();
            let call = CampaignCall { campaign: &campaign, message, text, language };
            let attempt = place_campaign_call(state, call).await.unwrap();
            let sent =
                MessageOutcome { state: MessageState::Sent, provider_sid: attempt.call_sid.clone(), error: None };
            // False when a callback already moved the message on.
            state
                .store
                .finish_message(id, MessageChannel::Voice, message.seq, message.fence, &sent, now)
                .await
                .unwrap();
            attempts.push(attempt);
        }
        attempts
    }

    /// What the sender does for SMS, through the at-most-once path; the
    /// SmsSid is recorded at once for the numbers `record_now` picks, and
    /// left for later (a sender slower than Exotel's report) for the others.
    async fn send_due_sms(
        &self,
        id: &CampaignId,
        record_now: impl Fn(&str) -> bool,
    ) -> Vec<(String, mangwale_store::ClaimedMessage)> {
        use mangwale_providers::exotel::client::{SendSms, SmsType};
        let state = &self.app.state;
        let now = self.clock.now();
        let claimed =
            state.store.claim_messages(id, MessageChannel::Sms, now, Duration::from_secs(60), 100).await.unwrap();
        let mut sids = Vec::new();
        for message in &claimed {
            let sender = state.exotel.caller_id(mangwale_server::exotel::CallerPurpose::Other).as_str().to_string();
            let mut sms = SendSms::new(sender, message.phone.clone(), "Mangwale ab aapke area mein live hai.");
            sms.sms_type = Some(SmsType::Promotional);
            sms.custom_field = Some(mangwale_server::campaigns::call::sms_custom_field(id, message.seq));
            let key = format!("{}:{}", id.as_str(), message.seq);
            let sent = mangwale_server::comms::channels::send_sms_once(
                state,
                mangwale_server::comms::channels::SmsPurpose::Campaign,
                &key,
                &sms,
            )
            .await;
            let mangwale_server::comms::channels::SentOnce::Sent { id: sid, .. } = sent else { panic!("{sent:?}") };
            if record_now(message.phone.as_str()) {
                assert!(self.record_sent_sms(id, message, &sid).await);
            }
            sids.push((sid, message.clone()));
        }
        sids
    }

    /// The sender records that Exotel accepted the SMS; false when a report
    /// moved it on already.
    async fn record_sent_sms(&self, id: &CampaignId, message: &mangwale_store::ClaimedMessage, sid: &str) -> bool {
        let outcome = MessageOutcome { state: MessageState::Sent, provider_sid: Some(sid.to_string()), error: None };
        let now = self.clock.now();
        let store = &self.app.state.store;
        store.finish_message(id, MessageChannel::Sms, message.seq, message.fence, &outcome, now).await.unwrap()
    }

    /// Each recipient's message on `channel`: (state, last error), by phone.
    async fn states(&self, id: &CampaignId, channel: MessageChannel) -> Vec<(String, MessageState, Option<String>)> {
        let page = self.app.state.store.recipients_page(id, 0, 1000).await.unwrap();
        page.into_iter()
            .map(|r| {
                let m = r.messages.into_iter().find(|m| m.channel == channel).unwrap();
                (r.phone.as_str().to_string(), m.state, m.last_error)
            })
            .collect()
    }

    async fn state_of(&self, id: &CampaignId, channel: MessageChannel, phone: &str) -> MessageState {
        self.states(id, channel).await.into_iter().find(|(p, _, _)| p == phone).unwrap().1
    }

    /// Sends every callback the simulator sent for `sid` once more, as
    /// Exotel's retries do.
    async fn replay_callbacks(&self, sid: &str) {
        for callback in self.exotel.callbacks_for(sid) {
            let res = self
                .app
                .http
                .post(&callback.url)
                .header("content-type", &callback.content_type)
                .body(callback.body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap_or_default());
        }
        self.run_jobs().await;
    }
}

#[tokio::test]
async fn a_campaign_call_speaks_the_template_and_keys_1_and_9_reach_ordering_and_the_opt_out() {
    let env = start(ist(11, 0)).await;
    let (orders, listens, stops) = ("+919822000001", "+919822000002", "+919822000003");
    let answers = || CalleeScript::answers_after(Duration::from_secs(2)).stays_for(Duration::from_secs(120));
    env.exotel.script(orders, answers().presses("menu", "1")).unwrap();
    env.exotel.script(listens, answers()).unwrap();
    env.exotel.script(stops, answers().presses("menu", "9")).unwrap();
    env.exotel.script(ORDER_DESK, CalleeScript::answers_after(Duration::from_secs(2))).unwrap();
    let voice_ordering = mangwale_server::inbound::menus::voice_ordering(&env.app.state);

    let id = env.create_campaign("voice", &[orders, listens, stops]).await;
    let attempts = env.call_due(&id).await;
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| a.purpose == "campaign"));
    env.tick(300).await;

    let sid_of = |phone: &str| {
        let masked = mangwale_core::E164::parse(phone).unwrap().masked();
        attempts.iter().find(|a| a.to_masked == masked).unwrap().call_sid.clone().unwrap()
    };
    // Key 1: the ordering branch (the voice bot where it takes orders, else
    // the order desk), as the inbound customer menu does.
    let run = env.exotel.flow_run(&sid_of(orders)).unwrap();
    let ordering: &[&str] = if voice_ordering { &["route", "bot", "after_bot", "desk"] } else { &["route", "desk"] };
    assert_eq!(run.path()[..3], ["announce", "menu", "answer"], "{:?}", run.path());
    assert_eq!(run.path()[3..3 + ordering.len()], *ordering, "{:?}", run.path());
    let spoken = run.entry("announce").unwrap().body().unwrap().to_string();
    assert!(spoken.starts_with("Namaste! Mangwale ab aapke area mein live hai."), "{spoken}");
    assert!(run.entry("menu").unwrap().body().unwrap().contains("9 dabayein"));
    assert_eq!(env.exotel.call(&sid_of(orders)).unwrap().from.as_str(), orders);

    let run = env.exotel.flow_run(&sid_of(stops)).unwrap();
    assert_eq!(run.path(), ["announce", "menu", "answer", "route", "opted_out", "end"]);
    assert!(run.entry("opted_out").unwrap().body().unwrap().contains("nahi aayenge"));
    let run = env.exotel.flow_run(&sid_of(listens)).unwrap();
    assert_eq!(run.path(), ["announce", "menu", "answer", "route", "goodbye", "end"], "silence: goodbye");

    let expected = vec![
        (orders.to_string(), MessageState::Pressed1),
        (listens.to_string(), MessageState::Answered),
        (stops.to_string(), MessageState::OptedOut),
    ];
    let states = |s: Vec<(String, MessageState, Option<String>)>| -> Vec<(String, MessageState)> {
        s.into_iter().map(|(p, s, _)| (p, s)).collect()
    };
    assert_eq!(states(env.states(&id, MessageChannel::Voice).await), expected);

    // Key 9 is on the ledger, and stops every later promotional message.
    let (status, body) = env.get(&format!("/campaigns/suppressions?phone={}", stops.replace('+', "%2B"))).await;
    assert_eq!(status, 200);
    assert_eq!(body["entries"][0]["source"], "call_key_9", "{body}");
    assert_eq!(body["entries"].as_array().unwrap().len(), 1);
    for route in ["/campaigns/send/sms", "/campaigns/send/voice"] {
        let (status, body) = env.post(route, json!({"phone": stops, "type": "area_launch"})).await;
        assert_eq!(status, 409, "{route}: {body}");
        assert_eq!(body["error"]["source"], "call_key_9");
    }

    // Exotel retries its callbacks: twice more, nothing changes.
    for _ in 0..2 {
        for phone in [orders, listens, stops] {
            env.replay_callbacks(&sid_of(phone)).await;
        }
    }
    assert_eq!(states(env.states(&id, MessageChannel::Voice).await), expected);
    let (_, body) = env.get(&format!("/campaigns/suppressions?phone={}", stops.replace('+', "%2B"))).await;
    assert_eq!(body["entries"].as_array().unwrap().len(), 1);

    let (status, body) = env.get(&format!("/campaigns/{}", id.as_str())).await;
    assert_eq!(status, 200);
    assert_eq!(body["counts"]["voice"]["pressed_1"], 1, "{body}");
    assert_eq!(body["stats"]["answered"], 2);

    let (status, body) = env.get("/exotel/ivr/analytics").await;
    assert_eq!(status, 200, "{body}");
    let figures = &body["campaigns"];
    assert_eq!(figures["callsPlaced"], 3, "{figures}");
    assert_eq!(figures["callsAnswered"], 3);
    assert_eq!(figures["pressed1"], 1);
    assert_eq!(figures["messages"]["voice"]["opted_out"], 1);
    assert_eq!(figures["optOuts"]["call_key_9"], 1);
    let keys: Vec<Value> =
        env.all_events().await.into_iter().filter(|e| e.kind == "campaign.call_key").map(|e| e.detail).collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    let stored = serde_json::to_string(&env.all_events().await).unwrap();
    assert!(!stored.contains("9822000003"), "no full number on the timeline");
    env.app.stop().await;
}

#[tokio::test]
async fn a_busy_number_is_called_again_twice_thirty_minutes_apart_then_fails() {
    let env = start(ist(11, 0)).await;
    let busy = "+919822000010";
    env.exotel.script(busy, CalleeScript::busy()).unwrap();
    let id = env.create_campaign("voice", &[busy]).await;

    let mut placed = Vec::new();
    for call in 1..=3 {
        let attempts = env.call_due(&id).await;
        assert_eq!(attempts.len(), 1, "call {call}");
        placed.push(env.clock.now());
        env.tick(60).await;
        let (_, state, error) = env.states(&id, MessageChannel::Voice).await.remove(0);
        if call < 3 {
            assert_eq!(state, MessageState::Queued, "call {call}");
            assert_eq!(error.as_deref(), Some(format!("call {call}: busy").as_str()));
            // Not due before its 30 minutes.
            assert!(env.call_due(&id).await.is_empty());
            env.tick(30 * 60 - 60).await;
            // Exotel's callback came a few seconds after the call.
            assert!(env.call_due(&id).await.is_empty(), "call {call}: due 30 min after the callback");
            env.tick(60).await;
        } else {
            assert_eq!(state, MessageState::Failed);
            assert_eq!(error.as_deref(), Some("call 3: busy, no retries left"));
        }
    }
    assert!(placed[1] - placed[0] >= chrono::Duration::minutes(30));
    assert!(placed[2] - placed[1] < chrono::Duration::minutes(32));
    let calls: Vec<_> = env.exotel.calls().into_iter().filter(|c| c.from.as_str() == busy).collect();
    assert_eq!(calls.len(), 3);
    let retries = env.all_events().await.into_iter().filter(|e| e.kind == "campaign.call_retry").count();
    assert_eq!(retries, 2);
    // A replayed busy callback of the last call changes nothing.
    env.replay_callbacks(calls[2].sid.as_str()).await;
    assert_eq!(env.state_of(&id, MessageChannel::Voice, busy).await, MessageState::Failed);
    env.app.stop().await;
}

#[tokio::test]
async fn a_busy_number_late_in_the_evening_is_called_again_the_next_morning() {
    let env = start(ist(20, 45)).await;
    let busy = "+919822000011";
    env.exotel.script(busy, CalleeScript::busy()).unwrap();
    let id = env.create_campaign("voice", &[busy]).await;
    assert_eq!(env.call_due(&id).await.len(), 1);
    env.tick(60).await;
    let due = env.app.state.store.recipients_page(&id, 0, 1).await.unwrap().remove(0).messages.remove(0).next_at;
    assert_eq!(due, mangwale_core::campaign::ist().with_ymd_and_hms(2026, 12, 6, 9, 0, 0).unwrap());
    env.app.stop().await;
}

#[tokio::test]
async fn sms_delivery_reports_move_campaign_sms_to_delivered_or_failed_once() {
    let env = start(ist(11, 0)).await;
    let reached = "+919822000020";
    let id = env.create_campaign("sms", &[reached, DND]).await;
    // The DND number's report comes before the sender records its SmsSid:
    // the report finds the message by its CustomField.
    let sent = env.send_due_sms(&id, |phone| phone == reached).await;
    assert_eq!(sent.len(), 2);
    env.tick(60).await;
    let (late_sid, late) = sent.iter().find(|(_, m)| m.phone.as_str() == DND).unwrap();
    assert!(!env.record_sent_sms(&id, late, late_sid).await, "the report moved it on first");
    let (found, state) =
        env.app.state.store.message_by_sid(MessageChannel::Sms, late_sid).await.unwrap().expect("the sid recorded");
    assert_eq!((found.seq, state), (late.seq, MessageState::Failed));
    let states = env.states(&id, MessageChannel::Sms).await;
    assert_eq!(states[0].1, MessageState::Delivered, "{states:?}");
    assert_eq!(states[1].1, MessageState::Failed, "{states:?}");
    assert!(states[1].2.as_deref().unwrap().starts_with("failed_dnd"), "{states:?}");
    for (sid, _) in &sent {
        env.replay_callbacks(sid).await;
        env.replay_callbacks(sid).await;
    }
    assert_eq!(env.states(&id, MessageChannel::Sms).await, states, "replayed reports change nothing");
    env.app.stop().await;
}

#[tokio::test]
async fn a_single_campaign_call_passes_the_gate_once_per_idempotency_key() {
    let env = start(ist(22, 0)).await;
    let phone = "+919822000030";
    let script = CalleeScript::answers_after(Duration::from_secs(2)).stays_for(Duration::from_secs(120));
    env.exotel.script(phone, script.presses("menu", "1")).unwrap();
    let body = json!({"phone": phone, "type": "area_launch", "language": "en"});
    let (status, answer) = env.post("/campaigns/send/voice", body.clone()).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "outside_promotional_window");
    assert_eq!(
        answer["error"]["nextAllowedAt"],
        ist(9, 0).checked_add_signed(chrono::Duration::days(1)).unwrap().to_rfc3339()
    );
    assert!(env.exotel.calls().is_empty());

    env.clock.advance(Duration::from_secs(11 * 3600));
    env.exotel.advance(Duration::from_secs(11 * 3600)).await;
    let send = |key: &'static str| {
        let env = &env;
        let body = body.clone();
        async move {
            let res = env
                .app
                .http
                .post(format!("{}/campaigns/send/voice", env.app.base))
                .header("X-API-Key", crate::common::API_KEY)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (status, first) = send("launch-1").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!((first["message"].as_str(), first["duplicate"].as_bool()), (Some("Call placed"), Some(false)));
    let (status, again) = send("launch-1").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!((again["callSid"].clone(), again["duplicate"].as_bool()), (first["callSid"].clone(), Some(true)));
    assert_eq!(env.exotel.calls().len(), 1);

    env.tick(120).await;
    let sid = first["callSid"].as_str().unwrap();
    let run = env.exotel.flow_run(sid).unwrap();
    assert!(run.entry("announce").unwrap().body().unwrap().starts_with("Hello! Mangwale is now live"));
    assert_eq!(run.entry("route").unwrap().detail["select"].as_str().map(|s| s == "bot" || s == "desk"), Some(true));

    let (status, body) = env.post("/campaigns/send/voice", json!({"phone": "12", "type": "area_launch"})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("phone")));
    let (status, body) = env.post("/campaigns/send/voice", json!({"phone": phone, "type": "nope_type"})).await;
    assert_eq!(body["error"]["field"], "type", "{status} {body}");
    env.app.stop().await;
}
