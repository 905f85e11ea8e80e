//! The append-only event timeline: what happened to an order, when, on which
//! channel, with which provider id.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::Result;

/// An event to record. Everything but `kind` is optional because events arrive
/// before we know all their context (a status callback for an unknown call).
#[derive(Debug, Clone, Default)]
pub struct NewEvent {
    pub order_id: Option<String>,
    pub escalation_id: Option<String>,
    pub call_sid: Option<String>,
    /// Who it concerns: `vendor:V-42`, `rider:R-15`, `customer`, `admin`.
    pub party: Option<String>,
    /// `push`, `whatsapp`, `ring`, `ivr`, `sms`, `admin`, `api`, ...
    pub channel: Option<String>,
    /// What happened: `ladder_started`, `step_sent`, `dtmf`, ...
    pub kind: String,
    pub detail: Value,
    pub at: DateTime<Utc>,
}

impl NewEvent {
    pub fn new(kind: impl Into<String>, at: DateTime<Utc>) -> Self {
        NewEvent { kind: kind.into(), at, detail: Value::Object(Default::default()), ..Default::default() }
    }

    pub fn order(mut self, order_id: impl Into<String>) -> Self {
        self.order_id = Some(order_id.into());
        self
    }

    pub fn escalation(mut self, id: impl Into<String>) -> Self {
        self.escalation_id = Some(id.into());
        self
    }

    pub fn call(mut self, sid: impl Into<String>) -> Self {
        self.call_sid = Some(sid.into());
        self
    }

    pub fn party(mut self, party: impl Into<String>) -> Self {
        self.party = Some(party.into());
        self
    }

    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = Some(channel.into());
        self
    }

    /// Sets whichever of order, escalation and party are known.
    pub fn context(mut self, order: Option<&str>, escalation: Option<&str>, party: Option<&str>) -> Self {
        self.order_id = order.map(str::to_string).or(self.order_id);
        self.escalation_id = escalation.map(str::to_string).or(self.escalation_id);
        self.party = party.map(str::to_string).or(self.party);
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEvent {
    pub id: i64,
    pub order_id: Option<String>,
    pub escalation_id: Option<String>,
    pub call_sid: Option<String>,
    pub party: Option<String>,
    pub channel: Option<String>,
    pub kind: String,
    pub detail: Value,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait TimelineStore: Send + Sync {
    /// Appends an event; returns its id.
    async fn record_event(&self, event: NewEvent) -> Result<i64>;

    /// Every event of an order, oldest first (ties in recording order).
    async fn events_for_order(&self, order_id: &str) -> Result<Vec<TimelineEvent>>;

    /// Events recorded after event `after_id` (any order), oldest first, at
    /// most `limit`: the live event feed. Ids grow with recording order; on
    /// PostgreSQL two concurrent transactions may commit their ids out of
    /// order, so a reader should re-read a few ids back.
    async fn events_after(&self, after_id: i64, limit: u32) -> Result<Vec<TimelineEvent>>;

    /// The events among `ids` that are recorded, oldest first: a live-feed
    /// reader looks again for ids it saw skipped (a transaction that took
    /// its id before, and committed after, a later one).
    async fn events_by_ids(&self, ids: &[i64]) -> Result<Vec<TimelineEvent>>;

    /// The id of the newest recorded event (0 when there is none).
    async fn latest_event_id(&self) -> Result<i64>;

    /// A signal bumped whenever any process records events, when the
    /// backend has one (PostgreSQL's LISTEN/NOTIFY); `None`: poll
    /// [`TimelineStore::latest_event_id`] instead (SQLite, one process).
    fn event_notifications(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}
