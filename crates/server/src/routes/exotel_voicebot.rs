//! `GET /exotel/voicebot`: the WebSocket Exotel's Voicebot applet streams a
//! call's audio to (authenticated by the webhook token in the URL, as every
//! Exotel-facing route), shared_docs §5.
//!
//! This route speaks the protocol and drives the call's stream session
//! ([`crate::voicebot`]): caller audio, keys and mark echoes go into the
//! session's state machine; what it asks for is sent (media in multiples of
//! 320 bytes, marks, `clear`) or run (recognition, the dialog turn,
//! synthesis, as tasks whose results come back into it). When the dialog
//! ends the bot closes the socket, so the flow moves on (its Passthru
//! `after_bot` routes to the goodbye or the order desk).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use mangwale_core::E164;
use mangwale_providers::exotel::voicebot::{InboundEvent, MarkInfo, OutboundEvent, OutboundMedia, StartInfo};
use mangwale_speech::audio::resample;
use mangwale_speech::vad::TurnConfig;
use mangwale_store::NewEvent;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::state::AppState;
use crate::voicebot::jobs::{CallInfo, Measured, Runner};
use crate::voicebot::machine::{Event, Job, JobKind, JobResult, Machine, Note, Outcome, Output, Timings};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/exotel/voicebot", get(upgrade))
}

/// Largest message or frame accepted. Exotel sends ~100 ms of 16-bit PCM
/// per media event (3.2 KB at 8 kHz, 9.6 KB at 24 kHz, base64 in JSON), and
/// caps its own chunks at 100 KB ("Working with the Stream Applet", Exotel
/// support article 3000108630): 256 KiB leaves room for that and no more.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Outgoing data buffered before a send waits, and the most that may be
/// queued for a slow peer (a reply of a few seconds is sent at once).
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
const MAX_WRITE_BUFFER_BYTES: usize = 2 * 1024 * 1024;

/// A stream that sends nothing for this long is closed: during a call Exotel
/// sends a media event about every 100 ms, so silence this long means the
/// peer is gone (a half-open connection would otherwise be held for ever).
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .on_upgrade(move |socket| stream(state, socket))
}

/// What a stream carried, for the timeline.
#[derive(Default)]
struct StreamTally {
    media_frames: u64,
    audio_bytes: u64,
    digits: String,
    malformed: u64,
    barge_ins: u64,
    fillers: u64,
    turns: u64,
}

/// A job's result, with what it measured.
struct Finished {
    job: Job,
    result: JobResult,
    measured: Measured,
    /// When the job was asked for (wall time).
    asked: Instant,
}

/// The stream after its `start`.
struct Call {
    runner: Arc<Runner>,
    info: CallInfo,
    /// The stream's sample rate (8000 unless the applet's URL said otherwise).
    rate: u32,
}

