//! The orchestrator's API: the seed's `/comms/*` routes, the single IVR
//! calls of `/exotel/ivr/notify/*`, and `/exotel/ivr/analytics`. All need
//! an API key (see `auth`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use mangwale_core::context::{non_blank, parse_minutes, parse_minutes_text};
use mangwale_core::ladder::{LadderKind, Money, PaymentMode, StopAction};
use mangwale_core::{E164, Language, OrderId};
use mangwale_store::{Ladder, LadderStart, LadderStop};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::calls::{CallTarget, PlaceCall, place_call};
use crate::comms::{self, LadderRequest};
use crate::error::{AppError, AppResult};
use crate::exotel::CallerPurpose;
use crate::extract::{ApiJson, parse_json};
use crate::idempotency::idempotent;
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/comms/notify/vendor/order", post(notify::<VendorOrderBody>))
        .route("/comms/notify/vendor/reminder", post(notify::<VendorReminderBody>))
        .route("/comms/notify/rider/assign", post(notify::<RiderAssignBody>))
        .route("/comms/notify/rider/address-update", post(notify::<RiderAddressBody>))
        .route("/comms/notify/customer/status", post(notify::<CustomerStatusBody>))
        .route("/comms/notify/customer/delay", post(notify::<CustomerDelayBody>))
        .route("/comms/escalations", post(generic_start))
        .route("/comms/escalations/{id}", get(escalation))
        .route("/comms/stop", post(stop))
        .route("/comms/bridge", post(idempotent(bridge)))
        .route("/comms/timeline/{order_id}", get(timeline))
        .route("/exotel/ivr/notify/vendor/order", post(idempotent(ivr_only::<VendorOrderBody>)))
        .route("/exotel/ivr/notify/vendor/reminder", post(idempotent(ivr_only::<VendorReminderBody>)))
        .route("/exotel/ivr/notify/rider/assign", post(idempotent(ivr_only::<RiderAssignBody>)))
        .route("/comms/events", get(events))
        .route("/comms/events/stream", get(events_stream))
        .route("/exotel/ivr/analytics", get(analytics))
}

/// A field that is a string or a number (`"V-42"`, `42`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Id {
    Text(String),
    Number(u64),
}

impl Id {
    pub fn text(&self) -> String {
        match self {
            Id::Text(s) => s.trim().to_string(),
            Id::Number(n) => n.to_string(),
        }
    }
}

fn order_id(raw: &Option<Id>) -> AppResult<OrderId> {
    let raw = raw.as_ref().ok_or_else(|| AppError::invalid("order_id", "order_id is required"))?;
    OrderId::parse(&raw.text()).map_err(|e| AppError::invalid("order_id", format!("order_id: {e}")))
}

fn phone(field: &str, raw: &Option<String>) -> AppResult<Option<E164>> {
    match raw.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => Ok(None),
        Some(p) => E164::parse(p).map(Some).map_err(|e| AppError::invalid(field, format!("{field}: {e}"))),
    }
}

fn language(raw: &Option<String>) -> AppResult<Language> {
    match raw.as_deref() {
        None => Ok(Language::Hi),
        Some(l) => {
            l.parse().map_err(|e: mangwale_core::InvalidValue| AppError::invalid("language", format!("language: {e}")))
        }
    }
}

/// `items` as text: a string as given, or a list of `{name, quantity}`.
fn items_text(items: &Option<Value>) -> AppResult<Option<String>> {
    match items {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.trim().is_empty())),
        Some(Value::Array(list)) => {
            let mut parts = Vec::new();
            for (i, item) in list.iter().enumerate() {
                match item {
                    Value::String(s) => parts.push(s.clone()),
                    Value::Object(o) => {
                        let name = o.get("name").and_then(Value::as_str).ok_or_else(|| {
                            AppError::invalid(format!("items[{i}].name"), format!("items[{i}].name is required"))
                        })?;
                        let quantity = o.get("quantity").and_then(Value::as_u64).unwrap_or(1);
                        parts.push(format!("{name} x{quantity}"));
                    }
                    _ => {
                        return Err(AppError::invalid(
                            format!("items[{i}]"),
                            format!("items[{i}]: a name or {{name, quantity}}"),
                        ));
                    }
                }
            }
            Ok(Some(parts.join(", ")).filter(|s| !s.is_empty()))
        }
        Some(_) => Err(AppError::invalid("items", "items: a string or a list")),
    }
}

