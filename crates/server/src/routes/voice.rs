//! Voice ordering's routes (API key): the seed's
//! `POST /exotel/ivr/voice/process`, one turn of a call's ordering dialog,
//! and the same dialog over HTTP for the dashboard, `POST /voice/sessions`
//! and `POST /voice/sessions/{id}/turns`. See docs/voice.md, "Voice
//! ordering in the service".

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use mangwale_core::E164;
use mangwale_providers::exotel::applet::Connect;
use mangwale_store::{NewEvent, VoiceChannel};
use mangwale_voice::dialog::{Handoff, Input, Mode, StoreOffer};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{AppError, AppResult};
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::voice::record;
use crate::voice::session::{self, Answered, NewSession, TurnAnswer};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/exotel/ivr/voice/process", post(process))
        .route("/voice/sessions", post(create_session))
        .route("/voice/sessions/{id}/turns", post(session_turn))
}

/// How long the order desk's Connect may keep the caller (as the inbound
/// menus' Connects).
const CONNECT_SECONDS: u32 = 1800;
/// Longest CallSid, session id or turn id we keep.
const MAX_ID: usize = 128;

#[derive(Debug, Deserialize)]
struct ProcessBody {
    call_sid: Option<String>,
    from_phone: Option<String>,
    recording_url: Option<String>,
    text: Option<String>,
    /// The flow's context (`customer_order`); recorded, not acted on.
    context: Option<String>,
    /// The caller's id of this turn (a sequence number, a RecordingSid): the
    /// same id sent again is answered as the first time, not run twice.
    turn: Option<String>,
}

fn id_field(field: &str, raw: Option<&str>) -> AppResult<String> {
    let id = raw
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AppError::invalid(field, format!("{field} is required")))?;
    if id.len() > MAX_ID || !id.chars().all(|c| c.is_ascii_graphic()) {
        return Err(AppError::invalid(field, format!("{field}: at most {MAX_ID} printable characters")));
    }
    Ok(id.to_string())
}

fn optional_id(field: &str, raw: Option<&str>) -> AppResult<Option<String>> {
    match raw {
        None => Ok(None),
        Some(raw) => id_field(field, Some(raw)).map(Some),
    }
}

fn phone_field(field: &str, raw: Option<&str>) -> AppResult<Option<E164>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(raw) => E164::parse(raw).map(Some).map_err(|e| AppError::invalid(field, format!("{field}: {e}"))),
    }
}

fn language_field(raw: Option<&str>) -> AppResult<Option<mangwale_voice::Lang>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(code) => mangwale_voice::Lang::from_code(code)
            .map(Some)
            .ok_or_else(|| AppError::invalid("language", format!("language: one of hi, mr, en, hi-en, not {code:?}"))),
    }
}

/// The reply of a turn, as JSON: the answer, and the Connect to the order
/// desk when the dialog hands the call over.
fn reply_json(answer: &TurnAnswer, connect: Option<&Connect>, extra: &[(&str, Value)]) -> Value {
    let mut body = serde_json::to_value(answer).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut body {
        if let Some(connect) = connect {
            map.insert("connect".into(), serde_json::to_value(connect).unwrap_or(Value::Null));
        }
        for (name, value) in extra {
            map.insert((*name).into(), value.clone());
        }
    }
    body
}

/// The order desk's Connect for a handed-off call (issue 7's desk, as the
/// inbound menus dial it), recorded on the call's timeline; `None` when no
/// desk is configured (the reason goes on the timeline).
async fn desk_connect(state: &AppState, call_sid: &str, handoff: &Handoff, record: bool) -> AppResult<Option<Connect>> {
    let Handoff::OrderDesk { reason } = handoff;
    let now = state.clock.now();
    let (connect, event) = match state.config.order_desk() {
        Some(desk) => {
            let caller_id = state.exotel.caller_id(crate::exotel::CallerPurpose::Other);
            let connect = Connect::dial(std::slice::from_ref(desk), Some(&caller_id)).max_conversation(CONNECT_SECONDS);
            let detail = json!({"whom": "order_desk", "reason": reason, "dialled": [desk.masked()]});
            (Some(connect), NewEvent::new("voice.connect", now).detail(detail))
        }
        None => {
            tracing::warn!(call_sid, "a voice order call is handed off, but no order desk is configured");
            let detail = json!({"reason": reason, "why": "no ORDER_DESK_PHONE or ADMIN_SUPPORT_PHONE is configured"});
            (None, NewEvent::new("voice.connect_failed", now).detail(detail))
        }
    };
    if record {
        state.store.record_event(event.call(call_sid).channel("voice")).await?;
    }
    Ok(connect)
}

