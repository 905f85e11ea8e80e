//! `POST /webhooks/jupiter/{scope}/{event}`: Jupiter's events, signed with
//! `JUPITER_WEBHOOK_SECRET` over the exact body bytes (see
//! `jupiter::signature`). Each event is deduplicated by what the signature
//! covers, recorded on the order's timeline and its actions enqueued in one
//! transaction before the 202; see `jupiter::events` for which actions each
//! event sets in motion.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use mangwale_core::OrderId;
use mangwale_store::{InboundEvent, InboundOutcome, NewEvent, NewJob};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};
use crate::exotel_params::mask_json;
use crate::jupiter::events::{Action, RESOLVE_JOB, WebhookEvent};
use crate::jupiter::signature::{self, EVENT_ID_HEADER, SIGNATURE_HEADER, SignedHeaders, TIMESTAMP_HEADER};
use crate::jupiter::{outbox, resolve};
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/webhooks/jupiter/health", get(health))
        .route("/webhooks/jupiter/{scope}/{event}", post(webhook))
}

/// Jupiter checks that we are up (the seed's `curl .../webhooks/jupiter/health`).
async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "service": "mangwale-exotel",
        "version": env!("CARGO_PKG_VERSION"),
        "signatureRequired": state.jupiter.webhook_secret.is_some(),
        "timestampRequired": state.config.jupiter_require_timestamp,
        "events": WebhookEvent::ALL.iter().map(|e| e.path()).collect::<Vec<_>>(),
    }))
}

async fn webhook(
    State(state): State<AppState>,
    Path((scope, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<(StatusCode, Json<Value>)> {
    let event = WebhookEvent::from_path(&format!("{scope}/{name}"))
        .ok_or_else(|| AppError::NotFound(format!("no Jupiter event {scope}/{name}")))?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (signed, signed_event_id) = match &state.jupiter.webhook_secret {
        Some(secret) => {
            let now = state.clock.now();
            let headers = SignedHeaders {
                signature: header(SIGNATURE_HEADER),
                timestamp: header(TIMESTAMP_HEADER),
                event_id: header(EVENT_ID_HEADER),
            };
            match signature::verify(secret.expose(), headers, &body, now, state.config.jupiter_require_timestamp) {
                Ok(verified) => (true, verified.event_id),
                Err(e) => {
                    tracing::warn!(event = event.path(), reason = %e, "rejected a Jupiter webhook");
                    metrics::counter!("mangwale_jupiter_webhook_rejected_total", "event" => event.path()).increment(1);
                    return Err(AppError::Unauthorized);
                }
            }
        }
        None => (false, None),
    };

    let (payload, order_id) = parse_body(&body)?;

    // Only what the signature covers may identify a redelivery: a signed
    // event id, else the event and its signed body. An unsigned event id is
    // ignored, or a captured request resent with a new id would act again.
    let dedup = match signed_event_id {
        Some(id) => format!("jupiter:id:{id}"),
        None => {
            let mut hash = Sha256::new();
            hash.update(event.path().as_bytes());
            hash.update(b"\n");
            hash.update(&body);
            format!("jupiter:sha256:{}", hex::encode(hash.finalize()))
        }
    };
    let now = state.clock.now();
    let id = order_id.as_str();
    let mut jobs = Vec::new();
    let (immediate, after_lookup): (Vec<Action>, Vec<Action>) =
        event.actions().iter().copied().partition(|a| !a.needs_order());
    for action in &immediate {
        let (kind, job_payload) = action.job(event, id, &payload);
        let mut job = NewJob::follow_up(kind, job_payload, now).max_attempts(50);
        if kind == outbox::OUTBOX_JOB {
            job = job.in_group(outbox::group(id));
        }
        jobs.push(job);
    }
    if !after_lookup.is_empty() {
        jobs.push(
            NewJob::follow_up(RESOLVE_JOB, resolve::payload(event, id, &payload, &dedup), now)
                .max_attempts(resolve::MAX_ATTEMPTS),
        );
    }
    let actions: Vec<String> = event.actions().iter().map(|a| a.name()).collect();
    let inbound = InboundEvent {
        dedup_key: dedup.clone(),
        source: "jupiter.webhook".into(),
        event: NewEvent::new(event.timeline_kind(), now).order(id).channel("jupiter").detail(json!({
            "event": event.path(), "signed": signed, "actions": actions, "dedup": dedup,
            "body": mask_json(payload.clone()),
        })),
        jobs,
    };
    let outcome = state.inbound.record(inbound).await.map_err(|e| {
        tracing::error!(error = %e, "recording a Jupiter webhook failed");
        AppError::Unavailable { code: "store_unavailable", message: "the event could not be recorded; retry".into() }
    })?;
    let duplicate = outcome == InboundOutcome::Duplicate;
    metrics::counter!("mangwale_jupiter_webhooks_total", "event" => event.path(),
        "outcome" => if duplicate { "duplicate" } else { "recorded" })
    .increment(1);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "success": true, "event": event.path(), "orderId": id, "duplicate": duplicate,
            "actions": if duplicate { Vec::new() } else { actions },
        })),
    ))
}

/// Reads a webhook body: a JSON object carrying the order id (`order_id` or
/// `orderId`, a number or a string). Public for the fuzz harness.
#[doc(hidden)]
pub fn parse_body(body: &[u8]) -> AppResult<(Value, OrderId)> {
    let payload: Value = serde_json::from_slice(body).map_err(|e| AppError::BadRequest {
        code: "malformed_json",
        message: format!("body: {e}"),
        field: None,
    })?;
    if !payload.is_object() {
        return Err(AppError::BadRequest {
            code: "malformed_json",
            message: "the body must be a JSON object".into(),
            field: None,
        });
    }
    let order_id = match payload.get("order_id").or_else(|| payload.get("orderId")) {
        None | Some(Value::Null) => return Err(AppError::invalid("order_id", "order_id is required")),
        Some(raw) => serde_json::from_value::<OrderId>(raw.clone())
            .map_err(|e| AppError::invalid("order_id", format!("order_id: {e}")))?,
    };
    Ok((payload, order_id))
}
