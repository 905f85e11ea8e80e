//! What each step of a ladder says or sends, as text, for the live board:
//! the same renderers the steps use when they send.
//!
//! - `ring`, `ivr`: the IVR's announcement and menu, in the party's
//!   language (picking up a ring plays the IVR too).
//! - `sms`: the ladder's SMS template rendered in the party's language.
//! - `app_push`: the push's title and body (English: the apps localise by
//!   the push's `kind`).
//! - `whatsapp`: the approved template in the party's language code, with
//!   its parameters and quick replies (Meta holds the template's text).
//! - `admin`: the alert SMS to admin support.
//! - `deadline`: nothing is said.

use mangwale_core::ivr::{self, Menu};
use mangwale_core::ladder::Channel;
use mangwale_store::Ladder;

use super::{answers, channels, steps};
use crate::state::AppState;

/// The text of `ladder`'s step on `channel`; `None` if the step says nothing
/// (a deadline, a call without an IVR flow, an SMS without a template).
pub fn step_prompt(state: &AppState, ladder: &Ladder, channel: Channel) -> Option<String> {
    match channel {
        Channel::Ring | Channel::Ivr => ivr_prompt(ladder),
        Channel::Sms => channels::ladder_sms(state, ladder).ok().map(|sms| sms.body),
        Channel::AppPush => {
            let private = state.channels.push.as_ref().is_some_and(|c| !c.sends_to_topics());
            let (title, body) = channels::push_text(ladder, private);
            Some(if body.is_empty() { title } else { format!("{title}: {body}") })
        }
        Channel::WhatsApp => whatsapp_prompt(ladder),
        Channel::Admin => Some(steps::admin_alert_text(ladder, None)),
        Channel::Deadline => None,
    }
}

/// The announcement of the ladder's IVR flow and its menu.
fn ivr_prompt(ladder: &Ladder) -> Option<String> {
    let flow = ladder.definition.ivr_flow.as_deref()?;
    let language = ladder.language;
    let announcement = ivr::announcement(flow, language, &ladder.context.facts());
    Some(match Menu::at(flow, "menu") {
        Some(menu) => format!("{announcement} {}", ivr::menu_prompt(menu, language)),
        None => announcement,
    })
}

/// `vendor_new_order (hi): MW-1 | 325 | Poha x1 [accept / reject]`.
fn whatsapp_prompt(ladder: &Ladder) -> Option<String> {
    let template = ladder.definition.whatsapp_template.as_deref()?;
    let language = ladder.definition.whatsapp_language(ladder.language.code());
    let params = channels::template_params(ladder).join(" | ");
    let buttons = answers::buttons(ladder.kind);
    let replies = if buttons.is_empty() { String::new() } else { format!(" [{}]", buttons.join(" / ")) };
    Some(format!("{template} ({language}): {params}{replies}"))
}

#[cfg(test)]
mod tests {
    use mangwale_core::Language;
    use mangwale_core::ladder::{LadderBook, LadderKind, LadderState, Money};

    use super::*;

    fn ladder(language: Language) -> Ladder {
        let context = mangwale_core::ladder::LadderContext {
            amount: Some(Money::from_paise(32_500)),
            items: Some("Poha x1".into()),
            ..Default::default()
        };
        Ladder {
            escalation_id: "vendor_order_MW-1".into(),
            kind: LadderKind::VendorNewOrder,
            order_id: Some("MW-1".into()),
            party: "vendor:V-1".into(),
            phone: None,
            language,
            context,
            definition: LadderBook::defaults().get(LadderKind::VendorNewOrder).clone(),
            state: LadderState::Active,
            started_at: chrono::DateTime::UNIX_EPOCH,
            finished_at: None,
            stop_action: None,
            stop_actor: None,
            steps: Vec::new(),
        }
    }

    #[test]
    fn the_ivr_prompt_is_in_the_party_language_and_whatsapp_names_its_template() {
        let hindi = ivr_prompt(&ladder(Language::Hi)).unwrap();
        assert!(hindi.starts_with("Mangwale se naya order. Amount 325 rupees. Items: Poha x1."), "{hindi}");
        assert!(hindi.contains("Accept ke liye 1"), "{hindi}");
        let marathi = ivr_prompt(&ladder(Language::Mr)).unwrap();
        assert!(marathi.starts_with("Mangwale kadun nava order."), "{marathi}");
        let whatsapp = whatsapp_prompt(&ladder(Language::Hi)).unwrap();
        assert_eq!(whatsapp, "vendor_new_order (hi): MW-1 | 325 | Poha x1 [accept / reject]");
    }
}
