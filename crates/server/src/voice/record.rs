//! The record path: voice ordering for Exotel accounts without Voicebot.
//!
//! Each turn the caller hears the agent's words (a Greeting whose text we
//! answer), speaks after the beep (a Record applet), and Exotel hands the
//! recording's URL to our Passthru. We fetch it with the account's
//! credentials, decode it (WAV, μ-law WAV, MP3), transcribe it with the
//! configured recogniser biased towards the store's catalog, and run the
//! dialog turn exactly as `POST /exotel/ivr/voice/process` does with text.
//! The Passthru answers the Switch after it: `again` (next turn), `done`
//! (the last words, then hang up), `desk` (the dialog handed over) or
//! `unheard` (the recording could not be used: the caller hears so and is
//! connected to the order desk; the timeline says why). See
//! docs/speech.md, "The record path", and docs/exotel-setup.md.

use mangwale_providers::exotel::inbound::AppletRequest;
use mangwale_speech::decode::{self, Decoded};
use mangwale_store::{NewEvent, VoiceChannel};
use mangwale_voice::Lang;
use mangwale_voice::dialog::{Dialog, Expects, Handoff, HandoffReason, Input, Mode, Ports};
use mangwale_voice::speech::{RecognitionHints, Transcript};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::ports::ServerPorts;
use super::session::{self, Answered, NewSession, TurnAnswer};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// The flow of `flows/exotel-flows.toml` that orders by recordings.
pub const FLOW: &str = "voice_order_record";

/// The longest recording taken as one turn (the flow's Record applet stops
/// at 30 s; a longer file is not a turn).
const MAX_RECORDING_SECONDS: u64 = 120;

/// Why a recording gave no words, for the timeline and the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unheard {
    /// `no_recognizer`, `recording_url_refused`, `recording_unavailable`,
    /// `recording_undecodable`, `recognizer_failed`.
    pub why: &'static str,
    pub detail: String,
}

/// Where the record flow's Switch goes after a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Again,
    Done,
    Desk,
    Unheard,
}

impl Next {
    pub fn name(self) -> &'static str {
        match self {
            Next::Again => "again",
            Next::Done => "done",
            Next::Desk => "desk",
            Next::Unheard => "unheard",
        }
    }

    fn of(answer: &TurnAnswer) -> Next {
        if answer.handoff.is_some() {
            Next::Desk
        } else if answer.ended {
            Next::Done
        } else {
            Next::Again
        }
    }
}

fn pick(lang: Lang, [hi, hi_en, mr, en]: [&str; 4]) -> String {
    match lang {
        Lang::Hi => hi,
        Lang::HiEn => hi_en,
        Lang::Mr => mr,
        Lang::En => en,
    }
    .to_string()
}

/// What the caller hears when their recording could not be used.
pub fn unheard_sentence(lang: Lang) -> String {
    pick(
        lang,
        [
            "माफ़ कीजिए, आपकी आवाज़ हम तक नहीं पहुँची। आपको हमारे ऑर्डर डेस्क से जोड़ रहे हैं।",
            "Maaf kijiye, aapki awaaz hum tak nahi pahunchi. Aapko hamare order desk se jod rahe hain.",
            "माफ करा, तुमचा आवाज आमच्यापर्यंत पोहोचला नाही. तुम्हाला आमच्या ऑर्डर डेस्कशी जोडत आहोत.",
            "Sorry, we could not hear you. Connecting you to our order desk.",
        ],
    )
}

/// The last words of the record flow, after the order desk or when the
/// desk could not be reached.
pub fn goodbye_sentence(lang: Lang) -> String {
    pick(
        lang,
        [
            "मंगवाले को कॉल करने के लिए धन्यवाद।",
            "Mangwale ko call karne ke liye dhanyavaad.",
            "मंगवालेला कॉल केल्याबद्दल धन्यवाद.",
            "Thank you for calling Mangwale.",
        ],
    )
}

fn unavailable(e: mangwale_store::StoreError) -> AppError {
    tracing::error!(error = %e, "the record path could not read or write the store");
    AppError::Unavailable { code: "store_unavailable", message: "the turn could not be recorded; retry".into() }
}

/// The turn id of a recording: the same recording sent again (a retried
/// Passthru or request) is answered from the store, not run twice.
pub fn turn_of(recording_url: &str) -> String {
    let digest = Sha256::digest(recording_url.trim().as_bytes());
    format!("rec-{}", &hex::encode(digest)[..24])
}

/// The session's dialog and last answer, if it has begun.
pub async fn stored(state: &AppState, call_sid: &str) -> AppResult<Option<(Dialog, Option<TurnAnswer>)>> {
    let Some(session) = state.store.voice_session(call_sid).await.map_err(unavailable)? else { return Ok(None) };
    let dialog: Dialog = serde_json::from_str(&session.dialog)
        .map_err(|e| AppError::internal(format!("voice session {call_sid}: the stored dialog cannot be read: {e}")))?;
    let last = session.last_reply.as_deref().and_then(|r| serde_json::from_str(r).ok());
    Ok(Some((dialog, last)))
}

