//! The Mangwale Exotel service: the communications backbone between Exotel,
//! Jupiter, vendors, riders and customers.
//!
//! [`prepare`] turns a [`Config`] into the application state (store, keys,
//! health monitor); [`serve`] runs the HTTP server, the job workers and the
//! health probe until shutdown. The binary in `main.rs` only parses the
//! command line.

pub mod app;
pub mod auth;
pub mod calls;
pub mod campaigns;
pub mod cli;
pub mod comms;
pub mod config;
pub mod error;
pub mod event_stream;
pub mod exotel;
pub mod exotel_params;
pub mod extract;
#[doc(hidden)]
pub mod fuzz;
pub mod health;
pub mod idempotency;
pub mod inbound;
pub mod jupiter;
pub mod maintenance;
pub mod masking;
pub mod routes;
pub mod speech;
pub mod state;
pub mod telemetry;
pub mod voice;
pub mod voice_fallback;
pub mod voicebot;

use std::sync::Arc;

use mangwale_store::{
    Backend, Clock, Components, ConnectOptions, InboundWriter, RestartBudget, Store, StoreError, Worker, WorkerConfig,
};
use rand::Rng;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{Config, ConfigError, Mode};
pub use state::AppState;

use crate::auth::Credentials;
use crate::config::Secret;
use crate::health::HealthMonitor;
use crate::telemetry::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("database ({url}): {source}")]
    Store { url: String, source: StoreError },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Exotel(#[from] crate::exotel::ExotelSetupError),
    #[error("{0}")]
    Jupiter(#[from] crate::jupiter::JupiterSetupError),
    #[error("{0}")]
    Channels(#[from] crate::comms::channels::ChannelSetupError),
}

/// What tests (and demos) may change about how the service is assembled.
#[derive(Default)]
pub struct PrepareOptions {
    /// The sandbox Exotel simulator's configuration (a manual clock, scripts,
    /// templates); the default runs on the system clock.
    pub exotel_sim: Option<mangwale_sim::exotel::SimConfig>,
    /// The sandbox WhatsApp simulator's configuration.
    pub whatsapp_sim: Option<mangwale_sim::whatsapp::WhatsAppSimConfig>,
    /// The sandbox push (FCM) simulator's configuration.
    pub push_sim: Option<mangwale_sim::push::PushSimConfig>,
    /// The Exotel client's own retries of a request (real-time waits);
    /// tests on a manual clock shorten them.
    pub exotel_retry: Option<mangwale_providers::exotel::client::RetryPolicy>,
    /// Speech engines to use instead of those the configuration chooses.
    pub speech: Option<crate::speech::Speech>,
    /// The live feed's heartbeat interval (default 15 s); tests shorten it.
    pub event_heartbeat: Option<std::time::Duration>,
}

/// Connects the store (applying migrations), settles credentials and builds
/// the application state.
pub async fn prepare(config: Config, clock: Arc<dyn Clock>) -> Result<AppState, StartupError> {
    prepare_with(config, clock, PrepareOptions::default()).await
}

/// [`prepare`] with options.
pub async fn prepare_with(
    config: Config,
    clock: Arc<dyn Clock>,
    options: PrepareOptions,
) -> Result<AppState, StartupError> {
    let store_error = |source| StartupError::Store { url: mangwale_store::redact_url(&config.database_url), source };
    let store = mangwale_store::connect(&config.database_url, &ConnectOptions::default()).await.map_err(store_error)?;
    let credentials = settle_credentials(&config, store.as_ref()).await.map_err(store_error)?;
    let jupiter = Arc::new(crate::jupiter::Jupiter::start(&config).await?);
    let voice_fallback = crate::voice_fallback::VoiceFallback::from_config(&config);
    let health = HealthMonitor::new(
        store.clone(),
        clock.clone(),
        jupiter.client.clone(),
        jupiter.jupiter_url.clone(),
        jupiter.php_url.clone(),
    )
    .with_voice_fallback(voice_fallback.clone());
    // SQLite serialises writes anyway: one writer groups them best.
    let writers = if store.backend() == Backend::Sqlite { 1 } else { 4 };
    let inbound = InboundWriter::spawn(store.clone(), writers, 256);
    let exotel = crate::exotel::Exotel::start(
        &config,
        store.clone(),
        &credentials.webhook_token,
        options.exotel_sim,
        options.exotel_retry,
    )
    .await?;
    masking::log_pool(&config);
    let channels = crate::comms::channels::Channels::start(&config, options.whatsapp_sim, options.push_sim).await?;
    let speech = match options.speech {
        Some(speech) => speech,
        None => crate::speech::Speech::start(&config, exotel.sim.as_deref()).await,
    };
    let speech = Arc::new(speech);
    let health = health.with_speech(speech.clone());
    let voice = Arc::new(crate::voice::VoiceServices::new());
    let campaigns = crate::campaigns::Campaigns::new(&config.campaign_templates, &config.campaigns);
    let events = event_stream::EventHub::new(store.clone(), options.event_heartbeat.unwrap_or(event_stream::HEARTBEAT));
    Ok(AppState::new(state::Services {
        events,
        config: Arc::new(config),
        channels,
        inbound,
        exotel,
        jupiter,
        store,
        clock,
        credentials: Arc::new(credentials),
        health: Arc::new(health),
        metrics: Metrics::global(),
        callers: crate::inbound::caller::CallerCache::default(),
        voice_fallback,
        speech,
        voice,
        campaigns,
    }))
}

/// In sandbox mode, missing keys are generated once and kept in the store,
/// so the service never runs open and the keys survive restarts.
async fn settle_credentials(config: &Config, store: &dyn Store) -> Result<Credentials, StoreError> {
    let api_keys = if config.api_keys.is_empty() {
        vec![Secret::new(store.setting_get_or_insert("sandbox.api_key", &random_key("mwk_")).await?)]
    } else {
        config.api_keys.clone()
    };
    let webhook_token = match &config.exotel_webhook_token {
        Some(token) => token.clone(),
        None => Secret::new(store.setting_get_or_insert("sandbox.webhook_token", &random_key("mwt_")).await?),
    };
    // The console's session keys derive from it (see `auth`): one value for
    // every replica and every restart.
    let console_secret = Secret::new(store.setting_get_or_insert("console.session_secret", &random_key("mwc_")).await?);
    Ok(Credentials { api_keys, webhook_token, console_secret })
}

fn random_key(prefix: &str) -> String {
    let bytes: [u8; 20] = rand::rng().random();
    format!("{prefix}{}", hex::encode(bytes))
}

/// Builds the worker with every job handler of this build registered.
pub fn build_worker(state: &AppState) -> Worker {
    let mut worker = Worker::new(state.store.clone(), state.clock.clone(), WorkerConfig::default());
    maintenance::register(&mut worker, state);
    calls::register(&mut worker, state);
    jupiter::outbox::register(&mut worker, state);
    jupiter::resolve::register(&mut worker, state);
    comms::steps::register(&mut worker, state);
    comms::jobs::register(&mut worker, state);
    inbound::missed::register(&mut worker, state);
    masking::jobs::register(&mut worker, state);
    comms::pickup::register(&mut worker, state);
    worker
}

/// What [`serve_with`] runs besides the HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Run the job workers. Tests that drive workers step by step turn this
    /// off so that no background worker races them.
    pub workers: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions { workers: true }
    }
}

