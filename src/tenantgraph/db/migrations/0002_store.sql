-- Long-term memory for TenantStore (services/memory.py, SQL in stores/item_*.py).
--
-- namespace text[] stays the one truth; ns_path is its index key, derived by the database:
-- every label followed by '.', which labels may not contain. So a prefix ('u1',) is the
-- byte range ['u1.', 'u1/') and can never reach ('u10',). COLLATE "C" makes that range and
-- the namespace sort order byte (= code point) order, as in Python.

CREATE FUNCTION store_ns_path(namespace text[]) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_to_string(namespace, '.') || '.'
$$;

-- Labels are non-empty and dot-free (the HTTP API joins namespaces with dots).
CREATE FUNCTION store_valid_namespace(namespace text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT cardinality(namespace) > 0
       AND NOT ('' = ANY (namespace))
       AND position('.' IN array_to_string(namespace, '')) = 0
$$;

-- Items: owner is the writer, or 'shared' exactly when the first label is 'shared'.
ALTER TABLE store_items DROP CONSTRAINT store_items_pkey;
ALTER TABLE store_items DROP CONSTRAINT store_items_namespace_check;
ALTER TABLE store_items ALTER COLUMN namespace TYPE text[] COLLATE "C";
ALTER TABLE store_items
    ADD COLUMN ns_path text COLLATE "C" GENERATED ALWAYS AS (store_ns_path(namespace)) STORED,
    ADD COLUMN value_bytes integer GENERATED ALWAYS AS (octet_length(value::text)) STORED,
    ADD CONSTRAINT store_items_namespace CHECK (store_valid_namespace(namespace)),
    ADD CONSTRAINT store_items_shared_owner
        CHECK ((owner_id = 'shared') = (namespace[1] = 'shared')),
    ADD PRIMARY KEY (org_id, owner_id, ns_path, key);
-- Room on each page for HOT updates: a value update then touches no index (docs/measurements.md).
ALTER TABLE store_items SET (fillfactor = 70);

-- The namespace index: one row per (owner, namespace) that has been written. Puts add rows
-- (ON CONFLICT DO NOTHING, no row lock, so concurrent puts never queue on it); reads keep
-- only rows that still hold a live item; gc_store_namespaces() drops empty ones.
ALTER TABLE store_namespaces DROP CONSTRAINT store_namespaces_pkey;
ALTER TABLE store_namespaces DROP COLUMN item_count;
ALTER TABLE store_namespaces ALTER COLUMN namespace TYPE text[] COLLATE "C";
ALTER TABLE store_namespaces
    ADD COLUMN ns_path text COLLATE "C" GENERATED ALWAYS AS (store_ns_path(namespace)) STORED,
    ADD PRIMARY KEY (org_id, owner_id, ns_path);

-- Embeddings live beside the items so a value update stays HOT and never rewrites the
-- HNSW index. Untyped vector: each configured dimension gets its own partial HNSW index
-- (ensure_store_vector_index); one row per embedded field of an item.
CREATE TABLE store_vectors (
    org_id     text NOT NULL,
    owner_id   text NOT NULL,
    ns_path    text COLLATE "C" NOT NULL,
    key        text NOT NULL,
    field      text NOT NULL,
    embedding  vector NOT NULL,
    PRIMARY KEY (org_id, owner_id, ns_path, key, field),
    FOREIGN KEY (org_id, owner_id, ns_path, key)
        REFERENCES store_items (org_id, owner_id, ns_path, key) ON DELETE CASCADE
);

-- Without it the planner guesses vector_dims(embedding) = N matches 0.5% of rows, takes
-- the HNSW index for an exact per-tenant scan and joins each candidate row by row.
CREATE STATISTICS store_vectors_dims ON (vector_dims(embedding)) FROM store_vectors;

-- Per-org usage for quotas, split over a few shards so concurrent writers of one org do not
-- queue on a single counter row; the quota reads the sum.
CREATE TABLE store_usage (
    org_id  text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    shard   smallint NOT NULL,
    items   bigint NOT NULL DEFAULT 0,
    bytes   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, shard)
);

SELECT enable_tenant_rls(t) FROM unnest(ARRAY['store_vectors', 'store_usage']::regclass[]) AS t;

