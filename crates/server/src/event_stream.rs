//! The live event feed as Server-Sent Events (`GET /comms/events/stream`):
//! the same events as `GET /comms/events`, pushed as they are recorded, by
//! any replica.
//!
//! Exactly once per connection, across reconnects: event ids grow in the
//! order they are taken, not the order they commit, so on PostgreSQL a
//! reader can see id 12 before id 11 commits. The stream delivers 12 at
//! once and remembers 11 as a *gap* to look for again until it shows up or
//! its deadline passes (a rolled-back insert leaves a gap for good). The
//! SSE id of every message is the whole position (the highest id passed
//! and the open gaps with their deadlines), so a client that reconnects
//! with `Last-Event-ID` resumes exactly there, on any replica.
//!
//! Waking: one task per process watches the store (PostgreSQL's
//! LISTEN/NOTIFY on the `timeline_events` insert trigger, or a poll of the
//! newest id on SQLite) and wakes every open stream through a `watch`
//! channel; a stream whose client went away is dropped with its receiver
//! and costs nothing further. The task runs only while someone listens.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::sse::Event;
use mangwale_store::{Store, TimelineEvent};
use tokio::sync::watch;

/// How long a skipped id is looked for again before the stream gives it up.
/// The store's transactions last milliseconds; this is generous.
pub const GAP_DEADLINE: Duration = Duration::from_secs(30);
/// At most this many open gaps are carried (oldest given up first), so a
/// position always fits in a header.
pub const MAX_GAPS: usize = 64;
/// How often a stream with open gaps looks for them again.
const GAP_RECHECK: Duration = Duration::from_millis(500);
/// How often the store is polled when it cannot notify (SQLite), and how
/// often a notifying store is polled anyway in case a notification was lost.
const POLL: Duration = Duration::from_millis(250);
const POLL_BACKSTOP: Duration = Duration::from_secs(2);
/// The default heartbeat interval of a quiet stream.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Events read from the store at a time.
const PAGE: u32 = 200;

/// Where a reader stands in the feed: every id up to `after` has been
/// delivered or given up, except the open `gaps` (id → deadline, Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeedPosition {
    pub after: i64,
    pub gaps: BTreeMap<i64, i64>,
}

impl FeedPosition {
    pub fn at(after: i64) -> Self {
        FeedPosition { after, gaps: BTreeMap::new() }
    }

    /// Parses an SSE id written by [`FeedPosition::encode`]: `42`, or
    /// `42;40@1765000000000;41@1765000000000`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split(';');
        let after: i64 = parts.next()?.parse().ok().filter(|a| *a >= 0)?;
        let mut gaps = BTreeMap::new();
        for gap in parts {
            let (id, deadline) = gap.split_once('@')?;
            let id: i64 = id.parse().ok().filter(|id| *id > 0 && *id < after)?;
            gaps.insert(id, deadline.parse().ok()?);
        }
        (gaps.len() <= MAX_GAPS).then_some(FeedPosition { after, gaps })
    }

    pub fn encode(&self) -> String {
        let mut text = self.after.to_string();
        for (id, deadline) in &self.gaps {
            text.push_str(&format!(";{id}@{deadline}"));
        }
        text
    }

    /// Whether `event` is one this reader has not had; updates the position
    /// as delivered if so. Ids jumped over become gaps due by `deadline`.
    pub fn take(&mut self, id: i64, deadline: i64) -> bool {
        if id > self.after {
            for missing in (self.after + 1..id).rev().take(MAX_GAPS) {
                self.gaps.insert(missing, deadline);
            }
            self.after = id;
            while self.gaps.len() > MAX_GAPS {
                self.gaps.pop_first();
            }
            true
        } else {
            self.gaps.remove(&id).is_some()
        }
    }

    /// Gives up the gaps whose deadline is past.
    pub fn expire(&mut self, now_ms: i64) {
        self.gaps.retain(|_, deadline| *deadline > now_ms);
    }

    pub fn gap_ids(&self) -> Vec<i64> {
        self.gaps.keys().copied().collect()
    }
}

