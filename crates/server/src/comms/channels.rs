//! The ladder's messaging channels: app push and WhatsApp (each a real
//! client, pointed at the provider in live mode and at the built-in
//! simulator in sandbox mode), and the admin SMS through Exotel.

use mangwale_core::E164;
use mangwale_core::ladder::LadderKind;
use mangwale_providers::exotel::client::SendSms;
use mangwale_providers::push::{PushClient, PushMessage, Recipient, Role};
use mangwale_providers::whatsapp::{TemplateMessage, WhatsAppClient};
use mangwale_store::Ladder;
use serde_json::{Value, json};

use super::answers;
use crate::state::AppState;

/// How a step's send went.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    /// Not sent, and the provider said when to try again: no sooner than
    /// `wait` (WhatsApp's 6 s after 131056, FCM's minute after
    /// `QUOTA_EXCEEDED`, a long `Retry-After`).
    Throttled {
        message: String,
        wait: std::time::Duration,
    },
    Sent {
        provider_id: String,
        detail: Value,
    },
    /// Nothing to send for this party (no template, no id, channel not
    /// configured): recorded, and the ladder goes on.
    Skipped(String),
    Failed {
        message: String,
        transient: bool,
    },
    /// It may or may not have gone out (the request timed out after it was
    /// sent): never retried.
    Unknown(String),
}

