"""Assistants and their versions. Every member reads and runs them; admins write."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from tenantgraph.db.database import Database
from tenantgraph.errors import Conflict, Forbidden, NotFound
from tenantgraph.scope import Principal
from tenantgraph.stores._query import order_by, selected

__all__ = [
    "FIELDS",
    "count",
    "create",
    "default_assistant_id",
    "delete",
    "ensure_default",
    "get",
    "list_versions",
    "search",
    "set_latest",
    "update",
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
_COLUMNS = sql.SQL(", ").join(map(sql.Identifier, FIELDS))
_SORTABLE = ("assistant_id", "graph_id", "name", "created_at", "updated_at")


def default_assistant_id(graph_id: str) -> uuid.UUID:
    return uuid.uuid5(_SYSTEM_NAMESPACE, graph_id)


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("changing assistants needs the admin or owner role")


async def create(
    db: Database,
    principal: Principal,
    *,
    graph_id: str,
    assistant_id: uuid.UUID | None = None,
    config: dict | None = None,
    context: dict | None = None,
    metadata: dict | None = None,
    name: str | None = None,
    description: str | None = None,
    if_exists: Literal["raise", "do_nothing"] = "raise",
) -> dict[str, Any]:
    _require_admin(principal)
    return await _insert(
        db,
        principal,
        assistant_id=assistant_id or uuid.uuid4(),
        graph_id=graph_id,
        config=config or {},
        context=context or {},
        metadata=metadata or {},
        name=name or "Untitled",
        description=description,
        if_exists=if_exists,
    )


async def ensure_default(
    conn: AsyncConnection, principal: Principal, graph_id: str
) -> dict[str, Any]:
    """The org's default assistant for `graph_id`, created on first use by any member, in
    the caller's transaction (run creation inserts it with the run).

    Read first: after its first use the assistant exists, and one read beats an insert
    that conflicts followed by the same read.
    """
    if isinstance(conn, Database):
        # Bridge for api/deps.py, which still passes the Database (issue 12 merge).
        async with conn.tenant(principal) as tenant_conn:
            return await ensure_default(tenant_conn, principal, graph_id)
    assistant_id = default_assistant_id(graph_id)
    row = await _select(conn, principal, assistant_id)
    if row is None:
        row = await _insert_row(
            conn,
            principal,
            assistant_id=assistant_id,
            graph_id=graph_id,
            config={},
            context={},
            metadata={"created_by": "system"},
            name=graph_id,
            description=None,
        )
    if row is None:  # created meanwhile by a concurrent first use
        row = await _select(conn, principal, assistant_id)
    assert row is not None
    return row


async def _insert(
    db: Database, principal: Principal, *, assistant_id: uuid.UUID, if_exists: str, **fields: Any
) -> dict[str, Any]:
    async with db.tenant(principal) as conn:
        row = await _insert_row(conn, principal, assistant_id=assistant_id, **fields)
    if row is not None:
        return row
    if if_exists == "do_nothing":
        return await get(db, principal, assistant_id)
    raise Conflict(f"assistant {assistant_id} already exists")


async def _insert_row(
    conn: AsyncConnection, principal: Principal, *, assistant_id: uuid.UUID, **fields: Any
) -> dict[str, Any] | None:
    """Insert an assistant with its version 1; None if the id is taken."""
    values = (
        principal.org_id,
        assistant_id,
        fields["graph_id"],
        fields["name"],
        fields["description"],
        Jsonb(fields["config"]),
        Jsonb(fields["context"]),
        Jsonb(fields["metadata"]),
    )
    cur = await conn.execute(
        sql.SQL(
            """INSERT INTO assistants (org_id, assistant_id, graph_id, name, description,
                                       config, context, metadata)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (org_id, assistant_id) DO NOTHING RETURNING {}"""
        ).format(_COLUMNS),
        values,
    )
    row = await cur.fetchone()
    if row is not None:
        await conn.execute(
            """INSERT INTO assistant_versions (org_id, assistant_id, version, graph_id, name,
                                              description, config, context, metadata)
               VALUES (%s, %s, 1, %s, %s, %s, %s, %s, %s)""",
            values,
        )
    return row


async def _select(
    conn: AsyncConnection, principal: Principal, assistant_id: uuid.UUID
) -> dict[str, Any] | None:
    cur = await conn.execute(
        sql.SQL("SELECT {} FROM assistants WHERE org_id = %s AND assistant_id = %s").format(
            _COLUMNS
        ),
        (principal.org_id, assistant_id),
    )
    return await cur.fetchone()


async def get(db: Database, principal: Principal, assistant_id: uuid.UUID) -> dict[str, Any]:
    async with db.tenant(principal) as conn:
        row = await _select(conn, principal, assistant_id)
    if row is None:
        raise NotFound(f"assistant {assistant_id} not found")
    return row


async def update(
    db: Database,
    principal: Principal,
    assistant_id: uuid.UUID,
    *,
    graph_id: str | None = None,
    config: dict | None = None,
    context: dict | None = None,
    metadata: dict | None = None,
    name: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """A new version from the latest one; metadata is merged, other fields replaced."""
    _require_admin(principal)
    async with db.tenant(principal) as conn:
        cur = await conn.execute(
            """SELECT * FROM assistants WHERE org_id = %s AND assistant_id = %s FOR UPDATE""",
            (principal.org_id, assistant_id),
        )
        current = await cur.fetchone()
        if current is None:
            raise NotFound(f"assistant {assistant_id} not found")
        cur = await conn.execute(
            "SELECT max(version) AS v FROM assistant_versions"
            " WHERE org_id = %s AND assistant_id = %s",
            (principal.org_id, assistant_id),
        )
        version = (await cur.fetchone())["v"] + 1
        new = {
            "graph_id": graph_id or current["graph_id"],
            "config": current["config"] if config is None else config,
            "context": current["context"] if context is None else context,
            "metadata": {**current["metadata"], **(metadata or {})},
            "name": name or current["name"],
            "description": current["description"] if description is None else description,
        }
        params = (
            new["graph_id"],
            new["name"],
            new["description"],
            Jsonb(new["config"]),
            Jsonb(new["context"]),
            Jsonb(new["metadata"]),
        )
        await conn.execute(
            """INSERT INTO assistant_versions (org_id, assistant_id, version, graph_id, name,
                                              description, config, context, metadata)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (principal.org_id, assistant_id, version, *params),
        )
        cur = await conn.execute(
            sql.SQL(
                """UPDATE assistants SET graph_id = %s, name = %s, description = %s,
                          config = %s, context = %s, metadata = %s, version = %s,
                          updated_at = now()
                   WHERE org_id = %s AND assistant_id = %s RETURNING {}"""
            ).format(_COLUMNS),
            (*params, version, principal.org_id, assistant_id),
        )
        return await cur.fetchone()


