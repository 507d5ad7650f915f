"""SQL for crons. Visibility as for threads: the cron's owner and the org's admins.

`due_crons` is the audited cross-tenant path (a SECURITY DEFINER function, migration 0004),
called on a connection with no tenant; everything else runs in a tenant transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, get_args

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from tenantgraph.scope import Principal
from tenantgraph.stores._query import caller_params, owner_or_admin

__all__ = [
    "SORT_COLUMNS",
    "CronSortColumn",
    "claim_firing",
    "count_crons",
    "count_owned",
    "delete_cron",
    "due_crons",
    "get_cron",
    "insert_cron",
    "search_crons",
    "update_cron",
]

COLUMNS = """c.cron_id, c.assistant_id, c.thread_id, c.owner_id, c.schedule, c.payload,
    c.metadata, c.enabled, c.end_time, c.next_run_date, c.created_at, c.updated_at,
    c.experiment_id"""
_VISIBLE = owner_or_admin("c")
CronSortColumn = Literal[
    "cron_id", "assistant_id", "thread_id", "created_at", "updated_at", "next_run_date", "end_time"
]
SORT_COLUMNS = frozenset(get_args(CronSortColumn))
UPDATABLE = frozenset({"schedule", "payload", "metadata", "enabled", "end_time", "next_run_date"})


async def insert_cron(
    conn: AsyncConnection, principal: Principal, values: dict[str, Any]
) -> dict[str, Any]:
    cur = await conn.execute(
        "INSERT INTO crons AS c (org_id, cron_id, assistant_id, thread_id, owner_id, schedule,"
        " payload, metadata, enabled, end_time, next_run_date, experiment_id) VALUES (%(org)s,"
        " %(cron_id)s, %(assistant_id)s, %(thread_id)s, %(user)s, %(schedule)s, %(payload)s,"
        " %(metadata)s, %(enabled)s, %(end_time)s, %(next_run_date)s, %(experiment_id)s)"
        f" RETURNING {COLUMNS}",
        {
            **caller_params(principal),
            **values,
            "payload": Jsonb(values["payload"]),
            "metadata": Jsonb(values["metadata"]),
        },
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def get_cron(
    conn: AsyncConnection, principal: Principal, cron_id: uuid.UUID, *, lock: bool = False
) -> dict[str, Any] | None:
    cur = await conn.execute(
        f"SELECT {COLUMNS} FROM crons c WHERE c.org_id = %(org)s AND c.cron_id = %(cron)s"
        f" AND {_VISIBLE}" + (" FOR UPDATE" if lock else ""),
        {**caller_params(principal), "cron": cron_id},
    )
    return await cur.fetchone()


async def update_cron(
    conn: AsyncConnection, principal: Principal, cron_id: uuid.UUID, changes: dict[str, Any]
) -> dict[str, Any] | None:
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}")
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in changes
    )
    params = {
        **caller_params(principal),
        "cron": cron_id,
        **{k: Jsonb(v) if k in ("payload", "metadata") else v for k, v in changes.items()},
    }
    query = sql.SQL(
        "UPDATE crons c SET {}, updated_at = now() WHERE c.org_id = %(org)s"
        " AND c.cron_id = %(cron)s AND " + _VISIBLE + " RETURNING " + COLUMNS
    ).format(assignments)
    cur = await conn.execute(query, params)
    return await cur.fetchone()


async def delete_cron(conn: AsyncConnection, principal: Principal, cron_id: uuid.UUID) -> bool:
    cur = await conn.execute(
        "DELETE FROM crons c WHERE c.org_id = %(org)s AND c.cron_id = %(cron)s AND "
        + _VISIBLE
        + " RETURNING c.cron_id",
        {**caller_params(principal), "cron": cron_id},
    )
    return await cur.fetchone() is not None


def _filters(principal: Principal, filters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    clauses = ["c.org_id = %(org)s", _VISIBLE]
    params = caller_params(principal)
    for column in ("assistant_id", "thread_id", "enabled"):
        if filters.get(column) is not None:
            clauses.append(f"c.{column} = %({column})s")
            params[column] = filters[column]
    if filters.get("metadata"):
        clauses.append("c.metadata @> %(metadata)s")
        params["metadata"] = Jsonb(filters["metadata"])
    return " AND ".join(clauses), params


async def search_crons(
    conn: AsyncConnection,
    principal: Principal,
    filters: dict[str, Any],
    *,
    limit: int = 10,
    offset: int = 0,
    sort_by: str = "created_at",
    sort_order: str = "desc",
) -> list[dict[str, Any]]:
    if sort_by not in SORT_COLUMNS:
        raise ValueError(f"cannot sort crons by {sort_by!r}")
    order = "ASC" if sort_order.lower() == "asc" else "DESC"
    where, params = _filters(principal, filters)
    cur = await conn.execute(
        f"SELECT {COLUMNS} FROM crons c WHERE {where}"
        f" ORDER BY c.{sort_by} {order}, c.cron_id LIMIT %(limit)s OFFSET %(offset)s",
        {**params, "limit": limit, "offset": offset},
    )
    return await cur.fetchall()


async def count_crons(conn: AsyncConnection, principal: Principal, filters: dict[str, Any]) -> int:
    where, params = _filters(principal, filters)
    cur = await conn.execute(f"SELECT count(*) AS n FROM crons c WHERE {where}", params)
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def count_owned(conn: AsyncConnection, principal: Principal) -> int:
    """The crons the principal owns (the per-user cap counts these, whoever may see more)."""
    cur = await conn.execute(
        "SELECT count(*) AS n FROM crons WHERE org_id = %s AND owner_id = %s",
        (principal.org_id, principal.user_id),
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def claim_firing(
    conn: AsyncConnection,
    org_id: str,
    cron_id: uuid.UUID,
    seen: datetime,
    next_run_date: datetime | None,
) -> dict[str, Any] | None:
    """Move a due cron to its next date — only if no one else did since `seen` was read.
    The winner of this conditional UPDATE fires the cron; everyone else gets None."""
    cur = await conn.execute(
        "UPDATE crons c SET next_run_date = %s, enabled = enabled AND %s::timestamptz IS NOT NULL,"
        " updated_at = now() WHERE c.org_id = %s AND c.cron_id = %s AND c.enabled"
        f" AND c.next_run_date = %s RETURNING {COLUMNS}",
        (next_run_date, next_run_date, org_id, cron_id, seen),
    )
    return await cur.fetchone()


async def due_crons(conn: AsyncConnection, limit: int) -> list[dict[str, Any]]:
    """Enabled crons of every org whose next date has come, oldest first: rows of
    (org_id, cron_id, owner_id, next_run_date)."""
    cur = await conn.execute("SELECT * FROM due_crons(%s)", (limit,))
    return await cur.fetchall()
