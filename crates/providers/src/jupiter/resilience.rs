//! The client's read cache and circuit breaker. Both are process-local by
//! nature: a cache entry is a copy Jupiter can give again, and a breaker is
//! this process's view of a backend's health.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A map whose entries expire `ttl` after they were written.
pub(crate) struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        TtlCache { ttl, capacity, entries: Mutex::new(HashMap::new()) }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.lock();
        entries.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    pub fn put(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= self.capacity {
                // Everything is fresh and the cache is full: start over
                // rather than grow without bound.
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    pub fn invalidate(&self, key: &K) {
        self.lock().remove(key);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// When the breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive transient failures that open the circuit.
    pub failure_threshold: u32,
    /// How long an open circuit refuses requests before one probe may pass.
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig { failure_threshold: 5, open_for: Duration::from_secs(15) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is in flight; everyone else is refused until it returns.
    HalfOpen,
}

/// A circuit breaker: after `failure_threshold` consecutive transient
/// failures, requests fail at once for `open_for`, so that an outage of
/// Jupiter makes webhooks and workers fail fast instead of each waiting for
/// its own timeout. Then a single request probes; its success closes the
/// circuit, its failure opens it again.
pub(crate) struct Breaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Breaker { config, state: Mutex::new(State::Closed { failures: 0 }) }
    }

    /// `Ok` when a request may go; `Err(wait)` while the circuit is open.
    pub fn admit(&self) -> Result<(), Duration> {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until } => {
                let now = Instant::now();
                if now >= until {
                    *state = State::HalfOpen;
                    Ok(())
                } else {
                    Err(until - now)
                }
            }
            State::HalfOpen => Err(Duration::from_millis(100)),
        }
    }

    pub fn success(&self) {
        *self.lock() = State::Closed { failures: 0 };
    }

    /// A failure that says something about the backend's health (not a 4xx).
    pub fn failure(&self) {
        let mut state = self.lock();
        let open = State::Open { until: Instant::now() + self.config.open_for };
        *state = match *state {
            State::Closed { failures } if failures + 1 >= self.config.failure_threshold => open,
            State::Closed { failures } => State::Closed { failures: failures + 1 },
            State::HalfOpen | State::Open { .. } => open,
        };
    }

    pub fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_expire_and_can_be_invalidated() {
        let cache = TtlCache::new(Duration::from_secs(30), 2);
        cache.put("a", 1);
        assert_eq!(cache.get(&"a"), Some(1));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(cache.get(&"a"), None);
        cache.put("a", 2);
        cache.invalidate(&"a");
        assert_eq!(cache.get(&"a"), None);
        cache.put("a", 1);
        cache.put("b", 2);
        cache.put("c", 3);
        assert_eq!(cache.get(&"c"), Some(3), "a full cache still takes new entries");
    }

    #[tokio::test(start_paused = true)]
    async fn the_breaker_opens_after_consecutive_failures_and_probes_once() {
        let breaker = Breaker::new(BreakerConfig { failure_threshold: 3, open_for: Duration::from_secs(10) });
        breaker.failure();
        breaker.failure();
        breaker.success();
        breaker.failure();
        breaker.failure();
        assert!(breaker.admit().is_ok(), "a success in between resets the count");
        breaker.failure();
        assert!(breaker.admit().is_err());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(breaker.admit().is_ok(), "one probe after the pause");
        assert!(breaker.admit().is_err(), "only one");
        breaker.failure();
        assert!(breaker.admit().is_err(), "a failed probe opens it again");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(breaker.admit().is_ok());
        breaker.success();
        assert!(breaker.admit().is_ok() && breaker.admit().is_ok());
    }
}
