-- Vectors enter the HNSW index only for owners who need it (stores/vectors.py).
--
-- Every vector search is for one owner (and the org-wide 'shared' space), and a search over
-- at most a few thousand vectors is exact: scoring them all is faster than an HNSW scan that
-- must pass over other tenants' vectors, and it finds every match. So an owner's vectors
-- join the HNSW index (ann = true) only once the owner has added more than exact search
-- covers; until then a put costs no HNSW insert (~75% of a put). Which index holds a vector
-- changes only speed, never results: searches above the exact bound read the HNSW index for
-- indexed vectors and score the rest exactly.
ALTER TABLE store_vectors ADD COLUMN ann boolean NOT NULL DEFAULT false;

-- The vectors not in the HNSW index, by owner: what searches above the exact bound score
-- exactly, and what the indexer moves for a promoted owner.
CREATE INDEX store_vectors_unindexed ON store_vectors (org_id, owner_id, ns_path) WHERE NOT ann;

-- Vectors an owner has added while not promoted, split over shards like store_usage so
-- concurrent writers of one owner do not queue on a single row. Deletes do not count down:
-- it only decides when to promote.
CREATE TABLE store_vector_counts (
    org_id   text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    owner_id text NOT NULL,
    shard    smallint NOT NULL,
    added    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, owner_id, shard)
);

-- Owners whose vectors go into the HNSW index. `pending`: the indexer still visits the
-- owner to move vectors written before the promotion.
CREATE TABLE store_ann_owners (
    org_id      text NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    owner_id    text NOT NULL,
    promoted_at timestamptz NOT NULL DEFAULT now(),
    pending     boolean NOT NULL DEFAULT true,
    PRIMARY KEY (org_id, owner_id)
);
CREATE INDEX store_ann_owners_pending ON store_ann_owners (promoted_at) WHERE pending;

SELECT enable_tenant_rls(t)
FROM unnest(ARRAY['store_vector_counts', 'store_ann_owners']::regclass[]) AS t;

-- Existing vectors: owners above the bound of the time (2,000) are promoted (the indexer
-- moves their vectors into the new index), the others start counting from what they have.
INSERT INTO store_ann_owners (org_id, owner_id)
SELECT org_id, owner_id FROM store_vectors GROUP BY org_id, owner_id HAVING count(*) > 2000;
INSERT INTO store_vector_counts (org_id, owner_id, shard, added)
SELECT org_id, owner_id, 0, count(*) FROM store_vectors
GROUP BY org_id, owner_id HAVING count(*) <= 2000;

-- The HNSW indexes now cover indexed vectors only; each is rebuilt by the next store start.
DO $$
DECLARE
    name text;
BEGIN
    FOR name IN
        SELECT indexname FROM pg_indexes
        WHERE schemaname = current_schema() AND tablename = 'store_vectors'
          AND indexdef LIKE '%USING hnsw%'
    LOOP
        EXECUTE format('DROP INDEX %I', name);
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION ensure_store_vector_index(dims integer, m integer, ef_construction integer)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = tenantgraph, public, pg_temp AS $$
BEGIN
    IF dims IS NULL OR dims < 1 OR dims > 2000 THEN
        RAISE EXCEPTION 'embedding dims must be 1..2000, got %', dims;
    END IF;
    IF m IS NULL OR m < 2 OR m > 100 OR ef_construction IS NULL
       OR ef_construction < 2 * m OR ef_construction > 1000 THEN
        RAISE EXCEPTION 'HNSW needs 2 <= m <= 100 and 2*m <= ef_construction <= 1000, got m=%, ef_construction=%',
            m, ef_construction;
    END IF;
    EXECUTE format(
        'CREATE INDEX IF NOT EXISTS store_vectors_hnsw_%s ON store_vectors
             USING hnsw ((embedding::vector(%s)) vector_cosine_ops)
             WITH (m = %s, ef_construction = %s)
             WHERE vector_dims(embedding) = %s AND ann',
        dims, dims, m, ef_construction, dims);
END
$$;

-- The indexer (stores/item_lifecycle.py): moves up to `batch` vectors of promoted owners
-- into the HNSW index and returns how many it moved. SKIP LOCKED lets several run side by
-- side. An owner stops being visited once nothing is left to move and no write that
-- decided before its promotion (and so wrote its vectors unindexed) can still be in flight.
CREATE FUNCTION index_store_vectors(batch integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = tenantgraph, public, pg_temp AS $$
DECLARE
    moved integer;
BEGIN
    WITH todo AS (
        SELECT v.org_id, v.owner_id, v.ns_path, v.key, v.field
        FROM store_ann_owners a
        CROSS JOIN LATERAL (
            SELECT u.org_id, u.owner_id, u.ns_path, u.key, u.field FROM store_vectors u
            WHERE u.org_id = a.org_id AND u.owner_id = a.owner_id AND NOT u.ann
            LIMIT batch
            FOR UPDATE SKIP LOCKED
        ) v
        WHERE a.pending
        LIMIT batch
    ), done AS (
        UPDATE store_vectors v SET ann = true
        FROM todo t
        WHERE v.org_id = t.org_id AND v.owner_id = t.owner_id AND v.ns_path = t.ns_path
          AND v.key = t.key AND v.field = t.field
        RETURNING 1
    )
    SELECT count(*) INTO moved FROM done;
    UPDATE store_ann_owners a SET pending = false
    WHERE a.pending AND a.promoted_at < now() - interval '1 minute'
      AND NOT EXISTS (
          SELECT FROM store_vectors v
          WHERE v.org_id = a.org_id AND v.owner_id = a.owner_id AND NOT v.ann
      );
    RETURN moved;
END
$$;

REVOKE ALL ON FUNCTION index_store_vectors(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION index_store_vectors(integer) TO tenantgraph_app;