/// How long after a send was due a throttled retry is still put off to the
/// provider's time without using an attempt; later, it is an ordinary
/// failed attempt, so that a provider that keeps refusing cannot hold a
/// step open for ever.
pub const THROTTLE_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The job outcome of a throttled send that will be retried: deferred to
/// when the provider allows it (at least `wait` from `now`), while that is
/// within [`THROTTLE_WINDOW`] of `due`; else a transient failure.
pub fn throttled(
    message: String,
    wait: std::time::Duration,
    due: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> mangwale_store::JobError {
    let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
    let window = chrono::Duration::from_std(THROTTLE_WINDOW).unwrap_or(chrono::Duration::MAX);
    match (now.checked_add_signed(wait), due.checked_add_signed(window)) {
        (Some(until), Some(limit)) if until <= limit => mangwale_store::JobError::Defer(until),
        _ => mangwale_store::JobError::Transient(message),
    }
}

/// The push and WhatsApp clients, when configured.
#[derive(Clone, Default)]
pub struct Channels {
    pub push: Option<PushClient>,
    pub whatsapp: Option<WhatsAppClient>,
    /// The Meta app secret that signs WhatsApp webhooks.
    pub whatsapp_app_secret: Option<crate::config::Secret>,
    /// The token Meta presents when subscribing the webhook.
    pub whatsapp_verify_token: Option<crate::config::Secret>,
    /// The in-process simulators of sandbox mode, kept alive here.
    pub push_sim: Option<mangwale_sim::push::PushSim>,
    pub whatsapp_sim: Option<mangwale_sim::whatsapp::WhatsAppSim>,
}

fn role(ladder: &Ladder) -> Option<Role> {
    match ladder.party.split(':').next()? {
        "vendor" => Some(Role::Vendor),
        "rider" => Some(Role::Rider),
        "customer" => Some(Role::Customer),
        _ => None,
    }
}

fn party_id(ladder: &Ladder) -> Option<&str> {
    ladder.party.split_once(':').map(|(_, id)| id).filter(|id| !id.is_empty())
}

/// Title and body of a ladder's push, in English (the apps localise by the
/// `kind` in `data`). `private` is a push to the party's own devices (the
/// app backend, a registration token); otherwise it goes to a public FCM
/// topic, which anyone may subscribe to, so it carries the order id and a
/// generic text only: no address, phone, amount or items.
pub(crate) fn push_text(ladder: &Ladder, private: bool) -> (String, String) {
    let order = ladder.order_id.as_deref().unwrap_or("-");
    if !private {
        return match ladder.kind {
            LadderKind::VendorNewOrder => (format!("New order {order}"), "Open the app to accept or reject".into()),
            LadderKind::VendorReminder => {
                (format!("Order {order} is due"), "Mark it ready or ask for more time".into())
            }
            LadderKind::RiderAssign => (format!("New delivery {order}"), "Open the app to accept or reject".into()),
            LadderKind::RiderAddressUpdate => {
                (format!("Address changed: {order}"), "Open the app to see the new address".into())
            }
            LadderKind::CustomerStatus => (format!("Order {order}"), "Your order was updated".into()),
            LadderKind::CustomerDelay => (format!("Order {order} is delayed"), "Open the app for details".into()),
        };
    }
    let c = &ladder.context;
    let amount = c.amount.map(|a| format!(" · ₹{a}")).unwrap_or_default();
    match ladder.kind {
        LadderKind::VendorNewOrder => {
            (format!("New order {order}{amount}"), c.items.clone().unwrap_or_else(|| "Open to accept".into()))
        }
        LadderKind::VendorReminder => (format!("Order {order} is due"), "Mark it ready or ask for more time".into()),
        LadderKind::RiderAssign => (
            format!("New delivery {order}{amount}"),
            format!(
                "Pickup: {}. Drop: {}.",
                c.pickup_address.as_ref().or(c.pickup_name.as_ref()).map(String::as_str).unwrap_or_default(),
                c.drop_address.as_deref().unwrap_or_default()
            ),
        ),
        LadderKind::RiderAddressUpdate => {
            (format!("Address changed: {order}"), c.new_address.clone().unwrap_or_default())
        }
        LadderKind::CustomerStatus => {
            (format!("Order {order}"), format!("Status: {}", c.status.as_deref().unwrap_or("updated")))
        }
        LadderKind::CustomerDelay => (format!("Order {order} is delayed"), c.reason.clone().unwrap_or_default()),
    }
}

/// The ladder's app push.
pub async fn send_push(state: &AppState, ladder: &Ladder) -> Sent {
    let Some(role) = role(ladder) else { return Sent::Skipped(format!("no app for party {}", ladder.party)) };
    let Some(id) = party_id(ladder) else { return Sent::Skipped("the party's id is not known".into()) };
    // Jupiter gives no registration tokens, so FCM pushes go to the party's
    // public topic: only the app backend reaches their own devices.
    let private = state.channels.push.as_ref().is_some_and(|c| !c.sends_to_topics());
    let (title, body) = push_text(ladder, private);
    let order = ladder.order_id.clone().unwrap_or_default();
    push_to(state, role.as_str(), id, &title, &body, &order, Some(ladder)).await
}

/// A push to one party; `ladder` adds the escalation and its answers to
/// the data, so the app can offer the same buttons.
pub async fn push_to(
    state: &AppState,
    role: &str,
    id: &str,
    title: &str,
    body: &str,
    order_id: &str,
    ladder: Option<&Ladder>,
) -> Sent {
    let Some(client) = &state.channels.push else { return Sent::Skipped("app push is not configured".into()) };
    let role = match role {
        "vendor" => Role::Vendor,
        "rider" => Role::Rider,
        _ => Role::Customer,
    };
    let mut message = PushMessage::new(Recipient::new(role, id), title, body).with_data("orderId", order_id);
    if let Some(ladder) = ladder {
        message = message
            .with_data("escalationId", ladder.escalation_id.clone())
            .with_data("kind", ladder.kind.name())
            .with_collapse_key(ladder.escalation_id.clone())
            .with_data("actions", answers::buttons(ladder.kind).join(","));
    }
    match client.send(&message).await {
        Ok(sent) => Sent::Sent { provider_id: sent.provider_id, detail: json!({"recipient": format!("{role}:{id}")}) },
        Err(e) => match e.retry_after() {
            Some(wait) if e.is_transient() => Sent::Throttled { message: e.message(), wait },
            _ => Sent::Failed { message: e.message(), transient: e.is_transient() },
        },
    }
}

/// The template's body parameters, in the order the templates were
/// approved with (see `docs/whatsapp.md`).
pub fn template_params(ladder: &Ladder) -> Vec<String> {
    let order = ladder.order_id.clone().unwrap_or_default();
    let c = &ladder.context;
    // A template parameter cannot be empty: what is not known shows as `-`.
    fn or<T: ToString>(value: &Option<T>, default: &str) -> String {
        value.as_ref().map(T::to_string).unwrap_or_else(|| default.to_string())
    }
    match ladder.kind {
        LadderKind::VendorNewOrder => vec![order, or(&c.amount, "-"), or(&c.items, "-")],
        LadderKind::VendorReminder => vec![order, or(&c.minutes_remaining, "0")],
        LadderKind::RiderAssign => {
            vec![order, or(&c.pickup_address, "-"), or(&c.drop_address, "-"), or(&c.amount, "-")]
        }
        LadderKind::RiderAddressUpdate => vec![order, or(&c.new_address, "-"), or(&c.map_link, "-")],
        LadderKind::CustomerStatus => vec![order, or(&c.status, "updated"), or(&c.eta_minutes, "-")],
        LadderKind::CustomerDelay => vec![order, or(&c.delay_minutes, "-"), or(&c.reason, "-")],
    }
}

/// The ladder's WhatsApp template, with Accept/Reject (or the ladder's
/// answers) as quick replies whose payload names the escalation.
pub async fn send_whatsapp(state: &AppState, ladder: &Ladder) -> Sent {
    let Some(client) = &state.channels.whatsapp else { return Sent::Skipped("WhatsApp is not configured".into()) };
    let Some(template) = ladder.definition.whatsapp_template.clone() else {
        return Sent::Skipped("this ladder has no WhatsApp template".into());
    };
    let Some(to) = ladder.phone.clone() else {
        return Sent::Skipped("no phone number for the party".into());
    };
    let buttons: Vec<String> =
        answers::buttons(ladder.kind).iter().map(|a| answers::button_payload(&ladder.escalation_id, a)).collect();
    // The code the template is approved in (`en_US` for `en`, …).
    let language = ladder.definition.whatsapp_language(ladder.language.code());
    // Meta hands the escalation id back on every status of this message:
    // a `failed` one is matched to this step by the wamid recorded below.
    let message = TemplateMessage::new(to.clone(), &template, language.clone())
        .body(template_params(ladder))
        .quick_replies(buttons)
        .callback_data(ladder.escalation_id.clone());
    match client.send_template(&message).await {
        Ok(sent) => Sent::Sent {
            provider_id: sent.message_id,
            detail: json!({"template": template, "language": language, "to": to.masked()}),
        },
        Err(e) if e.is_ambiguous() => Sent::Unknown(e.message()),
        Err(e) => match e.retry_after {
            Some(wait) if e.is_transient() => Sent::Throttled { message: e.message(), wait },
            _ => Sent::Failed { message: e.message(), transient: e.is_transient() },
        },
    }
}

/// A ladder's `sms` step: the ladder's service-implicit template in the
/// party's language, sent at most once, but only to a party that no earlier
/// step reached: a push the app backend or FCM accepted, or a WhatsApp
/// message Meta has not reported failed, counts as reached. A voice-first
/// customer (no app id, no WhatsApp) gets the SMS.
pub async fn send_ladder_sms(state: &AppState, ladder: &Ladder, index: u32) -> Sent {
    use mangwale_core::ladder::StepState;

    let reached = ladder.steps.iter().filter(|s| s.index < index).find(|s| s.state == StepState::Sent);
    if let Some(step) = reached {
        return Sent::Skipped(format!("the party was reached by {} (step {})", step.channel.name(), step.index));
    }
    let Some(to) = ladder.phone.clone() else { return Sent::Skipped("no phone number for the party".into()) };
    let LadderSms { name, body, dlt_template_id } = match ladder_sms(state, ladder) {
        Ok(sms) => sms,
        Err(not_sent) => return not_sent,
    };
    let name = name.as_str();
    if state.config.mode == crate::config::Mode::Live && dlt_template_id.is_none() {
        return Sent::Failed {
            message: format!("SMS template '{name}' has no DLT template id; DLT scrubbing would reject it"),
            transient: false,
        };
    }
    let mut sms = SendSms::new(sms_sender(state), to.clone(), body);
    sms.dlt_entity_id = state.config.exotel_dlt_entity_id.clone();
    sms.dlt_template_id = dlt_template_id;
    sms.sms_type = Some(mangwale_providers::exotel::client::SmsType::Transactional);
    sms.custom_field = Some(format!("l:{}", ladder.escalation_id).chars().take(128).collect());
    let key = format!("{}:{index}", ladder.escalation_id);
    match send_sms_once(state, SmsPurpose::CustomerUpdate, &key, &sms).await {
        SentOnce::Sent { id, earlier } => Sent::Sent {
            provider_id: id,
            detail: json!({"template": name, "language": ladder.language.code(), "to": to.masked(), "earlier": earlier}),
        },
        SentOnce::NotSent { message, transient, retry_after: Some(wait) } if transient => {
            Sent::Throttled { message, wait }
        }
        SentOnce::NotSent { message, transient, .. } => Sent::Failed { message, transient },
        SentOnce::Unknown { message } => Sent::Unknown(message),
    }
}

/// A ladder's `sms` step as it goes out.
pub(crate) struct LadderSms {
    /// The template's key.
    pub name: String,
    /// The text in the party's language (else English), rendered.
    pub body: String,
    pub dlt_template_id: Option<String>,
}

/// Renders the ladder's SMS template in the party's language (English when
/// the template has no text in it); the step's outcome when it cannot.
pub(crate) fn ladder_sms(state: &AppState, ladder: &Ladder) -> Result<LadderSms, Sent> {
    use mangwale_core::campaign::{TemplateKey, render};

    let Some(name) = ladder.definition.sms_template.as_deref() else {
        return Err(Sent::Skipped("this ladder has no SMS template".into()));
    };
    // Checked at start-up (config::ladder_sms_templates_exist); a ladder
    // started under another configuration may name one that is gone.
    let template = TemplateKey::parse(name).ok().and_then(|key| state.config.campaign_templates.get(&key));
    let Some(template) = template else {
        return Err(Sent::Failed { message: format!("SMS template '{name}' is not configured"), transient: false });
    };
    let Some(text) = template.text(ladder.language).or_else(|| template.text(mangwale_core::Language::En)) else {
        return Err(Sent::Failed {
            message: format!("SMS template '{name}' has no text in this language"),
            transient: false,
        });
    };
    let body = render(&text.sms, &template.variables, &ladder_sms_values(ladder))
        .map_err(|e| Sent::Failed { message: format!("SMS template '{name}': {e}"), transient: false })?;
    Ok(LadderSms { name: name.to_string(), body, dlt_template_id: text.dlt_template_id.clone() })
}

/// The values of a ladder SMS's `{#var#}`s, by the names templates use.
/// DLT allows 30 characters a variable: longer values are cut, not refused,
/// since a status update is better short than missing.
fn ladder_sms_values(ladder: &Ladder) -> std::collections::BTreeMap<String, String> {
    let c = &ladder.context;
    let short = |s: String| s.chars().take(mangwale_core::campaign::DLT_VAR_MAX_CHARS).collect::<String>();
    let mut values = std::collections::BTreeMap::new();
    let mut put = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            values.insert(name.to_string(), short(v));
        }
    };
    put("order", ladder.order_id.clone());
    put("status", Some(c.status.as_deref().unwrap_or("updated").replace('_', " ")));
    put("minutes", c.delay_minutes.or(c.eta_minutes).map(|m| m.to_string()));
    put("eta", c.eta_minutes.map(|m| m.to_string()));
    put("reason", c.reason.clone());
    put("name", c.name.clone());
    values
}