/// A number given as a number or numeric text: `None` when absent or
/// null, a 400 naming `field` when it is neither.
fn numeric(field: &str, raw: &Option<Value>) -> AppResult<Option<NumberOrText>> {
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(|f| Some(NumberOrText::Number(f)))
            .ok_or_else(|| AppError::invalid(field, format!("{field}: not a number: {n}"))),
        Some(Value::String(s)) => Ok(Some(NumberOrText::Text(s.clone()))),
        Some(other) => Err(AppError::invalid(field, format!("{field}: not a number: {other}"))),
    }
}

enum NumberOrText {
    Number(f64),
    Text(String),
}

/// An amount in rupees (`325`, `"325.50"`), at least zero.
fn amount(raw: &Option<Value>) -> AppResult<Option<Money>> {
    let parsed = match numeric("amount", raw)? {
        None => return Ok(None),
        Some(NumberOrText::Number(f)) => Money::from_rupees(f),
        Some(NumberOrText::Text(t)) => Money::parse_rupees(&t),
    };
    parsed.map(Some).map_err(|e| AppError::invalid("amount", format!("amount: {e}")))
}

/// Whole minutes (`5`, `"20"`), at least zero; fractions round.
fn minutes(field: &str, raw: &Option<Value>) -> AppResult<Option<u32>> {
    let parsed = match numeric(field, raw)? {
        None => return Ok(None),
        Some(NumberOrText::Number(f)) => parse_minutes(f),
        Some(NumberOrText::Text(t)) => parse_minutes_text(&t),
    };
    parsed.map(Some).map_err(|e| AppError::invalid(field, format!("{field}: {e}")))
}

fn text(raw: &Option<String>) -> Option<String> {
    raw.as_deref().and_then(non_blank)
}

/// The party of a notify body: its id in Jupiter, its phone and name, each
/// under the role's wire names (`vendor_id`, `vendor_phone`, ...).
struct Party<'a> {
    id: &'a Option<Id>,
    phone: &'a Option<String>,
    name: &'a Option<String>,
}

/// The start of every notify body's request: the order, the language and
/// the party.
fn base_request(
    kind: LadderKind,
    order: &Option<Id>,
    lang: &Option<String>,
    party: Party<'_>,
) -> AppResult<LadderRequest> {
    let mut request = LadderRequest::new(kind, order_id(order)?, "api");
    request.language = language(lang)?;
    request.party_id = party.id.as_ref().map(Id::text).filter(|id| !id.is_empty());
    request.phone = phone(phone_field(kind), party.phone)?;
    request.context.name = text(party.name);
    Ok(request)
}

/// The body of one notify route: its own fields under the seed's names,
/// and how they make a ladder request (or a 400 naming the bad field).
pub trait NotifyBody: DeserializeOwned {
    const KIND: LadderKind;
    /// The answer's message when the ladder starts.
    const STARTED: &'static str;
    fn into_request(self) -> AppResult<LadderRequest>;
}

/// `POST /comms/notify/vendor/order` (and its single IVR call).
#[derive(Debug, Deserialize)]
pub struct VendorOrderBody {
    order_id: Option<Id>,
    vendor_id: Option<Id>,
    vendor_phone: Option<String>,
    vendor_name: Option<String>,
    amount: Option<Value>,
    items: Option<Value>,
    payment_mode: Option<String>,
    city: Option<String>,
    language: Option<String>,
}

impl NotifyBody for VendorOrderBody {
    const KIND: LadderKind = LadderKind::VendorNewOrder;
    const STARTED: &'static str = "Vendor notification escalation started";

    fn into_request(self) -> AppResult<LadderRequest> {
        let party = Party { id: &self.vendor_id, phone: &self.vendor_phone, name: &self.vendor_name };
        let mut request = base_request(Self::KIND, &self.order_id, &self.language, party)?;
        let c = &mut request.context;
        c.amount = amount(&self.amount)?;
        c.items = items_text(&self.items)?;
        c.payment_mode = self.payment_mode.as_deref().and_then(PaymentMode::parse);
        c.city = text(&self.city);
        Ok(request)
    }
}

