//! The campaign call: placing it, its flow's applets (`campaign_call` in
//! `flows/exotel-flows.toml`), and what its status callbacks do to the
//! campaign message.
//!
//! Every campaign call is stored before Exotel is asked (`campaign_calls`,
//! under the call attempt's id): the rendered voice text and its language,
//! the number called, the template's category and which message it is for.
//! The applets find it from the attempt (by `CustomField`, then CallSid),
//! so any replica answers any applet of the call, and the text spoken is
//! the one rendered when the call was placed.
//!
//! The flow: the text is spoken, then one key: 1 connects to ordering (the
//! voice bot, or the order desk, as the inbound customer menu does), 9
//! opts the number out (`call_key_9` on the suppression ledger), anything
//! else repeats the menu once, then goodbye.

use chrono::{DateTime, Utc};
use mangwale_core::Language;
use mangwale_core::campaign::{MessageChannel, SuppressionSource, TemplateCategory, TemplateKey};
use mangwale_core::campaign_outcome::{Outcome, RETRY_FROM, Unanswered, after_unanswered};
use mangwale_providers::exotel::applet::{Connect, Gather, Prompt};
use mangwale_providers::exotel::inbound::AppletRequest;
use mangwale_store::{
    CallAttempt, CallState, Campaign, ClaimedMessage, MessageRef, NewCampaignCall, NewEvent, Store, StoreError,
};
use serde_json::json;

use crate::calls::{CallTarget, PlaceCall, PlaceCallError, new_attempt_id, place_call_as};
use crate::error::{AppError, AppResult};
use crate::exotel::CallerPurpose;
use crate::state::AppState;

/// The call attempts' purpose.
pub const PURPOSE: &str = "campaign";
/// The flow of `flows/exotel-flows.toml` campaign calls run.
pub const FLOW: &str = "campaign_call";
/// How long the recipient's phone rings before the call counts as not
/// answered (Exotel's `TimeOut`).
pub const RING_TIMEOUT_SECS: u32 = 30;
/// The longest campaign call (Exotel's `TimeLimit`): the message and menu,
/// and an order taken after key 1.
pub const TIME_LIMIT_SECS: u32 = 1800;
/// How long a key-1 Connect to the order desk may last.
const CONNECT_SECONDS: u32 = 1800;
/// The menu's name for the wrong-key counter.
const MENU: &str = "campaign_menu";

/// A campaign message's call, as the sender asks for it.
pub struct CampaignCall<'a> {
    pub campaign: &'a Campaign,
    pub message: &'a ClaimedMessage,
    /// The rendered voice text, in the recipient's language.
    pub text: String,
    pub language: Language,
}

/// The timeline party of a campaign message's call.
pub fn party(campaign: &Campaign, seq: i64) -> String {
    format!("campaign:{}:{seq}", campaign.id.as_str())
}

/// The timeline party of a single campaign call.
pub fn single_party(template: &TemplateKey) -> String {
    format!("campaign:single:{template}")
}

fn store_error(e: StoreError) -> PlaceCallError {
    PlaceCallError::Store(e)
}

/// Places a campaign message's call into the `campaign_call` flow, showing
/// the campaign's caller id (else `EXOTEL_CALLER_ID`), and stores what the
/// flow speaks under the attempt before Exotel is asked. Exactly one call
/// per invocation: the sender calls this at most once per message claim.
pub async fn place_campaign_call(state: &AppState, call: CampaignCall<'_>) -> Result<CallAttempt, PlaceCallError> {
    let books = state.campaigns.templates(state.store.as_ref()).await.map_err(store_error)?;
    let category = books
        .get(&call.campaign.template)
        .map(|t| t.category)
        .ok_or_else(|| PlaceCallError::Permanent(format!("no campaign template {}", call.campaign.template)))?;
    let caller_id = call.campaign.caller_id.clone().unwrap_or_else(|| state.exotel.caller_id(CallerPurpose::Other));
    let stored = NewCampaignCall {
        attempt_id: new_attempt_id(),
        message: Some((call.campaign.id.clone(), call.message.seq)),
        template: call.campaign.template.clone(),
        category,
        language: call.language,
        phone: call.message.phone.clone(),
        text: call.text,
        at: state.clock.now(),
    };
    place(state, stored, party(call.campaign, call.message.seq), caller_id).await
}

