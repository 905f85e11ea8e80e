//! A voice order on a phone call, end to end in the sandbox (issue 12,
//! item 6): the simulated Exotel plays `customer_voice_order` against the
//! service; the simulated customer presses 1 for food, and in the Voicebot
//! stream says their order in espeak-ng's voice, hears the read-back,
//! confirms with 1, takes the saved address with 1 and says "cash"; the
//! order is in the simulated Jupiter with its lines and total, the vendor
//! ladder has started, and the timeline holds every turn with its
//! transcript.
//!
//! The recogniser is the sandbox's: the embedded Whisper when its model is
//! in MODELS_DIR (and the `whisper` feature is built), else the production
//! ASR_URL client against the ASR simulator, which answers the exact
//! transcript from the book the simulated caller registers its words in.
//! The test prints which of the two ran.

use mangwale_core::ladder::LadderState;
use mangwale_sim::exotel::{CallerLine, FlowOutcome, LineSpec, StreamDirection, VoiceOrder};
use mangwale_sim::jupiter::DemoOrder;
use serde_json::Value;
use std::io::Write;

use crate::common::SimEnv;

const ORDER_DESK: &str = "+919812300011";
/// Rahul Kulkarni of the demo data: a home address on College Road.
const RAHUL: &str = "+917207687342";
/// Godavari Misal House.
pub(crate) const GODAVARI: u64 = 7;
const ORDER: &str = "Godavari Misal House se do misal pav aur ek cutting chai";

fn keys(digits: &str) -> CallerLine {
    CallerLine::Turn(LineSpec { keys: digits.to_string(), ..LineSpec::default() })
}

fn words(text: &str) -> CallerLine {
    CallerLine::Words(text.to_string())
}

