"""Long-term memory beyond single items: usage, export, erasure and the TTL sweeper.

Export and deletion are the admin (and GDPR) paths: the only way to reach another user's
items. They run as the caller's org like every other tenant query; only the sweeper
crosses orgs, through the audited `sweep_store_items` / `gc_store_namespaces` /
`index_store_vectors` functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from tenantgraph.db.database import Database
from tenantgraph.scope import SHARED, Principal, validate_identifier
from tenantgraph.stores.items import StoreForbidden

__all__ = [
    "StoreSweeper",
    "StoreUsage",
    "delete_org_items",
    "delete_user_items",
    "export_user_items",
    "index_pending_vectors",
    "store_usage",
    "sweep_expired",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoreUsage:
    items: int
    bytes: int


def _require_admin_or_self(principal: Principal, user_id: str) -> None:
    validate_identifier(user_id, "user_id")
    if not (principal.is_admin or (principal.user_id == user_id and user_id != SHARED)):
        raise StoreForbidden("only admins may export or delete another user's memory")


async def store_usage(db: Database, principal: Principal) -> StoreUsage:
    """What the caller's org stores, as the quota counts it (expired, unswept items too)."""
    async with db.tenant(principal) as conn:
        cur = await conn.execute(
            "SELECT coalesce(sum(items), 0) AS items, coalesce(sum(bytes), 0) AS bytes"
            " FROM store_usage WHERE org_id = %s",
            (principal.org_id,),
        )
        row = await cur.fetchone()
    assert row is not None
    return StoreUsage(items=int(row["items"]), bytes=int(row["bytes"]))


_EXPORT_PAGE = """
SELECT namespace, key, value, created_at, updated_at, expires_at, ns_path
FROM store_items i
WHERE org_id = %(org)s AND owner_id = %(owner)s
  AND (i.expires_at IS NULL OR i.expires_at > now())
  AND (ns_path, key) > (%(after_path)s, %(after_key)s)
ORDER BY ns_path, key
LIMIT %(limit)s
"""


async def export_user_items(
    db: Database, principal: Principal, user_id: str, *, page_size: int = 1000
) -> AsyncIterator[dict[str, Any]]:
    """Every live item `user_id` owns in the principal's org, page by page (keyset order).

    Admins may export any member; a user may export themself. `user_id="shared"` (admins
    only) exports the org-wide space.
    """
    _require_admin_or_self(principal, user_id)
    after: tuple[str, str] = ("", "")
    while True:
        async with db.tenant(principal) as conn:
            cur = await conn.execute(
                _EXPORT_PAGE,
                {
                    "org": principal.org_id,
                    "owner": user_id,
                    "after_path": after[0],
                    "after_key": after[1],
                    "limit": page_size,
                },
            )
            rows = await cur.fetchall()
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


# Usage moves by what was deleted; the namespace rows and the owner's vector counts go too
# (namespaces are user data, and the counts name the user).
_DELETE_OWNER = """
WITH gone AS (
    DELETE FROM store_items WHERE org_id = %(org)s AND owner_id = ANY(%(owners)s)
    RETURNING value_bytes
), names AS (
    DELETE FROM store_namespaces WHERE org_id = %(org)s AND owner_id = ANY(%(owners)s)
), counts AS (
    DELETE FROM store_vector_counts WHERE org_id = %(org)s AND owner_id = ANY(%(owners)s)
), promoted AS (
    DELETE FROM store_ann_owners WHERE org_id = %(org)s AND owner_id = ANY(%(owners)s)
), usage AS (
    INSERT INTO store_usage AS u (org_id, shard, items, bytes)
    SELECT %(org)s, 0, -count(*), -coalesce(sum(value_bytes), 0) FROM gone
    ON CONFLICT (org_id, shard) DO UPDATE
        SET items = u.items + excluded.items, bytes = u.bytes + excluded.bytes
)
SELECT count(*) AS deleted FROM gone
"""

_DELETE_ORG = """
WITH gone AS (
    DELETE FROM store_items WHERE org_id = %(org)s RETURNING 1
), names AS (
    DELETE FROM store_namespaces WHERE org_id = %(org)s
), counts AS (
    DELETE FROM store_vector_counts WHERE org_id = %(org)s
), promoted AS (
    DELETE FROM store_ann_owners WHERE org_id = %(org)s
), usage AS (
    DELETE FROM store_usage WHERE org_id = %(org)s
)
SELECT count(*) AS deleted FROM gone
"""


async def delete_user_items(db: Database, principal: Principal, user_id: str) -> int:
    """Delete every item (live or expired) `user_id` owns in the principal's org; returns
    the count. Admins may delete any member's; a user may delete their own."""
    _require_admin_or_self(principal, user_id)
    async with db.tenant(principal) as conn:
        cur = await conn.execute(_DELETE_OWNER, {"org": principal.org_id, "owners": [user_id]})
        row = await cur.fetchone()
    return int(row["deleted"]) if row else 0


async def delete_org_items(db: Database, principal: Principal) -> int:
    """Delete every store item of the principal's org (admins only); returns the count."""
    if not principal.is_admin:
        raise StoreForbidden("only admins may delete the organisation's memory")
    async with db.tenant(principal) as conn:
        cur = await conn.execute(_DELETE_ORG, {"org": principal.org_id})
        row = await cur.fetchone()
    return int(row["deleted"]) if row else 0


async def _in_batches(db: Database, function: str, batch: int) -> int:
    """Call an audited cross-tenant function `function(batch)` until it does less than a
    full batch; returns the rows it handled in all."""
    statement = f"SELECT {function}(%s) AS n"
    total = 0
    while True:
        async with db.system() as conn:
            cur = await conn.execute(statement, (batch,))
            row = await cur.fetchone()
        done = int(row["n"]) if row else 0
        total += done
        if done < batch:
            return total


async def sweep_expired(db: Database, *, batch: int = 1000) -> int:
    """Delete expired items of every org in batches, then drop emptied namespace rows.

    Reads never return an expired item whether or not this has run; it frees the space and
    the quota. Returns how many items it deleted.
    """
    total = await _in_batches(db, "sweep_store_items", batch)
    async with db.system() as conn:
        await conn.execute("SELECT gc_store_namespaces()")
    return total


async def index_pending_vectors(db: Database, *, batch: int = 500) -> int:
    """Move vectors written before their owner's promotion into the HNSW index, in batches
    of every org (items.py explains promotion). Searches are right before and after; this
    makes them use the index. Returns how many vectors it moved."""
    return await _in_batches(db, "index_store_vectors", batch)


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
    ) -> None:
        self.db = db
        self.interval = interval
        self.index_interval = index_interval
        self.batch = batch
        self._task: asyncio.Task[None] | None = None

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
                moved = await index_pending_vectors(self.db)
                if moved:
                    log.info("store indexer moved vectors into HNSW", extra={"moved": moved})
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + self.interval
                    deleted = await sweep_expired(self.db, batch=self.batch)
                    if deleted:
                        log.info("store sweeper deleted expired items", extra={"deleted": deleted})
            except Exception:
                log.exception("store sweep failed; retrying next interval")
            await asyncio.sleep(self.index_interval)
