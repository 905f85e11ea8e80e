//! Escalation ladders as data: which channel reaches a party how long after
//! the ladder started, and the rules that decide what a ladder does next.
//!
//! The definitions come from `config/ladders.toml` (built in) or a file named
//! by `LADDERS_FILE`. A running ladder keeps the copy it started with.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::InvalidValue;
pub use crate::context::{LadderContext, Money, PaymentMode};

/// The built-in definitions: the seed's timings.
pub const DEFAULT_LADDERS_TOML: &str = include_str!("../../../config/ladders.toml");

/// What a ladder is for. Its name is the ladder type of the API and of the
/// configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LadderKind {
    VendorNewOrder,
    VendorReminder,
    RiderAssign,
    RiderAddressUpdate,
    CustomerStatus,
    CustomerDelay,
}

impl LadderKind {
    pub const ALL: [LadderKind; 6] = [
        LadderKind::VendorNewOrder,
        LadderKind::VendorReminder,
        LadderKind::RiderAssign,
        LadderKind::RiderAddressUpdate,
        LadderKind::CustomerStatus,
        LadderKind::CustomerDelay,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LadderKind::VendorNewOrder => "vendor_new_order",
            LadderKind::VendorReminder => "vendor_reminder",
            LadderKind::RiderAssign => "rider_assign",
            LadderKind::RiderAddressUpdate => "rider_address_update",
            LadderKind::CustomerStatus => "customer_status",
            LadderKind::CustomerDelay => "customer_delay",
        }
    }

    /// The incumbent's deterministic escalation ids. Customer notices are
    /// many per order, so theirs carry the start time (unix milliseconds).
    pub fn escalation_id(self, order_id: &str, started_ms: i64) -> String {
        match self {
            LadderKind::VendorNewOrder => format!("vendor_order_{order_id}"),
            LadderKind::VendorReminder => format!("vendor_reminder_{order_id}"),
            LadderKind::RiderAssign => format!("rider_assign_{order_id}"),
            LadderKind::RiderAddressUpdate => format!("rider_address_{order_id}"),
            LadderKind::CustomerStatus => format!("customer_status_{order_id}_{started_ms}"),
            LadderKind::CustomerDelay => format!("customer_delay_{order_id}_{started_ms}"),
        }
    }
}

impl fmt::Display for LadderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LadderKind {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LadderKind::ALL.into_iter().find(|k| k.name() == s.trim()).ok_or_else(|| {
            let names: Vec<&str> = LadderKind::ALL.iter().map(|k| k.name()).collect();
            InvalidValue(format!("unknown ladder type '{s}': one of {}", names.join(", ")))
        })
    }
}

/// Who a ladder reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyRole {
    Vendor,
    Rider,
    Customer,
}

impl PartyRole {
    pub fn name(self) -> &'static str {
        match self {
            PartyRole::Vendor => "vendor",
            PartyRole::Rider => "rider",
            PartyRole::Customer => "customer",
        }
    }
}

/// A way of reaching a party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    AppPush,
    #[serde(rename = "whatsapp")]
    WhatsApp,
    Ring,
    Ivr,
    Admin,
    /// A transactional SMS on the ladder's `sms_template` (a service-implicit
    /// DLT template), for a party the earlier steps did not reach: a
    /// voice-first customer often has neither the app nor WhatsApp.
    Sms,
    /// Not a channel: the time by which a ladder whose last step was a call
    /// counts as unanswered (see [`with_deadline`]).
    Deadline,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::AppPush => "app_push",
            Channel::WhatsApp => "whatsapp",
            Channel::Ring => "ring",
            Channel::Ivr => "ivr",
            Channel::Admin => "admin",
            Channel::Sms => "sms",
            Channel::Deadline => "deadline",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        [
            Channel::AppPush,
            Channel::WhatsApp,
            Channel::Ring,
            Channel::Ivr,
            Channel::Admin,
            Channel::Sms,
            Channel::Deadline,
        ]
        .into_iter()
        .find(|c| c.name() == s)
    }
}

