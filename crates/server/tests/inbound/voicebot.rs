//! The Voicebot stream end to end (issue 12, item 3): a test client that
//! plays Exotel's side of shared_docs §5 exactly (connected, start, media
//! every 100 ms of stream time, dtmf, mark echoes once the audio before
//! them has played, clear honoured, stop), the caller's words spoken by
//! espeak-ng, a recogniser that answers the transcript the test scripted,
//! and a tone synthesiser. Time is the stream's: the client sends audio
//! frame by frame and waits for the bot only where the bot's state machine
//! has started a job (it runs the same VAD on the same audio to know
//! where), so nothing sleeps on the wall clock.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use mangwale_core::ladder::LadderState;
use mangwale_server::speech::Speech;
use mangwale_speech::vad::{TurnConfig, TurnDetector, VadEvent};
use mangwale_voice::Lang;
use mangwale_voice::speech::{Pcm16, RecognitionHints, Recognizer, SampleRate, SpeechError, Synthesizer, Transcript};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::{SimEnv, TOKEN};

const ORDER_DESK: &str = "+919812300011";
/// Rahul Kulkarni of the demo data (a home address on College Road), as
/// Exotel writes a caller: national form.
const RAHUL: &str = "07207687342";
/// Longest a test waits for the bot's answer to a job (real time).
const PATIENCE: Duration = Duration::from_secs(15);

/// What the recogniser answers, in order: a transcript or a failure.
#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<Result<String, SpeechError>>>,
    hints: Mutex<Vec<RecognitionHints>>,
    /// Recognitions wait for a permit when set (a slow recogniser).
    gate: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
}

struct ScriptedRecognizer(Arc<Script>);

#[async_trait]
impl Recognizer for ScriptedRecognizer {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn recognize(&self, audio: &Pcm16, hints: &RecognitionHints) -> Result<Transcript, SpeechError> {
        assert!(audio.samples.len() > 4000, "the utterance's audio reaches the recogniser");
        self.0.hints.lock().unwrap().push(hints.clone());
        let gate = self.0.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.acquire().await.unwrap().forget();
        }
        let answer = self.0.answers.lock().unwrap().pop_front().expect("a scripted transcript");
        answer.map(|text| Transcript { text, language: hints.language.unwrap_or(Lang::Hi), confidence: 0.9 })
    }
}

/// Speaks any text as a tone, 10 ms per character, and remembers the texts.
#[derive(Default)]
struct ToneSynth {
    said: Mutex<Vec<String>>,
}

struct SharedSynth(Arc<ToneSynth>);

#[async_trait]
impl Synthesizer for SharedSynth {
    fn name(&self) -> &str {
        "tone"
    }

    async fn synthesize(&self, text: &str, _: Lang, rate: SampleRate) -> Result<Pcm16, SpeechError> {
        self.0.said.lock().unwrap().push(text.to_string());
        let n = text.chars().count() * rate.hz() as usize / 100 + 1;
        let samples = (0..n).map(|i| if (i / 10) % 2 == 0 { 3000 } else { -3000 }).collect();
        Ok(Pcm16 { sample_rate: rate, samples })
    }
}

struct Harness {
    env: SimEnv,
    script: Arc<Script>,
    synth: Arc<ToneSynth>,
}

async fn harness(recognizer: bool) -> Harness {
    let script = Arc::new(Script::default());
    let synth = Arc::new(ToneSynth::default());
    let speech = Speech {
        recognizer: recognizer.then(|| Arc::new(ScriptedRecognizer(script.clone())) as Arc<dyn Recognizer>),
        synthesizer: Some(Arc::new(SharedSynth(synth.clone()))),
        ..Speech::none()
    };
    let env = SimEnv::builder().var("ORDER_DESK_PHONE", ORDER_DESK).speech(speech).start().await;
    Harness { env, script, synth }
}

impl Harness {
    fn answers(&self, answers: &[&str]) {
        self.script.answers.lock().unwrap().extend(answers.iter().map(|a| Ok(a.to_string())));
    }

