"""SQL of an org's webhook settings (tenant table `org_webhooks`, migration 0013) and of
what a webhook sends when a run ends. `secret` holds the signing secret encrypted
(runtime/webhooks.py), or readable in a row written before that."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection

__all__ = [
    "ended_run",
    "get_settings",
    "replace_secret",
    "rotate_secret",
    "set_allowed_hosts",
    "settings",
]

_COLUMNS = "secret, allowed_hosts, created_at, rotated_at, updated_at"
# The row, created with `secret` when the org has none yet (the no-op update returns it);
# `created` says which (a row inserted here has xmax 0).
_SETTINGS = f"""
INSERT INTO org_webhooks (org_id, secret) VALUES (%(org)s, %(secret)s)
ON CONFLICT (org_id) DO UPDATE SET org_id = EXCLUDED.org_id
RETURNING {_COLUMNS}, xmax = 0 AS created
"""
_SET_ALLOWED_HOSTS = f"""
INSERT INTO org_webhooks (org_id, secret, allowed_hosts)
VALUES (%(org)s, %(secret)s, %(hosts)s)
ON CONFLICT (org_id) DO UPDATE
SET allowed_hosts = EXCLUDED.allowed_hosts, updated_at = now()
RETURNING {_COLUMNS}
"""
_ROTATE = f"""
INSERT INTO org_webhooks (org_id, secret) VALUES (%(org)s, %(secret)s)
ON CONFLICT (org_id) DO UPDATE
SET secret = EXCLUDED.secret, rotated_at = now(), updated_at = now()
RETURNING {_COLUMNS}
"""
_ENDED_RUN = """
SELECT r.run_id, r.thread_id, r.assistant_id, r.status, r.metadata, r.kwargs,
       r.multitask_strategy, r.created_at, r.updated_at, t."values"
FROM runs r
LEFT JOIN threads t ON t.org_id = r.org_id AND t.thread_id = r.thread_id
WHERE r.org_id = %(org)s AND r.run_id = %(run)s
"""


async def get_settings(conn: AsyncConnection, org_id: str) -> dict[str, Any] | None:
    """The org's row, or None when it has never used webhooks."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM org_webhooks WHERE org_id = %(org)s", {"org": org_id}
    )
    return await cur.fetchone()


async def settings(conn: AsyncConnection, org_id: str, new_secret: str) -> dict[str, Any]:
    """The org's row, created with `new_secret` on first use."""
    cur = await conn.execute(_SETTINGS, {"org": org_id, "secret": new_secret})
    row = await cur.fetchone()
    assert row is not None
    return row


async def set_allowed_hosts(
    conn: AsyncConnection, org_id: str, hosts: list[str] | None, new_secret: str
) -> dict[str, Any]:
    cur = await conn.execute(
        _SET_ALLOWED_HOSTS, {"org": org_id, "secret": new_secret, "hosts": hosts}
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def rotate_secret(conn: AsyncConnection, org_id: str, new_secret: str) -> dict[str, Any]:
    cur = await conn.execute(_ROTATE, {"org": org_id, "secret": new_secret})
    row = await cur.fetchone()
    assert row is not None
    return row


async def replace_secret(conn: AsyncConnection, org_id: str, secret: str) -> None:
    """Store the same secret in another form (encrypted), not a rotation."""
    await conn.execute(
        "UPDATE org_webhooks SET secret = %(secret)s WHERE org_id = %(org)s",
        {"org": org_id, "secret": secret},
    )


async def ended_run(conn: AsyncConnection, org_id: str, run_id: uuid.UUID) -> dict[str, Any] | None:
    """The run as the API shows it, with its thread's values (None: the run is gone)."""
    cur = await conn.execute(_ENDED_RUN, {"org": org_id, "run": run_id})
    return await cur.fetchone()
