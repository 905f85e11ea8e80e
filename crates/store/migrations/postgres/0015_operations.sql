-- Operations (issue 14): dead jobs can be discarded, and the live board and
-- the analytics read calls, ladders and sessions by time.
--
-- 1. A job may be 'discarded': an operator gave up on a dead job. It leaves
--    the dead list and is pruned like a finished job.
ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('pending', 'running', 'done', 'dead', 'cancelled', 'discarded'));
-- The dead list pages by id.
CREATE INDEX jobs_dead_by_id ON jobs (id) WHERE state = 'dead';

-- 2. The live board: active ladders, newest first; calls not yet over.
CREATE INDEX ladders_active ON ladders (started_at) WHERE state = 'active';
CREATE INDEX exotel_calls_active ON exotel_calls (created_at)
    WHERE state IN ('requested', 'placed', 'unknown', 'in-progress');

-- 3. The analytics of a time range.
CREATE INDEX exotel_calls_by_created ON exotel_calls (created_at);
CREATE INDEX inbound_calls_by_start ON inbound_calls (started_at);
CREATE INDEX voice_sessions_by_created ON voice_sessions (created_at);
