//! "Rider accepts → gets pickup location": a rider who accepts (the IVR's
//! key 1, or Jupiter's rider/accepted) hears where to pick up before the
//! call ends, is sent the vendor's name and address, a map link, the order
//! number and the items (WhatsApp, else SMS), and the rider's masked
//! sessions with the vendor and the customer are asked for.

use std::time::Duration;

use mangwale_core::ladder::LadderState;
use mangwale_sim::exotel::{CalleeScript, Endpoint, Fault};
use mangwale_sim::jupiter::Signing;
use mangwale_sim::whatsapp::{ApprovedTemplate, default_templates};
use serde_json::json;

use crate::common::SimEnv;

const RIDER: &str = "+919988776655";
const SECRET: &str = "mangwale-exotel-webhook-secret";

/// The sandbox on a manual clock; the WhatsApp simulator approves
/// `templates` (else its defaults).
async fn env(templates: Option<Vec<ApprovedTemplate>>) -> SimEnv {
    let builder = SimEnv::builder().var("JUPITER_WEBHOOK_SECRET", SECRET).exotel_retries(1).maintenance();
    match templates {
        Some(templates) => builder.whatsapp_templates(templates),
        None => builder.whatsapp(),
    }
    .start()
    .await
}

impl SimEnv {
    async fn job(&self, key: &str) -> mangwale_store::Job {
        self.app.state.store.job_by_key(key).await.unwrap().unwrap_or_else(|| panic!("no job {key}"))
    }
}

#[tokio::test]
async fn a_rider_who_presses_1_on_the_ivr_hears_the_pickup_and_gets_it_on_whatsapp() {
    let env = env(None).await;
    let demo = env.jupiter.data().orders[0].clone();
    let store = env.jupiter.data().store(demo.store_id).cloned().unwrap();
    let order = demo.id.to_string();
    // The ring call (20 s) goes unanswered; the IVR call is answered and the
    // rider presses 1 at the menu.
    env.exotel
        .script(
            RIDER,
            CalleeScript::answers_after(Duration::from_secs(30))
                .stays_for(Duration::from_secs(120))
                .presses("menu", "1"),
        )
        .unwrap();
    let (status, started) = env
        .post("/comms/notify/rider/assign", json!({"order_id": demo.id, "rider_id": "R-15", "rider_phone": RIDER}))
        .await;
    assert_eq!(status, 200, "{started}");
    let id = started["escalationId"].as_str().unwrap().to_string();
    env.run_jobs().await;
    for secs in [60, 60, 60, 90] {
        env.tick(secs).await;
    }

    let ladder = env.app.state.store.ladder(&id).await.unwrap().unwrap();
    assert_eq!((ladder.state, ladder.stop_action.map(|a| a.name())), (LadderState::Stopped, Some("accept")));

    // The rider heard the pickup before the call ended.
    let calls = env.exotel.calls();
    let ivr = calls.last().unwrap();
    let run = env.exotel.flow_run(&ivr.sid).unwrap();
    assert_eq!(run.path(), ["announce", "menu", "answer", "route", "goodbye", "end"]);
    let spoken = run.entry("goodbye").unwrap().detail["spoken"].as_str().unwrap().to_string();
    assert!(spoken.contains(&store.address) && spoken.contains(&store.name), "{spoken}");

    // ... and got it on WhatsApp, with the order number and items.
    let pickup: Vec<_> = env.whatsapp.messages().into_iter().filter(|m| m.template == "rider_pickup").collect();
    assert_eq!(pickup.len(), 1, "one pickup message");
    let message = &pickup[0];
    assert_eq!(message.to.as_str(), RIDER);
    let items = demo.items.iter().map(|l| format!("{} x{}", l.name, l.quantity)).collect::<Vec<_>>().join(", ");
    let map = format!("https://www.google.com/maps/search/?api=1&query={},{}", store.latitude, store.longitude);
    assert_eq!(message.body_params, [order.clone(), store.name.clone(), store.address.clone(), map, items]);
    let sent = env.details(&order, "pickup.sent").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!((sent[0]["channel"].as_str(), sent[0]["rider"].as_str()), (Some("whatsapp"), Some("R-15")));
    assert!(!sent[0].to_string().contains(&RIDER[3..]), "no full phone number on the timeline: {}", sent[0]);

    // The rider's masked sessions with the vendor and the customer, asked
    // for at the same moment (masking's jobs).
    let key = format!("ivr:{}:rider_assign", ivr.sid);
    for pair in ["rider_vendor", "customer_rider"] {
        let job = env.job(&format!("masking.open:{key}:{pair}")).await;
        assert_eq!(job.payload["orderId"], order.as_str());
        assert_eq!(job.payload["pair"], pair);
        assert_eq!(job.payload["context"]["rider_id"], "R-15");
    }

    // Jupiter then announces the accept itself: no second message.
    let body = json!({"order_id": demo.id, "rider_id": "R-15"});
    let sent = env.jupiter.send_webhook(&env.app.base, "rider/accepted", &body, Signing::Secret(SECRET.into())).await;
    assert_eq!(sent.unwrap().status().as_u16(), 202);
    env.tick(10).await;
    assert_eq!(env.whatsapp.messages().iter().filter(|m| m.template == "rider_pickup").count(), 1);
    assert_eq!(env.details(&order, "pickup.already_sent").await.len(), 1);
    env.app.stop().await;
}

