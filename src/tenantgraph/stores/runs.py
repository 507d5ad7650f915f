"""SQL for runs, their queue rows and the thread status they drive.

Every function takes a tenant connection (`db.tenant(principal)`); RLS confines it to the
org, and the visibility rule below confines it to what the principal may see: a run is
visible to its creator, to the owner of its thread and to the org's admins.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, AsyncCursor
from psycopg.types.json import Jsonb

from tenantgraph.scope import Principal
from tenantgraph.stores._query import caller_params, owner_or_admin

__all__ = [
    "ACTIVE",
    "VISIBLE",
    "active_runs",
    "active_runs_of_org",
    "delete_run",
    "delete_temporary_thread",
    "find_thread",
    "finish_and_settle",
    "finish_run",
    "get_assistant",
    "get_run",
    "insert_run",
    "list_runs",
    "lock_thread",
    "lock_thread_for_run",
    "request_cancel",
    "run_outcome",
    "run_readers",
    "settle_thread",
    "thread_runs_since",
]

ACTIVE = ("pending", "running")
RUN_COLUMNS = """r.run_id, r.thread_id, r.assistant_id, r.owner_id, r.status, r.metadata,
    r.kwargs, r.multitask_strategy, r.created_at, r.updated_at, r.cancel_action"""
# A run is also visible to the owner of its thread.
_VISIBLE = f"""({owner_or_admin("r")} OR EXISTS (
    SELECT 1 FROM threads t
    WHERE t.org_id = r.org_id AND t.thread_id = r.thread_id AND t.owner_id = %(user)s))"""
# Who sees run `r` (the parameters of `caller_params`), for statements of other stores.
VISIBLE = _VISIBLE


async def get_assistant(conn: AsyncConnection, assistant_id: uuid.UUID) -> dict[str, Any] | None:
    cur = await conn.execute(
        "SELECT assistant_id, graph_id, config, context, metadata FROM assistants"
        " WHERE org_id = current_setting('tenantgraph.org_id') AND assistant_id = %s",
        (assistant_id,),
    )
    return await cur.fetchone()


_THREAD = (
    "SELECT thread_id, owner_id, status, metadata FROM threads"
    " WHERE org_id = %(org)s AND thread_id = %(thread)s"
    f" AND {owner_or_admin('threads')}"
)


async def find_thread(
    conn: AsyncConnection, principal: Principal, thread_id: uuid.UUID
) -> dict[str, Any] | None:
    """The thread if the principal may use it, as `lock_thread` reads it but not locked:
    for a reader, which must neither wait for a run's creation nor hold one up."""
    cur = await conn.execute(_THREAD, {**caller_params(principal), "thread": thread_id})
    return await cur.fetchone()


async def lock_thread(
    conn: AsyncConnection, principal: Principal, thread_id: uuid.UUID
) -> dict[str, Any] | None:
    """The thread if the principal may use it, locked for this transaction (so run creation
    on one thread is serialised)."""
    cur = await conn.execute(
        _THREAD + " FOR UPDATE", {**caller_params(principal), "thread": thread_id}
    )
    return await cur.fetchone()


_ACTIVE_RUNS = (
    f"SELECT {RUN_COLUMNS} FROM runs r"
    " WHERE r.org_id = current_setting('tenantgraph.org_id') AND r.thread_id = %s"
    " AND r.status IN ('pending', 'running') ORDER BY r.created_at"
)


