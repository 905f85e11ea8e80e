//! Campaign compliance over HTTP (API key): the suppression ledger
//! (`/campaigns/suppressions…`), the DND/NCPR scrub-list upload, and single
//! campaign SMS and calls sent through the gate (`/campaigns/send/sms`,
//! `/campaigns/send/voice`).

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use mangwale_core::campaign::{CampaignTemplate, MessageChannel, SuppressionSource, TemplateKey, matches_dlt, render};
use mangwale_core::{E164, Language};
use mangwale_providers::exotel::client::SendSms;
use mangwale_store::{NewSuppression, SuppressionEntry, SuppressionFilter};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::campaigns::compliance::{self, Verdict};
use crate::comms::channels::{SentOnce, SmsPurpose, send_sms_once};
use crate::error::{AppError, AppResult};
use crate::extract::ApiJson;
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/campaigns/suppressions", get(list).post(add))
        .route("/campaigns/suppressions/scrub", post(scrub))
        .route("/campaigns/suppressions/{phone}/remove", post(remove))
        .route("/campaigns/suppressions/{phone}", axum::routing::delete(remove))
        .route("/campaigns/send/sms", post(send_sms))
        .route("/campaigns/send/voice", post(send_voice))
}

/// Who is acting, for the ledger: `X-Actor` (an operator's label) or `api`.
fn actor(headers: &HeaderMap) -> String {
    let label = headers.get("x-actor").and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
    let clean: String = label.chars().filter(|c| !c.is_control()).take(64).collect();
    if clean.is_empty() { "api".into() } else { format!("api:{clean}") }
}

fn parse_phone(raw: &str, field: &str) -> AppResult<E164> {
    E164::parse(raw).map_err(|e| AppError::invalid(field, e.0))
}

