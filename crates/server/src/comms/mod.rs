//! The communications orchestrator: escalation ladders that reach a party on
//! one channel after another until they answer, durable in the store and
//! the job queue, stopped atomically by any answer.
//!
//! - [`start`] snapshots the ladder's definition, stores the ladder and one
//!   `ladder.step` job per step in one transaction.
//! - [`steps`] runs a due step: it marks the step `sending` only while the
//!   ladder is active (the fencing), sends it, and records the outcome.
//! - [`answers`] carries out an answer (IVR key, WhatsApp button): Jupiter
//!   is told through the outbox and the ladder stops, in one transaction.
//! - [`ivr`] answers the applets of the IVR calls the ladders place.
//! - [`pickup`] gives a rider who accepted the pickup location.

pub mod answers;
pub mod channels;
pub mod ivr;
pub mod jobs;
pub mod pickup;
pub mod prompts;
pub mod steps;

use chrono::DateTime;
use mangwale_core::context::non_blank;
use mangwale_core::ladder::{LadderContext, LadderKind, Money, PaymentMode, StopAction};
use mangwale_core::{E164, Language, OrderId};
use mangwale_store::{Ladder, LadderStart, LadderStop, NewEvent, NewJob, NewLadder, NewLadderStep};
use serde_json::{Value, json};

use crate::state::AppState;

/// The job of one ladder step.
pub const STEP_JOB: &str = "ladder.step";

/// Attempts of one step before it counts as failed (transient failures
/// only; a refusal fails it at once).
pub const STEP_ATTEMPTS: u32 = 4;

/// The job group of a ladder's steps: a stop cancels the whole group.
pub fn job_group(escalation_id: &str) -> String {
    format!("ladder:{escalation_id}")
}

/// A ladder to start, as the API, the Jupiter events and the IVR routes
/// describe it.
#[derive(Debug, Clone)]
pub struct LadderRequest {
    pub kind: LadderKind,
    pub order_id: OrderId,
    /// The party's id in Jupiter (`V-42`, `67`).
    pub party_id: Option<String>,
    pub phone: Option<E164>,
    pub language: Language,
    /// What the steps say.
    pub context: LadderContext,
    /// Who asked: `api`, `jupiter:order/new`, ...
    pub source: String,
}

impl LadderRequest {
    pub fn new(kind: LadderKind, order_id: OrderId, source: impl Into<String>) -> Self {
        LadderRequest {
            kind,
            order_id,
            party_id: None,
            phone: None,
            language: Language::Hi,
            context: LadderContext::default(),
            source: source.into(),
        }
    }
}

/// The `party` string of a ladder (`vendor:V-42`).
pub fn party_of(role: &str, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{role}:{id}"),
        None => role.to_string(),
    }
}

/// Starts a ladder, or returns the one with this escalation id.
pub async fn start(state: &AppState, request: LadderRequest) -> Result<LadderStart, mangwale_store::StoreError> {
    let def = state.config.ladders.get(request.kind).clone();
    let escalation_id = request.kind.escalation_id(request.order_id.as_str(), state.clock.now().timestamp_millis());
    start_with(state, request, def, escalation_id).await
}

/// A single IVR call as a one-step ladder (`/exotel/ivr/notify/*`): the
/// call speaks the same context and its answer stops it and tells Jupiter
/// like any ladder's.
pub async fn start_ivr_only(
    state: &AppState,
    request: LadderRequest,
) -> Result<LadderStart, mangwale_store::StoreError> {
    let mut def = state.config.ladders.get(request.kind).clone();
    def.steps = vec![mangwale_core::ladder::StepDef { channel: mangwale_core::ladder::Channel::Ivr, after: 0 }];
    let now_ms = state.clock.now().timestamp_millis();
    let escalation_id = format!("ivr_{}_{now_ms}", request.kind.escalation_id(request.order_id.as_str(), now_ms));
    start_with(state, request, def, escalation_id).await
}

