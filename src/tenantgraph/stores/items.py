"""Long-term memory: `TenantStore`, a LangGraph `BaseStore` bound to one principal.

Callers and graphs name namespaces as in any LangGraph app; the org and the owner are
never part of what they pass or see. Every item is stored under the caller's org and
owner: the writing user, or `shared` when the first label is `"shared"` (the org-wide
space: members read it, admins write it). So two users writing the same namespace and
key each get their own item, and the same rule holds over HTTP and inside a graph,
because it is enforced here and not by callers (DESIGN.md §2).

SQL lives in this module as named constants; filters are compiled in `filters.py`,
embedders chosen in `embeddings.py`.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    get_text_at_path,
    tokenize_path,
    validate_op_namespace,
)

from tenantgraph.db.database import Database
from tenantgraph.errors import Forbidden, QuotaExceeded
from tenantgraph.scope import SHARED, Principal
from tenantgraph.services.embeddings import StoreIndex, resolve_index
from tenantgraph.services.group_commit import GroupCommit
from tenantgraph.stores.filters import compile_filter

__all__ = [
    "ForbiddenNamespace",
    "QuotaExceeded",
    "StoreConfig",
    "StoreForbidden",
    "StoreLimits",
    "TenantStore",
    "ns_path",
]

G = TypeVar("G")
_QUOTA_SQLSTATE = "TGQ01"
_USAGE_SHARDS = 8
# Transactions of one org in flight at once (per process). Reads: several, to keep the
# cores busy.
_READ_GROUPS = 4
# Searches take a millisecond or more each, run one after another in a group's backend:
# more than a few per group leaves the other connections (and cores) idle. Gets and
# namespace listings are cheap, and group without limit. (4 against no limit, 16 clients on
# bench/store_bench.py data: vector searches +30% at 10k items, +60% at 100k.)
_SEARCHES_PER_GROUP = 4
# Writes: concurrent puts share a commit, but a put's HNSW insert (~0.5 ms of Postgres CPU
# at 64 dims, ~75% of a put) runs serially in its group's backend. Unbounded, one group
# took every waiting put and a second slot found nothing left to run: one busy core.
# Capping a group at 8 vectors lets two groups insert on two cores (16 clients on
# bench/store_bench.py, 10k items: 1,320 -> ~1,800-1,980 puts/s; 4 per group or 3 groups in
# flight paid more in commits than they gained). Puts that embed nothing still group freely.
_WRITE_GROUPS = 2
_VECTORS_PER_GROUP = 8
# Vector searches over at most this many candidate vectors score them all (exact) instead
# of scanning the HNSW index: ~0.7 ms for 1,000 vectors against ~2-4 ms for an HNSW scan
# that must pass over other tenants' vectors to find 10 of the caller's (64 dims,
# bench/store_bench.py data); at 10,000 vectors exact costs ~10 ms and HNSW wins. Exact
# also returns every match for a tiny tenant, which an HNSW scan may stop short of.
_EXACT_MAX = 2000
_LIVE = "(i.expires_at IS NULL OR i.expires_at > now())"


class StoreForbidden(Forbidden, PermissionError):
    """The caller may not do this to the store (a graph may catch PermissionError)."""


class ForbiddenNamespace(StoreForbidden):
    """A member writing or deleting in the org-wide `("shared", …)` space. HTTP: 403.

    Not 404: the space exists for every member (they can read it), so there is nothing to
    hide; the caller lacks the admin role for writing it.
    """


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """Per-org quotas; None means unlimited. Puts over a limit raise `QuotaExceeded`.

    Checked inside the write transaction against the org's usage counters; concurrent
    groups may overshoot by at most what they write together.
    """

    max_items: int | None = None
    max_bytes: int | None = None


@dataclass(frozen=True)
class StoreConfig:
    """The `store` block of the config file, resolved once (an embedder loads once).

    `{"index": {"dims", "embed", "fields"}, "ttl": {"default_ttl", "refresh_on_read",
    "sweep_interval_minutes"}, "limits": {"max_items", "max_bytes"}}`; all optional.
    """

    index: StoreIndex | None = None
    ttl: TTLConfig | None = None
    limits: StoreLimits = field(default_factory=StoreLimits)

    @classmethod
    def from_mapping(cls, block: Mapping[str, Any] | None) -> StoreConfig:
        block = block or {}
        limits = block.get("limits") or {}
        return cls(
            index=resolve_index(block.get("index")),
            ttl=TTLConfig(**block["ttl"]) if block.get("ttl") else None,
            limits=StoreLimits(limits.get("max_items"), limits.get("max_bytes")),
        )

    def store(self, db: Database, principal: Principal) -> TenantStore:
        return TenantStore(
            db, principal, index_config=self.index, ttl_config=self.ttl, limits=self.limits
        )


def ns_path(namespace: Sequence[str]) -> str:
    """The index key of a namespace: each label followed by '.'; mirrors SQL store_ns_path."""
    return "".join(f"{label}." for label in namespace)


def _path_range(prefix: Sequence[str]) -> tuple[str, str] | None:
    """The [low, high) ns_path range of every namespace under `prefix` ('/' follows '.')."""
    if not prefix:
        return None
    low = ns_path(prefix)
    return low, low[:-1] + "/"


# --- SQL -----------------------------------------------------------------------------

# One index probe: the refresh touches the row only when it has a TTL.
_GET = f"""
WITH hit AS MATERIALIZED (
    SELECT i.namespace, i.key, i.value, i.created_at, i.updated_at, i.ttl_minutes
    FROM store_items i
    WHERE i.org_id = %(org)s AND i.owner_id = %(owner)s AND i.ns_path = %(path)s
      AND i.key = %(key)s AND {_LIVE}
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

# Vector search. Searches over at most _EXACT_MAX candidate vectors (the caller's own under
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

# Set at the start of every read transaction, for all of it: the generic plan, prepared
# once per connection. Under the RLS policy a statement's generic estimate can sit within a
# hair of its custom plans' (list_namespaces at 1M items: 1,846 against 1,844), so the
# plan cache's choice flips with the statistics, and when it stays custom every call is
# planned again: ~0.55 against ~0.3 ms a listing, ~0.45 against ~0.25 ms a get at 1M items
# (list_namespaces ran 53-60% slower than for the RLS-bypassing role, whose plans are
# costed lower and went generic). The vector statement picks exact or HNSW itself, so no
# plan depends on the tenant; planning it per call cost ~0.8 ms of a ~3 ms search.
_READ_SETTINGS = "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)"

# Set once before a transaction's searches (which run after its other reads), for the rest
# of the transaction:
# - enable_sort off. Newest first: the planner underestimates how many of the owner's items
#   match (correlated owner and prefix, an unknown filter), thinks it must read them all
#   anyway and sorts; the ordered scan instead stops after LIMIT matches (7-9x faster at 10k
#   items per owner). Vector: an ordered HNSW scan, never a sort of all of a large tenant's
#   vectors (the exact branch still sorts: nothing else gives its order).
# - iterative HNSW scans, so the tenant filter inside the scan still yields k rows.
_SEARCH_SETTINGS = (
    "SELECT set_config('enable_sort', 'off', true),"
    " set_config('hnsw.iterative_scan', 'relaxed_order', true)"
)

_LIST_NAMESPACES = f"""
SELECT DISTINCT {{column}} AS namespace
FROM store_namespaces n
WHERE n.org_id = %(org)s AND n.owner_id = ANY(%(owners)s) {{conditions}}
  AND EXISTS (
      SELECT 1 FROM store_items i
      WHERE i.org_id = n.org_id AND i.owner_id = n.owner_id AND i.ns_path = n.ns_path
        AND {_LIVE}
  )
ORDER BY namespace
LIMIT %(limit)s OFFSET %(offset)s
"""

# All changes of a write group in one statement (one round trip, one parse), so its locks
# are taken in one pass (rows come sorted), the usage row after the items: concurrent groups
# of an org cannot deadlock on them. Rows arrive as one JSON array; jsonb_to_recordset turns
# JSON arrays into text[]. An expired item that is still on disk is replaced as if new
# (fresh created_at). RETURNING old.* (PostgreSQL 18) gives each row's growth for the usage
# counters. The vectors' foreign keys are checked at the end of the statement, when the
# items inserted above are there. {vectors} is _STALE_VECTORS and _PUT_VECTORS, or nothing
# for a store without an index.
_WRITE = """
WITH x AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS x(owner_id text, namespace text[], key text, value jsonb, ttl float8)
), gone AS (
    DELETE FROM store_items i
    USING unnest(%(gone_owners)s::text[], %(gone_paths)s::text[], %(gone_keys)s::text[])
        AS d(owner_id, ns_path, key)
    WHERE i.org_id = %(org)s AND i.owner_id = d.owner_id
      AND i.ns_path = d.ns_path AND i.key = d.key
    RETURNING i.value_bytes
), ns AS (
    INSERT INTO store_namespaces (org_id, owner_id, namespace)
    SELECT DISTINCT %(org)s, owner_id, namespace FROM x
    ON CONFLICT DO NOTHING
), up AS (
    INSERT INTO store_items AS i
        (org_id, owner_id, namespace, key, value, expires_at, ttl_minutes)
    SELECT %(org)s, owner_id, namespace, key, value,
           now() + ttl * interval '1 minute', ttl
    FROM x
    ON CONFLICT (org_id, owner_id, ns_path, key) DO UPDATE SET
        value = excluded.value,
        updated_at = now(),
        created_at = CASE WHEN i.expires_at <= now() THEN now() ELSE i.created_at END,
        expires_at = excluded.expires_at,
        ttl_minutes = excluded.ttl_minutes
    RETURNING (old.key IS NULL)::int AS added,
              new.value_bytes - coalesce(old.value_bytes, 0) AS grown
), delta AS (
    SELECT (SELECT coalesce(sum(added), 0) FROM up) - (SELECT count(*) FROM gone) AS items,
           (SELECT coalesce(sum(grown), 0) FROM up)
               - (SELECT coalesce(sum(value_bytes), 0) FROM gone) AS bytes
), usage AS (
    INSERT INTO store_usage AS u (org_id, shard, items, bytes)
    SELECT %(org)s, %(shard)s, items, bytes FROM delta
    ON CONFLICT (org_id, shard) DO UPDATE
        SET items = u.items + excluded.items, bytes = u.bytes + excluded.bytes
){vectors}
SELECT store_check_quota(items, bytes, %(max_items)s, %(max_bytes)s) FROM delta
"""

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

# Vectors of an owner who has added at most _EXACT_MAX are left out of the HNSW index
# (ann = false): every search of theirs alone is exact anyway, and a put then costs no HNSW
# insert. The group that takes an owner past the bound promotes them: their vectors from
# then on are indexed as they are written, and the indexer (item_lifecycle.py) moves the
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


# --- Writes shared across stores of one database ---------------------------------------


@dataclass(slots=True)
class _Change:
    """One put (value set) or delete (value None) after ownership has been resolved."""

    owner: str
    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any] | None
    ttl: float | None = None
    vectors: list[tuple[str, list[float]]] = field(default_factory=list)

    @property
    def identity(self) -> tuple[str, tuple[str, ...], str]:
        return self.owner, self.namespace, self.key

    def row(self) -> dict[str, Any]:
        return {"owner_id": self.owner, "namespace": list(self.namespace), "key": self.key}