/// Places a single campaign call (`POST /campaigns/send/voice`): the same
/// flow, no campaign message behind it.
pub async fn place_single_call(
    state: &AppState,
    template: &TemplateKey,
    category: TemplateCategory,
    language: Language,
    phone: &mangwale_core::E164,
    text: String,
) -> Result<CallAttempt, PlaceCallError> {
    let stored = NewCampaignCall {
        attempt_id: new_attempt_id(),
        message: None,
        template: template.clone(),
        category,
        language,
        phone: phone.clone(),
        text,
        at: state.clock.now(),
    };
    let caller_id = state.exotel.caller_id(CallerPurpose::Other);
    place(state, stored, single_party(template), caller_id).await
}

async fn place(
    state: &AppState,
    stored: NewCampaignCall,
    party: String,
    caller_id: mangwale_core::E164,
) -> Result<CallAttempt, PlaceCallError> {
    let stored = state.store.add_campaign_call(&stored).await.map_err(store_error)?;
    let place = PlaceCall {
        purpose: PURPOSE.into(),
        caller: CallerPurpose::Other,
        from: stored.phone.clone(),
        target: CallTarget::Flow(FLOW.into()),
        order_id: None,
        escalation_id: None,
        party: Some(party),
        time_limit: Some(TIME_LIMIT_SECS),
        ring_timeout: Some(RING_TIMEOUT_SECS),
    };
    let attempt = place_call_as(state, place, caller_id, stored.attempt_id.clone()).await;
    // Certainly not placed: not one of the message's calls (its retries
    // count the calls that rang).
    if let Err(PlaceCallError::Transient(_) | PlaceCallError::Permanent(_)) = &attempt {
        state.store.forget_campaign_call(&stored.attempt_id).await.map_err(store_error)?;
    }
    let outcome = match &attempt {
        Ok(_) => "placed",
        Err(PlaceCallError::Transient(_)) => "transient",
        Err(_) => "failed",
    };
    metrics::counter!("mangwale_campaign_calls_total", "outcome" => outcome).increment(1);
    attempt
}

fn unavailable(e: StoreError) -> AppError {
    tracing::error!(error = %e, "the campaign call's record could not be read or written");
    AppError::Unavailable { code: "store_unavailable", message: "the call could not be recorded; retry".into() }
}

/// The campaign call an applet request belongs to, if it is one.
async fn call_of(state: &AppState, request: &AppletRequest) -> AppResult<Option<mangwale_store::CampaignCall>> {
    let Some(ours) = crate::comms::ivr::our_call(state, request).await.map_err(unavailable)? else {
        return Ok(None);
    };
    if ours.attempt.purpose != PURPOSE {
        return Ok(None);
    }
    state.store.campaign_call(&ours.attempt.id).await.map_err(unavailable)
}

/// Moves the call's message (if it has one) to `outcome`; whether it moved.
async fn record_outcome(
    store: &dyn Store,
    call: &mangwale_store::CampaignCall,
    outcome: Outcome,
    call_sid: Option<&str>,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(message) = call.message_ref() else { return Ok(false) };
    let moved = store.move_message(&message, outcome.moves_from(), outcome.state(), call_sid, error, now).await?;
    if moved {
        metrics::counter!("mangwale_campaign_messages_total", "channel" => "voice", "outcome" => outcome.state().as_str())
            .increment(1);
    }
    Ok(moved)
}

fn event(kind: &str, call: &mangwale_store::CampaignCall, call_sid: &str, at: DateTime<Utc>) -> NewEvent {
    let party = match &call.message {
        Some((campaign, seq)) => format!("campaign:{}:{seq}", campaign.as_str()),
        None => single_party(&call.template),
    };
    NewEvent::new(kind, at).call(call_sid).channel("ivr").party(party)
}

/// What the Greeting at `step` says: the campaign's text (`announce`), the
/// opt-out confirmation, or goodbye. The announcement means the recipient
/// picked up: the message is `answered`.
pub async fn greeting(state: &AppState, request: &AppletRequest, step: &str) -> AppResult<String> {
    let call = call_of(state, request).await?;
    let lang = call.as_ref().map(|c| c.language).unwrap_or_default();
    Ok(match (step, &call) {
        ("announce", Some(call)) => {
            let now = state.clock.now();
            record_outcome(state.store.as_ref(), call, Outcome::Answered, Some(&request.call_sid), None, now)
                .await
                .map_err(unavailable)?;
            call.text.clone()
        }
        ("opted_out", _) => opted_out_text(lang),
        _ => goodbye_text(lang),
    })
}