-- Raises SQLSTATE TGQ01 when this write would take the caller's org over a quota. Runs as
-- the caller, so RLS limits the sum to the caller's org; sees usage before the statement.
CREATE FUNCTION store_check_quota(
    items_delta bigint, bytes_delta bigint, max_items bigint, max_bytes bigint
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    used_items bigint;
    used_bytes bigint;
BEGIN
    IF items_delta <= 0 AND bytes_delta <= 0 THEN
        RETURN;
    END IF;
    SELECT coalesce(sum(items), 0), coalesce(sum(bytes), 0) INTO used_items, used_bytes
    FROM store_usage WHERE org_id = current_setting('tenantgraph.org_id');
    IF max_items IS NOT NULL AND items_delta > 0 AND used_items + items_delta > max_items THEN
        RAISE EXCEPTION 'store item quota exceeded: % of % items', used_items + items_delta,
            max_items USING ERRCODE = 'TGQ01';
    END IF;
    IF max_bytes IS NOT NULL AND bytes_delta > 0 AND used_bytes + bytes_delta > max_bytes THEN
        RAISE EXCEPTION 'store byte quota exceeded: % of % bytes', used_bytes + bytes_delta,
            max_bytes USING ERRCODE = 'TGQ01';
    END IF;
END
$$;

-- Audited cross-tenant paths for the store.

-- One HNSW index per embedding size, created when a store with that size first starts.
CREATE FUNCTION ensure_store_vector_index(dims integer) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = tenantgraph, public, pg_temp AS $$
BEGIN
    IF dims IS NULL OR dims < 1 OR dims > 2000 THEN
        RAISE EXCEPTION 'embedding dims must be 1..2000, got %', dims;
    END IF;
    EXECUTE format(
        'CREATE INDEX IF NOT EXISTS store_vectors_hnsw_%s ON store_vectors
             USING hnsw ((embedding::vector(%s)) vector_cosine_ops)
             WHERE vector_dims(embedding) = %s',
        dims, dims, dims);
END
$$;

-- The TTL sweeper: deletes up to `batch` expired items of any org, keeps usage in step,
-- and returns how many it deleted. SKIP LOCKED lets several sweepers run side by side.
CREATE FUNCTION sweep_store_items(batch integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = tenantgraph, public, pg_temp AS $$
DECLARE
    deleted integer;
BEGIN
    WITH doomed AS (
        SELECT org_id, owner_id, ns_path, key FROM store_items
        WHERE expires_at <= now()
        ORDER BY expires_at
        LIMIT batch
        FOR UPDATE SKIP LOCKED
    ), gone AS (
        DELETE FROM store_items i USING doomed d
        WHERE i.org_id = d.org_id AND i.owner_id = d.owner_id
          AND i.ns_path = d.ns_path AND i.key = d.key
        RETURNING i.org_id, i.value_bytes
    ), per_org AS (
        SELECT org_id, count(*) AS items, sum(value_bytes) AS bytes FROM gone GROUP BY org_id
    ), usage AS (
        INSERT INTO store_usage AS u (org_id, shard, items, bytes)
        SELECT org_id, 0, -items, -bytes FROM per_org
        ON CONFLICT (org_id, shard) DO UPDATE
            SET items = u.items + excluded.items, bytes = u.bytes + excluded.bytes
    )
    SELECT coalesce(sum(items), 0) INTO deleted FROM per_org;
    RETURN deleted;
END
$$;

-- Drops namespace rows that hold no item. The table lock waits for every writer that has
-- added a namespace row and is not committed yet, and the NOT EXISTS check then sees its
-- item: a namespace is never dropped under a put that is about to commit into it.
CREATE FUNCTION gc_store_namespaces() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = tenantgraph, public, pg_temp AS $$
DECLARE
    dropped integer;
BEGIN
    LOCK TABLE store_namespaces IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM store_namespaces n
    WHERE NOT EXISTS (
        SELECT 1 FROM store_items i
        WHERE i.org_id = n.org_id AND i.owner_id = n.owner_id AND i.ns_path = n.ns_path
    );
    GET DIAGNOSTICS dropped = ROW_COUNT;
    RETURN dropped;
END
$$;

REVOKE ALL ON FUNCTION ensure_store_vector_index(integer), sweep_store_items(integer),
    gc_store_namespaces() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ensure_store_vector_index(integer), sweep_store_items(integer),
    gc_store_namespaces() TO tenantgraph_app;