#[tokio::test]
async fn a_customer_calls_presses_1_speaks_their_order_confirms_and_pays_cash_on_delivery() {
    let env = SimEnv::builder().var("ORDER_DESK_PHONE", ORDER_DESK).start().await;
    let recognizer = env.app.state.speech.recognizer.as_ref().map(|r| r.name().to_string());
    let recognizer = recognizer.expect("the sandbox recognises speech (Whisper, or the ASR simulator)");
    let embedded = recognizer.to_lowercase().contains("whisper");
    // Straight to stderr, past the test harness's capture, so that every
    // `cargo test` run says which recogniser the order went through.
    let _ = writeln!(
        std::io::stderr(),
        "voice order end to end: recogniser {recognizer:?} — {}",
        if embedded { "the embedded recogniser (Whisper)" } else { "the exact transcript (ASR simulator)" }
    );

    // One request, as `POST /_sim/exotel/voice-order` takes it.
    let mut order = VoiceOrder::new(RAHUL, &[ORDER, "bas itna hi"]);
    order.then_keys = "1".to_string();
    order.then_say = vec![keys("1"), words("cash"), keys("2")];
    let placed = env.exotel.place_voice_order(&order).unwrap();
    let sid = placed.call_sid.clone();
    for _ in 0..60 {
        env.tick(5).await;
        if env.exotel.flow_run(&sid).is_some_and(|r| r.outcome.is_some()) {
            break;
        }
    }

    // The flow: the welcome menu, 1, the bot, then the thank-you.
    let run = env.exotel.flow_run(&sid).unwrap();
    let path = run.path();
    // Rahul has an order under way: its menu first, 3 for a new order.
    let order_menu = ["incoming", "caller", "order_status", "order_menu", "order_answer", "order_route"];
    assert_eq!(path[..6], order_menu, "{path:?}");
    assert_eq!(path[6..11], ["welcome", "menu", "answer", "route", "bot"], "{path:?}");
    assert_eq!(path[11..], ["after_bot", "goodbye", "end"], "served by the bot: {path:?}");
    assert!(matches!(run.outcome, Some(FlowOutcome::HungUp { .. })), "{:?}", run.outcome);

    // The stream: the caller's turns as scripted, each after the bot's answer.
    let streams = env.exotel.voicebot_streams(&sid);
    assert_eq!(streams.len(), 1);
    let stream = &streams[0];
    let turns: Vec<(&str, &str)> = stream.caller_turns.iter().map(|t| (t.text.as_str(), t.digits.as_str())).collect();
    assert_eq!(turns, [(ORDER, ""), ("bas itna hi", ""), ("", "1"), ("", "1"), ("cash", ""), ("", "2")]);
    assert!(stream.caller_turns.iter().all(|t| t.note.is_none()), "{:?}", stream.caller_turns);
    assert!(stream.caller_turns[0].voice.as_deref().is_some_and(|v| v.starts_with("espeak-ng")));
    assert_eq!(stream.disconnected_by.as_deref(), Some("bot"), "the bot closed the stream at the end");
    assert!(stream.violations.is_empty(), "{:?}", stream.violations);

    let order_id = the_misal_order(&env).id.to_string();

    // The vendor ladder has started.
    env.run_jobs().await;
    let ladder = env.ladder(&format!("vendor_order_{order_id}")).await;
    assert_eq!(ladder.state, LadderState::Active);

    // Every turn on the timeline, with its transcript.
    let events = env.all_events().await;
    let call_turns: Vec<&Value> = events
        .iter()
        .filter(|e| e.kind == "voicebot.turn" && e.call_sid.as_deref() == Some(&sid))
        .map(|e| &e.detail)
        .collect();
    let spoken: Vec<&str> =
        call_turns.iter().filter(|t| t["input"] == "speech").filter_map(|t| t["transcript"].as_str()).collect();
    if embedded {
        assert_eq!(spoken.len(), 3, "{call_turns:?}");
        assert!(spoken[0].to_lowercase().contains("misal"), "{spoken:?}");
    } else {
        assert_eq!(spoken, [ORDER, "bas itna hi", "cash"], "the exact transcripts");
    }
    let inputs: Vec<&str> = call_turns.iter().filter_map(|t| t["input"].as_str()).collect();
    assert_eq!(inputs.iter().filter(|i| **i == "keys").count(), 3, "{inputs:?}");
    assert!(events.iter().any(|e| e.kind == "voice.order_placed"), "the dialog placed the order");

    // The caller heard the read-back: the bot's audio played between the
    // second turn and the confirming key, and what they heard is kept.
    let heard = env.exotel.recording(&format!("{}-heard", stream.stream_sid)).expect("what the caller heard");
    let at = |t: chrono::DateTime<chrono::Utc>| ((t - stream.started_at).num_milliseconds() * 16) as usize + 44;
    let (after_bas, confirm) = (stream.caller_turns[1].at, stream.caller_turns[2].at);
    let read_back = &heard[at(after_bas).min(heard.len())..at(confirm).min(heard.len())];
    assert!(
        read_back.chunks(2).filter(|s| i16::from_le_bytes([s[0], s[1]]).unsigned_abs() > 500).count() > 8000,
        "a second and more of read-back"
    );
    let bot_audio = stream.events_of(StreamDirection::FromBot, "media");
    assert!(bot_audio.iter().any(|e| e.at > after_bas && e.at < confirm), "the read-back came before the key");
}

/// The one order the call placed in the Jupiter simulator (the demo data's
/// own orders aside), checked: at Godavari Misal House, two misal pav and a
/// cutting chai priced from its catalog, the delivery charge, cash on
/// delivery.
pub(crate) fn the_misal_order(env: &SimEnv) -> DemoOrder {
    let demo = mangwale_sim::jupiter::DemoData::nashik().unwrap();
    let created: Vec<_> = env.jupiter.data().orders.into_iter().filter(|o| demo.order(o.id).is_none()).collect();
    assert_eq!(created.len(), 1, "one order");
    let order = created.into_iter().next().unwrap();
    assert_eq!(order.store_id, GODAVARI);
    let lines: Vec<(u64, f64)> = order.items.iter().map(|l| (l.item_id, l.quantity)).collect();
    assert_eq!(lines, [(7001, 2.0), (7012, 1.0)], "two misal pav and a cutting chai");
    let items: f64 = order.items.iter().map(|l| l.price * l.quantity).sum();
    assert_eq!(items, 152.0, "two misal at 70 and a chai at 12");
    assert_eq!(order.order_amount, 172.0, "and the delivery charge");
    assert_eq!(order.payment_method, "cash_on_delivery");
    order
}
