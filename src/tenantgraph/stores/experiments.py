"""SQL of experiments (tenant tables `experiments`, `experiment_transitions`,
`experiment_assignments`, migration 0015): the experiment rows, their history, users'
sticky variants, and the per-variant aggregates of the results. Every member of the org
reads an experiment; the service lets only admins change one."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from tenantgraph.scope import Principal

__all__ = [
    "assign",
    "existing_assistants",
    "get",
    "history",
    "insert",
    "list_all",
    "lock",
    "result_rows",
    "set_status",
    "update",
]

COLUMNS = """experiment_id, name, description, status, variants, metric, winner, created_by,
    created_at, updated_at, start_time, end_time"""
_ORG = "org_id = current_setting('tenantgraph.org_id')"


async def insert(
    conn: AsyncConnection, principal: Principal, experiment: dict[str, Any]
) -> dict[str, Any] | None:
    """A new draft experiment; None when the org has one of that name."""
    cur = await conn.execute(
        "INSERT INTO experiments (org_id, experiment_id, name, description, variants, metric,"
        " created_by) VALUES (%(org)s, %(id)s, %(name)s, %(description)s, %(variants)s,"
        f" %(metric)s, %(user)s) ON CONFLICT DO NOTHING RETURNING {COLUMNS}",
        {
            "org": principal.org_id,
            "id": uuid.uuid4(),
            "name": experiment["name"],
            "description": experiment.get("description"),
            "variants": Jsonb(experiment["variants"]),
            "metric": Jsonb(experiment["metric"]),
            "user": principal.user_id,
        },
    )
    return await cur.fetchone()


async def existing_assistants(conn: AsyncConnection, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of `ids` are assistants of the org."""
    cur = await conn.execute(
        f"SELECT assistant_id FROM assistants WHERE {_ORG} AND assistant_id = ANY(%s)", (ids,)
    )
    return {row["assistant_id"] for row in await cur.fetchall()}


def _by(ref: uuid.UUID | str) -> tuple[str, Any]:
    return ("experiment_id", ref) if isinstance(ref, uuid.UUID) else ("name", ref)


async def get(conn: AsyncConnection, ref: uuid.UUID | str) -> dict[str, Any] | None:
    """The experiment with this id (a UUID) or name (a string)."""
    column, value = _by(ref)
    cur = await conn.execute(
        f"SELECT {COLUMNS} FROM experiments WHERE {_ORG} AND {column} = %s", (value,)
    )
    return await cur.fetchone()


async def lock(conn: AsyncConnection, experiment_id: uuid.UUID) -> dict[str, Any] | None:
    """The experiment, locked until the transaction ends (changes are serialized)."""
    cur = await conn.execute(
        f"SELECT {COLUMNS} FROM experiments WHERE {_ORG} AND experiment_id = %s FOR UPDATE",
        (experiment_id,),
    )
    return await cur.fetchone()


async def list_all(
    conn: AsyncConnection, status: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        f"SELECT {COLUMNS} FROM experiments WHERE {_ORG}"
        " AND (%(status)s::text IS NULL OR status = %(status)s)"
        " ORDER BY created_at DESC, experiment_id LIMIT %(limit)s OFFSET %(offset)s",
        {"status": status, "limit": limit, "offset": offset},
    )
    return await cur.fetchall()


async def update(
    conn: AsyncConnection, experiment_id: uuid.UUID, changes: dict[str, Any]
) -> dict[str, Any]:
    """Set `description` and/or `variants` of a locked experiment."""
    cur = await conn.execute(
        "UPDATE experiments SET description = coalesce(%(description)s, description),"
        " variants = coalesce(%(variants)s, variants), updated_at = now()"
        f" WHERE {_ORG} AND experiment_id = %(id)s RETURNING {COLUMNS}",
        {
            "id": experiment_id,
            "description": changes.get("description"),
            "variants": Jsonb(changes["variants"]) if "variants" in changes else None,
        },
    )
    row = await cur.fetchone()
    assert row is not None  # locked by the caller
    return row


