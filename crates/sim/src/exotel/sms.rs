//! SMS: `Sms/send`, `Sms/bulksend`, DLT scrubbing, DND and the promotional
//! time window, delivery reports and the `SMSMessage` document.

use chrono::{DateTime, Days, NaiveTime, TimeZone, Utc};
use mangwale_core::E164;
use serde::Serialize;

use super::SimConfig;
use super::form::{ApiError, Form};
use super::log::CallbackKind;
use super::payload::Payload;
use super::state::{Action, Encoding, Event, Outgoing, State};
use crate::clock::{format_ist, ist};

/// The most recipients or messages one request may carry.
pub const MAX_BATCH: usize = 100;
/// The longest body accepted.
pub const MAX_BODY_CHARS: usize = 2000;

/// SMS status values (`failed_dnd` spelt as in Exotel's canonical docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsStatus {
    Queued,
    Sending,
    Submitted,
    Sent,
    Failed,
    FailedDnd,
}

impl SmsStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsStatus::Queued => "queued",
            SmsStatus::Sending => "sending",
            SmsStatus::Submitted => "submitted",
            SmsStatus::Sent => "sent",
            SmsStatus::Failed => "failed",
            SmsStatus::FailedDnd => "failed_dnd",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, SmsStatus::Sent | SmsStatus::Failed | SmsStatus::FailedDnd)
    }
}

/// `SmsType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsType {
    Transactional,
    TransactionalOptIn,
    Promotional,
}

/// The `DetailedStatus` name of a `DetailedStatusCode`.
pub fn detailed_status(code: u32) -> &'static str {
    match code {
        21010 => "PENDING_TO_OPERATOR",
        21015 => "SENDING_TO_OPERATOR",
        21020 => "PENDING_ON_OPERATOR",
        20005 => "DELIVERED_TO_HANDSET",
        20006 => "DELIVERED_TO_OPERATOR",
        23005 => "FAILED_REJECTED_DND",
        23010 => "FAILED_INVALID_DESTINATION_NUMBER",
        23182 => "DLT_TEMPLATE_NOT_FOUND",
        23185 => "DLT_TEMPLATE_DOES_NOT_MATCH",
        23281 => "DLT_ENTITY_NOT_FOUND",
        _ => "UNKNOWN",
    }
}

/// An SMS accepted by `Sms/send` or `Sms/bulksend`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmsMessage {
    pub sid: String,
    /// `From` as Exotel echoes it: `<ExoPhone>/<SENDERID>`.
    pub from: String,
    pub to: E164,
    pub body: String,
    pub sms_type: SmsType,
    pub unicode: bool,
    pub units: u32,
    pub dlt_entity_id: Option<String>,
    pub dlt_template_id: Option<String>,
    pub custom_field: Option<String>,
    pub status_callback: Option<String>,
    pub status: SmsStatus,
    pub detailed_status_code: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When it reached its final status.
    pub sent_at: Option<DateTime<Utc>>,
}

impl SmsMessage {
    pub fn detailed_status(&self) -> &'static str {
        detailed_status(self.detailed_status_code)
    }
}

/// Whether `body` matches a DLT template exactly, each `{#var#}` standing
/// for 1 to 30 characters: the service's own check, so that the simulator
/// scrubs as the service expects DLT to.
pub use mangwale_core::campaign::matches_dlt as matches_template;

/// The GSM 03.38 basic character set.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM extension characters, two septets each.
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// Whether the body needs unicode, and how many SMS units it takes: one
/// unit holds 160 GSM characters or 70 unicode ones; longer messages are
/// sent in parts of 153 / 67.
pub fn sms_units(body: &str, force_unicode: bool) -> (bool, u32) {
    let mut septets = 0usize;
    let mut gsm = !force_unicode;
    if gsm {
        for c in body.chars() {
            if GSM_BASIC.contains(c) {
                septets += 1;
            } else if GSM_EXTENDED.contains(c) {
                septets += 2;
            } else {
                gsm = false;
                break;
            }
        }
    }
    let (len, single, part) = if gsm { (septets, 160, 153) } else { (body.encode_utf16().count(), 70, 67) };
    let units = if len <= single { 1 } else { len.div_ceil(part) };
    (!gsm, u32::try_from(units).unwrap_or(u32::MAX))
}

/// The start of the next promotional window at or after `now`, or `None`
/// when `now` is inside it.
fn promo_wait(now: DateTime<Utc>, window: (NaiveTime, NaiveTime)) -> Option<DateTime<Utc>> {
    let local = now.with_timezone(&ist());
    let time = local.time();
    if time >= window.0 && time < window.1 {
        return None;
    }
    let day = if time < window.0 { local.date_naive() } else { local.date_naive().checked_add_days(Days::new(1))? };
    ist().from_local_datetime(&day.and_time(window.0)).single().map(|t| t.with_timezone(&Utc))
}