async fn stream(state: AppState, socket: WebSocket) {
    let (mut sink, mut source) = socket.split();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Finished>();
    let mut machine = Machine::new(Timings::default(), TurnConfig::default());
    let mut tally = StreamTally::default();
    let mut call: Option<Call> = None;
    let mut tasks: HashMap<u64, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut reason = "closed".to_string();
    let mut outcome: Option<Outcome> = None;
    loop {
        let outputs = tokio::select! {
            received = tokio::time::timeout(IDLE_TIMEOUT, source.next()) => {
                let message = match received {
                    Ok(Some(Ok(message))) => message,
                    Ok(Some(Err(_)) | None) => break,
                    Err(_) => {
                        reason = "idle timeout".to_string();
                        metrics::counter!("mangwale_voicebot_idle_timeouts_total").increment(1);
                        break;
                    }
                };
                let text = match message {
                    Message::Text(text) => text,
                    Message::Close(_) => break,
                    _ => continue,
                };
                let event = match serde_json::from_str::<InboundEvent>(&text) {
                    Ok(event) => event,
                    Err(e) => {
                        tally.malformed += 1;
                        metrics::counter!("mangwale_voicebot_malformed_total").increment(1);
                        // serde's message names the field, never its value.
                        let call_sid = call.as_ref().map(|c| c.info.call_sid.as_str()).unwrap_or("-");
                        tracing::warn!(error = %e, call_sid, "malformed voicebot message ignored");
                        continue;
                    }
                };
                match event {
                    InboundEvent::Connected => Vec::new(),
                    InboundEvent::Start { start, .. } => {
                        if call.is_some() {
                            tracing::warn!("a second start on one voicebot stream ignored");
                            continue;
                        }
                        let started = started(&state, &start).await;
                        let out = machine.start();
                        call = Some(started);
                        out
                    }
                    InboundEvent::Media { media, .. } => {
                        let Some(c) = &call else { continue };
                        let Some(samples) = decode(&media.payload, c.rate) else {
                            tally.malformed += 1;
                            tracing::warn!(call_sid = %c.info.call_sid, "undecodable voicebot media ignored");
                            continue;
                        };
                        tally.media_frames += 1;
                        tally.audio_bytes += samples.len() as u64 * 2;
                        machine.handle(Event::Audio(samples))
                    }
                    InboundEvent::Dtmf { dtmf, .. } => {
                        let digit = dtmf.digit.trim().to_string();
                        if call.is_none() || digit.len() != 1 || !digit.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#') {
                            tally.malformed += 1;
                            tracing::warn!("a voicebot dtmf event without one key ignored");
                            continue;
                        }
                        tally.digits.push_str(&digit);
                        machine.handle(Event::Dtmf(digit))
                    }
                    InboundEvent::Mark { mark, .. } => machine.handle(Event::Mark(mark.name)),
                    InboundEvent::Stop { stop, .. } => {
                        reason = stop.and_then(|s| s.reason).unwrap_or_else(|| "stopped".to_string());
                        machine.handle(Event::Stop)
                    }
                }
            }
            Some(finished) = done_rx.recv() => {
                tasks.remove(&finished.job.id);
                if let Some(c) = &call {
                    record_job(c, &finished, &mut tally).await;
                }
                machine.handle(Event::Done { job: finished.job.id, result: finished.result })
            }
        };
        let Some(c) = &call else { continue };
        let mut closing = None;
        for output in outputs {
            match output {
                Output::Media(pcm) => {
                    let payload = base64::engine::general_purpose::STANDARD.encode(at_rate(&pcm, c.rate));
                    let media = OutboundEvent::Media {
                        stream_sid: c.info.stream_sid.clone(),
                        media: OutboundMedia { payload },
                    };
                    if send(&mut sink, &media).await.is_err() {
                        reason = "the socket failed while sending".into();
                        closing = Some(None);
                    }
                }
                Output::Mark(name) => {
                    let mark = OutboundEvent::Mark { stream_sid: c.info.stream_sid.clone(), mark: MarkInfo { name } };
                    let _ = send(&mut sink, &mark).await;
                }
                Output::Clear => {
                    let _ = send(&mut sink, &OutboundEvent::Clear { stream_sid: c.info.stream_sid.clone() }).await;
                }
                Output::StartJob(job) => {
                    let runner = c.runner.clone();
                    let done = done_tx.clone();
                    let id = job.id;
                    let task = tokio::spawn(async move {
                        let asked = Instant::now();
                        let (result, measured) = runner.run(&job).await;
                        let _ = done.send(Finished { job, result, measured, asked });
                    });
                    tasks.insert(id, task);
                }
                Output::CancelJob(id) => {
                    if let Some(task) = tasks.remove(&id) {
                        task.abort();
                    }
                }
                Output::Note(note) => note_of(c, note, &mut tally).await,
                Output::Close(how) => closing = Some(Some(how)),
            }
        }
        if let Some(how) = closing {
            outcome = how;
            break;
        }
    }
    for (_, task) in tasks.drain() {
        task.abort();
    }
    let Some(c) = call else { return };
    match &outcome {
        Some(Outcome::HandedOff { by_bot: Some(why) }) => c.runner.hand_off(why).await,
        Some(Outcome::Stopped) | None => c.runner.hang_up().await,
        _ => {}
    }
    let bot_closes = !matches!(outcome, Some(Outcome::Stopped) | None);
    if bot_closes {
        reason = "the bot ended the stream".into();
    }
    let outcome_name = match &outcome {
        Some(Outcome::Completed) => "completed",
        Some(Outcome::HandedOff { .. }) => "order_desk",
        Some(Outcome::Stopped) => "stopped",
        None => "dropped",
    };
    metrics::counter!("mangwale_voicebot_streams_total", "outcome" => outcome_name).increment(1);
    c.runner
        .record(
            "voicebot.stream_ended",
            json!({
                "stream_sid": c.info.stream_sid,
                "reason": reason,
                "outcome": outcome_name,
                "media_frames": tally.media_frames,
                "audio_bytes": tally.audio_bytes,
                "digits": tally.digits,
                "turns": tally.turns,
                "barge_ins": tally.barge_ins,
                "fillers": tally.fillers,
                "malformed_events": tally.malformed,
            }),
        )
        .await;
    // Closed after everything is recorded: the flow's next applet (after_bot)
    // reads what this stream did.
    if bot_closes {
        let close = CloseFrame { code: 1000, reason: "done".into() };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), sink.send(Message::Close(Some(close)))).await;
    }
}

