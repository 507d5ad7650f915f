"""Long-term memory use cases of the routes and the CLI, and the store's background work.

`Memory` is what the store routes call: the LangGraph store operations through a
`TenantStore` bound to the caller, usage, export and erasure. Export and deletion are the
admin (and GDPR) paths: the only way to reach another user's items. They run as the
caller's org like every other tenant query; only `StoreSweeper` crosses orgs, through the
audited `sweep_store_items` / `gc_store_namespaces` / `index_store_vectors` functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, Literal

import psycopg
from langgraph.store.base import InvalidNamespaceError, Item, SearchItem

from tenantgraph.db.database import Database
from tenantgraph.scope import SHARED, Principal, validate_identifier
from tenantgraph.services.memory import InvalidNamespace, StoreConfig, StoreForbidden, TenantStore
from tenantgraph.stores import item_lifecycle, vectors
from tenantgraph.stores.item_lifecycle import StoreUsage

__all__ = ["Memory", "StoreSweeper", "StoreUsage"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _namespace_errors() -> Iterator[None]:
    """LangGraph validates namespaces before the store runs; its error joins the family."""
    try:
        yield
    except InvalidNamespaceError as exc:
        raise InvalidNamespace(str(exc)) from exc


def _require_admin_or_self(principal: Principal, user_id: str) -> None:
    validate_identifier(user_id, "user_id")
    if not (principal.is_admin or (principal.user_id == user_id and user_id != SHARED)):
        raise StoreForbidden("only admins may export or delete another user's memory")


class Memory:
    """Long-term memory for the routes and the CLI; `store(principal)` is the `BaseStore`
    a graph of that principal receives."""

    def __init__(self, db: Database, config: StoreConfig | None = None) -> None:
        self.db = db
        self.config = config or StoreConfig()

    def store(self, principal: Principal) -> TenantStore:
        """The long-term memory store bound to `principal`."""
        return self.config.store(self.db, principal)

    # -- the LangGraph store API ---------------------------------------------------------

    async def put_item(
        self,
        principal: Principal,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        *,
        index: Literal[False] | list[str] | None = None,
        ttl: float | None = None,
    ) -> None:
        with _namespace_errors():
            await self.store(principal).aput(namespace, key, value, index=index, ttl=ttl)

    async def get_item(
        self,
        principal: Principal,
        namespace: tuple[str, ...],
        key: str,
        *,
        refresh_ttl: bool | None = None,
    ) -> Item | None:
        with _namespace_errors():
            return await self.store(principal).aget(namespace, key, refresh_ttl=refresh_ttl)

    async def delete_item(self, principal: Principal, namespace: tuple[str, ...], key: str) -> None:
        with _namespace_errors():
            await self.store(principal).adelete(namespace, key)

    async def search_items(
        self,
        principal: Principal,
        namespace_prefix: tuple[str, ...],
        *,
        query: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool | None = None,
    ) -> list[SearchItem]:
        with _namespace_errors():
            return await self.store(principal).asearch(
                namespace_prefix,
                query=query,
                filter=filter,
                limit=limit,
                offset=offset,
                refresh_ttl=refresh_ttl,
            )

    async def list_namespaces(
        self,
        principal: Principal,
        *,
        prefix: Sequence[str] | None = None,
        suffix: Sequence[str] | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[tuple[str, ...]]:
        with _namespace_errors():
            return await self.store(principal).alist_namespaces(
                prefix=tuple(prefix) if prefix else None,
                suffix=tuple(suffix) if suffix else None,
                max_depth=max_depth,
                limit=limit,
                offset=offset,
            )

    # -- usage, export, erasure ----------------------------------------------------------

    async def usage(self, principal: Principal) -> StoreUsage:
        """What the caller's org stores, as the quota counts it (expired, unswept items too)."""
        async with self.db.tenant(principal) as conn:
            return await item_lifecycle.store_usage(conn, principal)

    async def export_user_items(
        self, principal: Principal, user_id: str, *, page_size: int = 1000
    ) -> AsyncIterator[dict[str, Any]]:
        """Every live item `user_id` owns in the principal's org, page by page (keyset order).

        Admins may export any member; a user may export themself. `user_id="shared"` (admins
        only) exports the org-wide space.
        """
        _require_admin_or_self(principal, user_id)
        after: tuple[str, str] = ("", "")
        while True:
            async with self.db.tenant(principal) as conn:
                rows = await item_lifecycle.export_page(conn, principal, user_id, after, page_size)
            for row in rows:
                yield {
                    "namespace": list(row["namespace"]),
                    "key": row["key"],
                    "value": row["value"],
                    "created_at": row["created_at"].isoformat(),
                    "updated_at": row["updated_at"].isoformat(),
                    "expires_at": row["expires_at"].isoformat() if row["expires_at"] else None,
                }
            if len(rows) < page_size:
                return
            after = (rows[-1]["ns_path"], rows[-1]["key"])

    async def delete_user_items(self, principal: Principal, user_id: str) -> int:
        """Delete every item (live or expired) `user_id` owns in the principal's org; returns
        the count. Admins may delete any member's; a user may delete their own."""
        _require_admin_or_self(principal, user_id)
        async with self.db.tenant(principal) as conn:
            return await item_lifecycle.delete_owner_items(conn, principal, user_id)

    async def delete_org_items(self, principal: Principal) -> int:
        """Delete every store item of the principal's org (admins only); returns the count."""
        if not principal.is_admin:
            raise StoreForbidden("only admins may delete the organisation's memory")
        async with self.db.tenant(principal) as conn:
            return await item_lifecycle.delete_org_items(conn, principal)