/// The common fields of one message to send.
struct Outbound<'a> {
    from: Option<&'a str>,
    to: &'a str,
    body: Option<&'a str>,
    sms_type: Option<&'a str>,
    encoding: Option<&'a str>,
    dlt_entity_id: Option<&'a str>,
    dlt_template_id: Option<&'a str>,
    custom_field: Option<&'a str>,
    status_callback: Option<&'a str>,
}

impl State {
    pub(crate) fn sms_message(&self, sid: &str) -> Option<&SmsMessage> {
        self.sms.iter().find(|m| m.sid == sid)
    }

    /// `Sms/send`: one or several `To` (repeated, `To[i]`, comma list).
    pub(crate) fn send_sms(
        &mut self,
        cfg: &SimConfig,
        form: &Form,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, ApiError> {
        let recipients = form.list("To");
        if recipients.is_empty() {
            return Err(ApiError::bad_request("Missing parameter 'To'").with_code(40203));
        }
        if recipients.len() > MAX_BATCH {
            return Err(ApiError::bad_request("At most 100 numbers in 'To'").with_code(40406));
        }
        let validated = recipients
            .iter()
            .map(|to| {
                self.validate_sms(
                    cfg,
                    &Outbound {
                        from: form.get("From"),
                        to,
                        body: form.get("Body"),
                        sms_type: form.get("SmsType"),
                        encoding: form.get("EncodingType"),
                        dlt_entity_id: form.get("DltEntityId"),
                        dlt_template_id: form.get("DltTemplateId"),
                        custom_field: form.get("CustomField"),
                        status_callback: form.get("StatusCallback"),
                    },
                    now,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(validated.into_iter().map(|m| self.queue_sms(cfg, m, now)).collect())
    }

    /// `Sms/bulksend`: `Messages[i][…]` (or `Message[i][…]`); each item
    /// succeeds or fails on its own.
    pub(crate) fn bulk_send_sms(
        &mut self,
        cfg: &SimConfig,
        form: &Form,
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<String, ApiError>>, ApiError> {
        let mut items = form.indexed("Messages");
        if items.is_empty() {
            items = form.indexed("Message");
        }
        if items.is_empty() {
            return Err(ApiError::bad_request("Missing parameter 'Messages'").with_code(40200));
        }
        if items.len() > MAX_BATCH {
            return Err(ApiError::bad_request("At most 100 messages per request").with_code(40400));
        }
        let mut results = Vec::new();
        for (_, item) in items {
            let pick = |name: &str| item.get(name).or_else(|| form.get(name));
            let outbound = Outbound {
                from: pick("From"),
                to: item.get("To").unwrap_or_default(),
                body: item.get("Body"),
                sms_type: pick("SmsType"),
                encoding: pick("EncodingType"),
                dlt_entity_id: pick("DltEntityId"),
                dlt_template_id: item.get("DltTemplateId"),
                custom_field: item.get("CustomField"),
                status_callback: pick("StatusCallback"),
            };
            let result = self.validate_sms(cfg, &outbound, now).map(|m| self.queue_sms(cfg, m, now));
            results.push(result);
        }
        Ok(results)
    }

    fn validate_sms(
        &mut self,
        cfg: &SimConfig,
        out: &Outbound<'_>,
        now: DateTime<Utc>,
    ) -> Result<SmsMessage, ApiError> {
        let from = out.from.ok_or_else(|| ApiError::bad_request("Missing parameter 'From'").with_code(40205))?;
        let sms_type = match out.sms_type {
            None | Some("transactional") => SmsType::Transactional,
            Some("transactional_opt_in") => SmsType::TransactionalOptIn,
            Some("promotional") => SmsType::Promotional,
            Some(_) => return Err(ApiError::bad_request("Invalid 'SmsType' specified").with_code(40204)),
        };
        let exophone = E164::parse(from).ok().filter(|n| cfg.exophones.contains(n));
        // DLT headers are six letters (transactional) or six digits (promotional).
        let header = (exophone.is_none() && from.len() == 6 && from.chars().all(|c| c.is_ascii_alphanumeric()))
            .then(|| from.to_ascii_uppercase());
        let from_echo = match (&exophone, &header) {
            (Some(n), _) => format!("{}/{}", n.national(), cfg.sms_sender_id),
            (None, Some(h)) => {
                if sms_type == SmsType::Promotional && !h.chars().all(|c| c.is_ascii_digit()) {
                    return Err(ApiError::bad_request(
                        "'From' does not match 'SmsType': promotional SMS need a numeric header",
                    )
                    .with_code(40206));
                }
                let phone = cfg.exophones.first().map(E164::national).unwrap_or_default();
                format!("{phone}/{h}")
            }
            (None, None) => {
                return Err(ApiError::bad_request(
                    "Invalid 'From' specified: not an ExoPhone or sender id of this account",
                )
                .with_code(40205));
            }
        };
        let to = E164::parse(out.to)
            .map_err(|e| ApiError::bad_request(format!("Invalid 'To' specified: {}", e.0)).with_code(40203))?;
        let body = out.body.ok_or_else(|| ApiError::bad_request("Missing parameter 'Body'"))?;
        if body.chars().count() > MAX_BODY_CHARS {
            return Err(ApiError::bad_request("'Body' is longer than 2000 characters"));
        }
        let force_unicode = match out.encoding {
            None | Some("plain") => false,
            Some("unicode") => true,
            Some(_) => return Err(ApiError::bad_request("Invalid 'EncodingType' specified").with_code(40209)),
        };
        if let Some(cb) = out.status_callback {
            let lower = cb.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(ApiError::bad_request("Invalid 'StatusCallback' specified: must be an http(s) URL"));
            }
        }
        let (unicode, units) = sms_units(body, force_unicode);
        Ok(SmsMessage {
            sid: String::new(),
            from: from_echo,
            to,
            body: body.to_string(),
            sms_type,
            unicode,
            units,
            dlt_entity_id: out.dlt_entity_id.map(str::to_string),
            dlt_template_id: out.dlt_template_id.map(str::to_string),
            custom_field: out.custom_field.map(str::to_string),
            status_callback: out.status_callback.map(str::to_string),
            status: SmsStatus::Queued,
            detailed_status_code: 21010,
            created_at: now,
            updated_at: now,
            sent_at: None,
        })
    }

    fn queue_sms(&mut self, cfg: &SimConfig, mut message: SmsMessage, now: DateTime<Utc>) -> String {
        let sid = self.ids.next_sid();
        message.sid = sid.clone();
        self.sms.push(message);
        let at = crate::clock::add(now, cfg.sms_delivery_delay);
        self.schedule(at, Event::SmsProgress { sid: sid.clone() });
        sid
    }

    /// The operator's verdict: DLT scrubbing, DND, then the promotional window.
    pub(crate) fn on_sms_progress(&mut self, cfg: &SimConfig, sid: &str, now: DateTime<Utc>) -> Vec<Action> {
        let Some(index) = self.sms.iter().position(|m| m.sid == sid) else { return Vec::new() };
        let message = &self.sms[index];
        if message.status.is_final() {
            return Vec::new();
        }
        let verdict = if let Some(code) = dlt_failure(cfg, message) {
            (SmsStatus::Failed, code)
        } else if message.sms_type == SmsType::Promotional && cfg.dnd_numbers.contains(&message.to) {
            (SmsStatus::FailedDnd, 23005)
        } else if message.sms_type == SmsType::Promotional
            && let Some(opens) = promo_wait(now, cfg.promo_window_ist)
        {
            let message = &mut self.sms[index];
            message.status = SmsStatus::Submitted;
            message.detailed_status_code = 21020;
            message.updated_at = now;
            self.schedule(opens, Event::SmsProgress { sid: sid.to_string() });
            return Vec::new();
        } else {
            (SmsStatus::Sent, 20005)
        };
        let message = &mut self.sms[index];
        message.status = verdict.0;
        message.detailed_status_code = verdict.1;
        message.updated_at = now;
        message.sent_at = Some(now);
        // The documented callback (developer.exotel.com "Send SMS" API console,
        // support 3000007217): a urlencoded POST with SmsSid, To, Status,
        // SmsUnits, DetailedStatus, DetailedStatusCode, DateSent, CustomField.
        let Some(url) = message.status_callback.clone() else { return Vec::new() };
        let mut payload = Payload::new()
            .str("SmsSid", message.sid.clone())
            .str("To", message.to.national())
            .str("Status", message.status.as_str())
            .int("SmsUnits", i64::from(message.units))
            .str("DetailedStatus", message.detailed_status())
            .int("DetailedStatusCode", i64::from(message.detailed_status_code))
            .str("DateSent", format_ist(now));
        if let Some(cf) = &message.custom_field {
            payload = payload.str("CustomField", cf.clone());
        }
        vec![Action::Deliver(Outgoing {
            kind: CallbackKind::SmsStatus,
            sid: message.sid.clone(),
            url,
            encoding: Encoding::UrlEncoded,
            payload,
        })]
    }
}

/// DLT scrubbing, applied when the request names a DLT entity or template,
/// or when templates are registered.
fn dlt_failure(cfg: &SimConfig, message: &SmsMessage) -> Option<u32> {
    if let (Some(given), Some(ours)) = (&message.dlt_entity_id, &cfg.dlt_entity_id)
        && given != ours
    {
        return Some(23281);
    }
    match &message.dlt_template_id {
        Some(id) => match cfg.dlt_templates.get(id) {
            None => Some(23182),
            Some(template) if !matches_template(template, &message.body) => Some(23185),
            Some(_) => None,
        },
        None if !cfg.dlt_templates.is_empty() => {
            (!cfg.dlt_templates.values().any(|t| matches_template(t, &message.body))).then_some(23185)
        }
        None => None,
    }
}

/// The `{"SMSMessage": {…}}` document. XML renders the missing `DateSent`
/// as Exotel does, `1970-01-01 05:30:00`.
pub(crate) fn sms_document(m: &SmsMessage, cfg: &SimConfig, json: bool) -> Payload {
    let uri = format!("/v1/Accounts/{}/SMS/Messages/{}{}", cfg.account_sid, m.sid, if json { ".json" } else { "" });
    let date_sent = match m.sent_at {
        Some(t) => Some(format_ist(t)),
        None if !json => Some("1970-01-01 05:30:00".to_string()),
        None => None,
    };
    let price = (m.status == SmsStatus::Sent).then(|| format!("{:.3}", f64::from(m.units) * 0.2));
    let units = m.status.is_final().then(|| m.units.to_string());
    let inner = Payload::new()
        .str("Sid", m.sid.clone())
        .str("AccountSid", cfg.account_sid.clone())
        .str("From", m.from.clone())
        .str("To", m.to.national())
        .str("DateCreated", format_ist(m.created_at))
        .str("DateUpdated", format_ist(m.updated_at))
        .opt("DateSent", date_sent)
        .str("Body", m.body.clone())
        .str("Direction", "outbound-api")
        .str("Uri", uri)
        .null("ApiVersion")
        .opt("Price", price)
        .str("Status", m.status.as_str())
        .opt("SmsUnits", units)
        .int("DetailedStatusCode", i64::from(m.detailed_status_code))
        .str("DetailedStatus", m.detailed_status());
    Payload::new().obj("SMSMessage", inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_with_bounded_variables() {
        let t = "Your order {#var#} is out for delivery. - {#var#}";
        assert!(matches_template(t, "Your order MW-1 is out for delivery. - Mangwale"));
        assert!(!matches_template(t, "Your order  is out for delivery. - Mangwale"));
        assert!(!matches_template(t, "Your order MW-1 is out for delivery - Mangwale"));
        assert!(!matches_template(t, &format!("Your order {} is out for delivery. - M", "x".repeat(31))));
        assert!(matches_template(t, &format!("Your order {} is out for delivery. - M", "x".repeat(30))));
        assert!(matches_template("OTP {#var#}", "OTP 1234"));
        assert!(!matches_template("OTP {#var#}", "OTP 1234 extra text that is far too long for a var"));
        assert!(matches_template("no vars", "no vars"));
        assert!(!matches_template("no vars", "no vars!"));
        assert!(matches_template("{#var#}{#var#}", "ab"));
    }

    #[test]
    fn units_follow_gsm_and_unicode_sizes() {
        assert_eq!(sms_units("hello", false), (false, 1));
        assert_eq!(sms_units(&"a".repeat(160), false), (false, 1));
        assert_eq!(sms_units(&"a".repeat(161), false), (false, 2));
        assert_eq!(sms_units(&"[".repeat(80), false), (false, 1));
        assert_eq!(sms_units("नमस्ते", false), (true, 1));
        assert_eq!(sms_units(&"न".repeat(71), false), (true, 2));
        assert_eq!(sms_units("hello", true), (true, 1));
    }

    #[test]
    fn promotional_window_in_ist() {
        let window = (NaiveTime::from_hms_opt(9, 0, 0).unwrap(), NaiveTime::from_hms_opt(21, 0, 0).unwrap());
        let at = |s: &str| crate::clock::parse_ist(s).unwrap();
        assert_eq!(promo_wait(at("2025-01-15 10:00:00"), window), None);
        assert_eq!(promo_wait(at("2025-01-15 22:00:00"), window), Some(at("2025-01-16 09:00:00")));
        assert_eq!(promo_wait(at("2025-01-15 03:00:00"), window), Some(at("2025-01-15 09:00:00")));
        assert_eq!(promo_wait(at("2025-01-15 21:00:00"), window), Some(at("2025-01-16 09:00:00")));
    }
}
