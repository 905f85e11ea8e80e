//! The sandbox's virtual phones (`/console/phones`): in headless Chromium,
//! a vendor ladder rings the vendor's phone in the page, the vendor answers,
//! reads the prompt and presses 1, and the order is confirmed. Without a
//! browser: the directory of phones, the admin's virtual phone ringing at
//! the end of an unanswered ladder, and a WhatsApp button tapped through
//! the simulator's control endpoint.

mod browser_support;
mod common;

use std::time::Duration;

use browser_support::{Browser, PHONE, WAIT};
use common::{API_KEY, SimEnv};
use mangwale_core::E164;
use mangwale_core::ladder::LadderState;
use mangwale_server::config::{SANDBOX_ADMIN_SUPPORT_PHONE, SANDBOX_ORDER_DESK_PHONE};
use mangwale_sim::exotel::{CalleeScript, PhoneView};
use mangwale_sim::jupiter::DemoStore;
use mangwale_sim::whatsapp::WebhookKind;
use serde_json::{Value, json};

/// The first active demo store: the vendor whose phone the tests use.
fn demo_vendor(env: &SimEnv) -> (DemoStore, E164) {
    let store = env.jupiter.data().stores.into_iter().find(|s| s.active).expect("an active demo store");
    let phone = E164::parse(&store.phone).expect("the store's phone");
    (store, phone)
}

fn vendor_order(order: &str, store: &DemoStore) -> Value {
    json!({
        "order_id": order, "vendor_id": store.id.to_string(), "vendor_phone": store.phone,
        "vendor_name": store.name, "amount": 325, "items": "Poha x1, Milk 500ml", "payment_mode": "cod",
        "city": "Nashik", "language": store.owner_language,
    })
}

/// Moves the sandbox's clocks a second at a time until `done` holds of
/// the phone `number` (at most `max_secs`).
async fn tick_until(env: &SimEnv, number: &E164, max_secs: u64, done: impl Fn(&PhoneView) -> bool) -> PhoneView {
    for _ in 0..max_secs {
        let view = env.exotel.phone(number).unwrap();
        if done(&view) {
            return view;
        }
        env.tick(1).await;
    }
    panic!("{} never got there: {:?}", number.masked(), env.exotel.phone(number).unwrap());
}

fn rings_ivr(view: &PhoneView) -> bool {
    view.call.as_ref().is_some_and(|c| c.status == "ringing" && c.flow_id.as_deref() == Some("vendor_new_order"))
}

