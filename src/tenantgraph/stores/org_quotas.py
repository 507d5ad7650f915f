"""SQL of the per-org quota overrides (tenant table `org_quotas`, migration 0011). The
store's write statement reads its own itself (`store_check_quota`)."""

from __future__ import annotations

from psycopg import AsyncConnection

from tenantgraph.scope import Principal

__all__ = ["delete_override", "select_overrides", "upsert_override"]

_SELECT_OVERRIDES = "SELECT quota, limit_value FROM org_quotas WHERE org_id = %(org)s"
_UPSERT_OVERRIDE = """
INSERT INTO org_quotas (org_id, quota, limit_value) VALUES (%(org)s, %(quota)s, %(limit)s)
ON CONFLICT (org_id, quota) DO UPDATE
SET limit_value = EXCLUDED.limit_value, updated_at = now()
RETURNING quota
"""
_DELETE_OVERRIDE = """
DELETE FROM org_quotas WHERE org_id = %(org)s AND quota = %(quota)s RETURNING quota
"""


async def select_overrides(conn: AsyncConnection, principal: Principal) -> dict[str, int]:
    """The org's overridden quotas and their limits."""
    cur = await conn.execute(_SELECT_OVERRIDES, {"org": principal.org_id})
    return {row["quota"]: row["limit_value"] for row in await cur.fetchall()}


async def upsert_override(
    conn: AsyncConnection, principal: Principal, quota: str, limit: int
) -> None:
    params = {"org": principal.org_id, "quota": quota, "limit": limit}
    await (await conn.execute(_UPSERT_OVERRIDE, params)).fetchall()


async def delete_override(conn: AsyncConnection, principal: Principal, quota: str) -> None:
    params = {"org": principal.org_id, "quota": quota}
    await (await conn.execute(_DELETE_OVERRIDE, params)).fetchall()
