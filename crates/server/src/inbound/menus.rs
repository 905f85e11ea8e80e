//! The applets of the inbound flow (`customer_voice_order`): the caller
//! Switch, and each caller's greeting, menu, keys and Connects.
//!
//! Every applet reads the call's record (who called, the order their menu
//! is about) from the store, so that any replica can answer any applet of
//! the call; order details come from Jupiter (cached briefly by the
//! client).

use mangwale_core::inbound::{
    self, CallerKind, Choice, DeliveryFacts, InboundMenu, Offer, OrderStatusFacts, PendingFacts, Route,
};
use mangwale_core::ivr::{self, Answer};
use mangwale_core::ladder::LadderKind;
use mangwale_core::{E164, Language, OrderId};
use mangwale_providers::exotel::applet::{Connect, Gather, Prompt};
use mangwale_providers::exotel::inbound::AppletRequest;
use mangwale_providers::jupiter::Order;
use mangwale_store::{InboundCall, InboundEvent, NewEvent};
use serde_json::json;

use super::caller::{self, ON_THE_LINE};
use crate::comms::answers::{self, Applied};
use crate::error::{AppError, AppResult};
use crate::masking::{Leg, PartyRole};
use crate::state::AppState;

/// The inbound flow of `flows/exotel-flows.toml`.
pub const FLOW: &str = "customer_voice_order";

/// How long a Connect may keep the caller on the line (its
/// `max_conversation_duration`), plus the ringing.
const CONNECT_SECONDS: u32 = 1800;
const CONNECT_RING: chrono::Duration = chrono::Duration::seconds(60);

fn unavailable(e: mangwale_store::StoreError) -> AppError {
    tracing::error!(error = %e, "the inbound call's record could not be read or written");
    AppError::Unavailable { code: "store_unavailable", message: "the call could not be recorded; retry".into() }
}

/// The caller Switch: identifies the caller and picks their branch.
pub async fn incoming(state: &AppState, request: &AppletRequest) -> AppResult<Route> {
    let call = caller::identify_call(state, &request.call_sid, request.from.as_ref()).await?;
    Ok(inbound::route_for_caller(call.kind, call.order_id.is_some()))
}

/// The call's record; a call that never passed the caller Switch (or whose
/// record is gone) is an unknown caller.
async fn call_of(state: &AppState, request: &AppletRequest) -> AppResult<InboundCall> {
    let now = state.clock.now();
    let stored = state.store.inbound_call(&request.call_sid).await.map_err(unavailable)?;
    Ok(stored.unwrap_or_else(|| InboundCall {
        call_sid: request.call_sid.clone(),
        phone: request.from.clone(),
        kind: CallerKind::Unknown,
        party_id: None,
        language: Language::Hi,
        order_id: None,
        pending_orders: 0,
        settled: true,
        choice: None,
        started_at: now,
        updated_at: now,
        active_until: now + ON_THE_LINE,
        ended_at: None,
    }))
}

/// The caller is still on the line.
async fn on_the_line(state: &AppState, call_sid: &str, for_: chrono::Duration) -> AppResult<()> {
    let now = state.clock.now();
    state.store.extend_inbound_call(call_sid, now + for_, now).await.map_err(unavailable)?;
    Ok(())
}

/// The order a menu is about, from Jupiter. A failure is logged and the
/// menu goes on without the order's details.
async fn order_of(state: &AppState, call: &InboundCall) -> Option<Order> {
    let id = call.order_id.as_ref()?;
    match state.jupiter.client.order(id).await {
        Ok(order) => order,
        Err(e) => {
            metrics::counter!("mangwale_inbound_order_lookup_failures_total").increment(1);
            tracing::warn!(call_sid = %call.call_sid, order_id = %id, error = %e, "reading the caller's order failed");
            None
        }
    }
}

/// Which options the caller's menu has.
fn offer_for(call: &InboundCall, order: Option<&Order>) -> Offer {
    let store_phone = order.and_then(|o| o.store.as_ref()).and_then(|s| s.phone.as_ref()).is_some();
    match call.kind {
        CallerKind::Customer => Offer {
            rider: order.and_then(|o| o.rider.as_ref()).and_then(|r| r.phone.as_ref()).is_some(),
            vendor: store_phone && order.is_some_and(|o| o.status != "picked_up"),
            pending: false,
        },
        CallerKind::Rider => Offer {
            rider: order.and_then(|o| crate::masking::leg_of(o, PartyRole::Customer)).is_some(),
            vendor: store_phone,
            pending: false,
        },
        CallerKind::Vendor => {
            Offer { rider: false, vendor: false, pending: call.pending_orders > 0 && call.order_id.is_some() }
        }
        CallerKind::Unknown => Offer::default(),
    }
}

