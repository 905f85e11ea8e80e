-- Escalation ladders and their steps. The step jobs live in `jobs` (group
-- 'ladder:<escalation_id>'); a step job sends only after marking its row here
-- 'sending' while the ladder is 'active' (see LadderStore::claim_step).
CREATE TABLE ladders (
    escalation_id  TEXT    PRIMARY KEY,
    kind           TEXT    NOT NULL,
    order_id       TEXT,
    party          TEXT    NOT NULL,
    -- E.164; later steps call this number. Never copied into the timeline.
    phone          TEXT,
    language       TEXT    NOT NULL,
    context        JSONB   NOT NULL,
    -- The ladder definition as it was when the ladder started.
    definition     JSONB   NOT NULL,
    state          TEXT    NOT NULL,
    started_at     BIGINT  NOT NULL,
    finished_at    BIGINT,
    stop_action    TEXT,
    stop_actor     TEXT,
    updated_at     BIGINT  NOT NULL
);

CREATE INDEX ladders_by_order ON ladders (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX ladders_by_start ON ladders (started_at);

CREATE TABLE ladder_steps (
    escalation_id  TEXT    NOT NULL REFERENCES ladders (escalation_id) ON DELETE CASCADE,
    step_index     INTEGER NOT NULL,
    channel        TEXT    NOT NULL,
    due_at         BIGINT  NOT NULL,
    state          TEXT    NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    provider_id    TEXT,
    detail         TEXT,
    updated_at     BIGINT  NOT NULL,
    PRIMARY KEY (escalation_id, step_index)
);

-- Wrong keys per call and menu, for "re-prompt up to twice".
CREATE TABLE ivr_invalid_keys (
    call_sid    TEXT    NOT NULL,
    menu        TEXT    NOT NULL,
    count       INTEGER NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (call_sid, menu)
);
