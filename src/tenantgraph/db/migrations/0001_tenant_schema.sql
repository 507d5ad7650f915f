-- The tenant schema: every tenant table has org_id first in its primary key, composite
-- foreign keys to its tenant parents, org_id in every UNIQUE, and forced row-level
-- security reading the transaction-local setting tenantgraph.org_id.
-- Runs as tenantgraph_owner with search_path = tenantgraph.

-- Applies the one tenant policy to a table. Later migrations call it for new tables.
CREATE FUNCTION enable_tenant_rls(target regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', target);
    -- A missing or stale ('') tenant compares to NULL: no row is visible or writable.
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s
             USING (org_id = NULLIF(current_setting(''tenantgraph.org_id'', true), ''''))
             WITH CHECK (org_id = NULLIF(current_setting(''tenantgraph.org_id'', true), ''''))',
        target);
    -- The owner role runs migrations and the audited cross-tenant functions below.
    EXECUTE format(
        'CREATE POLICY owner_maintenance ON %s TO tenantgraph_owner USING (true) WITH CHECK (true)',
        target);
END
$$;

-- The rule of scope.validate_identifier. Every tenant row reaches orgs by foreign key,
-- so checking org ids here checks them everywhere.
CREATE FUNCTION is_valid_identifier(value text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT value ~ '^[^[:space:][:cntrl:]{}.]{1,128}$'
$$;

CREATE TABLE orgs (
    org_id      text PRIMARY KEY CHECK (is_valid_identifier(org_id)),
    name        text NOT NULL,
    slug        text NOT NULL,
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
    org_id      text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    user_id     text NOT NULL CHECK (is_valid_identifier(user_id)),
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);

CREATE TABLE api_keys (
    org_id       text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    key_id       uuid NOT NULL,
    user_id      text NOT NULL,
    role         text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    name         text NOT NULL DEFAULT '',
    key_hash     bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    PRIMARY KEY (org_id, key_id)
);
-- Looked up by hash before the org is known (resolve_api_key); SHA-256 of a random
-- secret, so not UNIQUE across orgs by rule but collision-free in practice.
CREATE INDEX api_keys_hash ON api_keys (key_hash);

CREATE TABLE assistants (
    org_id        text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    assistant_id  uuid NOT NULL,
    graph_id      text NOT NULL,
    name          text NOT NULL,
    description   text,
    config        jsonb NOT NULL DEFAULT '{}',
    context       jsonb NOT NULL DEFAULT '{}',
    metadata      jsonb NOT NULL DEFAULT '{}',
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, assistant_id)
);
CREATE INDEX assistants_graph ON assistants (org_id, graph_id);
CREATE INDEX assistants_metadata ON assistants USING gin (metadata jsonb_path_ops);

CREATE TABLE assistant_versions (
    org_id        text NOT NULL,
    assistant_id  uuid NOT NULL,
    version       integer NOT NULL,
    graph_id      text NOT NULL,
    name          text NOT NULL,
    description   text,
    config        jsonb NOT NULL DEFAULT '{}',
    context       jsonb NOT NULL DEFAULT '{}',
    metadata      jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, assistant_id, version),
    FOREIGN KEY (org_id, assistant_id) REFERENCES assistants (org_id, assistant_id)
        ON DELETE CASCADE
);

CREATE TABLE threads (
    org_id      text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    thread_id   uuid NOT NULL,
    owner_id    text NOT NULL,
    status      text NOT NULL DEFAULT 'idle'
                CHECK (status IN ('idle', 'busy', 'interrupted', 'error')),
    metadata    jsonb NOT NULL DEFAULT '{}',
    config      jsonb NOT NULL DEFAULT '{}',
    "values"    jsonb,
    interrupts  jsonb NOT NULL DEFAULT '{}',
    error       jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, thread_id)
);
CREATE INDEX threads_owner ON threads (org_id, owner_id, created_at DESC);
CREATE INDEX threads_metadata ON threads USING gin (metadata jsonb_path_ops);

