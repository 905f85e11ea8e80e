//! One turn of a durable dialog: load the session, run the turn against
//! [`ServerPorts`], save it if nobody saved in between (else run the turn
//! again on what they saved), then put the turn and what happened in it on
//! the timeline (the order's once there is one, else the call's).

use chrono::Duration;
use mangwale_core::E164;
use mangwale_store::{NewEvent, VoiceChannel, VoiceSession, VoiceSessionStatus, VoiceSessionUpdate};
use mangwale_voice::dialog::{
    CartView, Dialog, DialogEvent, Expects, Handoff, Input, Mode, PlacedOrder, Ports, Reply, StoreOffer,
};
use mangwale_voice::{Lang, Paise};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ports::ServerPorts;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// A caller who dropped and calls back within this long is offered their
/// unfinished cart.
pub const RESUME_WITHIN: Duration = Duration::minutes(30);

/// How often a turn is run again after losing its save to another one.
const SAVE_ATTEMPTS: usize = 5;

/// What every turn answers: the JSON-lines protocol's line, plus the
/// language and the handoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnAnswer {
    pub agent: String,
    pub expects: Expects,
    pub language: Lang,
    pub cart: CartView,
    /// The orders placed in this call, cancelled ones flagged.
    pub orders: Vec<PlacedOrder>,
    pub ended: bool,
    pub handoff: Option<Handoff>,
}

/// A turn's answer, and whether it was answered before (a retried turn id:
/// nothing was run again).
pub struct Answered {
    pub answer: TurnAnswer,
    pub replayed: bool,
}

fn store_failed(e: mangwale_store::StoreError) -> AppError {
    AppError::from(e)
}

fn corrupt(session_id: &str, e: serde_json::Error) -> AppError {
    AppError::internal(format!("voice session {session_id}: the stored dialog cannot be read: {e}"))
}

/// Where a session stands after a turn.
fn status_of(dialog: &Dialog, reply: &Reply) -> VoiceSessionStatus {
    if reply.handoff.is_some() {
        VoiceSessionStatus::HandedOff
    } else if !dialog.ended {
        VoiceSessionStatus::Active
    } else if dialog.orders.iter().any(|o| !o.cancelled) {
        VoiceSessionStatus::Placed
    } else {
        VoiceSessionStatus::Ended
    }
}

/// The cart priced against its store's catalog (empty before a store).
async fn cart_of(dialog: &Dialog, ports: &ServerPorts) -> CartView {
    let Some(store) = &dialog.store else { return CartView::default() };
    match ports.catalog(&store.id).await {
        Ok(catalog) => dialog.cart_view(&catalog),
        Err(e) => {
            tracing::warn!(call_id = %dialog.call_id, store_id = %store.id, error = %e, "the cart could not be priced for the answer");
            CartView { store_id: Some(store.id.clone()), lines: Vec::new(), total: Paise(0) }
        }
    }
}

async fn answer_of(dialog: &Dialog, reply: &Reply, ports: &ServerPorts) -> TurnAnswer {
    TurnAnswer {
        agent: reply.agent.clone(),
        expects: reply.expects,
        language: reply.language,
        cart: cart_of(dialog, ports).await,
        orders: dialog.orders.clone(),
        ended: reply.ended,
        handoff: reply.handoff.clone(),
    }
}

fn update_of(
    dialog: &Dialog,
    reply: &Reply,
    answer: &TurnAnswer,
    turn: Option<&str>,
    state: &AppState,
) -> AppResult<VoiceSessionUpdate> {
    Ok(VoiceSessionUpdate {
        dialog: serde_json::to_string(dialog).map_err(AppError::internal)?,
        status: status_of(dialog, reply),
        resumable: dialog.is_resumable(),
        last_turn: turn.map(str::to_string),
        last_reply: Some(serde_json::to_string(answer).map_err(AppError::internal)?),
        at: state.clock.now(),
    })
}

