"""Threads: each owned by one user of one org; the org's admins may see every thread.

The owner is stamped from the principal, also into `metadata.owner` (the LangGraph auth
convention), and a client can neither set nor change it.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from tenantgraph.scope import Principal
from tenantgraph.stores._query import caller_params, order_by, owner_or_admin, selected

__all__ = [
    "FIELDS",
    "copy",
    "count",
    "delete",
    "delete_many",
    "expired",
    "get",
    "insert",
    "search",
    "update",
    "visible_ids",
]

FIELDS = (
    "thread_id",
    "created_at",
    "updated_at",
    "state_updated_at",
    "metadata",
    "status",
    "config",
    "values",
    "interrupts",
    "error",
)
_COLUMNS = sql.SQL(
    """thread_id, created_at, updated_at, updated_at AS state_updated_at, metadata, status,
       config, "values", interrupts, error"""
)
_SORTABLE = ("thread_id", "status", "created_at", "updated_at", "state_updated_at")
_VISIBLE = sql.SQL("threads.org_id = %(org)s AND " + owner_or_admin("threads"))

_INSERT = sql.SQL(
    """INSERT INTO threads (org_id, thread_id, owner_id, metadata)
       VALUES (%s, %s, %s, %s) ON CONFLICT (org_id, thread_id) DO NOTHING
       RETURNING {}"""
).format(_COLUMNS)
_GET = sql.SQL("SELECT {} FROM threads WHERE {} AND thread_id = %(thread)s").format(
    _COLUMNS, _VISIBLE
)
_UPDATE = sql.SQL(
    """UPDATE threads SET metadata = metadata || %(metadata)s || jsonb_build_object(
              'owner', owner_id), updated_at = now()
       WHERE {} AND thread_id = %(thread)s RETURNING {}"""
).format(_VISIBLE, _COLUMNS)
_DELETE = sql.SQL("DELETE FROM threads WHERE {} AND thread_id = %(thread)s RETURNING 1").format(
    _VISIBLE
)
_DELETE_MANY = sql.SQL(
    "DELETE FROM threads WHERE {} AND thread_id = ANY(%(threads)s) RETURNING thread_id"
).format(_VISIBLE)
_VISIBLE_IDS = sql.SQL(
    "SELECT thread_id FROM threads WHERE {} AND thread_id = ANY(%(threads)s) FOR UPDATE"
).format(_VISIBLE)
_COPY = sql.SQL(
    """INSERT INTO threads (org_id, thread_id, owner_id, status, metadata, config,
                            "values", interrupts, error)
       SELECT org_id, %(copy)s, %(user)s, status,
              metadata || jsonb_build_object('owner', %(user)s::text),
              config, "values", interrupts, error
       FROM threads WHERE {} AND thread_id = %(thread)s RETURNING {}"""
).format(_VISIBLE, _COLUMNS)


def _stamped(metadata: dict | None, owner: str) -> Jsonb:
    return Jsonb({**(metadata or {}), "owner": owner})


async def insert(
    conn: AsyncConnection,
    principal: Principal,
    *,
    thread_id: uuid.UUID,
    metadata: dict | None = None,
) -> dict[str, Any] | None:
    """A new thread of the principal's; None if the org has a thread with this id."""
    cur = await conn.execute(
        _INSERT,
        (principal.org_id, thread_id, principal.user_id, _stamped(metadata, principal.user_id)),
    )
    return await cur.fetchone()


async def get(
    conn: AsyncConnection, principal: Principal, thread_id: uuid.UUID
) -> dict[str, Any] | None:
    """The thread if the principal may see it."""
    cur = await conn.execute(_GET, {**caller_params(principal), "thread": thread_id})
    return await cur.fetchone()


async def update(
    conn: AsyncConnection, principal: Principal, thread_id: uuid.UUID, *, metadata: dict | None
) -> dict[str, Any] | None:
    """Merge `metadata` into the thread's; `owner` stays the thread owner's."""
    cur = await conn.execute(
        _UPDATE,
        {**caller_params(principal), "thread": thread_id, "metadata": Jsonb(metadata or {})},
    )
    return await cur.fetchone()