@dataclass(slots=True)
class _Writes:
    """The writes of one `abatch` call: what a group commit queues and merges."""

    store: TenantStore
    changes: list[_Change]


_Statement = tuple[str, dict[str, Any]]


@dataclass(slots=True)
class _Read:
    index: int
    op: Op
    statement: _Statement | None  # None: the answer is empty without asking


@dataclass(slots=True)
class _Reads:
    """The reads of one `abatch` call and where their results go."""

    store: TenantStore
    reads: list[_Read]
    results: list[Result]


class _Shared:
    """Per-database state every `TenantStore` on that database shares."""

    def __init__(self) -> None:
        self.reads: GroupCommit[_Reads] = GroupCommit(
            max_inflight=_READ_GROUPS,
            weight=lambda reads: sum(isinstance(r.op, SearchOp) for r in reads.reads),
            max_weight=_SEARCHES_PER_GROUP,
        )
        self.writes: GroupCommit[_Writes] = GroupCommit(
            max_inflight=_WRITE_GROUPS,
            weight=lambda writes: sum(len(c.vectors) for c in writes.changes),
            max_weight=_VECTORS_PER_GROUP,
        )
        self.vector_dims: set[int] = set()
        self.vector_lock = asyncio.Lock()


# Keyed by the Database so stores made per request still group their commits; the entry
# goes when the Database does.
_SHARED: weakref.WeakKeyDictionary[Database, _Shared] = weakref.WeakKeyDictionary()