/// The menu a step plays, with what the caller is offered there.
async fn menu_at(state: &AppState, call: &InboundCall, step: &str) -> Option<(InboundMenu, Offer)> {
    let menu = InboundMenu::at(step)?;
    let order = match menu {
        InboundMenu::CustomerOrder | InboundMenu::Rider => order_of(state, call).await,
        _ => None,
    };
    Some((menu, offer_for(call, order.as_ref())))
}

/// The text of a Greeting of the inbound flow.
pub async fn greeting(state: &AppState, request: &AppletRequest, step: &str) -> AppResult<String> {
    let call = call_of(state, request).await?;
    let lang = call.language;
    let text = match step {
        "order_status" => match order_of(state, &call).await {
            Some(order) => inbound::order_status(
                lang,
                &OrderStatusFacts {
                    status: order.status.clone(),
                    store: order.store.as_ref().map(|s| s.name.clone()).filter(|n| !n.is_empty()),
                    rider: order.rider.as_ref().map(|r| r.name.clone()).filter(|n| !n.is_empty()),
                    eta_minutes: order.eta_minutes,
                },
            ),
            None => inbound::welcome(lang),
        },
        "vendor_orders" => {
            let oldest = order_of(state, &call).await.map(|o| PendingFacts {
                order_id: o.id.to_string(),
                amount: Some((o.amount_paise + 50) / 100).filter(|a| *a > 0),
                items: Some(o.items_summary()).filter(|i| !i.is_empty()),
            });
            inbound::vendor_orders(lang, call.pending_orders as usize, oldest.as_ref())
        }
        "rider_delivery" => {
            let delivery = order_of(state, &call).await.map(|o| DeliveryFacts {
                order_id: o.id.to_string(),
                pickup: o.store.as_ref().map(|s| match &s.address {
                    Some(address) => format!("{}, {address}", s.name),
                    None => s.name.clone(),
                }),
                drop: o.delivery_address.as_ref().map(|a| a.address.clone()),
            });
            inbound::rider_delivery(lang, delivery.as_ref())
        }
        "goodbye" => {
            let now = state.clock.now();
            state.store.end_inbound_call(&call.call_sid, now).await.map_err(unavailable)?;
            return Ok(inbound::goodbye(call.choice, lang));
        }
        _ => inbound::welcome(lang),
    };
    on_the_line(state, &call.call_sid, ON_THE_LINE).await?;
    Ok(text)
}

/// The Gather of a menu step of the inbound flow; `None` for a step that is
/// not one of its menus.
pub async fn gather(state: &AppState, request: &AppletRequest, step: &str) -> AppResult<Option<Gather>> {
    let call = call_of(state, request).await?;
    let Some((menu, offer)) = menu_at(state, &call, step).await else { return Ok(None) };
    on_the_line(state, &call.call_sid, ON_THE_LINE).await?;
    let lang = call.language;
    let prompt = inbound::menu_prompt(menu, offer, lang);
    // Back at the menu after a wrong key: say so first, as the ladder menus do.
    let wrong = state.store.ivr_wrong_keys(&call.call_sid, menu.name()).await.map_err(unavailable)?;
    let first = if wrong > 0 { format!("{} {prompt}", ivr::invalid_key_prompt(lang)) } else { prompt.clone() };
    Ok(Some(Gather::menu(Prompt::Text(first)).repeat_with(Prompt::Text(prompt))))
}

/// Whether the Voicebot stream (`/exotel/voicebot`) takes orders (its
/// stream session); `false` sends the ordering keys to the order desk.
pub const VOICEBOT_TAKES_ORDERS: bool = true;

/// Whether callers who press the food, parcel or shop key go to the voice
/// bot: where the bot takes orders and the service can both hear and speak.
/// The bot hands the caller to the order desk when it cannot take the order.
pub fn voice_ordering(state: &AppState) -> bool {
    VOICEBOT_TAKES_ORDERS && state.speech.recognizer.is_some() && state.speech.synthesizer.is_some()
}

