//! Synthesised audio kept for reuse: a [`CachedSynthesizer`] wraps any
//! [`Synthesizer`] with a least-recently-used cache keyed by (text,
//! language, sample rate) and bounded by bytes of audio.
//!
//! The fixed prompts (greeting, filler, "sorry, once more", the order-desk
//! handoff, the technical-trouble sentence) are synthesised once at start-up
//! with [`CachedSynthesizer::prewarm`] as 8 kHz PCM and pinned, so that the
//! first caller hears them without waiting for the engine, and a TTS server
//! that goes down later still leaves the sentences that say so. Concurrent
//! requests for the same text share one synthesis (single flight): twenty
//! calls greeted at once cost the engine one rendering.
//!
//! Metrics: `mangwale_tts_cache_hits_total`, `mangwale_tts_cache_misses_total`
//! (counters) and `mangwale_tts_cache_bytes` (gauge, pinned and evictable).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use mangwale_voice::catalog::Lang;
use mangwale_voice::speech::{Pcm16, SampleRate, SpeechError, Synthesizer};
use tokio::sync::OnceCell;

/// Bytes of evictable audio kept by default: about 10 minutes at 8 kHz.
pub const DEFAULT_MAX_BYTES: usize = 10 << 20;

/// What a cached rendering is found by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    text: String,
    language: Lang,
    sample_rate: SampleRate,
}

struct Entry {
    audio: Arc<Pcm16>,
    bytes: usize,
    /// Pinned entries (prewarmed prompts) are never evicted.
    pinned: bool,
    /// When it was last used; its place in `Lru::order` unless pinned.
    tick: u64,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<Key, Entry>,
    /// Evictable entries by last use, oldest first.
    order: BTreeMap<u64, Key>,
    tick: u64,
    evictable_bytes: usize,
    pinned_bytes: usize,
}

impl Lru {
    fn get(&mut self, key: &Key) -> Option<Arc<Pcm16>> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.entries.get_mut(key)?;
        if !entry.pinned {
            self.order.remove(&entry.tick);
            self.order.insert(tick, key.clone());
        }
        entry.tick = tick;
        Some(entry.audio.clone())
    }

    fn insert(&mut self, key: Key, audio: Arc<Pcm16>, pinned: bool, max_bytes: usize) {
        let bytes = audio.samples.len() * 2;
        if let Some(old) = self.entries.remove(&key) {
            self.forget(&old);
        }
        // Audio larger than the whole budget is not kept (unless pinned).
        if !pinned && bytes > max_bytes {
            return;
        }
        self.tick += 1;
        if pinned {
            self.pinned_bytes += bytes;
        } else {
            self.evictable_bytes += bytes;
            self.order.insert(self.tick, key.clone());
        }
        self.entries.insert(key, Entry { audio, bytes, pinned, tick: self.tick });
        while self.evictable_bytes > max_bytes {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            if let Some(old) = self.entries.remove(&oldest) {
                self.evictable_bytes -= old.bytes;
            }
        }
        metrics::gauge!("mangwale_tts_cache_bytes").set((self.evictable_bytes + self.pinned_bytes) as f64);
    }

    fn forget(&mut self, old: &Entry) {
        if old.pinned {
            self.pinned_bytes -= old.bytes;
        } else {
            self.order.remove(&old.tick);
            self.evictable_bytes -= old.bytes;
        }
    }
}

type Flight = Arc<OnceCell<Result<Arc<Pcm16>, SpeechError>>>;

/// A [`Synthesizer`] that remembers what it said.
pub struct CachedSynthesizer {
    inner: Arc<dyn Synthesizer>,
    max_bytes: usize,
    lru: Mutex<Lru>,
    /// Syntheses under way, shared by concurrent requests for the same key.
    flights: Mutex<HashMap<Key, Flight>>,
}

/// What [`CachedSynthesizer::prewarm`] managed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Prewarmed {
    /// Prompts now cached.
    pub ready: usize,
    /// Prompts the engine could not render, with why.
    pub failed: Vec<(String, Lang, SpeechError)>,
}