/// The admin alert SMS of a ladder, sent at most once per `key` (see
/// [`send_sms_once`]).
pub async fn send_sms(state: &AppState, to: &E164, body: &str, ladder: &Ladder, key: &str) -> SentOnce {
    let mut sms = SendSms::new(sms_sender(state), to.clone(), body);
    sms.dlt_entity_id = state.config.exotel_dlt_entity_id.clone();
    sms.dlt_template_id = state.config.exotel_dlt_template_admin_alert.clone();
    sms.custom_field = Some(format!("l:{}", ladder.escalation_id).chars().take(128).collect());
    send_sms_once(state, SmsPurpose::AdminAlert, key, &sms).await
}

/// The sender of our SMS: `EXOTEL_SMS_SENDER`, else the general caller id.
pub fn sms_sender(state: &AppState) -> String {
    state
        .config
        .exotel_sms_sender
        .clone()
        .unwrap_or_else(|| state.exotel.caller_id(crate::exotel::CallerPurpose::Other).national())
}

/// Which SMS of the service, for its at-most-once key and its metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsPurpose {
    /// The admin step of a ladder, or an admin alert on a reported problem.
    AdminAlert,
    /// The SMS after the callbacks of a missed call gave up.
    MissedCall,
    /// The rider's pickup location.
    RiderPickup,
    /// The UPI payment link of a voice order.
    PaymentLink,
    /// A customer ladder's `sms` step (order status or delay).
    CustomerUpdate,
    /// A campaign's SMS (a single send, or one recipient's).
    Campaign,
}