async def lock_thread_for_run(
    conn: AsyncConnection,
    principal: Principal,
    thread_id: uuid.UUID,
    assistant_id: uuid.UUID,
    *,
    create: bool,
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]] | None:
    """`lock_thread`, the assistant a new run needs and the thread's active runs, in one
    round trip: (thread, assistant, active runs), or None when the thread or assistant is
    missing or not the principal's. With `create`, a missing thread is created for them
    (`insert_run` records its graph in the metadata)."""
    params = {**caller_params(principal), "thread": thread_id, "assistant": assistant_id}
    if create:
        await conn.execute(
            "INSERT INTO threads (org_id, thread_id, owner_id)"
            " VALUES (%(org)s, %(thread)s, %(user)s) ON CONFLICT DO NOTHING",
            params,
        )
    cur = await conn.execute(
        "SELECT t.thread_id, t.owner_id, t.status, t.metadata, t.config,"
        " a.assistant_id AS a_assistant_id,"
        " a.graph_id AS a_graph_id, a.config AS a_config, a.context AS a_context,"
        " a.metadata AS a_metadata"
        " FROM threads t JOIN assistants a"
        " ON a.org_id = t.org_id AND a.assistant_id = %(assistant)s"
        " WHERE t.org_id = %(org)s AND t.thread_id = %(thread)s"
        f" AND {owner_or_admin('t')} FOR UPDATE OF t",
        params,
    )
    # Sent before the lock's row is fetched, so it runs after the lock in the same round
    # trip; its rows are only used when the lock found a thread the principal may use.
    active = await conn.execute(_ACTIVE_RUNS, (thread_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    thread = {k: v for k, v in row.items() if not k.startswith("a_")}
    assistant = {k[2:]: v for k, v in row.items() if k.startswith("a_")}
    return thread, assistant, await active.fetchall()


async def active_runs(conn: AsyncConnection, thread_id: uuid.UUID) -> list[dict[str, Any]]:
    cur = await conn.execute(_ACTIVE_RUNS, (thread_id,))
    return await cur.fetchall()


async def active_runs_of_org(conn: AsyncConnection, principal: Principal) -> list[dict[str, Any]]:
    """Every pending or running run the principal may see, oldest first."""
    cur = await conn.execute(
        f"SELECT {RUN_COLUMNS} FROM runs r WHERE r.org_id = %(org)s"
        " AND r.status IN ('pending', 'running') AND " + _VISIBLE + " ORDER BY r.created_at",
        caller_params(principal),
    )
    return await cur.fetchall()


async def insert_run(
    conn: AsyncConnection,
    principal: Principal,
    *,
    run_id: uuid.UUID,
    thread_id: uuid.UUID,
    assistant_id: uuid.UUID,
    metadata: dict[str, Any],
    kwargs: dict[str, Any],
    multitask_strategy: str,
    after_seconds: float,
    claimed_by: str | None = None,
    lease_seconds: float = 0.0,
    thread_config: dict[str, Any] | None = None,
) -> AsyncCursor[dict[str, Any]]:
    """Insert a pending run and its queue row; the thread becomes busy (and keeps
    `thread_config` if given). With `claimed_by`, the run is inserted already claimed by
    that worker (running, attempt 1, leased).

    Returns the cursor of the run's row: fetch it after the transaction commits, and the
    row arrives with the COMMIT instead of costing a round trip of its own."""
    params = {
        **caller_params(principal),
        "run": run_id,
        "thread": thread_id,
        "assistant": assistant_id,
        "metadata": Jsonb(metadata),
        "kwargs": Jsonb(kwargs),
        "strategy": multitask_strategy,
        "after": after_seconds,
        "status": "running" if claimed_by else "pending",
        "worker": claimed_by,
        "lease": lease_seconds,
        "graph": metadata.get("graph_id"),
        "config": None if thread_config is None else Jsonb(thread_config),
    }
    # One statement: the queue row and the thread's update ride along as CTEs (the queue
    # row's foreign key is checked at the statement's end, when the run's row is there).
    cur = await conn.execute(
        "WITH queued AS (INSERT INTO run_queue"
        " (org_id, run_id, available_at, attempts, locked_by, locked_until)"
        " VALUES (%(org)s, %(run)s, now() + make_interval(secs => %(after)s),"
        " CASE WHEN %(worker)s::text IS NULL THEN 0 ELSE 1 END, %(worker)s,"
        " CASE WHEN %(worker)s::text IS NULL THEN NULL"
        " ELSE now() + make_interval(secs => %(lease)s) END)),"
        " busy AS (UPDATE threads SET status = 'busy', updated_at = now(), metadata = metadata"
        " || jsonb_build_object('graph_id', %(graph)s::text, 'assistant_id', %(assistant)s::text),"
        " config = COALESCE(%(config)s, config)"
        " WHERE org_id = %(org)s AND thread_id = %(thread)s)"
        " INSERT INTO runs AS r (org_id, run_id, thread_id, assistant_id, owner_id, metadata,"
        " kwargs, multitask_strategy, status) VALUES (%(org)s, %(run)s, %(thread)s,"
        " %(assistant)s, %(user)s, %(metadata)s, %(kwargs)s, %(strategy)s, %(status)s)"
        f" RETURNING {RUN_COLUMNS}",
        params,
    )
    return cur


async def get_run(
    conn: AsyncConnection,
    principal: Principal,
    run_id: uuid.UUID,
    thread_id: uuid.UUID | None = None,
) -> dict[str, Any] | None:
    cur = await conn.execute(
        f"SELECT {RUN_COLUMNS} FROM runs r WHERE r.org_id = %(org)s AND r.run_id = %(run)s"
        " AND (%(thread)s::uuid IS NULL OR r.thread_id = %(thread)s) AND " + _VISIBLE,
        {**caller_params(principal), "run": run_id, "thread": thread_id},
    )
    return await cur.fetchone()


async def run_outcome(
    conn: AsyncConnection, principal: Principal, run_id: uuid.UUID
) -> dict[str, Any] | None:
    """The run's `status` and `output` (None until it finished), if the principal sees it."""
    cur = await conn.execute(
        "SELECT r.status, r.output FROM runs r WHERE r.org_id = %(org)s AND r.run_id = %(run)s"
        " AND " + _VISIBLE,
        {**caller_params(principal), "run": run_id},
    )
    return await cur.fetchone()


async def run_readers(conn: AsyncConnection, run_id: uuid.UUID) -> list[str]:
    """Who may read the run's events besides the org's admins: its creator and its
    thread's owner (none when the run is gone)."""
    cur = await conn.execute(
        "SELECT r.owner_id, t.owner_id AS thread_owner FROM runs r LEFT JOIN threads t"
        " ON t.org_id = r.org_id AND t.thread_id = r.thread_id"
        " WHERE r.org_id = current_setting('tenantgraph.org_id') AND r.run_id = %s",
        (run_id,),
    )
    row = await cur.fetchone()
    return [] if row is None else [u for u in (row["owner_id"], row["thread_owner"]) if u]


async def list_runs(
    conn: AsyncConnection,
    principal: Principal,
    thread_id: uuid.UUID,
    *,
    limit: int = 10,
    offset: int = 0,
    status: str | None = None,
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        f"SELECT {RUN_COLUMNS} FROM runs r WHERE r.org_id = %(org)s AND r.thread_id = %(thread)s"
        " AND (%(status)s::text IS NULL OR r.status = %(status)s) AND "
        + _VISIBLE
        + " ORDER BY r.created_at DESC, r.run_id LIMIT %(limit)s OFFSET %(offset)s",
        {
            **caller_params(principal),
            "thread": thread_id,
            "status": status,
            "limit": limit,
            "offset": offset,
        },
    )
    return await cur.fetchall()


async def thread_runs_since(
    conn: AsyncConnection, principal: Principal, thread_id: uuid.UUID, since: datetime
) -> list[dict[str, Any]]:
    """The thread's runs the principal may see that are active or changed since `since`,
    oldest first: what a thread's stream follows (no lock, unlike `list_runs`' callers)."""
    cur = await conn.execute(
        f"SELECT {RUN_COLUMNS} FROM runs r WHERE r.org_id = %(org)s AND r.thread_id = %(thread)s"
        " AND (r.status IN ('pending', 'running') OR r.updated_at >= %(since)s) AND "
        + _VISIBLE
        + " ORDER BY r.created_at, r.run_id",
        {**caller_params(principal), "thread": thread_id, "since": since},
    )
    return await cur.fetchall()


async def delete_run(conn: AsyncConnection, org_id: str, run_id: uuid.UUID) -> bool:
    cur = await conn.execute(
        "DELETE FROM runs WHERE org_id = %s AND run_id = %s RETURNING run_id", (org_id, run_id)
    )
    return await cur.fetchone() is not None


async def request_cancel(
    conn: AsyncConnection, org_id: str, run_ids: list[uuid.UUID], action: str
) -> None:
    """Flag running runs for their worker (it polls with its lease)."""
    await conn.execute(
        "UPDATE runs SET cancel_action = %s, updated_at = now()"
        " WHERE org_id = %s AND run_id = ANY(%s) AND status = 'running'",
        (action, org_id, run_ids),
    )


# Leave the queue and set the final status, only while `worker` still holds the lease:
# `finished` has the run's row exactly when both happened.
_FINISH = """dequeued AS (
    DELETE FROM run_queue WHERE org_id = %(org)s AND run_id = %(ended)s
    AND locked_by IS NOT DISTINCT FROM %(worker)s RETURNING run_id
), finished AS (
    UPDATE runs SET status = %(run_status)s, cancel_action = NULL, updated_at = now(),
        output = %(output)s
    WHERE org_id = %(org)s AND run_id IN (SELECT run_id FROM dequeued)
    RETURNING run_id
)"""


async def finish_run(
    conn: AsyncConnection, org_id: str, run_id: uuid.UUID, status: str, *, worker_id: str | None
) -> bool:
    """Leave the queue and set the final status — only while `worker_id` still holds the
    lease (None: a run that never started). False if another worker owns the run now."""
    cur = await conn.execute(
        f"WITH {_FINISH} SELECT run_id FROM finished",
        {
            "org": org_id,
            "ended": run_id,
            "worker": worker_id,
            "run_status": status,
            "output": None,
        },
    )
    return await cur.fetchone() is not None


# After a run: the thread is busy while other runs (than `ended`) are queued, else
# `status`; its values and interrupts mirror the latest checkpoint (kept when NULL).
_SETTLE = """UPDATE threads t SET
    status = CASE WHEN EXISTS (
        SELECT 1 FROM runs r WHERE r.org_id = t.org_id AND r.thread_id = t.thread_id
        AND r.run_id IS DISTINCT FROM %(ended)s AND r.status IN ('pending', 'running'))
        THEN 'busy' ELSE %(status)s END,
    "values" = coalesce(%(values)s, t."values"),
    interrupts = coalesce(%(interrupts)s, t.interrupts),
    error = %(error)s,
    updated_at = now()
WHERE t.org_id = %(org)s AND t.thread_id = %(thread)s"""


def _settle_params(
    org_id: str,
    thread_id: uuid.UUID,
    status: str,
    values: Any,
    interrupts: dict[str, Any] | None,
    error: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "org": org_id,
        "thread": thread_id,
        "status": status,
        "values": Jsonb(values) if values is not None else None,
        "interrupts": Jsonb(interrupts) if interrupts is not None else None,
        "error": Jsonb(error) if error is not None else None,
        "ended": None,
    }


async def settle_thread(
    conn: AsyncConnection,
    org_id: str,
    thread_id: uuid.UUID,
    status: str,
    *,
    values: Any = None,
    interrupts: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    """After a run: see _SETTLE."""
    await conn.execute(
        _SETTLE, _settle_params(org_id, thread_id, status, values, interrupts, error)
    )


async def finish_and_settle(
    conn: AsyncConnection,
    org_id: str,
    run_id: uuid.UUID,
    status: str,
    *,
    worker_id: str | None,
    thread_id: uuid.UUID,
    thread_status: str,
    values: Any = None,
    interrupts: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    output: Any = None,
) -> AsyncCursor[Any]:
    """`finish_run` then `settle_thread`, as one statement, for a run's own end, keeping
    the run's `output` (what `join` answers). Returns
    the statement's cursor: one row when the run was still `worker_id`'s to finish (else
    nothing changed). Fetch it after the transaction: the row comes with COMMIT, so the
    whole end of a run is one round trip."""
    params = _settle_params(org_id, thread_id, thread_status, values, interrupts, error)
    return await conn.execute(
        f"WITH {_FINISH}, settled AS ({_SETTLE} AND EXISTS (SELECT 1 FROM finished) RETURNING 1)"
        " SELECT run_id FROM finished",
        {
            **params,
            "ended": run_id,
            "worker": worker_id,
            "run_status": status,
            "output": Jsonb(output) if output is not None else None,
        },
    )


async def delete_temporary_thread(conn: AsyncConnection, org_id: str, thread_id: uuid.UUID) -> None:
    """The thread of a stateless run, when it ends (`on_completion=delete`)."""
    await conn.execute(
        "DELETE FROM threads WHERE org_id = %s AND thread_id = %s", (org_id, thread_id)
    )