/// The call of a `start`: its session's runner, recorded on the timeline.
async fn started(state: &AppState, start: &StartInfo) -> Call {
    let param =
        |name: &str| start.custom_parameters.get(name).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty());
    let rate = start
        .media_format
        .as_ref()
        .and_then(|f| f.get("sample_rate"))
        .and_then(|r| r.as_str().and_then(|s| s.parse().ok()).or_else(|| r.as_u64().map(|n| n as u32)))
        .filter(|r| [8000, 16000, 24000].contains(r))
        .unwrap_or(8000);
    let info = CallInfo {
        call_sid: start.call_sid.clone(),
        stream_sid: start.stream_sid.clone(),
        phone: start.from.as_deref().and_then(|f| E164::parse(f).ok()),
        store: param("store").map(str::to_string),
        language: param("language").and_then(mangwale_voice::Lang::from_code),
    };
    let event = NewEvent::new("voicebot.stream_started", state.clock.now())
        .call(&start.call_sid)
        .channel("voicebot")
        .detail(json!({
            "stream_sid": start.stream_sid,
            "custom_parameters": start.custom_parameters,
            "media_format": start.media_format,
            "recognizer": state.speech.recognizer.as_ref().map(|r| r.name().to_string()),
            "synthesizer": state.speech.synthesizer.as_ref().map(|s| s.name().to_string()),
        }));
    if let Err(e) = state.store.record_event(event).await {
        tracing::error!(error = %e, "recording a voicebot stream failed");
    }
    let runner = Arc::new(Runner::new(state.clone(), info.clone()));
    Call { runner, info, rate }
}

/// A media payload as 8 kHz samples; `None` when it is not base64 PCM16.
fn decode(payload: &str, rate: u32) -> Option<Vec<i16>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(payload.trim()).ok()?;
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let samples: Vec<i16> = bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    Some(if rate == 8000 { samples } else { resample(&samples, rate, 8000) })
}

/// 8 kHz PCM bytes as the stream's rate (still whole 20 ms frames).
fn at_rate(pcm: &[u8], rate: u32) -> Vec<u8> {
    if rate == 8000 {
        return pcm.to_vec();
    }
    let samples: Vec<i16> = pcm.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    resample(&samples, 8000, rate).iter().flat_map(|s| s.to_le_bytes()).collect()
}

async fn send(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    event: &OutboundEvent,
) -> Result<(), axum::Error> {
    let text = serde_json::to_string(event).unwrap_or_default();
    sink.send(Message::text(text)).await
}

/// A finished job on the timeline (every turn, with its transcript and
/// timings, or why it failed) and in the latency histogram.
async fn record_job(call: &Call, finished: &Finished, tally: &mut StreamTally) {
    let (kind, vad_ms, audio_ms) = match &finished.job.kind {
        JobKind::Start => ("start", None, None),
        JobKind::Speech(u) => {
            ("speech", Some(u.decided_at_ms.saturating_sub(u.ended_at_ms)), Some(u.samples.len() as u64 / 8))
        }
        JobKind::Keys(_) => ("keys", None, None),
        JobKind::Silence => ("silence", None, None),
    };
    tally.turns += 1;
    let total_ms = finished.asked.elapsed().as_millis() as u64;
    let m = &finished.measured;
    let mut detail = json!({
        "job": finished.job.id,
        "input": kind,
        "transcript": m.transcript.as_deref().map(mangwale_core::mask_phone_numbers),
        "keys": match &finished.job.kind { JobKind::Keys(k) => Some(k.clone()), _ => None },
        "timings": {"vad_ms": vad_ms, "asr_ms": m.asr_ms, "dialog_ms": m.dialog_ms, "tts_ms": m.tts_ms, "total_ms": total_ms},
        "audio_ms": audio_ms,
        "stream_ms": finished.job.at_ms,
    });
    match &finished.result {
        JobResult::Failed { why, .. } => {
            detail["failed"] = json!(why);
            metrics::counter!("mangwale_voicebot_turn_failures_total", "input" => kind).increment(1);
        }
        JobResult::Reply { audio, ended, .. } => {
            detail["reply_ms"] = json!(audio.len() as u64 / 8);
            detail["ended"] = json!(ended);
            metrics::histogram!("mangwale_voicebot_turn_latency_seconds", "input" => kind)
                .record((total_ms + vad_ms.unwrap_or(0)) as f64 / 1000.0);
        }
    }
    call.runner.record("voicebot.turn", detail).await;
}

async fn note_of(call: &Call, note: Note, tally: &mut StreamTally) {
    match note {
        Note::BargeIn { at_ms } => {
            tally.barge_ins += 1;
            metrics::counter!("mangwale_voicebot_barge_ins_total").increment(1);
            call.runner.record("voicebot.barge_in", json!({"stream_ms": at_ms})).await;
        }
        Note::Filler { job, at_ms } => {
            tally.fillers += 1;
            metrics::counter!("mangwale_voicebot_fillers_total").increment(1);
            call.runner.record("voicebot.filler", json!({"job": job, "stream_ms": at_ms})).await;
        }
        Note::Fallback { job, why } => {
            metrics::counter!("mangwale_voicebot_fallbacks_total").increment(1);
            tracing::warn!(call_sid = %call.info.call_sid, job, why, "voicebot falls back to the order desk");
        }
        Note::Superseded { job } => {
            call.runner.record("voicebot.reply_superseded", json!({"job": job})).await;
        }
        Note::Ignored { what } => {
            tracing::debug!(call_sid = %call.info.call_sid, what, "input ignored while the last words play");
        }
    }
}
