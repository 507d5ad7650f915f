-- Feedback events: append-only, owned by the org and the user who gave them, attributed to
-- a run and, copied at write time, to its thread, assistant, assistant version and
-- experiment variant (a run deleted later keeps its feedback counted). `token_jti` is the
-- single-use browser token that recorded the event (NULL otherwise): recorded once.
CREATE TABLE feedback (
    org_id             text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    feedback_id        uuid NOT NULL,
    run_id             uuid NOT NULL,
    thread_id          uuid,
    assistant_id       uuid NOT NULL,
    assistant_version  integer,
    experiment_id      uuid,
    variant            text,
    user_id            text NOT NULL,
    key                text NOT NULL CHECK (key ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    score              double precision
                       CHECK (score IS NULL OR score BETWEEN -1e300 AND 1e300),
    value              jsonb,
    comment            text,
    correction         jsonb,
    source             jsonb,
    token_jti          text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, feedback_id)
);

-- Stats: a key over a window (the score read from the index); search by run; a user's
-- events (visibility, export, erasure); the retention sweep.
CREATE INDEX feedback_key_time ON feedback (org_id, key, created_at) INCLUDE (score);
CREATE INDEX feedback_run ON feedback (org_id, run_id);
CREATE INDEX feedback_user ON feedback (org_id, user_id, created_at);
CREATE INDEX feedback_age ON feedback (created_at);
CREATE UNIQUE INDEX feedback_token_once ON feedback (org_id, token_jti)
    WHERE token_jti IS NOT NULL;

SELECT enable_tenant_rls('feedback');
-- Append-only: events are recorded and deleted (erasure, retention), never changed.
REVOKE UPDATE ON feedback FROM tenantgraph_app;

-- Feedback retention is one more per-org quota (days; none set: the caller's default).
ALTER TABLE org_quotas DROP CONSTRAINT org_quotas_quota_check;
ALTER TABLE org_quotas ADD CONSTRAINT org_quotas_quota_check CHECK (quota IN (
    'store_items', 'store_bytes', 'crons_per_user', 'feedback_retention_days'));

-- The sweeper: deletes up to `batch` events older than their org's retention (its
-- `feedback_retention_days` quota, else `default_days`) and returns how many.
CREATE FUNCTION sweep_feedback(batch integer, default_days integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = tenantgraph, pg_temp AS $$
DECLARE
    deleted integer;
BEGIN
    DELETE FROM feedback WHERE ctid = ANY(ARRAY(
        SELECT f.ctid FROM feedback f
        LEFT JOIN org_quotas q
            ON q.org_id = f.org_id AND q.quota = 'feedback_retention_days'
        WHERE f.created_at < now() - make_interval(
            days => least(coalesce(q.limit_value, default_days), 100000)::integer)
        LIMIT batch
        FOR UPDATE OF f SKIP LOCKED
    ));
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;

REVOKE ALL ON FUNCTION sweep_feedback(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sweep_feedback(integer, integer) TO tenantgraph_app;
