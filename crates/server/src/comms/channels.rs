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

fn text(ladder: &Ladder, key: &str) -> Option<String> {
    match ladder.context.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        // 325, not 325.0; 325.5 as it is.
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(format!("{}", f as i64)),
            _ => Some(n.to_string()),
        },
        _ => None,
    }
}

/// Title and body of a ladder's push, in English (the apps localise by the
/// `kind` in `data`).
fn push_text(ladder: &Ladder) -> (String, String) {
    let order = ladder.order_id.as_deref().unwrap_or("-");
    let amount = text(ladder, "amount").map(|a| format!(" · ₹{a}")).unwrap_or_default();
    match super::kind(ladder) {
        Some(LadderKind::VendorNewOrder) => {
            (format!("New order {order}{amount}"), text(ladder, "items").unwrap_or_else(|| "Open to accept".into()))
        }
        Some(LadderKind::VendorReminder) => {
            (format!("Order {order} is due"), "Mark it ready or ask for more time".into())
        }
        Some(LadderKind::RiderAssign) => (
            format!("New delivery {order}{amount}"),
            format!(
                "Pickup: {}. Drop: {}.",
                text(ladder, "pickupAddress").or_else(|| text(ladder, "pickupName")).unwrap_or_default(),
                text(ladder, "dropAddress").unwrap_or_default()
            ),
        ),
        Some(LadderKind::RiderAddressUpdate) => {
            (format!("Address changed: {order}"), text(ladder, "newAddress").unwrap_or_default())
        }
        Some(LadderKind::CustomerStatus) => (
            format!("Order {order}"),
            format!("Status: {}", text(ladder, "status").unwrap_or_else(|| "updated".into())),
        ),
        Some(LadderKind::CustomerDelay) => {
            (format!("Order {order} is delayed"), text(ladder, "reason").unwrap_or_default())
        }
        None => (format!("Order {order}"), String::new()),
    }
}

/// The ladder's app push.
pub async fn send_push(state: &AppState, ladder: &Ladder) -> Sent {
    let Some(role) = role(ladder) else { return Sent::Skipped(format!("no app for party {}", ladder.party)) };
    let Some(id) = party_id(ladder) else { return Sent::Skipped("the party's id is not known".into()) };
    let (title, body) = push_text(ladder);
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
            .with_data("kind", ladder.kind.clone())
            .with_collapse_key(ladder.escalation_id.clone());
        if let Some(kind) = super::kind(ladder) {
            message = message.with_data("actions", answers::buttons(kind).join(","));
        }
    }
    match client.send(&message).await {
        Ok(sent) => Sent::Sent { provider_id: sent.provider_id, detail: json!({"recipient": format!("{role}:{id}")}) },
        Err(e) => Sent::Failed { message: e.message(), transient: e.is_transient() },
    }
}

/// The template's body parameters, in the order the templates were
/// approved with (see `docs/whatsapp.md`).
pub fn template_params(ladder: &Ladder) -> Vec<String> {
    let order = ladder.order_id.clone().unwrap_or_default();
    let or = |key: &str, default: &str| text(ladder, key).unwrap_or_else(|| default.to_string());
    match super::kind(ladder) {
        Some(LadderKind::VendorNewOrder) => vec![order, or("amount", "-"), or("items", "-")],
        Some(LadderKind::VendorReminder) => vec![order, or("minutesRemaining", "0")],
        Some(LadderKind::RiderAssign) => {
            vec![order, or("pickupAddress", "-"), or("dropAddress", "-"), or("amount", "-")]
        }
        Some(LadderKind::RiderAddressUpdate) => vec![order, or("newAddress", "-"), or("mapLink", "-")],
        Some(LadderKind::CustomerStatus) => vec![order, or("status", "updated"), or("etaMinutes", "-")],
        Some(LadderKind::CustomerDelay) => vec![order, or("delayMinutes", "-"), or("reason", "-")],
        None => vec![order],
    }
}

/// The ladder's WhatsApp template, with Accept/Reject (or the ladder's
/// answers) as quick replies whose payload names the escalation.
pub async fn send_whatsapp(state: &AppState, ladder: &Ladder) -> Sent {
    let Some(client) = &state.channels.whatsapp else { return Sent::Skipped("WhatsApp is not configured".into()) };
    let def: Option<mangwale_core::ladder::LadderDef> = serde_json::from_value(ladder.definition.clone()).ok();
    let Some(template) = def.and_then(|d| d.whatsapp_template) else {
        return Sent::Skipped("this ladder has no WhatsApp template".into());
    };
    let Some(to) = ladder.phone.as_deref().and_then(|p| E164::parse(p).ok()) else {
        return Sent::Skipped("no phone number for the party".into());
    };
    let buttons: Vec<String> = super::kind(ladder)
        .map(|k| answers::buttons(k).iter().map(|a| answers::button_payload(&ladder.escalation_id, a)).collect())
        .unwrap_or_default();
    let message = TemplateMessage::new(to.clone(), &template, ladder.language.clone())
        .body(template_params(ladder))
        .quick_replies(buttons);
    match client.send_template(&message).await {
        Ok(sent) => Sent::Sent {
            provider_id: sent.message_id,
            detail: json!({"template": template, "language": ladder.language, "to": to.masked()}),
        },
        Err(e) if e.is_ambiguous() => Sent::Unknown(e.message()),
        Err(e) => Sent::Failed { message: e.message(), transient: e.is_transient() },
    }
}

/// An SMS through Exotel; the SMS sid, or the error and whether it is
/// worth retrying.
pub async fn send_sms(state: &AppState, to: &E164, body: &str, ladder: &Ladder) -> Result<String, (String, bool)> {
    let from = state
        .config
        .exotel_sms_sender
        .clone()
        .unwrap_or_else(|| state.exotel.caller_id(crate::exotel::CallerPurpose::Other).national());
    let mut sms = SendSms::new(from, to.clone(), body);
    sms.dlt_entity_id = state.config.exotel_dlt_entity_id.clone();
    sms.dlt_template_id = state.config.exotel_dlt_template_admin_alert.clone();
    sms.custom_field = Some(format!("l:{}", ladder.escalation_id).chars().take(128).collect());
    match state.exotel.client.send_sms(&sms).await {
        Ok(message) => Ok(message.sid),
        Err(e) => Err((e.message().to_string(), e.is_transient())),
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
                channels.whatsapp =
                    Some(WhatsAppClient::new(client_config).map_err(|e| ChannelSetupError::WhatsApp(e.message()))?);
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
                let client_config = WhatsAppClientConfig::new(sim.phone_number_id(), sim.access_token())
                    .with_base_url(base)
                    .with_app_secret(sim.app_secret());
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
