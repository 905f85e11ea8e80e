//! The virtual phones' voice-order path (issue 14, item 3): a customer's
//! phone held as the console's phones page holds it dials the order line,
//! presses its way to the Voicebot and speaks by typing (`phones/{n}/say`)
//! or with a recording (`phones/{n}/audio`), through the same control
//! endpoints on the service's port the page calls. Time is the test's: the
//! sandbox's clocks move a second at a time, and the caller speaks only
//! once the bot's answer has played (its mark came back).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use mangwale_core::ladder::LadderState;
use mangwale_server::speech::Speech;
use mangwale_sim::exotel::{DEFAULT_EXOPHONE, FlowOutcome, PhoneView, StreamDirection, StreamLog};
use mangwale_voice::Lang;
use mangwale_voice::speech::{Pcm16, RecognitionHints, Recognizer, SampleRate, SpeechError, Synthesizer, Transcript};
use serde_json::{Value, json};

use super::voice_call::the_misal_order;
use crate::common::SimEnv;

const ORDER_DESK: &str = "+919812300011";
/// Rahul Kulkarni of the demo data: a home address on College Road, and an
/// order under way (his order menu comes first).
const RAHUL: &str = "+917207687342";
const ORDER: &str = "Godavari Misal House se do misal pav aur ek cutting chai";
/// Longest the sandbox's clocks move waiting for one thing (seconds).
const MAX_WAIT: u64 = 120;

/// `path` of the phone's control endpoints, as the page writes it.
fn phone_path(action: &str) -> String {
    format!("/_sim/exotel/phones/{}/{action}", RAHUL.replace('+', "%2B"))
}

impl SimEnv {
    async fn phone_view(&self) -> Value {
        let (status, view) = self.get(&format!("/_sim/exotel/phones/{}", RAHUL.replace('+', "%2B"))).await;
        assert_eq!(status, 200, "{view}");
        view
    }

    /// Moves the clocks a second at a time until `done` holds of the phone.
    async fn tick_until_phone(&self, what: &str, done: impl Fn(&PhoneView) -> bool) -> PhoneView {
        for _ in 0..MAX_WAIT {
            let view = self.exotel.phone(RAHUL).unwrap();
            if done(&view) {
                return view;
            }
            self.tick(1).await;
        }
        panic!("{what}: {:?}", self.exotel.phone(RAHUL).unwrap());
    }

    /// The stream the held phone's call talks to.
    fn stream(&self, sid: &str) -> StreamLog {
        let streams = self.exotel.voicebot_streams(sid);
        assert_eq!(streams.len(), 1, "one Voicebot stream");
        streams.into_iter().next().unwrap()
    }

    /// The bot's turns on the call's timeline (its greeting, and an
    /// answer to each of the caller's turns).
    async fn bot_turns(&self, sid: &str) -> usize {
        let events = self.all_events().await;
        events.iter().filter(|e| e.kind == "voicebot.turn" && e.call_sid.as_deref() == Some(sid)).count()
    }

    /// Moves the clocks until the bot has answered once more than
    /// `turns_before` and the answer has played to the caller (all its
    /// audio, every mark echoed), as a person listens before speaking
    /// again; or until the stream has ended. The bot's turns by then.
    async fn hear_reply(&self, sid: &str, turns_before: usize) -> usize {
        for _ in 0..MAX_WAIT {
            self.tick(1).await;
            let turns = self.bot_turns(sid).await;
            let stream = self.stream(sid);
            let marks = stream.events_of(StreamDirection::FromBot, "mark").len();
            let played = stream.audio_bytes_played + stream.audio_bytes_cleared >= stream.audio_bytes_received;
            if stream.ended_at.is_some() || (turns > turns_before && played && stream.marks_echoed.len() >= marks) {
                return turns;
            }
        }
        panic!("no answer from the bot: {:?}", self.stream(sid).caller_turns);
    }

    /// Presses `digits` on the held phone, as the page's keypad does.
    async fn press(&self, digits: &str) -> Value {
        let (status, view) = self.post(&phone_path("keys"), json!({"digits": digits})).await;
        assert_eq!(status, 200, "{digits}: {view}");
        view
    }

