"""The read SQL of long-term memory: get, search and list_namespaces of LangGraph's store.

Each read is built up front into a `Statement` (so a bad filter fails its own call alone),
then `run_reads` sends a batch of them in one tenant transaction; the rows arrive with its
COMMIT. Filters are compiled in `filters.py`, vector search SQL lives in `vectors.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from langgraph.store.base import GetOp, Item, ListNamespacesOp, Op, Result, SearchItem, SearchOp

from tenantgraph.scope import Principal
from tenantgraph.stores import vectors
from tenantgraph.stores.filters import compile_filter
from tenantgraph.stores.item_scope import ns_path, owner_of, owners_under, path_range

__all__ = [
    "LIVE",
    "Statement",
    "get_statement",
    "list_namespaces_statement",
    "read_settings",
    "result",
    "run_reads",
    "search_statement",
]

# A statement and its named parameters.
Statement = tuple[str, dict[str, Any]]

LIVE = "(i.expires_at IS NULL OR i.expires_at > now())"

# One index probe: the refresh touches the row only when it has a TTL.
_GET = f"""
WITH hit AS MATERIALIZED (
    SELECT i.namespace, i.key, i.value, i.created_at, i.updated_at, i.ttl_minutes
    FROM store_items i
    WHERE i.org_id = %(org)s AND i.owner_id = %(owner)s AND i.ns_path = %(path)s
      AND i.key = %(key)s AND {LIVE}
), refreshed AS (
    UPDATE store_items u SET expires_at = now() + u.ttl_minutes * interval '1 minute'
    FROM hit h
    WHERE %(refresh)s AND h.ttl_minutes IS NOT NULL
      AND u.org_id = %(org)s AND u.owner_id = %(owner)s AND u.ns_path = %(path)s
      AND u.key = %(key)s
)
SELECT namespace, key, value, created_at, updated_at FROM hit
"""

_REFRESH_HITS = """,
refreshed AS (
    UPDATE store_items u SET expires_at = now() + u.ttl_minutes * interval '1 minute'
    FROM hits h
    WHERE h.ttl_minutes IS NOT NULL
      AND u.org_id = %(org)s AND u.owner_id = h.owner_id AND u.ns_path = h.ns_path
      AND u.key = h.key
)"""

# Newest first, one branch per owner: each is an ordered scan of store_items_recent that
# stops after `window` matches (a single `owner_id = ANY(...)` scan would come out ordered
# by owner, so Postgres would read every item under the prefix and sort).
_SEARCH = """
WITH hits AS (
    SELECT * FROM ({branches}) b
    ORDER BY updated_at DESC, ns_path, key
    LIMIT %(limit)s OFFSET %(offset)s
){refresh}
SELECT namespace, key, value, created_at, updated_at, NULL::float8 AS score
FROM hits ORDER BY updated_at DESC, ns_path, key
"""

_SEARCH_OWNER = """(
    SELECT i.owner_id, i.ns_path, i.key, i.namespace, i.value, i.created_at, i.updated_at,
           i.ttl_minutes
    FROM store_items i
    WHERE i.org_id = %(org)s AND i.owner_id = %(owner{n})s {range} AND {live} AND {filter}
    ORDER BY i.updated_at DESC, i.ns_path, i.key
    LIMIT %(window)s
)"""

# Transaction-local settings, as (name, value) pairs (`Database.tenant(settings=…)`).
Settings = tuple[tuple[str, str], ...]

# Set at the start of every read transaction, for all of it: the generic plan, prepared
# once per connection. Under the RLS policy a statement's generic estimate can sit within a
# hair of its custom plans' (list_namespaces at 1M items: 1,846 against 1,844), so the
# plan cache's choice flips with the statistics, and when it stays custom every call is
# planned again: ~0.55 against ~0.3 ms a listing, ~0.45 against ~0.25 ms a get at 1M items
# (list_namespaces ran 53-60% slower than for the RLS-bypassing role, whose plans are
# costed lower and went generic). The vector statement picks exact or HNSW itself, so no
# plan depends on the tenant; planning it per call cost ~0.8 ms of a ~3 ms search.
_READ_SETTINGS: Settings = (("plan_cache_mode", "force_generic_plan"),)

# Set once before a transaction's searches (which run after its other reads), for the rest
# of the transaction (with _READ_SETTINGS when it only searches):
# - enable_sort off. Newest first: the planner underestimates how many of the owner's items
#   match (correlated owner and prefix, an unknown filter), thinks it must read them all
#   anyway and sorts; the ordered scan instead stops after LIMIT matches (7-9x faster at 10k
#   items per owner). Vector: an ordered HNSW scan, never a sort of all of a large tenant's
#   vectors (the exact branch still sorts: nothing else gives its order).
# - iterative HNSW scans, so the tenant filter inside the scan still yields k rows.
_SEARCH_SETTINGS: Settings = (
    ("enable_sort", "off"),
    ("hnsw.iterative_scan", "relaxed_order"),
)
_SET_SEARCH_SETTINGS = "SELECT " + ", ".join(
    f"set_config('{name}', '{value}', true)" for name, value in _SEARCH_SETTINGS
)

_LIST_NAMESPACES = f"""
SELECT DISTINCT {{column}} AS namespace
FROM store_namespaces n
WHERE n.org_id = %(org)s AND n.owner_id = ANY(%(owners)s) {{conditions}}
  AND EXISTS (
      SELECT 1 FROM store_items i
      WHERE i.org_id = n.org_id AND i.owner_id = n.owner_id AND i.ns_path = n.ns_path
        AND {LIVE}
  )
