-- Campaign compliance: the suppression ledger. Append-only: an opt-out,
-- a DND report or a scrub-list line adds an entry; an operator lifting a
-- suppression adds a removal entry, which lifts every earlier entry of the
-- number. Nothing is updated or deleted, so the ledger shows who stopped
-- a number, when, and through what, for as long as it is kept.
CREATE TABLE suppressions (
    -- Orders the ledger: an entry is in force when no removal of its
    -- number has a larger id.
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    -- E.164 of the number.
    phone   TEXT    NOT NULL,
    -- add or remove.
    action  TEXT    NOT NULL,
    -- mangwale_core::campaign::SuppressionSource (sms_stop, whatsapp_stop,
    -- call_key_9, missed_call, api, exotel_dnd, scrub_list); for a removal,
    -- the channel it came through (api).
    source  TEXT    NOT NULL,
    note    TEXT,
    -- Who wrote the entry: an operator's label, or the webhook or job.
    actor   TEXT    NOT NULL,
    at      BIGINT  NOT NULL
);

-- Every query asks about numbers: the entries of one number in ledger order.
CREATE INDEX suppressions_by_phone ON suppressions (phone, id);
CREATE INDEX suppressions_by_source ON suppressions (source, id);