async fn start_with(
    state: &AppState,
    request: LadderRequest,
    def: mangwale_core::ladder::LadderDef,
    base_id: String,
) -> Result<LadderStart, mangwale_store::StoreError> {
    // A running ladder with this id is returned as it is. A finished one
    // (answered, stopped, run out) does not block a new run: the order may
    // have been reassigned, or the caller asks again; the new run gets the
    // next free id, `<id>-2`, `<id>-3`, ...
    let mut escalation_id = base_id.clone();
    for run in 2..=20 {
        match start_once(state, &request, &def, &escalation_id).await? {
            LadderStart::Existing(existing) if existing.state != mangwale_core::ladder::LadderState::Active => {
                escalation_id = format!("{base_id}-{run}");
            }
            outcome => return Ok(outcome),
        }
    }
    start_once(state, &request, &def, &escalation_id).await
}

async fn start_once(
    state: &AppState,
    request: &LadderRequest,
    def: &mangwale_core::ladder::LadderDef,
    escalation_id: &str,
) -> Result<LadderStart, mangwale_store::StoreError> {
    let escalation_id = escalation_id.to_string();
    let now = state.clock.now();
    let started_ms = now.timestamp_millis();
    let def = mangwale_core::ladder::with_deadline(def.clone());
    let party = party_of(def.party.name(), request.party_id.as_deref());
    let schedule = mangwale_core::ladder::schedule(&def, started_ms);
    let steps: Vec<NewLadderStep> = schedule
        .iter()
        .map(|(index, channel, due_ms)| NewLadderStep {
            index: *index,
            channel: *channel,
            due_at: DateTime::from_timestamp_millis(*due_ms).unwrap_or(now),
        })
        .collect();
    let jobs: Vec<NewJob> = steps
        .iter()
        .map(|step| {
            NewJob::new(
                STEP_JOB,
                format!("{STEP_JOB}:{escalation_id}:{}", step.index),
                json!({"escalationId": escalation_id, "step": step.index}),
                step.due_at,
            )
            .in_group(job_group(&escalation_id))
            .max_attempts(STEP_ATTEMPTS)
        })
        .collect();
    let plan: Vec<Value> = def.steps.iter().map(|s| json!({"channel": s.channel.name(), "after": s.after})).collect();
    let event = NewEvent::new("ladder.started", now)
        .order(request.order_id.as_str())
        .escalation(&escalation_id)
        .party(&party)
        .channel("comms")
        .detail(json!({
            "ladder": request.kind.name(),
            "source": request.source.clone(),
            "to": request.phone.as_ref().map(E164::masked),
            "language": request.language.code(),
            "steps": plan,
        }));
    let ladder = NewLadder {
        escalation_id: escalation_id.clone(),
        kind: request.kind,
        order_id: Some(request.order_id.as_str().to_string()),
        party,
        phone: request.phone.clone(),
        language: request.language,
        context: request.context.clone(),
        definition: def,
        steps,
        started_at: now,
    };
    let outcome = state.store.start_ladder(ladder, jobs, event).await?;
    let label = if matches!(outcome, LadderStart::Started(_)) { "started" } else { "existing" };
    metrics::counter!("mangwale_ladders_total", "ladder" => request.kind.name(), "outcome" => label).increment(1);
    Ok(outcome)
}

/// Stops a ladder: no step fires after this returns. `jobs` are what the
/// answer sets in motion (Jupiter updates); they are enqueued only if this
/// call is the one that stopped it.
pub async fn stop(
    state: &AppState,
    escalation_id: &str,
    action: StopAction,
    actor: &str,
    via: &str,
    jobs: Vec<NewJob>,
) -> Result<LadderStop, mangwale_store::StoreError> {
    let now = state.clock.now();
    let ladder = state.store.ladder(escalation_id).await?;
    let (order, party, started) = match &ladder {
        Some(l) => (l.order_id.clone(), Some(l.party.clone()), Some(l.started_at)),
        None => (None, None, None),
    };
    let response_secs = started.map(|s| (now - s).num_milliseconds() as f64 / 1000.0);
    let mut event = NewEvent::new("ladder.stopped", now)
        .escalation(escalation_id)
        .channel(via)
        .detail(json!({"action": action.name(), "actor": actor, "via": via, "responseSecs": response_secs}));
    event = event.context(order.as_deref(), None, party.as_deref());
    let outcome =
        state.store.stop_ladder(escalation_id, action, actor, &job_group(escalation_id), event, jobs, now).await?;
    if let LadderStop::Stopped(ladder) = &outcome {
        metrics::counter!("mangwale_ladders_stopped_total", "ladder" => ladder.kind.name(), "action" => action.name())
            .increment(1);
        if let Some(secs) = response_secs.filter(|_| action.is_response()) {
            metrics::histogram!("mangwale_ladder_response_seconds", "ladder" => ladder.kind.name()).record(secs);
        }
    }
    Ok(outcome)
}

