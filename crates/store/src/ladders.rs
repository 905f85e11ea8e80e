//! Escalation ladders: each ladder and its steps, durable, changed only in
//! transactions that also write the timeline event and the jobs that follow.
//!
//! The step jobs themselves live in the job table (one per step, in the
//! ladder's job group); this table is what a step job checks before it sends
//! (the fencing): a step is sent only if its ladder is active and the step
//! is still pending, and that check and the mark "sending" are one
//! statement, so a stop that commits first always wins.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mangwale_core::ladder::{Channel, LadderContext, LadderDef, LadderKind, LadderState, StepState, StopAction};
use mangwale_core::{E164, Language};
use serde::Serialize;
use serde_json::Value;

use crate::jobs::NewJob;
use crate::timeline::NewEvent;
use crate::{Result, StoreError};

/// A ladder to start.
#[derive(Debug, Clone)]
pub struct NewLadder {
    pub escalation_id: String,
    pub kind: LadderKind,
    pub order_id: Option<String>,
    /// `vendor:V-42`.
    pub party: String,
    /// The party's number. Stored because later steps call it; it never
    /// appears in the timeline or logs (those get the masked form).
    pub phone: Option<E164>,
    pub language: Language,
    /// What the steps say: amount, items, addresses, names.
    pub context: LadderContext,
    /// The ladder definition as it was when the ladder started.
    pub definition: LadderDef,
    pub steps: Vec<NewLadderStep>,
    pub started_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewLadderStep {
    pub index: u32,
    pub channel: Channel,
    pub due_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ladder {
    pub escalation_id: String,
    pub kind: LadderKind,
    pub order_id: Option<String>,
    pub party: String,
    #[serde(skip)]
    pub phone: Option<E164>,
    pub language: Language,
    pub context: LadderContext,
    pub definition: LadderDef,
    pub state: LadderState,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub stop_action: Option<StopAction>,
    pub stop_actor: Option<String>,
    pub steps: Vec<LadderStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LadderStep {
    pub index: u32,
    pub channel: Channel,
    pub due_at: DateTime<Utc>,
    pub state: StepState,
    pub attempts: u32,
    /// The provider's message or call id.
    pub provider_id: Option<String>,
    pub detail: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LadderStart {
    Started(Ladder),
    /// A ladder with this escalation id exists (running or finished): it is
    /// returned and nothing was written.
    Existing(Ladder),
}

#[derive(Debug, Clone, PartialEq)]
pub enum LadderStop {
    Stopped(Ladder),
    /// It had stopped or run out already; nothing was written.
    AlreadyFinished(Ladder),
    NotFound,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepClaim {
    /// The step is now `sending` for this caller.
    Claimed(Ladder),
    /// The ladder stopped or ran out: the step must not be sent.
    LadderFinished(Ladder),
    /// The step is not pending (`sending` means an earlier worker died
    /// mid-send).
    NotPending(StepState),
    NotFound,
}

/// The outcome of [`LadderStore::escalate_step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escalation {
    /// The step's job is due now (or was due already).
    Escalated {
        run_at: DateTime<Utc>,
    },
    NotFound,
    /// The ladder stopped or ran out.
    LadderFinished(LadderState),
    /// The ladder has no step with this index.
    NoSuchStep,
    /// The step was sent (or is being sent) already.
    StepNotPending(StepState),
    /// The step is pending but its job is not: a worker holds it right now.
    JobNotPending,
}

/// How a step ended (or `Pending` again, for a retry).
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    pub state: StepState,
    pub provider_id: Option<String>,
    pub detail: Option<String>,
}

/// What happens if a finished step was the ladder's last and nobody
/// answered: the ladder becomes exhausted, with this event and these jobs.
#[derive(Debug, Clone, Default)]
pub struct OnExhausted {
    pub event: Option<NewEvent>,
    pub jobs: Vec<NewJob>,
}

/// Counts for the analytics of a time range.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommsStats {
    pub calls: u64,
    pub calls_answered: u64,
    pub ivr_calls: u64,
    pub bridges: u64,
    pub ladders: u64,
    pub vendors_notified: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Ladders that ran out without an answer (customer notices, which
    /// have none to give, are not counted).
    pub no_response: u64,
    pub active: u64,
    /// From start to the party's answer, over ladders stopped by one.
    pub avg_response_secs: Option<f64>,
    /// Steps sent, by channel.
    pub steps_sent: BTreeMap<String, u64>,
    pub steps_failed: u64,
}

#[async_trait]
pub trait LadderStore: Send + Sync {
    /// Starts a ladder: the ladder, its steps, `jobs` (its step jobs) and
    /// `event`, in one transaction — or returns the existing one.
    async fn start_ladder(&self, ladder: NewLadder, jobs: Vec<NewJob>, event: NewEvent) -> Result<LadderStart>;

    /// Stops an active ladder: its state, its pending steps (canceled), the
    /// pending and running jobs of `job_group`, `event` and `jobs` (what the
    /// answer sets in motion), in one transaction. A ladder that has finished
    /// already gets none of it.
    #[allow(clippy::too_many_arguments)]
    async fn stop_ladder(
        &self,
        escalation_id: &str,
        action: StopAction,
        actor: &str,
        job_group: &str,
        event: NewEvent,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
    ) -> Result<LadderStop>;

    /// Marks a step `sending` if its ladder is active and it is pending.
    async fn claim_step(&self, escalation_id: &str, index: u32, now: DateTime<Utc>) -> Result<StepClaim>;

    /// Records a step's outcome with `event` and `jobs`; when that leaves
    /// every step final on an active ladder, the ladder is exhausted (with
    /// `on_exhausted`). Returns the ladder's state after, `None` if there is
    /// no such ladder.
    #[allow(clippy::too_many_arguments)]
    async fn finish_step(
        &self,
        escalation_id: &str,
        index: u32,
        result: StepResult,
        event: NewEvent,
        jobs: Vec<NewJob>,
        on_exhausted: OnExhausted,
        now: DateTime<Utc>,
    ) -> Result<Option<LadderState>>;

    async fn ladder(&self, escalation_id: &str) -> Result<Option<Ladder>>;

    /// Every ladder of an order, oldest first.
    async fn ladders_for_order(&self, order_id: &str) -> Result<Vec<Ladder>>;

    /// Counts a wrong key at `menu` on a call; returns the count so far.
    async fn ivr_invalid_key(&self, call_sid: &str, menu: &str, now: DateTime<Utc>) -> Result<u32>;

    /// Wrong keys at `menu` on a call so far (0 if none).
    async fn ivr_wrong_keys(&self, call_sid: &str, menu: &str) -> Result<u32>;

    /// Active ladders, newest first, at most `limit`: the live board.
    async fn active_ladders(&self, limit: u32) -> Result<Vec<Ladder>>;

    /// Makes step `index` of an active ladder due now: its job (the pending
    /// job keyed `job_key`) and its due time move to `now` unless they are
    /// earlier already, with `event`, in one transaction that first checks
    /// that the ladder is active and the step pending (so a stop or a send
    /// that commits first wins).
    async fn escalate_step(
        &self,
        escalation_id: &str,
        index: u32,
        job_key: &str,
        event: NewEvent,
        now: DateTime<Utc>,
    ) -> Result<Escalation>;

    /// Calls, ladders and steps of `[from, to)`.
    async fn comms_stats(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<CommsStats>;
}

/// The counts of [`LadderStore::comms_stats`] from its three queries, the
/// same on both backends: calls (`calls`, `answered`, `ivr`, `bridges`),
/// ladders (`ladders`, `vendors`, `accepted`, `rejected`, `exhausted`,
/// `active`, `avg_response`), and steps by channel (`channel`, `sent`,
/// `failed`).
pub(crate) fn stats_from_rows<R: sqlx::Row>(calls: &R, ladders: &R, steps: &[R]) -> Result<CommsStats>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'n> &'n str: sqlx::ColumnIndex<R>,
{
    let count = |row: &R, name: &str| -> Result<u64> { Ok(row.try_get::<i64, _>(name)? as u64) };
    let mut steps_sent = BTreeMap::new();
    let mut steps_failed = 0;
    for row in steps {
        let channel: String = row.try_get("channel")?;
        steps_sent.insert(channel, count(row, "sent")?);
        steps_failed += count(row, "failed")?;
    }
    Ok(CommsStats {
        calls: count(calls, "calls")?,
        calls_answered: count(calls, "answered")?,
        ivr_calls: count(calls, "ivr")?,
        bridges: count(calls, "bridges")?,
        ladders: count(ladders, "ladders")?,
        vendors_notified: count(ladders, "vendors")?,
        accepted: count(ladders, "accepted")?,
        rejected: count(ladders, "rejected")?,
        no_response: count(ladders, "exhausted")?,
        active: count(ladders, "active")?,
        avg_response_secs: ladders.try_get::<Option<f64>, _>("avg_response")?,
        steps_sent,
        steps_failed,
    })
}

/// A ladder's columns as both backends read them, before decoding.
pub(crate) struct LadderRow {
    pub escalation_id: String,
    pub kind: String,
    pub order_id: Option<String>,
    pub party: String,
    pub phone: Option<String>,
    pub language: String,
    pub context: Value,
    pub definition: Value,
    pub state: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub stop_action: Option<String>,
    pub stop_actor: Option<String>,
}

impl LadderRow {
    /// Decodes the columns into the core types; a value that does not
    /// decode is reported as corrupt, naming the ladder and the column.
    pub(crate) fn decode(self, steps: Vec<LadderStep>) -> Result<Ladder> {
        let id = self.escalation_id;
        let corrupt =
            |column: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("ladder {id} {column}: {e}"));
        let kind = self.kind.parse().map_err(|e| corrupt("kind", &e))?;
        let phone = self.phone.map(|p| E164::parse(&p)).transpose().map_err(|e| corrupt("phone", &e))?;
        let language = self.language.parse().map_err(|e| corrupt("language", &e))?;
        let context = serde_json::from_value(self.context).map_err(|e| corrupt("context", &e))?;
        let definition = serde_json::from_value(self.definition).map_err(|e| corrupt("definition", &e))?;
        let state = ladder_state(&self.state)?;
        let stop_action = self.stop_action.map(|a| a.parse()).transpose().map_err(|e| corrupt("stop_action", &e))?;
        Ok(Ladder {
            kind,
            order_id: self.order_id,
            party: self.party,
            phone,
            language,
            context,
            definition,
            state,
            started_at: crate::from_ms(self.started_at),
            finished_at: self.finished_at.map(crate::from_ms),
            stop_action,
            stop_actor: self.stop_actor,
            steps,
            escalation_id: id,
        })
    }
}

/// A step's columns as both backends read them, before decoding.
pub(crate) struct StepRow {
    pub index: i64,
    pub channel: String,
    pub due_at: i64,
    pub state: String,
    pub attempts: i64,
    pub provider_id: Option<String>,
    pub detail: Option<String>,
    pub updated_at: i64,
}

impl StepRow {
    pub(crate) fn decode(self) -> Result<LadderStep> {
        Ok(LadderStep {
            index: self.index as u32,
            channel: Channel::parse(&self.channel)
                .ok_or_else(|| StoreError::Corrupt(format!("step channel {}", self.channel)))?,
            due_at: crate::from_ms(self.due_at),
            state: step_state(&self.state)?,
            attempts: self.attempts as u32,
            provider_id: self.provider_id,
            detail: self.detail,
            updated_at: crate::from_ms(self.updated_at),
        })
    }
}

/// A ladder's context and definition as stored (JSON).
pub(crate) fn stored_json(ladder: &NewLadder) -> Result<(Value, Value)> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("ladder {}: {e}", ladder.escalation_id));
    Ok((
        serde_json::to_value(&ladder.context).map_err(corrupt)?,
        serde_json::to_value(&ladder.definition).map_err(corrupt)?,
    ))
}

pub(crate) fn ladder_state(s: &str) -> Result<LadderState> {
    LadderState::parse(s).ok_or_else(|| StoreError::Corrupt(format!("ladder state {s}")))
}

pub(crate) fn step_state(s: &str) -> Result<StepState> {
    StepState::parse(s).ok_or_else(|| StoreError::Corrupt(format!("step state {s}")))
}

/// Purposes of call attempts that are IVR or ring calls, and bridges.
pub(crate) const IVR_PURPOSES: &str = "('ivr', 'ring')";
pub(crate) const BRIDGE_PURPOSES: &str = "('bridge', 'admin_bridge', 'masked_bridge')";

#[cfg(test)]
mod tests {
    use mangwale_core::ladder::{LadderBook, Money, PaymentMode};
    use serde_json::json;

