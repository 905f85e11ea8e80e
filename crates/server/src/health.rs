//! Dependency health, measured by a background probe so that `/health` is
//! instant and a slow dependency cannot slow the health check itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use mangwale_providers::fallback::FallbackError;
use mangwale_providers::jupiter::JupiterClient;
use mangwale_store::{Clock, ComponentState, Components, QueueStats, Store};
use reqwest::Url;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::speech::{Engine, Speech};
use crate::voice_fallback::VoiceFallback;

/// A speech engine's pending `check()`.
type BoxedCheck<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), mangwale_voice::speech::SpeechError>> + Send + 'a>>;

/// How often dependencies are probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(10);
/// A probe that takes longer than this counts as down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Jobs that went dead within this long make the status degraded. Dead jobs
/// are kept (for audit) and nothing revives them, so counting all of them
/// would leave the service degraded forever after one; a day is long enough
/// for someone to look.
pub const DEAD_JOBS_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// The last probe of one dependency.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DependencyStatus {
    pub connected: bool,
    pub latency_ms: Option<u64>,
    /// The incumbent's name for `latency_ms`, kept for existing dashboards.
    pub latency: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub checked_at: Option<DateTime<Utc>>,
    /// The engine behind a speech dependency ("asr-http", "whisper",
    /// "espeak-ng", …), so a degraded status names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
}

impl DependencyStatus {
    fn not_probed(url: Option<&Url>) -> Self {
        DependencyStatus {
            connected: false,
            latency_ms: None,
            latency: None,
            url: url.map(Url::to_string),
            error: Some(if url.is_some() { "not probed yet" } else { "not configured" }.to_string()),
            checked_at: None,
            backend: None,
        }
    }

    fn measured(url: Option<&Url>, outcome: Result<(), String>, latency: Duration, at: DateTime<Utc>) -> Self {
        let ms = latency.as_millis() as u64;
        let connected = outcome.is_ok();
        DependencyStatus {
            connected,
            latency_ms: connected.then_some(ms),
            latency: connected.then_some(ms),
            url: url.map(Url::to_string),
            error: outcome.err(),
            checked_at: Some(at),
            backend: None,
        }
    }

    /// A speech engine's status before its first probe.
    fn engine_not_probed(engine: &Engine) -> Self {
        DependencyStatus {
            backend: Some(engine.backend.clone()),
            error: Some(engine.unavailable.clone().unwrap_or_else(|| "not probed yet".to_string())),
            ..DependencyStatus::not_probed(engine.url.as_ref())
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Connections {
    pub jupiter: DependencyStatus,
    pub php: DependencyStatus,
    pub database: DependencyStatus,
    /// The voice fallback's LLM (`LLM_URL`), when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<DependencyStatus>,
    /// The voice fallback's NLU service (`NLU_URL`), when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nlu: Option<DependencyStatus>,
    /// The speech recogniser, when one is configured or was found
    /// (`backend` names it); one that could not start is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asr: Option<DependencyStatus>,
    /// The speech synthesiser, likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tts: Option<DependencyStatus>,
}

impl Connections {
    /// The optional dependencies that are configured and not answering.
    fn optional_down(&self) -> bool {
        [&self.llm, &self.nlu, &self.asr, &self.tts].into_iter().flatten().any(|s| !s.connected)
    }
}

#[derive(Debug, Clone)]
pub struct HealthSnapshot {
    pub connections: Connections,
    pub queue: Option<QueueStats>,
    /// Overdue jobs of kinds this build has no handler for yet (they wait
    /// for the feature that handles them); not counted as late.
    pub awaiting_handler: std::collections::BTreeMap<String, u64>,
    /// Jobs that went dead within [`DEAD_JOBS_WINDOW`], by kind.
    pub dead_by_kind: std::collections::BTreeMap<String, u64>,
    /// The supervised background parts (worker, health probe, SQLite's
    /// writer threads), read when the snapshot is taken, not at the last
    /// probe: the probe itself may be what died.
    pub components: std::collections::BTreeMap<String, ComponentState>,
}

/// The overall status `/health` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Working, with something to look at: a dependency down, late or
    /// recently dead jobs.
    Degraded,
    /// Not working: the database is unreachable, or a background part died
    /// and could not be restarted (answered with 503).
    Down,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Degraded => "degraded",
            Verdict::Down => "down",
        }
    }
}