/// Which dedicated caller id a ladder's calls show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerKind {
    /// EXOTEL_DID_NEW_ORDER: "New Order - Mangwale".
    NewOrder,
    /// EXOTEL_DID_REMINDER.
    Reminder,
    /// EXOTEL_DID_ADDRESS.
    Address,
    /// EXOTEL_CALLER_ID.
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    pub channel: Channel,
    /// Seconds after the ladder's start.
    pub after: u32,
}

/// One ladder's definition; a running ladder keeps a copy of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LadderDef {
    pub party: PartyRole,
    /// The WhatsApp template's name as approved by Meta: `^[a-z0-9_]+$`.
    pub whatsapp_template: Option<String>,
    /// The language code the template is approved in, by the party's
    /// language (`en = "en_US"`), where it is not the party's own code:
    /// Meta matches the code exactly, and `en` and `en_US` are different
    /// translations. Unlisted languages are sent as `hi`, `en`, `mr`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub whatsapp_languages: BTreeMap<String, String>,
    /// The Exotel flow of the `ring` and `ivr` steps.
    pub ivr_flow: Option<String>,
    /// The SMS template of the `sms` step: a key of the template book
    /// (`config/campaign_templates.toml`), service-implicit so that it goes
    /// out around the clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_template: Option<String>,
    pub caller: CallerKind,
    pub steps: Vec<StepDef>,
}

/// Every ladder's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LadderBook {
    ladders: BTreeMap<LadderKind, LadderDef>,
}

/// The longest wait a step may have: a ladder is about minutes, not days.
pub const MAX_STEP_AFTER_SECS: u32 = 24 * 3600;

impl LadderBook {
    /// The built-in definitions.
    pub fn defaults() -> LadderBook {
        // The built-in file is checked by a test, so this cannot fail.
        LadderBook::from_toml(DEFAULT_LADDERS_TOML).unwrap_or_else(|e| panic!("config/ladders.toml: {e}"))
    }

    /// Parses and checks a definitions file: every ladder type present,
    /// steps in time order, IVR and ring steps with a flow, WhatsApp steps
    /// with a template.
    pub fn from_toml(text: &str) -> Result<LadderBook, InvalidValue> {
        let ladders: BTreeMap<LadderKind, LadderDef> =
            toml::from_str(text).map_err(|e| InvalidValue(format!("ladder definitions: {e}")))?;
        for kind in LadderKind::ALL {
            let def = ladders.get(&kind).ok_or_else(|| InvalidValue(format!("ladder {kind} is not defined")))?;
            if let Some(name) = def.whatsapp_template.as_deref().filter(|n| !valid_whatsapp_template_name(n)) {
                return Err(InvalidValue(format!(
                    "ladder {kind}: whatsapp_template '{name}' is not a name Meta accepts (^[a-z0-9_]+$)"
                )));
            }
            for (language, code) in &def.whatsapp_languages {
                if !matches!(language.as_str(), "hi" | "en" | "mr") {
                    return Err(InvalidValue(format!(
                        "ladder {kind}: whatsapp_languages key '{language}' must be hi, en or mr"
                    )));
                }
                if !valid_whatsapp_language(code) {
                    return Err(InvalidValue(format!(
                        "ladder {kind}: whatsapp_languages.{language} '{code}' is not a language code such as en or en_US"
                    )));
                }
            }
            if def.steps.is_empty() {
                return Err(InvalidValue(format!("ladder {kind} has no steps")));
            }
            let mut last = 0;
            for (i, step) in def.steps.iter().enumerate() {
                if step.after < last {
                    return Err(InvalidValue(format!("ladder {kind} step {i}: steps must be in time order")));
                }
                if step.after > MAX_STEP_AFTER_SECS {
                    return Err(InvalidValue(format!("ladder {kind} step {i}: at most {MAX_STEP_AFTER_SECS} s")));
                }
                last = step.after;
                if step.channel == Channel::Deadline {
                    return Err(InvalidValue(format!(
                        "ladder {kind} step {i}: `deadline` is added by the service, not configured"
                    )));
                }
                let missing = match step.channel {
                    Channel::Ring | Channel::Ivr if def.ivr_flow.is_none() => Some("ivr_flow"),
                    Channel::WhatsApp if def.whatsapp_template.is_none() => Some("whatsapp_template"),
                    Channel::Sms if def.sms_template.is_none() => Some("sms_template"),
                    _ => None,
                };
                if let Some(field) = missing {
                    return Err(InvalidValue(format!(
                        "ladder {kind} step {i} ({}) needs {field}",
                        step.channel.name()
                    )));
                }
            }
        }
        Ok(LadderBook { ladders })
    }

