-- Campaign calls and delivery outcomes (issue 13).
--
-- One row per campaign call, written before Exotel is asked: what the call's
-- applets speak and in which language, whom key 9 opts out, and which
-- campaign message its status callback moves. A single call
-- (POST /campaigns/send/voice) has no campaign and no seq.
CREATE TABLE campaign_calls (
    -- The call attempt (calls.id) the call is placed under.
    attempt_id   TEXT    PRIMARY KEY,
    campaign_id  TEXT,
    seq          BIGINT,
    -- 1 for the message's first call, 2 for its first retry, ... (1 for a
    -- single call): the retries a busy or unanswered call has had.
    ordinal      BIGINT  NOT NULL,
    template_key TEXT    NOT NULL,
    -- promotional, service_implicit or service_explicit: the window a retry
    -- must fall in.
    category     TEXT    NOT NULL,
    language     TEXT    NOT NULL,
    phone        TEXT    NOT NULL,
    -- The rendered voice text the call's greeting speaks.
    text         TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL
);

-- A message's calls (its latest ordinal), and calls placed over a period.
CREATE INDEX campaign_calls_by_message ON campaign_calls (campaign_id, seq, ordinal);
CREATE INDEX campaign_calls_by_time ON campaign_calls (created_at);

-- SMS delivery reports find their message by Exotel's SmsSid.
CREATE INDEX campaign_messages_by_sid ON campaign_messages (provider_sid) WHERE provider_sid IS NOT NULL;

-- The analytics count messages by when their state last changed.
CREATE INDEX campaign_messages_by_update ON campaign_messages (updated_at);