/// `POST /comms/notify/vendor/reminder` (and its single IVR call).
#[derive(Debug, Deserialize)]
pub struct VendorReminderBody {
    order_id: Option<Id>,
    vendor_id: Option<Id>,
    vendor_phone: Option<String>,
    vendor_name: Option<String>,
    minutes_remaining: Option<Value>,
    city: Option<String>,
    language: Option<String>,
}

impl NotifyBody for VendorReminderBody {
    const KIND: LadderKind = LadderKind::VendorReminder;
    const STARTED: &'static str = "Vendor reminder escalation started";

    fn into_request(self) -> AppResult<LadderRequest> {
        let party = Party { id: &self.vendor_id, phone: &self.vendor_phone, name: &self.vendor_name };
        let mut request = base_request(Self::KIND, &self.order_id, &self.language, party)?;
        request.context.minutes_remaining = minutes("minutes_remaining", &self.minutes_remaining)?;
        request.context.city = text(&self.city);
        Ok(request)
    }
}

/// `POST /comms/notify/rider/assign` (and its single IVR call).
#[derive(Debug, Deserialize)]
pub struct RiderAssignBody {
    order_id: Option<Id>,
    rider_id: Option<Id>,
    rider_phone: Option<String>,
    rider_name: Option<String>,
    pickup_name: Option<String>,
    pickup_address: Option<String>,
    drop_address: Option<String>,
    amount: Option<Value>,
    payment_mode: Option<String>,
    city: Option<String>,
    language: Option<String>,
}

impl NotifyBody for RiderAssignBody {
    const KIND: LadderKind = LadderKind::RiderAssign;
    const STARTED: &'static str = "Rider assignment escalation started";

    fn into_request(self) -> AppResult<LadderRequest> {
        let party = Party { id: &self.rider_id, phone: &self.rider_phone, name: &self.rider_name };
        let mut request = base_request(Self::KIND, &self.order_id, &self.language, party)?;
        let c = &mut request.context;
        c.pickup_name = text(&self.pickup_name);
        c.pickup_address = text(&self.pickup_address);
        c.drop_address = text(&self.drop_address);
        c.amount = amount(&self.amount)?;
        c.payment_mode = self.payment_mode.as_deref().and_then(PaymentMode::parse);
        c.city = text(&self.city);
        Ok(request)
    }
}

/// `POST /comms/notify/rider/address-update`.
#[derive(Debug, Deserialize)]
pub struct RiderAddressBody {
    order_id: Option<Id>,
    rider_id: Option<Id>,
    rider_phone: Option<String>,
    rider_name: Option<String>,
    new_address: Option<String>,
    map_link: Option<String>,
    city: Option<String>,
    language: Option<String>,
}

impl NotifyBody for RiderAddressBody {
    const KIND: LadderKind = LadderKind::RiderAddressUpdate;
    const STARTED: &'static str = "Address update escalation started";

    fn into_request(self) -> AppResult<LadderRequest> {
        let party = Party { id: &self.rider_id, phone: &self.rider_phone, name: &self.rider_name };
        let mut request = base_request(Self::KIND, &self.order_id, &self.language, party)?;
        request.context.new_address = text(&self.new_address);
        request.context.map_link = text(&self.map_link);
        request.context.city = text(&self.city);
        Ok(request)
    }
}

/// `POST /comms/notify/customer/status`.
#[derive(Debug, Deserialize)]
pub struct CustomerStatusBody {
    order_id: Option<Id>,
    customer_id: Option<Id>,
    customer_phone: Option<String>,
    customer_name: Option<String>,
    rider_name: Option<String>,
    status: Option<String>,
    eta_minutes: Option<Value>,
    city: Option<String>,
    language: Option<String>,
}

impl NotifyBody for CustomerStatusBody {
    const KIND: LadderKind = LadderKind::CustomerStatus;
    const STARTED: &'static str = "Customer status notification started";

