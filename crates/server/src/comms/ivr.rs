//! The applets of the IVR calls our ladders place: what the party hears,
//! which menu they get, what their key does, whom a Connect dials.
//!
//! A call is ours when its `CustomField` (or its CallSid) names one of our
//! call attempts; the attempt names the ladder, and the ladder holds what to
//! say. Anything else (an inbound call, a call we did not place) gets the
//! welcome flow, or a polite hang-up at a menu, and changes nothing.

use mangwale_core::Language;
use mangwale_core::ivr::{self, Answer, Menu, Next};
use mangwale_core::ladder::{LadderKind, StopAction};
use mangwale_providers::exotel::applet::{Connect, Gather, Prompt};
use mangwale_providers::exotel::inbound::AppletRequest;
use mangwale_store::{CallAttempt, Ladder, NewEvent};
use serde_json::json;

use super::answers::{self, Applied};
use crate::state::AppState;

/// The attempt and ladder an applet request belongs to.
#[derive(Debug, Clone)]
pub struct OurCall {
    pub attempt: CallAttempt,
    pub ladder: Option<Ladder>,
}

/// Finds the call attempt (by `CustomField`, then CallSid) and its ladder.
pub async fn our_call(
    state: &AppState,
    request: &AppletRequest,
) -> Result<Option<OurCall>, mangwale_store::StoreError> {
    let by_field = match request.custom_field.as_deref().and_then(crate::calls::attempt_id) {
        Some(id) => state.store.call_by_id(id).await?,
        None => None,
    };
    let attempt = match by_field {
        Some(a) => Some(a),
        None => state.store.call_by_sid(&request.call_sid).await?,
    };
    let Some(attempt) = attempt else { return Ok(None) };
    let ladder = match &attempt.escalation_id {
        Some(id) => state.store.ladder(id).await?,
        None => None,
    };
    Ok(Some(OurCall { attempt, ladder }))
}

fn language_of(call: Option<&OurCall>) -> Language {
    call.and_then(|c| c.ladder.as_ref()).map(|l| l.language).unwrap_or_default()
}

/// The text of a Greeting applet of `flow` at `step`.
pub async fn greeting(state: &AppState, request: &AppletRequest, flow: &str, step: &str) -> String {
    let call = our_call(state, request).await.ok().flatten();
    let lang = language_of(call.as_ref());
    let ladder = call.as_ref().and_then(|c| c.ladder.as_ref());
    match (step, ladder) {
        ("announce", Some(ladder)) => ivr::announcement(flow, lang, &ladder.context.facts()),
        ("goodbye", Some(ladder)) => {
            let answer = ladder.stop_action.and_then(|a| match a {
                StopAction::Accept => Some(Answer::Accept),
                StopAction::Reject => Some(Answer::Reject),
                StopAction::Ready => Some(Answer::Ready),
                StopAction::Extend => Some(Answer::Extend(ivr::EXTEND_MINUTES)),
                StopAction::Confirm => Some(Answer::Confirm),
                StopAction::Problem | StopAction::Superseded | StopAction::Cancel => None,
            });
            let goodbye = ivr::goodbye(answer, lang);
            // A rider who accepted hears where to pick up before the call ends.
            match (&ladder.context.pickup_address, ladder.kind, answer) {
                (Some(address), LadderKind::RiderAssign, Some(Answer::Accept)) => {
                    let directions = ivr::pickup_directions(lang, ladder.context.pickup_name.as_deref(), address);
                    format!("{goodbye} {directions}")
                }
                _ => goodbye,
            }
        }
        ("goodbye", None) => ivr::goodbye(None, lang),
        _ => ivr::announcement("welcome", lang, &ivr::Facts::default()),
    }
}

/// The Gather of a menu step, in the ladder's language; `None` for steps
/// that are not one of our menus.
pub async fn gather(state: &AppState, request: &AppletRequest, flow: &str, step: &str) -> Option<Gather> {
    let menu = Menu::at(flow, step)?;
    let call = our_call(state, request).await.ok().flatten();
    let lang = language_of(call.as_ref());
    let prompt = ivr::menu_prompt(menu, lang);
    // Back at the menu after a wrong key: say so first.
    let wrong = state.store.ivr_wrong_keys(&request.call_sid, menu.name()).await.unwrap_or(0);
    let first = if wrong > 0 { format!("{} {prompt}", ivr::invalid_key_prompt(lang)) } else { prompt.clone() };
    Some(Gather::menu(Prompt::Text(first)).repeat_with(Prompt::Text(prompt)))
}

