//! Marketing campaigns and the rules every campaign message obeys in India
//! (TRAI's TCCCPR 2018 and DLT registration): the shared vocabulary of the
//! campaign model, the compliance engine and the sender.
//!
//! Pure values and functions only: templates and their `{#var#}` rendering,
//! the promotional time window in IST, the states of campaigns and
//! recipients, and where a suppression came from.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, FixedOffset, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::{InvalidValue, Language};

/// DLT's placeholder: each one stands for at most 30 characters of the
/// message as sent.
pub const DLT_VAR: &str = "{#var#}";
/// The most characters one `{#var#}` may carry (DLT operators' limit).
pub const DLT_VAR_MAX_CHARS: usize = 30;

/// India Standard Time, UTC+05:30 (no daylight saving).
pub fn ist() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 30 * 60).expect("a valid offset")
}

/// Which channels a campaign uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CampaignChannel {
    Sms,
    Voice,
    /// SMS and a call to every recipient.
    Both,
}

impl CampaignChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignChannel::Sms => "sms",
            CampaignChannel::Voice => "voice",
            CampaignChannel::Both => "both",
        }
    }

    pub fn sends_sms(self) -> bool {
        matches!(self, CampaignChannel::Sms | CampaignChannel::Both)
    }

    pub fn calls(self) -> bool {
        matches!(self, CampaignChannel::Voice | CampaignChannel::Both)
    }
}

impl FromStr for CampaignChannel {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sms" => Ok(CampaignChannel::Sms),
            "voice" | "call" => Ok(CampaignChannel::Voice),
            "both" => Ok(CampaignChannel::Both),
            _ => Err(InvalidValue(format!("unknown channel '{s}': use sms, voice or both"))),
        }
    }
}

/// One message kind: SMS or a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageChannel {
    Sms,
    Voice,
}

impl MessageChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageChannel::Sms => "sms",
            MessageChannel::Voice => "voice",
        }
    }
}

/// TRAI's categories of commercial communication. Only promotional
/// messages are bound to the 09:00-21:00 IST window and to DND; service
/// messages still need DLT registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateCategory {
    Promotional,
    /// Service messages the customer's own transaction implies (order
    /// status): allowed around the clock, even to DND numbers.
    ServiceImplicit,
    /// Service messages sent on the customer's explicit consent.
    ServiceExplicit,
}

impl TemplateCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateCategory::Promotional => "promotional",
            TemplateCategory::ServiceImplicit => "service_implicit",
            TemplateCategory::ServiceExplicit => "service_explicit",
        }
    }

    /// Whether the promotional window and the DND registry apply.
    pub fn is_promotional(self) -> bool {
        self == TemplateCategory::Promotional
    }
}

impl FromStr for TemplateCategory {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "promotional" => Ok(TemplateCategory::Promotional),
            "service_implicit" => Ok(TemplateCategory::ServiceImplicit),
            "service_explicit" => Ok(TemplateCategory::ServiceExplicit),
            _ => Err(InvalidValue(format!(
                "unknown category '{s}': use promotional, service_implicit or service_explicit"
            ))),
        }
    }
}

/// A template's name, the seed's campaign `type` (`area_launch`, ...) or a
/// custom one: 1 to 64 of `a-z`, `0-9` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TemplateKey(String);

