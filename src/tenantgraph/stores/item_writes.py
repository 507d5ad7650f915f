"""The write SQL of long-term memory: every put and delete of a write group in one statement.

A group (the writes of several concurrent callers of one org) becomes one statement: one
round trip, one parse, its locks taken in one pass. Quotas are checked inside it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable

import psycopg

from tenantgraph.errors import QuotaExceeded
from tenantgraph.scope import Principal
from tenantgraph.stores import vectors
from tenantgraph.stores.item_changes import Change
from tenantgraph.stores.item_reads import Statement
from tenantgraph.stores.item_scope import ns_path

__all__ = ["Change", "as_quota_error", "write", "write_statement"]

_QUOTA_SQLSTATE = "TGQ01"
_USAGE_SHARDS = 8

# All changes of a write group in one statement (one round trip, one parse), so its locks
# are taken in one pass (rows come sorted), the usage row after the items: concurrent groups
# of an org cannot deadlock on them. Rows arrive as one JSON array; jsonb_to_recordset turns
# JSON arrays into text[]. An expired item that is still on disk is replaced as if new
# (fresh created_at). RETURNING old.* (PostgreSQL 18) gives each row's growth for the usage
# counters. The vectors' foreign keys are checked at the end of the statement, when the
# items inserted above are there. {vectors} is the CTEs of `vectors.vector_writes`, or
# nothing for a store without an index.
_WRITE = """
WITH x AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS x(owner_id text, namespace text[], key text, value jsonb, ttl float8)
), gone AS (
    DELETE FROM store_items i
    USING unnest(%(gone_owners)s::text[], %(gone_paths)s::text[], %(gone_keys)s::text[])
        AS d(owner_id, ns_path, key)
    WHERE i.org_id = %(org)s AND i.owner_id = d.owner_id
      AND i.ns_path = d.ns_path AND i.key = d.key
    RETURNING i.value_bytes
), ns AS (
    INSERT INTO store_namespaces (org_id, owner_id, namespace)
    SELECT DISTINCT %(org)s, owner_id, namespace FROM x
    ON CONFLICT DO NOTHING
), up AS (
    INSERT INTO store_items AS i
        (org_id, owner_id, namespace, key, value, expires_at, ttl_minutes)
    SELECT %(org)s, owner_id, namespace, key, value,
           now() + ttl * interval '1 minute', ttl
    FROM x
    ON CONFLICT (org_id, owner_id, ns_path, key) DO UPDATE SET
        value = excluded.value,
        updated_at = now(),
        created_at = CASE WHEN i.expires_at <= now() THEN now() ELSE i.created_at END,
        expires_at = excluded.expires_at,
        ttl_minutes = excluded.ttl_minutes
    RETURNING (old.key IS NULL)::int AS added,
              new.value_bytes - coalesce(old.value_bytes, 0) AS grown
), delta AS (
    SELECT (SELECT coalesce(sum(added), 0) FROM up) - (SELECT count(*) FROM gone) AS items,
           (SELECT coalesce(sum(grown), 0) FROM up)
               - (SELECT coalesce(sum(value_bytes), 0) FROM gone) AS bytes
), usage AS (
    INSERT INTO store_usage AS u (org_id, shard, items, bytes)
    SELECT %(org)s, %(shard)s, items, bytes FROM delta
    ON CONFLICT (org_id, shard) DO UPDATE
        SET items = u.items + excluded.items, bytes = u.bytes + excluded.bytes
){vectors}
SELECT store_check_quota(items, bytes, %(max_items)s, %(max_bytes)s) FROM delta
"""


def write_statement(
    principal: Principal,
    changes: Iterable[Change],
    *,
    max_items: int | None,
    max_bytes: int | None,
    indexed: bool,
) -> Statement:
    """The statement applying `changes` (one per item) in the principal's org, failing with
    the quota error if the org would pass `max_items` or `max_bytes`. `indexed`: re-embed the puts'
    vectors (a store with a `store.index`)."""
    changes = sorted(changes, key=lambda c: (c.owner, ns_path(c.namespace), c.key))
    puts = [c for c in changes if c.value is not None]
    gone = [c for c in changes if c.value is None]
    params = {
        "org": principal.org_id,
        "shard": random.randrange(_USAGE_SHARDS),  # noqa: S311 - spreads writers, not a secret
        "rows": json.dumps([{**c.row(), "value": c.value, "ttl": c.ttl} for c in puts]),
        "gone_owners": [c.owner for c in gone],
        "gone_paths": [ns_path(c.namespace) for c in gone],
        "gone_keys": [c.key for c in gone],
        "max_items": max_items,
        "max_bytes": max_bytes,
    }
    ctes = ""
    if puts and indexed:
        ctes, vector_params = vectors.vector_writes(puts)
        params |= vector_params
    return _WRITE.format(vectors=ctes), params


async def write(conn: psycopg.AsyncConnection, statement: Statement) -> None:
    """Send a `write_statement` on the tenant transaction `conn`. Its quota error arrives
    with the COMMIT (pipeline mode): pass what the transaction raises to `as_quota_error`."""
    await conn.execute(*statement)


def as_quota_error(exc: Exception) -> Exception:
    """The quota check's SQL error as `QuotaExceeded`; any other error unchanged."""
    if isinstance(exc, psycopg.Error) and exc.sqlstate == _QUOTA_SQLSTATE:
        return QuotaExceeded(exc.diag.message_primary or str(exc))
    return exc
