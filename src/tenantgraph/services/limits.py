"""Per-org overrides of the rate-limit budgets (read by the rate limiter) and of the quotas
(the store's, read by its write statement, and the crons a user may own, read by `Crons`):
set by the platform operator (any value) or by the org's own admins (only ever tighter than
what applies)."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection

from tenantgraph.db.database import Database
from tenantgraph.ephemeral.ratelimit import Bucket
from tenantgraph.errors import Forbidden, NotFound
from tenantgraph.scope import Principal
from tenantgraph.services.feedback import DEFAULT_RETENTION_DAYS
from tenantgraph.services.tenant_store import StoreLimits
from tenantgraph.settings import Limit, RateLimits, Settings
from tenantgraph.stores import org_quotas
from tenantgraph.stores import rate_limits as store

__all__ = ["OrgLimits", "Quota"]


class Quota(enum.StrEnum):
    """An org's quotas: the store's (the config file's `store.limits`; none: unlimited) and
    the crons one user may own (`crons_per_user`), and how many days feedback is kept
    (`feedback_retention_days`; an admin may only shorten it)."""

    STORE_ITEMS = "store_items"
    STORE_BYTES = "store_bytes"
    CRONS_PER_USER = "crons_per_user"
    FEEDBACK_RETENTION_DAYS = "feedback_retention_days"


class OrgLimits:
    """The org's overrides in Postgres; `get` is what `RateLimiter` loads (and caches).
    `defaults` are the process's budgets, `store_defaults` its store quotas and
    `crons_per_user` its cron cap, which apply where the org has no override."""

    def __init__(
        self,
        db: Database,
        defaults: RateLimits | None = None,
        store_defaults: StoreLimits | None = None,
        crons_per_user: int | None = None,
    ) -> None:
        self.db = db
        self.defaults = defaults or RateLimits()
        self.store_defaults = store_defaults or StoreLimits()
        self.crons_per_user = crons_per_user

    @classmethod
    def from_settings(
        cls, db: Database, settings: Settings, store_defaults: StoreLimits
    ) -> OrgLimits:
        """With the process's defaults: its budgets, store quotas and cron cap."""
        return cls(db, settings.ephemeral.rate_limits, store_defaults, settings.crons_per_user)

    async def effective(self, principal: Principal) -> dict[str, dict[str, Any]]:
        """Every budget of the org (its limit, window and whether the org overrides it) and
        every quota (its limit, None for unlimited, and the same source)."""
        async with self.db.tenant(principal) as conn:
            overrides = _buckets(await store.select_overrides(conn, principal))
            quotas = await org_quotas.select_overrides(conn, principal)
        budgets = {
            bucket.value: {
                **(overrides.get(bucket) or self._default(bucket)).model_dump(),
                "source": "org" if bucket in overrides else "default",
            }
            for bucket in Bucket
        }
        return budgets | {
            quota.value: {
                "limit": quotas.get(quota.value, self._quota_default(quota)),
                "source": "org" if quota.value in quotas else "default",
            }
            for quota in Quota
        }

    async def tighten_quota(self, principal: Principal, quota: Quota, limit: int | None) -> None:
        """What an org's admin may do with a quota: set it (or go back to the default)
        only if it is no looser than the quota that applies now; raising it is `set_quota`."""
        async with self._tenant(principal) as conn:
            current = (await org_quotas.select_overrides(conn, principal)).get(
                quota.value, self._quota_default(quota)
            )
            wanted = limit or self._quota_default(quota)
            if current is not None and (wanted is None or wanted > current):
                raise Forbidden(
                    f"{quota.value}: an org's admins may only tighten a quota (now {current}); "
                    "the operator raises it"
                )
            await _write_quota(conn, principal, quota, limit)

    async def set_quota(self, principal: Principal, quota: Quota, limit: int | None) -> None:
        """Override one quota of `principal`'s org, or restore the default with `None`
        (the operator's decision, as for `set`)."""
        async with self._tenant(principal) as conn:
            await _write_quota(conn, principal, quota, limit)

    def _quota_default(self, quota: Quota) -> int | None:
        return {
            Quota.STORE_ITEMS: self.store_defaults.max_items,
            Quota.STORE_BYTES: self.store_defaults.max_bytes,
            Quota.CRONS_PER_USER: self.crons_per_user,
            Quota.FEEDBACK_RETENTION_DAYS: DEFAULT_RETENTION_DAYS,
        }[quota]

    async def tighten(self, principal: Principal, bucket: Bucket, limit: Limit | None) -> None:
        """What an org's admin may do: set a budget (or go back to the default) only if it
        is no looser than the budget that applies now, in burst and in rate, so no org can
        raise its own limits; raising them is the operator's (`set`)."""
        async with self._tenant(principal) as conn:
            overrides = _buckets(await store.select_overrides(conn, principal))
            current = overrides.get(Bucket(bucket)) or self._default(bucket)
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
            return _buckets(await store.select_overrides(conn, principal))

    async def set(self, principal: Principal, bucket: Bucket, limit: Limit | None) -> None:
        """Override one bucket for `principal`'s org, or restore the default with `None`.

        Raising an org's own limits is a platform operator's decision: the caller (CLI or the
        platform admin's route) authorizes it; org admins go through `tighten`.
        """
        async with self._tenant(principal) as conn:
            await _write(conn, principal, bucket, limit)


def _buckets(rows: list[dict[str, Any]]) -> dict[Bucket, Limit]:
    return {
        Bucket(row["bucket"]): Limit(limit=row["limit_count"], window_seconds=row["window_seconds"])
        for row in rows
    }


async def _write_quota(
    conn: AsyncConnection, principal: Principal, quota: Quota, limit: int | None
) -> None:
    if limit is None:
        await org_quotas.delete_override(conn, principal, quota.value)
    else:
        await org_quotas.upsert_override(conn, principal, quota.value, limit)


async def _write(
    conn: AsyncConnection, principal: Principal, bucket: Bucket, limit: Limit | None
) -> None:
    if limit is None:
        await store.delete_override(conn, principal, Bucket(bucket).value)
    else:
        await store.upsert_override(
            conn, principal, Bucket(bucket).value, limit.limit, limit.window_seconds
        )
