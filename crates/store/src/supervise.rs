//! Supervision of the long-running parts of the service (the job worker, the
//! health probe, SQLite's writer threads): a part that dies is restarted,
//! with a log line and a metric, and one that keeps dying (or cannot start
//! again) is reported as failed, so that `/health` can name it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Restarts allowed within [`RESTART_WINDOW`]; one more and the component is
/// given up as failed. A part that dies this often is broken, not unlucky,
/// and restarting it in a loop would only hide that.
pub const MAX_RESTARTS: u32 = 5;
/// See [`MAX_RESTARTS`].
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// What is known about one supervised component.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentState {
    /// Restarts since the process started.
    pub restarts: u64,
    /// Why it last died.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Given up: it is not running and will not be restarted.
    pub failed: bool,
}

/// The states of a set of supervised components, shared between their
/// supervisors and whoever reports health. Cloning shares the set.
#[derive(Debug, Clone, Default)]
pub struct Components {
    inner: Arc<Mutex<BTreeMap<String, ComponentState>>>,
}

impl Components {
    pub fn new() -> Self {
        Components::default()
    }

    fn with<R>(&self, name: &str, f: impl FnOnce(&mut ComponentState) -> R) -> R {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(name.to_string()).or_default())
    }

    /// Lists `name` as running.
    pub fn register(&self, name: &str) {
        self.with(name, |_| ());
        metrics::gauge!("mangwale_component_failed", "component" => name.to_string()).set(0.0);
    }

    /// Records that `name` died of `error` and is being restarted.
    pub fn restarted(&self, name: &str, error: &str) {
        let restarts = self.with(name, |s| {
            s.restarts += 1;
            s.last_error = Some(error.to_string());
            s.restarts
        });
        tracing::error!(component = name, restarts, error, "component died; restarting it");
        metrics::counter!("mangwale_component_restarts_total", "component" => name.to_string()).increment(1);
    }

    /// Records that `name` died of `error` and will not be restarted.
    pub fn failed(&self, name: &str, error: &str) {
        self.with(name, |s| {
            s.failed = true;
            s.last_error = Some(error.to_string());
        });
        tracing::error!(component = name, error, "component died and cannot be restarted; the service is unhealthy");
        metrics::gauge!("mangwale_component_failed", "component" => name.to_string()).set(1.0);
    }

    pub fn snapshot(&self) -> BTreeMap<String, ComponentState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The components given up as failed.
    pub fn failed_names(&self) -> Vec<String> {
        self.snapshot().into_iter().filter(|(_, s)| s.failed).map(|(name, _)| name).collect()
    }
}

/// Counts restarts in a sliding window (see [`MAX_RESTARTS`]).
#[derive(Debug)]
pub struct RestartBudget {
    max: u32,
    window: Duration,
    recent: VecDeque<Instant>,
}

impl Default for RestartBudget {
    fn default() -> Self {
        RestartBudget::new(MAX_RESTARTS, RESTART_WINDOW)
    }
}

impl RestartBudget {
    pub fn new(max: u32, window: Duration) -> Self {
        RestartBudget { max, window, recent: VecDeque::new() }
    }

    /// Whether one more restart at `now` is allowed; counts it if so.
    pub fn allow(&mut self, now: Instant) -> bool {
        while self.recent.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.max as usize {
            return false;
        }
        self.recent.push_back(now);
        true
    }

    /// A short pause before the `n`th restart in the window (50 ms, doubling),
    /// so that a part failing at once does not spin.
    pub fn pause(&self) -> Duration {
        Duration::from_millis(50) * (1u32 << self.recent.len().min(6))
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

/// Runs `body` on a thread named `name`, and starts it again on a new thread
/// whenever it panics or returns an error (it could not start), within the
/// [`RestartBudget`]. `body` returning `Ok` is a normal end (its channel
/// closed). When the budget is spent the component is marked failed and
/// `body` is dropped, which closes whatever channel it was serving, so that
/// callers get an error instead of waiting.
pub(crate) fn supervise_thread<F>(name: &str, components: Components, body: F) -> std::io::Result<()>
where
    F: Fn() -> Result<(), String> + Send + Sync + 'static,
{
    components.register(name);
    let body = Arc::new(body);
    let start = {
        let name = name.to_string();
        move |body: Arc<F>| std::thread::Builder::new().name(name.clone()).spawn(move || body())
    };
    let first = start(body.clone())?;
    let name = name.to_string();
    std::thread::Builder::new().name(format!("{name}-supervisor")).spawn(move || {
        let mut running = first;
        let mut budget = RestartBudget::default();
        loop {
            let error = match running.join() {
                Ok(Ok(())) => return,
                Ok(Err(error)) => error,
                Err(panic) => format!("panicked: {}", panic_message(panic.as_ref())),
            };
            if !budget.allow(Instant::now()) {
                components.failed(&name, &error);
                return;
            }
            components.restarted(&name, &error);
            std::thread::sleep(budget.pause());
            running = match start(body.clone()) {
                Ok(handle) => handle,
                Err(e) => {
                    components.failed(&name, &format!("{error}; the new thread could not start: {e}"));
                    return;
                }
            };
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_a_few_restarts_per_window() {
        let mut budget = RestartBudget::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(budget.allow(t0));
        assert!(budget.allow(t0 + Duration::from_secs(1)));
        assert!(budget.allow(t0 + Duration::from_secs(2)));
        assert!(!budget.allow(t0 + Duration::from_secs(3)));
        // The first restart has left the window.
        assert!(budget.allow(t0 + Duration::from_secs(61)));
    }

    #[test]
    fn a_thread_that_panics_is_restarted_and_one_that_keeps_panicking_is_given_up() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let components = Components::new();
        let runs = Arc::new(AtomicU32::new(0));
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let done_tx = Mutex::new(done_tx);
        supervise_thread("flaky", components.clone(), {
            let runs = runs.clone();
            move || {
                // Dies twice, then ends normally.
                if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("boom");
                }
                let _ = done_tx.lock().unwrap().send(());
                Ok(())
            }
        })
        .unwrap();
        done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let state = components.snapshot()["flaky"].clone();
        assert_eq!(state.restarts, 2);
        assert!(!state.failed);
        assert_eq!(state.last_error.as_deref(), Some("panicked: boom"));

        supervise_thread("broken", components.clone(), || Err("cannot open".to_string())).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !components.snapshot()["broken"].failed {
            assert!(Instant::now() < deadline, "never given up");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(components.failed_names(), vec!["broken".to_string()]);
        assert_eq!(components.snapshot()["broken"].restarts, u64::from(MAX_RESTARTS));
    }
}
