//! The compliance gate every campaign message passes, and the one way an
//! opt-out is recorded.
//!
//! [`check`] decides, at the moment of sending, whether one message may go
//! out: TRAI's rules (TCCCPR 2018) as `mangwale_core::campaign` states them
//! (the promotional window, suppression by category) and DLT registration
//! (entity id, template id, header). It reads the suppression ledger on
//! every call, with no cache, so an opt-out is honoured by the next send.
//!
//! [`record_opt_out`] is what every source of an opt-out calls (SMS and
//! WhatsApp STOP, a missed call to `OPT_OUT_NUMBER`, Exotel's `failed_dnd`,
//! the API, later key 9): a ledger entry, a timeline event, a metric.

use chrono::{DateTime, Utc};
use mangwale_core::campaign::{CampaignTemplate, MessageChannel, PromoWindow, SuppressionSource, TemplateCategory};
use mangwale_core::{E164, Language};
use mangwale_store::suppressions::suppression_state;
use mangwale_store::{NewEvent, NewSuppression, StoreError, SuppressionEntry};
use serde_json::json;

use crate::config::{Mode, is_promotional_header, is_service_header};
use crate::state::AppState;

/// The DLT fields an SMS carries, as the gate settled them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsDlt {
    /// The `From` of the SMS: the DLT header, or in sandbox mode without
    /// one, the caller id ExoPhone (which the simulator accepts).
    pub sender: String,
    pub entity_id: Option<String>,
    pub template_id: Option<String>,
    /// The DLT text the body must match (`{#var#}` placeholders).
    pub text: String,
}

/// The gate's answer for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send now; an SMS carries these DLT fields (none for a call).
    Send { dlt: Option<SmsDlt> },
    /// Not now: no sooner than `until` (the promotional window).
    Wait { until: DateTime<Utc>, reason: String },
    /// Never to this number while the ledger says so.
    Suppressed { source: SuppressionSource, since: DateTime<Utc> },
    /// Cannot be sent as configured: `field` names what is missing or wrong.
    Refused { field: String, reason: String },
}

/// Whether a message of `template` in `lang` over `channel` may go to
/// `phone` at `now`. Configuration problems (DLT registration) come first,
/// as they hold for every number; then the ledger; then the window.
pub async fn check(
    state: &AppState,
    phone: &E164,
    template: &CampaignTemplate,
    lang: Language,
    channel: MessageChannel,
    now: DateTime<Utc>,
) -> Result<Verdict, StoreError> {
    let Some(text) = template.text(lang) else {
        return Ok(Verdict::Refused {
            field: "language".into(),
            reason: format!("template {} has no {} text", template.key, lang.code()),
        });
    };
    let dlt = match channel {
        MessageChannel::Voice => None,
        MessageChannel::Sms => match sms_dlt(state, template, lang, &text.sms, text.dlt_template_id.as_deref()) {
            Ok(dlt) => Some(dlt),
            Err(refused) => return Ok(refused),
        },
    };
    let ledger = suppression_state(state.store.as_ref(), phone).await?;
    if let Some(blocking) = ledger.blocking(template.category) {
        return Ok(Verdict::Suppressed { source: blocking.source, since: blocking.since });
    }
    let window = PromoWindow::default();
    let allowed = window.allowed_at(template.category, now);
    if allowed > now {
        return Ok(Verdict::Wait {
            until: allowed,
            reason: "promotional messages go out between 09:00 and 21:00 IST only".into(),
        });
    }
    Ok(Verdict::Send { dlt })
}

/// Why no SMS of `template` in `lang` could be sent as configured (no text
/// in that language; in live mode, a missing DLT registration): the
/// variable or field to set and the reason. `None` when it can be sent.
/// Starting a campaign asks this of every language it will send in, so a
/// campaign that could only fail is refused before it starts.
pub fn sms_not_sendable(state: &AppState, template: &CampaignTemplate, lang: Language) -> Option<(String, String)> {
    let Some(text) = template.text(lang) else {
        return Some(("language".into(), format!("template {} has no {} text", template.key, lang.code())));
    };
    match sms_dlt(state, template, lang, &text.sms, text.dlt_template_id.as_deref()) {
        Err(Verdict::Refused { field, reason }) => Some((field, reason)),
        _ => None,
    }
}

