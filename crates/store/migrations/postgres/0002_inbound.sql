-- Deduplication of inbound webhooks: providers retry, and a retry carries the
-- same key (CallSid + event, SmsSid + status, Jupiter event hash).
CREATE TABLE inbound_events (
    key          TEXT    PRIMARY KEY,
    source       TEXT    NOT NULL,
    received_at  BIGINT  NOT NULL
);