def _shared(db: Database) -> _Shared:
    state = _SHARED.get(db)
    if state is None:
        state = _SHARED[db] = _Shared()
    return state


# --- The store -----------------------------------------------------------------------


class TenantStore(BaseStore):
    """A LangGraph store that sees and changes only its principal's items.

    Construct one per request or run: `TenantStore(db, principal, index_config=...)`.
    `index_config` is the `store.index` block of the config file (or a resolved
    `StoreIndex`), `ttl_config` its `store.ttl` block, `limits` the per-org quotas.
    Concurrent writes of one org on one `Database` share a transaction (group commit).

    Errors: `InvalidNamespaceError` and `InvalidFilter` (HTTP 422), `ForbiddenNamespace`
    (403), `QuotaExceeded` (413).
    """

    supports_ttl = True

    def __init__(
        self,
        db: Database,
        principal: Principal,
        *,
        index_config: Mapping[str, Any] | StoreIndex | None = None,
        ttl_config: TTLConfig | None = None,
        limits: StoreLimits | None = None,
    ) -> None:
        if principal.user_id == SHARED:
            raise ValueError(f"user id {SHARED!r} is reserved for the org-wide memory space")
        self.db = db
        self.principal = principal
        self.ttl_config = ttl_config
        self._index = resolve_index(index_config)
        self._limits = limits or StoreLimits()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    # -- sync API: LangGraph runs sync nodes in worker threads -----------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run `abatch` on the store's event loop from a worker thread (as LangGraph's
        `AsyncPostgresStore` does); the pool belongs to that loop."""
        if self._loop is None:
            raise RuntimeError("TenantStore was created outside an event loop; use abatch")
        try:
            if asyncio.get_running_loop() is self._loop:
                raise asyncio.InvalidStateError(
                    "synchronous store calls from the event loop thread would deadlock; "
                    "use the async methods (aget, aput, asearch, ...)"
                )
        except RuntimeError:
            pass
        return asyncio.run_coroutine_threadsafe(self.abatch(ops), self._loop).result()

    # -- async API -------------------------------------------------------------------

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Reads run in one tenant transaction, then writes in a (group) transaction; as in
        `InMemoryStore`, reads in a batch see the state before its writes."""
        ops = list(ops)
        puts: list[tuple[_Change, PutOp]] = []
        reads: list[tuple[int, Op]] = []
        for i, op in enumerate(ops):
            validate_op_namespace(op)
            if isinstance(op, PutOp):
                puts.append((self._change(op), op))
            elif isinstance(op, GetOp | SearchOp | ListNamespacesOp):
                reads.append((i, op))
            else:
                raise TypeError(f"unknown store operation {type(op).__name__}")
        changes = [change for change, _ in puts]

        # Embedding is slow and may call out: it runs before any transaction opens.
        queries = await self._embed_queries([op for _, op in reads])
        await self._embed_documents(puts)

        results: list[Result] = [None] * len(ops)
        if reads:
            batch = _Reads(self, self._statements(reads, queries), results)
            await _shared(self.db).reads.submit(self.principal.org_id, batch, _flush_reads)
        if changes:
            await _shared(self.db).writes.submit(
                self.principal.org_id, _Writes(self, changes), _flush_writes
            )
        return results

    # -- ownership -------------------------------------------------------------------

    def _owner_of(self, namespace: Sequence[str]) -> str:
        return SHARED if namespace[:1] == (SHARED,) else self.principal.user_id

    def _owners_under(self, prefix: Sequence[str]) -> list[str]:
        """Owners whose items can lie under `prefix` ('*' is a wildcard label)."""
        if not prefix or prefix[0] == "*":
            return [self.principal.user_id, SHARED]
        return [self._owner_of(prefix)]

    def _change(self, op: PutOp) -> _Change:
        namespace = tuple(op.namespace)
        if not namespace:
            raise InvalidNamespaceError("Namespace cannot be empty.")
        if namespace[0] == "langgraph":
            raise InvalidNamespaceError(
                f'Root label for namespace cannot be "langgraph": {namespace}'
            )
        if not isinstance(op.key, str) or not op.key:
            raise ValueError(f"store keys must be non-empty strings, got {op.key!r}")
        owner = self._owner_of(namespace)
        if owner == SHARED and not self.principal.is_admin:
            raise ForbiddenNamespace(f"only admins may write the org-wide namespace {namespace!r}")
        if op.value is None:
            return _Change(owner, namespace, op.key, None)
        if not isinstance(op.value, Mapping):
            raise ValueError(f"store values must be objects, got {type(op.value).__name__}")
        ttl = op.ttl
        if ttl is not None and (
            isinstance(ttl, bool)
            or not isinstance(ttl, int | float)
            or not ttl > 0
            or not math.isfinite(ttl)
        ):
            raise ValueError(f"ttl must be a positive number of minutes or None, got {ttl!r}")
        return _Change(owner, namespace, op.key, dict(op.value), ttl)

    # -- embeddings ------------------------------------------------------------------

    async def _embed_queries(self, ops: Iterable[Op]) -> dict[str, list[float]]:
        if self._index is None:
            return {}
        texts = {op.query for op in ops if isinstance(op, SearchOp) and op.query}
        if not texts:
            return {}
        await self._ensure_vector_index()
        ordered = sorted(texts)
        vectors = await asyncio.gather(*(self._index.embeddings.aembed_query(t) for t in ordered))
        return dict(zip(ordered, vectors, strict=True))

    async def _embed_documents(self, puts: list[tuple[_Change, PutOp]]) -> None:
        index = self._index
        if index is None:
            return
        wanted: list[tuple[_Change, str, str]] = []
        for change, op in puts:
            if change.value is None or op.index is False:
                continue
            paths = (
                index.tokenized_fields
                if op.index is None
                else [(p, tokenize_path(p)) for p in op.index]
            )
            for path, tokens in paths:
                texts = get_text_at_path(change.value, tokens)
                for n, text in enumerate(texts):
                    wanted.append((change, path if len(texts) == 1 else f"{path}.{n}", text))
        if not wanted:
            return
        await self._ensure_vector_index()
        vectors = await index.embeddings.aembed_documents([text for _, _, text in wanted])
        for (change, path, _), vector in zip(wanted, vectors, strict=True):
            if len(vector) != index.dims:
                raise ValueError(
                    f"embedder returned {len(vector)} dims, store.index says {index.dims}"
                )
            change.vectors.append((path, [float(x) for x in vector]))

    async def _ensure_vector_index(self) -> None:
        assert self._index is not None
        state = _shared(self.db)
        if self._index.dims in state.vector_dims:
            return
        async with state.vector_lock:
            if self._index.dims not in state.vector_dims:
                async with self.db.system() as conn:
                    index = self._index
                    await conn.execute(
                        "SELECT ensure_store_vector_index(%s, %s, %s)",
                        (index.dims, index.m, index.ef_construction),
                    )
                state.vector_dims.add(self._index.dims)

    # -- reads -----------------------------------------------------------------------

    def _statements(
        self, reads: list[tuple[int, Op]], queries: dict[str, list[float]]
    ) -> list[_Read]:
        """Build every read's SQL up front, so a bad filter fails this call alone."""
        built = []
        for i, op in reads:
            if isinstance(op, GetOp):
                built.append(_Read(i, op, self._get(op)))
            elif isinstance(op, SearchOp):
                built.append(_Read(i, op, self._search(op, queries)))
            else:
                assert isinstance(op, ListNamespacesOp)
                built.append(_Read(i, op, self._list_namespaces(op)))
        return built

    def _get(self, op: GetOp) -> _Statement | None:
        if not op.namespace:
            return None
        params = {
            "org": self.principal.org_id,
            "owner": self._owner_of(op.namespace),
            "path": ns_path(op.namespace),
            "key": str(op.key),
            "refresh": bool(op.refresh_ttl),
        }
        return _GET, params

    def _search(self, op: SearchOp, queries: dict[str, list[float]]) -> _Statement | None:
        if op.limit <= 0:
            return None
        prefix = tuple(op.namespace_prefix)
        condition, filter_params = compile_filter(op.filter, "i.value")
        params: dict[str, Any] = {
            "org": self.principal.org_id,
            "owners": self._owners_under(prefix),
            "limit": op.limit,
            "offset": max(op.offset, 0),
        }
        path_range = ""
        if bounds := _path_range(prefix):
            params["low"], params["high"] = bounds
            path_range = "AND i.ns_path >= %(low)s AND i.ns_path < %(high)s"
        # Filter placeholders are positional; name them so they mix with the named ones.
        for n, value in enumerate(filter_params):
            params[f"f{n}"] = value
        named = _name_placeholders(condition)
        refresh = _REFRESH_HITS if op.refresh_ttl else ""
        vector = queries.get(op.query) if op.query else None
        if vector is None or self._index is None:
            params["window"] = params["offset"] + op.limit
            branches = []
            for n, owner in enumerate(params["owners"]):
                params[f"owner{n}"] = owner
                branch = _SEARCH_OWNER.format(n=n, range=path_range, live=_LIVE, filter=named)
                branches.append(branch)
            sql = _SEARCH.format(branches=" UNION ALL ".join(branches), refresh=refresh)
        else:
            params["query"] = _vector_literal(vector)
            fan = max(1, len(self._index.fields)) * (
                4 if any("[*]" in f for f in self._index.fields) else 1
            )
            params["fetch"] = (params["offset"] + op.limit) * fan
            params["exact_max"] = _EXACT_MAX
            parts = {
                "dims": self._index.dims,
                "range": path_range.replace("i.ns_path", "v.ns_path"),
                "live": _LIVE,
                "filter": named,
            }
            sql = _VECTOR_SEARCH.format(
                **parts,
                refresh=refresh,
                exact_all=_EXACT_SCORED.format(**parts, when="(SELECT exact FROM counted)"),
                exact_unindexed=_EXACT_SCORED.format(
                    **parts, when="NOT (SELECT exact FROM counted) AND NOT v.ann"
                ),
            )
        return sql, params

    def _list_namespaces(self, op: ListNamespacesOp) -> _Statement | None:
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
            "org": self.principal.org_id,
            "owners": self._owners_under(prefix),
            "limit": op.limit,
            "offset": max(op.offset, 0),
        }
        conditions = []
        literal = prefix[: prefix.index("*")] if "*" in prefix else prefix
        if bounds := _path_range(literal):
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
                    conditions.append(
                        f"n.namespace[cardinality(n.namespace) - {offset}] = %(s{n})s"
                    )
        depth = op.max_depth
        if depth is not None and depth < 1:
            raise ValueError(f"max_depth must be at least 1, got {depth}")
        column = f"n.namespace[1:{int(depth)}]" if depth is not None else "n.namespace"
        sql = _LIST_NAMESPACES.format(
            column=column, conditions="".join(f" AND {c}" for c in conditions)
        )
        return sql, params