    /// Types `text` on the held phone, spoken to the bot; waits for its answer.
    async fn say_and_hear(&self, sid: &str, text: &str, turns: usize) -> usize {
        let (status, view) = self.post(&phone_path("say"), json!({"text": text, "language": "hi-en"})).await;
        assert_eq!(status, 200, "{text}: {view}");
        self.hear_reply(sid, turns).await
    }

    /// Holds Rahul's phone, dials the order line, presses 3 (a new order)
    /// at his order menu and 1 (food) at the welcome menu, and waits for
    /// the bot's greeting to play. The call, and the bot's turns so far.
    async fn dial_the_bot(&self) -> (String, usize) {
        let (status, held) = self.post(&phone_path("hold"), Value::Null).await;
        assert_eq!((status, held["held"].as_bool()), (200, Some(true)), "{held}");
        let (status, placed) = self.post("/_sim/exotel/incoming", json!({"from": RAHUL, "to": DEFAULT_EXOPHONE})).await;
        assert_eq!((status, placed["flow_id"].as_str()), (200, Some("customer_voice_order")), "{placed}");
        let sid = placed["call_sid"].as_str().unwrap().to_string();
        for (menu, key) in [("order_menu", "3"), ("menu", "1")] {
            let view = self
                .tick_until_phone(menu, |v| {
                    v.call.as_ref().and_then(|c| c.listening.as_ref()).is_some_and(|l| l.applet_id == menu)
                })
                .await;
            let call = view.call.unwrap();
            assert_eq!((call.call_sid.as_str(), call.role), (sid.as_str(), "caller"));
            assert!(call.prompts.iter().any(|p| p.applet_id == menu), "the page shows the menu: {:?}", call.prompts);
            self.press(key).await;
        }
        let view = self.tick_until_phone("the bot", |v| v.call.as_ref().is_some_and(|c| c.stream_sid.is_some())).await;
        let page = self.phone_view().await;
        assert_eq!(page["call"]["stream_sid"].as_str(), view.call.unwrap().stream_sid.as_deref(), "{page}");
        let turns = self.hear_reply(&sid, 0).await;
        (sid, turns)
    }
}

#[tokio::test]
async fn a_customer_on_a_virtual_phone_types_a_hinglish_order_to_the_bot_and_it_is_placed() {
    let env = SimEnv::builder()
        .var("ORDER_DESK_PHONE", ORDER_DESK)
        .tick_step(std::time::Duration::from_secs(1))
        .start()
        .await;
    let recognizer = env.app.state.speech.recognizer.as_ref().map(|r| r.name().to_lowercase()).unwrap_or_default();
    let embedded = recognizer.contains("whisper");
    let (sid, mut turns) = env.dial_the_bot().await;

    // The order, the end of it, a "haan" for the read-back and one for the
    // saved address, cash, and nothing else.
    for text in [ORDER, "bas itna hi", "haan", "haan", "cash", "nahi bas"] {
        turns = env.say_and_hear(&sid, text, turns).await;
    }
    let run = env.exotel.flow_run(&sid).unwrap();
    if run.outcome.is_none() {
        env.tick_until_phone("the call's end", |v| v.call.is_none()).await;
    }
    let run = env.exotel.flow_run(&sid).unwrap();
    let path = run.path();
    assert!(path.ends_with(&["bot", "after_bot", "goodbye", "end"]), "served by the bot: {path:?}");
    assert!(matches!(run.outcome, Some(FlowOutcome::HungUp { .. })), "{:?}", run.outcome);

    // The phone's words went through the simulated caller's voice and the
    // transcript book, one turn each, nothing going wrong.
    let stream = env.stream(&sid);
    let said: Vec<&str> = stream.caller_turns.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(said, [ORDER, "bas itna hi", "haan", "haan", "cash", "nahi bas"]);
    assert!(stream.caller_turns.iter().all(|t| t.note.is_none() && t.registered), "{:?}", stream.caller_turns);
    assert!(stream.violations.is_empty(), "{:?}", stream.violations);
    assert_eq!(stream.disconnected_by.as_deref(), Some("bot"), "the bot said goodbye");

    // The order is in the Jupiter simulator, and its vendor ladder runs.
    let order_id = the_misal_order(&env).id.to_string();
    env.run_jobs().await;
    assert_eq!(env.ladder(&format!("vendor_order_{order_id}")).await.state, LadderState::Active);

    // The call's timeline (as the sandbox shows it) holds every transcript.
    let (status, timeline) = env.get(&format!("/_sim/exotel/timeline/{sid}")).await;
    assert_eq!(status, 200, "{timeline}");
    let events = timeline["events"].as_array().unwrap();
    let transcripts: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "voicebot.turn" && e["detail"]["input"] == "speech")
        .filter_map(|e| e["detail"]["transcript"].as_str())
        .collect();
    if embedded {
        assert_eq!(transcripts.len(), 6, "{transcripts:?}");
    } else {
        assert_eq!(transcripts, [ORDER, "bas itna hi", "haan", "haan", "cash", "nahi bas"], "the exact transcripts");
    }
    let kinds: Vec<String> = env.all_events().await.into_iter().map(|e| e.kind).collect();
    assert!(kinds.iter().any(|k| k == "voice.order_placed"), "{kinds:?}");

    // The phone shows the call over, and the prompts it heard.
    let page = env.phone_view().await;
    assert!(page["call"].is_null(), "{page}");
    assert_eq!(page["last"]["call_sid"], sid.as_str(), "{page}");
}

