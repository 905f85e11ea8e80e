//! The seed's `/campaigns` routes (the incumbent's paths and shapes) for
//! the campaign model: create, list, status, the state machine (start,
//! pause, resume, cancel), recipients (in the create body or a streamed
//! CSV upload), the per-recipient export and the template book. All need
//! an API key (see `auth`).
//!
//! Start and resume only move the campaign to `running` and record it;
//! the sender picks running campaigns up from the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use mangwale_core::campaign::{
    CampaignAction, CampaignChannel, CampaignId, CampaignState, CampaignTemplate, LanguageKey, MessageChannel, Pacing,
    TemplateCategory, TemplateKey, TemplateText,
};
use mangwale_core::{E164, Language};
use mangwale_store::{Campaign, CampaignFilter, NewCampaign, NewEvent, RecipientOutcome, Store, Transition};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::campaigns::intake::{self, IntakeError, IntakeReport};
use crate::campaigns::{campaign_event, campaign_json};
use crate::error::{AppError, AppResult};
use crate::extract::{ApiJson, parse_json};
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/campaigns", get(list))
        .route("/campaigns/create", post(create))
        .route("/campaigns/templates/list", get(templates))
        .route("/campaigns/templates", post(add_template))
        .route("/campaigns/{id}", get(status))
        .route("/campaigns/{id}/start", post(|s, p, b| act(s, p, b, CampaignAction::Start)))
        .route("/campaigns/{id}/pause", post(|s, p, b| act(s, p, b, CampaignAction::Pause)))
        .route("/campaigns/{id}/resume", post(|s, p, b| act(s, p, b, CampaignAction::Resume)))
        .route("/campaigns/{id}/cancel", post(|s, p, b| act(s, p, b, CampaignAction::Cancel)))
        // The upload is streamed, never held whole: no body limit.
        .route("/campaigns/{id}/recipients", post(upload).layer(DefaultBodyLimit::disable()))
        .route("/campaigns/{id}/recipients.csv", get(export))
}

fn campaign_id(raw: &str) -> AppResult<CampaignId> {
    CampaignId::parse(raw).map_err(|_| AppError::NotFound(format!("no campaign {raw}")))
}

async fn load(state: &AppState, id: &CampaignId) -> AppResult<Campaign> {
    state.store.campaign(id).await?.ok_or_else(|| AppError::NotFound(format!("no campaign {id}")))
}

fn count_intake(report: &IntakeReport) {
    metrics::counter!("mangwale_campaign_recipients_total", "outcome" => "accepted").increment(report.accepted);
    metrics::counter!("mangwale_campaign_recipients_total", "outcome" => "duplicate").increment(report.duplicates);
    metrics::counter!("mangwale_campaign_recipients_total", "outcome" => "invalid").increment(report.invalid);
}

