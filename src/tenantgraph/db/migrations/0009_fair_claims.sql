-- Claims are fair, and only for graphs the claiming worker has.
--
-- Fair: one org's (or one user's) backlog no longer delays everyone else's runs.
-- Ready runs take turns: first across the users of an org (each user's oldest run, then
-- each user's second, …), then across orgs (each org's first turn, then each org's second,
-- …), oldest first within a turn. A run of org B queued behind 500 runs of org A is among
-- the first two claims; one of user B behind 500 of user A in the same org, likewise.
-- The ranking reads every ready run of the queue (a sort of the backlog per claim); the
-- conditions are checked again on the locked row, so a run claimed meanwhile by another
-- worker is skipped, never claimed twice.
--
-- Only for the worker's graphs: a worker started with an older config leaves the runs of
-- graphs it does not have to the workers that have them, instead of failing them.
DROP FUNCTION claim_runs(text, integer, double precision);
CREATE FUNCTION claim_runs(
    worker_id text, max_runs integer, lease_seconds double precision, graph_ids text[]
)
RETURNS TABLE (org_id text, run_id uuid, owner_id text, attempt integer)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = tenantgraph, pg_temp AS $$
    WITH ready AS (
        SELECT q.org_id, q.run_id, q.available_at,
               row_number() OVER (PARTITION BY q.org_id, r.owner_id
                                  ORDER BY q.available_at, q.run_id) AS user_turn
        FROM run_queue q
        JOIN runs r ON r.org_id = q.org_id AND r.run_id = q.run_id
        JOIN assistants a ON a.org_id = r.org_id AND a.assistant_id = r.assistant_id
        WHERE q.available_at <= now()
          AND (q.locked_until IS NULL OR q.locked_until < now())
          AND a.graph_id = ANY(graph_ids)
          AND NOT EXISTS (
              SELECT 1 FROM runs o
              WHERE r.thread_id IS NOT NULL
                AND o.org_id = r.org_id AND o.thread_id = r.thread_id
                AND o.status IN ('pending', 'running')
                AND (o.created_at, o.run_id) < (r.created_at, r.run_id))
    ), turns AS (
        SELECT ready.org_id, ready.run_id, ready.available_at,
               row_number() OVER (PARTITION BY ready.org_id
                                  ORDER BY ready.user_turn, ready.available_at, ready.run_id)
                   AS org_turn
        FROM ready
    ), candidates AS (
        SELECT q.org_id, q.run_id
        FROM run_queue q
        JOIN turns t ON t.org_id = q.org_id AND t.run_id = q.run_id
        WHERE q.available_at <= now()
          AND (q.locked_until IS NULL OR q.locked_until < now())
        ORDER BY t.org_turn, t.available_at, t.run_id
        LIMIT max_runs
        FOR UPDATE OF q SKIP LOCKED
    ), claimed AS (
        UPDATE run_queue q
        SET locked_by = worker_id,
            locked_until = now() + make_interval(secs => lease_seconds),
            attempts = q.attempts + 1
        FROM candidates c
        WHERE q.org_id = c.org_id AND q.run_id = c.run_id
        RETURNING q.org_id, q.run_id, q.attempts
    ), started AS (
        UPDATE runs r SET status = 'running', updated_at = now()
        FROM claimed c
        WHERE r.org_id = c.org_id AND r.run_id = c.run_id
        RETURNING r.org_id, r.run_id, r.owner_id
    )
    SELECT s.org_id, s.run_id, s.owner_id, c.attempts
    FROM started s JOIN claimed c ON c.org_id = s.org_id AND c.run_id = s.run_id
$$;

REVOKE ALL ON FUNCTION claim_runs(text, integer, double precision, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_runs(text, integer, double precision, text[])
    TO tenantgraph_app;
