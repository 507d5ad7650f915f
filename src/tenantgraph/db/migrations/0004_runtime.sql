-- The runtime: LangGraph checkpoints as tenant tables, cancellation of runs, and the two
-- audited cross-tenant paths the workers need (claiming queued runs, finding due crons).

-- Thread state, in the layout of langgraph-checkpoint-postgres (checkpoint rows, one blob
-- per channel version, pending writes) with org_id first in every key and the thread as a
-- tenant parent: deleting a thread deletes its state.
CREATE TABLE checkpoints (
    org_id                text NOT NULL,
    thread_id             uuid NOT NULL,
    checkpoint_ns         text NOT NULL DEFAULT '',
    checkpoint_id         text NOT NULL,
    parent_checkpoint_id  text,
    run_id                text,
    checkpoint_type       text NOT NULL,
    checkpoint            bytea NOT NULL,
    channel_versions      jsonb NOT NULL DEFAULT '{}',
    metadata              jsonb NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, thread_id, checkpoint_ns, checkpoint_id),
    FOREIGN KEY (org_id, thread_id) REFERENCES threads (org_id, thread_id) ON DELETE CASCADE
);
CREATE INDEX checkpoints_run ON checkpoints (org_id, run_id) WHERE run_id IS NOT NULL;

CREATE TABLE checkpoint_blobs (
    org_id         text NOT NULL,
    thread_id      uuid NOT NULL,
    checkpoint_ns  text NOT NULL DEFAULT '',
    channel        text NOT NULL,
    version        text NOT NULL,
    blob_type      text NOT NULL,
    blob           bytea,
    PRIMARY KEY (org_id, thread_id, checkpoint_ns, channel, version),
    FOREIGN KEY (org_id, thread_id) REFERENCES threads (org_id, thread_id) ON DELETE CASCADE
);

CREATE TABLE checkpoint_writes (
    org_id         text NOT NULL,
    thread_id      uuid NOT NULL,
    checkpoint_ns  text NOT NULL DEFAULT '',
    checkpoint_id  text NOT NULL,
    task_id        text NOT NULL,
    idx            integer NOT NULL,
    channel        text NOT NULL,
    blob_type      text NOT NULL,
    blob           bytea NOT NULL,
    task_path      text NOT NULL DEFAULT '',
    PRIMARY KEY (org_id, thread_id, checkpoint_ns, checkpoint_id, task_id, idx),
    FOREIGN KEY (org_id, thread_id) REFERENCES threads (org_id, thread_id) ON DELETE CASCADE
);

SELECT enable_tenant_rls(t) FROM unnest(ARRAY[
    'checkpoints', 'checkpoint_blobs', 'checkpoint_writes'
]::regclass[]) AS t;

-- A cancel request for a running run; the worker executing it polls this with its lease.
ALTER TABLE runs ADD COLUMN cancel_action text
    CHECK (cancel_action IN ('interrupt', 'rollback'));
CREATE INDEX runs_thread_active ON runs (org_id, thread_id, created_at)
    WHERE status IN ('pending', 'running');

-- Claim up to max_runs runs for worker_id, across orgs: queued runs that are due, and
-- runs whose previous worker's lease expired. A run waits while an older run of its
-- thread is pending or running (one run per thread at a time, in creation order).
-- attempts counts claims; the caller applies the retry rule (runtime/worker.py).
CREATE FUNCTION claim_runs(worker_id text, max_runs integer, lease_seconds double precision)
RETURNS TABLE (org_id text, run_id uuid, owner_id text, attempt integer)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = tenantgraph, pg_temp AS $$
    WITH candidates AS (
        SELECT q.org_id, q.run_id
        FROM run_queue q
        JOIN runs r ON r.org_id = q.org_id AND r.run_id = q.run_id
        WHERE q.available_at <= now()
          AND (q.locked_until IS NULL OR q.locked_until < now())
          AND NOT EXISTS (
              SELECT 1 FROM runs o
              WHERE r.thread_id IS NOT NULL
                AND o.org_id = r.org_id AND o.thread_id = r.thread_id
                AND o.status IN ('pending', 'running')
                AND (o.created_at, o.run_id) < (r.created_at, r.run_id))
        ORDER BY q.available_at
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

-- Enabled crons whose next run is due, across orgs. Firing is claimed per cron inside its
-- tenant by a conditional UPDATE of next_run_date (runtime/crons.py), so two workers that
-- both see a cron here fire it once.
CREATE FUNCTION due_crons(max_crons integer)
RETURNS TABLE (org_id text, cron_id uuid, owner_id text, next_run_date timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = tenantgraph, pg_temp AS $$
    SELECT c.org_id, c.cron_id, c.owner_id, c.next_run_date
    FROM crons c
    WHERE c.enabled AND c.next_run_date <= now()
    ORDER BY c.next_run_date
    LIMIT max_crons
$$;

REVOKE ALL ON FUNCTION claim_runs(text, integer, double precision), due_crons(integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_runs(text, integer, double precision), due_crons(integer)
    TO tenantgraph_app;