    /// What the passthru after the bot answers for `call`: 200 or 302.
    async fn after_bot(&self, call: &str) -> u16 {
        let url = self
            .env
            .app
            .exotel_url(&format!("/exotel/applet/passthru?CallSid={call}&flow=customer_voice_order&step=after_bot"));
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        client.get(url).send().await.unwrap().status().as_u16()
    }

    async fn events(&self, kind: &str) -> Vec<Value> {
        self.env.all_events().await.into_iter().filter(|e| e.kind == kind).map(|e| e.detail).collect()
    }
}

/// Speech by espeak-ng at 8 kHz, without its leading and trailing silence.
async fn spoken(text: &str) -> Vec<i16> {
    let (rate, samples) = mangwale_speech::espeak::Espeak::default().render(text, "hi").await.expect("espeak-ng");
    let samples = mangwale_speech::audio::resample(&samples, rate, 8000);
    let first = samples.iter().position(|s| s.unsigned_abs() > 100).unwrap_or(0);
    let last = samples.iter().rposition(|s| s.unsigned_abs() > 100).unwrap_or(0);
    samples[first..=last].to_vec()
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Exotel's side of one stream.
struct Exotel {
    ws: Ws,
    stream_sid: String,
    /// Stream time: ms of caller audio sent.
    now_ms: u64,
    /// Audio queued to play: (start, end) ms, and marks at their time.
    queue: VecDeque<Queued>,
    queue_end: u64,
    /// Every bot frame: its event name, and the media's byte count.
    frames: Vec<(String, usize)>,
    marks_seen: usize,
    closed: bool,
    vad: TurnDetector,
    ping: u64,
}

enum Queued {
    Audio { end: u64 },
    Mark { at: u64, name: String },
}

impl Exotel {
    async fn connect(env: &SimEnv, call: &str, custom: Value) -> Exotel {
        let url =
            format!("{}/exotel/voicebot?flow=customer_voice_order&token={TOKEN}", env.app.base.replace("http", "ws"));
        // No Nagle: a ping right after a media frame must not wait for an ACK.
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await.unwrap();
        let stream_sid = format!("st-{call}");
        let mut exotel = Exotel {
            ws,
            stream_sid: stream_sid.clone(),
            now_ms: 0,
            queue: VecDeque::new(),
            queue_end: 0,
            frames: Vec::new(),
            marks_seen: 0,
            closed: false,
            vad: TurnDetector::new(TurnConfig::default()),
            ping: 0,
        };
        exotel.send(json!({"event": "connected"})).await;
        let mut custom_parameters = json!({"flow": "customer_voice_order", "token": TOKEN});
        if let (Value::Object(params), Value::Object(extra)) = (&mut custom_parameters, custom) {
            params.extend(extra);
        }
        exotel
            .send(json!({
                "event": "start", "sequence_number": 1, "stream_sid": stream_sid,
                "start": {
                    "stream_sid": stream_sid, "call_sid": call, "account_sid": "mangwalesim1",
                    "from": RAHUL, "to": "08047112233", "custom_parameters": custom_parameters,
                    "media_format": {"encoding": "raw", "sample_rate": "8000", "bit_rate": "128kbps"}
                }
            }))
            .await;
        exotel
    }

    async fn send(&mut self, frame: Value) {
        self.ws.send(Message::text(frame.to_string())).await.unwrap();
    }

    /// Applies one bot frame.
    fn on_frame(&mut self, text: &str) {
        let frame: Value = serde_json::from_str(text).expect("the bot sends JSON");
        let event = frame["event"].as_str().unwrap().to_string();
        assert_eq!(frame["stream_sid"], self.stream_sid.as_str(), "{frame}");
        let tail = self.queue_end.max(self.now_ms);
        match event.as_str() {
            "media" => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(frame["media"]["payload"].as_str().unwrap())
                    .unwrap();
                self.frames.push((event, bytes.len()));
                self.queue_end = tail + bytes.len() as u64 / 16;
                self.queue.push_back(Queued::Audio { end: self.queue_end });
                return;
            }
            "mark" => {
                let name = frame["mark"]["name"].as_str().unwrap().to_string();
                self.queue.push_back(Queued::Mark { at: tail, name });
            }
            "clear" => {
                let marks: Vec<String> = self
                    .queue
                    .drain(..)
                    .filter_map(|q| match q {
                        Queued::Mark { name, .. } => Some(name),
                        Queued::Audio { .. } => None,
                    })
                    .collect();
                self.queue_end = self.now_ms;
                // Exotel echoes the marks of cleared audio at once.
                for name in marks {
                    self.queue.push_back(Queued::Mark { at: self.now_ms, name });
                }
            }
            other => panic!("the bot sent {other}"),
        }
        self.frames.push((event, 0));
    }

    /// Reads the bot's frames until the pong of a ping sent now.
    async fn sync(&mut self) {
        if self.closed {
            return;
        }
        self.ping += 1;
        let token = self.ping.to_be_bytes().to_vec();
        if self.ws.send(Message::Ping(token.clone().into())).await.is_err() {
            self.closed = true;
            return;
        }
        loop {
            match tokio::time::timeout(PATIENCE, self.ws.next()).await.expect("the bot answers a ping") {
                Some(Ok(Message::Pong(p))) if p.as_ref() == token.as_slice() => break,
                Some(Ok(Message::Text(text))) => self.on_frame(text.as_str()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    self.closed = true;
                    break;
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// Echoes the marks whose audio has played by now.
    async fn play(&mut self) {
        while let Some(front) = self.queue.front() {
            match front {
                Queued::Audio { end } if *end <= self.now_ms => {
                    self.queue.pop_front();
                }
                Queued::Mark { at, .. } if *at <= self.now_ms => {
                    let Some(Queued::Mark { name, .. }) = self.queue.pop_front() else { unreachable!() };
                    if !self.closed {
                        self.send(json!({"event": "mark", "sequence_number": 0, "stream_sid": self.stream_sid, "mark": {"name": name}}))
                            .await;
                    }
                }
                _ => break,
            }
        }
    }

    /// One 100 ms media frame of caller audio; whether the bot's state
    /// machine ended a turn on it (as the same VAD decides).
    async fn frame(&mut self, samples: &[i16]) -> bool {
        assert_eq!(samples.len(), 800);
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let payload = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.now_ms += 100;
        let chunk = self.now_ms / 100;
        self.send(json!({"event": "media", "sequence_number": chunk + 1, "stream_sid": self.stream_sid,
            "media": {"chunk": chunk, "timestamp": (self.now_ms).to_string(), "payload": payload}}))
            .await;
        let turn = self.vad.push(samples).iter().any(|e| matches!(e, VadEvent::Turn(_)));
        self.sync().await;
        self.play().await;
        turn
    }

    async fn silence(&mut self, ms: u64) {
        for _ in 0..ms / 100 {
            self.frame(&[0; 800]).await;
        }
    }

    /// Waits (real time) until the bot has sent one more mark than before,
    /// or closed; then plays on (silence) until that mark has played.
    async fn reply(&mut self) {
        let want = self.marks_seen + 1;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.marks() < want && !self.closed {
            match tokio::time::timeout_at(deadline, self.ws.next()).await.expect("the bot replies") {
                Some(Ok(Message::Text(text))) => self.on_frame(text.as_str()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => self.closed = true,
                Some(Ok(_)) => {}
            }
        }
        self.marks_seen = self.marks();
        self.sync().await;
        while self.queue.iter().any(|q| matches!(q, Queued::Mark { .. })) && !self.closed {
            self.frame(&[0; 800]).await;
        }
    }

    fn marks(&self) -> usize {
        self.frames.iter().filter(|(e, _)| e == "mark").count()
    }

    /// Says `text` (then silence) until the bot's VAD ends the turn; waits
    /// for the reply and plays it.
    async fn say(&mut self, text: &str) {
        let mut audio = spoken(text).await;
        audio.resize(audio.len().div_ceil(800) * 800 + 8000, 0);
        for frame in audio.chunks(800) {
            if self.frame(frame).await {
                return self.reply().await;
            }
        }
        panic!("no end of turn for {text:?}");
    }

    async fn key(&mut self, digit: &str) {
        self.send(json!({"event": "dtmf", "sequence_number": 0, "stream_sid": self.stream_sid, "dtmf": {"digit": digit, "duration": "100"}}))
            .await;
        self.reply().await;
    }

    /// Plays silence until the bot closes (at most `ms`).
    async fn until_closed(&mut self, ms: u64) {
        for _ in 0..ms / 100 {
            if self.closed {
                return;
            }
            self.frame(&[0; 800]).await;
        }
        assert!(self.closed, "the bot closes the stream");
    }

    fn sent(&self, event: &str) -> usize {
        self.frames.iter().filter(|(e, _)| e == event).count()
    }

    fn media_sizes(&self) -> Vec<usize> {
        self.frames.iter().filter(|(e, _)| e == "media").map(|(_, n)| *n).collect()
    }
}

fn all_multiples_of_320(sizes: &[usize]) -> bool {
    !sizes.is_empty() && sizes.iter().all(|n| *n > 0 && n % 320 == 0 && *n <= 100_000)
}

#[tokio::test]
async fn a_caller_orders_by_voice_and_keys_and_the_flow_thanks_them() {
    let h = harness(true).await;
    h.answers(&["godavari se", "do plate misal aur ek cutting chai", "bas itna hi"]);
    let call = "CA-vb-order";
    let mut exotel = Exotel::connect(&h.env, call, json!({})).await;
    exotel.reply().await;
    exotel.say("godavari se").await;
    exotel.say("do plate misal aur ek cutting chai").await;
    exotel.say("bas itna hi").await;
    let read_back = h.synth.said.lock().unwrap().last().cloned().unwrap();
    assert!(read_back.contains("1 haan, 2 nahi") || read_back.contains("1 हाँ"), "{read_back}");
    // Keys answer the questions: confirm, the saved address, cash on delivery.
    exotel.key("1").await;
    exotel.key("1").await;
    exotel.key("1").await;
    let placed = h.synth.said.lock().unwrap().last().cloned().unwrap();
    assert!(placed.to_lowercase().contains("order"), "{placed}");
    // 2: nothing else; the goodbye plays, then the bot closes.
    exotel.key("2").await;
    exotel.until_closed(5000).await;
    assert!(all_multiples_of_320(&exotel.media_sizes()), "{:?}", exotel.media_sizes());

    // The order is in Jupiter with its lines, and its vendor ladder starts.
    let session = h.env.app.state.store.voice_session(call).await.unwrap().unwrap();
    assert_eq!(session.status.name(), "placed");
    let demo = mangwale_sim::jupiter::DemoData::nashik().unwrap();
    let created: Vec<_> = h.env.jupiter.data().orders.into_iter().filter(|o| demo.order(o.id).is_none()).collect();
    assert_eq!(created.len(), 1);
    let lines: Vec<(u64, f64)> = created[0].items.iter().map(|l| (l.item_id, l.quantity)).collect();
    assert_eq!(lines, [(7001, 2.0), (7012, 1.0)]);
    assert_eq!(created[0].payment_method, "cash_on_delivery");
    h.env.run_jobs().await;
    let ladder = h.env.ladder(&format!("vendor_order_{}", created[0].id)).await;
    assert_eq!(ladder.state, LadderState::Active);

    // The store's items were the recogniser's hints once it was chosen.
    let hints = h.script.hints.lock().unwrap().clone();
    assert_eq!(hints.len(), 3);
    assert!(hints[1].phrases.iter().any(|p| p.to_lowercase().contains("misal")), "{:?}", hints[1]);
    // Every turn on the timeline, with its transcript and timings.
    let turns = h.events("voicebot.turn").await;
    let inputs: Vec<&str> = turns.iter().map(|t| t["input"].as_str().unwrap()).collect();
    assert_eq!(inputs, ["start", "speech", "speech", "speech", "keys", "keys", "keys", "keys"]);
    assert_eq!(turns[2]["transcript"], "do plate misal aur ek cutting chai");
    assert!(turns[2]["timings"]["vad_ms"].as_u64().unwrap() >= 600, "{}", turns[2]);
    assert!(turns[2]["timings"]["asr_ms"].is_u64() && turns[2]["timings"]["tts_ms"].is_u64(), "{}", turns[2]);
    let ended = h.events("voicebot.stream_ended").await;
    assert_eq!(ended[0]["outcome"], "completed", "{}", ended[0]);
    // The flow goes on to the thank-you: 200.
    assert_eq!(h.after_bot(call).await, 200);
}

#[tokio::test]
async fn a_caller_who_speaks_over_the_greeting_stops_it_and_is_heard() {
    let h = harness(true).await;
    h.answers(&["godavari se"]);
    let call = "CA-vb-barge";
    let mut exotel = Exotel::connect(&h.env, call, json!({})).await;
    // The greeting arrives and starts playing; 300 ms in, the caller talks.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while exotel.marks() == 0 {
        let message = tokio::time::timeout_at(deadline, exotel.ws.next()).await.unwrap().unwrap().unwrap();
        if let Message::Text(text) = message {
            exotel.on_frame(text.as_str());
        }
    }
    exotel.marks_seen = 1;
    exotel.silence(300).await;
    assert_eq!(exotel.sent("clear"), 0);
    exotel.say("godavari se").await;
    assert_eq!(exotel.sent("clear"), 1, "the greeting was cleared");
    let barged = h.events("voicebot.barge_in").await;
    assert_eq!(barged.len(), 1);
    // The words were the next turn: the store is chosen.
    let session = h.env.app.state.store.voice_session(call).await.unwrap().unwrap();
    assert!(session.dialog.contains("Godavari"), "the store was chosen");
    assert!(all_multiples_of_320(&exotel.media_sizes()));
}

#[tokio::test]
async fn silence_is_asked_about_twice_then_the_order_desk_takes_over() {
    let h = harness(true).await;
    let call = "CA-vb-silent";
    let mut exotel = Exotel::connect(&h.env, call, json!({})).await;
    exotel.reply().await;
    let asked = h.synth.said.lock().unwrap().len();
    // 7 s of silence after each prompt: "sorry, once more", twice.
    for _ in 0..2 {
        exotel.silence(7000).await;
        exotel.reply().await;
    }
    let said = h.synth.said.lock().unwrap().clone();
    assert_eq!(said.len(), asked + 2, "{said:?}");
    exotel.silence(7000).await;
    exotel.reply().await;
    exotel.until_closed(3000).await;
    let session = h.env.app.state.store.voice_session(call).await.unwrap().unwrap();
    assert_eq!(session.status.name(), "handed_off");
    let turns = h.events("voicebot.turn").await;
    assert_eq!(turns.iter().filter(|t| t["input"] == "silence").count(), 3);
    // The flow goes to the order desk: 302.
    assert_eq!(h.after_bot(call).await, 302);
}

#[tokio::test]
async fn a_recogniser_that_fails_gets_a_sentence_and_the_order_desk() {
    let h = harness(true).await;
    h.script.answers.lock().unwrap().push_back(Err(SpeechError::Unavailable("connection refused".into())));
    let call = "CA-vb-asr-down";
    let mut exotel = Exotel::connect(&h.env, call, json!({})).await;
    exotel.reply().await;
    let before = exotel.sent("media");
    exotel.say("do plate misal").await;
    exotel.until_closed(3000).await;
    assert!(exotel.sent("media") > before, "the trouble sentence (prepared at the start) was said");
    let turns = h.events("voicebot.turn").await;
    let failed = turns.iter().find(|t| t["input"] == "speech").unwrap();
    assert!(failed["failed"].as_str().unwrap().contains("connection refused"), "{failed}");
    assert_eq!(h.events("voicebot.fallback").await.len(), 1);
    let session = h.env.app.state.store.voice_session(call).await.unwrap().unwrap();
    assert_eq!(session.status.name(), "handed_off");
    assert_eq!(h.after_bot(call).await, 302);
}

#[tokio::test]
async fn a_slow_reply_gets_the_filler_and_then_the_reply() {
    let h = harness(true).await;
    h.answers(&["godavari se"]);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *h.script.gate.lock().unwrap() = Some(gate.clone());
    let call = "CA-vb-slow";
    let mut exotel = Exotel::connect(&h.env, call, json!({})).await;
    exotel.reply().await;
    let mut audio = spoken("godavari se").await;
    audio.resize(audio.len().div_ceil(800) * 800 + 8000, 0);
    let mut frames = audio.chunks(800);
    for frame in &mut frames {
        if exotel.frame(frame).await {
            break;
        }
    }
    // 700 ms after the end of the turn the filler starts.
    exotel.silence(600).await;
    assert_eq!(exotel.marks(), 1);
    exotel.silence(100).await;
    assert_eq!(exotel.marks(), 2, "the filler and its mark");
    assert_eq!(h.events("voicebot.filler").await.len(), 1);
    exotel.marks_seen = 2;
    gate.add_permits(1);
    exotel.reply().await;
    assert_eq!(exotel.marks(), 3);
    let said = h.synth.said.lock().unwrap().clone();
    assert!(said.iter().any(|t| t.contains("Godavari") || t.contains("गोदावरी")), "{said:?}");
}

#[tokio::test]
async fn without_a_recogniser_the_caller_hears_so_and_goes_to_the_order_desk() {
    let h = harness(false).await;
    let call = "CA-vb-no-asr";
    let mut exotel = Exotel::connect(&h.env, call, json!({"language": "en"})).await;
    exotel.reply().await;
    exotel.until_closed(2000).await;
    let said = h.synth.said.lock().unwrap().clone();
    assert!(said.iter().any(|t| t.contains("can't take orders by voice")), "{said:?}");
    assert_eq!(h.after_bot(call).await, 302);
}

#[tokio::test]
async fn a_malformed_message_is_ignored_and_the_stream_goes_on() {
    let h = harness(true).await;
    let call = "CA-vb-malformed";
    // The applet's URL names the store (Godavari Misal House).
    let mut exotel = Exotel::connect(&h.env, call, json!({"store": "7"})).await;
    exotel.reply().await;
    let said = h.synth.said.lock().unwrap().clone();
    assert!(said.iter().any(|t| t.contains("Godavari") || t.contains("गोदावरी")), "{said:?}");
    for garbage in [
        "not json".to_string(),
        json!({"event": "media", "stream_sid": "x"}).to_string(),
        json!({"event": "media", "stream_sid": "x", "media": {"payload": "%%%"}}).to_string(),
        json!({"event": "dtmf", "stream_sid": "x", "dtmf": {"digit": "12"}}).to_string(),
        json!({"event": "teleport"}).to_string(),
    ] {
        exotel.ws.send(Message::text(garbage)).await.unwrap();
    }
    exotel.silence(200).await;
    assert!(!exotel.closed);
    // A key still works: 2 before any item ends the call with a goodbye.
    exotel.key("2").await;
    exotel.until_closed(3000).await;
    let ended = h.events("voicebot.stream_ended").await;
    assert_eq!(ended[0]["malformed_events"], 5, "{}", ended[0]);
    assert_eq!(ended[0]["outcome"], "completed");
    assert!(
        !serde_json::to_string(&h.env.all_events().await.iter().map(|e| &e.detail).collect::<Vec<_>>())
            .unwrap()
            .contains("7207687342")
    );
}