impl TemplateKey {
    /// The seed's six built-in campaign types.
    pub const BUILT_IN: [&'static str; 6] =
        ["area_launch", "free_delivery", "diwali", "rakhi", "inactive_user", "vendor_invite"];

    pub fn parse(s: &str) -> Result<TemplateKey, InvalidValue> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(TemplateKey(s.to_string()))
        } else {
            Err(InvalidValue(format!("'{s}' is not a template name: 1-64 of a-z, 0-9 and _")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_built_in(&self) -> bool {
        TemplateKey::BUILT_IN.contains(&self.0.as_str())
    }
}

impl fmt::Display for TemplateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TemplateKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TemplateKey::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// One language's text of a template. The SMS text is the DLT-registered
/// body with `{#var#}` placeholders; the voice text is what the campaign
/// call speaks (it may hold the same placeholders).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateText {
    pub sms: String,
    pub voice: String,
    /// The DLT template id the SMS text is registered under (from
    /// configuration for built-in templates). None: not registered, so
    /// live mode refuses to send it.
    pub dlt_template_id: Option<String>,
}

/// A campaign template: its category and its text in each language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignTemplate {
    pub key: TemplateKey,
    pub category: TemplateCategory,
    pub description: String,
    pub texts: BTreeMap<LanguageKey, TemplateText>,
    /// The names of the `{#var#}` placeholders, in order (`phone`,
    /// `name`, ...): what a recipient's variables fill.
    pub variables: Vec<String>,
    /// Shipped with the service or configured (`CAMPAIGN_TEMPLATES_FILE`),
    /// rather than added through the API.
    pub built_in: bool,
}

/// [`Language`] as an ordered map key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LanguageKey {
    Hi,
    En,
    Mr,
}

impl From<Language> for LanguageKey {
    fn from(l: Language) -> LanguageKey {
        match l {
            Language::Hi => LanguageKey::Hi,
            Language::En => LanguageKey::En,
            Language::Mr => LanguageKey::Mr,
        }
    }
}

impl From<LanguageKey> for Language {
    fn from(l: LanguageKey) -> Language {
        match l {
            LanguageKey::Hi => Language::Hi,
            LanguageKey::En => Language::En,
            LanguageKey::Mr => Language::Mr,
        }
    }
}

/// The built-in templates (`config/campaign_templates.toml`).
pub const DEFAULT_TEMPLATES_TOML: &str = include_str!("../../../config/campaign_templates.toml");

/// Every template the service knows, by key: the built-in ones and, once
/// the store's custom templates are added, the operators' own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TemplateBook {
    templates: BTreeMap<TemplateKey, CampaignTemplate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlTemplate {
    category: String,
    description: String,
    variables: Vec<String>,
    hi: Option<TemplateText>,
    en: Option<TemplateText>,
    mr: Option<TemplateText>,
}

impl TemplateBook {
    /// The built-in templates, without DLT ids unless the file has them.
    pub fn defaults() -> TemplateBook {
        TemplateBook::from_toml(DEFAULT_TEMPLATES_TOML).expect("the built-in templates are valid")
    }

    /// Templates from a TOML file shaped like `config/campaign_templates.toml`.
    pub fn from_toml(text: &str) -> Result<TemplateBook, InvalidValue> {
        let raw: BTreeMap<String, TomlTemplate> =
            toml::from_str(text).map_err(|e| InvalidValue(format!("campaign templates: {e}")))?;
        let mut book = TemplateBook::default();
        for (key, t) in raw {
            let key = TemplateKey::parse(&key)?;
            let mut texts = BTreeMap::new();
            for (lang, text) in [(LanguageKey::Hi, t.hi), (LanguageKey::En, t.en), (LanguageKey::Mr, t.mr)] {
                if let Some(text) = text {
                    texts.insert(lang, text);
                }
            }
            let template = CampaignTemplate {
                // From configuration, not added through the API.
                built_in: true,
                key,
                category: t.category.parse()?,
                description: t.description,
                texts,
                variables: t.variables,
            };
            book.insert(template)?;
        }
        Ok(book)
    }

    /// Adds or replaces a template after checking it (see [`CampaignTemplate::check`]).
    pub fn insert(&mut self, template: CampaignTemplate) -> Result<(), InvalidValue> {
        template.check()?;
        self.templates.insert(template.key.clone(), template);
        Ok(())
    }

    /// Sets the DLT template id of `key` in `lang` (configuration's).
    pub fn set_dlt_template_id(&mut self, key: &TemplateKey, lang: LanguageKey, id: String) -> bool {
        match self.templates.get_mut(key).and_then(|t| t.texts.get_mut(&lang)) {
            Some(text) => {
                text.dlt_template_id = Some(id);
                true
            }
            None => false,
        }
    }

