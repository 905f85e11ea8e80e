//! What every handler can reach.

use std::sync::Arc;

use mangwale_store::{Clock, InboundWriter, Store};

use crate::auth::Credentials;
use crate::config::Config;
use crate::exotel::Exotel;
use crate::health::HealthMonitor;
use crate::telemetry::Metrics;

/// Shared by every request; cloning it is one reference-count increment.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

pub struct Services {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    /// The group-commit writer of the webhook path.
    pub inbound: InboundWriter,
    pub exotel: Exotel,
    pub jupiter: Arc<crate::jupiter::Jupiter>,
    /// App push and WhatsApp (clients, and the simulators in sandbox mode).
    pub channels: crate::comms::channels::Channels,
    pub clock: Arc<dyn Clock>,
    pub credentials: Arc<Credentials>,
    pub health: Arc<HealthMonitor>,
    pub metrics: Metrics,
    /// Inbound callers recently identified (a cache; the call's record is
    /// in the store).
    pub callers: crate::inbound::caller::CallerCache,
    /// The voice dialog's NLU/LLM fallback; `None` when neither `NLU_URL`
    /// nor `LLM_URL` is set.
    pub voice_fallback: Option<Arc<crate::voice_fallback::VoiceFallback>>,
    /// The speech engines (recogniser, synthesiser), either possibly absent.
    pub speech: Arc<crate::speech::Speech>,
    /// Voice ordering's catalogs and its fallback hook.
    pub voice: Arc<crate::voice::VoiceServices>,
    /// Wakes the live feed's open streams (`/comms/events/stream`).
    pub events: Arc<crate::event_stream::EventHub>,
    /// Campaign templates and default pacing.
    pub campaigns: Arc<crate::campaigns::Campaigns>,
}
