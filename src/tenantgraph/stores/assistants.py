"""Assistants and their versions: their SQL, on the caller's connection."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from tenantgraph.errors import NotFound
from tenantgraph.scope import Principal
from tenantgraph.stores._query import order_by, selected

__all__ = [
    "FIELDS",
    "add_version",
    "count",
    "default_assistant_id",
    "delete",
    "ensure_default",
    "ensure_defaults",
    "get",
    "get_for_update",
    "insert",
    "list_versions",
    "search",
    "set_latest",
    "write_latest",
]

# LangGraph's namespace for the system assistant of a graph: the same id as its server.
_SYSTEM_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
FIELDS = (
    "assistant_id",
    "graph_id",
    "name",
    "description",
    "config",
    "context",
    "metadata",
    "version",
    "created_at",
    "updated_at",
)
# The fields a version holds and a caller may set, in the order of the statements below.
VERSIONED = ("graph_id", "name", "description", "config", "context", "metadata")
_JSON = frozenset({"config", "context", "metadata"})
_COLUMNS = sql.SQL(", ").join(map(sql.Identifier, FIELDS))
_SORTABLE = ("assistant_id", "graph_id", "name", "created_at", "updated_at")

_INSERT = sql.SQL(
    """INSERT INTO assistants (org_id, assistant_id, graph_id, name, description,
                               config, context, metadata)
       VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
       ON CONFLICT (org_id, assistant_id) DO NOTHING RETURNING {}"""
).format(_COLUMNS)
_INSERT_FIRST_VERSION = """INSERT INTO assistant_versions (org_id, assistant_id, version,
                               graph_id, name, description, config, context, metadata)
                           VALUES (%s, %s, 1, %s, %s, %s, %s, %s, %s)"""
# The system assistant of each graph (named after it, created by "system"), with its version 1.
_INSERT_DEFAULTS = """WITH added AS (
        INSERT INTO assistants (org_id, assistant_id, graph_id, name, config, context, metadata)
        SELECT %(org)s, g.assistant_id, g.graph_id, g.graph_id, '{}', '{}',
               '{"created_by": "system"}'
        FROM unnest(%(ids)s::uuid[], %(graphs)s::text[]) AS g(assistant_id, graph_id)
        ON CONFLICT (org_id, assistant_id) DO NOTHING
        RETURNING org_id, assistant_id, graph_id, name, description, config, context, metadata)
    INSERT INTO assistant_versions (org_id, assistant_id, version, graph_id, name, description,
                                    config, context, metadata)
    SELECT org_id, assistant_id, 1, graph_id, name, description, config, context, metadata
    FROM added"""
_GET = sql.SQL("SELECT {} FROM assistants WHERE org_id = %s AND assistant_id = %s").format(_COLUMNS)
_GET_FOR_UPDATE = "SELECT * FROM assistants WHERE org_id = %s AND assistant_id = %s FOR UPDATE"
_ADD_VERSION = """INSERT INTO assistant_versions (org_id, assistant_id, version, graph_id, name,
                                                  description, config, context, metadata)
                  SELECT %s, %s, max(version) + 1, %s, %s, %s, %s, %s, %s
                  FROM assistant_versions WHERE org_id = %s AND assistant_id = %s
                  RETURNING version"""
_WRITE_LATEST = sql.SQL(
    """UPDATE assistants SET graph_id = %s, name = %s, description = %s,
              config = %s, context = %s, metadata = %s, version = %s, updated_at = now()
       WHERE org_id = %s AND assistant_id = %s RETURNING {}"""
).format(_COLUMNS)
_DELETE = "DELETE FROM assistants WHERE org_id = %s AND assistant_id = %s RETURNING 1"
_LIST_VERSIONS = sql.SQL(
    """SELECT assistant_id, version, graph_id, name, description, config, context, metadata,
              created_at
       FROM assistant_versions WHERE {} ORDER BY version DESC LIMIT %s OFFSET %s"""
)
_SET_LATEST = sql.SQL(
    """UPDATE assistants a SET graph_id = v.graph_id, name = v.name,
              description = v.description, config = v.config, context = v.context,
              metadata = v.metadata, version = v.version, updated_at = now()
       FROM assistant_versions v
       WHERE a.org_id = %s AND a.assistant_id = %s
         AND v.org_id = a.org_id AND v.assistant_id = a.assistant_id AND v.version = %s
       RETURNING {}"""
).format(sql.SQL(", ").join(sql.Identifier("a", f) for f in FIELDS))


def default_assistant_id(graph_id: str) -> uuid.UUID:
    return uuid.uuid5(_SYSTEM_NAMESPACE, graph_id)


def _versioned(fields: dict[str, Any]) -> tuple[Any, ...]:
    """The VERSIONED fields as statement parameters, JSON columns wrapped."""
    return tuple(Jsonb(fields[f]) if f in _JSON else fields[f] for f in VERSIONED)


async def insert(
    conn: AsyncConnection, principal: Principal, assistant_id: uuid.UUID, fields: dict[str, Any]
) -> dict[str, Any] | None:
    """Insert an assistant (the VERSIONED `fields`) and its version 1; None if the id is taken."""
    values = (principal.org_id, assistant_id, *_versioned(fields))
    cur = await conn.execute(_INSERT, values)
    row = await cur.fetchone()
    if row is not None:
        await conn.execute(_INSERT_FIRST_VERSION, values)
    return row


async def ensure_defaults(
    conn: AsyncConnection, principal: Principal, graph_ids: Sequence[str]
) -> None:
    """Create the org's system assistant of each of `graph_ids` that it lacks (one
    statement; a concurrent creation of the same one makes its insert do nothing)."""
    ids = [default_assistant_id(g) for g in graph_ids]
    await conn.execute(
        _INSERT_DEFAULTS, {"org": principal.org_id, "ids": ids, "graphs": list(graph_ids)}
    )


async def ensure_default(
    conn: AsyncConnection, principal: Principal, graph_id: str
) -> dict[str, Any]:
    """The org's default assistant for `graph_id`, created on first use by any member.

    Read first: after its first use the assistant exists, and one read beats an insert
    that conflicts followed by the same read. A concurrent first use makes the insert do
    nothing; the read after it then finds the other transaction's row.
    """
    assistant_id = default_assistant_id(graph_id)
    row = await get(conn, principal, assistant_id)
    if row is None:
        await ensure_defaults(conn, principal, [graph_id])
        row = await get(conn, principal, assistant_id)
    if row is None:  # deleted again since the insert conflicted
        raise NotFound(f"assistant {assistant_id} not found")
    return row


async def get(
    conn: AsyncConnection, principal: Principal, assistant_id: uuid.UUID
) -> dict[str, Any] | None:
    cur = await conn.execute(_GET, (principal.org_id, assistant_id))
    return await cur.fetchone()


async def get_for_update(
    conn: AsyncConnection, principal: Principal, assistant_id: uuid.UUID
) -> dict[str, Any] | None:
    """The assistant, locked until the transaction ends (versions are numbered under it)."""
    cur = await conn.execute(_GET_FOR_UPDATE, (principal.org_id, assistant_id))
    return await cur.fetchone()


async def add_version(
    conn: AsyncConnection, principal: Principal, assistant_id: uuid.UUID, fields: dict[str, Any]
) -> int:
    """Record the VERSIONED `fields` as the next version; call under `get_for_update`."""
    cur = await conn.execute(
        _ADD_VERSION,
        (principal.org_id, assistant_id, *_versioned(fields), principal.org_id, assistant_id),
    )
    return (await cur.fetchone())["version"]


async def write_latest(
    conn: AsyncConnection,
    principal: Principal,
    assistant_id: uuid.UUID,
    version: int,
    fields: dict[str, Any],
) -> dict[str, Any]:
    """Make `fields` (those of `version`) the assistant's current ones."""
    cur = await conn.execute(
        _WRITE_LATEST, (*_versioned(fields), version, principal.org_id, assistant_id)
    )
    return await cur.fetchone()


