"""Organisations, memberships and API keys."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from tenantgraph.db.database import Database
from tenantgraph.errors import Conflict, NotFound
from tenantgraph.scope import Principal, PrincipalKind, Role, validate_identifier

__all__ = [
    "API_KEY_PREFIX",
    "create_api_key",
    "create_org",
    "delete_member",
    "delete_org",
    "ensure_org",
    "get_member_role",
    "get_org",
    "hash_api_key",
    "list_api_keys",
    "list_members",
    "list_orgs",
    "resolve_api_key",
    "revoke_api_key",
    "set_member",
]

API_KEY_PREFIX = "tg_"


def hash_api_key(secret: str) -> bytes:
    """SHA-256: keys are 256-bit random, so a slow password hash would add nothing."""
    return hashlib.sha256(secret.encode()).digest()


async def create_org(
    db: Database, org_id: str, name: str, *, owner: str | None = None, metadata: dict | None = None
) -> dict[str, Any]:
    """Create an org (and its first owner when given); Conflict if the id is taken."""
    validate_identifier(org_id, "org_id")
    principal = Principal(org_id, owner or "system", Role.OWNER)
    async with db.tenant(principal) as conn:
        cur = await conn.execute(
            """INSERT INTO orgs (org_id, name, slug, metadata) VALUES (%s, %s, %s, %s)
               ON CONFLICT (org_id) DO NOTHING RETURNING *""",
            (org_id, name, org_id.lower(), Jsonb(metadata or {})),
        )
        row = await cur.fetchone()
        if row is None:
            raise Conflict(f"organisation {org_id!r} already exists")
        if owner:
            await conn.execute(
                "INSERT INTO memberships (org_id, user_id, role) VALUES (%s, %s, 'owner')",
                (org_id, owner),
            )
    return row


async def ensure_org(db: Database, principal: Principal) -> None:
    """Create the principal's org if it does not exist (claims mode: first use creates it)."""
    async with db.tenant(principal) as conn:
        await conn.execute(
            """INSERT INTO orgs (org_id, name, slug) VALUES (%s, %s, %s)
               ON CONFLICT (org_id) DO NOTHING""",
            (principal.org_id, principal.org_id, principal.org_id.lower()),
        )


async def get_org(db: Database, principal: Principal) -> dict[str, Any]:
    async with db.tenant(principal) as conn:
        cur = await conn.execute("SELECT * FROM orgs WHERE org_id = %s", (principal.org_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound("organisation not found")
    return row


async def list_orgs(db: Database, *, limit: int, offset: int) -> list[dict[str, Any]]:
    """Every org: a platform-admin path, through the audited definer function."""
    async with db.system() as conn:
        cur = await conn.execute("SELECT * FROM list_orgs(%s, %s)", (limit, offset))
        return await cur.fetchall()


async def delete_org(db: Database, org_id: str) -> None:
    """Delete an org and, by cascade, everything it owns in Postgres."""
    async with db.tenant(Principal(org_id, "system", Role.OWNER)) as conn:
        cur = await conn.execute("DELETE FROM orgs WHERE org_id = %s RETURNING 1", (org_id,))
        if not await cur.fetchall():
            raise NotFound("organisation not found")


# --- memberships -----------------------------------------------------------------------


async def set_member(db: Database, principal: Principal, user_id: str, role: Role) -> dict:
    validate_identifier(user_id, "user_id")
    async with db.tenant(principal) as conn:
        cur = await conn.execute(
            """INSERT INTO memberships (org_id, user_id, role) VALUES (%s, %s, %s)
               ON CONFLICT (org_id, user_id) DO UPDATE SET role = EXCLUDED.role
               RETURNING user_id, role, created_at""",
            (principal.org_id, user_id, Role(role).value),
        )
        return await cur.fetchone()


async def list_members(db: Database, principal: Principal) -> list[dict[str, Any]]:
    async with db.tenant(principal) as conn:
        cur = await conn.execute(
            "SELECT user_id, role, created_at FROM memberships WHERE org_id = %s ORDER BY user_id",
            (principal.org_id,),
        )
        return await cur.fetchall()


async def get_member_role(db: Database, principal: Principal) -> Role | None:
    """The role the principal's user holds in the principal's org, if a member."""
    async with db.tenant(principal) as conn:
        cur = await conn.execute(
            "SELECT role FROM memberships WHERE org_id = %s AND user_id = %s",
            (principal.org_id, principal.user_id),
        )
        row = await cur.fetchone()
    return Role(row["role"]) if row else None


async def delete_member(db: Database, principal: Principal, user_id: str) -> None:
    async with db.tenant(principal) as conn:
        cur = await conn.execute(
            "DELETE FROM memberships WHERE org_id = %s AND user_id = %s RETURNING 1",
            (principal.org_id, user_id),
        )
        if not await cur.fetchall():
            raise NotFound("member not found")


# --- API keys --------------------------------------------------------------------------


async def create_api_key(
    db: Database, principal: Principal, *, user_id: str, role: Role, name: str = ""
) -> tuple[str, dict[str, Any]]:
    """Return the secret (shown once, never stored) and the key's record."""
    validate_identifier(user_id, "user_id")
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    async with db.tenant(principal) as conn:
        cur = await conn.execute(
            """INSERT INTO api_keys (org_id, key_id, user_id, role, name, key_hash)
               VALUES (%s, %s, %s, %s, %s, %s)
               RETURNING key_id, user_id, role, name, created_at, revoked_at""",
            (principal.org_id, uuid.uuid4(), user_id, Role(role).value, name, hash_api_key(secret)),
        )
        return secret, await cur.fetchone()


async def list_api_keys(db: Database, principal: Principal) -> list[dict[str, Any]]:
    async with db.tenant(principal) as conn:
        cur = await conn.execute(
            """SELECT key_id, user_id, role, name, created_at, revoked_at FROM api_keys
               WHERE org_id = %s ORDER BY created_at""",
            (principal.org_id,),
        )
        return await cur.fetchall()


async def revoke_api_key(db: Database, principal: Principal, key_id: uuid.UUID) -> datetime:
    async with db.tenant(principal) as conn:
        cur = await conn.execute(
            """UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
               WHERE org_id = %s AND key_id = %s RETURNING revoked_at""",
            (principal.org_id, key_id),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound("API key not found")
    return row["revoked_at"]


async def resolve_api_key(db: Database, secret: str) -> tuple[Principal, uuid.UUID] | None:
    """The principal an API key stands for and the key's id, or None if unknown or revoked."""
    if not secret.startswith(API_KEY_PREFIX):
        return None
    async with db.system() as conn:
        cur = await conn.execute("SELECT * FROM resolve_api_key(%s)", (hash_api_key(secret),))
        row = await cur.fetchone()
    if row is None:
        return None
    principal = Principal(row["org_id"], row["user_id"], Role(row["role"]), PrincipalKind.API_KEY)
    return principal, row["key_id"]
