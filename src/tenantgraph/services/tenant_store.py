"""Long-term memory: `TenantStore`, a LangGraph `BaseStore` bound to one principal.

Callers and graphs name namespaces as in any LangGraph app; the org and the owner are
never part of what they pass or see. Every item is stored under the caller's org and
owner (`stores/item_scope.py`), so the same rule holds over HTTP and inside a graph,
because it is enforced here and not by callers (docs/architecture.md).

LangGraph calls the store directly, so it is a service of its own: it opens its
transactions, and concurrent calls of one org share them (`memory_groups.py`). Its SQL
lives in `stores/item_reads.py`, `item_writes.py` and `vectors.py`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchOp,
    TTLConfig,
    get_text_at_path,
    tokenize_path,
    validate_op_namespace,
)

from tenantgraph.db.database import Database
from tenantgraph.errors import Forbidden, InvalidInput
from tenantgraph.scope import SHARED, Principal
from tenantgraph.services import memory_groups
from tenantgraph.services.embeddings import StoreIndex, resolve_index
from tenantgraph.stores import item_reads, vectors
from tenantgraph.stores.item_changes import Change
from tenantgraph.stores.item_reads import Statement
from tenantgraph.stores.item_scope import owner_of

__all__ = [
    "ForbiddenNamespace",
    "InvalidNamespace",
    "StoreConfig",
    "StoreForbidden",
    "StoreLimits",
    "TenantStore",
]


class StoreForbidden(Forbidden, PermissionError):
    """The caller may not do this to the store (a graph may catch PermissionError)."""


class ForbiddenNamespace(StoreForbidden):
    """A member writing or deleting in the org-wide `("shared", …)` space. HTTP: 403.

    Not 404: the space exists for every member (they can read it), so there is nothing to
    hide; the caller lacks the admin role for writing it.
    """


class InvalidNamespace(InvalidInput, InvalidNamespaceError):
    """LangGraph's `InvalidNamespaceError` as the routes raise it: invalid input (422).
    Graphs calling the store directly see LangGraph's own error."""


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
    def from_mapping(
        cls, block: Mapping[str, Any] | None, base_dir: Path | None = None
    ) -> StoreConfig:
        """The config file's `store` block; paths in it are relative to `base_dir`."""
        block = block or {}
        limits = block.get("limits") or {}
        return cls(
            index=resolve_index(block.get("index"), base_dir),
            ttl=TTLConfig(**block["ttl"]) if block.get("ttl") else None,
            limits=StoreLimits(limits.get("max_items"), limits.get("max_bytes")),
        )

    def store(self, db: Database, principal: Principal) -> TenantStore:
        return TenantStore(
            db, principal, index_config=self.index, ttl_config=self.ttl, limits=self.limits
        )


class TenantStore(BaseStore):
    """A LangGraph store that sees and changes only its principal's items.

    Construct one per request or run: `TenantStore(db, principal, index_config=...)`.
    `index_config` is the `store.index` block of the config file (or a resolved
    `StoreIndex`), `ttl_config` its `store.ttl` block, `limits` the per-org quotas.
    Concurrent writes of one org on one `Database` share a transaction (group commit).

    Errors: LangGraph's `InvalidNamespaceError` (which `Memory` raises as `InvalidNamespace`
    for the routes) and `InvalidFilter` (invalid input), `ForbiddenNamespace`,
    `QuotaExceeded`.
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
        self.index = resolve_index(index_config)
        self.limits = limits or StoreLimits()
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
        puts: list[tuple[Change, PutOp]] = []
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
        groups = memory_groups.shared(self.db)
        if reads:
            batch = memory_groups.Reads(self, self._statements(reads, queries), results)
            await groups.reads.submit(self.principal.org_id, batch, memory_groups.flush_reads)
        if changes:
            await groups.writes.submit(
                self.principal.org_id,
                memory_groups.Writes(self, changes),
                memory_groups.flush_writes,
            )
        return results

    # -- ownership -------------------------------------------------------------------

    def _change(self, op: PutOp) -> Change:
        namespace = tuple(op.namespace)
        if not namespace:
            raise InvalidNamespaceError("Namespace cannot be empty.")
        if namespace[0] == "langgraph":
            raise InvalidNamespaceError(
                f'Root label for namespace cannot be "langgraph": {namespace}'
            )
        if not isinstance(op.key, str) or not op.key:
            raise ValueError(f"store keys must be non-empty strings, got {op.key!r}")
        owner = owner_of(self.principal, namespace)
        if owner == SHARED and not self.principal.is_admin:
            raise ForbiddenNamespace(f"only admins may write the org-wide namespace {namespace!r}")
        if op.value is None:
            return Change(owner, namespace, op.key, None)
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
        return Change(owner, namespace, op.key, dict(op.value), ttl)

    # -- embeddings ------------------------------------------------------------------

    async def _embed_queries(self, ops: Iterable[Op]) -> dict[str, list[float]]:
        if self.index is None:
            return {}
        texts = {op.query for op in ops if isinstance(op, SearchOp) and op.query}
        if not texts:
            return {}
        await self._ensure_vector_index()
        ordered = sorted(texts)
        embedded = await asyncio.gather(*(self.index.embeddings.aembed_query(t) for t in ordered))
        return dict(zip(ordered, embedded, strict=True))

    async def _embed_documents(self, puts: list[tuple[Change, PutOp]]) -> None:
        index = self.index
        if index is None:
            return
        wanted: list[tuple[Change, str, str]] = []
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
        embedded = await index.embeddings.aembed_documents([text for _, _, text in wanted])
        for (change, path, _), vector in zip(wanted, embedded, strict=True):
            if len(vector) != index.dims:
                raise ValueError(
                    f"embedder returned {len(vector)} dims, store.index says {index.dims}"
                )
            change.vectors.append((path, [float(x) for x in vector]))

    async def _ensure_vector_index(self) -> None:
        assert self.index is not None
        state = memory_groups.shared(self.db)
        if self.index.dims in state.vector_dims:
            return
        async with state.vector_lock:
            if self.index.dims not in state.vector_dims:
                index = self.index
                async with self.db.system() as conn:
                    await vectors.ensure_index(conn, index.dims, index.m, index.ef_construction)
                state.vector_dims.add(self.index.dims)

    # -- reads -----------------------------------------------------------------------

    def _statements(
        self, reads: list[tuple[int, Op]], queries: dict[str, list[float]]
    ) -> list[memory_groups.Read]:
        """Build every read's SQL up front, so a bad filter fails this call alone."""
        built = []
        for i, op in reads:
            if isinstance(op, GetOp):
                statement = item_reads.get_statement(self.principal, op)
            elif isinstance(op, SearchOp):
                statement = self._search(op, queries)
            else:
                assert isinstance(op, ListNamespacesOp)
                statement = item_reads.list_namespaces_statement(self.principal, op)
            built.append(memory_groups.Read(i, op, statement))
        return built

    def _search(self, op: SearchOp, queries: dict[str, list[float]]) -> Statement | None:
        vector: Sequence[float] | None = queries.get(op.query) if op.query else None
        if vector is None or self.index is None:
            return item_reads.search_statement(self.principal, op)
        return item_reads.search_statement(
            self.principal, op, vector, dims=self.index.dims, fields=self.index.fields
        )
