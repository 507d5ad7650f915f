-- langgraph.json's `checkpointer.ttl`: threads left alone longer than the TTL are deleted or
-- cut back to their latest state by the sweeper. Finding them crosses orgs, so it is one
-- audited function; the sweeper then acts on each thread as its owner, in the owner's org.
CREATE INDEX threads_updated ON threads (updated_at);

-- Up to `batch` threads of any org not updated for `ttl_minutes` and not running a run;
-- with `keep_latest`, only those that still have a checkpoint older than the latest of its
-- namespace (the others are done already).
CREATE FUNCTION expired_threads(ttl_minutes double precision, keep_latest boolean, batch integer)
RETURNS TABLE (org_id text, thread_id uuid, owner_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = tenantgraph, pg_temp AS $$
    SELECT t.org_id, t.thread_id, t.owner_id FROM threads t
    WHERE t.updated_at < now() - make_interval(secs => ttl_minutes * 60)
      AND t.status <> 'busy'
      AND (NOT keep_latest OR EXISTS (
          SELECT 1 FROM checkpoints c
          WHERE c.org_id = t.org_id AND c.thread_id = t.thread_id
            AND c.checkpoint_id < (SELECT max(l.checkpoint_id) FROM checkpoints l
                WHERE l.org_id = c.org_id AND l.thread_id = c.thread_id
                  AND l.checkpoint_ns = c.checkpoint_ns)))
    ORDER BY t.updated_at
    LIMIT batch
$$;

REVOKE ALL ON FUNCTION expired_threads(double precision, boolean, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION expired_threads(double precision, boolean, integer) TO tenantgraph_app;
