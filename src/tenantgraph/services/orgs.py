"""Organisations, their members and API keys: each use case is one transaction.

The rules of who may grant what live here, for HTTP and the CLI alike: nobody grants more
than they hold; only an owner grants, demotes or removes an owner or revokes an owner's
key; an org's last owner is neither removed nor demoted; a key acts as its creator or, for
owners and admins, as a service account (`svc:<name>`).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from psycopg import AsyncConnection

from tenantgraph.db.database import Database
from tenantgraph.ephemeral.client import VALKEY_DOWN
from tenantgraph.ephemeral.key_generations import bump_generation
from tenantgraph.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from tenantgraph.scope import (
    SCOPES,
    Principal,
    PrincipalKind,
    Role,
    service_account,
    validate_identifier,
    validate_person_id,
)
from tenantgraph.stores import orgs as org_store

__all__ = ["API_KEY_PREFIX", "Orgs", "hash_api_key"]

API_KEY_PREFIX = "tg_"
# The user id an org is created as when it has no owner yet (the transaction's tenant).
_SYSTEM_USER = "system"


def hash_api_key(secret: str) -> bytes:
    """SHA-256: keys are 256-bit random, so a slow password hash would add nothing."""
    return hashlib.sha256(secret.encode()).digest()


class Orgs:
    """The org administration use cases, for the routes, the CLI and authentication."""

    def __init__(self, db: Database, redis: aioredis.Redis) -> None:
        self.db = db
        self.redis = redis  # where servers learn that their cached keys of an org are stale

    async def create_org(
        self, org_id: str, name: str, *, owner: str | None = None, metadata: dict | None = None
    ) -> dict[str, Any]:
        """Create an org (and its first owner when given); Conflict if the id is taken."""
        principal = _founder(org_id, owner)
        async with self.db.tenant(principal) as conn:
            return await _insert_org(conn, principal, name, owner, metadata)

    async def create_org_with_key(
        self, org_id: str, name: str, *, owner: str, key_name: str, metadata: dict | None = None
    ) -> tuple[dict[str, Any], str]:
        """Create an org, its owner and an owner API key in one transaction, so no org is
        left without its credential; returns the org and the key's secret (shown once)."""
        principal = _founder(org_id, owner)
        async with self.db.tenant(principal) as conn:
            org = await _insert_org(conn, principal, name, owner, metadata)
            secret, _ = await _insert_key(conn, principal, owner, Role.OWNER, key_name)
        return org, secret

    async def ensure_org(self, principal: Principal) -> None:
        """Create the principal's org if it does not exist (claims mode: first use creates it)."""
        async with self.db.tenant(principal) as conn:
            await org_store.ensure_org(conn, principal)

    async def get_org(self, principal: Principal) -> dict[str, Any]:
        async with self.db.tenant(principal) as conn:
            row = await org_store.get_org(conn, principal)
        if row is None:
            raise NotFound("organisation not found")
        return row

    async def list_orgs(self, *, limit: int, offset: int) -> list[dict[str, Any]]:
        """Every org: a platform-admin path, through the audited definer function."""
        async with self.db.system() as conn:
            return await org_store.list_orgs(conn, limit=limit, offset=offset)

    async def delete_org(self, org_id: str) -> None:
        """Delete an org and, by cascade, everything it owns in Postgres."""
        principal = Principal(org_id, _SYSTEM_USER, Role.OWNER)
        async with self.db.tenant(principal) as conn:
            deleted = await org_store.delete_org(conn, principal)
        if not deleted:
            raise NotFound("organisation not found")
        await self._forget_keys(org_id)

    # --- memberships -------------------------------------------------------------------

    async def set_member(self, principal: Principal, user_id: str, role: Role) -> dict[str, Any]:
        """Add a member or change their role, under the owner rules of this module."""
        validate_person_id(user_id)
        _grantable(principal, role)
        async with self.db.tenant(principal) as conn:
            if role != Role.OWNER:
                await _may_unseat_owner(conn, principal, user_id)
            return await org_store.set_member(conn, principal, user_id, role)

    async def list_members(self, principal: Principal) -> list[dict[str, Any]]:
        async with self.db.tenant(principal) as conn:
            return await org_store.list_members(conn, principal)

    async def get_member_role(self, principal: Principal) -> Role | None:
        """The role the principal's user holds in the principal's org, if a member."""
        async with self.db.tenant(principal) as conn:
            return await org_store.get_member_role(conn, principal)

    async def delete_member(self, principal: Principal, user_id: str) -> None:
        async with self.db.tenant(principal) as conn:
            await _may_unseat_owner(conn, principal, user_id)
            deleted = await org_store.delete_member(conn, principal, user_id)
        if not deleted:
            raise NotFound("member not found")

    # --- API keys ----------------------------------------------------------------------

    async def create_api_key(
        self,
        principal: Principal,
        *,
        user_id: str | None = None,
        role: Role,
        name: str = "",
        scopes: list[str] | None = None,
        assistants: list[str] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """A key acting as its creator (`user_id` absent or the creator's own) or, created by
        an owner or admin, as a service account; at most the creator's role, scopes and
        assistants (None: the creator's). Returns the secret (shown once, never stored) and
        the key's record."""
        user_id = principal.user_id if user_id is None else user_id
        if service_account(user_id):
            validate_identifier(user_id, "user_id")
            if user_id != principal.user_id and not principal.is_admin:
                raise Forbidden("only owners and admins create service-account keys")
        else:
            if user_id != principal.user_id:
                raise Forbidden(
                    "a key acts as its creator or as a service account (user_id 'svc:<name>')"
                )
            validate_person_id(user_id)
        _grantable(principal, role)
        scopes = _narrowed("scopes", scopes, principal.scopes)
        assistants = _narrowed("assistants", assistants, principal.assistants)
        unknown = set(scopes or ()) - SCOPES
        if unknown:
            raise InvalidInput(f"unknown scopes {sorted(unknown)}; known: {sorted(SCOPES)}")
        async with self.db.tenant(principal) as conn:
            return await _insert_key(conn, principal, user_id, role, name, scopes, assistants)

    async def list_api_keys(self, principal: Principal) -> list[dict[str, Any]]:
        async with self.db.tenant(principal) as conn:
            return await org_store.list_api_keys(conn, principal)

    async def revoke_api_key(self, principal: Principal, key_id: uuid.UUID) -> datetime:
        """Revoke a key; an owner's key (an owner-role key, or any key of an owner) only by
        an owner."""
        async with self.db.tenant(principal) as conn:
            key = await org_store.get_api_key(conn, principal, key_id)
            if key is None:
                raise NotFound("API key not found")
            if principal.role != Role.OWNER:
                holder = Principal(principal.org_id, key["user_id"])
                if Role.OWNER in (key["role"], await org_store.get_member_role(conn, holder)):
                    raise Forbidden("only an owner may revoke an owner's key")
            revoked_at = await org_store.revoke_api_key(conn, principal, key_id)
        if revoked_at is None:
            raise NotFound("API key not found")
        await self._forget_keys(principal.org_id)
        return revoked_at

    async def _forget_keys(self, org_id: str) -> None:
        """After the commit: every server looks the org's keys up again at its next request
        (api/key_cache.py), so a revoked key fails everywhere before this returns."""
        try:
            await bump_generation(self.redis, org_id)
        except VALKEY_DOWN as exc:
            raise Unavailable(
                "done in the database, but servers that reach Valkey may still accept the "
                "org's revoked keys from their cache for up to a minute; retry"
            ) from exc

    async def resolve_api_key(self, secret: str) -> tuple[Principal, uuid.UUID] | None:
        """The principal an API key stands for and the key's id, or None if unknown or revoked."""
        if not secret.startswith(API_KEY_PREFIX):
            return None
        async with self.db.system() as conn:
            row = await org_store.resolve_api_key(conn, hash_api_key(secret))
        if row is None:
            return None
        principal = Principal(
            row["org_id"],
            row["user_id"],
            Role(row["role"]),
            PrincipalKind.API_KEY,
            permissions=row["scopes"],
            assistants=row["assistants"],
        )
        return principal, row["key_id"]


def _grantable(principal: Principal, role: Role) -> None:
    """Nobody hands out more rights than they hold."""
    if not principal.role.at_least(role):
        raise Forbidden(f"a {principal.role.value} cannot grant the {role.value} role")


def _narrowed(
    what: str, requested: list[str] | None, held: frozenset[str] | None
) -> list[str] | None:
    """A new key's scopes or assistants: what was asked, within what its creator holds."""
    if requested is None:
        return None if held is None else sorted(held)
    if held is not None and not held.issuperset(requested):
        raise Forbidden(f"a key's {what} are at most its creator's: {sorted(held)}")
    return sorted(set(requested))


async def _may_unseat_owner(conn: AsyncConnection, principal: Principal, user_id: str) -> None:
    """Refuse to demote or remove an owner unless the caller is an owner and another owner
    remains. The owner rows are locked first, so concurrent demotions are counted in turn."""
    owners = await org_store.lock_owners(conn, principal)
    if user_id not in owners:
        return
    if principal.role != Role.OWNER:
        raise Forbidden("only an owner may demote or remove an owner")
    if owners == [user_id]:
        raise Conflict(f"{user_id!r} is the last owner of {principal.org_id!r}")


def _founder(org_id: str, owner: str | None) -> Principal:
    """The owner a new org is created as (the tenant of its first transaction): a person,
    never `shared` or a service account, or the system when the org has no owner yet."""
    validate_identifier(org_id, "org_id")
    if owner is not None:
        validate_person_id(owner, "owner")
    return Principal(org_id, owner or _SYSTEM_USER, Role.OWNER)


async def _insert_org(
    conn: AsyncConnection,
    principal: Principal,
    name: str,
    owner: str | None,
    metadata: dict | None,
) -> dict[str, Any]:
    org = await org_store.insert_org(conn, principal, name, metadata or {})
    if org is None:
        raise Conflict(f"organisation {principal.org_id!r} already exists")
    if owner:
        await org_store.set_member(conn, principal, owner, Role.OWNER)
    return org


async def _insert_key(
    conn: AsyncConnection,
    principal: Principal,
    user_id: str,
    role: Role,
    name: str,
    scopes: list[str] | None = None,
    assistants: list[str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """A new key's secret (returned once, stored only as its hash) and its record."""
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    record = await org_store.insert_api_key(
        conn,
        principal,
        user_id=user_id,
        role=role,
        name=name,
        key_hash=hash_api_key(secret),
        scopes=scopes,
        assistants=assistants,
    )
    return secret, record
