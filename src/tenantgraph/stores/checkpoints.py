"""SQL for LangGraph checkpoints: checkpoint rows, one blob per channel version, pending
writes (migration 0004). `runtime/checkpointer.py` serialises; this module stores.

Every function takes a tenant connection and the org, which comes from the principal,
never from a config: a thread id of another org finds nothing and writes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

from psycopg import AsyncConnection, AsyncCursor
from psycopg.types.json import Jsonb

__all__ = [
    "Latest",
    "copy_thread",
    "delete_for_runs",
    "delete_thread",
    "keep_latest",
    "put_checkpoint",
    "put_writes",
    "select_checkpoint",
    "select_checkpoints",
]

# One checkpoint with its channel blobs and pending writes, in one statement.
_SELECT = """
SELECT c.thread_id::text AS thread_id, c.checkpoint_ns, c.checkpoint_id,
       c.parent_checkpoint_id, c.checkpoint_type, c.checkpoint, c.metadata,
       (SELECT coalesce(array_agg(b.channel ORDER BY b.channel), '{}') FROM checkpoint_blobs b
          JOIN jsonb_each_text(c.channel_versions) v ON v.key = b.channel AND v.value = b.version
         WHERE b.org_id = c.org_id AND b.thread_id = c.thread_id
           AND b.checkpoint_ns = c.checkpoint_ns AND b.blob_type <> 'empty') AS blob_channels,
       (SELECT coalesce(array_agg(b.blob_type ORDER BY b.channel), '{}') FROM checkpoint_blobs b
          JOIN jsonb_each_text(c.channel_versions) v ON v.key = b.channel AND v.value = b.version
         WHERE b.org_id = c.org_id AND b.thread_id = c.thread_id
           AND b.checkpoint_ns = c.checkpoint_ns AND b.blob_type <> 'empty') AS blob_types,
       (SELECT coalesce(array_agg(b.blob ORDER BY b.channel), '{}') FROM checkpoint_blobs b
          JOIN jsonb_each_text(c.channel_versions) v ON v.key = b.channel AND v.value = b.version
         WHERE b.org_id = c.org_id AND b.thread_id = c.thread_id
           AND b.checkpoint_ns = c.checkpoint_ns AND b.blob_type <> 'empty') AS blobs,
       (SELECT coalesce(array_agg(ARRAY[w.task_id, w.channel, w.blob_type]
                                  ORDER BY w.task_path, w.task_id, w.idx), '{}')
          FROM checkpoint_writes w
         WHERE w.org_id = c.org_id AND w.thread_id = c.thread_id
           AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id
       ) AS write_keys,
       (SELECT coalesce(array_agg(w.blob ORDER BY w.task_path, w.task_id, w.idx), '{}')
          FROM checkpoint_writes w
         WHERE w.org_id = c.org_id AND w.thread_id = c.thread_id
           AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id
       ) AS write_blobs
FROM checkpoints c
"""

# A checkpoint with the blobs of its new channel versions, in one statement, and a task's
# writes in one: a statement costs both processes CPU of its own (~25 µs of Postgres's and
# more of the client's, per row of an executemany), more than the rows it adds. The rows
# go as VALUES with a parameter each, not as arrays to unnest: psycopg adapts arrays in
# Python, ~20 µs each (docs/measurements.md, session 16). One statement text per number of
# rows, so each is prepared once; at most _MAX_ROWS rows a statement (a statement carries
# at most 65,535 parameters, and a task's writes can be a fan-out of many thousands).
_MAX_ROWS = 1000
_UPSERT_CHECKPOINT = """
INSERT INTO checkpoints (org_id, thread_id, checkpoint_ns, checkpoint_id,
    parent_checkpoint_id, run_id, checkpoint_type, checkpoint, channel_versions, metadata)
VALUES (%(org)s, %(thread)s, %(ns)s, %(id)s, %(parent)s, %(run)s, %(type)s, %(checkpoint)s,
    %(versions)s, %(metadata)s)