async def delete(db: Database, principal: Principal, assistant_id: uuid.UUID) -> None:
    _require_admin(principal)
    async with db.tenant(principal) as conn:
        cur = await conn.execute(
            "DELETE FROM assistants WHERE org_id = %s AND assistant_id = %s RETURNING 1",
            (principal.org_id, assistant_id),
        )
        if not await cur.fetchall():
            raise NotFound(f"assistant {assistant_id} not found")


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
    db: Database,
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
    async with db.tenant(principal) as conn:
        cur = await conn.execute(query, (*params, limit + 1, offset))
        rows = await cur.fetchall()
    return selected(rows[:limit], select, FIELDS), len(rows) > limit


async def count(
    db: Database,
    principal: Principal,
    *,
    metadata: dict | None = None,
    graph_id: str | None = None,
    name: str | None = None,
) -> int:
    where, params = _filters(principal, metadata, graph_id, name)
    async with db.tenant(principal) as conn:
        cur = await conn.execute(
            sql.SQL("SELECT count(*) AS n FROM assistants WHERE {}").format(where), params
        )
        return (await cur.fetchone())["n"]


async def list_versions(
    db: Database,
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
    async with db.tenant(principal) as conn:
        cur = await conn.execute(
            sql.SQL(
                """SELECT assistant_id, version, graph_id, name, description, config, context,
                          metadata, created_at
                   FROM assistant_versions WHERE {} ORDER BY version DESC LIMIT %s OFFSET %s"""
            ).format(clauses),
            (*params, limit, offset),
        )
        rows = await cur.fetchall()
    if not rows and offset == 0:
        raise NotFound(f"assistant {assistant_id} not found")
    return rows


async def set_latest(
    db: Database, principal: Principal, assistant_id: uuid.UUID, version: int
) -> dict[str, Any]:
    _require_admin(principal)
    async with db.tenant(principal) as conn:
        cur = await conn.execute(
            sql.SQL(
                """UPDATE assistants a SET graph_id = v.graph_id, name = v.name,
                          description = v.description, config = v.config, context = v.context,
                          metadata = v.metadata, version = v.version, updated_at = now()
                   FROM assistant_versions v
                   WHERE a.org_id = %s AND a.assistant_id = %s
                     AND v.org_id = a.org_id AND v.assistant_id = a.assistant_id
                     AND v.version = %s
                   RETURNING {}"""
            ).format(sql.SQL(", ").join(sql.Identifier("a", f) for f in FIELDS)),
            (principal.org_id, assistant_id, version),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"assistant {assistant_id} version {version} not found")
    return row