/// A recogniser that keeps the audio it is given and answers in turn.
#[derive(Default)]
struct Heard {
    audio: Mutex<Vec<Pcm16>>,
    answers: Mutex<Vec<String>>,
}

struct HearingRecognizer(Arc<Heard>);

#[async_trait]
impl Recognizer for HearingRecognizer {
    fn name(&self) -> &str {
        "hearing"
    }

    async fn recognize(&self, audio: &Pcm16, hints: &RecognitionHints) -> Result<Transcript, SpeechError> {
        self.0.audio.lock().unwrap().push(audio.clone());
        let mut answers = self.0.answers.lock().unwrap();
        let text = if answers.is_empty() { String::new() } else { answers.remove(0) };
        Ok(Transcript { text, language: hints.language.unwrap_or(Lang::Hi), confidence: 0.9 })
    }
}

/// Speaks any text as a tone, 10 ms per character.
struct ToneSynth;

#[async_trait]
impl Synthesizer for ToneSynth {
    fn name(&self) -> &str {
        "tone"
    }

    async fn synthesize(&self, text: &str, _: Lang, rate: SampleRate) -> Result<Pcm16, SpeechError> {
        let n = text.chars().count() * rate.hz() as usize / 100 + 1;
        Ok(Pcm16 { sample_rate: rate, samples: (0..n).map(|i| if (i / 10) % 2 == 0 { 3000 } else { -3000 }).collect() })
    }
}

/// "Godavari se" by espeak-ng at 16 kHz (a browser's microphone rate),
/// without its leading and trailing silence.
async fn recorded_at_16k() -> Vec<i16> {
    let (rate, samples) =
        mangwale_speech::espeak::Espeak::default().render("godavari se", "hi").await.expect("espeak-ng");
    let samples = mangwale_speech::audio::resample(&samples, rate, 16_000);
    let first = samples.iter().position(|s| s.unsigned_abs() > 100).unwrap_or(0);
    let last = samples.iter().rposition(|s| s.unsigned_abs() > 100).unwrap_or(0);
    samples[first..=last].to_vec()
}