/// `POST /exotel/ivr/voice/process`: one turn of the call's ordering
/// dialog. The first request of a call starts the dialog (offering a cart
/// the caller left in a call that dropped within 30 minutes); its words are
/// the caller's first turn. `text` is what the caller said (empty: they
/// said nothing intelligible, and the agent asks again); `recording_url`
/// (without `text`) is fetched with Exotel's credentials and transcribed
/// (see `voice::record`), and its words are the turn. A recording that
/// cannot be fetched, decoded or transcribed (or no recogniser) is still a
/// 200: the agent's words say so, the answer hands the call to the order
/// desk (`connect`), and `recording.error` and the timeline say why.
async fn process(State(state): State<AppState>, ApiJson(body): ApiJson<ProcessBody>) -> AppResult<Json<Value>> {
    let call_sid = id_field("call_sid", body.call_sid.as_deref())?;
    let phone = phone_field("from_phone", body.from_phone.as_deref())?;
    let mut turn = optional_id("turn", body.turn.as_deref())?;
    let recording = body.recording_url.as_deref().map(str::trim).filter(|u| !u.is_empty());
    let mut heard = None;
    let text = match (body.text, recording) {
        (Some(text), _) => text,
        (None, Some(url)) => {
            let stored = record::stored(&state, &call_sid).await?;
            let dialog = stored.as_ref().map(|(d, _)| d);
            let hints = record::hints(&state, &call_sid, dialog).await;
            match record::transcribe(&state, &call_sid, url, &hints).await? {
                Ok(transcript) => {
                    turn = turn.or_else(|| Some(record::turn_of(url)));
                    heard = Some(json!({
                        "transcript": transcript.text,
                        "language": transcript.language,
                        "confidence": transcript.confidence,
                    }));
                    transcript.text
                }
                Err(unheard) => {
                    let fallback = record::caller_language(&state, &call_sid, phone.as_ref()).await;
                    let last = stored.as_ref().and_then(|(_, last)| last.as_ref());
                    let answer = record::unheard_answer(dialog, last, fallback);
                    let connect = match &answer.handoff {
                        Some(handoff) => desk_connect(&state, &call_sid, handoff, true).await?,
                        None => None,
                    };
                    let extra = [
                        ("callSid", json!(call_sid)),
                        ("context", json!(body.context)),
                        ("duplicate", json!(false)),
                        ("recording", json!({"error": unheard.why, "detail": unheard.detail})),
                    ];
                    return Ok(Json(reply_json(&answer, connect.as_ref(), &extra)));
                }
            }
        }
        (None, None) => return Err(AppError::invalid("text", "text (or recording_url) is required")),
    };
    let input = Input::Say(text);
    let mut answered = None;
    if state.store.voice_session(&call_sid).await?.is_none() {
        let new = NewSession {
            session_id: call_sid.clone(),
            channel: VoiceChannel::Call,
            phone: phone.clone(),
            mode: Mode::Call,
            store: None,
            language: None,
        };
        answered = session::start(&state, new, Some((input.clone(), turn.as_deref()))).await?;
    }
    let Answered { answer, replayed } = match answered {
        Some(answered) => answered,
        None => session::turn(&state, &call_sid, input, turn.as_deref()).await?,
    };
    let connect = match &answer.handoff {
        Some(handoff) => desk_connect(&state, &call_sid, handoff, !replayed).await?,
        None => None,
    };
    let mut extra =
        vec![("callSid", json!(call_sid)), ("context", json!(body.context)), ("duplicate", json!(replayed))];
    if let Some(heard) = heard {
        extra.push(("recording", heard));
    }
    Ok(Json(reply_json(&answer, connect.as_ref(), &extra)))
}