    pub fn get(&self, kind: LadderKind) -> &LadderDef {
        // from_toml guarantees every kind is present.
        &self.ladders[&kind]
    }
}

impl LadderDef {
    /// The language code to send the WhatsApp template in, for a party
    /// speaking `language` (`hi`, `en`, `mr`).
    pub fn whatsapp_language(&self, language: &str) -> String {
        self.whatsapp_languages.get(language).cloned().unwrap_or_else(|| language.to_string())
    }
}

/// Whether `name` is a WhatsApp template name Meta can approve:
/// `^[a-z0-9_]+$`, at most 512 characters.
pub fn valid_whatsapp_template_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 512
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A WhatsApp language code as Meta writes them: `en`, `en_US`, `zh_CN`.
fn valid_whatsapp_language(code: &str) -> bool {
    let mut parts = code.split('_');
    let lang = parts.next().unwrap_or("");
    let region = parts.next();
    (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_lowercase())
        && region.is_none_or(|r| (2..=4).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric()))
        && parts.next().is_none()
}

/// Where a ladder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LadderState {
    /// Steps are still due.
    Active,
    /// Someone answered, or it was stopped by API or event.
    Stopped,
    /// Every step was tried and nobody answered.
    Exhausted,
}

impl LadderState {
    pub fn name(self) -> &'static str {
        match self {
            LadderState::Active => "active",
            LadderState::Stopped => "stopped",
            LadderState::Exhausted => "exhausted",
        }
    }

    pub fn parse(s: &str) -> Option<LadderState> {
        [LadderState::Active, LadderState::Stopped, LadderState::Exhausted].into_iter().find(|l| l.name() == s)
    }
}

/// Where one step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Waiting for its time (or for a retry).
    Pending,
    /// A worker took it and is sending. Seen by another worker, it means the
    /// first died mid-send: the step is then never sent again (it may have
    /// gone out), and counted unknown.
    Sending,
    Sent,
    /// The channel refused it or ran out of retries.
    Failed,
    /// Not sendable for this party (no WhatsApp template, no phone, ...).
    Skipped,
    /// A worker died while sending it.
    Unknown,
    /// The ladder stopped first.
    Canceled,
}

impl StepState {
    pub fn name(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Sending => "sending",
            StepState::Sent => "sent",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::Unknown => "unknown",
            StepState::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<StepState> {
        [
            StepState::Pending,
            StepState::Sending,
            StepState::Sent,
            StepState::Failed,
            StepState::Skipped,
            StepState::Unknown,
            StepState::Canceled,
        ]
        .into_iter()
        .find(|v| v.name() == s)
    }

    /// Done with, one way or another.
    pub fn is_final(self) -> bool {
        !matches!(self, StepState::Pending | StepState::Sending)
    }
}

/// Why a ladder stopped, as the API and the IVR say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopAction {
    Accept,
    Reject,
    Ready,
    Extend,
    Confirm,
    Problem,
    /// Jupiter said the order moved on (delivered, reassigned).
    Superseded,
    /// Stopped by an operator or API caller without a party's answer.
    Cancel,
}

impl StopAction {
    pub const ALL: [StopAction; 8] = [
        StopAction::Accept,
        StopAction::Reject,
        StopAction::Ready,
        StopAction::Extend,
        StopAction::Confirm,
        StopAction::Problem,
        StopAction::Superseded,
        StopAction::Cancel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StopAction::Accept => "accept",
            StopAction::Reject => "reject",
            StopAction::Ready => "ready",
            StopAction::Extend => "extend",
            StopAction::Confirm => "confirm",
            StopAction::Problem => "problem",
            StopAction::Superseded => "superseded",
            StopAction::Cancel => "cancel",
        }
    }

    /// A response from the party itself (counts for response times).
    pub fn is_response(self) -> bool {
        !matches!(self, StopAction::Superseded | StopAction::Cancel)
    }
}