    pub fn get(&self, key: &TemplateKey) -> Option<&CampaignTemplate> {
        self.templates.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &CampaignTemplate> {
        self.templates.values()
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }
}

impl CampaignTemplate {
    /// A template is usable when it has at least one language, every text
    /// has as many `{#var#}` as it names variables (the SMS exactly, the
    /// voice text at most), and no variable name is empty.
    pub fn check(&self) -> Result<(), InvalidValue> {
        let key = &self.key;
        if self.texts.is_empty() {
            return Err(InvalidValue(format!("template {key}: no language has a text")));
        }
        if self.variables.iter().any(|v| v.trim().is_empty()) {
            return Err(InvalidValue(format!("template {key}: a variable has no name")));
        }
        for (lang, text) in &self.texts {
            let lang = Language::from(*lang).code();
            let sms_vars = text.sms.matches(DLT_VAR).count();
            if text.sms.trim().is_empty() || text.voice.trim().is_empty() {
                return Err(InvalidValue(format!("template {key}.{lang}: sms and voice texts are both required")));
            }
            if sms_vars != self.variables.len() {
                return Err(InvalidValue(format!(
                    "template {key}.{lang}: the SMS has {sms_vars} {DLT_VAR} but {} variables are named",
                    self.variables.len()
                )));
            }
            if text.voice.matches(DLT_VAR).count() > self.variables.len() {
                return Err(InvalidValue(format!(
                    "template {key}.{lang}: the voice text has more {DLT_VAR} than variables"
                )));
            }
            if let Some(id) = &text.dlt_template_id
                && (id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(InvalidValue(format!("template {key}.{lang}: DLT template id '{id}' is not 1-32 digits")));
            }
        }
        Ok(())
    }

    /// The text in `lang`, if the template has that language.
    pub fn text(&self, lang: Language) -> Option<&TemplateText> {
        self.texts.get(&LanguageKey::from(lang))
    }

    pub fn languages(&self) -> Vec<Language> {
        self.texts.keys().map(|l| Language::from(*l)).collect()
    }
}

/// Why a template could not be filled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("variable '{0}' has no value")]
    Missing(String),
    #[error("variable '{name}' is {chars} characters; DLT allows at most {DLT_VAR_MAX_CHARS}")]
    TooLong { name: String, chars: usize },
}

