//! The Voicebot stream of a call (`/exotel/voicebot`): the caller's audio
//! in, the ordering dialog's replies out. [`machine`] decides what to do
//! (turns, barge-in, filler, silence, fallbacks, when to close) as a pure
//! state machine on the stream's own time; [`jobs`] runs what it asks for
//! against the service (recognition, the durable dialog, synthesis); the
//! route drives both over the WebSocket. See docs/speech.md, "The
//! Voicebot stream".

pub mod jobs;
pub mod machine;

use mangwale_store::{NewEvent, VoiceSessionStatus};
use serde_json::json;

use crate::error::AppResult;
use crate::state::AppState;

/// Where the flow goes after the Voicebot applet (its Passthru
/// `after_bot`): to the order desk (Exotel's 302 branch) unless the call's
/// dialog ended with the caller served (an order placed, or a goodbye).
/// A stream that never started a dialog, one that dropped mid-order, or one
/// handed off (by the dialog, or by the bot when a backend failed) goes to
/// the desk. The decision is on the call's timeline.
pub async fn after_bot_to_desk(state: &AppState, call_sid: &str) -> AppResult<bool> {
    let session = state.store.voice_session(call_sid).await?;
    let status = session.as_ref().map(|s| s.status);
    let to_desk = !matches!(status, Some(VoiceSessionStatus::Placed | VoiceSessionStatus::Ended));
    let detail = json!({
        "session": status.map(VoiceSessionStatus::name),
        "next": if to_desk { "order_desk" } else { "goodbye" },
    });
    let event = NewEvent::new("voicebot.after", state.clock.now()).call(call_sid).channel("voicebot").detail(detail);
    state.store.record_event(event).await?;
    Ok(to_desk)
}
