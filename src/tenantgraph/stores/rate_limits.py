"""SQL of the per-org rate-limit overrides (tenant table `rate_limits`, migration 0003)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from tenantgraph.scope import Principal

__all__ = ["delete_override", "select_overrides", "upsert_override"]

_SELECT_OVERRIDES = """
SELECT bucket, limit_count, window_seconds FROM rate_limits WHERE org_id = %(org)s
"""
_UPSERT_OVERRIDE = """
INSERT INTO rate_limits (org_id, bucket, limit_count, window_seconds)
VALUES (%(org)s, %(bucket)s, %(limit)s, %(window)s)
ON CONFLICT (org_id, bucket) DO UPDATE
SET limit_count = EXCLUDED.limit_count, window_seconds = EXCLUDED.window_seconds,
    updated_at = now()
RETURNING bucket
"""
_DELETE_OVERRIDE = """
DELETE FROM rate_limits WHERE org_id = %(org)s AND bucket = %(bucket)s RETURNING bucket
"""


async def select_overrides(conn: AsyncConnection, principal: Principal) -> list[dict[str, Any]]:
    """The org's override rows: bucket, limit_count, window_seconds."""
    cur = await conn.execute(_SELECT_OVERRIDES, {"org": principal.org_id})
    return await cur.fetchall()


async def upsert_override(
    conn: AsyncConnection, principal: Principal, bucket: str, limit: int, window_seconds: int
) -> None:
    params = {"org": principal.org_id, "bucket": bucket, "limit": limit, "window": window_seconds}
    await (await conn.execute(_UPSERT_OVERRIDE, params)).fetchall()


async def delete_override(conn: AsyncConnection, principal: Principal, bucket: str) -> None:
    params = {"org": principal.org_id, "bucket": bucket}
    await (await conn.execute(_DELETE_OVERRIDE, params)).fetchall()
