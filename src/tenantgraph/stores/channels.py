"""SQL of an org's channel connections (tenant table `channels`, migration 0017), and the
one cross-org lookup of an inbound webhook (`resolve_channel`)."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

__all__ = ["delete", "get", "insert", "list_all", "resolve", "update", "verify_token_known"]

_COLUMNS = """channel_id, type, name, assistant_id, external_id, config, secrets,
              secret_fields, created_at, updated_at"""
_INSERT = f"""
INSERT INTO channels (org_id, channel_id, type, name, assistant_id, external_id, config,
                      secrets, secret_fields, verify_digest)
VALUES (%(org)s, %(channel)s, %(type)s, %(name)s, %(assistant)s, %(external)s, %(config)s,
        %(secrets)s, %(fields)s, %(verify)s)
ON CONFLICT (org_id, type, name) DO NOTHING
RETURNING {_COLUMNS}
"""
_UPDATE = f"""
UPDATE channels SET name = %(name)s, assistant_id = %(assistant)s, external_id = %(external)s,
       config = %(config)s, secrets = %(secrets)s, secret_fields = %(fields)s,
       verify_digest = %(verify)s, updated_at = now()
WHERE org_id = %(org)s AND channel_id = %(channel)s
RETURNING {_COLUMNS}
"""


def _params(org_id: str, channel_id: uuid.UUID, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "org": org_id,
        "channel": channel_id,
        "type": row["type"],
        "name": row["name"],
        "assistant": row["assistant_id"],
        "external": row["external_id"],
        "config": Jsonb(row["config"]),
        "secrets": row["secrets"],
        "fields": row["secret_fields"],
        "verify": row["verify_digest"],
    }


async def insert(
    conn: AsyncConnection, org_id: str, channel_id: uuid.UUID, row: dict[str, Any]
) -> dict[str, Any] | None:
    """The new connection, or None when the org has one of this type and name."""
    cur = await conn.execute(_INSERT, _params(org_id, channel_id, row))
    return await cur.fetchone()


async def get(conn: AsyncConnection, org_id: str, channel_id: uuid.UUID) -> dict[str, Any] | None:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM channels WHERE org_id = %s AND channel_id = %s",
        (org_id, channel_id),
    )
    return await cur.fetchone()


async def list_all(conn: AsyncConnection, org_id: str) -> list[dict[str, Any]]:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM channels WHERE org_id = %s ORDER BY created_at, channel_id",
        (org_id,),
    )
    return await cur.fetchall()


async def update(
    conn: AsyncConnection, org_id: str, channel_id: uuid.UUID, row: dict[str, Any]
) -> dict[str, Any] | None:
    cur = await conn.execute(_UPDATE, _params(org_id, channel_id, row))
    return await cur.fetchone()


async def delete(conn: AsyncConnection, org_id: str, channel_id: uuid.UUID) -> bool:
    cur = await conn.execute(
        "DELETE FROM channels WHERE org_id = %s AND channel_id = %s RETURNING 1",
        (org_id, channel_id),
    )
    return bool(await cur.fetchall())


async def resolve(
    conn: AsyncConnection, channel_type: str, provider_id: str
) -> list[dict[str, Any]]:
    """Every org's connection of `channel_type` claiming `provider_id` (a system
    connection: the org is not known yet), with its encrypted secrets."""
    cur = await conn.execute("SELECT * FROM resolve_channel(%s, %s)", (channel_type, provider_id))
    return await cur.fetchall()


async def verify_token_known(conn: AsyncConnection, digest: str) -> bool:
    """Whether a connection of any org holds the verify token of this digest."""
    cur = await conn.execute("SELECT channel_verify_token_known(%s) AS known", (digest,))
    row = await cur.fetchone()
    return bool(row and row["known"])