/// Acts on the key pressed at a menu of the inbound flow and says where its
/// Switch goes. A retried request (`duplicate`) is answered alike and
/// changes nothing again.
pub async fn key_pressed(state: &AppState, request: &AppletRequest, step: &str, duplicate: bool) -> AppResult<Route> {
    let call = call_of(state, request).await?;
    let Some((menu, offer)) = menu_at(state, &call, step).await else { return Ok(Route::Done) };
    let now = state.clock.now();
    let choice = inbound::interpret(menu, offer, request.digits.as_deref());
    let wrong = match (choice, duplicate) {
        (Choice::Invalid, false) => {
            state.store.ivr_invalid_key(&call.call_sid, menu.name(), now).await.map_err(unavailable)?
        }
        _ => state.store.ivr_wrong_keys(&call.call_sid, menu.name()).await.map_err(unavailable)?,
    };
    let voice_ordering = voice_ordering(state);
    let route = inbound::with_voice_ordering(choice, inbound::route_for(choice, wrong), voice_ordering);
    let key = format!("inbound:{}:{}", call.call_sid, menu.name());
    let applied = match choice {
        Choice::AcceptOldest => Some(vendor_answer(state, &call, Answer::Accept, &key, duplicate).await?),
        Choice::PrepTime(minutes) => {
            Some(vendor_answer(state, &call, Answer::PrepTime(minutes), &key, duplicate).await?)
        }
        _ => None,
    };
    // A vendor's answer to an order that was settled meanwhile (answered
    // elsewhere, withdrawn) did nothing: the goodbye must not thank them
    // for it.
    let remembered = !matches!(choice, Choice::Repeat | Choice::Invalid | Choice::NoInput)
        && !matches!(applied, Some(Applied::AlreadyFinished));
    if remembered && !duplicate {
        state.store.set_inbound_choice(&call.call_sid, choice, now).await.map_err(unavailable)?;
    }
    on_the_line(state, &call.call_sid, ON_THE_LINE).await?;
    if !duplicate {
        metrics::counter!("mangwale_inbound_keys_total", "menu" => menu.name(), "choice" => choice.name()).increment(1);
        let event = NewEvent::new("inbound.key", now)
            .call(&call.call_sid)
            .channel("ivr")
            .context(call.order_id.as_ref().map(OrderId::as_str), None, Some(call.kind.name()))
            .detail(json!({
                "menu": menu.name(), "digits": request.digits, "choice": choice.name(),
                "prepTimeMinutes": choice.minutes(), "select": route.name(), "wrongKeys": wrong,
                "applied": applied.as_ref().map(applied_name),
            }));
        state.store.record_event(event).await.map_err(unavailable)?;
    }
    Ok(route)
}

fn applied_name(applied: &Applied) -> &'static str {
    match applied {
        Applied::Stopped(_) => "stopped",
        Applied::AlreadyFinished => "already_finished",
        Applied::NotAnAnswer => "queued_without_ladder",
    }
}

/// A vendor's 1 (accept) or preparation time at the inbound menu, for the
/// oldest pending order: exactly what the same key does on that order's
/// ladder call, which it stops. An order with no ladder of ours gets the
/// same Jupiter updates, queued durably with the key press.
async fn vendor_answer(
    state: &AppState,
    call: &InboundCall,
    answer: Answer,
    key: &str,
    duplicate: bool,
) -> AppResult<Applied> {
    let Some(order_id) = call.order_id.as_ref() else { return Ok(Applied::AlreadyFinished) };
    let ladders = state.store.ladders_for_order(order_id.as_str()).await.map_err(unavailable)?;
    let ladder = ladders.into_iter().filter(|l| l.kind == LadderKind::VendorNewOrder).max_by_key(|l| l.started_at);
    if let Some(ladder) = ladder {
        return answers::apply(state, &ladder, answer, "ivr", key).await.map_err(unavailable);
    }
    let Some((_, messages)) = answers::effects(LadderKind::VendorNewOrder, answer, order_id.as_str(), "ivr") else {
        return Ok(Applied::NotAnAnswer);
    };
    if duplicate {
        return Ok(Applied::NotAnAnswer);
    }
    let now = state.clock.now();
    let jobs = messages
        .iter()
        .enumerate()
        .map(|(i, m)| crate::jupiter::outbox::job(order_id.as_str(), m, format!("answer:{key}:{i}"), now))
        .collect();
    let party = call.party_id.map(|id| format!("vendor:{id}")).unwrap_or_else(|| "vendor".into());
    let event = NewEvent::new("inbound.vendor_answer", now)
        .call(&call.call_sid)
        .channel("ivr")
        .context(Some(order_id.as_str()), None, Some(&party))
        .detail(json!({"answer": answer, "ladder": null}));
    let inbound = InboundEvent {
        dedup_key: format!("inbound:vendor_answer:{key}"),
        source: "exotel.inbound".into(),
        event,
        jobs,
    };
    state.inbound.record(inbound).await.map_err(|e| {
        tracing::error!(error = %e, "recording a vendor's inbound answer failed");
        AppError::Unavailable { code: "store_unavailable", message: "the answer could not be recorded; retry".into() }
    })?;
    Ok(Applied::NotAnAnswer)
}

