"""The vector SQL of long-term memory: the HNSW index of each dimension, vector search, the
vectors a write group stores (and the promotion of an owner into the HNSW index), and the
indexer that moves earlier vectors in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg

from tenantgraph.stores.item_changes import Change
from tenantgraph.stores.item_scope import ns_path

__all__ = [
    "EXACT_MAX",
    "ensure_index",
    "index_batch",
    "search_sql",
    "vector_literal",
    "vector_writes",
]

# Vector searches over at most this many candidate vectors score them all (exact) instead
# of scanning the HNSW index: ~0.7 ms for 1,000 vectors against ~2-4 ms for an HNSW scan
# that must pass over other tenants' vectors to find 10 of the caller's (64 dims,
# bench/store_bench.py data); at 10,000 vectors exact costs ~10 ms and HNSW wins. Exact
# also returns every match for a tiny tenant, which an HNSW scan may stop short of.
# Read from this module at each call (searches and writes), so tests can move the bound.
EXACT_MAX = 2000

_ENSURE_INDEX = "SELECT ensure_store_vector_index(%s, %s, %s)"
_INDEX_BATCH = "SELECT index_store_vectors(%s) AS n"


async def ensure_index(
    conn: psycopg.AsyncConnection, dims: int, m: int, ef_construction: int
) -> None:
    """Create the HNSW index of `dims`-dimensional vectors if missing (an audited function:
    call it on a system connection)."""
    await conn.execute(_ENSURE_INDEX, (dims, m, ef_construction))


async def index_batch(conn: psycopg.AsyncConnection, batch: int) -> int:
    """Move up to `batch` vectors written before their owner's promotion into the HNSW
    index, across orgs (an audited function: call it on a system connection)."""
    cur = await conn.execute(_INDEX_BATCH, (batch,))
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


# --- Search --------------------------------------------------------------------------

# Vector search. Searches over at most EXACT_MAX candidate vectors (the caller's own under
# the prefix, counted with a bounded index-only scan) are exact: score them all, nearest
# first, and join items until `fetch` pass the tenant, expiry and filter conditions. Larger
# sets take an ordered scan of the HNSW index, with those conditions inside the scan
# (iterative scans keep it going until enough rows pass them), for the vectors it holds, and
# score the rest exactly (vectors of owners not promoted, or not yet moved by the indexer;
# store_vectors_unindexed finds them). Branches not chosen are skipped by their one-time
# filter. Items with several embedded fields score by their best field.
_EXACT_SCORED = """(
    SELECT c.owner_id, c.ns_path, c.key, i.ttl_minutes, c.distance
    FROM (
        SELECT v.owner_id, v.ns_path, v.key,
               cosine_distance(v.embedding::vector({dims}), %(query)s::vector({dims}))
                   AS distance
        FROM store_vectors v
        WHERE {when}
          AND v.org_id = %(org)s AND vector_dims(v.embedding) = {dims}
          AND v.owner_id = ANY(%(owners)s) {range}
        ORDER BY distance
        OFFSET 0
    ) c
    JOIN store_items i ON i.org_id = %(org)s AND i.owner_id = c.owner_id
                      AND i.ns_path = c.ns_path AND i.key = c.key
    WHERE {live} AND {filter}
    ORDER BY c.distance
    LIMIT %(fetch)s
)"""

_VECTOR_SEARCH = """
WITH counted AS MATERIALIZED (
    SELECT count(*) <= %(exact_max)s AS exact FROM (
        SELECT FROM store_vectors v
        WHERE v.org_id = %(org)s AND v.owner_id = ANY(%(owners)s) {range}
        LIMIT %(exact_max)s + 1
    ) c
), scored AS MATERIALIZED ({exact_all} UNION ALL (
    SELECT v.owner_id, v.ns_path, v.key, i.ttl_minutes,
           v.embedding::vector({dims}) <=> %(query)s::vector({dims}) AS distance
    FROM store_vectors v
    JOIN store_items i ON i.org_id = v.org_id AND i.owner_id = v.owner_id
                      AND i.ns_path = v.ns_path AND i.key = v.key
    WHERE NOT (SELECT exact FROM counted) AND v.ann
      AND v.org_id = %(org)s AND i.org_id = %(org)s AND vector_dims(v.embedding) = {dims}
      AND v.owner_id = ANY(%(owners)s) {range} AND {live} AND {filter}
    ORDER BY distance
    LIMIT %(fetch)s
) UNION ALL {exact_unindexed}), hits AS (
    SELECT owner_id, ns_path, key, ttl_minutes, min(distance) AS distance
    FROM scored GROUP BY owner_id, ns_path, key, ttl_minutes
    ORDER BY distance, ns_path, key
    LIMIT %(limit)s OFFSET %(offset)s
){refresh}
SELECT i.namespace, i.key, i.value, i.created_at, i.updated_at, 1 - h.distance AS score
FROM hits h
JOIN store_items i ON i.org_id = %(org)s AND i.owner_id = h.owner_id
                  AND i.ns_path = h.ns_path AND i.key = h.key
