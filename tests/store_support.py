"""Helpers the store tests share: orgs to write into and stores bound to principals."""

from __future__ import annotations

from typing import Any

import psycopg

from tenantgraph.resources import Resources
from tenantgraph.scope import Principal, Role
from tenantgraph.services.tenant_store import TenantStore

INDEX = {"dims": 64, "embed": "hashing", "fields": ["text"]}


async def create_org(resources: Resources, org: str) -> None:
    async with resources.db.tenant(Principal(org, "setup")) as conn:
        await conn.execute(
            "INSERT INTO orgs (org_id, name, slug) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (org, org, org),
        )


def store(
    resources: Resources, org: str, user: str, role: Role = Role.MEMBER, **kwargs: Any
) -> TenantStore:
    kwargs.setdefault("index_config", INDEX)
    return TenantStore(resources.db, Principal(org, user, role), **kwargs)


async def admin_execute(resources: Resources, sql: str, params: tuple = ()) -> list[tuple]:
    """Run SQL as the database superuser, to age items or inspect rows behind the store."""
    async with await psycopg.AsyncConnection.connect(
        resources.admin_conninfo, autocommit=True
    ) as conn:
        cur = await conn.execute(sql, params)
        return await cur.fetchall() if cur.description else []