/// What a key press at a menu did.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyOutcome {
    pub next: Next,
    pub answer: Option<Answer>,
    pub applied: Option<Applied>,
    /// Why nothing happened, when nothing did.
    pub note: Option<&'static str>,
}

/// Acts on the digits pressed at `flow`'s `step` menu. A call we did not
/// place, or a menu we do not know, hangs up and changes nothing.
pub async fn key_pressed(
    state: &AppState,
    request: &AppletRequest,
    flow: &str,
    step: &str,
    duplicate: bool,
) -> Result<KeyOutcome, mangwale_store::StoreError> {
    let nothing = |note| KeyOutcome { next: Next::Done, answer: None, applied: None, note: Some(note) };
    let Some(menu) = Menu::at(flow, step) else { return Ok(nothing("not one of our menus")) };
    let Some(call) = our_call(state, request).await? else {
        metrics::counter!("mangwale_ivr_foreign_calls_total").increment(1);
        return Ok(nothing("a call we did not place"));
    };
    let Some(ladder) = call.ladder.clone() else { return Ok(nothing("the call belongs to no ladder")) };
    let answer = ivr::interpret(menu, request.digits.as_deref());
    let invalid = if answer == Answer::Invalid && !duplicate {
        state.store.ivr_invalid_key(&request.call_sid, menu.name(), state.clock.now()).await?
    } else {
        0
    };
    let next = ivr::next_for(answer, invalid);
    // The request's CallSid and menu make the Jupiter updates idempotent: an
    // Exotel retry of this request finds them queued already.
    let key = format!("ivr:{}:{}", request.call_sid, menu.name());
    let applied = answers::apply(state, &ladder, answer, "ivr", &key).await?;
    let applied = (applied != Applied::NotAnAnswer).then_some(applied);
    if !duplicate {
        metrics::counter!("mangwale_ivr_keys_total", "menu" => menu.name(), "answer" => answer_name(answer))
            .increment(1);
        let event = NewEvent::new("ivr.key", state.clock.now())
            .call(&request.call_sid)
            .escalation(&ladder.escalation_id)
            .channel("ivr")
            .context(ladder.order_id.as_deref(), None, Some(&ladder.party))
            .detail(json!({
                "menu": menu.name(), "digits": request.digits, "answer": answer_name(answer), "next": next.name(),
                "wrongKeys": invalid, "stopped": matches!(applied, Some(Applied::Stopped(_))),
                "alreadyFinished": matches!(applied, Some(Applied::AlreadyFinished)),
            }));
        state.store.record_event(event).await?;
    }
    Ok(KeyOutcome { next, answer: Some(answer), applied, note: None })
}

fn answer_name(answer: Answer) -> &'static str {
    match answer {
        Answer::Accept => "accept",
        Answer::Reject => "reject",
        Answer::AskPrepTime => "ask_prep_time",
        Answer::PrepTime(_) => "prep_time",
        Answer::Ready => "ready",
        Answer::Extend(_) => "extend",
        Answer::Confirm => "confirm",
        Answer::Problem => "problem",
        Answer::Repeat => "repeat",
        Answer::Invalid => "invalid",
        Answer::NoInput => "no_input",
    }
}

/// Whom the Connect applet at `step` dials: admin support for the `admin`
/// steps of our flows; nobody otherwise (masking sessions decide masked
/// calls).
pub fn connect(state: &AppState, step: &str) -> Connect {
    match (step, &state.config.admin_support_phone) {
        ("admin", Some(admin)) => {
            let caller = state.exotel.caller_id(crate::exotel::CallerPurpose::Other);
            Connect::dial(std::slice::from_ref(admin), Some(&caller)).max_conversation(1800)
        }
        _ => Connect::nobody(),
    }
}