#[derive(Debug, Deserialize)]
struct SessionBody {
    store_id: Option<crate::routes::comms::Id>,
    language: Option<String>,
    phone: Option<String>,
}

/// `POST /voice/sessions`: a new dialog over HTTP, and the agent's greeting.
/// With `phone` it is that caller's call (their profile, address and
/// payment; orders are placed in Jupiter); without, it runs against one
/// store (`store_id` required) with no profile, and cannot place orders.
async fn create_session(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SessionBody>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let phone = phone_field("phone", body.phone.as_deref())?;
    let language = language_field(body.language.as_deref())?;
    let store = match &body.store_id {
        Some(id) => Some(store_offer(&state, &id.text()).await?),
        None if phone.is_none() => {
            return Err(AppError::invalid("store_id", "store_id is required for a session without a phone"));
        }
        None => None,
    };
    let session_id = format!("vs_{}", uuid::Uuid::new_v4().simple());
    let new = NewSession {
        session_id: session_id.clone(),
        channel: VoiceChannel::Api,
        mode: if phone.is_some() { Mode::Call } else { Mode::CatalogOnly },
        phone,
        store,
        language,
    };
    let Some(Answered { answer, .. }) = session::start(&state, new, None).await? else {
        return Err(AppError::internal(format!("a new voice session id {session_id} was taken")));
    };
    Ok((StatusCode::CREATED, Json(reply_json(&answer, None, &[("sessionId", json!(session_id))]))))
}

/// The store a session is for, from Jupiter; a 400 naming `store_id` when
/// Jupiter has no such store.
async fn store_offer(state: &AppState, id: &str) -> AppResult<StoreOffer> {
    let number: u64 =
        id.parse().map_err(|_| AppError::invalid("store_id", format!("store_id: not a store id: {id:?}")))?;
    let catalog = match state.jupiter.client.store_catalog(number).await {
        Ok(Some(catalog)) => catalog,
        Ok(None) => return Err(AppError::invalid("store_id", format!("store_id: Jupiter has no store {number}"))),
        Err(e) if e.is_transient() => {
            return Err(AppError::Unavailable { code: "jupiter_unavailable", message: e.message() });
        }
        Err(e) => return Err(AppError::BadGateway { code: "jupiter_refused", message: e.message() }),
    };
    Ok(StoreOffer {
        id: catalog.store.id.to_string(),
        name: catalog.store.name.clone(),
        aliases: Vec::new(),
        distance_km: None,
        open: catalog.store.active,
    })
}

#[derive(Debug, Deserialize)]
struct TurnBody {
    say: Option<String>,
    dtmf: Option<String>,
    hangup: Option<bool>,
    turn: Option<String>,
}

/// `POST /voice/sessions/{id}/turns`: `{"say": "..."}`, `{"dtmf": "1"}` or
/// `{"hangup": true}`, answered as the JSON-lines protocol answers.
async fn session_turn(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TurnBody>,
) -> AppResult<Json<Value>> {
    let turn = optional_id("turn", body.turn.as_deref())?;
    let input = match (body.say, body.dtmf, body.hangup) {
        (Some(say), None, None) => Input::Say(say),
        (None, Some(keys), None) => {
            let keys = keys.trim().to_string();
            if keys.is_empty() || !keys.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#') {
                return Err(AppError::invalid("dtmf", "dtmf: keys 0-9, * and #"));
            }
            Input::Dtmf(keys)
        }
        (None, None, Some(true)) => Input::Hangup,
        (None, None, Some(false)) => return Err(AppError::invalid("hangup", "hangup: true, or leave it out")),
        (None, None, None) => return Err(AppError::invalid("say", "one of say, dtmf or hangup is required")),
        _ => return Err(AppError::invalid("say", "only one of say, dtmf or hangup")),
    };
    match state.store.voice_session(&id).await? {
        Some(session) if session.channel == VoiceChannel::Api => {}
        _ => return Err(AppError::NotFound(format!("no voice session {id}"))),
    }
    let Answered { answer, replayed } = session::turn(&state, &id, input, turn.as_deref()).await?;
    Ok(Json(reply_json(&answer, None, &[("sessionId", json!(id)), ("duplicate", json!(replayed))])))
}