async def delete(conn: AsyncConnection, principal: Principal, assistant_id: uuid.UUID) -> bool:
    cur = await conn.execute(_DELETE, (principal.org_id, assistant_id))
    return bool(await cur.fetchall())


def _filters(
    principal: Principal, metadata: dict | None, graph_id: str | None, name: str | None
) -> tuple[sql.Composed, list[Any]]:
    clauses = [sql.SQL("org_id = %s")]
    params: list[Any] = [principal.org_id]
    if metadata:
        clauses.append(sql.SQL("metadata @> %s"))
        params.append(Jsonb(metadata))
    if graph_id:
        clauses.append(sql.SQL("graph_id = %s"))
        params.append(graph_id)
    if name:
        clauses.append(sql.SQL("name ILIKE %s"))
        params.append(
            "%" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
    return sql.SQL(" AND ").join(clauses), params


async def search(
    conn: AsyncConnection,
    principal: Principal,
    *,
    metadata: dict | None = None,
    graph_id: str | None = None,
    name: str | None = None,
    limit: int = 10,
    offset: int = 0,
    sort_by: str | None = None,
    sort_order: str | None = None,
    select: list[str] | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """A page of assistants and whether another page follows."""
    where, params = _filters(principal, metadata, graph_id, name)
    query = sql.SQL("SELECT {} FROM assistants WHERE {} {} LIMIT %s OFFSET %s").format(
        _COLUMNS, where, order_by(sort_by, sort_order, _SORTABLE, "created_at")
    )
    cur = await conn.execute(query, (*params, limit + 1, offset))
    rows = await cur.fetchall()
    return selected(rows[:limit], select, FIELDS), len(rows) > limit


async def count(
    conn: AsyncConnection,
    principal: Principal,
    *,
    metadata: dict | None = None,
    graph_id: str | None = None,
    name: str | None = None,
) -> int:
    where, params = _filters(principal, metadata, graph_id, name)
    cur = await conn.execute(
        sql.SQL("SELECT count(*) AS n FROM assistants WHERE {}").format(where), params
    )
    return (await cur.fetchone())["n"]


async def list_versions(
    conn: AsyncConnection,
    principal: Principal,
    assistant_id: uuid.UUID,
    *,
    metadata: dict | None = None,
    limit: int = 10,
    offset: int = 0,
) -> list[dict[str, Any]]:
    clauses = sql.SQL("org_id = %s AND assistant_id = %s")
    params: list[Any] = [principal.org_id, assistant_id]
    if metadata:
        clauses = sql.SQL("{} AND metadata @> %s").format(clauses)
        params.append(Jsonb(metadata))
    cur = await conn.execute(_LIST_VERSIONS.format(clauses), (*params, limit, offset))
    return await cur.fetchall()


async def set_latest(
    conn: AsyncConnection, principal: Principal, assistant_id: uuid.UUID, version: int
) -> dict[str, Any] | None:
    """Make `version` the assistant's current one; None if there is no such version."""
    cur = await conn.execute(_SET_LATEST, (principal.org_id, assistant_id, version))
    return await cur.fetchone()