ORDER BY namespace
LIMIT %(limit)s OFFSET %(offset)s
"""


# --- Statements ----------------------------------------------------------------------


def get_statement(principal: Principal, op: GetOp) -> Statement | None:
    """The get of `op` as `principal` sees it; None: the answer is empty without asking."""
    if not op.namespace:
        return None
    params = {
        "org": principal.org_id,
        "owner": owner_of(principal, op.namespace),
        "path": ns_path(op.namespace),
        "key": str(op.key),
        "refresh": bool(op.refresh_ttl),
    }
    return _GET, params


def search_statement(
    principal: Principal,
    op: SearchOp,
    vector: Sequence[float] | None = None,
    *,
    dims: int = 0,
    fields: Sequence[str] = (),
) -> Statement | None:
    """The search of `op`: newest first, or nearest to `vector` (the embedded query, of
    `dims` dimensions; `fields` are the index's embedded paths)."""
    if op.limit <= 0:
        return None
    prefix = tuple(op.namespace_prefix)
    condition, filter_params = compile_filter(op.filter, "i.value")
    params: dict[str, Any] = {
        "org": principal.org_id,
        "owners": owners_under(principal, prefix),
        "limit": op.limit,
        "offset": max(op.offset, 0),
    }
    in_range = ""
    if bounds := path_range(prefix):
        params["low"], params["high"] = bounds
        in_range = "AND i.ns_path >= %(low)s AND i.ns_path < %(high)s"
    # Filter placeholders are positional; name them so they mix with the named ones.
    for n, value in enumerate(filter_params):
        params[f"f{n}"] = value
    named = _name_placeholders(condition)
    refresh = _REFRESH_HITS if op.refresh_ttl else ""
    if vector is None:
        params["window"] = params["offset"] + op.limit
        branches = []
        for n, owner in enumerate(params["owners"]):
            params[f"owner{n}"] = owner
            branch = _SEARCH_OWNER.format(n=n, range=in_range, live=LIVE, filter=named)
            branches.append(branch)
        sql = _SEARCH.format(branches=" UNION ALL ".join(branches), refresh=refresh)
    else:
        params["query"] = vectors.vector_literal(vector)
        fan = max(1, len(fields)) * (4 if any("[*]" in f for f in fields) else 1)
        params["fetch"] = (params["offset"] + op.limit) * fan
        params["exact_max"] = vectors.EXACT_MAX
        sql = vectors.search_sql(
            dims=dims, path_range=in_range, live=LIVE, named_filter=named, refresh=refresh
        )
    return sql, params


def list_namespaces_statement(principal: Principal, op: ListNamespacesOp) -> Statement | None:
    """The namespaces `principal` has live items in that match `op`, sorted."""
    if op.limit <= 0:
        return None
    prefix: tuple[str, ...] = ()
    suffix: tuple[str, ...] = ()
    for condition in op.match_conditions or ():
        if condition.match_type == "prefix":
            prefix = tuple(condition.path)
        elif condition.match_type == "suffix":
            suffix = tuple(condition.path)
        else:
            raise ValueError(f"unknown namespace match type {condition.match_type!r}")
    params: dict[str, Any] = {
        "org": principal.org_id,
        "owners": owners_under(principal, prefix),
        "limit": op.limit,
        "offset": max(op.offset, 0),
    }
    conditions = []
    literal = prefix[: prefix.index("*")] if "*" in prefix else prefix
    if bounds := path_range(literal):
        params["low"], params["high"] = bounds
        conditions.append("n.ns_path >= %(low)s AND n.ns_path < %(high)s")
    for n, label in enumerate(prefix[len(literal) :], start=len(literal) + 1):
        if label != "*":
            params[f"p{n}"] = label
            conditions.append(f"n.namespace[{n}] = %(p{n})s")
    if len(prefix) > len(literal):
        conditions.append(f"cardinality(n.namespace) >= {len(prefix)}")
    if suffix:
        conditions.append(f"cardinality(n.namespace) >= {len(suffix)}")
        for n, label in enumerate(suffix):
            if label != "*":
                params[f"s{n}"] = label
                offset = len(suffix) - n - 1
                conditions.append(f"n.namespace[cardinality(n.namespace) - {offset}] = %(s{n})s")
    depth = op.max_depth
    if depth is not None and depth < 1:
        raise ValueError(f"max_depth must be at least 1, got {depth}")
    column = f"n.namespace[1:{int(depth)}]" if depth is not None else "n.namespace"
    sql = _LIST_NAMESPACES.format(
        column=column, conditions="".join(f" AND {c}" for c in conditions)
    )
    return sql, params


def _name_placeholders(condition: str) -> str:
    """Turn the filter's positional `%s` into `%(f0)s, %(f1)s, …` for a named-param query."""
    parts = condition.split("%s")
    return "".join(
        part + (f"%(f{n})s" if n < len(parts) - 1 else "") for n, part in enumerate(parts)
    )


# --- Running them --------------------------------------------------------------------


def read_settings(ops: Sequence[Op]) -> Settings:
    """The settings a transaction of these reads is opened with (`Database.tenant`): the
    generic plan, and the searches' settings as well when it only searches."""
    return _READ_SETTINGS + _SEARCH_SETTINGS if _only_searches(ops) else _READ_SETTINGS


def _only_searches(ops: Sequence[Op]) -> bool:
    return bool(ops) and all(isinstance(op, SearchOp) for op in ops)


async def run_reads(
    conn: psycopg.AsyncConnection, reads: Sequence[tuple[Op, Statement | None]]
) -> list[psycopg.AsyncCursor | None]:
    """Send the reads' statements in the order given (searches last: their settings go
    before the first) on the tenant transaction `conn`, opened with `read_settings` of
    their ops; one cursor per read, None where there was nothing to ask. Fetch the cursors
    after the transaction: in pipeline mode the rows arrive with its COMMIT, so the lot
    costs one round trip."""
    cursors: list[psycopg.AsyncCursor | None] = []
    searching = _only_searches([op for op, _ in reads])  # set with the transaction
    for op, statement in reads:
        cursor = None
        if statement is not None:
            if isinstance(op, SearchOp) and not searching:
                await conn.execute(_SET_SEARCH_SETTINGS)
                searching = True
            cursor = await conn.execute(*statement)
        cursors.append(cursor)
    return cursors


def result(op: Op, rows: Sequence[Mapping[str, Any]]) -> Result:
    """The LangGraph result of read `op` from the rows of its statement."""
    if isinstance(op, GetOp):
        return _item(rows[0]) if rows else None
    if isinstance(op, SearchOp):
        return [_search_item(r) for r in rows]
    return [tuple(r["namespace"]) for r in rows]


def _fields(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "namespace": tuple(row["namespace"]),
        "key": row["key"],
        "value": row["value"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _item(row: Mapping[str, Any]) -> Item:
    return Item(**_fields(row))


def _search_item(row: Mapping[str, Any]) -> SearchItem:
    return SearchItem(**_fields(row), score=row["score"])
