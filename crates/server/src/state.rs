//! What every handler can reach.

use std::sync::Arc;

use mangwale_store::{Clock, Store};

use crate::auth::Credentials;
use crate::config::Config;
use crate::health::HealthMonitor;
use crate::telemetry::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub credentials: Arc<Credentials>,
    pub health: Arc<HealthMonitor>,
    pub metrics: Metrics,
}
