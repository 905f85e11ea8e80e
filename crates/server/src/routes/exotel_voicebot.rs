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

async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(1 << 20).on_upgrade(move |socket| stream(state, socket))
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
    while let Some(message) = socket.recv().await {
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
