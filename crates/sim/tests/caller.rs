//! The speaking caller of a Voicebot stream against a small listening bot,
//! over a real WebSocket on the manual clock: the caller waits for the
//! bot's answers, talks over one, presses a key, stays silent, hangs up;
//! the bot hears exactly what was said through the transcript book.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use base64::Engine;
use common::*;
use mangwale_sim::exotel::Utterance;
use mangwale_sim::exotel::{CalleeScript, Cue, FlowConfig, FlowDefinitions, FlowOutcome, SimConfig, StreamDirection};
use mangwale_sim::speech::{TranscriptBook, Voice};
use serde_json::{Value, json};

const TOKEN: &str = "test-webhook-token-0123";
/// The bot's greeting, its answers and its re-ask: 0.6 s, 1 s, 0.4 s.
const GREETING_BYTES: usize = 9_600;
const ANSWER_BYTES: usize = 16_000;
const REASK_BYTES: usize = 6_400;
/// 100 ms frames of silence that end a caller's turn, or prompt a re-ask.
const END_OF_TURN_FRAMES: u32 = 5;
const REASK_FRAMES: u32 = 20;

#[derive(Default)]
struct Heard {
    transcripts: Vec<String>,
    digits: String,
    clears: u32,
    reasks: u32,
}

#[derive(Clone)]
struct Bot {
    book: TranscriptBook,
    heard: Arc<Mutex<Heard>>,
}

/// A pattern the caller can be found to have heard: `n` bytes of a square wave.
fn tone(n: usize, level: i16) -> Vec<u8> {
    (0..n / 2).flat_map(|i| if (i / 8) % 2 == 0 { level } else { -level }.to_le_bytes()).collect()
}

fn media(sid: &str, pcm: &[u8]) -> Message {
    let payload = base64::engine::general_purpose::STANDARD.encode(pcm);
    Message::Text(json!({"event": "media", "stream_sid": sid, "media": {"payload": payload}}).to_string().into())
}

fn mark(sid: &str, name: &str) -> Message {
    Message::Text(json!({"event": "mark", "stream_sid": sid, "mark": {"name": name}}).to_string().into())
}

async fn upgrade(State(bot): State<Bot>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| listen(bot, socket))
}

/// Greets; finds the end of each caller turn by energy (half a second of
/// silence), recognises it through the book and answers after a moment of
/// real-time "thinking"; answers keys; re-asks after 2 s of silence;
/// clears its audio when the caller talks over it.
async fn listen(bot: Bot, mut socket: WebSocket) {
    let (reply_tx, mut replies) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut sid = String::new();
    let mut speaking = false;
    let mut utterance: Vec<i16> = Vec::new();
    let mut silent_frames = 0u32;
    let mut quiet_since_answer = 0u32;
    let mut answers = 0u32;
    loop {
        let message = tokio::select! {
            Some(()) = replies.recv() => {
                answers += 1;
                let _ = socket.send(media(&sid, &tone(ANSWER_BYTES, 6000))).await;
                let _ = socket.send(mark(&sid, &format!("answer-{answers}"))).await;
                speaking = true;
                continue;
            }
            message = socket.recv() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_))) => continue,
            _ => break,
        };
        let frame: Value = serde_json::from_str(text.as_str()).unwrap();
        match frame["event"].as_str().unwrap_or_default() {
            "start" => {
                sid = frame["stream_sid"].as_str().unwrap().to_string();
                socket.send(media(&sid, &tone(GREETING_BYTES, 7000))).await.unwrap();
                socket.send(mark(&sid, "greeting")).await.unwrap();
                speaking = true;
            }
            "mark" => {
                speaking = false;
                quiet_since_answer = 0;
            }
            "media" => {
                let pcm = base64::engine::general_purpose::STANDARD.decode(frame["media"]["payload"].as_str().unwrap());
                let samples: Vec<i16> = pcm.unwrap().chunks(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
                let voiced = samples.iter().any(|s| s.unsigned_abs() > 300);
                if voiced {
                    if speaking {
                        socket
                            .send(Message::Text(json!({"event": "clear", "stream_sid": sid}).to_string().into()))
                            .await
                            .unwrap();
                        bot.heard.lock().unwrap().clears += 1;
                        speaking = false;
                    }
                    silent_frames = 0;
                    quiet_since_answer = 0;
                    utterance.extend_from_slice(&samples);
                    continue;
                }
                if !utterance.is_empty() {
                    utterance.extend_from_slice(&samples);
                    silent_frames += 1;
                    if silent_frames == END_OF_TURN_FRAMES {
                        let text = bot.book.transcribe(&utterance, 8000).map(|(t, _)| t).unwrap_or_default();
                        bot.heard.lock().unwrap().transcripts.push(text);
                        utterance.clear();
                        // Recognition and synthesis take real time.
                        let tx = reply_tx.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(30)).await;
                            let _ = tx.send(());
                        });
                    }
                } else if !speaking {
                    quiet_since_answer += 1;
                    if quiet_since_answer == REASK_FRAMES {
                        bot.heard.lock().unwrap().reasks += 1;
                        socket.send(media(&sid, &tone(REASK_BYTES, 5000))).await.unwrap();
                        socket.send(mark(&sid, "reask")).await.unwrap();
                        speaking = true;
                    }
                }
            }
            "dtmf" => {
                bot.heard.lock().unwrap().digits.push_str(frame["dtmf"]["digit"].as_str().unwrap());
                let _ = reply_tx.send(());
            }
            "stop" => break,
            _ => {}
        }
    }
}

fn espeak_runs() -> bool {
    std::process::Command::new("espeak-ng").arg("--version").output().is_ok_and(|o| o.status.success())
}