/// Serves HTTP on `listener` and runs the workers and the health probe until
/// `shutdown` is cancelled. In-flight requests finish; the workers finish or
/// release their leases; then the store is closed.
pub async fn serve(state: AppState, listener: TcpListener, shutdown: CancellationToken) -> Result<(), StartupError> {
    serve_with(state, listener, shutdown, ServeOptions::default()).await
}

/// [`serve`] with options.
pub async fn serve_with(
    state: AppState,
    listener: TcpListener,
    shutdown: CancellationToken,
    options: ServeOptions,
) -> Result<(), StartupError> {
    maintenance::schedule(&state).await.map_err(|source| StartupError::Store {
        url: mangwale_store::redact_url(&state.config.database_url),
        source,
    })?;
    let worker = Arc::new(build_worker(&state));
    state.health.set_handled_kinds(worker.kinds());
    state.health.probe_once().await;

    let background = CancellationToken::new();
    let components = state.health.components().clone();
    let worker_task = options.workers.then(|| {
        let (worker, stop) = (worker.clone(), background.clone());
        supervise(WORKER, components.clone(), background.clone(), move || {
            let (worker, stop) = (worker.clone(), stop.clone());
            async move { worker.run(stop).await }
        })
    });
    let sender_task = options.workers.then(|| {
        let (sender, stop) = (Arc::new(campaigns::sender::CampaignSender::new(&state)), background.clone());
        supervise(CAMPAIGN_SENDER, components.clone(), background.clone(), move || {
            let (sender, stop) = (sender.clone(), stop.clone());
            async move { sender.run(stop).await }
        })
    });
    let probe_task = {
        let (health, stop) = (state.health.clone(), background.clone());
        supervise(HEALTH_PROBE, components, background.clone(), move || {
            let (health, stop) = (health.clone(), stop.clone());
            async move { health.run(stop).await }
        })
    };

    // Live-feed streams never end on their own: close them first, or the
    // graceful shutdown would wait on them.
    let events_closer = {
        let (events, shutdown) = (state.events.clone(), shutdown.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            events.close();
        })
    };
    let app = app::build(state.clone());
    tracing::info!(addr = %listener.local_addr()?, mode = state.config.mode.as_str(), "listening");
    let served = axum::serve(without_nagle(listener), app).with_graceful_shutdown(shutdown.cancelled_owned()).await;

    background.cancel();
    events_closer.abort();
    // The supervisors end once their task does; a panic is theirs to report.
    if let Some(task) = worker_task {
        let _ = task.await;
    }
    if let Some(task) = sender_task {
        let _ = task.await;
    }
    let _ = probe_task.await;
    state.store.close().await;
    tracing::info!("stopped");
    Ok(served?)
}

