//! WhatsApp Cloud API webhooks: the subscription handshake, and the
//! messages Meta sends us — a tap on a template's quick reply stops the
//! ladder with that answer, exactly like a key on the IVR.
//!
//! Meta signs every webhook with the app secret (`X-Hub-Signature-256`,
//! over the exact body bytes); an unsigned or wrongly signed one is a 401
//! and changes nothing. Meta retries, so everything is idempotent: the
//! answer by its ladder's state and the reply's message id, the timeline
//! entry by the message id.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mangwale_core::ladder::StepState;
use mangwale_providers::whatsapp::{
    DeliveryStatus, InboundEvent as WhatsAppEvent, parse_webhook, verify_signature, verify_subscription,
};
use mangwale_store::{InboundEvent, InboundOutcome, Ladder, NewEvent, OnExhausted, StepResult};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::comms::answers::{self, Applied};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/webhooks/whatsapp", get(subscribe).post(receive))
}

/// The query of Meta's subscription handshake (also fed to the fuzzer).
#[derive(Debug, Deserialize)]
pub(crate) struct Handshake {
    #[serde(rename = "hub.mode")]
    pub(crate) mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    pub(crate) token: Option<String>,
    #[serde(rename = "hub.challenge")]
    pub(crate) challenge: Option<String>,
}

/// Meta's `GET` when the webhook is subscribed: echo the challenge if the
/// verify token is ours.
async fn subscribe(State(state): State<AppState>, Query(q): Query<Handshake>) -> Response {
    let expected = state.channels.whatsapp_verify_token.as_ref().map(|t| t.expose().to_string()).unwrap_or_default();
    match verify_subscription(q.mode.as_deref(), q.token.as_deref(), q.challenge.as_deref(), &expected) {
        Some(challenge) => ([(header::CONTENT_TYPE, "text/plain")], challenge).into_response(),
        None => AppError::Unauthorized.into_response(),
    }
}

async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<(StatusCode, Json<Value>)> {
    let Some(secret) = &state.channels.whatsapp_app_secret else {
        return Err(AppError::Unavailable {
            code: "whatsapp_not_configured",
            message: "WHATSAPP_APP_SECRET is not set, so webhooks cannot be verified".into(),
        });
    };
    let signature = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    if !verify_signature(secret.expose(), &body, signature) {
        metrics::counter!("mangwale_whatsapp_webhooks_rejected_total").increment(1);
        return Err(AppError::Unauthorized);
    }
    let events = parse_webhook(&body).map_err(|e| AppError::BadRequest {
        code: "malformed_webhook",
        message: e.to_string(),
        field: None,
    })?;
    let mut handled = Vec::new();
    for event in events {
        handled.push(handle(&state, event).await?);
    }
    Ok((StatusCode::OK, Json(json!({"success": true, "events": handled}))))
}