/// Whom a Connect of the inbound flow dials. A party who cannot be reached
/// (no order, no number, no desk configured) gets nobody, so the flow moves
/// on to its goodbye, and the reason goes on the timeline.
pub async fn connect(state: &AppState, request: &AppletRequest, step: &str) -> AppResult<Connect> {
    let call = call_of(state, request).await?;
    let outcome = match step {
        "desk" => match state.config.order_desk() {
            Some(desk) => Ok(dial(state, desk, "order_desk")),
            None => Err("no ORDER_DESK_PHONE or ADMIN_SUPPORT_PHONE is configured"),
        },
        "support" => match &state.config.admin_support_phone {
            Some(_) => Ok((crate::comms::ivr::connect(state, "admin"), "support".to_string())),
            None => Err("no ADMIN_SUPPORT_PHONE is configured"),
        },
        "rider" | "vendor" | "customer" => masked(state, &call, step).await?,
        _ => Err("not a Connect of the inbound flow"),
    };
    let now = state.clock.now();
    let (connect, event) = match outcome {
        Ok((connect, whom)) => {
            on_the_line(state, &call.call_sid, chrono::Duration::seconds(i64::from(CONNECT_SECONDS)) + CONNECT_RING)
                .await?;
            let dialled: Vec<String> =
                connect.destination.numbers.iter().map(|n| mangwale_core::mask_phone_numbers(n).into_owned()).collect();
            let detail = json!({"step": step, "whom": whom, "dialled": dialled});
            (connect, NewEvent::new("inbound.connect", now).detail(detail))
        }
        Err(reason) => {
            metrics::counter!("mangwale_inbound_connect_failures_total", "step" => step.to_string()).increment(1);
            tracing::warn!(call_sid = %call.call_sid, step, reason, "inbound Connect dials nobody");
            let detail = json!({"step": step, "reason": reason});
            (Connect::nobody(), NewEvent::new("inbound.connect_failed", now).detail(detail))
        }
    };
    let event = event.call(&call.call_sid).channel("ivr").context(
        call.order_id.as_ref().map(OrderId::as_str),
        None,
        Some(call.kind.name()),
    );
    state.store.record_event(event).await.map_err(unavailable)?;
    Ok(connect)
}

fn dial(state: &AppState, number: &E164, whom: &str) -> (Connect, String) {
    let caller_id = state.exotel.caller_id(crate::exotel::CallerPurpose::Other);
    (Connect::dial(std::slice::from_ref(number), Some(&caller_id)).max_conversation(CONNECT_SECONDS), whom.to_string())
}

/// A customer's rider or vendor, a rider's customer or vendor: through a
/// masking session, so neither side learns the other's number.
async fn masked(
    state: &AppState,
    call: &InboundCall,
    step: &str,
) -> AppResult<Result<(Connect, String), &'static str>> {
    let caller_role = match call.kind {
        CallerKind::Customer => PartyRole::Customer,
        CallerKind::Rider => PartyRole::Rider,
        _ => return Ok(Err("only customers and riders are connected to an order's parties")),
    };
    let Some(caller_phone) = call.phone.clone() else { return Ok(Err("the call has no caller number")) };
    let Some(order) = order_of(state, call).await else { return Ok(Err("the caller's order could not be read")) };
    let role = match step {
        "rider" => PartyRole::Rider,
        "vendor" => PartyRole::Vendor,
        _ => PartyRole::Customer,
    };
    let Some(callee) = crate::masking::leg_of(&order, role) else {
        return Ok(Err("the order names no number for that party"));
    };
    let caller = Leg { role: caller_role, phone: caller_phone };
    let connect =
        crate::masking::connect_through_session(state, &call.call_sid, order.id.as_str(), &caller, &callee).await?;
    // An empty masking pool sends the caller to support instead.
    let reached_callee = connect.destination.numbers.iter().any(|n| n == callee.phone.as_str());
    let whom = if reached_callee { role.as_str() } else { "support" };
    Ok(Ok((connect, whom.to_string())))
}