    fn into_request(self) -> AppResult<LadderRequest> {
        let party = Party { id: &self.customer_id, phone: &self.customer_phone, name: &self.customer_name };
        let mut request = base_request(Self::KIND, &self.order_id, &self.language, party)?;
        let c = &mut request.context;
        c.rider_name = text(&self.rider_name);
        c.status = text(&self.status);
        c.eta_minutes = minutes("eta_minutes", &self.eta_minutes)?;
        c.city = text(&self.city);
        Ok(request)
    }
}

/// `POST /comms/notify/customer/delay`.
#[derive(Debug, Deserialize)]
pub struct CustomerDelayBody {
    order_id: Option<Id>,
    customer_id: Option<Id>,
    customer_phone: Option<String>,
    customer_name: Option<String>,
    rider_name: Option<String>,
    delay_minutes: Option<Value>,
    reason: Option<String>,
    city: Option<String>,
    language: Option<String>,
}

impl NotifyBody for CustomerDelayBody {
    const KIND: LadderKind = LadderKind::CustomerDelay;
    const STARTED: &'static str = "Customer delay notification started";

    fn into_request(self) -> AppResult<LadderRequest> {
        let party = Party { id: &self.customer_id, phone: &self.customer_phone, name: &self.customer_name };
        let mut request = base_request(Self::KIND, &self.order_id, &self.language, party)?;
        let c = &mut request.context;
        c.rider_name = text(&self.rider_name);
        c.delay_minutes = minutes("delay_minutes", &self.delay_minutes)?;
        c.reason = text(&self.reason);
        c.city = text(&self.city);
        Ok(request)
    }
}

/// The field that names the party's phone, for errors.
fn phone_field(kind: LadderKind) -> &'static str {
    match kind {
        LadderKind::VendorNewOrder | LadderKind::VendorReminder => "vendor_phone",
        LadderKind::RiderAssign | LadderKind::RiderAddressUpdate => "rider_phone",
        LadderKind::CustomerStatus | LadderKind::CustomerDelay => "customer_phone",
    }
}

/// Fills the request from Jupiter where needed; a 404 if Jupiter does not
/// know the order, a 503 if it cannot be asked, a 400 if there is still
/// no phone.
async fn complete(state: &AppState, request: &mut LadderRequest) -> AppResult<()> {
    if comms::needs_jupiter(request) {
        match comms::fill_from_jupiter(state, request).await {
            Ok(true) => {}
            Ok(false) if request.phone.is_some() => {}
            Ok(false) => return Err(AppError::NotFound(format!("order {} not found in Jupiter", request.order_id))),
            Err(e) if request.phone.is_some() => {
                tracing::warn!(order_id = %request.order_id, error = %e.message(), "Jupiter lookup failed; starting with what was given");
            }
            Err(e) if e.is_transient() => {
                return Err(AppError::Unavailable { code: "jupiter_unavailable", message: e.message() });
            }
            Err(e) => return Err(AppError::BadGateway { code: "jupiter_refused", message: e.message() }),
        }
    }
    if request.phone.is_none() {
        let field = phone_field(request.kind);
        return Err(AppError::invalid(
            field,
            format!("{field} not found: give it, or make sure Jupiter's order has it"),
        ));
    }
    Ok(())
}

fn ladder_json(ladder: &Ladder) -> Value {
    serde_json::to_value(ladder).unwrap_or(Value::Null)
}

fn started_answer(outcome: LadderStart, message: &str) -> (StatusCode, Json<Value>) {
    let (ladder, duplicate) = match &outcome {
        LadderStart::Started(l) => (l, false),
        LadderStart::Existing(l) => (l, true),
    };
    // 200 either way, as the incumbent answered; `duplicate` tells them apart.
    let status = StatusCode::OK;
    (
        status,
        Json(json!({
            "success": true,
            "escalationId": ladder.escalation_id,
            "message": if duplicate { "already running; this is the running escalation" } else { message },
            "duplicate": duplicate,
            "state": ladder.state.name(),
            "name": ladder.context.name,
            "amount": ladder.context.amount,
            "steps": ladder.steps.iter().map(|s| json!({"channel": s.channel, "dueAt": s.due_at, "state": s.state.name()})).collect::<Vec<_>>(),
        })),
    )
}