/// Fills `text`'s `{#var#}` placeholders, in order, with the values of
/// `variables` named by `names`. The result is what DLT scrubbing matches
/// against the registered template.
pub fn render(text: &str, names: &[String], values: &BTreeMap<String, String>) -> Result<String, RenderError> {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    let mut index = 0;
    while let Some(at) = rest.find(DLT_VAR) {
        out.push_str(&rest[..at]);
        let name = names.get(index).cloned().unwrap_or_else(|| format!("var{}", index + 1));
        let value = values.get(&name).ok_or_else(|| RenderError::Missing(name.clone()))?;
        let chars = value.chars().count();
        if chars > DLT_VAR_MAX_CHARS {
            return Err(RenderError::TooLong { name, chars });
        }
        out.push_str(value);
        rest = &rest[at + DLT_VAR.len()..];
        index += 1;
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `body` is `template` with each `{#var#}` filled by 1 to
/// [`DLT_VAR_MAX_CHARS`] characters: the test DLT scrubbing applies to an
/// SMS sent under that template id.
pub fn matches_dlt(template: &str, body: &str) -> bool {
    let literals: Vec<Vec<char>> = template.split(DLT_VAR).map(|l| l.chars().collect()).collect();
    let body: Vec<char> = body.chars().collect();
    let starts_at = |pos: usize, lit: &[char]| body.len() >= pos + lit.len() && body[pos..pos + lit.len()] == *lit;
    let Some((first, rest)) = literals.split_first() else { return false };
    if !starts_at(0, first) {
        return false;
    }
    // The positions in `body` the literals matched so far can end at.
    let mut reachable = vec![first.len()];
    for lit in rest {
        let mut next = Vec::new();
        for &pos in &reachable {
            for len in 1..=DLT_VAR_MAX_CHARS {
                let start = pos + len;
                if start > body.len() {
                    break;
                }
                if starts_at(start, lit) && !next.contains(&(start + lit.len())) {
                    next.push(start + lit.len());
                }
            }
        }
        if next.is_empty() {
            return false;
        }
        reachable = next;
    }
    reachable.contains(&body.len())
}

/// The promotional window: 09:00 to 21:00 IST (TCCCPR 2018).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromoWindow {
    pub opens: NaiveTime,
    pub closes: NaiveTime,
}

impl Default for PromoWindow {
    fn default() -> Self {
        PromoWindow {
            opens: NaiveTime::from_hms_opt(9, 0, 0).expect("valid"),
            closes: NaiveTime::from_hms_opt(21, 0, 0).expect("valid"),
        }
    }
}

impl PromoWindow {
    /// Whether a promotional message may go out at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&ist()).time();
        local >= self.opens && local < self.closes
    }

    /// `now` if the window is open, else when it next opens.
    pub fn next_open(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        if self.is_open(now) {
            return now;
        }
        let local = now.with_timezone(&ist());
        let mut day = local.date_naive();
        if local.time() >= self.closes {
            day = day.checked_add_days(Days::new(1)).expect("a representable date");
        }
        ist().from_local_datetime(&day.and_time(self.opens)).single().expect("IST has no gaps").with_timezone(&Utc)
    }

    /// When the window that is open at `now` closes (None when closed).
    pub fn closes_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.is_open(now) {
            return None;
        }
        let day = now.with_timezone(&ist()).date_naive();
        Some(
            ist()
                .from_local_datetime(&day.and_time(self.closes))
                .single()
                .expect("IST has no gaps")
                .with_timezone(&Utc),
        )
    }

    /// When a message of `category` may go out: `now` for service messages
    /// (around the clock), the window's next opening for promotional ones.
    pub fn allowed_at(&self, category: TemplateCategory, now: DateTime<Utc>) -> DateTime<Utc> {
        if category.is_promotional() { self.next_open(now) } else { now }
    }
}

/// Where an entry of the suppression ledger came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionSource {
    /// An SMS reply of STOP.
    SmsStop,
    /// A WhatsApp message of STOP.
    WhatsappStop,
    /// Key 9 pressed in a campaign call.
    CallKey9,
    /// A missed call to `OPT_OUT_NUMBER`.
    MissedCall,
    /// Added through the API by an operator.
    Api,
    /// Exotel reported the number as DND (`failed_dnd`).
    ExotelDnd,
    /// An uploaded DND/NCPR scrub list.
    ScrubList,
}

impl SuppressionSource {
    pub const ALL: [SuppressionSource; 7] = [
        SuppressionSource::SmsStop,
        SuppressionSource::WhatsappStop,
        SuppressionSource::CallKey9,
        SuppressionSource::MissedCall,
        SuppressionSource::Api,
        SuppressionSource::ExotelDnd,
        SuppressionSource::ScrubList,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionSource::SmsStop => "sms_stop",
            SuppressionSource::WhatsappStop => "whatsapp_stop",
            SuppressionSource::CallKey9 => "call_key_9",
            SuppressionSource::MissedCall => "missed_call",
            SuppressionSource::Api => "api",
            SuppressionSource::ExotelDnd => "exotel_dnd",
            SuppressionSource::ScrubList => "scrub_list",
        }
    }

    pub fn parse(s: &str) -> Option<SuppressionSource> {
        SuppressionSource::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the person asked us to stop (an opt-out), rather than a
    /// registry saying so (DND): status counts them apart.
    pub fn is_opt_out(self) -> bool {
        !matches!(self, SuppressionSource::ExotelDnd | SuppressionSource::ScrubList)
    }

    /// Whether the entry blocks service messages too. A DND registration
    /// only blocks promotional traffic; a person's STOP blocks every
    /// campaign message, but never the service messages of their own
    /// orders (TCCCPR: service-implicit messages are exempt).
    pub fn blocks(self, category: TemplateCategory) -> bool {
        match category {
            TemplateCategory::Promotional => true,
            TemplateCategory::ServiceExplicit => self.is_opt_out(),
            TemplateCategory::ServiceImplicit => false,
        }
    }
}