impl HealthSnapshot {
    /// The background parts given up as failed.
    pub fn failed_components(&self) -> Vec<String> {
        self.components.iter().filter(|(_, s)| s.failed).map(|(name, _)| name.clone()).collect()
    }

    pub fn verdict(&self) -> Verdict {
        let c = &self.connections;
        if !c.database.connected || !self.failed_components().is_empty() {
            Verdict::Down
        } else if !c.jupiter.connected
            || !c.php.connected
            || c.optional_down()
            || self.late_jobs() > 0
            || !self.dead_by_kind.is_empty()
        {
            Verdict::Degraded
        } else {
            Verdict::Ok
        }
    }

    /// Overdue jobs that a handler of this build should have run.
    pub fn late_jobs(&self) -> u64 {
        let waiting: u64 = self.awaiting_handler.values().sum();
        self.queue.map(|q| q.overdue.saturating_sub(waiting)).unwrap_or(0)
    }
}

pub struct HealthMonitor {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    client: JupiterClient,
    jupiter: Url,
    php: Option<Url>,
    snapshot: RwLock<HealthSnapshot>,
    /// The job kinds the workers of this build run.
    handled: RwLock<Vec<String>>,
    /// The service's own supervised tasks (worker, health probe).
    components: Components,
    /// The voice dialog's NLU/LLM fallback, probed when configured.
    voice_fallback: Option<Arc<VoiceFallback>>,
    /// The speech engines, probed with their own `check()`.
    speech: Option<Arc<Speech>>,
    /// Probes begun, and the newest whose findings are published.
    probes_started: AtomicU64,
    probes_published: AtomicU64,
}