class StoreSweeper:
    """The store's background work, started and stopped by the app's lifespan: the vector
    indexer every `index_interval` seconds, `sweep_expired` every `interval` seconds."""

    def __init__(
        self,
        db: Database,
        *,
        interval: float = 60.0,
        index_interval: float = 2.0,
        batch: int = 1000,
        index_batch: int = 500,
    ) -> None:
        self.db = db
        self.interval = interval
        self.index_interval = index_interval
        self.batch = batch
        self.index_batch = index_batch
        self._task: asyncio.Task[None] | None = None

    async def sweep_expired(self) -> int:
        """Delete expired items of every org in batches, then drop emptied namespace rows.

        Reads never return an expired item whether or not this has run; it frees the space
        and the quota. Returns how many items it deleted.
        """
        total = await self._in_batches(item_lifecycle.sweep_batch, self.batch)
        async with self.db.system() as conn:
            await item_lifecycle.gc_namespaces(conn)
        return total

    async def index_pending_vectors(self) -> int:
        """Move vectors written before their owner's promotion into the HNSW index, in
        batches of every org (`stores/vectors.py` explains promotion). Searches are right
        before and after; this makes them use the index. Returns how many vectors it moved."""
        return await self._in_batches(vectors.index_batch, self.index_batch)

    async def _in_batches(
        self, step: Callable[[psycopg.AsyncConnection, int], Awaitable[int]], batch: int
    ) -> int:
        """Run an audited cross-tenant `step(conn, batch)` until it does less than a full
        batch; returns the rows it handled in all."""
        total = 0
        while True:
            async with self.db.system() as conn:
                done = await step(conn, batch)
            total += done
            if done < batch:
                return total

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="tenantgraph-store-sweeper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        next_sweep = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                moved = await self.index_pending_vectors()
                if moved:
                    log.info("store indexer moved vectors into HNSW", extra={"moved": moved})
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + self.interval
                    deleted = await self.sweep_expired()
                    if deleted:
                        log.info("store sweeper deleted expired items", extra={"deleted": deleted})
            except Exception:
                log.exception("store sweep failed; retrying next interval")
            await asyncio.sleep(self.index_interval)
