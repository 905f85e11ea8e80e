//! The record path end to end (issue 12, item 4): the simulator plays the
//! `voice_order_record` flow as Exotel would (Greeting, Record, Passthru,
//! Switch, looping). At each beep the simulated caller says its line in
//! espeak-ng's voice, registered in the simulator's transcript book, and
//! the recording is served behind the account's credentials; the service
//! fetches, decodes and transcribes it and runs the dialog. The recogniser
//! is the sandbox's without Whisper: the production client of the user's
//! ASR server against the ASR simulator, which answers from that book,
//! wrapped to remember the hints each recording came with.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mangwale_server::speech::Speech;
use mangwale_sim::exotel::{CalleeScript, DEFAULT_EXOPHONE, Endpoint, Fault, SimConfig};
use mangwale_sim::speech::{AsrSim, TranscriptBook};
use mangwale_speech::asr_http::HttpAsr;
use mangwale_voice::speech::{Pcm16, RecognitionHints, Recognizer, SpeechError, Transcript};
use mangwale_voice::{Lang, Paise};
use serde_json::{Value, json};

use crate::common::SimEnv;
use crate::voice_call::{GODAVARI, the_misal_order};

const ORDER_DESK: &str = "+919812300011";
/// Rahul Kulkarni of the demo data (a home address on College Road).
const RAHUL: &str = "+917207687342";
const FLOW: &str = "voice_order_record";

/// The ASR simulator through the production client, remembering hints.
struct Listening {
    asr: HttpAsr,
    hints: Mutex<Vec<RecognitionHints>>,
    /// Serves `asr` for as long as the test runs.
    _sim: AsrSim,
}

#[async_trait]
impl Recognizer for Listening {
    fn name(&self) -> &str {
        self.asr.name()
    }

    async fn recognize(&self, audio: &Pcm16, hints: &RecognitionHints) -> Result<Transcript, SpeechError> {
        self.hints.lock().unwrap().push(hints.clone());
        self.asr.recognize(audio, hints).await
    }
}

