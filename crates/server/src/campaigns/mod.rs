//! Marketing campaigns (issue 13): the template book with the custom
//! templates, the campaign settings from configuration, the recipients
//! intake, the campaign's JSON shape, and the compliance gate with the
//! opt-out intake. The routes are in `routes::campaigns` and
//! `routes::campaign_compliance`; the sender (pacing, the window, retries)
//! picks up running campaigns from the store.

pub mod call;
pub mod compliance;
pub mod intake;
pub mod sender;

use std::sync::Arc;
use std::time::Duration;

use mangwale_core::campaign::{MessageState, Pacing, TemplateBook};
use mangwale_store::{Campaign, CampaignFigures, MessageCount, Store, StoreError};
use serde_json::{Map, Value, json};

use crate::config::ConfigError;

/// Campaign configuration besides the templates (those are
/// `Config::campaign_templates`, with their DLT ids).
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignSettings {
    /// The pacing a campaign gets unless its request sets its own.
    pub pacing: Pacing,
    /// The breaker pauses a campaign when more than this share of its last
    /// [`CampaignSettings::breaker_window`] sends failed.
    pub breaker_failure_share: f64,
    pub breaker_window: u32,
    /// Exotel voice requests a minute that every campaign call of every
    /// replica shares (the account allows 200).
    pub voice_requests_per_minute: u32,
    /// How long the sender's claim holds a message
    /// (`CAMPAIGN_CLAIM_LEASE_SECONDS`): a replica that dies mid-send leaves
    /// its claims until then; the next claim settles them from their keys.
    pub claim_lease: Duration,
}

impl Default for CampaignSettings {
    fn default() -> Self {
        CampaignSettings::from_lookup(&|_: &str| None).unwrap_or_else(|e| unreachable!("defaults are valid: {e}"))
    }
}

/// Default pacing: 10 SMS a second, 2 calls a second (Exotel's 200 voice
/// requests a minute is 3.3/s for every campaign and ladder together),
/// at most 20 calls at once.
const DEFAULT_PACING: Pacing = Pacing { sms_per_second: 10.0, calls_per_second: 2.0, max_concurrent_calls: 20 };

/// Campaign calls a minute by default: under Exotel's 200 with room for
/// the one-second burst the limiter allows (at most 194 in any minute).
const DEFAULT_VOICE_REQUESTS_PER_MINUTE: u32 = 190;

impl CampaignSettings {
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<CampaignSettings, ConfigError> {
        let err = |var: &'static str, message: String| ConfigError { var, message };
        let rate = |var: &'static str, default: f64| match get(var) {
            None => Ok(default),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r > 0.0 && *r <= 1000.0)
                .ok_or_else(|| err(var, format!("'{v}' is not a rate above 0 and at most 1000 a second"))),
        };
        let max_concurrent_calls =
            match get("CAMPAIGN_MAX_CONCURRENT_CALLS") {
                None => DEFAULT_PACING.max_concurrent_calls,
                Some(v) => v.parse::<u32>().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
                    err("CAMPAIGN_MAX_CONCURRENT_CALLS", format!("'{v}' is not a number from 1 to 1000"))
                })?,
            };
        let breaker_failure_share = match get("CAMPAIGN_BREAKER_FAILURE_SHARE") {
            None => 0.5,
            Some(v) => v.parse::<f64>().ok().filter(|s| s.is_finite() && *s > 0.0 && *s < 1.0).ok_or_else(|| {
                err("CAMPAIGN_BREAKER_FAILURE_SHARE", format!("'{v}' is not a share above 0 and below 1"))
            })?,
        };
        let breaker_window = match get("CAMPAIGN_BREAKER_WINDOW") {
            None => 50,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or_else(|| err("CAMPAIGN_BREAKER_WINDOW", format!("'{v}' is not a number from 1 to 10000")))?,
        };
        let voice_requests_per_minute = match get("CAMPAIGN_VOICE_REQUESTS_PER_MINUTE") {
            None => DEFAULT_VOICE_REQUESTS_PER_MINUTE,
            Some(v) => v.parse::<u32>().ok().filter(|n| (1..=10_000).contains(n)).ok_or_else(|| {
                err("CAMPAIGN_VOICE_REQUESTS_PER_MINUTE", format!("'{v}' is not a number from 1 to 10000"))
            })?,
        };
        // Longer than a send can take (Exotel's requests time out after
        // 30 s), or a live send's message would be settled as unknown.
        let claim_lease = match get("CAMPAIGN_CLAIM_LEASE_SECONDS") {
            None => sender::LEASE,
            Some(v) => {
                v.parse::<u64>().ok().filter(|n| (5..=3600).contains(n)).map(Duration::from_secs).ok_or_else(|| {
                    err("CAMPAIGN_CLAIM_LEASE_SECONDS", format!("'{v}' is not a number of seconds from 5 to 3600"))
                })?
            }
        };
        Ok(CampaignSettings {
            pacing: Pacing {
                sms_per_second: rate("CAMPAIGN_SMS_PER_SECOND", DEFAULT_PACING.sms_per_second)?,
                calls_per_second: rate("CAMPAIGN_CALLS_PER_SECOND", DEFAULT_PACING.calls_per_second)?,
                max_concurrent_calls,
            },
            breaker_failure_share,
            breaker_window,
            voice_requests_per_minute,
            claim_lease,
        })
    }

    /// For `check-config`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CAMPAIGN_SMS_PER_SECOND", self.pacing.sms_per_second.to_string()),
            ("CAMPAIGN_CALLS_PER_SECOND", self.pacing.calls_per_second.to_string()),
            ("CAMPAIGN_MAX_CONCURRENT_CALLS", self.pacing.max_concurrent_calls.to_string()),
            ("CAMPAIGN_BREAKER_FAILURE_SHARE", self.breaker_failure_share.to_string()),
            ("CAMPAIGN_BREAKER_WINDOW", self.breaker_window.to_string()),
            ("CAMPAIGN_VOICE_REQUESTS_PER_MINUTE", self.voice_requests_per_minute.to_string()),
            ("CAMPAIGN_CLAIM_LEASE_SECONDS", self.claim_lease.as_secs().to_string()),
        ]
    }
}