async fn start<B: NotifyBody>(state: &AppState, body: B, message: &str) -> AppResult<(StatusCode, Json<Value>)> {
    let mut request = body.into_request()?;
    complete(state, &mut request).await?;
    let outcome = comms::start(state, request).await?;
    Ok(started_answer(outcome, message))
}

async fn notify<B: NotifyBody>(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<B>,
) -> AppResult<(StatusCode, Json<Value>)> {
    start(&state, body, B::STARTED).await
}

/// `POST /comms/escalations`: any ladder type by name (`type`), with that
/// type's notify route's fields.
async fn generic_start(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<serde_json::Map<String, Value>>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let raw = match body.get("type") {
        None | Some(Value::Null) => return Err(AppError::invalid("type", "type is required")),
        Some(Value::String(raw)) => raw.as_str(),
        Some(_) => return Err(AppError::invalid("type", "type: a ladder type name")),
    };
    let kind: LadderKind =
        raw.parse().map_err(|e: mangwale_core::InvalidValue| AppError::invalid("type", format!("type: {e}")))?;
    // Read again as the type's own body, so that errors name its fields.
    let bytes = serde_json::to_vec(&body).map_err(AppError::internal)?;
    const MESSAGE: &str = "Escalation started";
    match kind {
        LadderKind::VendorNewOrder => start(&state, parse_json::<VendorOrderBody>(&bytes)?, MESSAGE).await,
        LadderKind::VendorReminder => start(&state, parse_json::<VendorReminderBody>(&bytes)?, MESSAGE).await,
        LadderKind::RiderAssign => start(&state, parse_json::<RiderAssignBody>(&bytes)?, MESSAGE).await,
        LadderKind::RiderAddressUpdate => start(&state, parse_json::<RiderAddressBody>(&bytes)?, MESSAGE).await,
        LadderKind::CustomerStatus => start(&state, parse_json::<CustomerStatusBody>(&bytes)?, MESSAGE).await,
        LadderKind::CustomerDelay => start(&state, parse_json::<CustomerDelayBody>(&bytes)?, MESSAGE).await,
    }
}

async fn escalation(State(state): State<AppState>, Path(id): Path<String>) -> AppResult<Json<Value>> {
    let ladder = state.store.ladder(&id).await?.ok_or_else(|| AppError::NotFound(format!("no escalation {id}")))?;
    Ok(Json(ladder_json(&ladder)))
}

#[derive(Debug, Deserialize)]
struct StopBody {
    escalation_id: Option<String>,
    action: Option<String>,
    actor: Option<String>,
}

async fn stop(State(state): State<AppState>, ApiJson(body): ApiJson<StopBody>) -> AppResult<Json<Value>> {
    let id = body
        .escalation_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AppError::invalid("escalation_id", "escalation_id is required"))?;
    let action = match body.action.as_deref() {
        None => StopAction::Cancel,
        Some(a) => {
            a.parse().map_err(|e: mangwale_core::InvalidValue| AppError::invalid("action", format!("action: {e}")))?
        }
    };
    let actor = body.actor.clone().unwrap_or_else(|| "api".into());
    match comms::stop(&state, id, action, &actor, "api", Vec::new()).await? {
        LadderStop::Stopped(ladder) => Ok(Json(json!({
            "success": true, "message": "Escalation stopped", "escalationId": id, "stopped": true,
            "state": ladder.state.name(), "action": action.name(), "actor": actor,
            "responseSecs": comms::response_secs(&ladder),
        }))),
        LadderStop::AlreadyFinished(ladder) => Ok(Json(json!({
            "success": true, "message": "Escalation had already finished", "escalationId": id, "stopped": false,
            "state": ladder.state.name(), "action": ladder.stop_action, "actor": ladder.stop_actor,
        }))),
        LadderStop::NotFound => Err(AppError::NotFound(format!("no escalation {id}"))),
    }
}

