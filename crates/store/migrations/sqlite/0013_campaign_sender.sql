-- The campaign sender's shared state: pacing limiters every replica takes
-- slots from, and each campaign's breaker record.

-- A limiter of the generic cell-rate algorithm: `tat` is when its next slot
-- opens (µs since the epoch). `campaign:<id>:sms`, `campaign:<id>:voice`
-- pace one campaign; `exotel:voice` keeps every replica's calls under
-- Exotel's account limit. Taken with one conditional UPDATE per reservation.
CREATE TABLE rate_limiters (
    name       TEXT   PRIMARY KEY,
    tat        BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The last sends of a running campaign ('1' went through, '0' failed,
-- oldest first, at most the breaker's window), and its last trip.
CREATE TABLE campaign_breakers (
    campaign_id TEXT   PRIMARY KEY,
    recent      TEXT   NOT NULL DEFAULT '',
    tripped_at  BIGINT,
    reason      TEXT,
    updated_at  BIGINT NOT NULL
);

-- A campaign's calls not yet over (the concurrent-call cap).
CREATE INDEX exotel_calls_open_campaign ON exotel_calls (party)
    WHERE purpose = 'campaign' AND state IN ('requested', 'placed', 'unknown', 'in-progress');
