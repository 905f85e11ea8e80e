-- Voice ordering: the durable state of each call's (or API session's)
-- ordering dialog, saved after every turn. `version` makes each save a
-- compare-and-swap: two replicas (or a retried webhook) running a turn of
-- the same call cannot both win, and the loser runs its turn again on the
-- state that won.
CREATE TABLE voice_sessions (
    -- The CallSid of an Exotel call, or the id of an API session.
    session_id  TEXT    PRIMARY KEY,
    -- call or api.
    channel     TEXT    NOT NULL,
    -- E.164 of the caller, as inbound_calls keeps it; NULL for an API
    -- session without a phone.
    phone       TEXT,
    -- The serialized mangwale_voice::dialog::Dialog (JSON).
    dialog      TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    -- active, ended, handed_off or placed.
    status      TEXT    NOT NULL,
    -- Dialog::is_resumable at the last save: a caller who drops now is
    -- offered this cart when they call back. Cleared when a later call
    -- takes the cart up.
    resumable   INTEGER NOT NULL,
    -- The last turn that carried a turn id, and its reply (JSON): that
    -- turn sent again is answered from here, not run twice.
    last_turn   TEXT,
    last_reply  TEXT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE INDEX voice_sessions_by_phone ON voice_sessions (phone, updated_at);