#[tokio::test]
async fn the_vendor_answers_a_ringing_virtual_phone_presses_1_and_the_order_is_confirmed() {
    let _turn = browser_support::one_at_a_time().await;
    let env = SimEnv::builder().whatsapp().demo_defaults().tick_step(Duration::from_secs(1)).start().await;
    let Some(browser) = Browser::start().await else { return };
    let (store, vendor) = demo_vendor(&env);
    let card = format!(".phone[data-number='{}']", vendor.as_str());

    browser.goto(&format!("{}/console/phones", env.app.base)).await;
    browser.fill("#api-key", API_KEY).await;
    browser.click("#login-button").await;
    browser.wait_for("body[data-ready='true']", WAIT).await;
    assert!(env.exotel.is_held(&vendor), "the page holds the vendor's phone");
    browser.wait_for(&format!("{card}[data-role='vendor']"), WAIT).await;
    // The page listens to the live feed (with the API key: read by fetch).
    browser.wait_for("body[data-feed='open']", WAIT).await;

    let order = env.jupiter.data().orders[0].id.to_string();
    let (status, answer) = env.post("/comms/notify/vendor/order", vendor_order(&order, &store)).await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["escalationId"].as_str().unwrap().to_string();
    env.run_jobs().await;
    // The ladder's timeline events reach the page and wake its poll.
    browser.wait_until("return Number(document.body.dataset.wakes || 0) > 0;", WAIT).await;

    // The ladder's WhatsApp step shows its buttons, then its IVR step rings
    // the phone in the page.
    tick_until(&env, &vendor, 400, rings_ivr).await;
    browser.wait_for(&format!("{card}.ringing"), WAIT).await;
    browser.wait_for_text(&format!("{card} .bubble"), "vendor_new_order", WAIT).await;
    browser.click(&format!("{card} .answer")).await;
    browser.wait_for(&format!("{card}.active"), WAIT).await;
    let greeting = browser.wait_for(&format!("{card} .prompt[data-kind='greeting']"), WAIT).await;
    assert!(!greeting.text().await.unwrap().trim().is_empty(), "the announcement is shown");

    // The announcement plays, then the menu listens for the vendor's key.
    tick_until(&env, &vendor, 120, |v| v.call.as_ref().is_some_and(|c| c.listening.is_some())).await;
    browser.wait_for(&format!("{card} .listening"), WAIT).await;
    browser.wait_for(&format!("{card} .prompt[data-kind='gather']"), WAIT).await;
    browser.screenshot("phones").await;
    browser.click(&format!("{card} .key[data-key='1']")).await;
    // The page sends the key over HTTP: wait (in real time, the clock held)
    // until the simulator has it, or moving the clock could time the menu out first.
    for _ in 0..100 {
        if env.exotel.phone(&vendor).unwrap().call.as_ref().is_none_or(|c| c.listening.is_none()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    for _ in 0..120 {
        if env.ladder(&id).await.state == LadderState::Stopped {
            break;
        }
        env.tick(1).await;
    }
    let ladder = env.ladder(&id).await;
    assert_eq!(ladder.state, LadderState::Stopped);
    assert_eq!(ladder.stop_action.map(|a| a.name()), Some("accept"));
    // Jupiter hears of it through the outbox, a job of its own.
    let confirmed = |updates: &[serde_json::Value]| {
        updates.iter().any(|u| u["status"] == "confirmed" && u["orderId"].to_string().contains(&order))
    };
    for _ in 0..30 {
        if confirmed(&env.jupiter.status_updates()) {
            break;
        }
        env.tick(1).await;
    }
    let updates = env.jupiter.status_updates();
    assert!(confirmed(&updates), "{updates:?}");
    tick_until(&env, &vendor, 120, |v| v.call.is_none()).await;
    browser.wait_for_text(&format!("{card} .screen"), "last call: completed", WAIT).await;

    browser.set_size(PHONE).await;
    let overflow = browser.eval("return document.documentElement.scrollWidth > window.innerWidth + 1;").await;
    assert_eq!(overflow, json!(false), "no horizontal scroll at phone width");
    browser.screenshot("phones-mobile").await;
    browser.close().await;
    env.app.stop().await;
}

#[tokio::test]
async fn an_unanswered_sandbox_ladder_rings_the_admins_virtual_phone() {
    let env = SimEnv::builder().whatsapp().demo_defaults().maintenance().start().await;
    let (store, vendor) = demo_vendor(&env);

    // The directory: the admin and the order desk have phones of their own,
    // beside the demo vendors, riders and customers, and the ExoPhones.
    let (status, directory) = env.get("/_sim/phones").await;
    assert_eq!(status, 200, "{directory}");
    let phones = directory["phones"].as_array().unwrap();
    let role_of = |number: &str| {
        phones.iter().find(|p| p["number"] == number).and_then(|p| p["role"].as_str()).map(str::to_string)
    };
    assert_eq!(role_of(SANDBOX_ADMIN_SUPPORT_PHONE).as_deref(), Some("admin"));
    assert_eq!(role_of(SANDBOX_ORDER_DESK_PHONE).as_deref(), Some("order_desk"));
    assert_eq!(role_of(vendor.as_str()).as_deref(), Some("vendor"));
    for role in ["rider", "customer"] {
        assert!(phones.iter().any(|p| p["role"] == role), "{role}");
    }
    let vendor_entry = phones.iter().find(|p| p["number"] == vendor.as_str()).unwrap();
    assert_eq!(vendor_entry["push_recipient"], format!("vendor_{}", store.id));
    assert_eq!(vendor_entry["language"], store.owner_language.as_str());
    let purposes: Vec<&str> =
        directory["exophones"].as_array().unwrap().iter().filter_map(|e| e["purpose"].as_str()).collect();
    assert_eq!(&purposes[..3], ["incoming", "missed_call", "masking"]);

    let admin = SANDBOX_ADMIN_SUPPORT_PHONE;
    let (status, held) = env.post(&format!("/_sim/exotel/phones/{admin}/hold"), Value::Null).await;
    assert_eq!((status, held["held"].as_bool()), (200, Some(true)), "{held}");
    env.exotel.script(&vendor, CalleeScript::no_answer()).unwrap();
    let order = env.jupiter.data().orders[0].id.to_string();
    let (status, answer) = env.post("/comms/notify/vendor/order", vendor_order(&order, &store)).await;
    assert_eq!(status, 200, "{answer}");
    env.run_jobs().await;

    let admin_phone = E164::parse(admin).unwrap();
    let ringing = tick_until(&env, &admin_phone, 900, |v| v.call.is_some()).await;
    let call = ringing.call.unwrap();
    assert_eq!(
        (call.status.as_str(), call.role, call.leg),
        ("ringing", "callee", 0),
        "the admin bridge rings admin first"
    );
    let (_, seen) = env.get(&format!("/_sim/exotel/phones/{admin}")).await;
    assert_eq!(seen["call"]["call_sid"], call.call_sid.as_str());
    let admin_steps: Vec<_> = env.details(&order, "ladder.step_failed").await;
    assert!(admin_steps.iter().all(|d| !d.to_string().contains("ADMIN_SUPPORT_PHONE")), "{admin_steps:?}");

    let (status, view) = env.post(&format!("/_sim/exotel/phones/{admin}/answer"), Value::Null).await;
    assert_eq!((status, view["call"]["status"].as_str()), (200, Some("in-progress")), "{view}");
    env.app.stop().await;
}

#[tokio::test]
async fn a_whatsapp_button_tapped_on_a_virtual_phone_answers_the_ladder() {
    let env = SimEnv::builder().whatsapp().demo_defaults().start().await;
    let (store, vendor) = demo_vendor(&env);
    env.exotel.hold(&vendor).unwrap();
    let order = env.jupiter.data().orders[0].id.to_string();
    let (_, answer) = env.post("/comms/notify/vendor/order", vendor_order(&order, &store)).await;
    let id = answer["escalationId"].as_str().unwrap().to_string();
    env.run_jobs().await;

    let (status, pushes) = env.get("/_sim/push/deliveries").await;
    assert_eq!(status, 200, "{pushes}");
    assert!(pushes.as_array().unwrap().iter().any(|p| p["recipient"] == format!("vendor_{}", store.id)), "{pushes}");

    let mut message = None;
    for _ in 0..30 {
        let (_, messages) = env.get("/_sim/whatsapp/messages").await;
        message = messages.as_array().unwrap().iter().find(|m| m["to"] == vendor.as_str()).cloned();
        if message.is_some() {
            break;
        }
        env.tick(5).await;
    }
    let message = message.expect("the ladder's WhatsApp message");
    assert_eq!(message["button_labels"], json!(["Accept", "Reject"]));
    let (status, refused) = env.post("/_sim/whatsapp/reply", json!({"message_id": message["id"], "index": 7})).await;
    assert_eq!(status, 400, "{refused}");
    let (status, replied) = env.post("/_sim/whatsapp/reply", json!({"message_id": message["id"], "index": 0})).await;
    assert_eq!(status, 200, "{replied}");
    assert!(replied["reply_id"].as_str().is_some_and(|r| r.starts_with("wamid.")), "{replied}");
    let taps: Vec<_> =
        env.whatsapp.webhooks_sent().into_iter().filter(|w| w.kind == WebhookKind::ButtonReply).collect();
    assert_eq!(taps.len(), 1);
    assert_eq!(taps[0].response_status, Some(200));
    env.run_jobs().await;
    let ladder = env.ladder(&id).await;
    assert_eq!((ladder.state, ladder.stop_action.map(|a| a.name())), (LadderState::Stopped, Some("accept")));
    env.app.stop().await;
}