/// Whether an inbound text (an SMS reply, a WhatsApp message) asks to stop
/// promotional messages: STOP and its usual synonyms, alone or leading.
pub fn is_stop_word(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or("").trim_matches(|c: char| !c.is_alphanumeric());
    matches!(first.to_ascii_lowercase().as_str(), "stop" | "unsubscribe" | "optout" | "opt-out" | "stopall")
        || matches!(first, "बंद" | "रोको")
}

/// A campaign's id: `cmp_`, the creation time in milliseconds as 12 hex
/// digits, then 8 random hex digits. Ids sort by creation time, so the
/// list pages newest first on the id alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CampaignId(String);

impl CampaignId {
    const PREFIX: &'static str = "cmp_";

    /// The id of a campaign created at `created_ms` (Unix milliseconds);
    /// `random` tells apart campaigns created in the same millisecond.
    pub fn new(created_ms: i64, random: u32) -> CampaignId {
        CampaignId(format!("{}{:012x}{random:08x}", CampaignId::PREFIX, created_ms.max(0)))
    }

    pub fn parse(s: &str) -> Result<CampaignId, InvalidValue> {
        let ok = s.strip_prefix(CampaignId::PREFIX).is_some_and(|rest| {
            rest.len() == 20 && rest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok { Ok(CampaignId(s.to_string())) } else { Err(InvalidValue(format!("'{s}' is not a campaign id"))) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CampaignId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How fast a campaign may go: the sender's pacing, per campaign. A
/// shared limit across campaigns (Exotel's 200 voice requests a minute)
/// applies on top.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pacing {
    pub sms_per_second: f64,
    pub calls_per_second: f64,
    pub max_concurrent_calls: u32,
}

impl Pacing {
    /// Checks each rate is positive and at most 1000/s, and the call cap is 1 to 1000.
    pub fn check(&self) -> Result<(), (&'static str, InvalidValue)> {
        let rate = |name: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 && v <= 1000.0 {
                Ok(())
            } else {
                Err((name, InvalidValue(format!("{name} must be more than 0 and at most 1000"))))
            }
        };
        rate("smsPerSecond", self.sms_per_second)?;
        rate("callsPerSecond", self.calls_per_second)?;
        if !(1..=1000).contains(&self.max_concurrent_calls) {
            return Err(("maxConcurrentCalls", InvalidValue("maxConcurrentCalls must be 1 to 1000".into())));
        }
        Ok(())
    }
}

/// Where a campaign stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    /// Created, not started.
    Created,
    Running,
    /// Paused by an operator or by the breaker (see the reason).
    Paused,
    Cancelled,
    /// Every recipient has a final outcome.
    Completed,
}

impl CampaignState {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Created => "created",
            CampaignState::Running => "running",
            CampaignState::Paused => "paused",
            CampaignState::Cancelled => "cancelled",
            CampaignState::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Option<CampaignState> {
        Some(match s {
            "created" => CampaignState::Created,
            "running" => CampaignState::Running,
            "paused" => CampaignState::Paused,
            "cancelled" => CampaignState::Cancelled,
            "completed" => CampaignState::Completed,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        matches!(self, CampaignState::Cancelled | CampaignState::Completed)
    }
}

/// What an operator asks of a campaign, and the state machine behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignAction {
    Start,
    Pause,
    Resume,
    Cancel,
}

impl CampaignAction {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignAction::Start => "start",
            CampaignAction::Pause => "pause",
            CampaignAction::Resume => "resume",
            CampaignAction::Cancel => "cancel",
        }
    }

    /// The states the action may be taken from.
    pub fn from_states(self) -> &'static [CampaignState] {
        match self {
            CampaignAction::Start => &[CampaignState::Created],
            CampaignAction::Pause => &[CampaignState::Running],
            CampaignAction::Resume => &[CampaignState::Paused],
            CampaignAction::Cancel => &[CampaignState::Created, CampaignState::Running, CampaignState::Paused],
        }
    }

