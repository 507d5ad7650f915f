"""SQL of feedback events (tenant table `feedback`, migration 0014): record one on a run the
caller sees, search, aggregate, export, erase, and the retention sweep.

Visibility: a member sees the events they gave, an admin the org's.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from tenantgraph.scope import Principal
from tenantgraph.stores._query import caller_params
from tenantgraph.stores.runs import VISIBLE

__all__ = [
    "GROUPS",
    "delete_org_events",
    "delete_user_events",
    "export_page",
    "insert",
    "search",
    "stats",
    "stats_query",
    "sweep_batch",
]

COLUMNS = """feedback_id, run_id, thread_id, assistant_id, assistant_version, experiment_id,
    variant, user_id, key, score, value, comment, correction, source, created_at"""
_MINE = "(%(admin)s OR f.user_id = %(user)s)"

# Attribution is copied from the run: its thread and assistant, the assistant's version
# when the run was created, and the experiment variant the server recorded in its kwargs.
_INSERT = f"""
INSERT INTO feedback (org_id, feedback_id, run_id, thread_id, assistant_id, assistant_version,
    experiment_id, variant, user_id, key, score, value, comment, correction, source, token_jti)
SELECT r.org_id, %(id)s, r.run_id, r.thread_id, r.assistant_id,
    coalesce((SELECT max(v.version) FROM assistant_versions v
              WHERE v.org_id = r.org_id AND v.assistant_id = r.assistant_id
                AND v.created_at <= r.created_at),
             (SELECT a.version FROM assistants a
              WHERE a.org_id = r.org_id AND a.assistant_id = r.assistant_id)),
    (r.kwargs -> 'experiment' ->> 'experiment_id')::uuid, r.kwargs -> 'experiment' ->> 'variant',
    %(giver)s, %(key)s, %(score)s, %(value)s, %(comment)s, %(correction)s, %(source)s,
    %(jti)s
FROM runs r
WHERE r.org_id = %(org)s AND r.run_id = %(run)s
  AND (%(thread)s::uuid IS NULL OR r.thread_id = %(thread)s) AND {VISIBLE}
ON CONFLICT (org_id, token_jti) WHERE token_jti IS NOT NULL DO NOTHING
RETURNING {COLUMNS}
"""
_RUN_EXISTS = f"""
SELECT 1 FROM runs r WHERE r.org_id = %(org)s AND r.run_id = %(run)s
  AND (%(thread)s::uuid IS NULL OR r.thread_id = %(thread)s) AND {VISIBLE}
"""

# The groups of `stats`: each a JSON value naming the group.
GROUPS: dict[str | None, str] = {
    None: "'null'::jsonb",
    "key": "to_jsonb(f.key)",
    "assistant_version": "jsonb_build_object('assistant_id', f.assistant_id,"
    " 'assistant_version', f.assistant_version)",
    "variant": "jsonb_build_object('experiment_id', f.experiment_id, 'variant', f.variant)",
    "day": "to_jsonb((f.created_at AT TIME ZONE 'UTC')::date)",
    "tool": "to_jsonb(f.source ->> 'tool')",
}
# 95% two-sided normal quantile, for the Wilson score interval of a 0/1 rate.
_Z = 1.959963984540054
_STATS = """
WITH g AS (
    SELECT {group} AS grp, count(*) AS count, count(f.score) AS n, avg(f.score) AS mean,
           stddev_samp(f.score) AS stddev, min(f.score) AS min, max(f.score) AS max,
           bool_and(f.score IN (0, 1)) AS is_binary
    FROM feedback f
    WHERE f.org_id = %(org)s AND {where}
    GROUP BY 1
)
SELECT grp AS "group", count, n AS scored, mean, stddev, min, max,
       CASE WHEN is_binary THEN mean END AS rate,
       CASE WHEN is_binary THEN (mean + {z2} / (2 * n)
            - {z} * sqrt(mean * (1 - mean) / n + {z2} / (4.0 * n * n))) / (1 + {z2} / n)
       END AS rate_low,
       CASE WHEN is_binary THEN (mean + {z2} / (2 * n)
            + {z} * sqrt(mean * (1 - mean) / n + {z2} / (4.0 * n * n))) / (1 + {z2} / n)
       END AS rate_high
