"""Per-org overrides of the rate-limit budgets: read by the rate limiter, set by the platform
operator (any value) or by the org's own admins (only ever tighter than what applies)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection

from tenantgraph.db.database import Database
from tenantgraph.ephemeral.ratelimit import Bucket
from tenantgraph.errors import Forbidden, NotFound
from tenantgraph.scope import Principal
from tenantgraph.settings import Limit, RateLimits
from tenantgraph.stores import rate_limits as store

__all__ = ["OrgLimits"]


class OrgLimits:
    """The org's overrides in Postgres; `get` is what `RateLimiter` loads (and caches).
    `defaults` are the process's budgets, which apply where the org has no override."""

    def __init__(self, db: Database, defaults: RateLimits | None = None) -> None:
        self.db = db
        self.defaults = defaults or RateLimits()

    async def effective(self, principal: Principal) -> dict[str, dict[str, Any]]:
        """Every budget of the org: its limit, window and whether the org overrides it."""
        overrides = await self.get(principal)
        return {
            bucket.value: {
                **(overrides.get(bucket) or self._default(bucket)).model_dump(),
                "source": "org" if bucket in overrides else "default",
            }
            for bucket in Bucket
        }

    async def tighten(self, principal: Principal, bucket: Bucket, limit: Limit | None) -> None:
        """What an org's admin may do: set a budget (or go back to the default) only if it
        is no looser than the budget that applies now, in burst and in rate, so no org can
        raise its own limits; raising them is the operator's (`set`)."""
        async with self._tenant(principal) as conn:
            rows = await store.select_overrides(conn, principal)
            current = next(
                (
                    Limit(limit=r["limit_count"], window_seconds=r["window_seconds"])
                    for r in rows
                    if r["bucket"] == Bucket(bucket).value
                ),
                self._default(bucket),
            )
            wanted = limit or self._default(bucket)
            looser = wanted.limit > current.limit or (
                wanted.limit / wanted.window_seconds > current.limit / current.window_seconds
            )
            if looser:
                raise Forbidden(
                    f"{Bucket(bucket).value}: an org's admins may only tighten a budget (now "
                    f"{current.limit} per {current.window_seconds} s); the operator raises it"
                )
            await _write(conn, principal, bucket, limit)

    @asynccontextmanager
    async def _tenant(self, principal: Principal) -> AsyncIterator[AsyncConnection]:
        """The org's transaction; an org that does not exist is NotFound (the foreign key)."""
        try:
            async with self.db.tenant(principal) as conn:
                yield conn
        except psycopg.errors.ForeignKeyViolation:
            raise NotFound(f"organisation {principal.org_id!r} not found") from None

    def _default(self, bucket: Bucket) -> Limit:
        return getattr(self.defaults, Bucket(bucket).value)

    async def get(self, principal: Principal) -> dict[Bucket, Limit]:
        """The buckets `principal`'s org overrides, and their limits."""
        async with self.db.tenant(principal) as conn:
            rows = await store.select_overrides(conn, principal)
        return {
            Bucket(row["bucket"]): Limit(
                limit=row["limit_count"], window_seconds=row["window_seconds"]
            )
            for row in rows
        }

    async def set(self, principal: Principal, bucket: Bucket, limit: Limit | None) -> None:
        """Override one bucket for `principal`'s org, or restore the default with `None`.

        Raising an org's own limits is a platform operator's decision: the caller (CLI or the
        platform admin's route) authorizes it; org admins go through `tighten`.
        """
        async with self._tenant(principal) as conn:
            await _write(conn, principal, bucket, limit)


async def _write(
    conn: AsyncConnection, principal: Principal, bucket: Bucket, limit: Limit | None
) -> None:
    if limit is None:
        await store.delete_override(conn, principal, Bucket(bucket).value)
    else:
        await store.upsert_override(
            conn, principal, Bucket(bucket).value, limit.limit, limit.window_seconds
        )