async def set_status(
    conn: AsyncConnection,
    principal: Principal,
    experiment: dict[str, Any],
    status: str,
    reason: str | None,
    winner: str | None,
) -> dict[str, Any]:
    """Move a locked experiment to `status` and record the transition (who, when, from,
    to, why); the first start sets `start_time`, completion `end_time`."""
    params = {
        "org": principal.org_id,
        "id": experiment["experiment_id"],
        "from": experiment["status"],
        "to": status,
        "user": principal.user_id,
        "reason": reason,
        "winner": winner,
    }
    await conn.execute(
        "INSERT INTO experiment_transitions"
        " (org_id, experiment_id, seq, from_status, to_status, user_id, reason)"
        " SELECT %(org)s, %(id)s, count(*) + 1, %(from)s, %(to)s, %(user)s, %(reason)s"
        " FROM experiment_transitions WHERE org_id = %(org)s AND experiment_id = %(id)s",
        params,
    )
    cur = await conn.execute(
        "UPDATE experiments SET status = %(to)s, updated_at = now(),"
        " winner = coalesce(%(winner)s, winner),"
        " start_time = CASE WHEN %(to)s = 'running' THEN coalesce(start_time, now())"
        "   ELSE start_time END,"
        " end_time = CASE WHEN %(to)s = 'completed' THEN now() ELSE end_time END"
        f" WHERE org_id = %(org)s AND experiment_id = %(id)s RETURNING {COLUMNS}",
        params,
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def history(conn: AsyncConnection, experiment_id: uuid.UUID) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT from_status, to_status, user_id, reason, at FROM experiment_transitions"
        f" WHERE {_ORG} AND experiment_id = %s ORDER BY seq",
        (experiment_id,),
    )
    return await cur.fetchall()


async def assign(
    conn: AsyncConnection, principal: Principal, experiment_id: uuid.UUID, variant: str
) -> str:
    """The caller's variant: the one recorded at their first assignment, else `variant`
    (recorded now)."""
    params = {"org": principal.org_id, "id": experiment_id, "user": principal.user_id}
    cur = await conn.execute(
        "WITH new AS (INSERT INTO experiment_assignments (org_id, experiment_id, user_id,"
        " variant) VALUES (%(org)s, %(id)s, %(user)s, %(variant)s) ON CONFLICT DO NOTHING"
        " RETURNING variant)"
        " SELECT variant FROM new UNION ALL SELECT variant FROM experiment_assignments"
        " WHERE org_id = %(org)s AND experiment_id = %(id)s AND user_id = %(user)s",
        {**params, "variant": variant},
    )
    row = await cur.fetchone()
    assert row is not None
    return row["variant"]


async def result_rows(
    conn: AsyncConnection, experiment_id: uuid.UUID, key: str
) -> dict[str, dict[str, Any]]:
    """Per variant: users assigned, runs, and the metric key's feedback (n, mean, stddev,
    whether every score is 0 or 1)."""
    params = {"id": experiment_id, "sid": str(experiment_id), "key": key}
    users = await conn.execute(
        "SELECT variant, count(*) AS users FROM experiment_assignments"
        f" WHERE {_ORG} AND experiment_id = %(id)s GROUP BY variant",
        params,
    )
    runs = await conn.execute(
        "SELECT metadata ->> 'variant' AS variant, count(*) AS runs FROM runs"
        f" WHERE {_ORG} AND metadata ? 'experiment_id'"
        " AND metadata ->> 'experiment_id' = %(sid)s GROUP BY 1",
        params,
    )
    scores = await conn.execute(
        "SELECT variant, count(score) AS n, avg(score) AS mean, stddev_samp(score) AS stddev,"
        " bool_and(score IN (0, 1)) AS is_binary FROM feedback"
        f" WHERE {_ORG} AND experiment_id = %(id)s AND key = %(key)s GROUP BY variant",
        params,
    )
    rows: dict[str, dict[str, Any]] = {}
    for cur in (users, runs, scores):
        for row in await cur.fetchall():
            rows.setdefault(row.pop("variant"), {}).update(row)
    return rows