/// Runs `input` on a stored session. `turn`: the caller's id of this turn;
/// the same id sent again (a retried request) is answered from the store.
pub async fn turn(state: &AppState, session_id: &str, input: Input, turn: Option<&str>) -> AppResult<Answered> {
    for _ in 0..SAVE_ATTEMPTS {
        let stored = state
            .store
            .voice_session(session_id)
            .await
            .map_err(store_failed)?
            .ok_or_else(|| AppError::NotFound(format!("no voice session {session_id}")))?;
        if let (Some(turn), Some(last), Some(reply)) = (turn, &stored.last_turn, &stored.last_reply)
            && turn == last
        {
            let answer = serde_json::from_str(reply).map_err(|e| corrupt(session_id, e))?;
            return Ok(Answered { answer, replayed: true });
        }
        let mut dialog: Dialog = serde_json::from_str(&stored.dialog).map_err(|e| corrupt(session_id, e))?;
        let ports = ServerPorts::new(state.clone(), session_id, stored.phone.clone());
        let reply = dialog.turn(input.clone(), &ports).await;
        retry_if_unrecorded(&ports)?;
        let answer = answer_of(&dialog, &reply, &ports).await;
        let update = update_of(&dialog, &reply, &answer, turn, state)?;
        let saved = state.store.save_voice_session(session_id, stored.version, &update).await.map_err(store_failed)?;
        if saved.is_some() {
            record_turn(state, &stored, &dialog, &input, &reply).await?;
            return Ok(Answered { answer, replayed: false });
        }
        metrics::counter!("mangwale_voice_save_conflicts_total").increment(1);
        tracing::info!(session_id, "another turn of the session was saved first; running this one again");
    }
    Err(AppError::Unavailable {
        code: "voice_session_busy",
        message: format!("voice session {session_id} changed under every attempt; retry"),
    })
}

/// A turn whose effects in Jupiter could not be followed up in the store is
/// not saved: 503, and its retry (Exotel's, the client's) does it again.
fn retry_if_unrecorded(ports: &ServerPorts) -> AppResult<()> {
    match ports.unrecorded() {
        Some(why) => Err(AppError::Unavailable { code: "store_unavailable", message: format!("{why}; retry") }),
        None => Ok(()),
    }
}

/// How a session starts.
pub struct NewSession {
    pub session_id: String,
    pub channel: VoiceChannel,
    pub phone: Option<E164>,
    pub mode: Mode,
    /// The store when it is known already (an API session for one store).
    pub store: Option<StoreOffer>,
    /// The caller's expected language; else the profile's, else Hindi.
    pub language: Option<Lang>,
}

/// Starts a session: a new dialog (or, for a caller whose call dropped
/// within [`RESUME_WITHIN`] with a cart, one that offers it back), whose
/// greeting is the first turn. When `then` is given (the caller's first
/// words on a call) it is the next turn, unless the greeting asks about
/// the earlier cart first. `None`: the session exists already (another
/// replica, a retry); run the turn on it instead.
pub async fn start(
    state: &AppState,
    new: NewSession,
    then: Option<(Input, Option<&str>)>,
) -> AppResult<Option<Answered>> {
    let now = state.clock.now();
    let ports = ServerPorts::new(state.clone(), &new.session_id, new.phone.clone());
    let earlier = match (&new.phone, new.channel) {
        (Some(phone), VoiceChannel::Call) => state
            .store
            .resumable_voice_session(phone, now - RESUME_WITHIN, &new.session_id)
            .await
            .map_err(store_failed)?,
        _ => None,
    };
    let earlier_dialog = match &earlier {
        Some(session) => match serde_json::from_str::<Dialog>(&session.dialog) {
            Ok(dialog) => Some(dialog),
            Err(e) => {
                // An older build's state that no longer reads: start afresh.
                tracing::warn!(session_id = %session.session_id, error = %e, "an earlier voice session cannot be resumed");
                None
            }
        },
        None => None,
    };
    let mut dialog = match &earlier_dialog {
        Some(earlier) => Dialog::resuming(new.session_id.clone(), earlier),
        None => {
            let language = match new.language {
                Some(language) => language,
                None => match ports.profile().await {
                    Ok(profile) => profile.and_then(|p| p.language).unwrap_or(Lang::Hi),
                    Err(e) => {
                        tracing::warn!(session_id = %new.session_id, error = %e, "the caller's profile could not be read for their language");
                        Lang::Hi
                    }
                },
            };
            Dialog::new(new.session_id.clone(), new.mode, language, new.store.clone())
        }
    };
    let greeting = dialog.turn(Input::Start, &ports).await;
    let mut turns = vec![(Input::Start, greeting)];
    let offers_cart = turns[0].1.expects == Expects::Resume;
    let turn_id = then.as_ref().and_then(|(_, id)| id.map(str::to_string));
    // Words the caller said before hearing the offer of their earlier cart
    // are not a turn; they go on the timeline as held.
    let mut held = None;
    match then {
        Some((input, _)) if !offers_cart && !dialog.ended => {
            let reply = dialog.turn(input.clone(), &ports).await;
            turns.push((input, reply));
        }
        Some((input, _)) => held = Some(input_detail(&input)),
        None => {}
    }
    retry_if_unrecorded(&ports)?;
    let (_, reply) = turns.last().expect("the greeting");
    let answer = answer_of(&dialog, reply, &ports).await;
    let update = update_of(&dialog, reply, &answer, turn_id.as_deref(), state)?;
    let session = VoiceSession {
        session_id: new.session_id.clone(),
        channel: new.channel,
        phone: new.phone.clone(),
        dialog: update.dialog,
        version: 1,
        status: update.status,
        resumable: update.resumable,
        last_turn: update.last_turn,
        last_reply: update.last_reply,
        created_at: now,
        updated_at: now,
    };
    let takes_up = earlier.as_ref().filter(|_| earlier_dialog.is_some()).map(|s| s.session_id.as_str());
    if !state.store.create_voice_session(&session, takes_up).await.map_err(store_failed)? {
        return Ok(None);
    }
    metrics::counter!("mangwale_voice_sessions_total", "channel" => new.channel.name(),
        "resumed" => if takes_up.is_some() { "yes" } else { "no" })
    .increment(1);
    if let Some(earlier) = takes_up {
        let event = NewEvent::new("voice.resumed", now)
            .call(&new.session_id)
            .channel("voice")
            .detail(json!({"earlierSession": earlier}));
        state.store.record_event(event).await.map_err(store_failed)?;
    }
    for (input, reply) in &turns {
        record_turn(state, &session, &dialog, input, reply).await?;
    }
    if let Some(words) = held {
        let event = NewEvent::new("voice.words_held", now)
            .call(&new.session_id)
            .channel("voice")
            .detail(json!({"caller": words, "why": "the earlier cart was offered first"}));
        state.store.record_event(event).await.map_err(store_failed)?;
    }
    Ok(Some(Answered { answer, replayed: false }))
}