FROM g ORDER BY grp
"""


def _filters(principal: Principal, filters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The WHERE clause (visibility and the given filters) and its parameters."""
    clauses = [_MINE]
    params = caller_params(principal)
    for name in ("run_id", "thread_id", "assistant_id", "key", "user_id", "experiment_id"):
        if filters.get(name) is not None:
            clauses.append(f"f.{name} = %({name})s")
            params[name] = filters[name]
    if filters.get("since") is not None:
        clauses.append("f.created_at >= %(since)s")
        params["since"] = filters["since"]
    if filters.get("until") is not None:
        clauses.append("f.created_at < %(until)s")
        params["until"] = filters["until"]
    return " AND ".join(clauses), params


async def insert(
    conn: AsyncConnection,
    principal: Principal,
    run_id: uuid.UUID,
    event: dict[str, Any],
    *,
    thread_id: uuid.UUID | None = None,
    giver: str | None = None,
    jti: str | None = None,
) -> tuple[dict[str, Any] | None, bool]:
    """Record `event` (key, score, value, comment, correction, source) on the run, if the
    principal sees it; `giver` defaults to the principal's user. Returns (the event, the
    run was found): (None, True) when the single-use token `jti` was spent already."""
    params = {
        **caller_params(principal),
        "id": uuid.uuid4(),
        "run": run_id,
        "thread": thread_id,
        "giver": giver or principal.user_id,
        "key": event["key"],
        "score": event.get("score"),
        "comment": event.get("comment"),
        "jti": jti,
        **{k: _json(event.get(k)) for k in ("value", "correction", "source")},
    }
    row = await (await conn.execute(_INSERT, params)).fetchone()
    if row is not None or jti is None:
        return row, row is not None
    return None, await (await conn.execute(_RUN_EXISTS, params)).fetchone() is not None


def _json(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


async def search(
    conn: AsyncConnection,
    principal: Principal,
    filters: dict[str, Any],
    *,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    where, params = _filters(principal, filters)
    cur = await conn.execute(
        f"SELECT {COLUMNS} FROM feedback f WHERE f.org_id = %(org)s AND {where}"
        " ORDER BY f.created_at DESC, f.feedback_id LIMIT %(limit)s OFFSET %(offset)s",
        {**params, "limit": limit, "offset": offset},
    )
    return await cur.fetchall()


def stats_query(
    principal: Principal, filters: dict[str, Any], group_by: str | None
) -> tuple[str, dict[str, Any]]:
    """The statement and parameters of `stats` (the benchmark explains its plan)."""
    where, params = _filters(principal, filters)
    return _STATS.format(group=GROUPS[group_by], where=where, z=_Z, z2=_Z * _Z), params


async def stats(
    conn: AsyncConnection, principal: Principal, filters: dict[str, Any], group_by: str | None
) -> list[dict[str, Any]]:
    """Per group: count, scored, mean, stddev, min, max; for 0/1 scores the rate and its
    95% Wilson interval (rate_low, rate_high)."""
    statement, params = stats_query(principal, filters, group_by)
    return await (await conn.execute(statement, params)).fetchall()


async def export_page(
    conn: AsyncConnection, user_id: str, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[dict[str, Any]]:
    """The org's events `user_id` gave, in (created_at, id) order after `after`."""
    cur = await conn.execute(
        f"SELECT {COLUMNS} FROM feedback WHERE org_id = current_setting('tenantgraph.org_id')"
        " AND user_id = %(user)s AND (%(after)s::timestamptz IS NULL"
        "   OR (created_at, feedback_id) > (%(after)s, %(after_id)s))"
        " ORDER BY created_at, feedback_id LIMIT %(limit)s",
        {
            "user": user_id,
            "after": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )
    return await cur.fetchall()


async def delete_user_events(conn: AsyncConnection, user_id: str) -> int:
    return await _count_deleted(conn, "AND user_id = %s", (user_id,))


async def delete_org_events(conn: AsyncConnection) -> int:
    return await _count_deleted(conn, "", ())


async def _count_deleted(conn: AsyncConnection, where: str, params: tuple) -> int:
    cur = await conn.execute(
        "WITH gone AS (DELETE FROM feedback WHERE org_id = current_setting('tenantgraph.org_id')"
        f" {where} RETURNING 1) SELECT count(*) AS n FROM gone",
        params,
    )
    row = await cur.fetchone()
    assert row is not None
    return row["n"]


async def sweep_batch(conn: AsyncConnection, batch: int, default_days: int) -> int:
    """Delete up to `batch` events past their org's retention, across orgs (the audited
    `sweep_feedback`); returns how many."""
    cur = await conn.execute("SELECT sweep_feedback(%s, %s) AS n", (batch, default_days))
    row = await cur.fetchone()
    assert row is not None
    return row["n"]
