//! WhatsApp and push as the real providers behave, end to end: ladders
//! started over the API send through the production clients to the
//! WhatsApp, push and Jupiter simulators over real HTTP, on clocks the test
//! moves. The seed's own order id, `MW-2025-001234`, is used throughout.

mod common;

use std::time::Duration;

use common::SimEnv;
use mangwale_core::E164;
use mangwale_core::ladder::{DEFAULT_LADDERS_TOML, LadderBook, LadderState, StepState};
use mangwale_server::comms::channels::check_whatsapp_templates;
use mangwale_sim::whatsapp::RecipientScript;
use mangwale_store::Clock;
use serde_json::{Value, json};

const VENDOR: &str = "+919876543210";
const ADMIN: &str = "+919812300000";
/// The seed's example order (`exotel-integration.md`), known to the Jupiter
/// simulator by this reference.
const SEED_ORDER: &str = "MW-2025-001234";

/// The sandbox on a manual clock that moves a second at a time.
async fn env() -> SimEnv {
    SimEnv::builder().var("ADMIN_SUPPORT_PHONE", ADMIN).whatsapp().tick_step(Duration::from_secs(1)).start().await
}

impl SimEnv {
    async fn dead_jobs(&self) -> u64 {
        self.app.state.store.queue_stats(self.clock.now()).await.unwrap().dead
    }
}

fn vendor_order(order: &str) -> Value {
    json!({
        "order_id": order, "vendor_id": "V-42", "vendor_phone": VENDOR, "vendor_name": "Krishna Kirana",
        "amount": 325, "items": "Poha x1, Milk 500ml", "payment_mode": "cod", "city": "Nashik", "language": "hi"
    })
}

fn vendor() -> E164 {
    E164::parse(VENDOR).unwrap()
}

#[tokio::test]
async fn the_seeds_order_id_flows_from_the_ladder_to_jupiter() {
    let env = env().await;
    env.whatsapp.script(&vendor(), RecipientScript::ReplyButton { index: 0, after: Duration::from_secs(5) });
    let (status, answer) = env.post("/comms/notify/vendor/order", vendor_order(SEED_ORDER)).await;
    assert_eq!(status, 200, "{answer}");
    let id = format!("vendor_order_{SEED_ORDER}");
    assert_eq!(answer["escalationId"], id.as_str());
    env.run_jobs().await;
    env.tick(75).await;

    let ladder = env.ladder(&id).await;
    assert_eq!((ladder.state, ladder.stop_action.map(|a| a.name())), (LadderState::Stopped, Some("accept")));
    // The WhatsApp template went out under its lower-case name, with the
    // seed's id as its first variable and the escalation id as the
    // callback data Meta hands back.
    let sent = env.whatsapp.messages();
    assert_eq!((sent[0].template.as_str(), sent[0].body_params[0].as_str()), ("vendor_new_order", SEED_ORDER));
    assert_eq!(sent[0].callback_data.as_deref(), Some(id.as_str()));
    // Jupiter took the status update for that id: the simulator knows the
    // order by its reference.
    let updates = env.jupiter.status_updates();
    assert!(updates.iter().any(|u| u["orderId"] == SEED_ORDER && u["status"] == "confirmed"), "{updates:?}");
    assert_eq!(env.jupiter.order(SEED_ORDER).unwrap().status, "confirmed");
    assert_eq!(env.dead_jobs().await, 0, "no job went dead on the id");
    let kinds: Vec<String> = env.order_events(SEED_ORDER).await.into_iter().map(|e| e.kind).collect();
    assert!(kinds.iter().any(|k| k == "jupiter.outbox_delivered"), "{kinds:?}");
    let (status, timeline) = env.get(&format!("/comms/timeline/{SEED_ORDER}")).await;
    assert_eq!(status, 200);
    assert!(timeline["events"].as_array().is_some_and(|e| !e.is_empty()), "{timeline}");

    // The app push went to the vendor's public topic, so it carries the
    // order id and a generic text: no amount, no items.
    let push = env.app.state.channels.push_sim.clone().unwrap();
    let delivery = &push.deliveries()[0];
    assert_eq!(delivery.recipient, "vendor_V-42");
    assert_eq!(delivery.title.as_deref(), Some("New order MW-2025-001234"));
    let text = format!("{:?} {:?} {:?}", delivery.title, delivery.body, delivery.data);
    assert!(!text.contains("325") && !text.contains("Poha"), "{text}");
    env.app.stop().await;
}