impl SmsPurpose {
    pub fn name(self) -> &'static str {
        match self {
            SmsPurpose::AdminAlert => "admin_alert",
            SmsPurpose::MissedCall => "missed_call",
            SmsPurpose::RiderPickup => "rider_pickup",
            SmsPurpose::PaymentLink => "payment_link",
            SmsPurpose::CustomerUpdate => "customer_update",
            SmsPurpose::Campaign => "campaign",
        }
    }
}

/// How an at-most-once send (an SMS, a WhatsApp message) went.
#[derive(Debug, Clone, PartialEq)]
pub enum SentOnce {
    /// The provider accepted it (`id`: its SMS sid or message id);
    /// `earlier` when an earlier attempt with the same key did (nothing was
    /// sent this time).
    Sent { id: String, earlier: bool },
    /// Certainly not sent (refused before it was processed, rate-limited,
    /// invalid, or nothing could be recorded first): a retry may send it.
    NotSent { message: String, transient: bool, retry_after: Option<std::time::Duration> },
    /// It may have gone out, this time or on an earlier attempt with the same
    /// key (the connection dropped after the request was written, or a worker
    /// stopped mid-send): it is never sent again. Its status callback, if the
    /// provider sends one, lands on the timeline.
    Unknown { message: String },
}

/// Why a send failed, as [`send_at_most_once`] needs to know it.
#[derive(Debug, Clone, PartialEq)]
pub enum SendFailure {
    /// The provider certainly did not act on the request.
    NotSent { message: String, transient: bool, retry_after: Option<std::time::Duration> },
    /// The request may have been acted on (no answer came back).
    Ambiguous { message: String },
}

