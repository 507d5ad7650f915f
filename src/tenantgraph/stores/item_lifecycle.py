"""The SQL of long-term memory beyond single items: usage, export, erasure and the sweep.

Usage, export and erasure run in the caller's tenant transaction like every other tenant
query; only the sweep crosses orgs, through the audited `sweep_store_items` /
`gc_store_namespaces` functions (on a system connection).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from tenantgraph.scope import Principal

__all__ = [
    "StoreUsage",
    "delete_org_items",
    "delete_owner_items",
    "export_page",
    "gc_namespaces",
    "store_usage",
    "sweep_batch",
]


@dataclass(frozen=True, slots=True)
class StoreUsage:
    items: int
    bytes: int


_USAGE = (
    "SELECT coalesce(sum(items), 0) AS items, coalesce(sum(bytes), 0) AS bytes"
    " FROM store_usage WHERE org_id = %s"
)


async def store_usage(conn: psycopg.AsyncConnection, principal: Principal) -> StoreUsage:
    """What the principal's org stores, as the quota counts it (expired, unswept items too)."""
    cur = await conn.execute(_USAGE, (principal.org_id,))
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


async def export_page(
    conn: psycopg.AsyncConnection,
    principal: Principal,
    owner: str,
    after: tuple[str, str],
    limit: int,
) -> list[dict[str, Any]]:
    """Up to `limit` live items of `owner` in the principal's org after `after` (ns_path,
    key), in keyset order; each row carries its `ns_path` for the next page."""
    cur = await conn.execute(
        _EXPORT_PAGE,
        {
            "org": principal.org_id,
            "owner": owner,
            "after_path": after[0],
            "after_key": after[1],
            "limit": limit,
        },
    )
    return await cur.fetchall()


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


async def delete_owner_items(
    conn: psycopg.AsyncConnection, principal: Principal, owner: str
) -> int:
    """Delete every item (live or expired) `owner` has in the principal's org; returns the
    count."""
    cur = await conn.execute(_DELETE_OWNER, {"org": principal.org_id, "owners": [owner]})
    row = await cur.fetchone()
    return int(row["deleted"]) if row else 0


async def delete_org_items(conn: psycopg.AsyncConnection, principal: Principal) -> int:
    """Delete every store item of the principal's org; returns the count."""
    cur = await conn.execute(_DELETE_ORG, {"org": principal.org_id})
    row = await cur.fetchone()
    return int(row["deleted"]) if row else 0


_SWEEP_BATCH = "SELECT sweep_store_items(%s) AS n"
_GC_NAMESPACES = "SELECT gc_store_namespaces()"


async def sweep_batch(conn: psycopg.AsyncConnection, batch: int) -> int:
    """Delete up to `batch` expired items of every org; returns how many it deleted."""
    cur = await conn.execute(_SWEEP_BATCH, (batch,))
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def gc_namespaces(conn: psycopg.AsyncConnection) -> None:
    """Drop the namespace rows of every org that no item uses any more."""
    await conn.execute(_GC_NAMESPACES)
