-- Number-masking sessions: two parties of an order talk through one of our
-- ExoPhones (the masked number) and never see each other's number. A session
-- is open while closed_at is NULL and expires_at is ahead; a delivered order
-- closes its sessions by moving expires_at to the end of the grace period.
CREATE TABLE masking_sessions (
    id             TEXT    PRIMARY KEY,
    order_id       TEXT    NOT NULL,
    -- customer_rider, customer_vendor, rider_vendor
    pair           TEXT    NOT NULL,
    masked_number  TEXT    NOT NULL,
    party_a_role   TEXT    NOT NULL,
    party_a_phone  TEXT    NOT NULL,
    party_b_role   TEXT    NOT NULL,
    party_b_phone  TEXT    NOT NULL,
    -- 1 when the pool could not avoid a phone holding two open sessions on
    -- this number (its calls there are resolved by order digits).
    shared         INTEGER NOT NULL DEFAULT 0,
    source         TEXT    NOT NULL,
    opened_at      INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    closed_at      INTEGER,
    close_reason   TEXT
);

CREATE INDEX masking_sessions_by_order ON masking_sessions (order_id, pair);
CREATE INDEX masking_sessions_by_number ON masking_sessions (masked_number, expires_at);

-- Calls through a masked number: inbound calls to it (keyed by CallSid) and
-- outbound masked bridges (keyed by our call attempt), with their outcome.
CREATE TABLE masked_calls (
    key            TEXT    PRIMARY KEY,
    direction      TEXT    NOT NULL,
    masked_number  TEXT    NOT NULL,
    session_id     TEXT,
    order_id       TEXT,
    caller_role    TEXT,
    -- resolving, connecting, no_session, completed, busy, no-answer, failed, canceled
    outcome        TEXT    NOT NULL,
    -- wrong order digits entered so far
    digit_tries    INTEGER NOT NULL DEFAULT 0,
    started_at     INTEGER NOT NULL,
    ended_at       INTEGER,
    duration_secs  INTEGER
);

CREATE INDEX masked_calls_by_start ON masked_calls (started_at);