fn intake_error(e: IntakeError) -> AppError {
    match e {
        IntakeError::NoCampaign => AppError::NotFound("campaign not found".into()),
        e @ IntakeError::Closed { .. } => AppError::Conflict { code: "campaign_not_open", message: e.to_string() },
        IntakeError::Header(message) => {
            AppError::BadRequest { code: "invalid_csv", message, field: Some("phone".into()) }
        }
        IntakeError::Body(message) => AppError::BadRequest { code: "unreadable_body", message, field: None },
        IntakeError::Store(e) => e.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PacingBody {
    #[serde(alias = "sms_per_second")]
    sms_per_second: Option<f64>,
    #[serde(alias = "calls_per_second")]
    calls_per_second: Option<f64>,
    #[serde(alias = "max_concurrent_calls")]
    max_concurrent_calls: Option<u32>,
}

/// The incumbent's create body (snake_case), camelCase accepted too.
#[derive(Debug, Deserialize)]
struct CreateBody {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    channel: Option<String>,
    #[serde(default, alias = "phoneNumbers")]
    phone_numbers: Vec<String>,
    language: Option<String>,
    #[serde(alias = "targetAudience")]
    target_audience: Option<Value>,
    schedule: Option<Value>,
    #[serde(alias = "callerId")]
    caller_id: Option<String>,
    pacing: Option<PacingBody>,
}

/// `schedule.start_at` (or `startAt`): RFC 3339, or Unix milliseconds.
fn start_at(schedule: Option<&Value>) -> AppResult<Option<DateTime<Utc>>> {
    let Some(raw) = schedule.and_then(|s| s.get("start_at").or_else(|| s.get("startAt"))) else {
        return Ok(None);
    };
    let bad = || AppError::invalid("schedule.start_at", "schedule.start_at: an RFC 3339 time or Unix milliseconds");
    match raw {
        Value::Null => Ok(None),
        Value::String(s) => {
            DateTime::parse_from_rfc3339(s.trim()).map(|t| Some(t.with_timezone(&Utc))).map_err(|_| bad())
        }
        Value::Number(n) => n.as_i64().and_then(DateTime::from_timestamp_millis).map(Some).ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// `POST /campaigns/create`: 201 with the campaign; `phone_numbers` are
/// added at once (invalid ones listed by index, duplicates counted).
async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBody>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let name = body.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let name = name.ok_or_else(|| AppError::invalid("name", "name is required"))?;
    if name.chars().count() > 200 {
        return Err(AppError::invalid("name", "name: at most 200 characters"));
    }
    let kind = body.kind.as_deref().ok_or_else(|| AppError::invalid("type", "type is required"))?;
    let key = TemplateKey::parse(kind.trim()).map_err(|e| AppError::invalid("type", format!("type: {e}")))?;
    let book = state.campaigns.templates(state.store.as_ref()).await?;
    let template = book.get(&key).ok_or_else(|| {
        let known: Vec<&str> = book.iter().map(|t| t.key.as_str()).collect();
        AppError::invalid("type", format!("type: no template '{key}'; known: {}", known.join(", ")))
    })?;
    let channel: CampaignChannel = match body.channel.as_deref() {
        None => CampaignChannel::Sms,
        Some(c) => c.parse().map_err(|e| AppError::invalid("channel", format!("channel: {e}")))?,
    };
    let language: Language = match body.language.as_deref() {
        None => Language::Hi,
        Some(l) => l.parse().map_err(|e| AppError::invalid("language", format!("language: {e}")))?,
    };
    if template.text(language).is_none() {
        return Err(AppError::invalid(
            "language",
            format!("language: template '{key}' has no {} text", language.code()),
        ));
    }
    let defaults = state.campaigns.pacing;
    let pacing = match &body.pacing {
        None => defaults,
        Some(p) => Pacing {
            sms_per_second: p.sms_per_second.unwrap_or(defaults.sms_per_second),
            calls_per_second: p.calls_per_second.unwrap_or(defaults.calls_per_second),
            max_concurrent_calls: p.max_concurrent_calls.unwrap_or(defaults.max_concurrent_calls),
        },
    };
    pacing.check().map_err(|(field, e)| AppError::invalid(format!("pacing.{field}"), e.0))?;
    let caller_id = match body.caller_id.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => state.config.exotel_caller_id.clone(),
        Some(c) => Some(E164::parse(c).map_err(|e| AppError::invalid("caller_id", format!("caller_id: {e}")))?),
    };
    let now = state.clock.now();
    let new = NewCampaign {
        id: CampaignId::new(now.timestamp_millis(), rand::rng().random()),
        name: name.to_string(),
        template: key,
        channel,
        language,
        pacing,
        caller_id,
        target_audience: body.target_audience.as_ref().map(Value::to_string),
        start_at: start_at(body.schedule.as_ref())?,
        schedule: body.schedule.as_ref().map(Value::to_string),
        created_at: now,
    };
    let campaign = state.store.create_campaign(&new).await?;
    let report = intake::from_numbers(state.store.clone(), &campaign.id, &body.phone_numbers, now)
        .await
        .map_err(intake_error)?;
    count_intake(&report);
    metrics::counter!("mangwale_campaigns_created_total").increment(1);
    let campaign = load(&state, &campaign.id).await?;
    let extra = json!({"recipients": report.accepted, "duplicates": report.duplicates, "invalid": report.invalid});
    state.store.record_event(campaign_event("campaign.created", &campaign, now, extra)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "success": true,
            "campaignId": campaign.id.as_str(),
            "campaign": campaign_json(&campaign, None),
            "recipients": report,
        })),
    ))
}

/// `GET /campaigns/{id}`: the campaign with its counts by channel and state.
async fn status(State(state): State<AppState>, Path(id): Path<String>) -> AppResult<Json<Value>> {
    let id = campaign_id(&id)?;
    let campaign = load(&state, &id).await?;
    let counts = state.store.message_counts(&id).await?;
    let book = state.campaigns.templates(state.store.as_ref()).await?;
    let category = book.get(&campaign.template).map(|t| t.category);
    let mut body = campaign_json(&campaign, Some(&counts));
    let sending = crate::campaigns::sender::status_json(&state, &campaign, &counts, category).await?;
    if let (Value::Object(body), Value::Object(sending)) = (&mut body, sending) {
        body.extend(sending);
    }
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    state: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    limit: Option<String>,
    before: Option<String>,
}