/// WhatsApp cannot send the template (not approved): the rider gets the
/// pickup location by SMS. The accept comes as Jupiter's rider/accepted.
#[tokio::test]
async fn without_whatsapp_the_pickup_location_goes_by_sms() {
    let env = env(Some(default_templates().into_iter().filter(|t| t.name != "rider_pickup").collect())).await;
    let data = env.jupiter.data();
    let demo = data.orders.iter().find(|o| o.rider_id.is_some()).cloned().expect("a demo order with a rider");
    let rider = data.rider(demo.rider_id.unwrap()).cloned().unwrap();
    let store = data.store(demo.store_id).cloned().unwrap();
    let order = demo.id.to_string();

    let body = json!({"order_id": demo.id, "delivery_man_id": rider.id});
    let sent = env.jupiter.send_webhook(&env.app.base, "rider/accepted", &body, Signing::Secret(SECRET.into())).await;
    assert_eq!(sent.unwrap().status().as_u16(), 202);
    env.tick(10).await;

    let failed = env.details(&order, "pickup.channel_failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!((failed[0]["channel"].as_str(), failed[0]["willRetry"].as_bool()), (Some("whatsapp"), Some(false)));
    let sms: Vec<_> = env.exotel.sms_messages().into_iter().filter(|m| m.body.contains("pickup")).collect();
    assert_eq!(sms.len(), 1);
    let rider_phone = mangwale_core::E164::parse(&rider.phone).unwrap();
    assert_eq!(sms[0].to, rider_phone);
    assert!(sms[0].body.contains(&order) && sms[0].body.contains(&store.address), "{}", sms[0].body);
    assert!(sms[0].body.contains("https://www.google.com/maps/search/"), "{}", sms[0].body);
    let sent = env.details(&order, "pickup.sent").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["channel"], "sms");
    assert_eq!(sent[0]["rider"], rider.id.to_string());

    // The masked sessions were asked for with the event.
    let kinds = env.kinds(&order).await;
    assert!(kinds.iter().any(|k| k == "jupiter.event_applied"), "{kinds:?}");
    let applied = env.details(&order, "jupiter.event_applied").await;
    let actions = applied.iter().flat_map(|a| a["actions"].as_array().cloned().unwrap_or_default()).collect::<Vec<_>>();
    for action in ["notify:rider_pickup", "masking:open:rider_vendor", "masking:open:customer_rider"] {
        assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
    }
    env.app.stop().await;
}

/// Exotel down: the job is retried, durably, and the SMS goes out once it is
/// back. Exotel refusing the SMS: the rider gets an app push instead.
#[tokio::test]
async fn an_sms_outage_is_retried_and_a_refused_sms_falls_back_to_push() {
    let env = env(Some(default_templates().into_iter().filter(|t| t.name != "rider_pickup").collect())).await;
    let data = env.jupiter.data();
    let mut with_riders = data.orders.iter().filter(|o| o.rider_id.is_some()).cloned();
    let (first, second) = (with_riders.next().unwrap(), with_riders.next().expect("two demo orders with riders"));
    let accept = |order: u64, rider: u64| {
        let body = json!({"order_id": order, "delivery_man_id": rider});
        let (jupiter, base) = (env.jupiter.clone(), env.app.base.clone());
        async move {
            let sent = jupiter.send_webhook(&base, "rider/accepted", &body, Signing::Secret(SECRET.into())).await;
            assert_eq!(sent.unwrap().status().as_u16(), 202);
        }
    };

    // Exotel answers 503 to the first attempt (and the client's own retry).
    env.exotel.inject_fault(Endpoint::SmsSend, Fault::Status { status: 503 }, 2);
    accept(first.id, first.rider_id.unwrap()).await;
    env.tick(60).await;
    let order = first.id.to_string();
    let failed = env.details(&order, "pickup.channel_failed").await;
    let sms_failures: Vec<_> = failed.iter().filter(|f| f["channel"] == "sms").collect();
    assert_eq!(sms_failures.len(), 1, "{failed:?}");
    assert_eq!(sms_failures[0]["willRetry"], true);
    let sent = env.details(&order, "pickup.sent").await;
    assert_eq!((sent.len(), sent[0]["channel"].as_str()), (1, Some("sms")), "{sent:?}");
    assert_eq!(env.exotel.sms_messages().iter().filter(|m| m.body.contains(&order)).count(), 1);

    // Exotel refuses the SMS: the rider's app gets a push (a public topic:
    // the order number, not the address).
    env.exotel.inject_fault(Endpoint::SmsSend, Fault::Status { status: 400 }, 1);
    accept(second.id, second.rider_id.unwrap()).await;
    env.tick(10).await;
    let order = second.id.to_string();
    let sent = env.details(&order, "pickup.sent").await;
    assert_eq!((sent.len(), sent[0]["channel"].as_str()), (1, Some("app_push")), "{sent:?}");
    let push = env.app.state.channels.push_sim.clone().unwrap();
    let delivered: Vec<_> = push.deliveries().into_iter().filter(|d| d.data.get("orderId") == Some(&order)).collect();
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0].recipient.contains(&second.rider_id.unwrap().to_string()), "{:?}", delivered[0].recipient);
    assert_eq!(delivered[0].body.as_deref(), Some("Open the app for the pickup location"));
    env.app.stop().await;
}

