"""Organisations, memberships and API keys: their SQL, on the caller's connection."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from tenantgraph.scope import Principal, Role

__all__ = [
    "delete_member",
    "delete_org",
    "ensure_org",
    "get_api_key",
    "get_member_role",
    "get_org",
    "insert_api_key",
    "insert_org",
    "list_api_keys",
    "list_members",
    "list_orgs",
    "lock_owners",
    "resolve_api_key",
    "revoke_api_key",
    "set_member",
]

_INSERT_ORG = """INSERT INTO orgs (org_id, name, slug, metadata) VALUES (%s, %s, %s, %s)
                 ON CONFLICT (org_id) DO NOTHING RETURNING *"""
_ENSURE_ORG = """INSERT INTO orgs (org_id, name, slug) VALUES (%s, %s, %s)
                 ON CONFLICT (org_id) DO NOTHING"""
_GET_ORG = "SELECT * FROM orgs WHERE org_id = %s"
_LIST_ORGS = "SELECT * FROM list_orgs(%s, %s)"
_DELETE_ORG = "DELETE FROM orgs WHERE org_id = %s RETURNING 1"

_SET_MEMBER = """INSERT INTO memberships (org_id, user_id, role) VALUES (%s, %s, %s)
                 ON CONFLICT (org_id, user_id) DO UPDATE SET role = EXCLUDED.role
                 RETURNING user_id, role, created_at"""
_LIST_MEMBERS = (
    "SELECT user_id, role, created_at FROM memberships WHERE org_id = %s ORDER BY user_id"
)
_MEMBER_ROLE = "SELECT role FROM memberships WHERE org_id = %s AND user_id = %s"
_LOCK_OWNERS = """SELECT user_id FROM memberships WHERE org_id = %s AND role = 'owner'
                  ORDER BY user_id FOR UPDATE"""
_DELETE_MEMBER = "DELETE FROM memberships WHERE org_id = %s AND user_id = %s RETURNING 1"

_KEY_COLUMNS = "key_id, user_id, role, name, scopes, assistants, created_at, revoked_at"
_INSERT_KEY = f"""INSERT INTO api_keys
                  (org_id, key_id, user_id, role, name, key_hash, scopes, assistants)
                  VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_KEY_COLUMNS}"""
_LIST_KEYS = f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE org_id = %s ORDER BY created_at"
_GET_KEY = f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE org_id = %s AND key_id = %s"
_REVOKE_KEY = """UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
                 WHERE org_id = %s AND key_id = %s RETURNING revoked_at"""
_RESOLVE_KEY = "SELECT * FROM resolve_api_key(%s)"


async def insert_org(
    conn: AsyncConnection, principal: Principal, name: str, metadata: dict[str, Any]
) -> dict[str, Any] | None:
    """The new row of the principal's org, or None if its id is taken."""
    org_id = principal.org_id
    cur = await conn.execute(_INSERT_ORG, (org_id, name, org_id.lower(), Jsonb(metadata)))
    return await cur.fetchone()


async def ensure_org(conn: AsyncConnection, principal: Principal) -> None:
    """Create the principal's org, named after its id, unless it exists."""
    org_id = principal.org_id
    await conn.execute(_ENSURE_ORG, (org_id, org_id, org_id.lower()))


async def get_org(conn: AsyncConnection, principal: Principal) -> dict[str, Any] | None:
    cur = await conn.execute(_GET_ORG, (principal.org_id,))
    return await cur.fetchone()


async def list_orgs(conn: AsyncConnection, *, limit: int, offset: int) -> list[dict[str, Any]]:
    """Every org, through the audited definer function (`conn` carries no tenant)."""
    cur = await conn.execute(_LIST_ORGS, (limit, offset))
    return await cur.fetchall()


async def delete_org(conn: AsyncConnection, principal: Principal) -> bool:
    """Delete the principal's org and, by cascade, everything it owns in Postgres."""
    cur = await conn.execute(_DELETE_ORG, (principal.org_id,))
    return bool(await cur.fetchall())


# --- memberships -----------------------------------------------------------------------


async def set_member(
    conn: AsyncConnection, principal: Principal, user_id: str, role: Role
) -> dict[str, Any]:
    cur = await conn.execute(_SET_MEMBER, (principal.org_id, user_id, Role(role).value))
    return await cur.fetchone()


async def list_members(conn: AsyncConnection, principal: Principal) -> list[dict[str, Any]]:
    cur = await conn.execute(_LIST_MEMBERS, (principal.org_id,))
    return await cur.fetchall()


async def get_member_role(conn: AsyncConnection, principal: Principal) -> Role | None:
    """The role the principal's user holds in the principal's org, if a member."""
    cur = await conn.execute(_MEMBER_ROLE, (principal.org_id, principal.user_id))
    row = await cur.fetchone()
    return Role(row["role"]) if row else None


async def lock_owners(conn: AsyncConnection, principal: Principal) -> list[str]:
    """The org's owners, their rows locked until the transaction ends; a concurrent caller
    waits, then sees the owners that remain."""
    cur = await conn.execute(_LOCK_OWNERS, (principal.org_id,))
    return [row["user_id"] for row in await cur.fetchall()]


async def delete_member(conn: AsyncConnection, principal: Principal, user_id: str) -> bool:
    cur = await conn.execute(_DELETE_MEMBER, (principal.org_id, user_id))
    return bool(await cur.fetchall())


# --- API keys --------------------------------------------------------------------------


async def insert_api_key(
    conn: AsyncConnection,
    principal: Principal,
    *,
    user_id: str,
    role: Role,
    name: str,
    key_hash: bytes,
    scopes: list[str] | None = None,
    assistants: list[str] | None = None,
) -> dict[str, Any]:
    """The new key's record; only the hash of its secret is stored."""
    cur = await conn.execute(
        _INSERT_KEY,
        (
            principal.org_id,
            uuid.uuid4(),
            user_id,
            Role(role).value,
            name,
            key_hash,
            scopes,
            assistants,
        ),
    )
    return await cur.fetchone()


async def list_api_keys(conn: AsyncConnection, principal: Principal) -> list[dict[str, Any]]:
    cur = await conn.execute(_LIST_KEYS, (principal.org_id,))
    return await cur.fetchall()


async def get_api_key(
    conn: AsyncConnection, principal: Principal, key_id: uuid.UUID
) -> dict[str, Any] | None:
    cur = await conn.execute(_GET_KEY, (principal.org_id, key_id))
    return await cur.fetchone()


async def revoke_api_key(
    conn: AsyncConnection, principal: Principal, key_id: uuid.UUID
) -> datetime | None:
    """When the key was revoked (now, or earlier), or None if the org has no such key."""
    cur = await conn.execute(_REVOKE_KEY, (principal.org_id, key_id))
    row = await cur.fetchone()
    return row["revoked_at"] if row else None


async def resolve_api_key(conn: AsyncConnection, key_hash: bytes) -> dict[str, Any] | None:
    """The live key with this hash (org, user, role, key id), through the audited definer
    function (`conn` carries no tenant)."""
    cur = await conn.execute(_RESOLVE_KEY, (key_hash,))
    return await cur.fetchone()
