//! The record path end to end (issue 12, item 4): the simulator plays the
//! `voice_order_record` flow as Exotel would (Greeting, Record, Passthru,
//! Switch, looping), serves each recording behind the account's
//! credentials, and the service fetches, decodes and transcribes it and
//! runs the dialog. The recogniser is a test double that finds the caller's
//! exact samples in the recording (the simulator's stand-in voice is one
//! tone per character, so the transcript book's short needles would match
//! any utterance sharing a letter; whole utterances are unambiguous).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mangwale_server::speech::Speech;
use mangwale_sim::exotel::{CalleeScript, DEFAULT_EXOPHONE, Endpoint, Fault, RECORDING_RATE, caller_speech};
use mangwale_voice::Lang;
use mangwale_voice::speech::{Pcm16, RecognitionHints, Recognizer, SpeechError, Transcript};
use serde_json::{Value, json};

use crate::common::SimEnv;

const ORDER_DESK: &str = "+919812300011";
/// Rahul Kulkarni of the demo data (a home address on College Road).
const RAHUL: &str = "+917207687342";
const FLOW: &str = "voice_order_record";

/// Hears the registered utterance whose samples occur whole in the audio
/// (the longest, if several do); remembers the hints it was given.
#[derive(Default)]
struct ExactRecognizer {
    said: std::sync::Mutex<Vec<(Vec<i16>, String)>>,
    hints: std::sync::Mutex<Vec<RecognitionHints>>,
}

impl ExactRecognizer {
    /// The caller's words, as the simulator's Record applet produces them
    /// (its default 60 ms a character).
    fn register(&self, words: &[&str]) {
        for text in words {
            let samples = caller_speech(text, RECORDING_RATE, Duration::from_millis(60));
            self.said.lock().unwrap().push((samples, text.to_string()));
        }
    }
}

#[async_trait]
impl Recognizer for ExactRecognizer {
    fn name(&self) -> &str {
        "test double (exact samples)"
    }

    async fn recognize(&self, audio: &Pcm16, hints: &RecognitionHints) -> Result<Transcript, SpeechError> {
        self.hints.lock().unwrap().push(hints.clone());
        let said = self.said.lock().unwrap();
        let text = said
            .iter()
            .filter(|(samples, _)| audio.samples.windows(samples.len()).any(|w| w == samples.as_slice()))
            .max_by_key(|(samples, _)| samples.len())
            .map(|(_, text)| text.clone())
            .unwrap_or_default();
        Ok(Transcript { text, language: hints.language.unwrap_or(Lang::HiEn), confidence: 1.0 })
    }
}

async fn env(recognizer: Option<Arc<ExactRecognizer>>) -> SimEnv {
    let speech = Speech { recognizer: recognizer.map(|r| r as Arc<dyn Recognizer>), ..Speech::none() };
    SimEnv::builder().var("ORDER_DESK_PHONE", ORDER_DESK).speech(speech).start().await
}

fn recognizer() -> Arc<ExactRecognizer> {
    Arc::new(ExactRecognizer::default())
}

/// Calls into the record flow with `script` and lets the simulated call run.
async fn call(env: &SimEnv, script: CalleeScript, secs: u64) -> (String, mangwale_sim::exotel::FlowRun) {
    env.exotel.script(RAHUL, script).unwrap();
    let sid = env.exotel.incoming_call(RAHUL, DEFAULT_EXOPHONE, FLOW).unwrap();
    env.tick(secs).await;
    let run = env.exotel.flow_run(&sid).expect("the flow ran");
    (sid, run)
}

async fn call_events(env: &SimEnv, sid: &str, kind: &str) -> Vec<Value> {
    env.all_events()
        .await
        .into_iter()
        .filter(|e| e.call_sid.as_deref() == Some(sid) && e.kind == kind)
        .map(|e| e.detail)
        .collect()
}

const ORDER: [&str; 7] =
    ["godavari se", "do plate misal aur ek cutting chai", "bas itna hi", "haan", "haan", "cash", "nahi bas"];