#[tokio::test]
async fn a_whatsapp_failure_meta_reports_by_webhook_fails_its_step() {
    let env = env().await;
    // 131026 comes only in a `failed` status, after Meta accepted the send.
    env.whatsapp.script(&vendor(), RecipientScript::fails(131_026));
    env.post("/comms/notify/vendor/order", vendor_order(SEED_ORDER)).await;
    env.run_jobs().await;
    let id = format!("vendor_order_{SEED_ORDER}");
    env.tick(60).await;
    // Meta accepted it (a wamid), and 1 s later reported it failed.
    let message = &env.whatsapp.messages()[0];
    let wamid = message.id.clone();
    assert_eq!(message.statuses, ["failed"]);
    let step = env
        .ladder(&id)
        .await
        .steps
        .into_iter()
        .find(|s| s.channel == mangwale_core::ladder::Channel::WhatsApp)
        .unwrap();
    assert_eq!(step.provider_id.as_deref(), Some(wamid.as_str()), "the wamid recorded at send time");
    assert_eq!(step.state, StepState::Failed, "{step:?}");
    assert!(step.detail.as_deref().unwrap_or_default().contains("131026"), "{step:?}");
    let events = env.order_events(SEED_ORDER).await;
    let failed = events
        .iter()
        .find(|e| e.kind == "ladder.step_failed" && e.detail["reportedBy"] == "webhook")
        .expect("the failure on the timeline");
    assert_eq!((failed.detail["providerId"].as_str(), failed.detail["step"].as_u64()), (Some(wamid.as_str()), Some(1)));
    assert_eq!(failed.detail["errors"][0]["code"], 131_026);
    let status = events.iter().find(|e| e.kind == "whatsapp.status").expect("the status itself");
    assert_eq!(status.escalation_id.as_deref(), Some(id.as_str()));
    // The ladder goes on to its calls.
    assert_eq!(env.ladder(&id).await.state, LadderState::Active);
    env.app.stop().await;
}

#[tokio::test]
async fn a_pair_rate_limited_whatsapp_step_waits_six_seconds() {
    let env = env().await;
    let started = env.clock.now();
    env.whatsapp.script_sequence(&vendor(), vec![RecipientScript::fails(131_056), RecipientScript::NeverAnswers]);
    env.post("/comms/notify/vendor/order", vendor_order(SEED_ORDER)).await;
    env.run_jobs().await;
    let id = format!("vendor_order_{SEED_ORDER}");
    env.tick(60).await;
    let step = env
        .ladder(&id)
        .await
        .steps
        .into_iter()
        .find(|s| s.channel == mangwale_core::ladder::Channel::WhatsApp)
        .unwrap();
    assert_eq!(step.state, StepState::Pending, "refused, to be retried: {step:?}");
    let events = env.order_events(SEED_ORDER).await;
    let refusal = events.iter().find(|e| e.kind == "ladder.step_failed").expect("the refusal on the timeline");
    assert_eq!(
        (refusal.detail["willRetry"].as_bool(), refusal.detail["retryAfterSeconds"].as_f64()),
        (Some(true), Some(6.0))
    );

    env.tick(5).await;
    assert_eq!(env.whatsapp.messages().len(), 0, "not before 6 s");
    env.tick(2).await;
    assert_eq!(env.whatsapp.messages().len(), 1, "sent once the 6 s are over");
    let step = env
        .ladder(&id)
        .await
        .steps
        .into_iter()
        .find(|s| s.channel == mangwale_core::ladder::Channel::WhatsApp)
        .unwrap();
    assert_eq!(step.state, StepState::Sent);
    let sends: Vec<_> = env.whatsapp.received().into_iter().filter(|r| r.path.ends_with("/messages")).collect();
    assert_eq!(sends.len(), 2, "one refusal, one send: the client did not retry within the 6 s");
    assert!(env.clock.now() - started >= chrono::Duration::seconds(66));
    env.app.stop().await;
}