/// The campaign call's menu (1 order, 9 stop), repeated once on silence.
pub fn gather(lang: Language) -> Gather {
    let mut menu = Gather::menu(Prompt::Text(menu_text(lang))).repeat_with(Prompt::Text(menu_text(lang)));
    menu.repeat_menu = 1;
    menu
}

/// The Gather of a step of the campaign flow (`menu`); `None` elsewhere.
pub async fn gather_at(state: &AppState, request: &AppletRequest, step: &str) -> AppResult<Option<Gather>> {
    if step != "menu" {
        return Ok(None);
    }
    let call = call_of(state, request).await?;
    let lang = call.as_ref().map(|c| c.language).unwrap_or_default();
    let wrong = state.store.ivr_wrong_keys(&request.call_sid, MENU).await.map_err(unavailable)?;
    let mut menu = gather(lang);
    if wrong > 0 {
        menu.gather_prompt =
            Prompt::Text(format!("{} {}", mangwale_core::ivr::invalid_key_prompt(lang), menu_text(lang)));
    }
    Ok(Some(menu))
}

/// Where the flow's Switch goes after the menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Key 1, the voice bot takes the order.
    Bot,
    /// Key 1, the order desk takes it.
    Desk,
    /// Key 9: opted out.
    OptedOut,
    /// A wrong key the first time: the menu again.
    Repeat,
    Done,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::Bot => "bot",
            Route::Desk => "desk",
            Route::OptedOut => "opted_out",
            Route::Repeat => "repeat",
            Route::Done => "done",
        }
    }
}

/// Acts on the key pressed at the campaign call's menu: 1 → ordering
/// (`pressed_1`), 9 → the opt-out (`call_key_9` on the ledger, `opted_out`),
/// a wrong key → the menu once more, silence → goodbye. A retried request
/// (`duplicate`) is answered alike and changes nothing again.
pub async fn key_pressed(state: &AppState, request: &AppletRequest, duplicate: bool) -> AppResult<Route> {
    let Some(call) = call_of(state, request).await? else {
        metrics::counter!("mangwale_ivr_foreign_calls_total").increment(1);
        return Ok(Route::Done);
    };
    let now = state.clock.now();
    let digits = request.digits.as_deref().map(str::trim).unwrap_or("");
    let sid = request.call_sid.as_str();
    let (route, moved) = match digits {
        "1" => {
            let moved = record_outcome(state.store.as_ref(), &call, Outcome::Pressed1, Some(sid), None, now)
                .await
                .map_err(unavailable)?;
            (if crate::inbound::menus::voice_ordering(state) { Route::Bot } else { Route::Desk }, moved)
        }
        "9" => {
            // The ledger first: a request retried after a failure writes it
            // then, and the ledger keeps one entry.
            let note = match &call.message {
                Some((campaign, seq)) => format!("key 9 in campaign {} call (recipient {seq})", campaign.as_str()),
                None => format!("key 9 in a single {} campaign call", call.template),
            };
            crate::campaigns::compliance::record_opt_out(state, &call.phone, SuppressionSource::CallKey9, Some(&note))
                .await?;
            let moved = record_outcome(state.store.as_ref(), &call, Outcome::OptedOut, Some(sid), None, now)
                .await
                .map_err(unavailable)?;
            (Route::OptedOut, moved)
        }
        "" => (Route::Done, false),
        _ => {
            let wrong = if duplicate {
                state.store.ivr_wrong_keys(sid, MENU).await
            } else {
                state.store.ivr_invalid_key(sid, MENU, now).await
            }
            .map_err(unavailable)?;
            (if wrong <= 1 { Route::Repeat } else { Route::Done }, false)
        }
    };
    if !duplicate {
        metrics::counter!("mangwale_campaign_call_keys_total", "route" => route.name()).increment(1);
        let detail = json!({
            "digits": request.digits, "select": route.name(), "messageMoved": moved,
            "template": call.template.as_str(), "phone": call.phone.masked(),
        });
        state.store.record_event(event("campaign.call_key", &call, sid, now).detail(detail)).await?;
    }
    Ok(route)
}