/// The scope of the at-most-once keys in the idempotency store.
const ONCE_KEY_SCOPE: &str = "send_once";
/// How long such a key is kept: far longer than any job retries its send.
const ONCE_KEY_TTL: chrono::Duration = chrono::Duration::days(7);

/// Sends `sms` unless an earlier attempt with `key` sent it or may have
/// (see [`send_at_most_once`]). Counted in `mangwale_sms_total{purpose, outcome}`.
pub async fn send_sms_once(state: &AppState, purpose: SmsPurpose, key: &str, sms: &SendSms) -> SentOnce {
    use mangwale_providers::exotel::client::ExotelError;
    let key = format!("{}:{key}", purpose.name());
    let outcome = send_at_most_once(state, &key, purpose.name(), async {
        match state.exotel.client.send_sms(sms).await {
            Ok(message) => Ok(message.sid),
            Err(e @ ExotelError::Ambiguous { .. }) => Err(SendFailure::Ambiguous { message: e.message().to_string() }),
            Err(e) => Err(SendFailure::NotSent {
                message: e.message().to_string(),
                transient: e.is_transient(),
                retry_after: e.retry_after(),
            }),
        }
    })
    .await;
    let label = match &outcome {
        SentOnce::Sent { earlier: false, .. } => "sent",
        SentOnce::Sent { earlier: true, .. } => "sent_earlier",
        SentOnce::NotSent { .. } => "not_sent",
        SentOnce::Unknown { .. } => "unknown",
    };
    metrics::counter!("mangwale_sms_total", "purpose" => purpose.name(), "outcome" => label).increment(1);
    outcome
}