/// Wakes the open streams of this process when events may have been
/// recorded.
pub struct EventHub {
    store: Arc<dyn Store>,
    /// How often a quiet stream sends its heartbeat comment.
    pub heartbeat: Duration,
    latest: watch::Sender<u64>,
    /// Cancelled when the server shuts down: open streams end, so that the
    /// graceful shutdown does not wait on them forever.
    closed: tokio_util::sync::CancellationToken,
    /// The watching task, while one runs; the lock orders its exit against
    /// a new subscriber's start.
    watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl EventHub {
    pub fn new(store: Arc<dyn Store>, heartbeat: Duration) -> Arc<Self> {
        Arc::new(EventHub {
            store,
            heartbeat,
            latest: watch::Sender::new(0),
            closed: tokio_util::sync::CancellationToken::new(),
            watcher: Mutex::new(None),
        })
    }

    /// How many streams are open in this process.
    pub fn open_streams(&self) -> usize {
        self.latest.receiver_count()
    }

    /// Ends every open stream (and refuses none: a stream opened later ends
    /// at once).
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// A receiver that changes whenever events may have been recorded;
    /// starts the watcher if none runs.
    pub fn subscribe(self: &Arc<Self>) -> watch::Receiver<u64> {
        let receiver = self.latest.subscribe();
        let mut watcher = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
        if watcher.as_ref().is_none_or(|task| task.is_finished()) {
            let hub = Arc::downgrade(self);
            *watcher = Some(tokio::spawn(watch_store(hub)));
        }
        receiver
    }
}

async fn watch_store(hub: std::sync::Weak<EventHub>) {
    let Some(first) = hub.upgrade() else { return };
    let mut notifications = first.store.event_notifications();
    drop(first);
    // Nothing seen yet: the first look always wakes the streams, so that an
    // event recorded after a new stream's first read, but before this task
    // first looked, is not left waiting for the next one.
    let mut seen = -1;
    loop {
        let poll = if notifications.is_some() { POLL_BACKSTOP } else { POLL };
        let notified = match notifications.as_mut() {
            Some(rx) => tokio::select! {
                changed = rx.changed() => changed.is_ok(),
                _ = tokio::time::sleep(poll) => false,
            },
            None => {
                tokio::time::sleep(poll).await;
                false
            }
        };
        let Some(hub) = hub.upgrade() else { return };
        {
            let mut watcher = hub.watcher.lock().unwrap_or_else(|e| e.into_inner());
            if hub.latest.receiver_count() == 0 {
                *watcher = None;
                return;
            }
        }
        match hub.store.latest_event_id().await {
            Ok(latest) if notified || latest != seen => {
                seen = latest;
                hub.latest.send_modify(|n| *n += 1);
            }
            Ok(_) => {}
            Err(e) => {
                metrics::counter!("mangwale_event_stream_store_errors_total").increment(1);
                tracing::warn!(error = %e, "the live feed cannot read the store; retrying");
                // Streams still look for themselves when woken.
                hub.latest.send_modify(|n| *n += 1);
            }
        }
    }
}

/// One connection's stream of SSE messages.
pub struct FeedStream {
    store: Arc<dyn Store>,
    wake: watch::Receiver<u64>,
    closed: tokio_util::sync::CancellationToken,
    position: FeedPosition,
    ready: VecDeque<Event>,
    _open: OpenStream,
}

/// Counts open streams in `mangwale_event_streams`; the count drops when a
/// client goes away and its stream is dropped.
struct OpenStream;

impl OpenStream {
    fn new() -> Self {
        metrics::gauge!("mangwale_event_streams").increment(1.0);
        OpenStream
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!("mangwale_event_streams").decrement(1.0);
    }
}

impl FeedStream {
    pub fn new(hub: &Arc<EventHub>, position: FeedPosition) -> Self {
        let mut wake = hub.subscribe();
        wake.mark_changed();
        FeedStream {
            store: hub.store.clone(),
            wake,
            closed: hub.closed.clone(),
            position,
            ready: VecDeque::new(),
            _open: OpenStream::new(),
        }
    }

    /// The next message; `None` when the service shuts down.
    pub async fn next(&mut self) -> Option<Result<Event, crate::error::AppError>> {
        loop {
            if self.closed.is_cancelled() {
                return None;
            }
            if let Some(event) = self.ready.pop_front() {
                return Some(Ok(event));
            }
            let recheck = if self.position.gaps.is_empty() { Duration::MAX } else { GAP_RECHECK };
            tokio::select! {
                _ = self.closed.cancelled() => return None,
                changed = self.wake.changed() => if changed.is_err() { return None },
                _ = tokio::time::sleep(recheck) => {}
            }
            if let Err(e) = self.read().await {
                return Some(Err(e));
            }
        }
    }

    /// Reads what is new (and what was missing) into `ready`, each message
    /// carrying the position after it.
    async fn read(&mut self) -> Result<(), crate::error::AppError> {
        let now = chrono::Utc::now().timestamp_millis();
        self.position.expire(now);
        let deadline = now + GAP_DEADLINE.as_millis() as i64;
        let mut found = self.store.events_by_ids(&self.position.gap_ids()).await?;
        loop {
            let page = self.store.events_after(self.position.after, PAGE).await?;
            let full = page.len() == PAGE as usize;
            found.extend(page);
            for event in found.drain(..) {
                if self.position.take(event.id, deadline) {
                    self.ready.push_back(message(&event, &self.position)?);
                }
            }
            if !full {
                return Ok(());
            }
        }
    }
}

fn message(event: &TimelineEvent, position: &FeedPosition) -> Result<Event, crate::error::AppError> {
    Event::default()
        .event("timeline")
        .id(position.encode())
        .json_data(event)
        .map_err(|e| crate::error::AppError::internal(format!("an event did not serialise: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_round_trips_through_its_sse_id() {
        let mut p = FeedPosition::at(40);
        assert!(p.take(43, 9_000));
        assert_eq!(p.encode(), "43;41@9000;42@9000");
        assert_eq!(FeedPosition::parse(&p.encode()), Some(p.clone()));
        assert_eq!(FeedPosition::parse("0"), Some(FeedPosition::at(0)));
        for bad in ["", "x", "-1", "5;7@1", "5;3", "5;3@x", "5;0@1"] {
            assert_eq!(FeedPosition::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn each_id_is_taken_once_whatever_order_it_commits_in() {
        let mut p = FeedPosition::at(10);
        assert!(p.take(12, 100));
        assert!(!p.take(12, 100));
        assert!(p.take(11, 100), "the late commit is delivered");
        assert!(!p.take(11, 100));
        assert!(!p.take(9, 100), "before the start");
        assert!(p.gaps.is_empty());
    }

    #[test]
    fn gaps_expire_and_are_bounded() {
        let mut p = FeedPosition::at(0);
        assert!(p.take(1_000, 100));
        assert_eq!(p.gaps.len(), MAX_GAPS);
        assert_eq!(p.gaps.first_key_value().map(|(id, _)| *id), Some(1_000 - MAX_GAPS as i64));
        p.expire(100);
        assert!(p.gaps.is_empty());
        assert!(!p.take(999, 200), "given up");
    }
}
