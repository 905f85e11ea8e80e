-- Missed calls and the callbacks they bring (issue 10, item 3).

-- Which number each call attempt dials, as a SHA-256 digest of its E.164
-- form: exact enough to tell whether we are on the phone with a number, and
-- the full number still lives only in the job that places the call.
ALTER TABLE exotel_calls ADD COLUMN to_digest TEXT;
ALTER TABLE exotel_calls ADD COLUMN bridge_digest TEXT;
CREATE INDEX exotel_calls_open_by_to ON exotel_calls (to_digest, created_at)
    WHERE state IN ('requested', 'placed', 'unknown', 'in-progress');
CREATE INDEX exotel_calls_open_by_bridge ON exotel_calls (bridge_digest, created_at)
    WHERE state IN ('requested', 'placed', 'unknown', 'in-progress');

-- One callback per caller: brought by their first missed call, joined by
-- the next ones within the window and while it is open.
CREATE TABLE missed_call_callbacks (
    id               TEXT    PRIMARY KEY,
    -- E.164; dialled by the callback and texted when it gives up.
    phone            TEXT    NOT NULL,
    -- scheduled (a try is due), calling (a try is ringing), answered, gave_up.
    state            TEXT    NOT NULL,
    first_missed_at  BIGINT  NOT NULL,
    missed_count     BIGINT  NOT NULL,
    -- Tries claimed so far (the first call is try 1).
    tries            BIGINT  NOT NULL DEFAULT 0,
    due_at           BIGINT  NOT NULL,
    -- Our call attempt (exotel_calls.id) of the current try.
    attempt_id       TEXT,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    finished_at      BIGINT
);

-- At most one open callback per number, whichever replica records the call.
CREATE UNIQUE INDEX missed_call_callbacks_open ON missed_call_callbacks (phone)
    WHERE state IN ('scheduled', 'calling');
CREATE INDEX missed_call_callbacks_by_phone ON missed_call_callbacks (phone, first_missed_at);
CREATE INDEX missed_call_callbacks_by_attempt ON missed_call_callbacks (attempt_id) WHERE attempt_id IS NOT NULL;
CREATE INDEX missed_call_callbacks_by_first ON missed_call_callbacks (first_missed_at);

-- Every missed call, once (by CallSid), and what it did.
CREATE TABLE missed_calls (
    call_sid     TEXT    PRIMARY KEY,
    phone        TEXT    NOT NULL,
    at           BIGINT  NOT NULL,
    -- scheduled (brought a callback), joined (an open or recent one), talking
    -- (we were on the phone with them).
    outcome      TEXT    NOT NULL,
    callback_id  TEXT
);

CREATE INDEX missed_calls_by_at ON missed_calls (at);
