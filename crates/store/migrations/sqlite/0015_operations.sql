-- Operations (issue 14): dead jobs can be discarded, and the live board and
-- the analytics read calls, ladders and sessions by time.
--
-- 1. A job may be 'discarded': an operator gave up on a dead job. It leaves
--    the dead list and is pruned like a finished job. SQLite cannot change a
--    CHECK constraint in place, so the table is rebuilt (as in 0004).
CREATE TABLE jobs_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,
    -- Idempotency key (NULL: none); enqueueing the same key twice yields one job.
    key           TEXT    UNIQUE,
    group_key     TEXT,
    payload       TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'done', 'dead', 'cancelled', 'discarded')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    run_at        INTEGER NOT NULL,
    lease_token   INTEGER NOT NULL DEFAULT 0,
    lease_until   INTEGER,
    locked_by     TEXT,
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    -- For a dead job: when it went dead (nothing else changes a dead job).
    updated_at    INTEGER NOT NULL
);
INSERT INTO jobs_new SELECT id, kind, key, group_key, payload, state, attempts, max_attempts, run_at, lease_token,
                            lease_until, locked_by, last_error, created_at, updated_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_due    ON jobs (run_at, id)   WHERE state = 'pending';
CREATE INDEX jobs_leased ON jobs (lease_until)  WHERE state = 'running';
CREATE INDEX jobs_dead   ON jobs (updated_at)   WHERE state = 'dead';
CREATE INDEX jobs_group  ON jobs (group_key)    WHERE group_key IS NOT NULL;
-- The dead list pages by id.
CREATE INDEX jobs_dead_by_id ON jobs (id) WHERE state = 'dead';

-- 2. The live board: active ladders, newest first; calls not yet over.
CREATE INDEX ladders_active ON ladders (started_at) WHERE state = 'active';
CREATE INDEX exotel_calls_active ON exotel_calls (created_at)
    WHERE state IN ('requested', 'placed', 'unknown', 'in-progress');

-- 3. The analytics of a time range.
CREATE INDEX exotel_calls_by_created ON exotel_calls (created_at);
CREATE INDEX inbound_calls_by_start ON inbound_calls (started_at);
CREATE INDEX voice_sessions_by_created ON voice_sessions (created_at);