/// The sandbox with the record flow's order desk; with a recogniser that
/// hears what the simulated callers say, or none.
async fn env(with_recognizer: bool) -> (SimEnv, Option<Arc<Listening>>) {
    let book = TranscriptBook::new();
    let listening = if with_recognizer {
        let sim = AsrSim::start(book.clone()).await.unwrap();
        let asr = HttpAsr::new(reqwest::Url::parse(&sim.url()).unwrap(), Duration::from_secs(2)).unwrap();
        Some(Arc::new(Listening { asr, hints: Mutex::default(), _sim: sim }))
    } else {
        None
    };
    let speech = Speech { recognizer: listening.clone().map(|r| r as Arc<dyn Recognizer>), ..Speech::none() };
    let env = SimEnv::builder()
        .var("ORDER_DESK_PHONE", ORDER_DESK)
        .exotel(move |config| SimConfig { transcripts: book, ..config })
        .speech(speech)
        .start()
        .await;
    (env, listening)
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

/// What Rahul says at each beep: his order in one sentence, "that's all",
/// yes to the order read back, yes to his saved address, cash, and nothing
/// more.
const ORDER: [&str; 6] =
    ["Godavari Misal House se do misal pav aur ek cutting chai", "bas itna hi", "haan", "haan", "cash", "nahi bas"];

#[tokio::test]
async fn a_caller_speaks_an_order_into_recordings_hears_it_read_back_and_pays_cash() {
    let (env, recognizer) = env(true).await;
    let recognizer = recognizer.unwrap();
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

    // The caller spoke each line in espeak-ng's voice, into the book.
    let listened: Vec<&Value> = run.entries.iter().filter(|e| e.applet_id == "listen").map(|e| &e.detail).collect();
    for (detail, words) in listened.iter().zip(ORDER) {
        assert_eq!(detail["said"], words, "{detail}");
        assert!(detail["voice"].as_str().is_some_and(|v| v.starts_with("espeak-ng")), "{detail}");
        assert_eq!((&detail["registered"], &detail["note"]), (&json!(true), &Value::Null), "{detail}");
    }

    // Each Passthru got the Record applet's RecordingUrl (on the simulator,
    // behind the account's credentials) and CallType voicemail.
    let heard = run.entries.iter().find(|e| e.applet_id == "heard").unwrap();
    let params = &heard.requests[0].params;
    let url = params.iter().find(|(k, _)| k == "RecordingUrl").map(|(_, v)| v.clone()).expect("RecordingUrl");
    assert!(url.starts_with(&format!("{}/exotelrecordings/", env.exotel.base_url())), "{url}");
    assert!(params.contains(&("CallType".into(), "voicemail".into())), "{params:?}");
    let anonymous = reqwest::get(&url).await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401, "recordings need the account's credentials");

    // The recogniser heard every recording as said, and each turn ran on it.
    let recordings = call_events(&env, &sid, "voice.recording").await;
    let transcripts: Vec<&str> = recordings.iter().map(|d| d["transcript"].as_str().unwrap()).collect();
    assert_eq!(transcripts, ORDER, "{recordings:?}");
    assert!(recordings.iter().all(|d| d["format"] == "wav" && d["host"] == "127.0.0.1"), "{recordings:?}");
    let turns = call_events(&env, &sid, "voice.turn").await;
    let said: Vec<&str> = turns.iter().filter_map(|t| t["caller"]["say"].as_str()).collect();
    assert_eq!(said, ORDER);
    assert!(turns.last().unwrap()["ended"].as_bool().unwrap(), "{:?}", turns.last());

    // After "bas itna hi" the next Greeting reads the cart back with its
    // total and asks to confirm.
    let read_back = turns.iter().find(|t| t["caller"]["say"] == ORDER[1]).unwrap();
    assert_eq!(read_back["expects"], "confirm", "{read_back}");
    let agent = read_back["agent"].as_str().unwrap();
    let lang: Lang = serde_json::from_value(read_back["language"].clone()).unwrap();
    let total = mangwale_voice::spell::rupees(Paise(15_200), lang);
    assert!(agent.contains(&total), "{agent:?} says {total:?}");
    let greetings: Vec<&Value> =
        run.entries.iter().filter(|e| e.applet_id == "speak").map(|e| &e.detail["spoken"]).collect();
    assert_eq!(greetings[2], agent, "the caller heard the read-back before the third beep");

    // The order is in Jupiter: the lines, priced from the catalog, cash on delivery.
    the_misal_order(&env);

    // The seed's route takes the same recording: its words are the turn.
    let first = listened[0]["recording_url"].as_str().unwrap();
    let answer = env.process("CA-rec-seed", first).await;
    assert_eq!(answer["recording"]["transcript"], ORDER[0], "{answer}");
    assert_eq!(answer["cart"]["store_id"], GODAVARI.to_string(), "{answer}");
    assert_eq!(answer["duplicate"], false);

    // The recogniser was biased towards the store once it was chosen ...
    let hints = recognizer.hints.lock().unwrap().clone();
    assert!(hints[1].phrases.iter().any(|p| p.to_lowercase().contains("misal")), "{:?}", hints[1]);
    // ... and towards the number words of the caller's language.
    let lang = hints[1].language.expect("the dialog's language");
    let numbers = mangwale_speech::hints::closed_words(lang, mangwale_speech::hints::Script::Latin);
    assert!(hints[1].phrases.iter().any(|p| numbers.contains(&p.as_str())), "{:?}", hints[1]);
}

#[tokio::test]
async fn a_recording_that_cannot_be_fetched_sends_the_caller_to_the_order_desk() {
    let (env, _) = env(true).await;
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
    let (env, _) = env(true).await;
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
    let (env, _) = env(false).await;
    let url = format!("{}/exotelrecordings/{}/r.wav", env.exotel.base_url(), env.exotel.account_sid());
    let answer = env.process("CA-rec-none", &url).await;
    assert_eq!(answer["recording"]["error"], "no_recognizer", "{answer}");
    assert_eq!(answer["connect"]["destination"]["numbers"], json!([ORDER_DESK]), "{answer}");
}