/// Whom the Connect at `step` dials: the order desk after key 1 (the
/// voice bot's hand-off too); nobody otherwise, so the flow says goodbye.
pub async fn connect(state: &AppState, request: &AppletRequest, step: &str) -> AppResult<Connect> {
    let call = call_of(state, request).await?;
    let now = state.clock.now();
    let (connect, kind, detail) = match (step, state.config.order_desk()) {
        ("desk", Some(desk)) => {
            let caller_id = state.exotel.caller_id(CallerPurpose::Other);
            let connect = Connect::dial(std::slice::from_ref(desk), Some(&caller_id)).max_conversation(CONNECT_SECONDS);
            (connect, "campaign.connect", json!({"step": step, "whom": "order_desk", "dialled": desk.masked()}))
        }
        ("desk", None) => {
            metrics::counter!("mangwale_campaign_connect_failures_total").increment(1);
            let reason = "no ORDER_DESK_PHONE or ADMIN_SUPPORT_PHONE is configured";
            tracing::warn!(call_sid = %request.call_sid, reason, "campaign Connect dials nobody");
            (Connect::nobody(), "campaign.connect_failed", json!({"step": step, "reason": reason}))
        }
        _ => {
            (Connect::nobody(), "campaign.connect_failed", json!({"step": step, "reason": "not a Connect of the flow"}))
        }
    };
    let event = match &call {
        Some(call) => event(kind, call, &request.call_sid, now),
        None => NewEvent::new(kind, now).call(&request.call_sid).channel("ivr"),
    };
    state.store.record_event(event.detail(detail)).await?;
    Ok(connect)
}

/// What a status callback of a campaign call does to its message:
/// picked up → `answered`; completed → `answered` (unless a key moved it
/// further); busy or not answered → queued again ([`after_unanswered`]:
/// 30 minutes later, inside the promotional window, twice) or `failed`;
/// failed → `failed`. Only the message's latest call moves it, and only
/// forward, so a repeated or late callback changes nothing.
pub async fn call_status(store: &dyn Store, attempt: &CallAttempt, now: DateTime<Utc>) -> Result<(), StoreError> {
    if attempt.purpose != PURPOSE {
        return Ok(());
    }
    let Some(call) = store.campaign_call(&attempt.id).await? else {
        tracing::warn!(attempt = %attempt.id, "a campaign call attempt without its campaign call");
        return Ok(());
    };
    let Some(message) = call.message_ref() else { return Ok(()) };
    let latest = store.latest_call_ordinal(&message.campaign, message.seq).await?;
    if latest.is_some_and(|latest| latest > call.ordinal) {
        return Ok(());
    }
    let sid = attempt.call_sid.as_deref();
    let error = |what: &str| format!("call {}: {what}", call.ordinal);
    match attempt.state {
        CallState::InProgress | CallState::Completed => {
            record_outcome(store, &call, Outcome::Answered, sid, None, now).await?;
        }
        CallState::Busy | CallState::NoAnswer => {
            let what = if attempt.state == CallState::Busy { "busy" } else { "no answer" };
            match after_unanswered(call.ordinal, call.category, now) {
                Unanswered::Retry { at } => {
                    if store.retry_message(&message, RETRY_FROM, at, sid, &error(what), now).await? {
                        metrics::counter!("mangwale_campaign_call_retries_total").increment(1);
                        let detail = json!({"attempt": attempt.id, "call": call.ordinal, "status": what, "retryAt": at.to_rfc3339()});
                        let party = format!("campaign:{}:{}", message.campaign.as_str(), message.seq);
                        store
                            .record_event(
                                NewEvent::new("campaign.call_retry", now).channel("call").party(party).detail(detail),
                            )
                            .await?;
                    }
                }
                Unanswered::GiveUp => {
                    record_outcome(
                        store,
                        &call,
                        Outcome::Failed,
                        sid,
                        Some(&error(&format!("{what}, no retries left"))),
                        now,
                    )
                    .await?;
                }
            }
        }
        CallState::Failed | CallState::Canceled | CallState::NotPlaced => {
            let what = attempt.detail.clone().unwrap_or_else(|| attempt.state.as_str().to_string());
            record_outcome(store, &call, Outcome::Failed, sid, Some(&error(&what)), now).await?;
        }
        CallState::Requested | CallState::Placed | CallState::Unknown => {}
    }
    Ok(())
}

/// The `CustomField` of a campaign message's SMS: its delivery report
/// finds the message by it when the sender has not recorded the SmsSid yet.
pub fn sms_custom_field(campaign: &mangwale_core::campaign::CampaignId, seq: i64) -> String {
    format!("c:{}:{seq}", campaign.as_str())
}

