-- The job queue under sustained load.
--
-- Every job is updated at least twice (claimed, finished), and each update
-- leaves a dead row and dead entries in the partial indexes the claim reads
-- (pending, running). The planner's statistics count live rows only, so
-- those indexes look tiny while they hold an entry for every job finished
-- since the last vacuum, and a young table's statistics say the whole table
-- is small. Left to itself the planner then read every dead entry on every
-- claim (bitmap scans, which unlike index scans never mark an entry dead for
-- the next reader) and scanned the whole table on every completion: under
-- load that was most of PostgreSQL's work. The claim and the completion are
-- therefore functions with their plans pinned: index scans only, each
-- completed row by its primary key. As functions they are also one round
-- trip each, where a transaction with `SET LOCAL` would be four.

-- Vacuum the queue within seconds of its churn, not after a fifth of the
-- table is dead (PostgreSQL's default).
ALTER TABLE jobs SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0.05
);

-- Claims up to p_limit due jobs of p_kinds (and jobs whose lease expired
-- before their last attempt), oldest first. SKIP LOCKED: rows another
-- replica is claiming right now are passed over instead of waited for. Due
-- and expired jobs are two index-ordered branches cut at the limit, rather
-- than one OR that would gather and sort every due row first.
CREATE FUNCTION mangwale_claim_jobs(p_now BIGINT, p_lease_until BIGINT, p_worker TEXT, p_kinds TEXT[], p_limit BIGINT)
RETURNS SETOF jobs
LANGUAGE sql
SET enable_bitmapscan = off
SET enable_seqscan = off
AS $$
    WITH due AS (
        SELECT id, run_at FROM jobs
        WHERE state = 'pending' AND run_at <= p_now AND kind = ANY(p_kinds)
        ORDER BY run_at, id LIMIT p_limit
        FOR UPDATE SKIP LOCKED),
    expired AS (
        SELECT id, run_at FROM jobs
        WHERE state = 'running' AND lease_until < p_now AND attempts < max_attempts AND kind = ANY(p_kinds)
        ORDER BY run_at, id LIMIT p_limit
        FOR UPDATE SKIP LOCKED)
    UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_token = lease_token + 1,
           lease_until = p_lease_until, locked_by = p_worker, updated_at = p_now
    WHERE id IN (
        SELECT id FROM (SELECT id, run_at FROM due UNION ALL SELECT id, run_at FROM expired) AS claimable
        ORDER BY run_at, id LIMIT p_limit)
    RETURNING jobs.*
$$;

-- Marks each held lease's job done, if the lease is still held; the ids of
-- those completed. `(state = 'running') IS TRUE` means `state = 'running'`
-- (state is never NULL) without matching the partial index of running jobs.
CREATE FUNCTION mangwale_complete_jobs(p_ids BIGINT[], p_tokens BIGINT[], p_now BIGINT)
RETURNS SETOF BIGINT
LANGUAGE sql
SET enable_bitmapscan = off
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
    UPDATE jobs SET state = 'done', lease_until = NULL, locked_by = NULL, updated_at = p_now
    FROM unnest(p_ids, p_tokens) AS held(id, token)
    WHERE jobs.id = held.id AND jobs.lease_token = held.token AND (jobs.state = 'running') IS TRUE
    RETURNING jobs.id
$$;