fn entry_json(e: &SuppressionEntry) -> Value {
    json!({
        "id": e.id,
        "phone": e.phone.as_str(),
        "action": e.action.as_str(),
        "source": e.source.as_str(),
        "note": e.note,
        "actor": e.actor,
        "at": e.at.to_rfc3339(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    phone: String,
    note: Option<String>,
}

/// `POST /campaigns/suppressions {phone, note?}`: an operator's opt-out
/// (source `api`). 201 with the entry, or 200 when the API already
/// suppresses the number.
async fn add(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AddBody>,
) -> AppResult<Response> {
    let phone = parse_phone(&body.phone, "phone")?;
    let actor = actor(&headers);
    let written =
        compliance::record_opt_out_by(&state, &phone, SuppressionSource::Api, body.note.as_deref(), &actor).await?;
    Ok(match written {
        Some(entry) => {
            (StatusCode::CREATED, Json(json!({"success": true, "entry": entry_json(&entry)}))).into_response()
        }
        None => Json(json!({"success": true, "alreadySuppressed": true, "phone": phone.as_str()})).into_response(),
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    note: Option<String>,
}

/// `POST /campaigns/suppressions/{phone}/remove` (or `DELETE
/// /campaigns/suppressions/{phone}`): a removal entry lifting every earlier
/// entry of the number. 404 when nothing suppresses it.
async fn remove(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> AppResult<Json<Value>> {
    let phone = parse_phone(&raw, "phone")?;
    let body: RemoveBody = if body.is_empty() { RemoveBody::default() } else { crate::extract::parse_json(&body)? };
    let now = state.clock.now();
    let actor = actor(&headers);
    let removed =
        state.store.remove_suppression(&phone, SuppressionSource::Api, body.note.as_deref(), &actor, now).await?;
    let Some(entry) = removed else {
        return Err(AppError::NotFound(format!("{} is not suppressed", phone.masked())));
    };
    let event = mangwale_store::NewEvent::new("campaign.opt_out_removed", now)
        .party(format!("customer:{}", phone.masked()))
        .channel("api")
        .detail(json!({"phone": phone.masked(), "entryId": entry.id, "actor": actor}));
    state.store.record_event(event).await?;
    metrics::counter!("mangwale_campaign_opt_out_removals_total").increment(1);
    Ok(Json(json!({"success": true, "entry": entry_json(&entry)})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    phone: Option<String>,
    source: Option<String>,
    /// The `nextBefore` of the previous page.
    before: Option<i64>,
    limit: Option<u32>,
}

/// `GET /campaigns/suppressions?phone=&source=&before=&limit=`: ledger
/// entries newest first, the counts of numbers suppressed now by source,
/// and the cursor of the next page.
async fn list(State(state): State<AppState>, Query(q): Query<ListQuery>) -> AppResult<Json<Value>> {
    let phone = q.phone.as_deref().map(|p| parse_phone(p, "phone")).transpose()?;
    let source = match q.source.as_deref() {
        None => None,
        Some(s) => Some(SuppressionSource::parse(s).ok_or_else(|| {
            let known: Vec<&str> = SuppressionSource::ALL.iter().map(|s| s.as_str()).collect();
            AppError::invalid("source", format!("unknown source '{s}': one of {}", known.join(", ")))
        })?),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let filter = SuppressionFilter { phone, source, before_id: q.before, limit };
    let entries = state.store.suppression_entries(&filter).await?;
    let counts = state.store.suppression_counts().await?;
    let next = (entries.len() == limit as usize).then(|| entries.last().map(|e| e.id)).flatten();
    let by_source: serde_json::Map<String, Value> =
        counts.by_source.iter().map(|(s, n)| (s.as_str().to_string(), json!(n))).collect();
    Ok(Json(json!({
        "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
        "nextBefore": next,
        "suppressedNumbers": counts.numbers,
        "bySource": by_source,
    })))
}

/// Numbers written per transaction of a scrub-list import.
const SCRUB_BATCH: usize = 1000;
/// The invalid lines a scrub report lists (all are counted).
const SCRUB_ERRORS_LISTED: usize = 100;
/// The largest scrub list accepted (an NCPR extract of tens of millions of
/// numbers is split by the operator).
const SCRUB_MAX_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScrubQuery {
    note: Option<String>,
}

/// What a scrub import found.
#[derive(Default)]
struct ScrubReport {
    lines: u64,
    valid: u64,
    added: u64,
    invalid: u64,
    errors: Vec<Value>,
}

/// `POST /campaigns/suppressions/scrub` (`text/csv` or `text/plain`): a
/// DND/NCPR scrub list, one number per line (a CSV's first column; a header
/// line and blank lines are skipped). Read as a stream and written in
/// batches (source `scrub_list`); numbers already on the list are not
/// added twice. Each invalid line is reported with its line number.
async fn scrub(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ScrubQuery>,
    body: Body,
) -> AppResult<Json<Value>> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if !(ct.starts_with("text/csv") || ct.starts_with("text/plain")) {
        return Err(AppError::UnsupportedMediaType(format!("expected text/csv or text/plain, got '{ct}'")));
    }
    let actor = actor(&headers);
    let note = q.note.map(|n| n.chars().take(200).collect::<String>());
    let mut report = ScrubReport::default();
    let mut batch: Vec<NewSuppression> = Vec::with_capacity(SCRUB_BATCH);
    let mut pending: Vec<u8> = Vec::new();
    let mut read: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| AppError::BadRequest {
            code: "unreadable_body",
            message: format!("the upload broke off: {e}"),
            field: None,
        })?;
        read += chunk.len() as u64;
        if read > SCRUB_MAX_BYTES {
            return Err(AppError::PayloadTooLarge(SCRUB_MAX_BYTES as usize));
        }
        pending.extend_from_slice(&chunk);
        while let Some(at) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=at).collect();
            scrub_line(&state, &line, &actor, note.as_deref(), &mut report, &mut batch);
            if batch.len() >= SCRUB_BATCH {
                report.added += state.store.add_suppressions(&batch).await?;
                batch.clear();
            }
        }
    }
    if !pending.is_empty() {
        let line = std::mem::take(&mut pending);
        scrub_line(&state, &line, &actor, note.as_deref(), &mut report, &mut batch);
    }
    if !batch.is_empty() {
        report.added += state.store.add_suppressions(&batch).await?;
    }
    let now = state.clock.now();
    let event = mangwale_store::NewEvent::new("campaign.scrub_imported", now).channel("api").detail(json!({
        "lines": report.lines, "valid": report.valid, "added": report.added, "invalid": report.invalid, "actor": actor,
    }));
    state.store.record_event(event).await?;
    metrics::counter!("mangwale_campaign_opt_outs_total", "source" => "scrub_list", "outcome" => "recorded")
        .increment(report.added);
    tracing::info!(lines = report.lines, added = report.added, invalid = report.invalid, "scrub list imported");
    Ok(Json(json!({
        "success": true,
        "lines": report.lines,
        "valid": report.valid,
        "added": report.added,
        "alreadySuppressed": report.valid - report.added,
        "invalid": report.invalid,
        "errors": report.errors,
    })))
}

/// One line of a scrub list: its first CSV column, unquoted.
fn scrub_line(
    state: &AppState,
    raw: &[u8],
    actor: &str,
    note: Option<&str>,
    report: &mut ScrubReport,
    batch: &mut Vec<NewSuppression>,
) {
    report.lines += 1;
    let number = report.lines;
    let text = String::from_utf8_lossy(raw);
    let first = text.trim().split([',', ';', '\t']).next().unwrap_or("").trim().trim_matches('"').trim();
    if first.is_empty() {
        return;
    }
    // A header line: no digit in its first column.
    if number == 1 && !first.bytes().any(|b| b.is_ascii_digit()) {
        return;
    }
    match E164::parse(first) {
        Ok(phone) => {
            report.valid += 1;
            batch.push(NewSuppression {
                phone,
                source: SuppressionSource::ScrubList,
                note: note.map(str::to_string),
                actor: actor.to_string(),
                at: state.clock.now(),
            });
        }
        Err(e) => {
            report.invalid += 1;
            if report.errors.len() < SCRUB_ERRORS_LISTED {
                report.errors.push(json!({"line": number, "error": e.0}));
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendSmsBody {
    phone: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "hindi")]
    language: String,
    custom_message: Option<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

fn hindi() -> String {
    "hi".into()
}

/// A gate verdict other than Send, as the error JSON every route uses
/// (`{"error": {code, message, field, …}}`) with what the verdict adds.
fn verdict_response(verdict: Verdict) -> Response {
    let (status, body) = match verdict {
        Verdict::Send { .. } => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Verdict::Wait { until, reason } => (
            StatusCode::CONFLICT,
            json!({"error": {"code": "outside_promotional_window", "message": reason, "field": "type",
                   "nextAllowedAt": until.to_rfc3339()}}),
        ),
        Verdict::Suppressed { source, since } => (
            StatusCode::CONFLICT,
            json!({"error": {"code": "suppressed",
                   "message": format!("the number is on the suppression ledger ({}) since {}", source.as_str(), since.to_rfc3339()),
                   "field": "phone", "source": source.as_str(), "since": since.to_rfc3339()}}),
        ),
        Verdict::Refused { field, reason } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": {"code": "not_sendable", "message": reason, "field": field}}),
        ),
    };
    (status, Json(body)).into_response()
}

/// A single send's request as the gate saw it: the phone, template and
/// language it names, when it was checked, and the verdict on sending it.
struct Checked {
    phone: E164,
    key: TemplateKey,
    lang: Language,
    template: CampaignTemplate,
    now: DateTime<Utc>,
    verdict: Verdict,
}

/// Parses a single send's `phone`, `type` and `language` (a 4xx naming the
/// field), finds the template and asks the gate about `channel` now.
async fn checked(
    state: &AppState,
    phone: &str,
    kind: &str,
    language: &str,
    channel: MessageChannel,
) -> AppResult<Checked> {
    let phone = parse_phone(phone, "phone")?;
    let key = TemplateKey::parse(kind).map_err(|e| AppError::invalid("type", e.0))?;
    let lang: Language =
        language.parse().map_err(|e: mangwale_core::InvalidValue| AppError::invalid("language", e.0))?;
    let book = state.campaigns.templates(state.store.as_ref()).await?;
    let template = book.get(&key).cloned().ok_or_else(|| AppError::Unprocessable {
        code: "unknown_template",
        message: format!("no campaign template '{key}'"),
        field: Some("type".into()),
    })?;
    let now: DateTime<Utc> = state.clock.now();
    let verdict = compliance::check(state, &phone, &template, lang, channel, now).await?;
    Ok(Checked { phone, key, lang, template, now, verdict })
}

/// `text` with the template's variables filled from the defaults and the
/// request's `variables` (a 422 naming `variables` when one is missing or
/// bad).
fn render_with(
    state: &AppState,
    text: &str,
    template: &CampaignTemplate,
    variables: BTreeMap<String, String>,
) -> AppResult<String> {
    let mut values = crate::campaigns::default_variables(state);
    values.extend(variables);
    render(text, &template.variables, &values).map_err(|e| AppError::Unprocessable {
        code: "invalid_variables",
        message: e.to_string(),
        field: Some("variables".into()),
    })
}

/// The error of a single send Exotel did not take: 503 when it may take it
/// later, 502 when it refused.
fn not_sent(message: String, transient: bool) -> AppError {
    if transient {
        AppError::Unavailable { code: "exotel_unavailable", message }
    } else {
        AppError::BadGateway { code: "exotel_refused", message }
    }
}

/// `POST /campaigns/send/sms {phone, type, language = "hi", custom_message?,
/// variables?}`: one campaign SMS through the gate. Sent at most once per
/// `Idempotency-Key` (a fresh key without one). A `custom_message` must be
/// the template's DLT text with its variables filled: DLT scrubbing would
/// reject anything else.
async fn send_sms(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendSmsBody>,
) -> AppResult<Response> {
    let Checked { phone, key, lang, template, now, verdict } =
        checked(&state, &body.phone, &body.kind, &body.language, MessageChannel::Sms).await?;
    let dlt = match verdict {
        Verdict::Send { dlt: Some(dlt) } => dlt,
        Verdict::Send { dlt: None } => return Err(AppError::internal("the gate settled no DLT fields for an SMS")),
        other => return Ok(verdict_response(other)),
    };
    let text = match body.custom_message {
        Some(custom) => {
            if !matches_dlt(&dlt.text, &custom) {
                return Err(AppError::Unprocessable {
                    code: "not_the_dlt_template",
                    message: format!(
                        "custom_message must be template {key}'s DLT text with each {{#var#}} filled (1-30 characters): DLT scrubbing rejects anything else"
                    ),
                    field: Some("custom_message".into()),
                });
            }
            custom
        }
        None => render_with(&state, &dlt.text, &template, body.variables)?,
    };
    let mut sms = SendSms::new(dlt.sender.clone(), phone.clone(), text);
    sms.dlt_entity_id = dlt.entity_id.clone();
    sms.dlt_template_id = dlt.template_id.clone();
    sms.sms_type = Some(crate::campaigns::sender::sms_type(template.category));
    sms.custom_field = Some(format!("c:send:{key}"));
    let idempotency_key = idempotency_key(&headers);
    match send_sms_once(&state, SmsPurpose::Campaign, &idempotency_key, &sms).await {
        SentOnce::Sent { id, earlier } => {
            if !earlier {
                let event = mangwale_store::NewEvent::new("campaign.sms_sent", now)
                    .party(format!("customer:{}", phone.masked()))
                    .channel("sms")
                    .detail(json!({"sid": id, "type": key.as_str(), "language": lang.code(), "phone": phone.masked()}));
                state.store.record_event(event).await?;
            }
            Ok(Json(json!({"success": true, "message": "SMS sent", "sid": id, "duplicate": earlier})).into_response())
        }
        SentOnce::NotSent { message, transient, .. } => Err(not_sent(message, transient)),
        SentOnce::Unknown { message } => Err(AppError::BadGateway {
            code: "sms_outcome_unknown",
            message: format!("{message}; it is not sent again with this Idempotency-Key"),
        }),
    }
}

/// The request's `Idempotency-Key` (a fresh key without one).
fn idempotency_key(headers: &HeaderMap) -> String {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendVoiceBody {
    phone: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "hindi")]
    language: String,
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

/// `POST /campaigns/send/voice {phone, type, language = "hi", variables?}`:
/// one campaign call through the gate, into the `campaign_call` flow (the
/// template's voice text, then 1 to order, 9 to opt out). Placed at most
/// once per `Idempotency-Key` (a fresh key without one): the same key again
/// answers with the first call's sid and `duplicate: true`, or, when the
/// first call's outcome is unknown, a 502 and no second call.
async fn send_voice(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendVoiceBody>,
) -> AppResult<Response> {
    use crate::calls::PlaceCallError;
    use crate::comms::channels::{SendFailure, send_at_most_once};

    let Checked { phone, key, lang, template, now, verdict } =
        checked(&state, &body.phone, &body.kind, &body.language, MessageChannel::Voice).await?;
    match verdict {
        Verdict::Send { .. } => {}
        other => return Ok(verdict_response(other)),
    }
    let voice = template.text(lang).map(|t| t.voice.clone()).unwrap_or_default();
    let text = render_with(&state, &voice, &template, body.variables)?;
    let once_key = format!("campaign_call:{}", idempotency_key(&headers));
    let category = template.category;
    let placed = send_at_most_once(&state, &once_key, "campaign_call", async {
        match crate::campaigns::call::place_single_call(&state, &key, category, lang, &phone, text).await {
            Ok(attempt) => attempt.call_sid.ok_or_else(|| SendFailure::Ambiguous {
                message: "Exotel's answer to the call request was lost; the call's callbacks will tell".into(),
            }),
            Err(PlaceCallError::Transient(message)) => {
                Err(SendFailure::NotSent { message, transient: true, retry_after: None })
            }
            Err(PlaceCallError::Permanent(message)) => {
                Err(SendFailure::NotSent { message, transient: false, retry_after: None })
            }
            // The call may have been placed before the store failed.
            Err(e @ PlaceCallError::Store(_)) => Err(SendFailure::Ambiguous { message: e.to_string() }),
        }
    })
    .await;
    match placed {
        SentOnce::Sent { id, earlier } => {
            if !earlier {
                let event = mangwale_store::NewEvent::new("campaign.call_placed", now)
                    .party(crate::campaigns::call::single_party(&key))
                    .channel("call")
                    .call(&id)
                    .detail(json!({"type": key.as_str(), "language": lang.code(), "phone": phone.masked()}));
                state.store.record_event(event).await?;
            }
            Ok(Json(json!({"success": true, "message": "Call placed", "callSid": id, "duplicate": earlier}))
                .into_response())
        }
        SentOnce::NotSent { message, transient, .. } => Err(not_sent(message, transient)),
        SentOnce::Unknown { message } => Err(AppError::BadGateway {
            code: "call_outcome_unknown",
            message: format!("{message}; it is not placed again with this Idempotency-Key"),
        }),
    }
}
