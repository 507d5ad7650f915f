-- HNSW build parameters from the store.index config (`ann_index_config`: m,
-- ef_construction, as in langgraph.json). The index of a dimension is still created once,
-- when the first store with that size starts; changing the parameters later needs the
-- index dropped (it is then rebuilt by the next start).
DROP FUNCTION ensure_store_vector_index(integer);

CREATE FUNCTION ensure_store_vector_index(dims integer, m integer, ef_construction integer)
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
             WHERE vector_dims(embedding) = %s',
        dims, dims, m, ef_construction, dims);
END
$$;

REVOKE ALL ON FUNCTION ensure_store_vector_index(integer, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ensure_store_vector_index(integer, integer, integer)
    TO tenantgraph_app;