fn base64_pcm(samples: &[i16]) -> String {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn a_recording_from_the_phones_microphone_reaches_the_recogniser_at_the_streams_rate() {
    let heard = Arc::new(Heard::default());
    heard.answers.lock().unwrap().push("godavari se".into());
    let speech = Speech {
        recognizer: Some(Arc::new(HearingRecognizer(heard.clone()))),
        synthesizer: Some(Arc::new(ToneSynth)),
        ..Speech::none()
    };
    let env = SimEnv::builder()
        .var("ORDER_DESK_PHONE", ORDER_DESK)
        .speech(speech)
        .tick_step(std::time::Duration::from_secs(1))
        .start()
        .await;

    // No call yet: no bot to speak to.
    let (status, _) = env.post(&phone_path("hold"), Value::Null).await;
    assert_eq!(status, 200);
    let recording = recorded_at_16k().await;
    let pcm = base64_pcm(&recording);
    let (status, refused) = env.post(&phone_path("audio"), json!({"pcm": pcm, "sample_rate": 16000})).await;
    assert_eq!((status, refused["field"].as_str()), (409, Some("number")), "{refused}");

    let (sid, turns) = env.dial_the_bot().await;
    let rate = env.stream(&sid).sample_rate;
    let before = env.stream(&sid).audio_bytes_sent;

    // Bad recordings are refused, naming the field, and nothing is said.
    let cases = [
        (json!({"pcm": "not base64!", "sample_rate": 16000}), 400, "pcm"),
        (
            json!({"pcm": base64::engine::general_purpose::STANDARD.encode([1u8, 2, 3]), "sample_rate": 16000}),
            400,
            "pcm",
        ),
        (json!({"pcm": "", "sample_rate": 16000}), 400, "pcm"),
        (json!({"pcm": pcm, "sample_rate": 0}), 400, "sample_rate"),
        (json!({"pcm": pcm, "sample_rate": 1_000_000}), 400, "sample_rate"),
        (json!({"pcm": pcm, "sample_rate": "fast"}), 400, "sample_rate"),
        (json!({"sample_rate": 16000}), 400, "pcm"),
    ];
    for (body, want, field) in cases {
        let (status, refused) = env.post(&phone_path("audio"), body.clone()).await;
        assert_eq!((status, refused["field"].as_str()), (want, Some(field)), "{body}: {refused}");
        assert!(refused["error"].is_string(), "{refused}");
    }
    assert!(env.stream(&sid).caller_turns.is_empty(), "nothing was said");
    for (body, field) in [(json!({"text": "  "}), "text"), (json!({"language": "hi"}), "text")] {
        let (status, refused) = env.post(&phone_path("say"), body.clone()).await;
        assert_eq!((status, refused["field"].as_str()), (400, Some(field)), "{body}: {refused}");
    }

    // The recording: played into the stream as the caller's audio,
    // resampled to the stream's rate.
    let (status, view) = env.post(&phone_path("audio"), json!({"pcm": pcm, "sample_rate": 16000})).await;
    assert_eq!(status, 200, "{view}");
    env.hear_reply(&sid, turns).await;
    let stream = env.stream(&sid);
    let turn = &stream.caller_turns[0];
    assert_eq!(
        (turn.text.as_str(), turn.voice.as_deref(), turn.registered),
        ("(recorded audio)", Some("microphone"), false)
    );
    let duration_ms = recording.len() as u64 * 1000 / 16_000;
    assert!(turn.duration_ms.abs_diff(duration_ms) <= 20, "{} ms said, {duration_ms} ms recorded", turn.duration_ms);
    assert!(stream.audio_bytes_sent > before, "caller audio flowed");

    // The recogniser got that speech at the stream's rate: as long as the
    // recording (the turn detector may add a little silence either side).
    let got = heard.audio.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "one utterance");
    assert_eq!(got[0].sample_rate.hz(), rate);
    let got_ms = got[0].samples.len() as u64 * 1000 / u64::from(rate);
    assert!(got_ms + 100 >= duration_ms && got_ms <= duration_ms + 1500, "{got_ms} ms heard of {duration_ms} ms");

    // The dialog took what the recogniser heard: the store is chosen.
    let turns: Vec<Value> = env
        .all_events()
        .await
        .into_iter()
        .filter(|e| e.kind == "voicebot.turn" && e.call_sid.as_deref() == Some(sid.as_str()))
        .map(|e| e.detail)
        .collect();
    assert!(turns.iter().any(|t| t["input"] == "speech" && t["transcript"] == "godavari se"), "{turns:?}");

    // The phone hangs up: the stream is gone, a recording is refused.
    let (status, _) = env.post(&phone_path("hangup"), Value::Null).await;
    assert_eq!(status, 200);
    let (status, refused) = env.post(&phone_path("audio"), json!({"pcm": pcm, "sample_rate": 16000})).await;
    assert_eq!((status, refused["field"].as_str()), (409, Some("number")), "{refused}");
    // The caller's side of the stream, as recorded, holds the recording.
    let wav = env.exotel.recording(&stream.stream_sid).expect("the caller's side, recorded");
    let loud = wav[44..].chunks(2).filter(|s| i16::from_le_bytes([s[0], s[1]]).unsigned_abs() > 1000).count();
    assert!(loud as u64 > u64::from(rate) * duration_ms / 1000 / 10, "{loud} loud samples");
}
