//! Dependency health, measured by a background probe so that `/health` is
//! instant and a slow dependency cannot slow the health check itself.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use mangwale_providers::jupiter::JupiterClient;
use mangwale_store::{Clock, QueueStats, Store};
use reqwest::Url;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// How often dependencies are probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(10);
/// A probe that takes longer than this counts as down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

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
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Connections {
    pub jupiter: DependencyStatus,
    pub php: DependencyStatus,
    pub database: DependencyStatus,
}

#[derive(Debug, Clone)]
pub struct HealthSnapshot {
    pub connections: Connections,
    pub queue: Option<QueueStats>,
    /// Overdue jobs of kinds this build has no handler for yet (they wait
    /// for the feature that handles them); not counted as late.
    pub awaiting_handler: std::collections::BTreeMap<String, u64>,
}

impl HealthSnapshot {
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
            },
            queue: None,
            awaiting_handler: Default::default(),
        };
        HealthMonitor {
            store,
            clock,
            client,
            jupiter,
            php,
            snapshot: RwLock::new(snapshot),
            handled: RwLock::new(Vec::new()),
        }
    }

    /// The job kinds the workers run; overdue jobs of other kinds are
    /// reported as awaiting a handler, not as late.
    pub fn set_handled_kinds(&self, kinds: &[String]) {
        *self.handled.write().unwrap_or_else(|e| e.into_inner()) = kinds.to_vec();
    }

    pub fn snapshot(&self) -> HealthSnapshot {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Probes every dependency once, concurrently, and publishes the result
    /// (also as metrics).
    pub async fn probe_once(&self) {
        let (database, queue, by_kind, jupiter, php) = tokio::join!(
            self.probe_database(),
            self.store.queue_stats(self.clock.now()),
            self.store.overdue_by_kind(self.clock.now()),
            self.probe_jupiter(),
            self.probe_php(),
        );
        let awaiting_handler = {
            let handled = self.handled.read().unwrap_or_else(|e| e.into_inner());
            by_kind
                .unwrap_or_default()
                .into_iter()
                .filter(|(kind, _)| !handled.is_empty() && !handled.contains(kind))
                .collect()
        };
        let queue = match queue {
            Ok(stats) => {
                metrics::gauge!("mangwale_jobs_pending").set(stats.pending as f64);
                metrics::gauge!("mangwale_jobs_overdue").set(stats.overdue as f64);
                metrics::gauge!("mangwale_jobs_running").set(stats.running as f64);
                metrics::gauge!("mangwale_jobs_dead").set(stats.dead as f64);
                metrics::gauge!("mangwale_job_queue_lag_seconds").set(stats.lag_ms as f64 / 1000.0);
                Some(stats)
            }
            Err(e) => {
                tracing::warn!(error = %e, "queue statistics unavailable");
                None
            }
        };
        for (name, status) in [("database", &database), ("jupiter", &jupiter), ("php", &php)] {
            metrics::gauge!("mangwale_dependency_up", "dependency" => name).set(if status.connected {
                1.0
            } else {
                0.0
            });
            if let Some(ms) = status.latency_ms {
                metrics::gauge!("mangwale_dependency_latency_seconds", "dependency" => name).set(ms as f64 / 1000.0);
            }
        }
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) =
            HealthSnapshot { connections: Connections { jupiter, php, database }, queue, awaiting_handler };
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