impl FromStr for StopAction {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        let alias = match s.as_str() {
            "accepted" => "accept",
            "rejected" => "reject",
            "confirmed" => "confirm",
            "canceled" | "cancelled" | "stop" | "stopped" => "cancel",
            other => other,
        };
        StopAction::ALL.into_iter().find(|a| a.name() == alias).ok_or_else(|| {
            let names: Vec<&str> = StopAction::ALL.iter().map(|a| a.name()).collect();
            InvalidValue(format!("unknown action '{s}': one of {}", names.join(", ")))
        })
    }
}

/// How long after a ladder's last step, when that step is a call, the party
/// may still answer it: the call rings up to 40 s and lasts up to 5 min.
pub const CALL_ANSWER_WINDOW_SECS: u32 = 360;

/// A call (ring, IVR) is answered on the call, minutes after it was placed.
/// A ladder whose answer window outlasts its last step (the IVR at 180 s
/// can still be answered after the admin step at 300 s) gets a final
/// `deadline` step, and runs out only when that passes unanswered.
pub fn with_deadline(mut def: LadderDef) -> LadderDef {
    let last_call =
        def.steps.iter().filter(|s| matches!(s.channel, Channel::Ring | Channel::Ivr)).map(|s| s.after).max();
    let last = def.steps.last().map(|s| s.after).unwrap_or(0);
    if let Some(call) = last_call
        && call + CALL_ANSWER_WINDOW_SECS > last
    {
        def.steps.push(StepDef { channel: Channel::Deadline, after: call + CALL_ANSWER_WINDOW_SECS });
    }
    def
}