/// Runs `send` unless an earlier attempt with `key` sent it or may have.
///
/// The key is claimed in the store before the request: a claim completed
/// with the provider's id means sent; a claim left open means the outcome
/// is unknown (the answer was lost, or the worker stopped mid-send); a claim
/// is given back only when the message was certainly not sent. So a retried
/// job never sends a message twice, and retries only what is certainly
/// unsent.
pub async fn send_at_most_once(
    state: &AppState,
    key: &str,
    fingerprint: &str,
    send: impl std::future::Future<Output = Result<String, SendFailure>>,
) -> SentOnce {
    use mangwale_store::{IdempotencyClaim, StoredResponse};

    let store = &state.store;
    let now = state.clock.now();
    match store.idempotency_claim(ONCE_KEY_SCOPE, key, fingerprint, now, now + ONCE_KEY_TTL).await {
        Ok(IdempotencyClaim::Claimed) => {}
        Ok(IdempotencyClaim::Completed { response, .. }) => {
            return SentOnce::Sent { id: String::from_utf8_lossy(&response.body).into_owned(), earlier: true };
        }
        Ok(IdempotencyClaim::InFlight { .. }) => {
            return SentOnce::Unknown {
                message: "an earlier attempt may have sent it (its outcome is unknown): not sent again".into(),
            };
        }
        Err(e) => {
            return SentOnce::NotSent {
                message: format!("recording the attempt: {e}"),
                transient: true,
                retry_after: None,
            };
        }
    }
    match send.await {
        Ok(id) => {
            let sent =
                StoredResponse { status: 200, content_type: Some("text/plain".into()), body: id.clone().into_bytes() };
            // Left open, the key makes a retry report the message unknown
            // rather than send it again: safe, and logged.
            if let Err(e) = store.idempotency_complete(ONCE_KEY_SCOPE, key, &sent, state.clock.now()).await {
                tracing::warn!(key, id, error = %e, "message sent, but its key could not be completed");
            }
            SentOnce::Sent { id, earlier: false }
        }
        // The key stays claimed: nothing sends this message again.
        Err(SendFailure::Ambiguous { message }) => SentOnce::Unknown { message },
        Err(SendFailure::NotSent { message, transient, retry_after }) => {
            if let Err(release) = store.idempotency_release(ONCE_KEY_SCOPE, key).await {
                tracing::warn!(key, error = %release, "message not sent, but its key could not be released: a retry will report it unknown");
            }
            SentOnce::NotSent { message, transient, retry_after }
        }
    }
}