    use super::*;

    fn row(context: Value) -> LadderRow {
        LadderRow {
            escalation_id: "vendor_order_MW-1".into(),
            kind: "vendor_new_order".into(),
            order_id: Some("MW-1".into()),
            party: "vendor:V-42".into(),
            phone: Some("+919876543210".into()),
            language: "hi".into(),
            context,
            definition: serde_json::to_value(LadderBook::defaults().get(LadderKind::VendorNewOrder)).unwrap(),
            state: "stopped".into(),
            started_at: 0,
            finished_at: Some(1_000),
            stop_action: Some("accept".into()),
            stop_actor: Some("vendor:V-42".into()),
        }
    }

    #[test]
    fn a_row_written_by_the_json_map_decodes_into_the_core_types() {
        let old = json!({"name": "Krishna Kirana", "amount": 325.5, "items": "Poha x1", "paymentMode": "cod",
                         "city": "Nashik", "minutesRemaining": "5", "riderName": null});
        let ladder = row(old).decode(Vec::new()).unwrap();
        assert_eq!(ladder.kind, LadderKind::VendorNewOrder);
        assert_eq!(ladder.phone.as_ref().map(E164::as_str), Some("+919876543210"));
        assert_eq!(ladder.language, Language::Hi);
        assert_eq!(ladder.stop_action, Some(StopAction::Accept));
        assert_eq!(ladder.context.amount, Some(Money::from_paise(32_550)));
        assert_eq!(ladder.context.payment_mode, Some(PaymentMode::CashOnDelivery));
        assert_eq!(ladder.context.minutes_remaining, Some(5));
        assert_eq!(ladder.context.rider_name, None);
        assert!(ladder.definition.whatsapp_template.is_some());
    }

    #[test]
    fn a_column_that_does_not_decode_is_reported_with_its_name() {
        let mut bad = row(json!({}));
        bad.kind = "vendor_teleport".into();
        let error = bad.decode(Vec::new()).unwrap_err().to_string();
        assert!(error.contains("vendor_order_MW-1 kind"), "{error}");
        let mut bad = row(json!({}));
        bad.phone = Some("12".into());
        assert!(bad.decode(Vec::new()).unwrap_err().to_string().contains("phone"));
    }
}