/// The time a ladder's answer took, for summaries.
pub fn response_secs(ladder: &Ladder) -> Option<f64> {
    let action = ladder.stop_action?;
    let finished = ladder.finished_at?;
    action.is_response().then(|| (finished - ladder.started_at).num_milliseconds() as f64 / 1000.0)
}

/// Whether the request lacks what its ladder needs to speak and dial, so
/// that Jupiter must be asked (as the incumbent did).
pub fn needs_jupiter(request: &LadderRequest) -> bool {
    let c = &request.context;
    request.phone.is_none()
        || match request.kind {
            LadderKind::VendorNewOrder => c.amount.is_none() || c.items.is_none(),
            LadderKind::RiderAssign => c.pickup_address.is_none() || c.drop_address.is_none(),
            LadderKind::RiderAddressUpdate => c.new_address.is_none(),
            LadderKind::VendorReminder | LadderKind::CustomerStatus | LadderKind::CustomerDelay => false,
        }
}

/// Fills what the caller left out from Jupiter's order: the party's id and
/// phone, amount, items, payment, addresses. `Ok(false)`: Jupiter does not
/// know the order.
pub async fn fill_from_jupiter(
    state: &AppState,
    request: &mut LadderRequest,
) -> Result<bool, mangwale_providers::jupiter::JupiterError> {
    let Some(order) = state.jupiter.client.order(&request.order_id).await? else { return Ok(false) };
    let role = state.config.ladders.get(request.kind).party;
    let (id, phone, name) = match role {
        mangwale_core::ladder::PartyRole::Vendor => {
            let store = order.store.as_ref();
            (store.and_then(|s| s.id), store.and_then(|s| s.phone.clone()), store.map(|s| s.name.clone()))
        }
        mangwale_core::ladder::PartyRole::Rider => {
            let rider = order.rider.as_ref();
            (rider.and_then(|r| r.id), rider.and_then(|r| r.phone.clone()), rider.map(|r| r.name.clone()))
        }
        mangwale_core::ladder::PartyRole::Customer => {
            let customer = order.customer.as_ref();
            (customer.and_then(|c| c.id), customer.and_then(|c| c.phone.clone()), customer.map(|c| c.name.clone()))
        }
    };
    if request.party_id.is_none() {
        request.party_id = id.map(|id| id.to_string());
    }
    if request.phone.is_none() {
        request.phone = phone;
    }
    let pickup = order
        .pickup_address
        .as_ref()
        .map(|a| a.address.clone())
        .or_else(|| order.store.as_ref().and_then(|s| s.address.clone()));
    let drop = order.delivery_address.as_ref().and_then(|a| non_blank(&a.address));
    let mode = if order.is_cash_on_delivery() { PaymentMode::CashOnDelivery } else { PaymentMode::Prepaid };
    request.context.fill_from(LadderContext {
        name: name.and_then(non_blank),
        amount: Some(Money::from_paise(order.amount_paise)),
        items: non_blank(order.items_summary()),
        payment_mode: order.payment_method.as_ref().map(|_| mode),
        pickup_name: order.store.as_ref().and_then(|s| non_blank(&s.name)),
        pickup_address: pickup.and_then(non_blank),
        drop_address: drop.clone(),
        new_address: drop.filter(|_| request.kind == LadderKind::RiderAddressUpdate),
        order_status: non_blank(&order.status),
        ..LadderContext::default()
    });
    Ok(true)
}