async fn handle(state: &AppState, event: WhatsAppEvent) -> AppResult<Value> {
    let now = state.clock.now();
    match event {
        WhatsAppEvent::ButtonReply { from, message_id, context_message_id, payload, text, .. } => {
            let parsed = answers::parse_button(&payload);
            let ladder = match parsed {
                Some((id, _)) => state.store.ladder(id).await?,
                None => None,
            };
            let (outcome, order, escalation, party) = match (parsed, &ladder) {
                (Some((_, answer)), Some(ladder)) if ladder.phone.as_ref() == Some(&from) => {
                    let applied =
                        answers::apply(state, ladder, answer, "whatsapp", &format!("wa:{message_id}")).await?;
                    let outcome = match applied {
                        Applied::Stopped(action) => format!("stopped:{}", action.name()),
                        Applied::AlreadyFinished => "already_finished".to_string(),
                        Applied::NotAnAnswer => "not_an_answer".to_string(),
                    };
                    (outcome, ladder.order_id.clone(), Some(ladder.escalation_id.clone()), Some(ladder.party.clone()))
                }
                // A tap from another number than the ladder's party is not
                // their answer (a forwarded message).
                (Some(_), Some(ladder)) => {
                    ("not_the_party".to_string(), ladder.order_id.clone(), Some(ladder.escalation_id.clone()), None)
                }
                (Some(_), None) => ("unknown_escalation".to_string(), None, None, None),
                (None, _) => ("unknown_payload".to_string(), None, None, None),
            };
            let event = NewEvent::new("whatsapp.reply", now)
                .channel("whatsapp")
                .context(order.as_deref(), escalation.as_deref(), party.as_deref())
                .detail(json!({"messageId": message_id, "context": context_message_id, "button": text,
                               "from": from.masked(), "outcome": outcome}));
            record(state, format!("whatsapp:msg:{message_id}"), event).await?;
            metrics::counter!("mangwale_whatsapp_replies_total", "outcome" => outcome.split(':').next().unwrap_or("").to_string())
                .increment(1);
            Ok(json!({"type": "button", "outcome": outcome}))
        }
        WhatsAppEvent::Text { from, message_id, body, .. } => {
            let stop = mangwale_core::campaign::is_stop_word(&body);
            let event = NewEvent::new("whatsapp.text", now).channel("whatsapp").detail(
                json!({"messageId": message_id, "from": from.masked(), "chars": body.chars().count(), "stop": stop}),
            );
            // A STOP is an opt-out from campaigns. The ledger first: a
            // redelivered webhook (after a failure) writes it then, and the
            // ledger keeps one entry.
            if stop {
                let source = mangwale_core::campaign::SuppressionSource::WhatsappStop;
                crate::campaigns::compliance::record_opt_out(state, &from, source, Some("WhatsApp message")).await?;
            }
            record(state, format!("whatsapp:msg:{message_id}"), event).await?;
            Ok(json!({"type": "text", "stop": stop}))
        }
        WhatsAppEvent::Status { message_id, recipient, status, errors, callback_data, .. } => {
            metrics::counter!("mangwale_whatsapp_statuses_total", "status" => status.as_str()).increment(1);
            let errors: Vec<Value> = errors.iter().map(|(code, title)| json!({"code": code, "title": title})).collect();
            // A failure Meta reports only here (131026 undeliverable, …):
            // the step that sent this message is found by the escalation id
            // Meta hands back and the wamid recorded when it was sent.
            let step = match (status, callback_data.as_deref()) {
                (DeliveryStatus::Failed, Some(escalation_id)) => {
                    failed_after_send(state, escalation_id, &message_id, &errors).await?
                }
                _ => None,
            };
            let ladder = step.as_ref().map(|(ladder, _)| ladder);
            let event = NewEvent::new("whatsapp.status", now)
                .channel("whatsapp")
                .context(
                    ladder.and_then(|l| l.order_id.as_deref()),
                    ladder.map(|l| l.escalation_id.as_str()),
                    ladder.map(|l| l.party.as_str()),
                )
                .detail(json!({
                    "messageId": message_id, "status": status.as_str(), "to": recipient.as_ref().map(|r| r.masked()),
                    "errors": errors, "step": step.as_ref().map(|(_, index)| index),
                }));
            record(state, format!("whatsapp:status:{message_id}:{}", status.as_str()), event).await?;
            Ok(json!({"type": "status", "status": status.as_str(), "step": step.map(|(_, index)| index)}))
        }
    }
}

/// A `failed` status of a message a ladder step sent: the step, counted
/// sent when Meta accepted the message, becomes failed, with a
/// `ladder.step_failed` timeline entry that says Meta reported it by
/// webhook. Idempotent: a step already failed is left alone (Meta retries
/// webhooks). The ladder and the step's index, when the message is one of
/// its steps'.
async fn failed_after_send(
    state: &AppState,
    escalation_id: &str,
    message_id: &str,
    errors: &[Value],
) -> AppResult<Option<(Ladder, u32)>> {
    let Some(ladder) = state.store.ladder(escalation_id).await? else { return Ok(None) };
    let Some(step) = ladder.steps.iter().find(|s| s.provider_id.as_deref() == Some(message_id)).cloned() else {
        return Ok(None);
    };
    if step.state != StepState::Sent {
        return Ok(Some((ladder, step.index)));
    }
    let now = state.clock.now();
    let summary = errors
        .iter()
        .map(|e| format!("{} {}", e["code"], e["title"].as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("; ");
    let detail = format!("WhatsApp reported the message failed after accepting it: {summary}");
    let event = NewEvent::new("ladder.step_failed", now)
        .escalation(&ladder.escalation_id)
        .channel(step.channel.name())
        .context(ladder.order_id.as_deref(), None, Some(&ladder.party))
        .detail(json!({"step": step.index, "ladder": ladder.kind, "providerId": message_id, "error": detail,
                       "errors": errors, "reportedBy": "webhook", "willRetry": false}));
    let result = StepResult { state: StepState::Failed, provider_id: None, detail: Some(detail) };
    let on_exhausted = OnExhausted { event: None, jobs: Vec::new() };
    state.store.finish_step(&ladder.escalation_id, step.index, result, event, Vec::new(), on_exhausted, now).await?;
    metrics::counter!("mangwale_ladder_steps_total", "channel" => step.channel.name(), "outcome" => "failed_after_send")
        .increment(1);
    Ok(Some((ladder, step.index)))
}

/// Records an event once per key through the webhook writer.
async fn record(state: &AppState, key: String, event: NewEvent) -> AppResult<bool> {
    let inbound = InboundEvent { dedup_key: key, source: "whatsapp.webhook".into(), event, jobs: Vec::new() };
    let outcome = state.inbound.record(inbound).await.map_err(|e| {
        tracing::error!(error = %e, "recording a WhatsApp webhook failed");
        AppError::Unavailable { code: "store_unavailable", message: "the event could not be recorded; retry".into() }
    })?;
    Ok(outcome == InboundOutcome::Recorded)
}