/// The campaign message a [`sms_custom_field`] names.
pub fn sms_message(custom_field: &str) -> Option<MessageRef> {
    let (campaign, seq) = custom_field.strip_prefix("c:")?.rsplit_once(':')?;
    Some(MessageRef {
        campaign: mangwale_core::campaign::CampaignId::parse(campaign).ok()?,
        channel: MessageChannel::Sms,
        seq: seq.parse().ok()?,
    })
}

/// What an SMS delivery report does to a campaign SMS (found by its
/// SmsSid, else by its [`sms_custom_field`]): Exotel's terminal `sent` (DELIVERED_TO_HANDSET, or to the
/// operator) → `delivered`; `failed` and `failed_dnd` → `failed` with the
/// reason. Only forward: a repeated or late report changes nothing.
pub async fn sms_status(
    state: &AppState,
    report: &mangwale_providers::exotel::inbound::SmsStatusCallback,
) -> Result<(), StoreError> {
    use mangwale_providers::exotel::inbound::SmsStatus;
    let (sms_sid, status, reason) = (&report.sms_sid, &report.status, report.detailed_status.as_deref());
    let (message, current) = match state.store.message_by_sid(MessageChannel::Sms, sms_sid).await? {
        Some((message, current)) => (message, Some(current)),
        None => match report.custom_field.as_deref().and_then(sms_message) {
            Some(message) => (message, None),
            None => return Ok(()),
        },
    };
    let (outcome, error) = match status {
        SmsStatus::Sent => (Outcome::Delivered, None),
        SmsStatus::Failed | SmsStatus::FailedDnd => {
            (Outcome::Failed, Some(format!("{}: {}", status.as_str(), reason.unwrap_or("no reason given"))))
        }
        _ => return Ok(()),
    };
    if current == Some(outcome.state()) {
        return Ok(());
    }
    let now = state.clock.now();
    let moved = state
        .store
        .move_message(&message, outcome.moves_from(), outcome.state(), Some(sms_sid), error.as_deref(), now)
        .await?;
    if moved {
        metrics::counter!("mangwale_campaign_messages_total", "channel" => "sms", "outcome" => outcome.state().as_str())
            .increment(1);
    }
    Ok(())
}

fn pick(lang: Language, hi: &str, en: &str, mr: &str) -> String {
    match lang {
        Language::Hi => hi,
        Language::En => en,
        Language::Mr => mr,
    }
    .to_string()
}

fn menu_text(lang: Language) -> String {
    pick(
        lang,
        "Abhi order karne ke liye 1 dabayein. Aise call band karne ke liye 9 dabayein.",
        "To order now, press 1. To stop these calls, press 9.",
        "Aata order karnyasathi 1 daba. He call band karnyasathi 9 daba.",
    )
}

fn opted_out_text(lang: Language) -> String {
    pick(
        lang,
        "Theek hai, ab aapko Mangwale ke promotional call aur SMS nahi aayenge. Dhanyavaad.",
        "Done: you will get no more promotional calls or messages from Mangwale. Thank you.",
        "Theek aahe, aata tumhala Mangwale che promotional call ani SMS yenar nahit. Dhanyavaad.",
    )
}

fn goodbye_text(lang: Language) -> String {
    mangwale_core::ivr::goodbye(None, lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_menu_is_said_in_each_language_and_repeated_once() {
        for lang in [Language::Hi, Language::En, Language::Mr] {
            let menu = gather(lang);
            assert_eq!(menu.repeat_menu, 1);
            assert_eq!(menu.max_input_digits, 1);
            let Prompt::Text(text) = &menu.gather_prompt else { panic!("a text prompt") };
            assert!(text.contains('1') && text.contains('9'), "{text}");
        }
    }

    #[test]
    fn a_campaign_sms_custom_field_names_its_message() {
        let id = mangwale_core::campaign::CampaignId::new(1_780_000_000_000, 7);
        let field = sms_custom_field(&id, 42);
        let message = sms_message(&field).unwrap();
        assert_eq!((message.campaign, message.channel, message.seq), (id, MessageChannel::Sms, 42));
        assert_eq!(sms_message("l:esc_1"), None);
        assert_eq!(sms_message("c:cmp_x:1"), None);
        assert_eq!(sms_message("c:0f3a9c"), None, "a call attempt's CustomField");
    }
}