#[derive(Debug, Deserialize)]
struct BridgeParty {
    #[serde(rename = "type")]
    kind: Option<String>,
    phone: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BridgeBody {
    order_id: Option<Id>,
    party_a: Option<BridgeParty>,
    party_b: Option<BridgeParty>,
    reason: Option<String>,
    time_limit: Option<u32>,
}

/// `POST /comms/bridge`: a call that connects two parties, each seeing our
/// number (party A is dialled first). `party_b.type = "admin"` without a
/// phone dials ADMIN_SUPPORT_PHONE.
async fn bridge(State(state): State<AppState>, ApiJson(body): ApiJson<BridgeBody>) -> AppResult<Json<Value>> {
    let order = match &body.order_id {
        Some(_) => Some(order_id(&body.order_id)?),
        None => None,
    };
    let a = body.party_a.as_ref().ok_or_else(|| AppError::invalid("party_a", "party_a is required"))?;
    let b = body.party_b.as_ref().ok_or_else(|| AppError::invalid("party_b", "party_b is required"))?;
    let from = phone("party_a.phone", &a.phone)?
        .ok_or_else(|| AppError::invalid("party_a.phone", "party_a.phone is required"))?;
    let to =
        match (phone("party_b.phone", &b.phone)?, b.kind.as_deref()) {
            (Some(p), _) => p,
            (None, Some("admin")) => state.config.admin_support_phone.clone().ok_or_else(|| {
                AppError::invalid("party_b.phone", "ADMIN_SUPPORT_PHONE is not set; give party_b.phone")
            })?,
            (None, _) => return Err(AppError::invalid("party_b.phone", "party_b.phone is required")),
        };
    let limit = body.time_limit.unwrap_or(1800);
    if !(30..=14_400).contains(&limit) {
        return Err(AppError::invalid("time_limit", "time_limit: 30 to 14400 seconds"));
    }
    let kind = |p: &BridgeParty| p.kind.clone().unwrap_or_else(|| "party".into());
    let purpose = if b.kind.as_deref() == Some("admin") { "admin_bridge" } else { "bridge" };
    let call = PlaceCall {
        purpose: purpose.into(),
        caller: CallerPurpose::Other,
        from,
        target: CallTarget::Bridge(to),
        order_id: order.as_ref().map(|o| o.as_str().to_string()),
        escalation_id: None,
        party: Some(format!("{}_{}", kind(a), kind(b))),
        time_limit: Some(limit),
        ring_timeout: Some(45),
    };
    let attempt = place_call(&state, call).await.map_err(|e| match e {
        crate::calls::PlaceCallError::Permanent(m) => AppError::BadGateway { code: "exotel_refused", message: m },
        crate::calls::PlaceCallError::Transient(m) => AppError::Unavailable { code: "exotel_unavailable", message: m },
        crate::calls::PlaceCallError::Store(e) => AppError::from(e),
    })?;
    Ok(Json(json!({
        "success": true, "callSid": attempt.call_sid, "attemptId": attempt.id, "state": attempt.state.as_str(),
        "reason": body.reason,
    })))
}

/// `GET /comms/timeline/:orderId`: every event of the order in order, its
/// ladders, and a summary.
async fn timeline(State(state): State<AppState>, Path(order): Path<String>) -> AppResult<Json<Value>> {
    let order = OrderId::parse(&order).map_err(|e| AppError::invalid("orderId", format!("orderId: {e}")))?;
    let events = state.store.events_for_order(order.as_str()).await?;
    let ladders = state.store.ladders_for_order(order.as_str()).await?;
    let sent = events.iter().filter(|e| e.kind == "ladder.step_sent").count();
    let failed_attempts = events.iter().filter(|e| e.kind == "ladder.step_failed").count();
    // Steps that ended failed (a failed attempt that was retried and sent
    // is not one).
    let failed =
        ladders.iter().flat_map(|l| &l.steps).filter(|s| s.state == mangwale_core::ladder::StepState::Failed).count();
    let bridges = events
        .iter()
        .filter(|e| e.kind == "call_placed" && e.detail["purpose"].as_str().is_some_and(|p| p.contains("bridge")))
        .count();
    let responses: Vec<f64> = ladders.iter().filter_map(comms::response_secs).collect();
    let avg = (!responses.is_empty()).then(|| responses.iter().sum::<f64>() / responses.len() as f64);
    let mut channels: Vec<String> = events.iter().filter_map(|e| e.channel.clone()).collect();
    channels.sort();
    channels.dedup();
    Ok(Json(json!({
        "orderId": order.as_str(),
        "events": events,
        "ladders": ladders.iter().map(ladder_json).collect::<Vec<_>>(),
        "channels": channels,
        "summary": {
            "totalNotifications": sent,
            "failedNotifications": failed,
            "failedAttempts": failed_attempts,
            "escalationsTriggered": ladders.len(),
            "activeEscalations": ladders.iter().filter(|l| l.state == mangwale_core::ladder::LadderState::Active).count(),
            "bridgeCalls": bridges,
            "avgResponseTime": avg,
            "responses": ladders.iter().filter_map(|l| l.stop_action.as_ref().map(|a| json!({
                "escalationId": l.escalation_id, "action": a, "actor": l.stop_actor, "seconds": comms::response_secs(l),
            }))).collect::<Vec<_>>(),
        },
    })))
}

/// A single IVR call (`/exotel/ivr/notify/*`), with the notify route's body.
async fn ivr_only<B: NotifyBody>(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<B>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let mut request = body.into_request()?;
    complete(&state, &mut request).await?;
    let outcome = comms::start_ivr_only(&state, request).await?;
    Ok(started_answer(outcome, "IVR call queued"))
}

#[derive(Debug, Deserialize)]
struct Range {
    from: Option<String>,
    to: Option<String>,
}

/// Earliest and latest time the analytics accept: every stored time lies
/// between, and date arithmetic on them cannot overflow.
fn analytics_bounds() -> (DateTime<Utc>, DateTime<Utc>) {
    let at = |y| chrono::NaiveDate::from_ymd_opt(y, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc());
    (at(2000).unwrap_or(DateTime::<Utc>::MIN_UTC), at(2100).unwrap_or(DateTime::<Utc>::MAX_UTC))
}

pub(crate) fn time(field: &str, raw: &Option<String>) -> AppResult<Option<DateTime<Utc>>> {
    let Some(t) = raw.as_deref() else {
        return Ok(None);
    };
    let parsed = DateTime::parse_from_rfc3339(t)
        .map(|t| Some(t.with_timezone(&Utc)))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").map(|d| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()))
        })
        .map_err(|_| AppError::invalid(field, format!("{field}: an RFC 3339 time or a date (YYYY-MM-DD)")))?
        .ok_or_else(|| AppError::invalid(field, format!("{field}: not a valid time")))?;
    let (earliest, latest) = analytics_bounds();
    if parsed < earliest || parsed > latest {
        return Err(AppError::invalid(field, format!("{field}: from 2000-01-01 to 2100-01-01")));
    }
    Ok(Some(parsed))
}

