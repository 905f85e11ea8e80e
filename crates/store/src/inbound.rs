//! The webhook write path: an inbound event is deduplicated, recorded on the
//! timeline and its follow-up jobs enqueued in one transaction before we
//! answer the provider. [`InboundWriter`] groups concurrent requests into
//! shared commits, so a burst of callbacks costs one commit per batch rather
//! than one per request.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use crate::jobs::NewJob;
use crate::timeline::NewEvent;
use crate::{Result, Store, StoreError};

/// An inbound event to record.
#[derive(Debug, Clone)]
pub struct InboundEvent {
    /// Identifies the event across provider retries.
    pub dedup_key: String,
    /// `exotel.call_status`, `exotel.applet`, `exotel.sms_status`, ...
    pub source: String,
    pub event: NewEvent,
    /// Enqueued only if the event is new.
    pub jobs: Vec<NewJob>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundOutcome {
    Recorded,
    /// Seen before: nothing was written.
    Duplicate,
}

#[async_trait]
pub trait InboundStore: Send + Sync {
    /// Records a batch in one transaction, in order; an event whose key was
    /// seen before (or earlier in the same batch) is a duplicate.
    async fn record_inbound(&self, batch: &[InboundEvent], now: DateTime<Utc>) -> Result<Vec<InboundOutcome>>;

    /// Forgets deduplication keys received before `before` (providers retry
    /// within minutes, not weeks); returns how many.
    async fn prune_inbound(&self, before: DateTime<Utc>) -> Result<u64>;

    /// A group-commit writer of the backend's own, if it has one (SQLite's
    /// runs on a thread with its own connection); otherwise
    /// [`InboundWriter::spawn`] batches over [`InboundStore::record_inbound`].
    fn dedicated_writer(&self) -> Option<InboundWriter> {
        None
    }
}

pub(crate) type Reply = oneshot::Sender<Result<InboundOutcome, Arc<StoreError>>>;

/// Groups concurrent [`InboundStore::record_inbound`] calls into shared
/// transactions. While one batch commits, the next one gathers.
#[derive(Clone)]
pub struct InboundWriter {
    sender: Sender,
}

#[derive(Clone)]
enum Sender {
    /// To the writer tasks of [`InboundWriter::spawn`].
    Tasks(mpsc::Sender<(InboundEvent, Reply)>),
    /// To SQLite's writer thread.
    Sqlite(mpsc::Sender<crate::sqlite_inbound::Request>),
}

/// Why an event could not be recorded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error("store: {0}")]
    Store(Arc<StoreError>),
    #[error("the inbound writer has stopped")]
    Stopped,
}

impl InboundWriter {
    /// The store's own writer if it has one (see
    /// [`InboundStore::dedicated_writer`]); otherwise starts `writers` writer
    /// tasks (a few suit PostgreSQL), each committing up to `max_batch`
    /// events at a time. They stop when every handle is dropped.
    pub fn spawn(store: Arc<dyn Store>, writers: usize, max_batch: usize) -> Self {
        if let Some(writer) = store.dedicated_writer() {
            return writer;
        }
        let (sender, receiver) = mpsc::channel::<(InboundEvent, Reply)>(max_batch * 8);
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        for _ in 0..writers.max(1) {
            tokio::spawn(write_batches(store.clone(), receiver.clone(), max_batch));
        }
        InboundWriter { sender: Sender::Tasks(sender) }
    }

    pub(crate) fn sqlite(sender: mpsc::Sender<crate::sqlite_inbound::Request>) -> Self {
        InboundWriter { sender: Sender::Sqlite(sender) }
    }

    /// Records one event; resolves once it is committed (or found to be a
    /// duplicate).
    pub async fn record(&self, event: InboundEvent) -> Result<InboundOutcome, WriteError> {
        let (reply, answer) = oneshot::channel();
        let sent = match &self.sender {
            Sender::Tasks(sender) => sender.send((event, reply)).await.is_ok(),
            Sender::Sqlite(sender) => {
                sender.send(crate::sqlite_inbound::Request::Event(Box::new(event), reply)).await.is_ok()
            }
        };
        if !sent {
            return Err(WriteError::Stopped);
        }
        answer.await.map_err(|_| WriteError::Stopped)?.map_err(WriteError::Store)
    }
}

/// One writer: takes whatever is queued (up to `max_batch`), commits it as
/// one transaction, answers each caller; until every sender is gone.
async fn write_batches(
    store: Arc<dyn Store>,
    receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<(InboundEvent, Reply)>>>,
    max_batch: usize,
) {
    loop {
        let mut batch = Vec::with_capacity(max_batch);
        {
            let mut rx = receiver.lock().await;
            match rx.recv().await {
                Some(item) => batch.push(item),
                None => return,
            }
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
        }
        let (events, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        metrics::histogram!("mangwale_inbound_batch_size").record(events.len() as f64);
        match store.record_inbound(&events, Utc::now()).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = events.len(), "recording inbound events failed");
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
