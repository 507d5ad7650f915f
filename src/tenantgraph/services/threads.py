"""Threads: each owned by one user of one org; the org's admins may see every thread."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from tenantgraph.db.database import Database
from tenantgraph.errors import Conflict, NotFound
from tenantgraph.scope import Principal
from tenantgraph.stores import checkpoints as checkpoint_store
from tenantgraph.stores import threads as thread_store

__all__ = ["Threads"]


def _not_found(thread_id: uuid.UUID) -> NotFound:
    return NotFound(f"thread {thread_id} not found")


class Threads:
    """The thread use cases, each one tenant transaction. Copying a thread (its row and
    its checkpoints) belongs to the thread state service."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        principal: Principal,
        *,
        thread_id: uuid.UUID | None = None,
        metadata: dict | None = None,
        if_exists: Literal["raise", "do_nothing"] = "raise",
    ) -> dict[str, Any]:
        """A new thread of the caller's; with `if_exists="do_nothing"` an existing thread
        of theirs is returned instead of a Conflict."""
        thread_id = thread_id or uuid.uuid4()
        async with self.db.tenant(principal) as conn:
            row = await thread_store.insert(conn, principal, thread_id=thread_id, metadata=metadata)
            if row is None and if_exists == "do_nothing":
                # None again for another user's thread: the id is taken, but not theirs.
                row = await thread_store.get(conn, principal, thread_id)
        if row is None:
            raise Conflict(f"thread {thread_id} already exists")
        return row

    async def get(self, principal: Principal, thread_id: uuid.UUID) -> dict[str, Any]:
        async with self.db.tenant(principal) as conn:
            row = await thread_store.get(conn, principal, thread_id)
        if row is None:
            raise _not_found(thread_id)
        return row

    async def update(
        self, principal: Principal, thread_id: uuid.UUID, *, metadata: dict | None
    ) -> dict[str, Any]:
        """Merge `metadata` into the thread's; `owner` stays the thread owner's."""
        async with self.db.tenant(principal) as conn:
            row = await thread_store.update(conn, principal, thread_id, metadata=metadata)
        if row is None:
            raise _not_found(thread_id)
        return row

    async def delete(self, principal: Principal, thread_id: uuid.UUID) -> None:
        """Delete a thread; its runs, crons and checkpoints go with it by cascade."""
        async with self.db.tenant(principal) as conn:
            deleted = await thread_store.delete(conn, principal, thread_id)
        if not deleted:
            raise _not_found(thread_id)

    async def prune(
        self,
        principal: Principal,
        thread_ids: list[uuid.UUID],
        *,
        strategy: Literal["delete", "keep_latest"] = "delete",
    ) -> int:
        """Delete the threads (`delete`) or drop all but their latest checkpoints
        (`keep_latest`); threads the caller cannot see are skipped. Returns how many."""
        if not thread_ids:
            return 0
        async with self.db.tenant(principal) as conn:
            if strategy == "delete":
                return await thread_store.delete_many(conn, principal, thread_ids)
            kept = await thread_store.visible_ids(conn, principal, thread_ids)
            await checkpoint_store.keep_latest(conn, principal.org_id, kept)
            return len(kept)

    async def search(self, principal: Principal, **filters: Any) -> list[dict[str, Any]]:
        """Visible threads matching `filters` (see `stores.threads.search`)."""
        async with self.db.tenant(principal) as conn:
            return await thread_store.search(conn, principal, **filters)

    async def count(self, principal: Principal, **filters: Any) -> int:
        async with self.db.tenant(principal) as conn:
            return await thread_store.count(conn, principal, **filters)