async def delete(conn: AsyncConnection, principal: Principal, thread_id: uuid.UUID) -> bool:
    """Delete a thread; its runs, crons and checkpoints go with it by cascade."""
    cur = await conn.execute(_DELETE, {**caller_params(principal), "thread": thread_id})
    return bool(await cur.fetchall())


async def delete_many(
    conn: AsyncConnection, principal: Principal, thread_ids: list[uuid.UUID]
) -> int:
    """Delete those of the threads the principal may see; returns how many."""
    params = {**caller_params(principal), "threads": thread_ids}
    cur = await conn.execute(_DELETE_MANY, params)
    return len(await cur.fetchall())


async def visible_ids(
    conn: AsyncConnection, principal: Principal, thread_ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    """Those of the threads the principal may see, locked for this transaction."""
    params = {**caller_params(principal), "threads": thread_ids}
    cur = await conn.execute(_VISIBLE_IDS, params)
    return [row["thread_id"] for row in await cur.fetchall()]


async def expired(
    conn: AsyncConnection, ttl_minutes: float, *, keep_latest: bool, batch: int
) -> list[dict[str, Any]]:
    """Threads of every org past their TTL (the audited `expired_threads`, on a system
    connection): `org_id`, `thread_id`, `owner_id`."""
    cur = await conn.execute(
        "SELECT * FROM expired_threads(%s, %s, %s)", (ttl_minutes, keep_latest, batch)
    )
    return await cur.fetchall()


def _filters(
    principal: Principal,
    metadata: dict | None,
    values: dict | None,
    status: str | None,
    ids: list[uuid.UUID] | None,
) -> tuple[sql.Composed, dict[str, Any]]:
    clauses = [_VISIBLE]
    params = caller_params(principal)
    if metadata:
        clauses.append(sql.SQL("metadata @> %(metadata)s"))
        params["metadata"] = Jsonb(metadata)
    if values:
        clauses.append(sql.SQL('"values" @> %(values)s'))
        params["values"] = Jsonb(values)
    if status:
        clauses.append(sql.SQL("status = %(status)s"))
        params["status"] = status
    if ids:
        clauses.append(sql.SQL("thread_id = ANY(%(ids)s)"))
        params["ids"] = ids
    return sql.SQL(" AND ").join(clauses), params


async def search(
    conn: AsyncConnection,
    principal: Principal,
    *,
    metadata: dict | None = None,
    values: dict | None = None,
    status: str | None = None,
    ids: list[uuid.UUID] | None = None,
    limit: int = 10,
    offset: int = 0,
    sort_by: str | None = None,
    sort_order: str | None = None,
    select: list[str] | None = None,
) -> list[dict[str, Any]]:
    where, params = _filters(principal, metadata, values, status, ids)
    sort = "updated_at" if sort_by == "state_updated_at" else sort_by
    query = sql.SQL("SELECT {} FROM threads WHERE {} {} LIMIT %(limit)s OFFSET %(offset)s").format(
        _COLUMNS, where, order_by(sort, sort_order, _SORTABLE, "updated_at")
    )
    cur = await conn.execute(query, {**params, "limit": limit, "offset": offset})
    return selected(await cur.fetchall(), select, FIELDS)


async def count(
    conn: AsyncConnection,
    principal: Principal,
    *,
    metadata: dict | None = None,
    values: dict | None = None,
    status: str | None = None,
) -> int:
    where, params = _filters(principal, metadata, values, status, None)
    cur = await conn.execute(
        sql.SQL("SELECT count(*) AS n FROM threads WHERE {}").format(where), params
    )
    return (await cur.fetchone())["n"]


async def copy(
    conn: AsyncConnection, principal: Principal, thread_id: uuid.UUID
) -> dict[str, Any] | None:
    """A new thread owned by the caller with the source's metadata, values and status;
    None if the source is not the caller's to see. Checkpoints are copied apart."""
    cur = await conn.execute(
        _COPY, {**caller_params(principal), "thread": thread_id, "copy": uuid.uuid4()}
    )
    return await cur.fetchone()
