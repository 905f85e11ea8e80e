//! A party's answer (an IVR key, a WhatsApp button) carried out: what
//! Jupiter is told, and how the ladder stops — in one transaction, so an
//! answer is never half done, and a second answer (the vendor pressed 1 on
//! the IVR after tapping Accept on WhatsApp) sets nothing in motion again.

use mangwale_core::ivr::Answer;
use mangwale_core::ladder::{LadderKind, StopAction};
use mangwale_store::{Ladder, LadderStop, NewJob};
use serde_json::{Value, json};

use crate::jupiter::outbox::{self, OutboxMessage};
use crate::state::AppState;

/// What an answer means for a ladder: how it stops, and what Jupiter hears
/// (in order). `None`: the answer stops nothing (a menu step, no input).
pub fn effects(
    kind: LadderKind,
    answer: Answer,
    order_id: &str,
    via: &str,
) -> Option<(StopAction, Vec<OutboxMessage>)> {
    let status = |status: &str, metadata: Value| OutboxMessage::OrderStatus { status: status.into(), metadata };
    let event = |kind: &str, data: Value| outbox::event(kind, order_id, data);
    let via_data = json!({"via": via});
    Some(match (kind, answer) {
        (LadderKind::VendorNewOrder, Answer::Accept) => {
            (StopAction::Accept, vec![status("confirmed", json!({"via": via})), event("vendor_accepted", via_data)])
        }
        (LadderKind::VendorNewOrder, Answer::Reject) => (
            StopAction::Reject,
            vec![
                status("canceled", json!({"via": via, "reason": "vendor_rejected"})),
                event("vendor_rejected", via_data),
            ],
        ),
        (LadderKind::VendorNewOrder, Answer::PrepTime(minutes)) => (
            StopAction::Accept,
            vec![
                status("processing", json!({"prepTimeMinutes": minutes, "via": via})),
                event("prep_time_set", json!({"prepTimeMinutes": minutes, "via": via})),
            ],
        ),
        (LadderKind::VendorReminder, Answer::Ready) => {
            (StopAction::Ready, vec![status("handover", json!({"via": via})), event("order_ready", via_data)])
        }
        (LadderKind::VendorReminder, Answer::Extend(minutes)) => {
            (StopAction::Extend, vec![event("prep_time_extended", json!({"extendMinutes": minutes, "via": via}))])
        }
        (LadderKind::RiderAssign, Answer::Accept) => (StopAction::Accept, vec![event("rider_accepted", via_data)]),
        (LadderKind::RiderAssign, Answer::Reject) => (
            StopAction::Reject,
            vec![
                event("rider_rejected", via_data.clone()),
                event("reassign_rider", json!({"reason": "rider_rejected", "via": via})),
            ],
        ),
        (LadderKind::RiderAddressUpdate, Answer::Confirm) => {
            (StopAction::Confirm, vec![event("address_confirmed", via_data)])
        }
        (LadderKind::RiderAddressUpdate, Answer::Problem) => {
            (StopAction::Problem, vec![event("address_problem", via_data)])
        }
        _ => return None,
    })
}

/// How applying an answer went.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// This answer stopped the ladder and its Jupiter updates are queued.
    Stopped(StopAction),
    /// The ladder had finished already (answered elsewhere, stopped,
    /// exhausted): nothing was done.
    AlreadyFinished,
    /// Not an answer that stops this ladder.
    NotAnAnswer,
}

