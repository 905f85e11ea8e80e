//! A thread that owns a SQLite connection of its own and runs closures on
//! it, one at a time, each under the store's write lock.
//!
//! Through the async driver every statement is a hand-off to the driver's
//! connection thread and back (about 150 µs each on a busy 2-core machine);
//! a ladder step is a dozen statements. Here a whole operation is one
//! hand-off, and its statements are cached prepared statements run in a
//! loop on this thread (a few µs each). Used for the hot writes of the
//! escalation ladders; the webhook path has its own thread
//! (`sqlite_inbound`).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::supervise::{Components, supervise_thread};
use crate::{Result, StoreError};

/// The writer connection's page cache (see [`SqliteExec::spawn`]).
const CACHE_KIB: u32 = 8 * 1024;

type Task = Box<dyn FnOnce(&mut Connection) + Send>;

/// The handle of the thread; it stops when every handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct SqliteExec {
    sender: mpsc::UnboundedSender<Task>,
}

/// A rusqlite connection to the store's file set up as the store's own
/// connections are (WAL, NORMAL sync, foreign keys), for a writer thread.
/// It never checkpoints the WAL itself: the background checkpointer does.
/// `cache_kib` sizes its page cache (see [`SqliteExec::spawn`]).
pub(crate) fn open_writer(path: &Path, cache_kib: u32) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -{cache_kib};
         PRAGMA mmap_size = 268435456;
         PRAGMA temp_store = MEMORY;
         PRAGMA wal_autocheckpoint = 0;"
    ))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteExec {
    /// The connection gets a small page cache: each write by another
    /// connection of the process empties it (SQLite cannot tell which pages
    /// changed), and emptying a large cache costs time on every switch of
    /// writer; pages not cached are read from the memory map.
    ///
    /// The thread is supervised ([`crate::supervise`]): if a task panics, the
    /// thread dies (the task's caller gets an error) and a new one, on a new
    /// connection, serves the tasks after it.
    pub(crate) fn spawn(
        path: &Path,
        name: &str,
        write: Arc<tokio::sync::Mutex<()>>,
        components: Components,
    ) -> Result<Self> {
        // Opened here first, so that a store that cannot open its file fails
        // at start-up rather than in its first write.
        let first = Mutex::new(Some(open_writer(path, CACHE_KIB)?));
        let (sender, receiver) = mpsc::unbounded_channel::<Task>();
        let receiver = Mutex::new(receiver);
        let path = path.to_path_buf();
        supervise_thread(name, components, move || {
            let taken = first.lock().unwrap_or_else(|e| e.into_inner()).take();
            let mut conn = match taken {
                Some(conn) => conn,
                None => open_writer(&path, CACHE_KIB).map_err(|e| format!("opening the database: {e}"))?,
            };
            // A thread that panicked poisoned the lock; the receiver itself
            // is intact (it was between two tasks or inside one).
            let mut receiver = receiver.lock().unwrap_or_else(|e| e.into_inner());
            while let Some(task) = receiver.blocking_recv() {
                let _write = write.blocking_lock();
                task(&mut conn);
            }
            Ok(())
        })
        .map_err(|e| StoreError::Unavailable(format!("the {name} thread could not start: {e}")))?;
        Ok(SqliteExec { sender })
    }

    /// Makes the thread panic, as a bug in a task would; for the tests of
    /// its supervision.
    #[doc(hidden)]
    pub(crate) async fn crash_for_test(&self) {
        let _ = self.run(|_| -> Result<()> { panic!("crash requested by a test") }).await;
    }

    /// Runs `f` on the thread's connection and returns what it returned.
    pub(crate) async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the SQLite writer thread has stopped".into());
        self.sender
            .send(Box::new(move |conn: &mut Connection| {
                let _ = reply.send(f(conn));
            }))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}
