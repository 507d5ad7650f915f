"""Per-org overrides of the rate-limit budgets: read by the rate limiter, set by operators."""

from __future__ import annotations

import psycopg

from tenantgraph.db.database import Database
from tenantgraph.ephemeral.ratelimit import Bucket
from tenantgraph.errors import NotFound
from tenantgraph.scope import Principal
from tenantgraph.settings import Limit
from tenantgraph.stores import rate_limits as store

__all__ = ["OrgLimits"]


class OrgLimits:
    """The org's overrides in Postgres; `get` is what `RateLimiter` loads (and caches)."""

    def __init__(self, db: Database) -> None:
        self.db = db

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

        Raising an org's own limits is a platform operator's decision: the caller (CLI or an
        operator route) authorizes it; this only writes the org's row.
        """
        try:
            async with self.db.tenant(principal) as conn:
                if limit is None:
                    await store.delete_override(conn, principal, Bucket(bucket).value)
                else:
                    await store.upsert_override(
                        conn, principal, Bucket(bucket).value, limit.limit, limit.window_seconds
                    )
        except psycopg.errors.ForeignKeyViolation:
            raise NotFound(f"organisation {principal.org_id!r} not found") from None