/// What the caller did, for the timeline: their words with any phone
/// number in them masked.
fn input_detail(input: &Input) -> Value {
    match input {
        Input::Start => json!({"start": true}),
        Input::Say(text) => json!({"say": mangwale_core::mask_phone_numbers(text)}),
        Input::Dtmf(keys) => json!({"dtmf": keys}),
        Input::Silence => json!({"silence": true}),
        Input::Hangup => json!({"hangup": true}),
    }
}

/// The turn (the caller's words, the agent's) and each of its events on the
/// timeline: on the order's once the call has one, else the call's.
async fn record_turn(
    state: &AppState,
    session: &VoiceSession,
    dialog: &Dialog,
    input: &Input,
    reply: &Reply,
) -> AppResult<()> {
    let now = state.clock.now();
    let party = session.phone.as_ref().map(|p| format!("caller:{}", p.masked()));
    let newest_order = dialog.orders.last().map(|o| o.order_id.clone());
    let event = |kind: String, order: Option<&str>, detail: Value| {
        NewEvent::new(kind, now)
            .call(&session.session_id)
            .channel("voice")
            .context(order, None, party.as_deref())
            .detail(detail)
    };
    for happened in &reply.events {
        let detail = serde_json::to_value(happened).map_err(AppError::internal)?;
        let kind = detail.get("kind").and_then(Value::as_str).unwrap_or("event").to_string();
        let order = match happened {
            DialogEvent::OrderPlaced { order } => Some(order.order_id.clone()),
            DialogEvent::OrderCancelled { order_id }
            | DialogEvent::PaymentLinkSent { order_id, .. }
            | DialogEvent::PaymentLinkFailed { order_id, .. } => Some(order_id.clone()),
            // A failed order has no order: the cart stays on the call's timeline.
            DialogEvent::OrderFailed { .. } => None,
            _ => newest_order.clone(),
        };
        state
            .store
            .record_event(event(format!("voice.{kind}"), order.as_deref(), detail))
            .await
            .map_err(store_failed)?;
    }
    let detail = json!({
        "caller": input_detail(input),
        "agent": reply.agent,
        "expects": reply.expects,
        "language": reply.language,
        "ended": reply.ended,
        "handoff": reply.handoff,
    });
    state
        .store
        .record_event(event("voice.turn".into(), newest_order.as_deref(), detail))
        .await
        .map_err(store_failed)?;
    Ok(())
}