#[tokio::test]
async fn the_ladders_templates_are_checked_against_the_business_account() {
    let env = env().await;
    let client = env.app.state.channels.whatsapp.clone().unwrap();
    let problems = check_whatsapp_templates(&client, &env.app.state.config.ladders).await.unwrap();
    assert!(problems.is_empty(), "the simulator approves the six templates in hi, en, mr: {problems:?}");
    let listed = env.whatsapp.received().into_iter().filter(|r| r.path.ends_with("/message_templates")).count();
    assert!(listed >= 1, "listed over HTTP");

    // A ladder mapped to en_US, which the business account lacks.
    let mapped = "[customer_delay]\nparty = \"customer\"\nwhatsapp_template = \"customer_delay\"\n";
    let text = DEFAULT_LADDERS_TOML.replace(mapped, &format!("{mapped}whatsapp_languages = {{ en = \"en_US\" }}\n"));
    let book = LadderBook::from_toml(&text).unwrap();
    let problems = check_whatsapp_templates(&client, &book).await.unwrap();
    let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(texts, ["template customer_delay does not exist in language en_US"]);
    env.app.stop().await;
}

/// A customer ladder's `sms` step: an SMS on the ladder's service-implicit
/// template for a customer the earlier steps did not reach (WhatsApp
/// reported undeliverable, no app id), and none for one they did.
#[tokio::test]
async fn a_customer_whatsapp_did_not_reach_gets_the_status_by_sms() {
    let env = env().await;
    let customer = E164::parse("+919822200011").unwrap();
    env.whatsapp.script(&customer, RecipientScript::fails(131_026));
    let body = json!({"type": "customer_status", "order_id": SEED_ORDER, "customer_phone": customer.as_str(),
                      "status": "out_for_delivery", "language": "en"});
    let (status, started) = env.post("/comms/escalations", body).await;
    assert!(status < 300, "{status} {started}");
    env.run_jobs().await;
    env.tick(95).await;
    let sms = env.exotel.sms_messages();
    let to_customer: Vec<_> = sms.iter().filter(|m| m.to == customer).collect();
    assert_eq!(to_customer.len(), 1, "{sms:?}");
    assert_eq!(to_customer[0].body, format!("Mangwale: your order {SEED_ORDER} is now out for delivery."));
    let ladder = env.app.state.store.ladders_for_order(SEED_ORDER).await.unwrap();
    let step = ladder[0].steps.iter().find(|s| s.channel == mangwale_core::ladder::Channel::Sms).unwrap();
    assert_eq!(step.state, StepState::Sent, "{step:?}");

    // WhatsApp reached this one: the SMS step is skipped, and says why.
    let reached = E164::parse("+919822200012").unwrap();
    let body = json!({"type": "customer_status", "order_id": "MW-2025-001235", "customer_phone": reached.as_str(),
                      "status": "delivered", "language": "hi"});
    let (status, _) = env.post("/comms/escalations", body).await;
    assert!(status < 300);
    env.run_jobs().await;
    env.tick(95).await;
    assert!(env.exotel.sms_messages().iter().all(|m| m.to != reached));
    let ladder = env.app.state.store.ladders_for_order("MW-2025-001235").await.unwrap();
    let step = ladder[0].steps.iter().find(|s| s.channel == mangwale_core::ladder::Channel::Sms).unwrap();
    assert_eq!(step.state, StepState::Skipped, "{step:?}");
    assert!(step.detail.as_deref().unwrap_or_default().contains("reached by whatsapp"), "{step:?}");
    env.app.stop().await;
}