# --- Read path -----------------------------------------------------------------------


async def _together_or_alone(
    run: Callable[[list[G]], Awaitable[None]], groups: list[G]
) -> list[BaseException | None]:
    """Run `groups` in one transaction; if that fails, run each alone, so only the calls
    that cause an error (a quota, a deadlock) see it. Returns each call's outcome."""
    try:
        await run(groups)
        return [None] * len(groups)
    except Exception as exc:
        if len(groups) == 1:
            return [_translate(exc)]
    outcomes: list[BaseException | None] = []
    for group in groups:
        try:
            await run([group])
            outcomes.append(None)
        except Exception as exc:
            outcomes.append(_translate(exc))
    return outcomes


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, psycopg.Error) and exc.sqlstate == _QUOTA_SQLSTATE:
        return QuotaExceeded(exc.diag.message_primary or str(exc))
    return exc


async def _flush_reads(groups: list[_Reads]) -> list[BaseException | None]:
    """Concurrent reads of one org share a transaction: one pooled connection and one
    pipelined round trip for the lot, as LangGraph's batching task does for its store."""
    return await _together_or_alone(_read, groups)


async def _read(groups: list[_Reads]) -> None:
    store = groups[0].store
    # Searches last (a stable sort keeps the rest in order), after their settings.
    reads = sorted(
        ((group, read) for group in groups for read in group.reads),
        key=lambda pair: isinstance(pair[1].op, SearchOp),
    )
    async with store.db.tenant(store.principal) as conn:
        if any(read.statement is not None for _, read in reads):
            await conn.execute(_READ_SETTINGS)
        pending = []
        searching = False
        for group, read in reads:
            cursor = None
            if read.statement is not None:
                if isinstance(read.op, SearchOp) and not searching:
                    await conn.execute(_SEARCH_SETTINGS)
                    searching = True
                cursor = await conn.execute(*read.statement)
            pending.append((group, read, cursor))
    # Fetched after COMMIT: the rows arrived with it, so the reads cost one round trip.
    for group, read, cursor in pending:
        rows = await cursor.fetchall() if cursor is not None else []
        if isinstance(read.op, GetOp):
            group.results[read.index] = _item(rows[0]) if rows else None
        elif isinstance(read.op, SearchOp):
            group.results[read.index] = [_search_item(r) for r in rows]
        else:
            group.results[read.index] = [tuple(r["namespace"]) for r in rows]


