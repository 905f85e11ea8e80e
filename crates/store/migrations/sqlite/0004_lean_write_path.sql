-- The webhook write path touches as few randomly placed index pages as it
-- can: each one costs a 4 KiB page in the WAL for every event of a batch.
--
-- 1. A job may have no idempotency key: the follow-up of an inbound event is
--    already made once-only by the event's deduplication key, in the same
--    transaction, and a random key of its own would add a random index page.
CREATE TABLE jobs_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,
    -- Idempotency key (NULL: none); enqueueing the same key twice yields one job.
    key           TEXT    UNIQUE,
    group_key     TEXT,
    payload       TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'done', 'dead', 'cancelled')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    run_at        INTEGER NOT NULL,
    lease_token   INTEGER NOT NULL DEFAULT 0,
    lease_until   INTEGER,
    locked_by     TEXT,
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
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

-- 2. Nothing looks the timeline up by CallSid.
DROP INDEX timeline_by_call;

-- 3. Deduplication keys live in the key's own B-tree (no separate rowid table).
CREATE TABLE inbound_events_new (
    key          TEXT    PRIMARY KEY,
    source       TEXT    NOT NULL,
    received_at  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO inbound_events_new SELECT key, source, received_at FROM inbound_events;
DROP TABLE inbound_events;
ALTER TABLE inbound_events_new RENAME TO inbound_events;