/// `GET /campaigns?status=&type=&limit=&before=`: newest first; `next` is
/// the `before` of the next page.
async fn list(State(state): State<AppState>, Query(q): Query<ListQuery>) -> AppResult<Json<Value>> {
    let filter = CampaignFilter {
        state: match q.status.as_deref().or(q.state.as_deref()).map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(CampaignState::parse(s).ok_or_else(|| {
                AppError::invalid("status", "status: created, running, paused, cancelled or completed")
            })?),
        },
        template: match q.kind.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(t) => Some(TemplateKey::parse(t).map_err(|e| AppError::invalid("type", format!("type: {e}")))?),
        },
    };
    let limit = match q.limit.as_deref() {
        None => 50,
        Some(l) => l
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=500).contains(l))
            .ok_or_else(|| AppError::invalid("limit", "limit: 1 to 500"))?,
    };
    let before = match q.before.as_deref() {
        None => None,
        Some(b) => Some(CampaignId::parse(b.trim()).map_err(|e| AppError::invalid("before", e.0))?),
    };
    let campaigns = state.store.list_campaigns(&filter, before.as_ref(), limit).await?;
    let total = state.store.count_campaigns(&filter).await?;
    let next = (campaigns.len() == limit as usize).then(|| campaigns.last().map(|c| c.id.to_string())).flatten();
    Ok(Json(json!({
        "campaigns": campaigns.iter().map(|c| campaign_json(c, None)).collect::<Vec<_>>(),
        "total": total,
        "next": next,
    })))
}

#[derive(Debug, Default, Deserialize)]
struct ReasonBody {
    reason: Option<String>,
}

/// Refuses (422 `not_sendable`, naming the variable) to start or resume a
/// campaign whose SMS could not go out as configured: in live mode every
/// language it sends in (the campaign's and its recipients' own) needs the
/// template's DLT template id, the entity id and an approved header.
async fn sms_registered(state: &AppState, id: &CampaignId) -> AppResult<()> {
    let Some(campaign) = state.store.campaign(id).await? else {
        return Err(AppError::NotFound(format!("no campaign {id}")));
    };
    if !campaign.channel.sends_sms() {
        return Ok(());
    }
    let book = state.campaigns.templates(state.store.as_ref()).await?;
    let Some(template) = book.get(&campaign.template) else {
        return Err(AppError::Unprocessable {
            code: "not_sendable",
            message: format!("template {} is no longer defined", campaign.template),
            field: Some("type".into()),
        });
    };
    let mut languages = vec![campaign.language];
    languages.extend(state.store.recipient_languages(id).await?);
    languages.sort_by_key(|l| l.code());
    languages.dedup();
    for lang in languages {
        if let Some((field, reason)) = crate::campaigns::compliance::sms_not_sendable(state, template, lang) {
            return Err(AppError::Unprocessable {
                code: "not_sendable",
                message: format!("the campaign's SMS in {} cannot be sent: {reason}", lang.code()),
                field: Some(field),
            });
        }
    }
    Ok(())
}

/// `POST /campaigns/{id}/start|pause|resume|cancel`, with an optional
/// JSON body `{"reason"}`. A move the state machine does not allow is a
/// 409 naming the campaign's state.
async fn act(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
    action: CampaignAction,
) -> AppResult<Json<Value>> {
    let id = campaign_id(&id)?;
    let reason: ReasonBody =
        if body.iter().all(u8::is_ascii_whitespace) { ReasonBody::default() } else { parse_json(&body)? };
    let reason = reason.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(|r| {
        let r: String = r.chars().take(500).collect();
        format!("operator: {r}")
    });
    if matches!(action, CampaignAction::Start | CampaignAction::Resume) {
        sms_registered(&state, &id).await?;
    }
    let now = state.clock.now();
    let to = action.to_state();
    let campaign = match state.store.transition_campaign(&id, action.from_states(), to, reason.as_deref(), now).await? {
        Transition::Done(c) => *c,
        Transition::NoCampaign => return Err(AppError::NotFound(format!("no campaign {id}"))),
        Transition::Refused(current) => {
            let allowed: Vec<&str> = action.from_states().iter().map(|s| s.as_str()).collect();
            return Err(AppError::Conflict {
                code: "invalid_state",
                message: format!(
                    "the campaign is {}: {} needs it {}",
                    current.as_str(),
                    action.as_str(),
                    allowed.join(" or ")
                ),
            });
        }
    };
    metrics::counter!("mangwale_campaign_transitions_total", "action" => action.as_str()).increment(1);
    let kind = match action {
        CampaignAction::Start => "campaign.started",
        CampaignAction::Pause => "campaign.paused",
        CampaignAction::Resume => "campaign.resumed",
        CampaignAction::Cancel => "campaign.cancelled",
    };
    state.store.record_event(campaign_event(kind, &campaign, now, json!({"reason": campaign.state_reason}))).await?;
    let message = match action {
        CampaignAction::Start => "Campaign started",
        CampaignAction::Pause => "Campaign paused",
        CampaignAction::Resume => "Campaign resumed",
        CampaignAction::Cancel => "Campaign cancelled",
    };
    Ok(Json(json!({
        "success": true,
        "message": message,
        "totalRecipients": campaign.recipients,
        "campaign": campaign_json(&campaign, None),
    })))
}

