//! The record of every request the client makes, for the audit trail.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Ok,
    Transient,
    Permanent,
    Ambiguous,
    Invalid,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Transient => "transient",
            Outcome::Permanent => "permanent",
            Outcome::Ambiguous => "ambiguous",
            Outcome::Invalid => "invalid",
        }
    }
}

/// One attempt of one request. Phone numbers are masked; credentials, request
/// bodies and callback URLs (they carry our webhook token) are never
/// included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `calls.connect`, `calls.details`, `sms.send`, `sms.bulksend`,
    /// `account` or `numbers`.
    pub endpoint: &'static str,
    pub method: &'static str,
    /// 1 for the first attempt; 0 when the request was rejected by client-side
    /// validation before any attempt.
    pub attempt: u32,
    /// Absent when no HTTP answer was received.
    pub status: Option<u16>,
    pub outcome: Outcome,
    /// Exotel's `RestException.Code`.
    pub error_code: Option<String>,
    /// Error message (numbers masked), or a short note on success.
    pub message: Option<String>,
    /// The call or SMS sid Exotel returned (or was asked about).
    pub sid: Option<String>,
    pub custom_field: Option<String>,
    /// The first party (`From`, or the looked-up number), masked.
    pub from_masked: Option<String>,
    /// The second party (`To`), masked.
    pub to_masked: Option<String>,
    /// Whether the client will make another attempt after this one.
    pub will_retry: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration: Duration,
}

/// Receives every [`RequestRecord`]. Called inline on the request path, so an
/// implementation must not block (queue the record and write it elsewhere).
pub trait ExotelRecorder: Send + Sync {
    fn record(&self, record: RequestRecord);
}

/// Discards records.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopRecorder;

impl ExotelRecorder for NoopRecorder {
    fn record(&self, _record: RequestRecord) {}
}

/// Keeps records in memory (tests, diagnostics).
#[derive(Debug, Default)]
pub struct MemoryRecorder {
    records: Mutex<Vec<RequestRecord>>,
}

impl MemoryRecorder {
    pub fn new() -> Self {
        MemoryRecorder::default()
    }

    /// A copy of everything recorded so far, in order.
    pub fn records(&self) -> Vec<RequestRecord> {
        self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub fn clear(&self) {
        self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }
}

impl ExotelRecorder for MemoryRecorder {
    fn record(&self, record: RequestRecord) {
        self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(record);
    }
}