# --- Write path ----------------------------------------------------------------------


async def _flush_writes(groups: list[_Writes]) -> list[BaseException | None]:
    """Concurrent writes of one org share a transaction and its commit (group commit)."""
    return await _together_or_alone(_write, groups)


async def _write(groups: list[_Writes]) -> None:
    """Apply the groups' changes (last one per item wins). Quotas are the first store's:
    every store of a process is built from the same config."""
    store = groups[0].store
    merged: dict[tuple[str, tuple[str, ...], str], _Change] = {}
    for group in groups:
        for change in group.changes:
            merged[change.identity] = change  # last write wins, in arrival order
    changes = sorted(merged.values(), key=lambda c: (c.owner, ns_path(c.namespace), c.key))
    puts = [c for c in changes if c.value is not None]
    gone = [c for c in changes if c.value is None]
    org = store.principal.org_id
    write = {
        "org": org,
        "shard": random.randrange(_USAGE_SHARDS),  # noqa: S311 - spreads writers, not a secret
        "rows": json.dumps([{**c.row(), "value": c.value, "ttl": c.ttl} for c in puts]),
        "gone_owners": [c.owner for c in gone],
        "gone_paths": [ns_path(c.namespace) for c in gone],
        "gone_keys": [c.key for c in gone],
        "max_items": store._limits.max_items,
        "max_bytes": store._limits.max_bytes,
    }
    vectors = ""
    if puts and any(g.store._index is not None for g in groups):
        kept = [(c, name, vector) for c in puts for name, vector in c.vectors]
        write |= {
            "put_owners": [c.owner for c in puts],
            "put_paths": [ns_path(c.namespace) for c in puts],
            "put_keys": [c.key for c in puts],
            "kept_owners": [c.owner for c, _, _ in kept],
            "kept_paths": [ns_path(c.namespace) for c, _, _ in kept],
            "kept_keys": [c.key for c, _, _ in kept],
            "kept_fields": [name for _, name, _ in kept],
        }
        vectors = _STALE_VECTORS
        if kept:
            rows = [{**c.row(), "field": name, "embedding": v} for c, name, v in kept]
            write |= {"vectors": json.dumps(rows), "exact_max": _EXACT_MAX}
            vectors += _PUT_VECTORS
    async with store.db.tenant(store.principal) as conn:
        await conn.execute(_WRITE.format(vectors=vectors), write)


# --- Row mapping ---------------------------------------------------------------------


def _item(row: Mapping[str, Any]) -> Item:
    return Item(
        namespace=tuple(row["namespace"]),
        key=row["key"],
        value=row["value"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _search_item(row: Mapping[str, Any]) -> SearchItem:
    return SearchItem(
        namespace=tuple(row["namespace"]),
        key=row["key"],
        value=row["value"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        score=row["score"],
    )


def _vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form, '[0.1, 0.2]': the list's own repr, formatted in C."""
    return str([float(x) for x in vector])


def _name_placeholders(condition: str) -> str:
    """Turn the filter's positional `%s` into `%(f0)s, %(f1)s, …` for a named-param query."""
    parts = condition.split("%s")
    return "".join(
        part + (f"%(f{n})s" if n < len(parts) - 1 else "") for n, part in enumerate(parts)
    )