ORDER BY h.distance, h.ns_path, h.key
"""


def search_sql(*, dims: int, path_range: str, live: str, named_filter: str, refresh: str) -> str:
    """The vector search statement; its parameters are the search's plus `query` (a
    `vector_literal`), `fetch` and `exact_max`. `path_range` is written for `i.ns_path`."""
    parts = {
        "dims": dims,
        "range": path_range.replace("i.ns_path", "v.ns_path"),
        "live": live,
        "filter": named_filter,
    }
    return _VECTOR_SEARCH.format(
        **parts,
        refresh=refresh,
        exact_all=_EXACT_SCORED.format(**parts, when="(SELECT exact FROM counted)"),
        exact_unindexed=_EXACT_SCORED.format(
            **parts, when="NOT (SELECT exact FROM counted) AND NOT v.ann"
        ),
    )


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form, '[0.1, 0.2]': the list's own repr, formatted in C."""
    return str([float(x) for x in vector])


# --- Writes --------------------------------------------------------------------------

# A put re-embeds its item: vectors of fields it no longer embeds go, the others are
# upserted, and one whose embedding did not change (same text, deterministic embedder) is
# left alone, so a value update that keeps the text costs no HNSW insert (~90% of a put).
# Keys come as arrays, not a JSON recordset: unnest's row estimate keeps the plan on the
# primary key instead of a scan of the table.
_STALE_VECTORS = """, stale AS (
    DELETE FROM store_vectors v
    USING unnest(%(put_owners)s::text[], %(put_paths)s::text[], %(put_keys)s::text[])
        AS p(owner_id, ns_path, key)
    WHERE v.org_id = %(org)s AND v.owner_id = p.owner_id AND v.ns_path = p.ns_path
      AND v.key = p.key
      AND NOT EXISTS (
          SELECT FROM unnest(%(kept_owners)s::text[], %(kept_paths)s::text[],
                             %(kept_keys)s::text[], %(kept_fields)s::text[])
              AS k(owner_id, ns_path, key, field)
          WHERE k.owner_id = v.owner_id AND k.ns_path = v.ns_path AND k.key = v.key
            AND k.field = v.field
      )
)"""

# Vectors of an owner who has added at most EXACT_MAX are left out of the HNSW index
# (ann = false): every search of theirs alone is exact anyway, and a put then costs no HNSW
# insert. The group that takes an owner past the bound promotes them: their vectors from
# then on are indexed as they are written, and the indexer (`index_batch`) moves the
# earlier ones. Counts are per shard so concurrent groups of one owner rarely share a row.
_PUT_VECTORS = """, vx AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset(%(vectors)s::jsonb)
        AS vx(owner_id text, namespace text[], key text, field text, embedding jsonb)
), owners AS MATERIALIZED (
    SELECT o.owner_id, o.promoted
        OR (SELECT coalesce(sum(c.added), 0) FROM store_vector_counts c
            WHERE c.org_id = %(org)s AND c.owner_id = o.owner_id) + o.n > %(exact_max)s AS ann,
        o.promoted
    FROM (
        SELECT vx.owner_id, count(*) AS n,
               EXISTS (SELECT FROM store_ann_owners a
                       WHERE a.org_id = %(org)s AND a.owner_id = vx.owner_id) AS promoted
        FROM vx GROUP BY vx.owner_id
    ) o
), vput AS (
    INSERT INTO store_vectors AS v (org_id, owner_id, ns_path, key, field, embedding, ann)
    SELECT %(org)s, vx.owner_id, store_ns_path(vx.namespace), vx.key, vx.field,
           vx.embedding::text::vector, o.ann
    FROM vx JOIN owners o ON o.owner_id = vx.owner_id
    ON CONFLICT (org_id, owner_id, ns_path, key, field) DO UPDATE
        SET embedding = excluded.embedding, ann = excluded.ann
        WHERE v.embedding IS DISTINCT FROM excluded.embedding
    RETURNING new.owner_id, new.ann, old.org_id IS NULL AS added
), counted AS (
    INSERT INTO store_vector_counts AS c (org_id, owner_id, shard, added)
    SELECT %(org)s, owner_id, %(shard)s, count(*) FROM vput WHERE added AND NOT ann
    GROUP BY owner_id ORDER BY owner_id
    ON CONFLICT (org_id, owner_id, shard) DO UPDATE SET added = c.added + excluded.added
), promoted AS (
    INSERT INTO store_ann_owners (org_id, owner_id)
    SELECT %(org)s, owner_id FROM owners WHERE ann AND NOT promoted ORDER BY owner_id
    ON CONFLICT DO NOTHING
)"""


def vector_writes(puts: Sequence[Change]) -> tuple[str, dict[str, Any]]:
    """The CTEs a write group adds to re-embed `puts` (sorted, all with a value), and their
    parameters; the write statement supplies `org` and `shard`."""
    kept = [(c, name, vector) for c in puts for name, vector in c.vectors]
    params: dict[str, Any] = {
        "put_owners": [c.owner for c in puts],
        "put_paths": [ns_path(c.namespace) for c in puts],
        "put_keys": [c.key for c in puts],
        "kept_owners": [c.owner for c, _, _ in kept],
        "kept_paths": [ns_path(c.namespace) for c, _, _ in kept],
        "kept_keys": [c.key for c, _, _ in kept],
        "kept_fields": [name for _, name, _ in kept],
    }
    ctes = _STALE_VECTORS
    if kept:
        rows = [{**c.row(), "field": name, "embedding": v} for c, name, v in kept]
        params |= {"vectors": json.dumps(rows), "exact_max": EXACT_MAX}
        ctes += _PUT_VECTORS
    return ctes, params
