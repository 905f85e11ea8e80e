-- A job may have no idempotency key: the follow-up of an inbound event is
-- already made once-only by the event's deduplication key, in the same
-- transaction. (UNIQUE admits any number of NULLs.)
ALTER TABLE jobs ALTER COLUMN key DROP NOT NULL;

-- Nothing looks the timeline up by CallSid.
DROP INDEX timeline_by_call;