fn analytics_span(range: &Range, now: DateTime<Utc>) -> AppResult<(DateTime<Utc>, DateTime<Utc>)> {
    let to = time("to", &range.to)?.unwrap_or(now);
    let from = time("from", &range.from)?.unwrap_or(to - chrono::Duration::hours(24));
    if from >= to {
        return Err(AppError::invalid("from", "from must be before to"));
    }
    Ok((from, to))
}

/// The analytics range of a query string as the route reads it. Public for
/// the fuzz harness.
#[doc(hidden)]
pub fn analytics_range(query: &[u8], now: DateTime<Utc>) -> AppResult<(DateTime<Utc>, DateTime<Utc>)> {
    let range: Range = serde_urlencoded::from_bytes(query).map_err(|e| AppError::BadRequest {
        code: "invalid_query",
        message: e.to_string(),
        field: None,
    })?;
    analytics_span(&range, now)
}

/// `GET /exotel/ivr/analytics?from=&to=`: counts from the calls, ladders,
/// missed calls, masked calls and campaigns of the range (default: the
/// last 24 hours).
async fn analytics(State(state): State<AppState>, Query(range): Query<Range>) -> AppResult<Json<Value>> {
    let (from, to) = analytics_span(&range, state.clock.now())?;
    let mut stats = state.store.comms_stats(from, to).await?;
    let missed = state.store.missed_call_stats(from, to).await?;
    let masking = state.store.masking_stats(from, to, state.clock.now()).await?;
    let campaigns = crate::campaigns::figures_json(&state.store.campaign_figures(from, to).await?);
    // A deadline is a timer, not a notification.
    stats.steps_sent.remove(mangwale_core::ladder::Channel::Deadline.name());
    Ok(Json(json!({
        "from": from, "to": to,
        "calls": stats.calls,
        "answered": stats.calls_answered,
        "ivrCalls": stats.ivr_calls,
        "vendorsNotified": stats.vendors_notified,
        "accepted": stats.accepted,
        "rejected": stats.rejected,
        "noResponse": stats.no_response,
        "activeEscalations": stats.active,
        "escalations": stats.ladders,
        "avgResponseTime": stats.avg_response_secs,
        "bridges": stats.bridges,
        "notificationsSent": stats.steps_sent,
        "notificationsFailed": stats.steps_failed,
        "missedCalls": missed.missed_calls,
        "callbacks": missed.callbacks,
        "callbacksPlaced": missed.callbacks_placed,
        "callbackCalls": missed.callback_calls,
        "callbacksAnswered": missed.answered,
        "callbacksGaveUp": missed.gave_up,
        "masking": {
            "maskedCalls": masking.calls,
            "connected": masking.connected,
            "noSession": masking.no_session,
            "avgBridgeDuration": masking.avg_bridge_secs,
            "sessionsOpened": masking.sessions_opened,
            "activeSessions": masking.open_sessions,
        },
        "campaigns": campaigns,
    })))
}