/// `POST /campaigns/{id}/recipients` with `Content-Type: text/csv`: the
/// body is parsed while it arrives and written in batches. Rows that are
/// not valid are listed with their line; the good ones are added.
async fn upload(State(state): State<AppState>, Path(id): Path<String>, request: Request) -> AppResult<Json<Value>> {
    let id = campaign_id(&id)?;
    let ct = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let ct = ct.to_ascii_lowercase();
    if !(ct.starts_with("text/csv") || ct.starts_with("application/csv") || ct.starts_with("text/plain")) {
        return Err(AppError::UnsupportedMediaType(format!("expected text/csv, got '{ct}'")));
    }
    let campaign = load(&state, &id).await?;
    if !campaign.state.accepts_recipients() {
        let e = IntakeError::Closed { state: campaign.state, report: IntakeReport::default() };
        return Err(intake_error(e));
    }
    let now = state.clock.now();
    let started = std::time::Instant::now();
    let report = intake::from_csv(state.store.clone(), &id, request.into_body(), now).await.map_err(intake_error)?;
    count_intake(&report);
    let campaign = load(&state, &id).await?;
    tracing::info!(
        campaign = %id, rows = report.rows, accepted = report.accepted, duplicates = report.duplicates,
        invalid = report.invalid, ms = started.elapsed().as_millis() as u64, "recipients uploaded"
    );
    let extra = json!({"accepted": report.accepted, "duplicates": report.duplicates, "invalid": report.invalid});
    state.store.record_event(campaign_event("campaign.recipients_added", &campaign, now, extra)).await?;
    Ok(Json(json!({
        "success": true,
        "campaignId": id.as_str(),
        "totalRecipients": campaign.recipients,
        "rows": report.rows,
        "accepted": report.accepted,
        "duplicates": report.duplicates,
        "invalid": report.invalid,
        "errors": report.errors,
    })))
}

/// Rows per store page of the export.
const EXPORT_PAGE: u32 = 1_000;

fn csv_field(out: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn export_header(channels: &[MessageChannel]) -> String {
    let mut line = String::from("seq,phone,name,language");
    for ch in channels {
        for col in ["state", "attempts", "provider_sid", "last_error", "updated_at"] {
            line.push_str(&format!(",{}_{col}", ch.as_str()));
        }
    }
    line.push('\n');
    line
}

fn export_rows(page: &[RecipientOutcome], channels: &[MessageChannel]) -> String {
    let mut out = String::with_capacity(page.len() * 96);
    for r in page {
        out.push_str(&r.seq.to_string());
        out.push(',');
        out.push_str(r.phone.as_str());
        out.push(',');
        csv_field(&mut out, r.name.as_deref().unwrap_or(""));
        out.push(',');
        out.push_str(r.language.map(Language::code).unwrap_or(""));
        for ch in channels {
            match r.messages.iter().find(|m| m.channel == *ch) {
                Some(m) => {
                    out.push(',');
                    out.push_str(m.state.as_str());
                    out.push(',');
                    out.push_str(&m.attempts.to_string());
                    out.push(',');
                    csv_field(&mut out, m.provider_sid.as_deref().unwrap_or(""));
                    out.push(',');
                    csv_field(&mut out, m.last_error.as_deref().unwrap_or(""));
                    out.push(',');
                    out.push_str(&m.updated_at.to_rfc3339());
                }
                None => out.push_str(",,,,,"),
            }
        }
        out.push('\n');
    }
    out
}

/// `GET /campaigns/{id}/recipients.csv`: every recipient and each of their
/// messages' outcome, streamed page by page.
async fn export(State(state): State<AppState>, Path(id): Path<String>) -> AppResult<Response> {
    let id = campaign_id(&id)?;
    let campaign = load(&state, &id).await?;
    let channels = Arc::new(campaign.message_channels());
    let header = export_header(&channels);
    let store: Arc<dyn Store> = state.store.clone();
    let pages = futures::stream::unfold(Some(0i64), move |after| {
        let (store, id, channels) = (store.clone(), id.clone(), channels.clone());
        async move {
            let after = after?;
            match store.recipients_page(&id, after, EXPORT_PAGE).await {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    let next = page.last().map(|r| r.seq);
                    Some((Ok::<_, std::io::Error>(Bytes::from(export_rows(&page, &channels))), next))
                }
                Err(e) => {
                    tracing::error!(error = %e, campaign = %id, "the export stopped: the store failed");
                    Some((Err(std::io::Error::other(e.to_string())), None))
                }
            }
        }
    });
    let first = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(header))]);
    let body = futures::StreamExt::chain(first, pages);
    let filename = format!("attachment; filename=\"{}-recipients.csv\"", campaign.id);
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, filename)],
        Body::from_stream(body),
    )
        .into_response())
}