/// The DLT fields of an SMS of `template`, or why it cannot be sent. Live
/// mode needs all of them: the entity id, the template id of the language,
/// and a header of the template's category (6 digits promotional, 6
/// letters otherwise). Sandbox mode sends what is configured and, for the
/// rest, nothing, which the simulator accepts while it has no DLT
/// templates registered (its default).
fn sms_dlt(
    state: &AppState,
    template: &CampaignTemplate,
    lang: Language,
    text: &str,
    template_id: Option<&str>,
) -> Result<SmsDlt, Verdict> {
    let config = &state.config;
    let live = config.mode == Mode::Live;
    let refused = |field: &str, reason: String| Verdict::Refused { field: field.into(), reason };
    let promotional = template.category == TemplateCategory::Promotional;
    let (header_var, header) = if promotional {
        ("EXOTEL_SMS_SENDER_PROMOTIONAL", config.exotel_sms_sender_promotional.clone())
    } else {
        ("EXOTEL_SMS_SENDER", config.exotel_sms_sender.clone())
    };
    if live {
        if config.exotel_dlt_entity_id.is_none() {
            return Err(refused("EXOTEL_DLT_ENTITY_ID", "every SMS needs the DLT principal entity id".into()));
        }
        if template_id.is_none() {
            let var = format!(
                "{}{}_{}",
                crate::config::CAMPAIGN_DLT_PREFIX,
                template.key.as_str().to_ascii_uppercase(),
                lang.code().to_ascii_uppercase()
            );
            return Err(refused(&var, format!("template {} has no DLT template id in {}", template.key, lang.code())));
        }
        let valid = header
            .as_deref()
            .is_some_and(|h| if promotional { is_promotional_header(h) } else { is_service_header(h) });
        if !valid {
            let wanted = if promotional { "a 6-digit promotional header" } else { "a 6-letter header" };
            return Err(refused(
                header_var,
                format!("{} SMS need {wanted} approved on DLT", template.category.as_str()),
            ));
        }
    }
    let sender = match header {
        Some(h) => h,
        None => crate::comms::channels::sms_sender(state),
    };
    Ok(SmsDlt {
        sender,
        entity_id: config.exotel_dlt_entity_id.clone(),
        template_id: template_id.map(str::to_string),
        text: text.to_string(),
    })
}

/// Records that `phone` must get no more campaign messages (as
/// `SuppressionSource::blocks` says for each category): a ledger entry, a
/// `campaign.opt_out` timeline event and `mangwale_campaign_opt_outs_total`.
/// A number the same source already suppresses gets no second entry; the
/// event and the metric say so. Returns the entry written, if one was.
pub async fn record_opt_out(
    state: &AppState,
    phone: &E164,
    source: SuppressionSource,
    note: Option<&str>,
) -> Result<Option<SuppressionEntry>, StoreError> {
    record_opt_out_by(state, phone, source, note, &format!("system:{}", source.as_str())).await
}

/// [`record_opt_out`] naming who recorded it (an operator through the API).
pub async fn record_opt_out_by(
    state: &AppState,
    phone: &E164,
    source: SuppressionSource,
    note: Option<&str>,
    actor: &str,
) -> Result<Option<SuppressionEntry>, StoreError> {
    let now = state.clock.now();
    let entry = NewSuppression {
        phone: phone.clone(),
        source,
        note: note.map(|n| n.chars().take(500).collect()),
        actor: actor.to_string(),
        at: now,
    };
    let written = state.store.add_suppression(&entry).await?;
    let outcome = if written.is_some() { "recorded" } else { "already" };
    let event = NewEvent::new("campaign.opt_out", now)
        .party(format!("customer:{}", phone.masked()))
        .channel(channel_of(source))
        .detail(json!({
            "phone": phone.masked(),
            "source": source.as_str(),
            "optOut": source.is_opt_out(),
            "recorded": written.is_some(),
            "entryId": written.as_ref().map(|e| e.id),
        }));
    state.store.record_event(event).await?;
    metrics::counter!("mangwale_campaign_opt_outs_total", "source" => source.as_str(), "outcome" => outcome)
        .increment(1);
    tracing::info!(phone = %phone.masked(), source = source.as_str(), outcome, "campaign suppression");
    Ok(written)
}

/// The timeline channel an opt-out came through.
fn channel_of(source: SuppressionSource) -> &'static str {
    match source {
        SuppressionSource::SmsStop | SuppressionSource::ExotelDnd => "sms",
        SuppressionSource::WhatsappStop => "whatsapp",
        SuppressionSource::CallKey9 | SuppressionSource::MissedCall => "ivr",
        SuppressionSource::Api | SuppressionSource::ScrubList => "api",
    }
}