/// The step times of a ladder started at `started_ms` (unix milliseconds).
pub fn schedule(def: &LadderDef, started_ms: i64) -> Vec<(u32, Channel, i64)> {
    def.steps.iter().enumerate().map(|(i, s)| (i as u32, s.channel, started_ms + i64::from(s.after) * 1000)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_ladders_are_the_seeds() {
        let book = LadderBook::defaults();
        let vendor = book.get(LadderKind::VendorNewOrder);
        let steps: Vec<(&str, u32)> = vendor.steps.iter().map(|s| (s.channel.name(), s.after)).collect();
        assert_eq!(steps, [("app_push", 0), ("whatsapp", 60), ("ring", 120), ("ivr", 180), ("admin", 300)]);
        assert_eq!(vendor.whatsapp_template.as_deref(), Some("vendor_new_order"));
        for kind in LadderKind::ALL {
            let template = book.get(kind).whatsapp_template.clone().unwrap_or_default();
            assert!(valid_whatsapp_template_name(&template), "{kind}: {template}");
        }
        assert_eq!(vendor.whatsapp_language("hi"), "hi");
        let address = book.get(LadderKind::RiderAddressUpdate);
        let steps: Vec<(&str, u32)> = address.steps.iter().map(|s| (s.channel.name(), s.after)).collect();
        assert_eq!(steps, [("whatsapp", 0), ("ring", 30), ("ivr", 90), ("admin", 150)]);
        assert_eq!(address.caller, CallerKind::Address);
        let delay = book.get(LadderKind::CustomerDelay);
        let steps: Vec<(&str, u32)> = delay.steps.iter().map(|s| (s.channel.name(), s.after)).collect();
        assert_eq!(steps, [("whatsapp", 0), ("sms", 60)], "a customer without WhatsApp gets an SMS");
        assert_eq!(delay.sms_template.as_deref(), Some("customer_delay"));
    }

    #[test]
    fn bad_definitions_are_refused_with_the_reason() {
        let mut text = DEFAULT_LADDERS_TOML.replace(
            "{ channel = \"ivr\", after = 180 },\n  { channel = \"admin\", after = 300 },",
            "{ channel = \"ivr\", after = 400 },\n  { channel = \"admin\", after = 300 },",
        );
        assert!(LadderBook::from_toml(&text).unwrap_err().0.contains("time order"));
        text = DEFAULT_LADDERS_TOML.replace("[customer_delay]", "[customer_delayed]");
        assert!(LadderBook::from_toml(&text).is_err());
        text = DEFAULT_LADDERS_TOML.replace("sms_template = \"customer_delay\"\n", "");
        assert!(LadderBook::from_toml(&text).unwrap_err().0.contains("needs sms_template"));
        text = DEFAULT_LADDERS_TOML.replace("ivr_flow = \"vendor_reminder\"\n", "");
        assert!(LadderBook::from_toml(&text).unwrap_err().0.contains("needs ivr_flow"));
        text = DEFAULT_LADDERS_TOML.replace("\"vendor_new_order\"\nivr_flow", "\"Vendor_New_Order\"\nivr_flow");
        assert!(LadderBook::from_toml(&text).unwrap_err().0.contains("^[a-z0-9_]+$"));
        let mapped = "[customer_delay]\nparty = \"customer\"\nwhatsapp_template = \"customer_delay\"\n";
        text = DEFAULT_LADDERS_TOML.replace(mapped, &format!("{mapped}whatsapp_languages = {{ en = \"en_US\" }}\n"));
        let book = LadderBook::from_toml(&text).unwrap();
        let delay = book.get(LadderKind::CustomerDelay);
        assert_eq!((delay.whatsapp_language("en").as_str(), delay.whatsapp_language("hi").as_str()), ("en_US", "hi"));
        let json = serde_json::to_value(book.get(LadderKind::CustomerStatus)).unwrap();
        assert!(json.get("whatsapp_languages").is_none(), "unmapped definitions are stored as before");
        text = DEFAULT_LADDERS_TOML.replace(mapped, &format!("{mapped}whatsapp_languages = {{ en = \"EN-us\" }}\n"));
        assert!(LadderBook::from_toml(&text).unwrap_err().0.contains("whatsapp_languages.en"));
    }

    #[test]
    fn names_round_trip() {
        for kind in LadderKind::ALL {
            assert_eq!(kind.name().parse::<LadderKind>().unwrap(), kind);
        }
        assert!("vendor_teleport".parse::<LadderKind>().unwrap_err().0.contains("vendor_new_order"));
        assert_eq!(LadderKind::VendorNewOrder.escalation_id("MW-1", 5), "vendor_order_MW-1");
        assert_eq!(LadderKind::CustomerStatus.escalation_id("MW-1", 5), "customer_status_MW-1_5");
        assert_eq!("Accepted".parse::<StopAction>().unwrap(), StopAction::Accept);
        assert!("maybe".parse::<StopAction>().is_err());
        for state in [StepState::Pending, StepState::Sent, StepState::Canceled] {
            assert_eq!(StepState::parse(state.name()), Some(state));
        }
        assert_eq!(Channel::parse("whatsapp"), Some(Channel::WhatsApp));
        assert_eq!(Channel::parse("sms"), Some(Channel::Sms));
    }

    #[test]
    fn a_ladder_that_ends_in_a_call_waits_for_its_answer() {
        let book = LadderBook::defaults();
        let rider = with_deadline(book.get(LadderKind::RiderAssign).clone());
        let last = rider.steps.last().unwrap();
        assert_eq!((last.channel, last.after), (Channel::Deadline, 180 + CALL_ANSWER_WINDOW_SECS));
        let vendor = with_deadline(book.get(LadderKind::VendorNewOrder).clone());
        let last = vendor.steps.last().unwrap();
        assert_eq!(
            (last.channel, last.after),
            (Channel::Deadline, 540),
            "the IVR at 180 s may be answered after admin"
        );
        let notice = with_deadline(book.get(LadderKind::CustomerStatus).clone());
        assert_eq!(notice.steps.last().unwrap().channel, Channel::Sms, "no call, no deadline");
    }

    #[test]
    fn a_schedule_counts_from_the_start() {
        let def = LadderBook::defaults().get(LadderKind::VendorReminder).clone();
        assert_eq!(
            schedule(&def, 1_000),
            [(0, Channel::AppPush, 1_000), (1, Channel::Ring, 61_000), (2, Channel::Ivr, 121_000)]
        );
    }
}
