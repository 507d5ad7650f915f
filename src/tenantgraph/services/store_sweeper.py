"""The background work across orgs: expired store items, empty namespaces, moving vectors
into the HNSW index, expired idempotency records, threads past `checkpointer.ttl` and
feedback past its org's retention. It crosses orgs only through the audited
`sweep_store_items`, `gc_store_namespaces`, `index_store_vectors`,
`sweep_idempotency_records`, `expired_threads` and `sweep_feedback` functions; an expired
thread is then pruned as its owner, in its own org."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import psycopg

from tenantgraph.db.database import Database
from tenantgraph.scope import Principal
from tenantgraph.services.feedback import DEFAULT_RETENTION_DAYS
from tenantgraph.services.threads import Threads
from tenantgraph.settings import ThreadTtl
from tenantgraph.stores import feedback, idempotency, item_lifecycle, vectors
from tenantgraph.stores import threads as thread_store

__all__ = ["StoreSweeper"]

log = logging.getLogger(__name__)


class StoreSweeper:
    """The background work, started and stopped by the app's lifespan: the vector indexer
    every `index_interval` seconds, `sweep_expired` and `sweep_idempotency_records` every
    `interval` seconds with `sweep_feedback`, and `sweep_expired_threads` as often as
    `thread_ttl` says."""

    def __init__(
        self,
        db: Database,
        *,
        interval: float = 60.0,
        index_interval: float = 2.0,
        batch: int = 1000,
        index_batch: int = 500,
        thread_ttl: ThreadTtl | None = None,
        feedback_retention_days: int = DEFAULT_RETENTION_DAYS,
    ) -> None:
        self.db = db
        self.interval = interval
        self.index_interval = index_interval
        self.batch = batch
        self.index_batch = index_batch
        self.thread_ttl = thread_ttl
        self.feedback_retention_days = feedback_retention_days
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

    async def sweep_idempotency_records(self) -> int:
        """Delete the expired idempotency records of every org in batches (claims treat an
        expired record as absent already; this frees the space). Returns how many."""
        return await self._in_batches(idempotency.sweep_batch, self.batch)

    async def sweep_expired_threads(self) -> int:
        """Apply `thread_ttl` to at most `sweep_limit` threads not updated for its
        `default_ttl` minutes (none running a run): delete them, or keep only their latest
        checkpoints. Returns how many threads it pruned."""
        ttl = self.thread_ttl
        if ttl is None:
            return 0
        keep = ttl.strategy == "keep_latest"
        async with self.db.system() as conn:
            rows = await thread_store.expired(
                conn, ttl.default_ttl, keep_latest=keep, batch=ttl.sweep_limit
            )
        owners: dict[tuple[str, str], list] = {}
        for row in rows:
            owners.setdefault((row["org_id"], row["owner_id"]), []).append(row["thread_id"])
        threads, pruned = Threads(self.db), 0
        for (org_id, owner_id), ids in owners.items():
            owner = Principal(org_id, owner_id)
            pruned += await threads.prune(owner, ids, strategy=ttl.strategy)
        return pruned

    async def sweep_feedback(self) -> int:
        """Delete the feedback events older than their org's retention (its
        `feedback_retention_days` quota, else the default) in batches. Returns how many."""
        days = self.feedback_retention_days
        return await self._in_batches(
            lambda conn, n: feedback.sweep_batch(conn, n, days), self.batch
        )

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
        next_sweep = next_thread_sweep = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                if self.thread_ttl is not None and loop.time() >= next_thread_sweep:
                    next_thread_sweep = loop.time() + 60 * self.thread_ttl.sweep_interval_minutes
                    pruned = await self.sweep_expired_threads()
                    if pruned:
                        log.info("thread sweeper pruned expired threads", extra={"pruned": pruned})
                moved = await self.index_pending_vectors()
                if moved:
                    log.info("store indexer moved vectors into HNSW", extra={"moved": moved})
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + self.interval
                    deleted = await self.sweep_expired()
                    if deleted:
                        log.info("store sweeper deleted expired items", extra={"deleted": deleted})
                    forgotten = await self.sweep_idempotency_records()
                    if forgotten:
                        log.info(
                            "sweeper deleted expired idempotency records",
                            extra={"deleted": forgotten},
                        )
                    aged = await self.sweep_feedback()
                    if aged:
                        log.info("sweeper deleted old feedback", extra={"deleted": aged})
            except Exception:
                log.exception("store sweep failed; retrying next interval")
            await asyncio.sleep(self.index_interval)