impl HealthMonitor {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        client: JupiterClient,
        jupiter: Url,
        php: Option<Url>,
    ) -> Self {
        let snapshot = HealthSnapshot {
            connections: Connections {
                jupiter: DependencyStatus::not_probed(Some(&jupiter)),
                php: DependencyStatus::not_probed(php.as_ref()),
                database: DependencyStatus::not_probed(None),
                llm: None,
                nlu: None,
                asr: None,
                tts: None,
            },
            queue: None,
            awaiting_handler: Default::default(),
            dead_by_kind: Default::default(),
            components: Default::default(),
        };
        HealthMonitor {
            store,
            clock,
            client,
            jupiter,
            php,
            snapshot: RwLock::new(snapshot),
            handled: RwLock::new(Vec::new()),
            components: Components::new(),
            voice_fallback: None,
            speech: None,
            probes_started: AtomicU64::new(0),
            probes_published: AtomicU64::new(0),
        }
    }

    /// Probes the speech engines too: each one chosen is a dependency
    /// (`connections.asr`, `connections.tts`) with its live latency.
    pub fn with_speech(mut self, speech: Arc<Speech>) -> Self {
        let snapshot = self.snapshot.get_mut().unwrap_or_else(|e| e.into_inner());
        snapshot.connections.asr = speech.asr.as_ref().map(DependencyStatus::engine_not_probed);
        snapshot.connections.tts = speech.tts.as_ref().map(DependencyStatus::engine_not_probed);
        self.speech = Some(speech);
        self
    }

    /// Probes the voice fallback's LLM and NLU service too, when configured.
    pub fn with_voice_fallback(mut self, fallback: Option<Arc<VoiceFallback>>) -> Self {
        if let Some(fallback) = &fallback {
            let snapshot = self.snapshot.get_mut().unwrap_or_else(|e| e.into_inner());
            snapshot.connections.llm = fallback.llm_url().map(|u| DependencyStatus::not_probed(Some(u)));
            snapshot.connections.nlu = fallback.nlu_url().map(|u| DependencyStatus::not_probed(Some(u)));
        }
        self.voice_fallback = fallback;
        self
    }

    /// The registry the service's own supervised tasks report to.
    pub fn components(&self) -> &Components {
        &self.components
    }

    /// The job kinds the workers run; overdue jobs of other kinds are
    /// reported as awaiting a handler, not as late.
    pub fn set_handled_kinds(&self, kinds: &[String]) {
        *self.handled.write().unwrap_or_else(|e| e.into_inner()) = kinds.to_vec();
    }

    pub fn snapshot(&self) -> HealthSnapshot {
        let mut snapshot = self.snapshot.read().unwrap_or_else(|e| e.into_inner()).clone();
        snapshot.components = self.components.snapshot();
        snapshot.components.extend(self.store.components().snapshot());
        snapshot
    }

    /// Probes every dependency once, concurrently, and publishes the result
    /// (also as metrics).
    pub async fn probe_once(&self) {
        // Probes may overlap (the start-up probe and a test's, the periodic
        // one and a slow engine check): an older probe finishing last must
        // not overwrite a newer one's findings.
        let generation = self.probes_started.fetch_add(1, Ordering::SeqCst) + 1;
        let (database, queue, by_kind, dead, jupiter, php, (llm, nlu), (asr, tts)) = tokio::join!(
            self.probe_database(),
            self.store.queue_stats(self.clock.now()),
            self.store.overdue_by_kind(self.clock.now()),
            self.store.dead_by_kind(self.clock.now() - DEAD_JOBS_WINDOW),
            self.probe_jupiter(),
            self.probe_php(),
            self.probe_voice_fallback(),
            self.probe_speech(),
        );
        let awaiting_handler = {
            let handled = self.handled.read().unwrap_or_else(|e| e.into_inner());
            by_kind
                .unwrap_or_default()
                .into_iter()
                .filter(|(kind, _)| !handled.is_empty() && !handled.contains(kind))
                .collect()
        };
        let dead_by_kind = match dead {
            Ok(dead) => dead.into_iter().collect(),
            Err(e) => {
                tracing::warn!(error = %e, "dead job counts unavailable");
                Default::default()
            }
        };
        let queue = match queue {
            Ok(stats) => {
                set_queue_gauges(&stats);
                Some(stats)
            }
            Err(e) => {
                tracing::warn!(error = %e, "queue statistics unavailable");
                None
            }
        };
        let optional = [("llm", llm.as_ref()), ("nlu", nlu.as_ref()), ("asr", asr.as_ref()), ("tts", tts.as_ref())];
        let probed = [("database", Some(&database)), ("jupiter", Some(&jupiter)), ("php", Some(&php))];
        for (name, status) in probed.into_iter().chain(optional).filter_map(|(n, s)| Some((n, s?))) {
            metrics::gauge!("mangwale_dependency_up", "dependency" => name).set(if status.connected {
                1.0
            } else {
                0.0
            });
            if let Some(ms) = status.latency_ms {
                metrics::gauge!("mangwale_dependency_latency_seconds", "dependency" => name).set(ms as f64 / 1000.0);
            }
        }
        let mut snapshot = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
        if self.probes_published.fetch_max(generation, Ordering::SeqCst) > generation {
            return;
        }
        *snapshot = HealthSnapshot {
            connections: Connections { jupiter, php, database, llm, nlu, asr, tts },
            queue,
            awaiting_handler,
            dead_by_kind,
            components: Default::default(),
        };
    }

    /// Counts the queue again now (not at the next probe) after an operator
    /// changed it: the job gauges and the snapshot's queue and dead jobs.
    /// Other replicas catch up at their next probe.
    pub async fn refresh_queue(&self) {
        let now = self.clock.now();
        let (queue, dead) = tokio::join!(self.store.queue_stats(now), self.store.dead_by_kind(now - DEAD_JOBS_WINDOW));
        let (Ok(queue), Ok(dead)) = (queue, dead) else {
            tracing::warn!("queue statistics unavailable; they refresh at the next probe");
            return;
        };
        set_queue_gauges(&queue);
        let mut snapshot = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
        snapshot.queue = Some(queue);
        snapshot.dead_by_kind = dead.into_iter().collect();
    }

    /// Probes every [`PROBE_INTERVAL`] until shutdown.
    pub async fn run(&self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(PROBE_INTERVAL) => self.probe_once().await,
            }
        }
    }

    async fn probe_database(&self) -> DependencyStatus {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(PROBE_TIMEOUT, self.store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_string()),
        };
        DependencyStatus::measured(None, outcome, started.elapsed(), self.clock.now())
    }

    /// Jupiter's `/health` through the production client (its headers, its
    /// timeout), bounded by [`PROBE_TIMEOUT`].
    async fn probe_jupiter(&self) -> DependencyStatus {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(PROBE_TIMEOUT, self.client.health_jupiter()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.message()),
            Err(_) => Err("timed out".to_string()),
        };
        DependencyStatus::measured(Some(&self.jupiter), outcome, started.elapsed(), self.clock.now())
    }

    /// The LLM (`GET /v1/models` lists the model) and the NLU service
    /// (`GET /health`), each when configured.
    async fn probe_voice_fallback(&self) -> (Option<DependencyStatus>, Option<DependencyStatus>) {
        let Some(fallback) = &self.voice_fallback else { return (None, None) };
        let measure = |url: Option<&Url>, started: Instant, outcome: Option<Result<Duration, String>>| {
            outcome.map(|o| DependencyStatus::measured(url, o.map(|_| ()), started.elapsed(), self.clock.now()))
        };
        let ((llm_started, llm), (nlu_started, nlu)) =
            tokio::join!(timed(fallback.llm_health()), timed(fallback.nlu_health()));
        (measure(fallback.llm_url(), llm_started, llm), measure(fallback.nlu_url(), nlu_started, nlu))
    }

    /// Each speech engine's `check()` (the ASR server's `/health`, the
    /// OpenAI model, `espeak-ng --version`), bounded by [`PROBE_TIMEOUT`];
    /// an engine that could not start stays down with its reason.
    async fn probe_speech(&self) -> (Option<DependencyStatus>, Option<DependencyStatus>) {
        let Some(speech) = &self.speech else { return (None, None) };
        let asr_check = speech.recognizer.as_ref().map(|r| r.check());
        let tts_check = speech.synthesizer.as_ref().map(|s| s.check());
        tokio::join!(
            self.probe_engine(speech.asr.as_ref(), asr_check),
            self.probe_engine(speech.tts.as_ref(), tts_check)
        )
    }

    async fn probe_engine(&self, engine: Option<&Engine>, check: Option<BoxedCheck<'_>>) -> Option<DependencyStatus> {
        let engine = engine?;
        let Some(check) = check else { return Some(DependencyStatus::engine_not_probed(engine)) };
        let started = Instant::now();
        let outcome = match tokio::time::timeout(PROBE_TIMEOUT, check).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_string()),
        };
        let measured = DependencyStatus::measured(engine.url.as_ref(), outcome, started.elapsed(), self.clock.now());
        Some(DependencyStatus { backend: Some(engine.backend.clone()), ..measured })
    }

    /// The PHP site: any HTTP answer proves it is reachable.
    async fn probe_php(&self) -> DependencyStatus {
        let Some(php) = &self.php else {
            return DependencyStatus::not_probed(None);
        };
        let started = Instant::now();
        let outcome = match tokio::time::timeout(PROBE_TIMEOUT, self.client.health_php()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.message()),
            Err(_) => Err("timed out".to_string()),
        };
        DependencyStatus::measured(Some(php), outcome, started.elapsed(), self.clock.now())
    }
}

fn set_queue_gauges(stats: &QueueStats) {
    metrics::gauge!("mangwale_jobs_pending").set(stats.pending as f64);
    metrics::gauge!("mangwale_jobs_overdue").set(stats.overdue as f64);
    metrics::gauge!("mangwale_jobs_running").set(stats.running as f64);
    metrics::gauge!("mangwale_jobs_dead").set(stats.dead as f64);
    metrics::gauge!("mangwale_job_queue_lag_seconds").set(stats.lag_ms as f64 / 1000.0);
}

/// Runs an optional probe within [`PROBE_TIMEOUT`]: when it started, and
/// `None` when there was nothing to probe.
async fn timed(
    probe: impl std::future::Future<Output = Option<Result<Duration, FallbackError>>>,
) -> (Instant, Option<Result<Duration, String>>) {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Some(Ok(latency))) => Some(Ok(latency)),
        Ok(Some(Err(e))) => Some(Err(e.to_string())),
        Ok(None) => None,
        Err(_) => Some(Err("timed out".to_string())),
    };
    (started, outcome)
}
