-- Durable job queue: every timer and side effect of the service is a row here.
-- Times are milliseconds since the Unix epoch (UTC).
CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,
    -- Idempotency key: enqueueing the same key twice yields one job.
    key           TEXT    NOT NULL UNIQUE,
    -- Optional group (for example every step of one ladder), cancelled together.
    group_key     TEXT,
    payload       TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'done', 'dead', 'cancelled')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    run_at        INTEGER NOT NULL,
    -- Fencing token: bumped on every claim, so a worker whose lease expired
    -- cannot complete or fail a job that another worker has since claimed.
    lease_token   INTEGER NOT NULL DEFAULT 0,
    lease_until   INTEGER,
    locked_by     TEXT,
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE INDEX jobs_due    ON jobs (run_at, id)   WHERE state = 'pending';
CREATE INDEX jobs_leased ON jobs (lease_until)  WHERE state = 'running';
CREATE INDEX jobs_dead   ON jobs (updated_at)   WHERE state = 'dead';
CREATE INDEX jobs_group  ON jobs (group_key)    WHERE group_key IS NOT NULL;

-- Append-only event timeline: what happened to an order, on which channel.
CREATE TABLE timeline_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id       TEXT,
    escalation_id  TEXT,
    call_sid       TEXT,
    party          TEXT,
    channel        TEXT,
    kind           TEXT    NOT NULL,
    detail         TEXT    NOT NULL,
    at             INTEGER NOT NULL
);

CREATE INDEX timeline_by_order      ON timeline_events (order_id, at, id) WHERE order_id IS NOT NULL;
CREATE INDEX timeline_by_escalation ON timeline_events (escalation_id, at, id) WHERE escalation_id IS NOT NULL;
CREATE INDEX timeline_by_call       ON timeline_events (call_sid) WHERE call_sid IS NOT NULL;

-- Small durable settings the service generates for itself (sandbox keys).
CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