/// `GET /campaigns/templates/list`: the built-in and custom templates,
/// each with its category, variables and texts per language.
async fn templates(State(state): State<AppState>) -> AppResult<Json<Value>> {
    let book = state.campaigns.templates(state.store.as_ref()).await?;
    let templates: Vec<Value> = book.iter().map(template_json).collect();
    Ok(Json(json!({"total": templates.len(), "templates": templates})))
}

fn template_json(t: &CampaignTemplate) -> Value {
    let texts: BTreeMap<&str, Value> = t
        .texts
        .iter()
        .map(|(lang, text)| {
            (
                Language::from(*lang).code(),
                json!({"sms": text.sms, "voice": text.voice, "dltTemplateId": text.dlt_template_id}),
            )
        })
        .collect();
    json!({
        "type": t.key.as_str(),
        "category": t.category.as_str(),
        "description": t.description,
        "channels": ["sms", "voice"],
        "languages": t.languages().iter().map(|l| l.code()).collect::<Vec<_>>(),
        "variables": t.variables,
        "builtIn": t.built_in,
        "texts": texts,
    })
}

#[derive(Debug, Deserialize)]
struct TextBody {
    sms: String,
    voice: String,
    #[serde(default, alias = "dltTemplateId")]
    dlt_template_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TemplateBody {
    #[serde(alias = "type")]
    key: String,
    category: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    variables: Vec<String>,
    texts: BTreeMap<String, TextBody>,
}

/// `POST /campaigns/templates`: adds or replaces a custom template. The
/// configured templates cannot be replaced here.
async fn add_template(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TemplateBody>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let key = TemplateKey::parse(body.key.trim()).map_err(|e| AppError::invalid("key", format!("key: {e}")))?;
    if state.campaigns.book.get(&key).is_some() {
        return Err(AppError::invalid("key", format!("key: '{key}' is a configured template; choose another key")));
    }
    let category: TemplateCategory =
        body.category.parse().map_err(|e| AppError::invalid("category", format!("category: {e}")))?;
    let mut texts = BTreeMap::new();
    for (lang, text) in body.texts {
        let language: Language =
            lang.parse().map_err(|e| AppError::invalid(format!("texts.{lang}"), format!("texts.{lang}: {e}")))?;
        let dlt_template_id = text.dlt_template_id.map(|d| d.trim().to_string()).filter(|d| !d.is_empty());
        texts.insert(LanguageKey::from(language), TemplateText { sms: text.sms, voice: text.voice, dlt_template_id });
    }
    let template = CampaignTemplate {
        key,
        category,
        description: body.description.trim().to_string(),
        texts,
        variables: body.variables.iter().map(|v| v.trim().to_string()).collect(),
        built_in: false,
    };
    template.check().map_err(|e| AppError::invalid("texts", e.0))?;
    let now = state.clock.now();
    state.store.put_custom_template(&template, now).await?;
    let detail = json!({"type": template.key.as_str(), "category": template.category.as_str()});
    state.store.record_event(NewEvent::new("campaign.template_saved", now).channel("campaign").detail(detail)).await?;
    Ok((StatusCode::CREATED, Json(json!({"success": true, "template": template_json(&template)}))))
}