/// Carries out `answer` for `ladder`. `key` makes the Jupiter jobs
/// idempotent (the IVR request or WhatsApp message that brought it), so a
/// provider's retry of the same request changes nothing.
pub async fn apply(
    state: &AppState,
    ladder: &Ladder,
    answer: Answer,
    via: &str,
    key: &str,
) -> Result<Applied, mangwale_store::StoreError> {
    let kind = ladder.kind;
    let order_id = ladder.order_id.clone().unwrap_or_default();
    let Some((action, messages)) = effects(kind, answer, &order_id, via) else {
        return Ok(Applied::NotAnAnswer);
    };
    let now = state.clock.now();
    let mut jobs: Vec<NewJob> = if order_id.is_empty() {
        Vec::new()
    } else {
        messages
            .iter()
            .enumerate()
            .map(|(i, message)| outbox::job(&order_id, message, format!("answer:{key}:{i}"), now))
            .collect()
    };
    // "Ten more minutes": the reminder comes back then, as a new run.
    if let Answer::Extend(minutes) = answer
        && !order_id.is_empty()
    {
        let vendor = ladder.party.split_once(':').map(|(_, id)| id.to_string());
        jobs.push(NewJob::new(
            crate::jupiter::events::LADDER_START_JOB,
            format!("extend:{key}"),
            serde_json::json!({
                "ladder": LadderKind::VendorReminder.name(), "orderId": order_id, "source": format!("{via}:extend"),
                "phone": ladder.phone, "language": ladder.language,
                "context": {"vendor_id": vendor, "minutes_remaining": minutes},
            }),
            now + chrono::Duration::minutes(i64::from(minutes)),
        ));
    }
    // "Rider accepts → gets pickup location", and the rider's masked
    // sessions open, with the stop.
    if kind == LadderKind::RiderAssign && answer == Answer::Accept {
        jobs.extend(super::pickup::accept_jobs(ladder, via, key, now));
    }
    // "Problem" on the IVR is connected to admin within the call; from
    // anywhere else admin is alerted and bridged to the party.
    if answer == Answer::Problem && via != "ivr" {
        jobs.push(NewJob::new(
            super::steps::ADMIN_JOB,
            format!("{}:{key}", super::steps::ADMIN_JOB),
            serde_json::json!({"escalationId": ladder.escalation_id, "reason": "problem"}),
            now,
        ));
    }
    let outcome = super::stop(state, &ladder.escalation_id, action, &ladder.party, via, jobs).await?;
    Ok(match outcome {
        LadderStop::Stopped(_) => Applied::Stopped(action),
        LadderStop::AlreadyFinished(_) | LadderStop::NotFound => Applied::AlreadyFinished,
    })
}

/// A WhatsApp quick-reply payload: `<escalation id>|<action>`.
pub fn button_payload(escalation_id: &str, action: &str) -> String {
    format!("{escalation_id}|{action}")
}

/// Reads a quick-reply payload back: the escalation id and the answer.
pub fn parse_button(payload: &str) -> Option<(&str, Answer)> {
    let (escalation_id, action) = payload.rsplit_once('|')?;
    let answer = match action {
        "accept" => Answer::Accept,
        "reject" => Answer::Reject,
        "ready" => Answer::Ready,
        "extend" => Answer::Extend(mangwale_core::ivr::EXTEND_MINUTES),
        "confirm" => Answer::Confirm,
        "problem" => Answer::Problem,
        _ => return None,
    };
    (!escalation_id.is_empty()).then_some((escalation_id, answer))
}

/// The two buttons of a ladder's WhatsApp template, in order.
pub fn buttons(kind: LadderKind) -> &'static [&'static str] {
    match kind {
        LadderKind::VendorNewOrder | LadderKind::RiderAssign => &["accept", "reject"],
        LadderKind::VendorReminder => &["ready", "extend"],
        LadderKind::RiderAddressUpdate => &["confirm", "problem"],
        LadderKind::CustomerStatus | LadderKind::CustomerDelay => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vendor_accept_confirms_the_order_and_prep_time_reaches_jupiter() {
        let (action, messages) = effects(LadderKind::VendorNewOrder, Answer::Accept, "MW-1", "ivr").unwrap();
        assert_eq!(action, StopAction::Accept);
        assert_eq!(
            messages[0],
            OutboxMessage::OrderStatus { status: "confirmed".into(), metadata: json!({"via": "ivr"}) }
        );
        let (_, messages) = effects(LadderKind::VendorNewOrder, Answer::PrepTime(20), "MW-1", "ivr").unwrap();
        assert!(matches!(&messages[0], OutboxMessage::OrderStatus { status, metadata }
            if status == "processing" && metadata["prepTimeMinutes"] == 20));
        assert_eq!(effects(LadderKind::VendorNewOrder, Answer::AskPrepTime, "MW-1", "ivr"), None);
        assert_eq!(effects(LadderKind::RiderAssign, Answer::Ready, "MW-1", "ivr"), None, "not this ladder's answer");
        let (action, messages) = effects(LadderKind::RiderAssign, Answer::Reject, "MW-1", "whatsapp").unwrap();
        assert_eq!((action, messages.len()), (StopAction::Reject, 2));
    }

    #[test]
    fn button_payloads_round_trip() {
        let payload = button_payload("vendor_order_MW-1", "accept");
        assert_eq!(parse_button(&payload), Some(("vendor_order_MW-1", Answer::Accept)));
        assert_eq!(parse_button("vendor_order_MW-1|dance"), None);
        assert_eq!(parse_button("|accept"), None);
        assert_eq!(parse_button("nothing"), None);
    }
}
