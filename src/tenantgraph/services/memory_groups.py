"""Group commit of the memory store: concurrent calls of one org share one transaction.

Every `TenantStore` on one `Database` queues its reads and its writes here, keyed by org;
a group's leader opens the tenant transaction for all of them (runtime/group_commit.py).
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langgraph.store.base import Op, Result, SearchOp

from tenantgraph.db.database import Database
from tenantgraph.runtime.group_commit import GroupCommit, together_or_alone
from tenantgraph.stores import item_reads, item_writes
from tenantgraph.stores.item_changes import Change
from tenantgraph.stores.item_reads import Statement

if TYPE_CHECKING:
    from tenantgraph.services.tenant_store import TenantStore

__all__ = ["Read", "Reads", "Writes", "flush_reads", "flush_writes", "shared"]

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


@dataclass(slots=True)
class Writes:
    """The writes of one `abatch` call: what a group commit queues and merges."""

    store: TenantStore
    changes: list[Change]


@dataclass(slots=True)
class Read:
    index: int
    op: Op
    statement: Statement | None  # None: the answer is empty without asking


@dataclass(slots=True)
class Reads:
    """The reads of one `abatch` call and where their results go."""

    store: TenantStore
    reads: list[Read]
    results: list[Result]


class _Shared:
    """Per-database state every `TenantStore` on that database shares."""

    def __init__(self) -> None:
        self.reads: GroupCommit[Reads] = GroupCommit(
            max_inflight=_READ_GROUPS,
            weight=lambda reads: sum(isinstance(r.op, SearchOp) for r in reads.reads),
            max_weight=_SEARCHES_PER_GROUP,
        )
        self.writes: GroupCommit[Writes] = GroupCommit(
            max_inflight=_WRITE_GROUPS,
            weight=lambda writes: sum(len(c.vectors) for c in writes.changes),
            max_weight=_VECTORS_PER_GROUP,
        )
        self.vector_dims: set[int] = set()
        self.vector_lock = asyncio.Lock()


# Keyed by the Database so stores made per request still group their commits; the entry
# goes when the Database does.
_SHARED: weakref.WeakKeyDictionary[Database, _Shared] = weakref.WeakKeyDictionary()


def shared(db: Database) -> _Shared:
    """The group commits (and the vector indexes made) of the stores on `db`."""
    state = _SHARED.get(db)
    if state is None:
        state = _SHARED[db] = _Shared()
    return state


# --- Read path -----------------------------------------------------------------------


async def flush_reads(groups: list[Reads]) -> list[BaseException | None]:
    """Concurrent reads of one org share a transaction: one pooled connection and one
    pipelined round trip for the lot, as LangGraph's batching task does for its store."""
    return await together_or_alone(_read, groups, item_writes.as_quota_error)


async def _read(groups: list[Reads]) -> None:
    store = groups[0].store
    # Searches last (a stable sort keeps the rest in order), after their settings.
    reads = sorted(
        ((group, read) for group in groups for read in group.reads),
        key=lambda pair: isinstance(pair[1].op, SearchOp),
    )
    settings = item_reads.read_settings([read.op for _, read in reads])
    async with store.db.tenant(store.principal, settings=settings) as conn:
        cursors = await item_reads.run_reads(conn, [(read.op, read.statement) for _, read in reads])
    # Fetched after COMMIT: the rows arrived with it, so the reads cost one round trip.
    for (group, read), cursor in zip(reads, cursors, strict=True):
        rows = await cursor.fetchall() if cursor is not None else []
        group.results[read.index] = item_reads.result(read.op, rows)


# --- Write path ----------------------------------------------------------------------


async def flush_writes(groups: list[Writes]) -> list[BaseException | None]:
    """Concurrent writes of one org share a transaction and its commit (group commit)."""
    return await together_or_alone(_write, groups, item_writes.as_quota_error)


async def _write(groups: list[Writes]) -> None:
    """Apply the groups' changes (last one per item wins). Quotas are the first store's:
    every store of a process is built from the same config."""
    store = groups[0].store
    merged: dict[tuple[str, tuple[str, ...], str], Change] = {}
    for group in groups:
        for change in group.changes:
            merged[change.identity] = change  # last write wins, in arrival order
    statement = item_writes.write_statement(
        store.principal,
        merged.values(),
        max_items=store.limits.max_items,
        max_bytes=store.limits.max_bytes,
        indexed=any(g.store.index is not None for g in groups),
    )
    async with store.db.tenant(store.principal) as conn:
        await item_writes.write(conn, statement)
