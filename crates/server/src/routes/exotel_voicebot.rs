//! `GET /exotel/voicebot`: the WebSocket Exotel's Voicebot applet streams a
//! call's audio to (authenticated by the webhook token in the URL, as every
//! Exotel-facing route).
//!
//! This layer speaks the protocol and records the stream on the timeline.
//! The voice-ordering dialog builds on it; until a dialog is attached, the
//! bot ends the stream right after `start`, so the flow moves on to its next
//! applet instead of holding the caller in silence.

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use mangwale_providers::exotel::voicebot::InboundEvent;
use mangwale_store::NewEvent;
use serde_json::json;

use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/exotel/voicebot", get(upgrade))
}

/// Largest message or frame accepted. Exotel sends ~100 ms of 16-bit PCM
/// per media event (3.2 KB at 8 kHz, 9.6 KB at 24 kHz, base64 in JSON), and
/// caps its own chunks at 100 KB ("Working with the Stream Applet", Exotel
/// support article 3000108630): 256 KiB leaves room for that and no more.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Outgoing data buffered before a send waits, and the most that may be
/// queued for a slow peer.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
const MAX_WRITE_BUFFER_BYTES: usize = 256 * 1024;

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
    call_sid: Option<String>,
    stream_sid: Option<String>,
    media_frames: u64,
    audio_bytes: u64,
    digits: String,
    malformed: u64,
}

async fn stream(state: AppState, mut socket: WebSocket) {
    let mut tally = StreamTally::default();
    let mut reason = "closed".to_string();
    loop {
        let message = match tokio::time::timeout(IDLE_TIMEOUT, socket.recv()).await {
            Ok(Some(message)) => message,
            Ok(None) => break,
            Err(_) => {
                reason = "idle timeout".to_string();
                metrics::counter!("mangwale_voicebot_idle_timeouts_total").increment(1);
                let close = CloseFrame { code: 1000, reason: reason.clone().into() };
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(1), socket.send(Message::Close(Some(close))))
                        .await;
                break;
            }
        };
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        let event = match serde_json::from_str::<InboundEvent>(&text) {
            Ok(event) => event,
            Err(e) => {
                tally.malformed += 1;
                tracing::warn!(error = %e, call_sid = tally.call_sid.as_deref().unwrap_or("-"), "malformed voicebot event");
                continue;
            }
        };
        match event {
            InboundEvent::Connected | InboundEvent::Mark { .. } => {}
            InboundEvent::Start { start, .. } => {
                tally.call_sid = Some(start.call_sid.clone());
                tally.stream_sid = Some(start.stream_sid.clone());
                let event = NewEvent::new("voicebot.stream_started", state.clock.now())
                    .call(&start.call_sid)
                    .channel("voicebot")
                    .detail(json!({
                        "stream_sid": start.stream_sid,
                        "custom_parameters": start.custom_parameters,
                        "media_format": start.media_format,
                    }));
                if let Err(e) = state.store.record_event(event).await {
                    tracing::error!(error = %e, "recording a voicebot stream failed");
                }
                // No dialog is attached at this layer: end the stream so the
                // flow continues.
                reason = "no voice dialog attached".to_string();
                let _ =
                    socket.send(Message::Close(Some(CloseFrame { code: 1000, reason: reason.clone().into() }))).await;
            }
            InboundEvent::Media { media, .. } => {
                tally.media_frames += 1;
                tally.audio_bytes += (media.payload.len() as u64 * 3) / 4;
            }
            InboundEvent::Dtmf { dtmf, .. } => tally.digits.push_str(&dtmf.digit),
            InboundEvent::Stop { stop, .. } => {
                reason = stop.and_then(|s| s.reason).unwrap_or_else(|| "stopped".to_string());
                break;
            }
        }
    }
    if let Some(call_sid) = &tally.call_sid {
        let event = NewEvent::new("voicebot.stream_ended", state.clock.now())
            .call(call_sid)
            .channel("voicebot")
            .detail(json!({
                "stream_sid": tally.stream_sid,
                "reason": reason,
                "media_frames": tally.media_frames,
                "audio_bytes": tally.audio_bytes,
                "digits": tally.digits,
                "malformed_events": tally.malformed,
            }));
        if let Err(e) = state.store.record_event(event).await {
            tracing::error!(error = %e, "recording the end of a voicebot stream failed");
        }
    }
}