/// Counts of a cache, for tests and `/health`-style reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub pinned_bytes: usize,
    pub evictable_bytes: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded maps stay consistent across a panic elsewhere.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CachedSynthesizer {
    /// Caches `inner`'s audio, keeping at most `max_bytes` of evictable
    /// audio (prewarmed prompts come on top).
    pub fn new(inner: Arc<dyn Synthesizer>, max_bytes: usize) -> CachedSynthesizer {
        CachedSynthesizer { inner, max_bytes, lru: Mutex::new(Lru::default()), flights: Mutex::new(HashMap::new()) }
    }

    /// The engine behind the cache.
    pub fn inner(&self) -> &Arc<dyn Synthesizer> {
        &self.inner
    }

    pub fn stats(&self) -> CacheStats {
        let lru = lock(&self.lru);
        CacheStats { entries: lru.entries.len(), pinned_bytes: lru.pinned_bytes, evictable_bytes: lru.evictable_bytes }
    }

    /// Renders every prompt as 8 kHz PCM and pins it. Failures are logged
    /// and returned, not fatal: a prompt that failed is synthesised (and
    /// cached) on first use instead.
    pub async fn prewarm<T: AsRef<str>>(&self, prompts: &[(T, Lang)]) -> Prewarmed {
        let mut outcome = Prewarmed::default();
        for (text, language) in prompts {
            let text = text.as_ref();
            match self.fetch(text, *language, SampleRate::Hz8000, true).await {
                Ok(_) => outcome.ready += 1,
                Err(e) => {
                    tracing::warn!(engine = self.inner.name(), ?language, error = %e, "could not prewarm a prompt");
                    outcome.failed.push((text.to_string(), *language, e));
                }
            }
        }
        outcome
    }

    async fn fetch(
        &self,
        text: &str,
        language: Lang,
        sample_rate: SampleRate,
        pin: bool,
    ) -> Result<Arc<Pcm16>, SpeechError> {
        let key = Key { text: text.to_string(), language, sample_rate };
        let cached = lock(&self.lru).get(&key);
        if let Some(audio) = cached {
            if pin {
                lock(&self.lru).insert(key, audio.clone(), true, self.max_bytes);
            }
            metrics::counter!("mangwale_tts_cache_hits_total").increment(1);
            return Ok(audio);
        }
        metrics::counter!("mangwale_tts_cache_misses_total").increment(1);
        let flight: Flight = lock(&self.flights).entry(key.clone()).or_default().clone();
        let result = flight
            .get_or_init(|| async {
                let result = self.inner.synthesize(text, language, sample_rate).await.map(Arc::new);
                if let Ok(audio) = &result {
                    lock(&self.lru).insert(key.clone(), audio.clone(), pin, self.max_bytes);
                }
                result
            })
            .await
            .clone();
        // The first waiter to get here retires the flight; a failure is not
        // remembered, so the next request asks the engine again.
        let mut flights = lock(&self.flights);
        if flights.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
            flights.remove(&key);
        }
        drop(flights);
        if pin && let Ok(audio) = &result {
            lock(&self.lru).insert(key, audio.clone(), true, self.max_bytes);
        }
        result
    }
}

#[async_trait]
impl Synthesizer for CachedSynthesizer {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn synthesize(&self, text: &str, language: Lang, sample_rate: SampleRate) -> Result<Pcm16, SpeechError> {
        self.fetch(text, language, sample_rate, false).await.map(|audio| (*audio).clone())
    }