/// Every (template, language code) the service may send: each ladder's
/// template in each party language, through its language mapping, and the
/// rider's pickup location (in the rider ladder's language codes).
pub fn wanted_templates(ladders: &mangwale_core::ladder::LadderBook) -> Vec<(String, String)> {
    let mut wanted = Vec::new();
    let rider = ladders.get(LadderKind::RiderAssign);
    for language in ["hi", "en", "mr"] {
        wanted.push((super::pickup::PICKUP_TEMPLATE.to_string(), rider.whatsapp_language(language)));
        let customer = ladders.get(LadderKind::CustomerStatus);
        let pair = (crate::voice::PAYMENT_LINK_TEMPLATE.to_string(), customer.whatsapp_language(language));
        if !wanted.contains(&pair) {
            wanted.push(pair);
        }
    }
    for kind in LadderKind::ALL {
        let def = ladders.get(kind);
        let sends = def.steps.iter().any(|s| s.channel == mangwale_core::ladder::Channel::WhatsApp);
        let Some(template) = def.whatsapp_template.as_ref().filter(|_| sends) else { continue };
        for language in ["hi", "en", "mr"] {
            let pair = (template.clone(), def.whatsapp_language(language));
            if !wanted.contains(&pair) {
                wanted.push(pair);
            }
        }
    }
    wanted
}

/// Lists the business account's templates and says which of ours cannot
/// be sent (missing, or not APPROVED, in a language); the problems, or
/// the error of the listing.
pub async fn check_whatsapp_templates(
    client: &WhatsAppClient,
    ladders: &mangwale_core::ladder::LadderBook,
) -> Result<Vec<mangwale_providers::whatsapp::TemplateProblem>, mangwale_providers::whatsapp::WhatsAppError> {
    let listed = client.list_templates().await?;
    let wanted = wanted_templates(ladders);
    Ok(mangwale_providers::whatsapp::check_templates(wanted.iter().map(|(n, l)| (n.as_str(), l.as_str())), &listed))
}

/// [`check_whatsapp_templates`], logged: a warning per template that
/// cannot be sent, and a metric of how many.
async fn log_template_check(client: &WhatsAppClient, ladders: &mangwale_core::ladder::LadderBook) {
    match check_whatsapp_templates(client, ladders).await {
        Ok(problems) => {
            metrics::gauge!("mangwale_whatsapp_templates_unusable").set(problems.len() as f64);
            if problems.is_empty() {
                tracing::info!("every WhatsApp template of the ladders is APPROVED in every language it is sent in");
            }
            for problem in problems {
                tracing::warn!(problem = %problem, "WhatsApp template cannot be sent: its steps will fail with 132001");
            }
        }
        Err(e) => tracing::warn!(error = %e, "the WhatsApp Business Account's templates could not be listed"),
    }
}

/// Why a channel could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ChannelSetupError {
    #[error("the sandbox WhatsApp simulator: {0}")]
    WhatsAppSim(String),
    #[error("the sandbox push simulator: {0}")]
    PushSim(String),
    #[error("WHATSAPP: {0}")]
    WhatsApp(String),
}

/// The longest wait the WhatsApp client spends in a worker before a retry.
/// Shorter than Meta's 6 s after 131056, so that wait is the job queue's
/// (the step is deferred) rather than a worker held idle.
const WHATSAPP_RETRY_CAP: std::time::Duration = std::time::Duration::from_secs(5);

/// The verify token of the sandbox's WhatsApp webhook subscription.
pub const SANDBOX_WHATSAPP_VERIFY_TOKEN: &str = "sandbox-whatsapp-verify-token";

