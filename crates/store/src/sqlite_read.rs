//! Short reads on SQLite, run on the caller's thread. The async driver runs
//! each statement on its connection's own thread and hands the statement
//! there and every row back through channels: for an indexed lookup of a
//! few microseconds, those wake-ups cost several times the lookup (under
//! webhook load, a third of the process's CPU went to them). The hot point
//! lookups (the status callback's attempt, the worker's next due time) take
//! a connection from here instead and run where they are called. Only
//! lookups bounded by an index belong here: they block the calling thread.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::Result;

/// Connections kept open for reuse; more are opened when this many are busy
/// at once, and closed again afterwards.
const IDLE_CONNECTIONS: usize = 4;
/// Page cache of each: the pages of a busy file change under it between
/// reads (each change empties it), and unchanged ones are read from the
/// memory map, so a large cache buys nothing.
const CACHE_KIB: u32 = 2048;

pub(crate) struct InlineReaders {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for InlineReaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineReaders").field("path", &self.path).finish_non_exhaustive()
    }
}

impl InlineReaders {
    pub(crate) fn new(path: &Path) -> InlineReaders {
        InlineReaders { path: path.to_path_buf(), idle: Mutex::new(Vec::new()) }
    }

    /// Runs `read` on an idle connection (or a new one) on this thread.
    pub(crate) fn read<R>(&self, read: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let result = read(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(conn);
        }
        result
    }
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        // Read-write (without create) as the store's other connections
        // are, so WAL's shared memory is used the same way; `query_only`
        // keeps it from writing.
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(&format!(
        "PRAGMA query_only = 1; PRAGMA cache_size = -{CACHE_KIB}; PRAGMA mmap_size = 268435456;"
    ))?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}
