-- Idempotency-Key of internal API requests (POST /comms/bridge, the
-- /exotel/ivr/notify/* routes): the first request with a key holds it
-- ('running') until its answer is stored ('done'); retries get that answer.
CREATE TABLE idempotency_keys (
    scope         TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    -- SHA-256 of the request (method, path, body): the same key with another
    -- body is refused.
    fingerprint   TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    status        INTEGER,
    content_type  TEXT,
    body          BYTEA,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
