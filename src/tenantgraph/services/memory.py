"""Long-term memory use cases of the routes and the CLI.

`Memory` is what the store routes call: the LangGraph store operations through a
`TenantStore` bound to the caller, usage, export and erasure. Export and deletion are the
admin (and GDPR) paths: the only way to reach another user's items. They run as the
caller's org like every other tenant query; only `StoreSweeper` crosses orgs, through the
audited `sweep_store_items` / `gc_store_namespaces` / `index_store_vectors` functions.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Literal

from langgraph.store.base import InvalidNamespaceError, Item, SearchItem

from tenantgraph.db.database import Database
from tenantgraph.scope import SHARED, Principal, validate_identifier
from tenantgraph.services.tenant_store import (
    InvalidNamespace,
    StoreConfig,
    StoreForbidden,
    TenantStore,
)
from tenantgraph.stores import item_lifecycle
from tenantgraph.stores.item_lifecycle import StoreUsage

__all__ = ["Memory", "StoreUsage"]

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
    if not (principal.sees_all_users or (principal.user_id == user_id and user_id != SHARED)):
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
        if not principal.sees_all_users:
            raise StoreForbidden("only admins may delete the organisation's memory")
        async with self.db.tenant(principal) as conn:
            return await item_lifecycle.delete_org_items(conn, principal)