/// Text, parsed by the handler so that a bad value is a 400 naming it.
#[derive(Debug, Deserialize)]
struct FeedQuery {
    after: Option<String>,
    limit: Option<String>,
    /// The live stream only: start this many events back from the newest.
    tail: Option<String>,
}

/// `GET /comms/events?after=<id>&limit=`: the live event feed, every
/// timeline event of every order (ladder steps, answers, admin alerts,
/// calls) after the cursor, oldest first. Poll with `after` set to the
/// last `next`.
async fn events(State(state): State<AppState>, Query(q): Query<FeedQuery>) -> AppResult<Json<Value>> {
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(l) => l
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| AppError::invalid("limit", "limit: 1 to 1000"))?,
    };
    let after = crate::extract::parse_after(q.after.as_deref(), "an event id")?.unwrap_or(0);
    let events = state.store.events_after(after, limit).await?;
    let next = events.last().map(|e| e.id).unwrap_or(after);
    Ok(Json(json!({"events": events, "next": next})))
}

/// `GET /comms/events/stream`: the same feed as Server-Sent Events (see
/// [`crate::event_stream`]). Resumes from `Last-Event-ID`, else from
/// `?after=<id>`, else `?tail=<n>` events back from the newest, else from
/// now; a heartbeat comment keeps proxies from
/// closing a quiet connection.
async fn events_stream(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Query(q): Query<FeedQuery>,
) -> AppResult<impl axum::response::IntoResponse> {
    use crate::event_stream::{FeedPosition, FeedStream};
    let resume = headers.get("last-event-id").map(|v| v.to_str().ok().and_then(FeedPosition::parse));
    let position = match (resume, crate::extract::parse_after(q.after.as_deref(), "an event id")?) {
        (Some(Some(position)), _) => position,
        (Some(None), _) => {
            return Err(AppError::invalid("Last-Event-ID", "Last-Event-ID: an id this stream sent"));
        }
        (None, Some(after)) => FeedPosition::at(after),
        (None, None) => {
            // `?tail=N`: the N newest events first (a screen's recent history), then live.
            let tail = match q.tail.as_deref() {
                None => 0,
                Some(t) => t
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|t| (0..=1000).contains(t))
                    .ok_or_else(|| AppError::invalid("tail", "tail: 0 to 1000 events"))?,
            };
            FeedPosition::at((state.store.latest_event_id().await? - tail).max(0))
        }
    };
    let feed = FeedStream::new(&state.events, position);
    let stream = futures::stream::unfold(feed, |mut feed| async move {
        let item = feed.next().await?;
        if let Err(e) = &item {
            // The stream ends; the client reconnects from its last id.
            tracing::warn!(error = %e, "the live feed stream failed");
        }
        Some((item, feed))
    });
    let keep_alive = axum::response::sse::KeepAlive::new().interval(state.events.heartbeat).text("heartbeat");
    Ok(axum::response::sse::Sse::new(stream).keep_alive(keep_alive))
}