/// The recogniser's hints for a turn of this call (see
/// [`super::recognition_hints`]).
pub async fn hints(state: &AppState, call_sid: &str, dialog: Option<&Dialog>) -> RecognitionHints {
    let store = dialog.and_then(|d| d.store.as_ref()).map(|s| s.id.as_str());
    super::recognition_hints(state, call_sid, dialog.map(|d| d.language), store).await
}

/// What the caller said in the recording at `url`, or why it cannot be
/// known. Both go on the call's timeline (`voice.recording`,
/// `voice.recording_failed`) with a metric.
pub async fn transcribe(
    state: &AppState,
    call_sid: &str,
    url: &str,
    hints: &RecognitionHints,
) -> AppResult<Result<Transcript, Unheard>> {
    let heard = hear(state, url, hints).await;
    let now = state.clock.now();
    let (outcome, event) = match &heard {
        Ok((transcript, decoded, host)) => (
            "ok",
            NewEvent::new("voice.recording", now).detail(json!({
                "host": host,
                "format": decoded.0,
                "durationMs": decoded.1,
                "recognizer": state.speech.status().recognizer,
                "transcript": mangwale_core::mask_phone_numbers(&transcript.text),
                "language": transcript.language,
                "confidence": transcript.confidence,
            })),
        ),
        Err(unheard) => {
            tracing::warn!(call_sid, why = unheard.why, detail = %unheard.detail, "a recording gave no words");
            (
                unheard.why,
                NewEvent::new("voice.recording_failed", now)
                    .detail(json!({"why": unheard.why, "detail": mangwale_core::mask_phone_numbers(&unheard.detail)})),
            )
        }
    };
    metrics::counter!("mangwale_voice_recordings_total", "outcome" => outcome).increment(1);
    state.store.record_event(event.call(call_sid).channel("voice")).await.map_err(unavailable)?;
    Ok(heard.map(|(transcript, ..)| transcript))
}