impl Channels {
    /// Live: the configured providers (a channel left unconfigured is
    /// skipped by the ladders, and says so on the timeline). Sandbox: the
    /// simulators, started in-process on loopback, with the production
    /// clients pointed at them; WhatsApp's webhooks come back to
    /// `{PUBLIC_BASE_URL}/webhooks/whatsapp`.
    pub async fn start(
        config: &crate::config::Config,
        whatsapp_sim: Option<mangwale_sim::whatsapp::WhatsAppSimConfig>,
        push_sim: Option<mangwale_sim::push::PushSimConfig>,
    ) -> Result<Channels, ChannelSetupError> {
        use mangwale_providers::push::{FcmConfig, PushClientConfig, PushConfig, ServiceAccountKey};
        use mangwale_providers::whatsapp::WhatsAppClientConfig;

        let sandbox = config.mode == crate::config::Mode::Sandbox;
        let mut channels = Channels::default();
        match &config.whatsapp {
            Some(w) => {
                let mut client_config = WhatsAppClientConfig::new(&w.phone_number_id, w.access_token.expose());
                if let Some(url) = &w.api_url {
                    client_config = client_config.with_base_url(url.clone());
                }
                if let Some(secret) = &w.app_secret {
                    client_config = client_config.with_app_secret(secret.expose());
                }
                if let Some(waba) = &w.business_account_id {
                    client_config = client_config.with_business_account_id(waba);
                }
                client_config.retry_cap = WHATSAPP_RETRY_CAP;
                let client =
                    WhatsAppClient::new(client_config).map_err(|e| ChannelSetupError::WhatsApp(e.message()))?;
                if w.business_account_id.is_some() {
                    // Listed in the background: start-up does not wait on Meta.
                    let (client, ladders) = (client.clone(), config.ladders.clone());
                    tokio::spawn(async move { log_template_check(&client, &ladders).await });
                } else {
                    tracing::warn!(
                        "WHATSAPP_BUSINESS_ACCOUNT_ID is not set: our WhatsApp templates cannot be checked against Meta's"
                    );
                }
                channels.whatsapp = Some(client);
                channels.whatsapp_app_secret = w.app_secret.clone();
                channels.whatsapp_verify_token = w.verify_token.clone();
            }
            None if sandbox => {
                let mut sim_config = whatsapp_sim.unwrap_or_default();
                let webhook = config
                    .public_base_url
                    .join("webhooks/whatsapp")
                    .map_err(|e| ChannelSetupError::WhatsAppSim(e.to_string()))?;
                sim_config.webhook_url = Some(webhook.to_string());
                let sim = mangwale_sim::whatsapp::WhatsAppSim::start(sim_config)
                    .await
                    .map_err(|e| ChannelSetupError::WhatsAppSim(e.to_string()))?;
                let base =
                    reqwest::Url::parse(sim.base_url()).map_err(|e| ChannelSetupError::WhatsAppSim(e.to_string()))?;
                let mut client_config = WhatsAppClientConfig::new(sim.phone_number_id(), sim.access_token())
                    .with_base_url(base)
                    .with_app_secret(sim.app_secret())
                    .with_business_account_id(sim.business_account_id());
                client_config.retry_cap = WHATSAPP_RETRY_CAP;
                channels.whatsapp =
                    Some(WhatsAppClient::new(client_config).map_err(|e| ChannelSetupError::WhatsAppSim(e.message()))?);
                channels.whatsapp_app_secret = Some(crate::config::Secret::new(sim.app_secret()));
                channels.whatsapp_verify_token = Some(crate::config::Secret::new(SANDBOX_WHATSAPP_VERIFY_TOKEN));
                tracing::info!(url = %sim.base_url(), "sandbox: simulated WhatsApp Cloud API");
                channels.whatsapp_sim = Some(sim);
            }
            None => tracing::warn!("WhatsApp is not configured: WhatsApp steps of the ladders are skipped"),
        }
        match &config.push {
            Some(push) => channels.push = Some(PushClient::new(PushClientConfig::new(push.clone()))),
            None if sandbox => {
                let sim = mangwale_sim::push::PushSim::start(push_sim.unwrap_or_default())
                    .await
                    .map_err(|e| ChannelSetupError::PushSim(e.to_string()))?;
                let key = ServiceAccountKey::from_json(&sim.service_account_json())
                    .map_err(|e| ChannelSetupError::PushSim(e.to_string()))?;
                let fcm = FcmConfig::new(sim.project_id(), key).with_base_url(sim.url());
                channels.push = Some(PushClient::new(PushClientConfig::new(PushConfig::Fcm(fcm))));
                tracing::info!(url = %sim.url(), "sandbox: simulated FCM");
                channels.push_sim = Some(sim);
            }
            None => tracing::warn!("app push is not configured: push steps of the ladders are skipped"),
        }
        Ok(channels)
    }
}
