//! SQLite's webhook write path: one thread that owns a connection of its own
//! and commits inbound events in groups.
//!
//! Through the async driver a batch costs a handful of hand-offs between the
//! caller, the driver's connection thread and back, each a wake-up that waits
//! behind the request tasks for a core; and every row its share of query
//! building and boxing. Here a batch is a loop over cached prepared statements
//! on the thread that received it: the events a webhook burst brings in
//! between two commits go to disk together, and the thread wakes once per
//! batch. It takes the store's write lock for each transaction, so it never
//! meets the other writer of this process in SQLite's busy handler.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::inbound::{InboundEvent, InboundOutcome, Reply};
use crate::sqlite_writes::{insert_event, insert_jobs};
use crate::supervise::{Components, supervise_thread};
use crate::{Result, StoreError, from_ms, to_ms};

/// The thread's name, also its component name in `/health`.
const THREAD: &str = "sqlite-inbound";

/// What the writer thread is asked to do.
pub(crate) enum Request {
    /// One event from the group-commit writer, received now; it may share a
    /// commit with others.
    Event(Box<InboundEvent>, Reply),
    /// A caller's whole batch, received at the given time, committed with
    /// whatever else is waiting.
    Batch(Vec<InboundEvent>, DateTime<Utc>, oneshot::Sender<Result<Vec<InboundOutcome>, Arc<StoreError>>>),
    /// Makes the thread panic, as a bug would; for the tests of its
    /// supervision.
    #[doc(hidden)]
    Crash,
}

/// The handle of the writer thread; the thread stops when every handle is
/// dropped.
#[derive(Debug, Clone)]
pub(crate) struct InboundThread {
    sender: mpsc::Sender<Request>,
}

/// Requests queued for the thread, at most.
const QUEUE: usize = 4096;
/// Events committed together, at most.
const MAX_BATCH: usize = 256;

impl InboundThread {
    /// Starts the supervised thread ([`crate::supervise`]): if it dies, the
    /// events it was committing get an error (the provider retries them)
    /// and a new thread, on a new connection, commits the events after them.
    pub(crate) fn spawn(
        path: PathBuf,
        write: Arc<tokio::sync::Mutex<()>>,
        wakeup: Arc<Notify>,
        components: Components,
    ) -> Result<Self> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let receiver = Mutex::new(receiver);
        supervise_thread(THREAD, components, move || {
            let conn = open(&path).map_err(|e| format!("opening the database: {e}"))?;
            // A thread that panicked poisoned the lock; the receiver itself
            // is intact.
            let mut receiver = receiver.lock().unwrap_or_else(|e| e.into_inner());
            run(conn, &mut receiver, &write, &wakeup);
            Ok(())
        })
        .map_err(|e| StoreError::Unavailable(format!("the inbound writer thread could not start: {e}")))?;
        Ok(InboundThread { sender })
    }

    pub(crate) fn sender(&self) -> mpsc::Sender<Request> {
        self.sender.clone()
    }

    /// Makes the thread panic once it reaches this request, as a bug would;
    /// for the tests of its supervision.
    #[doc(hidden)]
    pub(crate) async fn crash_for_test(&self) {
        let _ = self.sender.send(Request::Crash).await;
    }

    /// Commits `batch` (with whatever else is waiting) and answers in order.
    pub(crate) async fn record(&self, batch: Vec<InboundEvent>, now: DateTime<Utc>) -> Result<Vec<InboundOutcome>> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the SQLite inbound writer has stopped".into());
        self.sender.send(Request::Batch(batch, now, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}

fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    // A large page cache: during a webhook burst this thread is the only
    // writer, so it stays warm from one batch to the next.
    crate::sqlite_exec::open_writer(path, 64 * 1024)
}

fn run(mut conn: Connection, receiver: &mut mpsc::Receiver<Request>, write: &tokio::sync::Mutex<()>, wakeup: &Notify) {
    while let Some(first) = receiver.blocking_recv() {
        // Alone, so that no event queued behind it dies with it.
        if matches!(first, Request::Crash) {
            panic!("crash requested by a test");
        }
        let mut requests = vec![first];
        let mut events = requests.iter().map(Request::len).sum::<usize>();
        while events < MAX_BATCH {
            match receiver.try_recv() {
                Ok(request) => {
                    events += request.len();
                    requests.push(request);
                }
                Err(_) => break,
            }
        }
        let now = to_ms(Utc::now());
        let batch: Vec<(&InboundEvent, i64)> = requests.iter().flat_map(|r| r.events(now)).collect();
        metrics::histogram!("mangwale_inbound_batch_size").record(batch.len() as f64);
        let outcome = {
            let _write = write.blocking_lock();
            write_batch(&mut conn, &batch)
        };
        match outcome {
            Ok((outcomes, enqueued)) => {
                if enqueued {
                    wakeup.notify_one();
                }
                answer(requests, Ok(outcomes));
            }
            Err(e) => {
                tracing::error!(error = %e, events = batch.len(), "recording inbound events failed");
                answer(requests, Err(Arc::new(e)));
            }
        }
    }
}

impl Request {
    fn len(&self) -> usize {
        match self {
            Request::Event(..) => 1,
            Request::Batch(events, ..) => events.len(),
            Request::Crash => 0,
        }
    }

    /// The events with their reception times (ms); `now` for single events.
    fn events(&self, now: i64) -> Vec<(&InboundEvent, i64)> {
        match self {
            Request::Event(event, _) => vec![(&**event, now)],
            Request::Batch(events, at, _) => events.iter().map(|e| (e, to_ms(*at))).collect(),
            Request::Crash => Vec::new(),
        }
    }
}

/// Hands each requester its outcomes (in the order its events came).
fn answer(requests: Vec<Request>, outcomes: Result<Vec<InboundOutcome>, Arc<StoreError>>) {
    let mut next = 0;
    for request in requests {
        let n = request.len();
        let mine = outcomes.as_ref().map(|all| all[next..next + n].to_vec()).map_err(Arc::clone);
        next += n;
        match request {
            Request::Event(_, reply) => {
                let _ = reply.send(mine.map(|o| o[0]));
            }
            Request::Batch(.., reply) => {
                let _ = reply.send(mine);
            }
            Request::Crash => {}
        }
    }
}

/// One transaction: each event whose key is new (and not earlier in the
/// batch) is recorded with its follow-up jobs; the rest are duplicates.
/// Also says whether any job was enqueued.
fn write_batch(conn: &mut Connection, batch: &[(&InboundEvent, i64)]) -> Result<(Vec<InboundOutcome>, bool)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut enqueued = false;
    {
        let mut insert_key = tx.prepare_cached(
            "INSERT INTO inbound_events (key, source, received_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO NOTHING",
        )?;
        let mut seen = HashSet::with_capacity(batch.len());
        for &(inbound, received) in batch {
            let fresh = seen.insert(inbound.dedup_key.as_str())
                && insert_key.execute(params![inbound.dedup_key, inbound.source, received])? == 1;
            if !fresh {
                outcomes.push(InboundOutcome::Duplicate);
                continue;
            }
            insert_event(&tx, &inbound.event)?;
            enqueued |= !insert_jobs(&tx, &inbound.jobs, from_ms(received))?.is_empty();
            outcomes.push(InboundOutcome::Recorded);
        }
    }
    tx.commit()?;
    Ok((outcomes, enqueued))
}