    /// The state the action leads to.
    pub fn to_state(self) -> CampaignState {
        match self {
            CampaignAction::Start | CampaignAction::Resume => CampaignState::Running,
            CampaignAction::Pause => CampaignState::Paused,
            CampaignAction::Cancel => CampaignState::Cancelled,
        }
    }
}

impl CampaignState {
    /// Whether recipients may be added: only before the campaign runs or
    /// while it is paused, so the sender never meets a half-written batch.
    pub fn accepts_recipients(self) -> bool {
        matches!(self, CampaignState::Created | CampaignState::Paused)
    }
}

/// Where one message to one recipient stands (one per channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Waiting for its turn (pacing, the window, a retry).
    Queued,
    /// Claimed by a sender; the provider was or is being asked.
    Sending,
    /// Exotel accepted it (an SMS submitted, a call placed).
    Sent,
    /// An SMS delivered to the handset.
    Delivered,
    /// A call the recipient picked up.
    Answered,
    /// A call in which the recipient pressed 1 (connected to ordering).
    Pressed1,
    Failed,
    /// Skipped: the number is on the suppression ledger.
    Suppressed,
    /// The recipient opted out through this message (STOP reply, key 9).
    OptedOut,
    /// The campaign was cancelled before it went out.
    Cancelled,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Sending => "sending",
            MessageState::Sent => "sent",
            MessageState::Delivered => "delivered",
            MessageState::Answered => "answered",
            MessageState::Pressed1 => "pressed_1",
            MessageState::Failed => "failed",
            MessageState::Suppressed => "suppressed",
            MessageState::OptedOut => "opted_out",
            MessageState::Cancelled => "cancelled",
        }
    }

    pub const ALL: [MessageState; 10] = [
        MessageState::Queued,
        MessageState::Sending,
        MessageState::Sent,
        MessageState::Delivered,
        MessageState::Answered,
        MessageState::Pressed1,
        MessageState::Failed,
        MessageState::Suppressed,
        MessageState::OptedOut,
        MessageState::Cancelled,
    ];

    pub fn parse(s: &str) -> Option<MessageState> {
        MessageState::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether nothing more will be sent for this message.
    pub fn is_final(self) -> bool {
        !matches!(self, MessageState::Queued | MessageState::Sending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ist_hms: (u32, u32, u32), day: u32) -> DateTime<Utc> {
        ist().with_ymd_and_hms(2026, 12, day, ist_hms.0, ist_hms.1, ist_hms.2).single().unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_promotional_window_is_nine_to_nine_ist() {
        let w = PromoWindow::default();
        assert!(!w.is_open(at((8, 59, 59), 6)));
        assert!(w.is_open(at((9, 0, 0), 6)));
        assert!(w.is_open(at((20, 59, 59), 6)));
        assert!(!w.is_open(at((21, 0, 0), 6)));
        assert_eq!(w.next_open(at((22, 0, 0), 6)), at((9, 0, 0), 7));
        assert_eq!(w.next_open(at((3, 0, 0), 7)), at((9, 0, 0), 7));
        assert_eq!(w.next_open(at((10, 0, 0), 7)), at((10, 0, 0), 7));
        assert_eq!(w.closes_after(at((20, 50, 0), 6)), Some(at((21, 0, 0), 6)));
        assert_eq!(w.allowed_at(TemplateCategory::ServiceImplicit, at((23, 0, 0), 6)), at((23, 0, 0), 6));
    }

    #[test]
    fn rendering_fills_placeholders_in_order_within_dlt_limits() {
        let names = vec!["name".to_string(), "phone".to_string()];
        let mut values = BTreeMap::new();
        values.insert("name".to_string(), "Asha".to_string());
        values.insert("phone".to_string(), "02532345678".to_string());
        assert_eq!(render("Hi {#var#}, call {#var#} now", &names, &values).unwrap(), "Hi Asha, call 02532345678 now");
        values.remove("phone");
        assert_eq!(render("call {#var#}", &names[1..], &values), Err(RenderError::Missing("phone".into())));
        values.insert("name".into(), "x".repeat(31));
        assert!(matches!(render("{#var#}", &names, &values), Err(RenderError::TooLong { chars: 31, .. })));
    }

    #[test]
    fn the_built_in_templates_cover_six_types_in_three_languages() {
        let book = TemplateBook::defaults();
        assert_eq!(book.len(), 8, "six campaign types and the two service templates of the customer ladders");
        for key in ["customer_status", "customer_delay"] {
            let t = book.get(&TemplateKey::parse(key).unwrap()).unwrap();
            assert_eq!(t.category, TemplateCategory::ServiceImplicit);
            assert!(t.built_in && !t.key.is_built_in(), "shipped, but not one of the seed's campaign types");
        }
        for key in TemplateKey::BUILT_IN {
            let t = book.get(&TemplateKey::parse(key).unwrap()).unwrap();
            assert!(t.built_in);
            assert_eq!(t.category, TemplateCategory::Promotional);
            assert_eq!(t.languages(), [Language::Hi, Language::En, Language::Mr]);
            for lang in t.languages() {
                let text = t.text(lang).unwrap();
                assert!(text.sms.contains("STOP"), "{key}.{}: promotional texts say how to stop", lang.code());
                let mut values = BTreeMap::new();
                values.insert("phone".to_string(), "02532345678".to_string());
                values.insert("opt_out".to_string(), "02532345600".to_string());
                assert!(!render(&text.sms, &t.variables, &values).unwrap().contains(DLT_VAR));
            }
        }
        let mut book = book;
        let key = TemplateKey::parse("diwali").unwrap();
        assert!(book.set_dlt_template_id(&key, LanguageKey::Hi, "1107160000000000001".into()));
        assert_eq!(
            book.get(&key).unwrap().text(Language::Hi).unwrap().dlt_template_id.as_deref(),
            Some("1107160000000000001")
        );
        let broken = "[x]\ncategory = \"promotional\"\ndescription = \"d\"\nvariables = []\n[x.en]\nsms = \"hi {#var#}\"\nvoice = \"v\"\n";
        assert!(TemplateBook::from_toml(broken).unwrap_err().0.contains("1 {#var#} but 0 variables"));
    }

    #[test]
    fn dlt_matching_allows_one_to_thirty_characters_per_variable() {
        let t = "Call {#var#} to order. STOP: {#var#}";
        assert!(matches_dlt(t, "Call 02532345678 to order. STOP: 02532345600"));
        assert!(!matches_dlt(t, "Call  to order. STOP: 1"));
        assert!(!matches_dlt(t, "Call 1 to order now. STOP: 1 and more text that is long"));
        assert!(!matches_dlt(t, &format!("Call {} to order. STOP: 1", "9".repeat(31))));
        assert!(matches_dlt("no vars", "no vars") && !matches_dlt("no vars", "no vars!"));
    }

    #[test]
    fn names_channels_and_stop_words_parse_strictly() {
        assert!(TemplateKey::parse("area_launch").unwrap().is_built_in());
        assert!(TemplateKey::parse("Area-Launch").is_err());
        assert_eq!("both".parse::<CampaignChannel>().unwrap(), CampaignChannel::Both);
        assert!("fax".parse::<CampaignChannel>().is_err());
        assert!(is_stop_word("STOP"));
        assert!(is_stop_word("stop please"));
        assert!(!is_stop_word("don't stop"));
        assert!(SuppressionSource::ExotelDnd.blocks(TemplateCategory::Promotional));
        assert!(!SuppressionSource::ExotelDnd.blocks(TemplateCategory::ServiceExplicit));
        assert!(!SuppressionSource::SmsStop.blocks(TemplateCategory::ServiceImplicit));
        for s in SuppressionSource::ALL {
            assert_eq!(SuppressionSource::parse(s.as_str()), Some(s));
        }
        for s in MessageState::ALL {
            assert_eq!(MessageState::parse(s.as_str()), Some(s));
        }
    }
}