fn wav_samples(wav: &[u8]) -> Vec<i16> {
    wav[44..].chunks(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

#[tokio::test]
async fn a_caller_listens_talks_over_an_answer_presses_a_key_stays_silent_and_hangs_up() {
    let book = TranscriptBook::new();
    let bot = Bot { book: book.clone(), heard: Arc::default() };
    let app = Router::new().route("/exotel/voicebot", get(upgrade)).with_state(bot.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let flows = FlowConfig::new(url.clone(), Some(TOKEN.to_string()), FlowDefinitions::repository().unwrap())
        .with_caller_voice(Voice::espeak());
    let sim = sim_with(SimConfig { flows: Some(flows), transcripts: book.clone(), ..config_at(START) }).await;
    sim.script(
        CUSTOMER,
        CalleeScript::answers_after(Duration::from_secs(1))
            .never_hangs_up()
            .turn(Utterance::after_reply("", "do misal pav").in_language("en"))
            .turn(Utterance::timed("", "haan").cue(Cue::BargeIn { after_ms: 300 }))
            .turn(Utterance::after_reply("", "").then_presses("1"))
            .turn(Utterance::after_reply("", "").pause(Duration::from_secs(3)))
            .turn(Utterance::after_reply("", "bas"))
            .turn(Utterance::timed("", "").pause(Duration::from_secs(2)).then_hangs_up()),
    )
    .unwrap();
    let stream_url = format!("{}/exotel/voicebot?token={TOKEN}", url.replace("http", "ws"));
    let (status, body) = json(
        post(
            &sim,
            "/Calls/connect.json",
            &[("From", CUSTOMER), ("CallerId", EXOPHONE), ("StreamUrl", &stream_url), ("StreamType", "bidirectional")],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sid = body["Call"]["Sid"].as_str().unwrap().to_string();
    sim.advance(Duration::from_secs(60)).await;

    // The bot heard each sentence exactly, the key, and a caller who talked over it.
    {
        let heard = bot.heard.lock().unwrap();
        assert_eq!(heard.transcripts, ["do misal pav", "haan", "bas"]);
        assert_eq!(heard.digits, "1");
        assert_eq!(heard.clears, 1, "the barge-in");
        assert_eq!(heard.reasks, 1, "the silence");
    }

    let stream = &sim.voicebot_streams(&sid)[0];
    assert_eq!((stream.stop_reason.as_deref(), stream.disconnected_by.as_deref()), (Some("callended"), Some("user")));
    let run = sim.flow_run(&sid).unwrap();
    assert!(matches!(run.outcome, Some(FlowOutcome::CallEnded { .. })), "{:?}", run.outcome);
    assert!(sim.call(&sid).unwrap().ended_at.is_some(), "the call ended with the hang-up");

    // The turns as taken: after the greeting, over the first answer, ...
    let turns = &stream.caller_turns;
    assert_eq!(turns.len(), 6, "{turns:?}");
    let voice = if espeak_runs() { "espeak-ng en" } else { "tones" };
    assert_eq!(turns[0].voice.as_deref(), Some(voice), "{:?}", turns[0]);
    assert!(turns.iter().all(|t| t.note.is_none() || voice == "tones"), "{turns:?}");
    assert!(turns[0].registered && turns[1].registered && turns[4].registered);
    let bot_media: Vec<_> = stream.events_of(StreamDirection::FromBot, "media");
    let greeting_end = stream.started_at + chrono::Duration::milliseconds(600);
    assert_eq!(turns[0].at, greeting_end + chrono::Duration::milliseconds(500), "after the greeting and a pause");
    let first_answer = bot_media[1].at;
    assert!(first_answer > turns[0].at, "the answer came after the words");
    assert_eq!(turns[1].at, first_answer + chrono::Duration::milliseconds(300), "300 ms into the answer");
    let clear = stream.events_of(StreamDirection::FromBot, "clear")[0].at;
    assert!(clear > turns[1].at && clear <= turns[1].at + chrono::Duration::milliseconds(200), "{clear}");
    assert_eq!(turns[2].digits, "1");
    assert_eq!((turns[3].text.as_str(), turns[3].voice.as_deref()), ("", None), "silence");
    assert!(turns[4].at >= turns[3].at + chrono::Duration::seconds(3), "after the silence");
    assert!(turns[5].hang_up);
    let stop = stream.events_of(StreamDirection::ToBot, "stop")[0].at;
    assert_eq!(stop, turns[5].at + chrono::Duration::seconds(2));

    // What the caller heard: the greeting from the start, the first answer
    // cut where it was cleared.
    let heard = sim.recording(&format!("{}-heard", stream.stream_sid)).expect("what the caller heard");
    assert_eq!(
        stream.heard_url.as_deref(),
        Some(format!("{}/_sim/recordings/{}-heard.wav", sim.base_url(), stream.stream_sid).as_str())
    );
    let samples = wav_samples(&heard);
    assert_eq!(&samples[..4800], wav_samples(&[vec![0; 44], tone(GREETING_BYTES, 7000)].concat()));
    let cut = ((clear - stream.started_at).num_milliseconds() * 8) as usize;
    let answer_start = ((first_answer - stream.started_at).num_milliseconds() * 8) as usize;
    assert!(samples[answer_start..cut].iter().all(|s| s.unsigned_abs() == 6000));
    assert!(samples[cut..cut + 800].iter().all(|s| *s == 0), "cleared audio never played");
    let response = client().get(stream.heard_url.as_deref().unwrap()).send().await.unwrap();
    assert_eq!(response.status(), 200);
}
