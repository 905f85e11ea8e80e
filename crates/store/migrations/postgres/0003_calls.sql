-- Our outbound call attempts. The attempt id travels to Exotel in CustomField,
-- so an attempt whose outcome was ambiguous (the connect request timed out)
-- is reconciled when its status callback arrives.
CREATE TABLE exotel_calls (
    id             TEXT    PRIMARY KEY,
    call_sid       TEXT    UNIQUE,
    purpose        TEXT    NOT NULL,
    order_id       TEXT,
    escalation_id  TEXT,
    party          TEXT,
    -- Masked: the full number lives only in the job that places the call.
    to_masked      TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    detail         TEXT,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);

CREATE INDEX exotel_calls_by_order ON exotel_calls (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX exotel_calls_unresolved ON exotel_calls (updated_at) WHERE state IN ('requested', 'unknown');

-- Every request to Exotel's API and its outcome.
CREATE TABLE exotel_requests (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint      TEXT    NOT NULL,
    method        TEXT    NOT NULL,
    attempt       BIGINT  NOT NULL,
    http_status   BIGINT,
    outcome       TEXT    NOT NULL,
    code          BIGINT,
    message       TEXT,
    sid           TEXT,
    custom_field  TEXT,
    duration_ms   BIGINT  NOT NULL,
    at            BIGINT  NOT NULL
);

CREATE INDEX exotel_requests_by_time ON exotel_requests (at);