/// Exotel sends the pickup SMS but the connection drops before its answer;
/// the push after it is rate-limited, so the job is retried: the retry does
/// not send the SMS again (its outcome is unknown), and the push goes out.
#[tokio::test]
async fn a_pickup_sms_whose_answer_was_lost_is_not_sent_again_by_the_retry() {
    use mangwale_sim::push::{PushEndpoint, PushFault};

    let env = env(Some(default_templates().into_iter().filter(|t| t.name != "rider_pickup").collect())).await;
    let data = env.jupiter.data();
    let demo = data.orders.iter().find(|o| o.rider_id.is_some()).cloned().expect("a demo order with a rider");
    let order = demo.id.to_string();
    let push = env.app.state.channels.push_sim.clone().unwrap();
    env.exotel.inject_fault(Endpoint::SmsSend, Fault::DropAfterProcessing, 1);
    push.inject_fault(PushEndpoint::Any, PushFault::rate_limited(60), 1);

    let body = json!({"order_id": demo.id, "delivery_man_id": demo.rider_id.unwrap()});
    let sent = env.jupiter.send_webhook(&env.app.base, "rider/accepted", &body, Signing::Secret(SECRET.into())).await;
    assert_eq!(sent.unwrap().status().as_u16(), 202);
    env.tick(90).await;

    assert_eq!(env.exotel.sms_messages().iter().filter(|m| m.body.contains(&order)).count(), 1);
    let sms_requests = env.exotel.received().into_iter().filter(|r| r.endpoint == Some(Endpoint::SmsSend)).count();
    assert_eq!(sms_requests, 1, "the retry did not ask Exotel again");
    let failed = env.details(&order, "pickup.channel_failed").await;
    let sms_unknown: Vec<_> = failed.iter().filter(|f| f["channel"] == "sms").collect();
    assert_eq!(sms_unknown.len(), 2, "both attempts say so: {failed:?}");
    assert!(sms_unknown.iter().all(|f| f["outcome"] == "unknown"), "{failed:?}");
    let sent = env.details(&order, "pickup.sent").await;
    assert_eq!((sent.len(), sent[0]["channel"].as_str()), (1, Some("app_push")), "{sent:?}");
    env.app.stop().await;
}

#[tokio::test]
async fn a_pickup_whatsapp_whose_answer_was_lost_is_not_sent_again_when_a_later_channel_is_retried() {
    use mangwale_sim::whatsapp::Fault as WhatsAppFault;

    let env = env(None).await;
    let data = env.jupiter.data();
    let demo = data.orders.iter().find(|o| o.rider_id.is_some()).cloned().expect("a demo order with a rider");
    let order = demo.id.to_string();
    // WhatsApp takes the message but the answer is lost; the SMS after it
    // fails transiently, so the job is retried.
    env.whatsapp.inject_fault(WhatsAppFault::DropAfterProcessing, 1);
    // (More 503s than the client's own retries absorb.)
    env.exotel.inject_fault(Endpoint::SmsSend, Fault::status(503), 6);

    let body = json!({"order_id": demo.id, "delivery_man_id": demo.rider_id.unwrap()});
    let sent = env.jupiter.send_webhook(&env.app.base, "rider/accepted", &body, Signing::Secret(SECRET.into())).await;
    assert_eq!(sent.unwrap().status().as_u16(), 202);
    env.tick(90).await;

    let pickups = env.whatsapp.messages().into_iter().filter(|m| m.template == "rider_pickup").count();
    assert_eq!(pickups, 1, "the retry did not send the WhatsApp message again");
    let failed = env.details(&order, "pickup.channel_failed").await;
    let unknown: Vec<_> = failed.iter().filter(|f| f["channel"] == "whatsapp").collect();
    assert!(unknown.len() >= 2, "each attempt says the WhatsApp outcome is unknown: {failed:?}");
    assert!(unknown.iter().all(|f| f["outcome"] == "unknown"), "{failed:?}");
    let retried = failed.iter().any(|f| f["channel"] == "sms" && f["willRetry"] == true);
    assert!(retried, "the SMS failure retried the job: {failed:?}");
    let sent = env.details(&order, "pickup.sent").await;
    assert_eq!((sent.len(), sent[0]["channel"].as_str()), (1, Some("sms")), "{sent:?}");
    env.app.stop().await;
}
