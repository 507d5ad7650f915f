"""SQL for the run queue: claims across orgs, leases, giving a run back.

A run is claimed through the `claim_runs` function (SECURITY DEFINER, `FOR UPDATE SKIP
LOCKED`, migration 0004), the audited cross-tenant path: it is called on a connection with
no tenant (`db.system()`) and gives the claiming worker a lease (`locked_until`), which the
worker renews in its tenant transaction. Ending a run (leaving the queue) is in runs.py,
with the status it sets.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

__all__ = ["claim_runs", "release_lease", "renew_lease"]


async def claim_runs(
    conn: AsyncConnection,
    worker_id: str,
    max_runs: int,
    lease_seconds: float,
    graph_ids: Sequence[str],
) -> list[dict[str, Any]]:
    """Claim up to `max_runs` due runs (and runs whose lease expired) of the graphs
    `graph_ids`, of every org, for `worker_id`: rows of (org_id, run_id, owner_id, attempt)."""
    cur = await conn.execute(
        "SELECT * FROM claim_runs(%s, %s, %s, %s)",
        (worker_id, max_runs, lease_seconds, list(graph_ids)),
    )
    return await cur.fetchall()


async def renew_lease(
    conn: AsyncConnection, org_id: str, run_id: uuid.UUID, worker_id: str, lease_seconds: float
) -> tuple[bool, str | None]:
    """Extend the worker's lease; returns (still held, cancel action requested)."""
    cur = await conn.execute(
        """UPDATE run_queue q SET locked_until = now() + make_interval(secs => %s)
           WHERE q.org_id = %s AND q.run_id = %s AND q.locked_by = %s
           RETURNING (SELECT r.cancel_action FROM runs r
                      WHERE r.org_id = q.org_id AND r.run_id = q.run_id) AS cancel_action""",
        (lease_seconds, org_id, run_id, worker_id),
    )
    row = await cur.fetchone()
    return (row is not None, row["cancel_action"] if row else None)


async def release_lease(
    conn: AsyncConnection, org_id: str, run_id: uuid.UUID, worker_id: str
) -> None:
    """Give a run back to the queue (worker shutdown): the attempt does not count."""
    cur = await conn.execute(
        """UPDATE run_queue SET locked_by = NULL, locked_until = NULL, available_at = now(),
               attempts = greatest(attempts - 1, 0)
           WHERE org_id = %s AND run_id = %s AND locked_by = %s RETURNING run_id""",
        (org_id, run_id, worker_id),
    )
    if await cur.fetchone() is not None:
        await conn.execute(
            "UPDATE runs SET status = 'pending', updated_at = now()"
            " WHERE org_id = %s AND run_id = %s",
            (org_id, run_id),
        )