/// The campaign services on the application state.
pub struct Campaigns {
    /// The configured templates (built-in and `CAMPAIGN_TEMPLATES_FILE`),
    /// DLT ids included; the store's custom ones are merged in at read time.
    pub book: TemplateBook,
    pub pacing: Pacing,
    pub settings: CampaignSettings,
}

impl Campaigns {
    pub fn new(book: &TemplateBook, settings: &CampaignSettings) -> Arc<Campaigns> {
        Arc::new(Campaigns { book: book.clone(), pacing: settings.pacing, settings: settings.clone() })
    }

    /// Every template: the configured ones, then the custom ones from the
    /// store (a custom template never replaces a configured one: the
    /// route refuses such keys).
    pub async fn templates(&self, store: &dyn Store) -> Result<TemplateBook, StoreError> {
        let mut book = self.book.clone();
        for template in store.custom_templates().await? {
            if book.get(&template.key).is_none() {
                // Checked when it was added; a template that no longer
                // passes the checks is skipped rather than failing the book.
                if let Err(e) = book.insert(template) {
                    tracing::warn!(error = %e, "a stored custom template is not valid; skipped");
                }
            }
        }
        Ok(book)
    }
}

/// The variables every campaign message may use without naming them:
/// `phone` (the order desk, `ORDER_DESK_PHONE` else `ADMIN_SUPPORT_PHONE`)
/// and `opt_out` (`OPT_OUT_NUMBER`), in national form.
pub fn default_variables(state: &crate::state::AppState) -> std::collections::BTreeMap<String, String> {
    let mut values = std::collections::BTreeMap::new();
    if let Some(desk) = state.config.order_desk() {
        values.insert("phone".to_string(), desk.national());
    }
    if let Some(number) = &state.config.opt_out_number {
        values.insert("opt_out".to_string(), number.national());
    }
    values
}

/// The counts the status shows per channel, every state named even at 0.
pub const COUNTED: [MessageState; 10] = MessageState::ALL;

