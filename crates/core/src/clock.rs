//! The one notion of "now" every layer takes, injected: the store and the
//! workers, the HTTP layer, the simulators and the provider clients all
//! read time through this trait, so that a test moves one clock and every
//! layer sees the same instant. Core only names it; the implementations
//! that read the system clock live where IO is allowed
//! (`mangwale_store::SystemClock`, `mangwale_store::ManualClock`,
//! `mangwale_sim::SimClock`).

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}