#[tokio::test]
async fn a_caller_orders_by_recordings_and_the_flow_loops_until_the_order_is_placed() {
    let recognizer = recognizer();
    recognizer.register(&ORDER);
    let env = env(Some(recognizer.clone())).await;
    let mut script = CalleeScript::answers_after(Duration::from_secs(1)).never_hangs_up();
    for words in ORDER {
        script = script.says("listen", words);
    }
    let (sid, run) = call(&env, script, 300).await;

    // Greeting, Record, Passthru, Switch: once per turn, then the last words.
    let path = run.path();
    let turns = path.iter().filter(|id| **id == "listen").count();
    assert_eq!(turns, ORDER.len(), "{path:?}");
    assert_eq!(&path[..4], ["speak", "listen", "heard", "route"], "{path:?}");
    assert_eq!(&path[path.len() - 3..], ["route", "last_words", "end"], "{path:?}");

    // Each Passthru got the Record applet's RecordingUrl (on the simulator,
    // behind the account's credentials) and CallType voicemail.
    let heard = run.entries.iter().find(|e| e.applet_id == "heard").unwrap();
    let params = &heard.requests[0].params;
    let url = params.iter().find(|(k, _)| k == "RecordingUrl").map(|(_, v)| v.clone()).expect("RecordingUrl");
    assert!(url.starts_with(&format!("{}/exotelrecordings/", env.exotel.base_url())), "{url}");
    assert!(params.contains(&("CallType".into(), "voicemail".into())), "{params:?}");
    let anonymous = reqwest::get(&url).await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401, "recordings need the account's credentials");

    // The order is in Jupiter, and the timeline holds every turn with what
    // the recogniser heard.
    let demo = mangwale_sim::jupiter::DemoData::nashik().unwrap();
    let created: Vec<_> = env.jupiter.data().orders.into_iter().filter(|o| demo.order(o.id).is_none()).collect();
    assert_eq!(created.len(), 1, "one order placed");
    let recordings = call_events(&env, &sid, "voice.recording").await;
    let heard: Vec<&str> = recordings.iter().map(|d| d["transcript"].as_str().unwrap()).collect();
    assert_eq!(heard, ORDER, "{recordings:?}");
    assert!(recordings.iter().all(|d| d["format"] == "wav" && d["host"] == "127.0.0.1"), "{recordings:?}");
    let turns = call_events(&env, &sid, "voice.turn").await;
    let said: Vec<&str> = turns.iter().filter_map(|t| t["caller"]["say"].as_str()).collect();
    assert_eq!(said, ORDER);
    assert!(turns.last().unwrap()["ended"].as_bool().unwrap(), "{:?}", turns.last());

    // The seed's route takes the same recording: its words are the turn.
    let first = run.entries.iter().find(|e| e.applet_id == "listen").unwrap().detail["recording_url"].clone();
    let answer = env.process("CA-rec-seed", first.as_str().unwrap()).await;
    assert_eq!(answer["recording"]["transcript"], "godavari se", "{answer}");
    assert_eq!(answer["cart"]["store_id"], "7", "{answer}");
    assert_eq!(answer["duplicate"], false);

    // The recogniser was biased towards the store once it was chosen.
    let hints = recognizer.hints.lock().unwrap().clone();
    assert!(hints[1].phrases.iter().any(|p| p.to_lowercase().contains("misal")), "{:?}", hints[1]);
    // ... and towards the number words of the caller's language.
    let lang = hints[1].language.expect("the dialog's language");
    let numbers = mangwale_speech::hints::closed_words(lang, mangwale_speech::hints::Script::Latin);
    assert!(hints[1].phrases.iter().any(|p| numbers.contains(&p.as_str())), "{:?}", hints[1]);
}