/// Fetch, decode, recognise: the transcript, the recording's format and
/// length, and the host it came from.
async fn hear(
    state: &AppState,
    url: &str,
    hints: &RecognitionHints,
) -> Result<(Transcript, (&'static str, u64), String), Unheard> {
    let unheard = |why, detail: String| Unheard { why, detail };
    let Some(recognizer) = state.speech.recognizer.clone() else {
        return Err(unheard("no_recognizer", "no speech recogniser is configured (ASR_BACKEND)".into()));
    };
    let client = &state.exotel.client;
    let url = client.recording_url(url).map_err(|e| unheard("recording_url_refused", e.to_string()))?;
    let host = url.host().to_string();
    let recording = client.fetch_recording(&url).await.map_err(|e| unheard("recording_unavailable", e.to_string()))?;
    let bytes = recording.bytes;
    let decoded: Decoded = tokio::task::spawn_blocking(move || decode::decode(&bytes, MAX_RECORDING_SECONDS))
        .await
        .map_err(|e| unheard("recording_undecodable", format!("the decoder stopped: {e}")))?
        .map_err(|e| unheard("recording_undecodable", e.to_string()))?;
    let shape = (decoded.format.as_str(), decoded.duration_ms());
    let audio = decoded.into_pcm();
    let transcript = recognizer
        .recognize(&audio, hints)
        .await
        .map_err(|e| unheard("recognizer_failed", format!("{}: {e}", recognizer.name())))?;
    Ok((transcript, shape, host))
}

/// The language of a caller without a dialog yet: their profile's, else
/// Hindi (as a new dialog chooses it).
pub async fn caller_language(state: &AppState, call_sid: &str, phone: Option<&mangwale_core::E164>) -> Lang {
    if phone.is_none() {
        return Lang::default();
    }
    let ports = ServerPorts::new(state.clone(), call_sid, phone.cloned());
    match ports.profile().await {
        Ok(profile) => profile.and_then(|p| p.language).unwrap_or_default(),
        Err(e) => {
            tracing::warn!(call_sid, error = %e, "the caller's profile could not be read for their language");
            Lang::default()
        }
    }
}

/// The answer given when a recording could not be used: the caller hears
/// [`unheard_sentence`] (in the dialog's language, else `fallback`) and
/// goes to the order desk. The dialog is not run (nothing was said), so the
/// session keeps its cart.
pub fn unheard_answer(dialog: Option<&Dialog>, last: Option<&TurnAnswer>, fallback: Lang) -> TurnAnswer {
    let language = last.map(|a| a.language).or(dialog.map(|d| d.language)).unwrap_or(fallback);
    TurnAnswer {
        agent: unheard_sentence(language),
        expects: Expects::Nothing,
        language,
        cart: last.map(|a| a.cart.clone()).unwrap_or_default(),
        orders: last.map(|a| a.orders.clone()).unwrap_or_default(),
        ended: true,
        handoff: Some(Handoff::OrderDesk { reason: HandoffReason::Unavailable }),
    }
}

/// Starts the call's session when it has none (its greeting is the first
/// thing the caller hears).
async fn ensure_session(state: &AppState, request: &AppletRequest) -> AppResult<()> {
    if state.store.voice_session(&request.call_sid).await.map_err(unavailable)?.is_some() {
        return Ok(());
    }
    let new = NewSession {
        session_id: request.call_sid.clone(),
        channel: VoiceChannel::Call,
        phone: request.from.clone(),
        mode: Mode::Call,
        store: None,
        language: None,
    };
    // `None`: another request started it meanwhile, which is as good.
    session::start(state, new, None).await?;
    Ok(())
}

/// The text of a Greeting of the record flow: `agent` is the agent's latest
/// words (the greeting, when the call has just come in), `unheard` the
/// sentence before the order desk, `goodbye` the last words.
pub async fn greeting(state: &AppState, request: &AppletRequest, step: &str) -> AppResult<String> {
    if step == "agent" {
        ensure_session(state, request).await?;
    }
    let stored = stored(state, &request.call_sid).await?;
    let language = stored
        .as_ref()
        .and_then(|(_, last)| last.as_ref().map(|a| a.language))
        .or(stored.as_ref().map(|(d, _)| d.language))
        .unwrap_or_default();
    Ok(match step {
        "unheard" => unheard_sentence(language),
        "goodbye" => goodbye_sentence(language),
        _ => match stored.and_then(|(_, last)| last) {
            Some(last) => last.agent,
            None => return Err(AppError::internal(format!("voice session {} has no answer yet", request.call_sid))),
        },
    })
}

/// The Passthru after the Record applet: transcribe `RecordingUrl`, run the
/// turn, and say where the flow goes. A retried Passthru (the same
/// recording) is answered as the first time.
pub async fn heard(state: &AppState, request: &AppletRequest) -> AppResult<Next> {
    ensure_session(state, request).await?;
    let Some(url) = request.recording_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) else {
        record_unheard(state, &request.call_sid, "no_recording", "the Passthru carried no RecordingUrl").await?;
        return Ok(Next::Unheard);
    };
    let turn = turn_of(url);
    let stored = state.store.voice_session(&request.call_sid).await.map_err(unavailable)?;
    // Exotel's retry of this Passthru: the turn ran; answer as then.
    if let Some(reply) =
        stored.as_ref().filter(|s| s.last_turn.as_deref() == Some(turn.as_str())).and_then(|s| s.last_reply.as_deref())
        && let Ok(answer) = serde_json::from_str::<TurnAnswer>(reply)
    {
        return Ok(Next::of(&answer));
    }
    let dialog = self::stored(state, &request.call_sid).await?.map(|(d, _)| d);
    let hints = hints(state, &request.call_sid, dialog.as_ref()).await;
    match transcribe(state, &request.call_sid, url, &hints).await? {
        Ok(transcript) => {
            let Answered { answer, .. } =
                session::turn(state, &request.call_sid, Input::Say(transcript.text), Some(&turn)).await?;
            Ok(Next::of(&answer))
        }
        Err(_) => Ok(Next::Unheard),
    }
}

/// A turn that could not even be tried, on the timeline.
async fn record_unheard(state: &AppState, call_sid: &str, why: &'static str, detail: &str) -> AppResult<()> {
    metrics::counter!("mangwale_voice_recordings_total", "outcome" => why).increment(1);
    let event = NewEvent::new("voice.recording_failed", state.clock.now())
        .call(call_sid)
        .channel("voice")
        .detail(json!({"why": why, "detail": detail}));
    state.store.record_event(event).await.map_err(unavailable)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_is_one_turn_and_each_language_hears_the_desk_sentence() {
        assert_eq!(turn_of("https://x/a.mp3"), turn_of(" https://x/a.mp3 "));
        assert_ne!(turn_of("https://x/a.mp3"), turn_of("https://x/b.mp3"));
        assert!(turn_of("https://x/a.mp3").len() <= 128);
        for lang in [Lang::Hi, Lang::HiEn, Lang::Mr, Lang::En] {
            assert!(!unheard_sentence(lang).is_empty());
        }
        let answer = unheard_answer(None, None, Lang::Mr);
        assert_eq!(answer.language, Lang::Mr);
        assert_eq!(answer.handoff, Some(Handoff::OrderDesk { reason: HandoffReason::Unavailable }));
        assert_eq!(Next::of(&answer), Next::Desk);
    }
}