    async fn check(&self) -> Result<(), SpeechError> {
        self.inner.check().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// An engine that renders a sample per character and counts its calls;
    /// it can be made to fail, or to wait until released.
    #[derive(Default)]
    struct Counting {
        calls: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
        gate: tokio::sync::Notify,
        gated: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl Synthesizer for Counting {
        fn name(&self) -> &str {
            "counting"
        }

        async fn synthesize(&self, text: &str, _: Lang, sample_rate: SampleRate) -> Result<Pcm16, SpeechError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.gated.load(Ordering::SeqCst) {
                self.gate.notified().await;
            }
            if self.fail.load(Ordering::SeqCst) {
                return Err(SpeechError::Unavailable("down".into()));
            }
            Ok(Pcm16 { sample_rate, samples: vec![1; text.chars().count() * 100] })
        }
    }

    #[tokio::test]
    async fn a_second_request_is_served_from_the_cache() {
        let engine = Arc::new(Counting::default());
        let cache = CachedSynthesizer::new(engine.clone(), DEFAULT_MAX_BYTES);
        let first = cache.synthesize("Theek hai.", Lang::HiEn, SampleRate::Hz8000).await.unwrap();
        let second = cache.synthesize("Theek hai.", Lang::HiEn, SampleRate::Hz8000).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(engine.calls.load(Ordering::SeqCst), 1);
        // Another language or rate is another rendering.
        cache.synthesize("Theek hai.", Lang::Hi, SampleRate::Hz8000).await.unwrap();
        cache.synthesize("Theek hai.", Lang::HiEn, SampleRate::Hz16000).await.unwrap();
        assert_eq!(engine.calls.load(Ordering::SeqCst), 3);
        assert_eq!(cache.stats().entries, 3);
    }

    #[tokio::test]
    async fn the_least_recently_used_audio_goes_first_and_prewarmed_prompts_stay() {
        let engine = Arc::new(Counting::default());
        // Room for two 10-character texts (2,000 bytes each).
        let cache = CachedSynthesizer::new(engine.clone(), 4_000);
        let pinned = cache.prewarm(&[("Namaste!!!", Lang::HiEn)]).await;
        assert_eq!(pinned, Prewarmed { ready: 1, failed: vec![] });
        for text in ["aaaaaaaaaa", "bbbbbbbbbb"] {
            cache.synthesize(text, Lang::HiEn, SampleRate::Hz8000).await.unwrap();
        }
        cache.synthesize("aaaaaaaaaa", Lang::HiEn, SampleRate::Hz8000).await.unwrap(); // a is fresher than b
        cache.synthesize("cccccccccc", Lang::HiEn, SampleRate::Hz8000).await.unwrap(); // evicts b
        assert_eq!(engine.calls.load(Ordering::SeqCst), 4);
        cache.synthesize("aaaaaaaaaa", Lang::HiEn, SampleRate::Hz8000).await.unwrap();
        cache.synthesize("Namaste!!!", Lang::HiEn, SampleRate::Hz8000).await.unwrap();
        assert_eq!(engine.calls.load(Ordering::SeqCst), 4, "a and the pinned prompt were cached");
        cache.synthesize("bbbbbbbbbb", Lang::HiEn, SampleRate::Hz8000).await.unwrap();
        assert_eq!(engine.calls.load(Ordering::SeqCst), 5, "b had been evicted");
        assert_eq!(cache.stats(), CacheStats { entries: 3, pinned_bytes: 2_000, evictable_bytes: 4_000 });
    }

    #[tokio::test]
    async fn failures_are_reported_and_not_remembered() {
        let engine = Arc::new(Counting::default());
        let cache = CachedSynthesizer::new(engine.clone(), DEFAULT_MAX_BYTES);
        engine.fail.store(true, Ordering::SeqCst);
        let outcome = cache.prewarm(&[("Namaste".to_string(), Lang::HiEn)]).await;
        assert_eq!(outcome.ready, 0);
        assert_eq!(outcome.failed, vec![("Namaste".into(), Lang::HiEn, SpeechError::Unavailable("down".into()))]);
        assert!(cache.synthesize("Namaste", Lang::HiEn, SampleRate::Hz8000).await.is_err());
        engine.fail.store(false, Ordering::SeqCst);
        assert!(cache.synthesize("Namaste", Lang::HiEn, SampleRate::Hz8000).await.is_ok());
        assert_eq!(engine.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn concurrent_requests_for_one_text_synthesise_once() {
        let engine = Arc::new(Counting::default());
        engine.gated.store(true, Ordering::SeqCst);
        let cache = Arc::new(CachedSynthesizer::new(engine.clone(), DEFAULT_MAX_BYTES));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.synthesize("Ek minute.", Lang::HiEn, SampleRate::Hz8000).await })
            })
            .collect();
        // Wait until the one synthesis has started, then let it finish.
        while engine.calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        engine.gate.notify_one();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().samples.len(), 1_000);
        }
        assert_eq!(engine.calls.load(Ordering::SeqCst), 1);
    }
}