/// The campaign as the API shows it (camelCase, like the incumbent), with
/// its message counts when given.
pub fn campaign_json(c: &Campaign, counts: Option<&[MessageCount]>) -> Value {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339());
    let parse_json = |s: &Option<String>| s.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok());
    let mut out = json!({
        "id": c.id.as_str(),
        "name": c.name,
        "type": c.template.as_str(),
        "channel": c.channel.as_str(),
        "language": c.language.code(),
        "state": c.state.as_str(),
        // The incumbent's name for the state.
        "status": c.state.as_str(),
        "stateReason": c.state_reason,
        "totalRecipients": c.recipients,
        "duplicates": c.duplicates,
        "pacing": c.pacing,
        "callerId": c.caller_id.as_ref().map(|p| p.as_str()),
        "targetAudience": parse_json(&c.target_audience),
        "schedule": parse_json(&c.schedule),
        "startAt": time(c.start_at),
        "createdAt": c.created_at.to_rfc3339(),
        "startedAt": time(c.started_at),
        "pausedAt": time(c.paused_at),
        "finishedAt": time(c.finished_at),
        "updatedAt": c.updated_at.to_rfc3339(),
    });
    if let Some(counts) = counts {
        let mut by_channel = Map::new();
        let mut totals = Map::new();
        for channel in c.message_channels() {
            let mut states = Map::new();
            for state in COUNTED {
                let n: u64 = counts.iter().filter(|m| m.channel == channel && m.state == state).map(|m| m.count).sum();
                states.insert(state.as_str().to_string(), json!(n));
                let total = totals.entry(state.as_str().to_string()).or_insert(json!(0));
                *total = json!(total.as_u64().unwrap_or(0) + n);
            }
            by_channel.insert(channel.as_str().to_string(), Value::Object(states));
        }
        let sum = |states: &[MessageState]| -> u64 {
            counts.iter().filter(|m| states.contains(&m.state)).map(|m| m.count).sum()
        };
        out["counts"] = Value::Object(by_channel);
        out["totals"] = Value::Object(totals);
        // The incumbent's `stats`: sent counts every message that reached
        // Exotel, whatever happened next.
        out["stats"] = json!({
            "total": c.recipients,
            "sent": sum(&[MessageState::Sent, MessageState::Delivered, MessageState::Answered, MessageState::Pressed1,
                          MessageState::OptedOut]),
            "delivered": sum(&[MessageState::Delivered]),
            "answered": sum(&[MessageState::Answered, MessageState::Pressed1]),
            "failed": sum(&[MessageState::Failed]),
        });
    }
    out
}

/// The campaign figures of `/exotel/ivr/analytics`: messages whose state
/// last changed in the range, by channel and state (every state named);
/// suppression entries added, by source; campaign calls placed, answered
/// (picked up, whatever followed) and with 1 pressed.
pub fn figures_json(f: &CampaignFigures) -> Value {
    use mangwale_core::campaign::{MessageChannel, SuppressionSource};
    let count = |channel: MessageChannel, states: &[MessageState]| -> u64 {
        f.messages.iter().filter(|(c, s, _)| *c == channel && states.contains(s)).map(|(_, _, n)| n).sum()
    };
    let mut messages = Map::new();
    for channel in [MessageChannel::Sms, MessageChannel::Voice] {
        let states: Map<String, Value> =
            COUNTED.iter().map(|s| (s.as_str().to_string(), json!(count(channel, &[*s])))).collect();
        messages.insert(channel.as_str().to_string(), Value::Object(states));
    }
    let opt_outs: Map<String, Value> = SuppressionSource::ALL
        .iter()
        .map(|s| {
            let n: u64 = f.opt_outs.iter().filter(|(src, _)| src == s).map(|(_, n)| n).sum();
            (s.as_str().to_string(), json!(n))
        })
        .collect();
    json!({
        "messages": messages,
        "optOuts": opt_outs,
        "callsPlaced": f.calls,
        "callsAnswered": count(MessageChannel::Voice, &[MessageState::Answered, MessageState::Pressed1, MessageState::OptedOut]),
        "pressed1": count(MessageChannel::Voice, &[MessageState::Pressed1]),
        "smsDelivered": count(MessageChannel::Sms, &[MessageState::Delivered]),
    })
}

/// A campaign's timeline event (`channel` campaign, party
/// `campaign:<id>`): the campaign's id, name, type, channel and state, and
/// what `extra` (a JSON object) adds.
pub fn campaign_event(
    kind: &str,
    c: &Campaign,
    at: chrono::DateTime<chrono::Utc>,
    extra: Value,
) -> mangwale_store::NewEvent {
    let mut detail = json!({"campaignId": c.id.as_str(), "name": c.name, "type": c.template.as_str(),
                            "channel": c.channel.as_str(), "state": c.state.as_str()});
    if let (Value::Object(d), Value::Object(e)) = (&mut detail, extra) {
        d.extend(e);
    }
    mangwale_store::NewEvent::new(kind, at).channel("campaign").party(format!("campaign:{}", c.id)).detail(detail)
}
