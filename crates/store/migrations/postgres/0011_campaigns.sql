-- Marketing campaigns: the campaign, its recipients (one row per number,
-- unique per campaign), and one message per recipient and channel the
-- campaign uses, which the sender claims, fences and finishes.
CREATE TABLE campaigns (
    -- cmp_ + creation time (ms, hex) + random: sorts by creation.
    id                   TEXT    PRIMARY KEY,
    name                 TEXT    NOT NULL,
    -- The template's key (the incumbent's `type`).
    template_key         TEXT    NOT NULL,
    -- sms, voice or both.
    channel              TEXT    NOT NULL,
    language             TEXT    NOT NULL,
    -- created, running, paused, cancelled or completed; changed only by
    -- compare-and-set.
    state                TEXT    NOT NULL,
    -- Why it is paused or cancelled (the operator's or the breaker's words).
    state_reason         TEXT,
    sms_per_second       DOUBLE PRECISION NOT NULL,
    calls_per_second     DOUBLE PRECISION NOT NULL,
    max_concurrent_calls BIGINT  NOT NULL,
    caller_id            TEXT,
    -- The incumbent's target_audience and schedule as given (JSON text).
    target_audience      TEXT,
    schedule             TEXT,
    -- Not before this time (schedule.start_at), ms.
    start_at             BIGINT,
    -- Recipients accepted, and numbers given again (not inserted).
    recipients           BIGINT  NOT NULL DEFAULT 0,
    duplicates           BIGINT  NOT NULL DEFAULT 0,
    -- The next recipient sequence number: each intake batch takes a range.
    next_seq             BIGINT  NOT NULL DEFAULT 1,
    created_at           BIGINT  NOT NULL,
    started_at           BIGINT,
    paused_at            BIGINT,
    finished_at          BIGINT,
    updated_at           BIGINT  NOT NULL
);

CREATE INDEX campaigns_by_state ON campaigns (state, id);

-- Keyed by (campaign, seq): an intake batch takes a range of seq, and the
-- export reads in that order.
CREATE TABLE campaign_recipients (
    campaign_id TEXT    NOT NULL REFERENCES campaigns (id),
    seq         BIGINT  NOT NULL,
    phone       TEXT    NOT NULL,
    name        TEXT,
    -- hi, en or mr when the row overrides the campaign's language.
    language    TEXT,
    -- Template variables (JSON object of strings); NULL when none.
    variables   TEXT,
    PRIMARY KEY (campaign_id, seq)
);

-- Dedup per campaign, and every campaign a number is in (phone first).
CREATE UNIQUE INDEX campaign_recipients_phone ON campaign_recipients (phone, campaign_id);

CREATE TABLE campaign_messages (
    campaign_id  TEXT    NOT NULL,
    -- sms or voice.
    channel      TEXT    NOT NULL,
    seq          BIGINT  NOT NULL,
    -- MessageState: queued, sending, sent, delivered, ...
    state        TEXT    NOT NULL,
    attempts     BIGINT  NOT NULL DEFAULT 0,
    -- queued: when it may be tried; sending: when the claim's lease ends.
    next_at      BIGINT  NOT NULL,
    -- Bumped by every claim: only the latest claimant may record an outcome.
    fence        BIGINT  NOT NULL DEFAULT 0,
    provider_sid TEXT,
    last_error   TEXT,
    updated_at   BIGINT  NOT NULL,
    PRIMARY KEY (campaign_id, channel, seq)
);

-- Claims (state, next_at order) and counts by state, from the index alone.
CREATE INDEX campaign_messages_due ON campaign_messages (campaign_id, channel, state, next_at);

-- Custom templates added through the API (the built-in ones come from
-- configuration).
CREATE TABLE campaign_templates (
    key         TEXT    PRIMARY KEY,
    -- The whole CampaignTemplate as JSON: category, description,
    -- variables and the texts per language.
    template    TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