ON CONFLICT (org_id, thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET
    checkpoint_type = excluded.checkpoint_type, checkpoint = excluded.checkpoint,
    channel_versions = excluded.channel_versions, metadata = excluded.metadata
"""
_INSERT_BLOBS = """
INSERT INTO checkpoint_blobs (org_id, thread_id, checkpoint_ns, channel, version, blob_type,
    blob)
VALUES {rows}
ON CONFLICT (org_id, thread_id, checkpoint_ns, channel, version) DO NOTHING
"""
_BLOB_ROW = "(%(org)s, %(thread)s, %(ns)s, %(c{i})s, %(v{i})s, %(t{i})s, %(b{i})s)"
# Regular writes (idx >= 0) are kept on retry; special writes (errors, interrupts) replace.
_INSERT_WRITES = """
INSERT INTO checkpoint_writes (org_id, thread_id, checkpoint_ns, checkpoint_id, task_id,
    idx, channel, blob_type, blob, task_path)
VALUES {rows}
ON CONFLICT (org_id, thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING
"""
_REPLACE = (
    "DO UPDATE SET channel = excluded.channel, blob_type = excluded.blob_type,"
    " blob = excluded.blob, task_path = excluded.task_path\n"
)
_WRITE_ROW = (
    "(%(org)s, %(thread)s, %(ns)s, %(checkpoint)s, %(task)s, %(i{i})s, %(c{i})s, %(t{i})s,"
    " %(b{i})s, %(path)s)"
)


def _rows(row: str, count: int) -> str:
    return ", ".join(row.format(i=i) for i in range(count))


def _chunks(rows: Sequence[Any]) -> list[Sequence[Any]]:
    """`rows` in slices of at most _MAX_ROWS; no rows is one empty slice (a checkpoint
    without new blobs is still upserted)."""
    return [rows[i : i + _MAX_ROWS] for i in range(0, len(rows), _MAX_ROWS)] or [rows]


@functools.lru_cache(maxsize=64)
def _insert_blobs(blobs: int) -> str:
    return _INSERT_BLOBS.format(rows=_rows(_BLOB_ROW, blobs))


@functools.lru_cache(maxsize=64)
def _upsert_checkpoint(blobs: int) -> str:
    """The checkpoint's upsert, with `blobs` blob rows inserted by a CTE."""
    return (
        f"WITH blobs AS ({_insert_blobs(blobs)}){_UPSERT_CHECKPOINT}"
        if blobs
        else _UPSERT_CHECKPOINT
    )


@functools.lru_cache(maxsize=64)
def _insert_writes(writes: int, replace: bool) -> str:
    statement = _INSERT_WRITES.format(rows=_rows(_WRITE_ROW, writes))
    return (statement.removesuffix("DO NOTHING\n") + _REPLACE) if replace else statement


_DELETE_THREAD = [
    f"DELETE FROM {table} WHERE org_id = %s AND thread_id = %s"
    for table in ("checkpoint_writes", "checkpoint_blobs", "checkpoints")
]

_DELETE_FOR_RUNS = [
    """DELETE FROM checkpoint_writes w USING checkpoints c
       WHERE c.org_id = %s AND c.run_id = ANY(%s) AND w.org_id = c.org_id
         AND w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns
         AND w.checkpoint_id = c.checkpoint_id""",
    "DELETE FROM checkpoints WHERE org_id = %s AND run_id = ANY(%s)",
]

# Every checkpoint but the latest of each namespace, then the writes and blobs no kept
# checkpoint refers to (checkpoint ids are time-ordered UUIDs, as LangGraph reads them).
_KEEP_LATEST = [
    """DELETE FROM checkpoints c WHERE c.org_id = %(org)s AND c.thread_id = ANY(%(threads)s)
         AND c.checkpoint_id < (SELECT max(l.checkpoint_id) FROM checkpoints l
             WHERE l.org_id = c.org_id AND l.thread_id = c.thread_id
               AND l.checkpoint_ns = c.checkpoint_ns)""",
    """DELETE FROM checkpoint_writes w WHERE w.org_id = %(org)s
         AND w.thread_id = ANY(%(threads)s) AND NOT EXISTS (SELECT 1 FROM checkpoints c
             WHERE c.org_id = w.org_id AND c.thread_id = w.thread_id
               AND c.checkpoint_ns = w.checkpoint_ns AND c.checkpoint_id = w.checkpoint_id)""",
    """DELETE FROM checkpoint_blobs b WHERE b.org_id = %(org)s
         AND b.thread_id = ANY(%(threads)s) AND NOT EXISTS (SELECT 1 FROM checkpoints c
             WHERE c.org_id = b.org_id AND c.thread_id = b.thread_id
               AND c.checkpoint_ns = b.checkpoint_ns
               AND c.channel_versions ->> b.channel = b.version)""",
]

_COPY_THREAD = [
    """INSERT INTO checkpoints (org_id, thread_id, checkpoint_ns, checkpoint_id,
           parent_checkpoint_id, run_id, checkpoint_type, checkpoint, channel_versions,
           metadata, created_at)
       SELECT org_id, %(target)s::uuid, checkpoint_ns, checkpoint_id, parent_checkpoint_id,
              run_id, checkpoint_type, checkpoint, channel_versions,
              CASE WHEN metadata ? 'thread_id'
                   THEN metadata || jsonb_build_object('thread_id', %(target)s::uuid::text)
                   ELSE metadata END,
              created_at
       FROM checkpoints WHERE org_id = %(org)s AND thread_id = %(source)s""",
    """INSERT INTO checkpoint_blobs (org_id, thread_id, checkpoint_ns, channel, version,
           blob_type, blob)
       SELECT org_id, %(target)s, checkpoint_ns, channel, version, blob_type, blob
       FROM checkpoint_blobs WHERE org_id = %(org)s AND thread_id = %(source)s""",
    """INSERT INTO checkpoint_writes (org_id, thread_id, checkpoint_ns, checkpoint_id,
           task_id, idx, channel, blob_type, blob, task_path)
       SELECT org_id, %(target)s, checkpoint_ns, checkpoint_id, task_id, idx, channel,
              blob_type, blob, task_path
       FROM checkpoint_writes WHERE org_id = %(org)s AND thread_id = %(source)s""",
]


class Latest(NamedTuple):
    """A thread's latest root checkpoint as `select_checkpoint` read it (`row` None: the
    thread had none), carried from the transaction that read it to the one that needs it."""

    thread_id: str
    row: dict[str, Any] | None


async def select_checkpoint(
    conn: AsyncConnection,
    org_id: str,
    thread_id: str,
    checkpoint_ns: str,
    checkpoint_id: str | None = None,
) -> AsyncCursor[dict[str, Any]]:
    """The checkpoint `checkpoint_id` of a thread's namespace, or its latest one.

    Returns the cursor: fetch it after the transaction, and the row arrives with the
    COMMIT (pipeline mode) instead of costing a round trip of its own."""
    params: list[Any] = [org_id, thread_id, checkpoint_ns]
    where = "WHERE c.org_id = %s AND c.thread_id = %s AND c.checkpoint_ns = %s"
    if checkpoint_id:
        where += " AND c.checkpoint_id = %s"
        params.append(checkpoint_id)
    return await conn.execute(f"{_SELECT} {where} ORDER BY c.checkpoint_id DESC LIMIT 1", params)


async def last_of_run(
    conn: AsyncConnection, org_id: str, thread_id: str, run_id: str
) -> AsyncCursor[dict[str, Any]]:
    """The id of the last root checkpoint `run_id` saved on its thread (no row: none yet).
    Returns the cursor, to fetch after COMMIT as in `select_checkpoint`."""
    return await conn.execute(
        """SELECT checkpoint_id FROM checkpoints
           WHERE org_id = %s AND run_id = %s AND thread_id = %s AND checkpoint_ns = ''
           ORDER BY checkpoint_id DESC LIMIT 1""",
        (org_id, run_id, thread_id),
    )


async def select_checkpoints(
    conn: AsyncConnection,
    org_id: str,
    *,
    thread_id: str | None = None,
    checkpoint_ns: str | None = None,
    checkpoint_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    before_id: str | None = None,
    limit: int | None = None,
) -> AsyncCursor[dict[str, Any]]:
    """Checkpoints of the org, newest first, narrowed by each argument given (`metadata`:
    containment). Returns the cursor, to fetch after COMMIT as in `select_checkpoint`."""
    clauses, params = ["c.org_id = %s"], [org_id]
    if thread_id is not None:
        clauses.append("c.thread_id = %s")
        params.append(thread_id)
        if checkpoint_ns is not None:
            clauses.append("c.checkpoint_ns = %s")
            params.append(checkpoint_ns)
        if checkpoint_id:
            clauses.append("c.checkpoint_id = %s")
            params.append(checkpoint_id)
    if metadata:
        clauses.append("c.metadata @> %s")
        params.append(Jsonb(metadata))
    if before_id:
        clauses.append("c.checkpoint_id < %s")
        params.append(before_id)
    query = f"{_SELECT} WHERE {' AND '.join(clauses)} ORDER BY c.checkpoint_id DESC"
    if limit is not None:
        query += " LIMIT %s"
        params.append(int(limit))
    return await conn.execute(query, params)


async def put_checkpoint(
    conn: AsyncConnection,
    org_id: str,
    thread_id: str,
    checkpoint_ns: str,
    *,
    checkpoint_id: str,
    parent_checkpoint_id: str | None,
    run_id: str | None,
    checkpoint_type: str,
    checkpoint: bytes,
    channel_versions: dict[str, str],
    metadata: dict[str, Any],
    blobs: Sequence[tuple[str, str, str, bytes | None]],
) -> None:
    """Upsert a checkpoint and the blobs of its new channel versions, given as
    (channel, version, blob type, blob); a blob row once written never changes."""
    scope = {"org": org_id, "thread": thread_id, "ns": checkpoint_ns}
    *earlier, last = _chunks(blobs)
    for chunk in earlier:
        await conn.execute(_insert_blobs(len(chunk)), {**scope, **_numbered("cvtb", chunk)})
    params = {
        **scope,
        **_numbered("cvtb", last),
        "id": checkpoint_id,
        "parent": parent_checkpoint_id,
        "run": run_id,
        "type": checkpoint_type,
        "checkpoint": checkpoint,
        "versions": Jsonb(channel_versions),
        "metadata": Jsonb(metadata),
    }
    await conn.execute(_upsert_checkpoint(len(last)), params)


def _numbered(names: str, rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Rows as the numbered parameters of _BLOB_ROW or _WRITE_ROW: with `names` "cvtb",
    row i gives c{i}, v{i}, t{i} and b{i}."""
    return {
        f"{name}{i}": value
        for i, row in enumerate(rows)
        for name, value in zip(names, row, strict=True)
    }


async def put_writes(
    conn: AsyncConnection,
    org_id: str,
    thread_id: str,
    checkpoint_ns: str,
    checkpoint_id: str,
    task_id: str,
    task_path: str,
    writes: Sequence[tuple[int, str, str, bytes | None]],
    *,
    replace: bool,
) -> None:
    """Store a task's pending writes, given as (idx, channel, blob type, blob). `replace`:
    special writes (errors, interrupts) overwrite, the last of one idx winning, as one
    statement per write did; regular ones are kept on retry."""
    if not writes:
        return
    if replace:
        writes = list({write[0]: write for write in writes}.values())
    head = {
        "org": org_id,
        "thread": thread_id,
        "ns": checkpoint_ns,
        "checkpoint": checkpoint_id,
        "task": task_id,
        "path": task_path,
    }
    for chunk in _chunks(writes):
        params = {**head, **_numbered("ictb", chunk)}
        await conn.execute(_insert_writes(len(chunk), replace), params)


async def delete_thread(conn: AsyncConnection, org_id: str, thread_id: str) -> None:
    """Every checkpoint, blob and write of a thread."""
    for statement in _DELETE_THREAD:
        await conn.execute(statement, (org_id, thread_id))


async def keep_latest(conn: AsyncConnection, org_id: str, thread_ids: Sequence[Any]) -> None:
    """Drop every checkpoint of the threads but the latest of each namespace, with the
    writes and channel blobs only those referred to: the threads keep their state."""
    for statement in _KEEP_LATEST:
        await conn.execute(statement, {"org": org_id, "threads": list(thread_ids)})


async def delete_for_runs(conn: AsyncConnection, org_id: str, run_ids: list[str]) -> None:
    """The checkpoints the runs wrote (rollback), with their pending writes."""
    for statement in _DELETE_FOR_RUNS:
        await conn.execute(statement, (org_id, run_ids))


async def copy_thread(
    conn: AsyncConnection, org_id: str, source_thread_id: Any, target_thread_id: Any
) -> None:
    """Copy every checkpoint, blob and write of a thread (the target row must exist); the
    copies' metadata names the target thread, as langgraph-api's copies do."""
    params = {"org": org_id, "source": source_thread_id, "target": target_thread_id}
    for statement in _COPY_THREAD:
        await conn.execute(statement, params)
