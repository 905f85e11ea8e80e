//! Persistence for the Mangwale Exotel service.
//!
//! Narrow traits ([`JobStore`], [`TimelineStore`], [`SettingsStore`], ...) with one
//! SQLite and one PostgreSQL implementation each, chosen at start-up from the
//! database URL. Both run their own migrations and pass the same conformance
//! suite (`tests/conformance.rs`).

use std::sync::Arc;

use async_trait::async_trait;

pub mod analytics;
pub mod calls;
pub mod campaign_outcomes;
pub mod campaign_sender;
pub mod campaigns;
pub mod clock;
pub mod idempotency;
pub mod inbound;
pub mod inbound_calls;
pub mod job_admin;
pub mod jobs;
pub mod ladders;
pub mod masking;
pub mod missed_calls;
mod postgres;
mod postgres_enqueue;
mod postgres_ladders;
mod rows;
mod sqlite;
mod sqlite_exec;
mod sqlite_inbound;
mod sqlite_ladders;
mod sqlite_read;
mod sqlite_writes;
pub mod supervise;
pub mod suppressions;
pub mod test_support;
pub mod timeline;
pub mod voice_sessions;
pub mod worker;

pub use analytics::{Analytics, AnalyticsStore, ChannelSteps, HourCalls, LadderOutcomes, VoiceFunnel};
pub use calls::{CallAttempt, CallState, CallStore, ExotelRequestLog, NewCall, phone_digest};
pub use campaign_outcomes::{CampaignCall, CampaignFigures, CampaignOutcomeStore, MessageRef, NewCampaignCall};
pub use campaign_sender::{BreakerRecord, CampaignSendStore, Rate};
pub use campaigns::{
    Campaign, CampaignFilter, CampaignStore, ClaimedMessage, Intake, MessageCount, MessageOutcome, MessageStatus,
    NewCampaign, NewRecipient, RecipientOutcome, Transition,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use idempotency::{IdempotencyClaim, IdempotencyStore, StoredResponse};
pub use inbound::{InboundEvent, InboundOutcome, InboundStore, InboundWriter, WriteError};
pub use inbound_calls::{InboundCall, InboundCallStore};
pub use job_admin::{DeadJob, DeadJobChange, JobAdminStore, KindQueue};
pub use jobs::{Enqueued, FailOutcome, Job, JobState, JobStore, Lease, NewJob, QueueStats};
pub use ladders::{
    CommsStats, Escalation, Ladder, LadderStart, LadderStep, LadderStop, LadderStore, NewLadder, NewLadderStep,
    OnExhausted, StepClaim, StepResult,
};
pub use masking::{
    MaskedCall, MaskedCallDirection, MaskedCallOutcome, MaskingOpen, MaskingSession, MaskingStats, MaskingStore,
    NewMaskingSession,
};
pub use missed_calls::{
    Callback, CallbackState, MissedCall, MissedCallPlan, MissedCallRecorded, MissedCallStats, MissedCallStore,
    TryClaim, TryEnd,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use supervise::{ComponentState, Components, RestartBudget};
pub use suppressions::{
    ActiveSuppression, NewSuppression, SuppressionAction, SuppressionCounts, SuppressionEntry, SuppressionFilter,
    SuppressionState, SuppressionStore,
};
pub use timeline::{NewEvent, TimelineEvent, TimelineStore};
pub use voice_sessions::{VoiceChannel, VoiceSession, VoiceSessionStatus, VoiceSessionStore, VoiceSessionUpdate};
pub use worker::{JobError, JobHandler, JobObserver, JobTrouble, RetryPolicy, RunReport, Worker, WorkerConfig};

/// Errors from the store. Callers treat them all as internal failures; the
/// variants exist so that logs say which layer failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL: {0}")]
    UnsupportedUrl(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    /// From the SQLite connection of the webhook write path.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database engine backs a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Durable settings the service creates for itself, such as the development
/// API key of sandbox mode, so that they survive restarts.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// Returns the stored value of `key`, storing `value` first if there is
    /// none. Concurrent callers all get the value that won.
    async fn setting_get_or_insert(&self, key: &str, value: &str) -> Result<String>;
}

/// Everything the service persists, behind one handle.
#[async_trait]
pub trait Store:
    JobStore
    + TimelineStore
    + SettingsStore
    + InboundStore
    + CallStore
    + LadderStore
    + IdempotencyStore
    + MissedCallStore
    + MaskingStore
    + InboundCallStore
    + VoiceSessionStore
    + SuppressionStore
    + CampaignStore
    + CampaignSendStore
    + CampaignOutcomeStore
    + JobAdminStore
    + AnalyticsStore
{
    fn backend(&self) -> Backend;
    /// A cheap round trip to the database, for health probes.
    async fn ping(&self) -> Result<()>;
    /// Overdue pending jobs (see [`jobs::OVERDUE_AFTER`]) counted by kind,
    /// so that health can tell jobs late for a handler from jobs this build
    /// has no handler for yet.
    async fn overdue_by_kind(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<(String, u64)>>;
    /// Jobs that went dead since `since`, counted by kind, for health.
    async fn dead_by_kind(&self, since: chrono::DateTime<chrono::Utc>) -> Result<Vec<(String, u64)>>;
    /// The store's own supervised background parts (SQLite's writer
    /// threads), for health; none by default.
    fn components(&self) -> Components {
        Components::new()
    }
    /// Makes the store's writer threads die, as a bug would; for the tests
    /// of their supervision. Nothing by default.
    #[doc(hidden)]
    async fn crash_writers_for_test(&self) {}
    /// Applies pending migrations of this backend.
    async fn migrate(&self) -> Result<()>;
    /// Closes the connection pool and background listeners.
    async fn close(&self);
}

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    /// Apply migrations while connecting.
    pub migrate: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions { max_connections: 10, migrate: true }
    }
}

/// Opens the store a URL names: `sqlite:<path>` or `postgres://user@host/db`.
pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url, options).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// The URL with any password removed, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{}{user}{hidden}{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

pub(crate) fn to_ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords_only() {
        assert_eq!(super::redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(super::redact_url("postgres://postgres@127.0.0.1/test"), "postgres://postgres@127.0.0.1/test");
        assert_eq!(super::redact_url("sqlite:./data/x.db"), "sqlite:./data/x.db");
    }
}