#[tokio::test]
async fn a_recording_that_cannot_be_fetched_sends_the_caller_to_the_order_desk() {
    let recognizer = recognizer();
    recognizer.register(&["godavari se"]);
    let env = env(Some(recognizer)).await;
    env.exotel.inject_fault(Endpoint::Recordings, Fault::status(503), 1);
    let script = CalleeScript::answers_after(Duration::from_secs(1)).never_hangs_up().says("listen", "godavari se");
    let (sid, run) = call(&env, script, 120).await;
    assert_eq!(
        run.path(),
        ["speak", "listen", "heard", "route", "unheard", "desk", "goodbye", "end"],
        "the caller hears why and is connected to the order desk"
    );
    let unheard = run.entries.iter().find(|e| e.applet_id == "unheard").unwrap();
    // Rahul's profile speaks Marathi.
    assert_eq!(unheard.detail["spoken"], mangwale_server::voice::record::unheard_sentence(Lang::Mr));
    let connects = &run.connects;
    assert_eq!(connects[0].numbers, ["+919812300011"], "{connects:?}");
    let failed = call_events(&env, &sid, "voice.recording_failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["why"], "recording_unavailable");
    assert!(failed[0]["detail"].as_str().unwrap().contains("HTTP 503"), "{failed:?}");
}

impl SimEnv {
    async fn process(&self, call_sid: &str, recording_url: &str) -> Value {
        let body = json!({"call_sid": call_sid, "from_phone": RAHUL, "recording_url": recording_url});
        let (status, answer) = self.post("/exotel/ivr/voice/process", body).await;
        assert_eq!(status, 200, "never a 5xx that drops the call: {answer}");
        answer
    }
}

#[tokio::test]
async fn bad_recordings_through_the_seeds_route_are_answered_with_the_order_desk() {
    let env = env(Some(recognizer())).await;
    let sim = env.exotel.base_url().to_string();
    let account = env.exotel.account_sid().to_string();
    let cases = [
        ("CA-rec-404", format!("{sim}/exotelrecordings/{account}/missing.wav"), "recording_unavailable", "HTTP 404"),
        ("CA-rec-json", format!("{sim}/_sim"), "recording_unavailable", "not audio"),
        ("CA-rec-host", "https://recordings.example.org/a.mp3".to_string(), "recording_url_refused", "not one of"),
    ];
    for (call, url, why, detail) in &cases {
        let answer = env.process(call, url).await;
        assert_eq!(answer["recording"]["error"], *why, "{answer}");
        assert!(answer["recording"]["detail"].as_str().unwrap().contains(detail), "{answer}");
        assert_eq!(answer["handoff"], json!({"to": "order_desk", "reason": "unavailable"}), "{answer}");
        assert_eq!(answer["connect"]["destination"]["numbers"], json!([ORDER_DESK]), "{answer}");
        assert_eq!(answer["agent"], mangwale_server::voice::record::unheard_sentence(Lang::Mr), "{answer}");
        let failed = call_events(&env, call, "voice.recording_failed").await;
        assert_eq!(failed.len(), 1, "{call}: {failed:?}");
        assert_eq!(failed[0]["why"], *why);
        assert_eq!(call_events(&env, call, "voice.connect").await.len(), 1, "{call}");
    }

    // A recording host that does not answer in time.
    env.exotel.inject_fault(Endpoint::Recordings, Fault::delay(Duration::from_secs(5)), 1);
    let answer = env.process("CA-rec-slow", &format!("{sim}/exotelrecordings/{account}/slow.wav")).await;
    assert_eq!(answer["recording"]["error"], "recording_unavailable", "{answer}");
    assert!(answer["recording"]["detail"].as_str().unwrap().contains("timed out"), "{answer}");
}

#[tokio::test]
async fn without_a_recogniser_a_recording_goes_to_the_order_desk() {
    let env = env(None).await;
    let url = format!("{}/exotelrecordings/{}/r.wav", env.exotel.base_url(), env.exotel.account_sid());
    let answer = env.process("CA-rec-none", &url).await;
    assert_eq!(answer["recording"]["error"], "no_recognizer", "{answer}");
    assert_eq!(answer["connect"]["destination"]["numbers"], json!([ORDER_DESK]), "{answer}");
}