/// `listener` with TCP_NODELAY on every connection it accepts. The Voicebot
/// stream answers in `media` messages of 100 ms of audio, each a few
/// kilobytes: with Nagle's algorithm the last partial segment of one waits
/// for the peer's acknowledgement of the previous (up to its delayed-ACK
/// time, 40 ms on Linux), which the caller hears as jitter. The other
/// routes answer once per request and lose nothing by it.
pub fn without_nagle(
    listener: TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(error = %e, "TCP_NODELAY could not be set on an accepted connection");
        }
    })
}

/// The job worker's name in `/health` `components`.
pub const WORKER: &str = "worker";
/// The campaign sender's name in `/health` `components`.
pub const CAMPAIGN_SENDER: &str = "campaign-sender";
/// The health probe's name in `/health` `components`.
pub const HEALTH_PROBE: &str = "health-probe";

/// Runs the task `start` makes, and a new one whenever it panics, within a
/// [`RestartBudget`] (each restart logged and counted in
/// `mangwale_component_restarts_total`). Past the budget the component is
/// marked failed, and `/health` answers 503 naming it. A task that returns
/// has finished its work (shutdown); so has one that panics after `stop`.
pub fn supervise<F, Fut>(
    name: &'static str,
    components: Components,
    stop: CancellationToken,
    start: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    components.register(name);
    tokio::spawn(async move {
        let mut budget = RestartBudget::default();
        loop {
            let error = match tokio::spawn(start()).await {
                Ok(()) => return,
                Err(e) if e.is_panic() => {
                    format!("panicked: {}", mangwale_store::supervise::panic_message(e.into_panic().as_ref()))
                }
                Err(e) => e.to_string(),
            };
            if stop.is_cancelled() {
                return;
            }
            if !budget.allow(std::time::Instant::now()) {
                components.failed(name, &error);
                return;
            }
            components.restarted(name, &error);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(budget.pause()) => {}
            }
        }
    })
}

/// [`prepare`] and [`serve`] with the system clock.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> Result<(), StartupError> {
    let state = prepare(config, Arc::new(mangwale_store::SystemClock)).await?;
    serve(state, listener, shutdown).await
}

#[cfg(test)]
mod tests {
    use axum::serve::Listener;

    use super::*;

    #[tokio::test]
    async fn accepted_connections_go_without_nagle() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut listener = without_nagle(listener);
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, from) = listener.accept().await;
        assert_eq!(from, client.local_addr().unwrap());
        assert!(accepted.nodelay().unwrap(), "the server's side of the connection sends at once");
    }
}
