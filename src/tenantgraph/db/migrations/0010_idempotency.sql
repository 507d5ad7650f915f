-- Idempotency records: the first answer to a request sent with an `Idempotency-Key`, kept
-- for 24 h in Postgres so that a Valkey restart cannot make a retry run a second time.
-- One row per requester (user, role, credential) and key. `token` marks the claim of a
-- request still running; `expires_at` ends a claim whose process died, or a kept answer.
CREATE TABLE idempotency_records (
    org_id       text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    user_id      text NOT NULL,
    role         text NOT NULL,
    credential   text NOT NULL,
    idem_key     text NOT NULL,
    fingerprint  text NOT NULL,
    state        text NOT NULL CHECK (state IN ('pending', 'done', 'unreplayable')),
    token        text,
    status       integer,
    headers      jsonb,
    body         bytea,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (org_id, user_id, role, credential, idem_key)
);

CREATE INDEX idempotency_records_expiry ON idempotency_records (expires_at);

SELECT enable_tenant_rls('idempotency_records');

-- The sweeper: deletes up to `batch` expired records of any org and returns how many.
-- Claims treat an expired record as absent whether or not this has run; it frees the space.
CREATE FUNCTION sweep_idempotency_records(batch integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = tenantgraph, pg_temp AS $$
DECLARE
    deleted integer;
BEGIN
    DELETE FROM idempotency_records WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM idempotency_records
        WHERE expires_at <= now()
        ORDER BY expires_at
        LIMIT batch
        FOR UPDATE SKIP LOCKED
    ));
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;

REVOKE ALL ON FUNCTION sweep_idempotency_records(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sweep_idempotency_records(integer) TO tenantgraph_app;