CREATE TABLE runs (
    org_id              text NOT NULL,
    run_id              uuid NOT NULL,
    thread_id           uuid,
    assistant_id        uuid NOT NULL,
    owner_id            text NOT NULL,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'running', 'error', 'success',
                                          'timeout', 'interrupted')),
    metadata            jsonb NOT NULL DEFAULT '{}',
    kwargs              jsonb NOT NULL DEFAULT '{}',
    multitask_strategy  text NOT NULL DEFAULT 'reject'
                        CHECK (multitask_strategy IN ('reject', 'enqueue', 'interrupt',
                                                      'rollback')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, run_id),
    FOREIGN KEY (org_id, thread_id) REFERENCES threads (org_id, thread_id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, assistant_id) REFERENCES assistants (org_id, assistant_id)
        ON DELETE CASCADE
);
CREATE INDEX runs_thread ON runs (org_id, thread_id, created_at DESC);

-- Pending work for the workers; a row lives here from enqueue until a worker finishes.
CREATE TABLE run_queue (
    org_id        text NOT NULL,
    run_id        uuid NOT NULL,
    available_at  timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0,
    locked_by     text,
    locked_until  timestamptz,
    PRIMARY KEY (org_id, run_id),
    FOREIGN KEY (org_id, run_id) REFERENCES runs (org_id, run_id) ON DELETE CASCADE
);
CREATE INDEX run_queue_ready ON run_queue (available_at) WHERE locked_by IS NULL;

CREATE TABLE crons (
    org_id         text NOT NULL,
    cron_id        uuid NOT NULL,
    assistant_id   uuid NOT NULL,
    thread_id      uuid,
    owner_id       text NOT NULL,
    schedule       text NOT NULL,
    payload        jsonb NOT NULL DEFAULT '{}',
    metadata       jsonb NOT NULL DEFAULT '{}',
    enabled        boolean NOT NULL DEFAULT true,
    end_time       timestamptz,
    next_run_date  timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, cron_id),
    FOREIGN KEY (org_id, assistant_id) REFERENCES assistants (org_id, assistant_id)
        ON DELETE CASCADE,
    FOREIGN KEY (org_id, thread_id) REFERENCES threads (org_id, thread_id) ON DELETE CASCADE
);
CREATE INDEX crons_due ON crons (next_run_date) WHERE enabled;

-- Long-term memory. The owner is the writing user or 'shared' for the org-wide space;
-- the namespace is a text[] so ('a',) and ('a b',) or ('ab',) can never be confused.
CREATE TABLE store_items (
    org_id      text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    owner_id    text NOT NULL,
    namespace   text[] NOT NULL CHECK (cardinality(namespace) > 0),
    key         text NOT NULL,
    value       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    ttl_minutes double precision,
    PRIMARY KEY (org_id, owner_id, namespace, key)
);
CREATE INDEX store_items_expiry ON store_items (expires_at) WHERE expires_at IS NOT NULL;

-- The namespace index: one row per namespace that holds at least one item, kept in
-- step with store_items so listing namespaces never scans items.
CREATE TABLE store_namespaces (
    org_id      text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    owner_id    text NOT NULL,
    namespace   text[] NOT NULL,
    item_count  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, owner_id, namespace)
);

SELECT enable_tenant_rls(t) FROM unnest(ARRAY[
    'orgs', 'memberships', 'api_keys', 'assistants', 'assistant_versions', 'threads',
    'runs', 'run_queue', 'crons', 'store_items', 'store_namespaces'
]::regclass[]) AS t;

-- Audited cross-tenant paths. SECURITY DEFINER functions run as tenantgraph_owner (whose
-- policy sees every org); each does one narrow thing, and they are the only way the
-- runtime role reaches more than one tenant.

-- Resolve an API key hash to its org, user and role, before the org is known.
CREATE FUNCTION resolve_api_key(hash bytea)
RETURNS TABLE (org_id text, key_id uuid, user_id text, role text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = tenantgraph, pg_temp AS $$
    SELECT k.org_id, k.key_id, k.user_id, k.role
    FROM api_keys k
    WHERE k.key_hash = hash AND k.revoked_at IS NULL
$$;

-- Platform administration: list every organisation.
CREATE FUNCTION list_orgs(lim integer, off integer)
RETURNS TABLE (org_id text, name text, slug text, metadata jsonb, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = tenantgraph, pg_temp AS $$
    SELECT o.org_id, o.name, o.slug, o.metadata, o.created_at
    FROM orgs o ORDER BY o.created_at, o.org_id LIMIT lim OFFSET off
$$;

REVOKE ALL ON FUNCTION resolve_api_key(bytea), list_orgs(integer, integer),
    enable_tenant_rls(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION resolve_api_key(bytea), list_orgs(integer, integer)
    TO tenantgraph_app;
