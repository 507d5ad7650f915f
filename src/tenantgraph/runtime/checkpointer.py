"""Thread state (LangGraph checkpoints) in tenant tables, bound to one principal.

Why our own `BaseCheckpointSaver` rather than `langgraph-checkpoint-postgres`: its SQL
(class constants and `ON CONFLICT (thread_id, checkpoint_ns, ...)` targets) has no tenant
column, so two orgs with the same thread id would share rows; making it tenant-aware
means overriding every statement and its private connection handling (`_cursor`), which
ties us to internals that change between releases. This saver keeps its table layout
(checkpoint rows, one blob per channel version, pending writes — see migration 0004),
uses LangGraph's own serializer, and runs every call inside `db.tenant(principal)`, so a
graph holding it can reach its own org's threads and no other, whatever thread id it asks.
Threads are rows of `threads`: checkpoints of a thread that does not exist cannot be written.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from psycopg.types.json import Jsonb

from tenantgraph.db.database import Database
from tenantgraph.scope import Principal

__all__ = ["TenantCheckpointer"]

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

_UPSERT_BLOB = """
INSERT INTO checkpoint_blobs
    (org_id, thread_id, checkpoint_ns, channel, version, blob_type, blob)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (org_id, thread_id, checkpoint_ns, channel, version) DO NOTHING
"""

_UPSERT_CHECKPOINT = """
INSERT INTO checkpoints (org_id, thread_id, checkpoint_ns, checkpoint_id,
    parent_checkpoint_id, run_id, checkpoint_type, checkpoint, channel_versions, metadata)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (org_id, thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET
    checkpoint_type = excluded.checkpoint_type, checkpoint = excluded.checkpoint,
    channel_versions = excluded.channel_versions, metadata = excluded.metadata
"""

# Regular writes (idx >= 0) are kept on retry; special writes (errors, interrupts) replace.
_INSERT_WRITE = """
INSERT INTO checkpoint_writes (org_id, thread_id, checkpoint_ns, checkpoint_id, task_id,
    idx, channel, blob_type, blob, task_path)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (org_id, thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING
"""
_UPSERT_WRITE = (
    _INSERT_WRITE.removesuffix("DO NOTHING\n")
    + "DO UPDATE SET channel = excluded.channel, blob_type = excluded.blob_type,"
    " blob = excluded.blob, task_path = excluded.task_path\n"
)

_COPY_THREAD = [
    """INSERT INTO checkpoints (org_id, thread_id, checkpoint_ns, checkpoint_id,
           parent_checkpoint_id, run_id, checkpoint_type, checkpoint, channel_versions,
           metadata, created_at)
       SELECT org_id, %(target)s, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id,
              checkpoint_type, checkpoint, channel_versions, metadata, created_at
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


class TenantCheckpointer(BaseCheckpointSaver[str]):
    """LangGraph's checkpointer contract (async half) for one principal's organisation.

    The org comes from the principal, never from the config: a config naming another
    org's thread id finds nothing, and writes land in the principal's org (and fail on
    the foreign key if the thread is not one of its threads).
    """

    def __init__(
        self, db: Database, principal: Principal, *, serde: SerializerProtocol | None = None
    ) -> None:
        super().__init__(serde=serde)
        self.db = db
        self.principal = principal

    @property
    def _org(self) -> str:
        return self.principal.org_id

    # --- reads ---------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = config["configurable"]
        params: list[Any] = [self._org, configurable["thread_id"]]
        where = "WHERE c.org_id = %s AND c.thread_id = %s AND c.checkpoint_ns = %s"
        params.append(configurable.get("checkpoint_ns", ""))
        if checkpoint_id := get_checkpoint_id(config):
            where += " AND c.checkpoint_id = %s"
            params.append(checkpoint_id)
        query = f"{_SELECT} {where} ORDER BY c.checkpoint_id DESC LIMIT 1"
        async with self.db.tenant(self.principal) as conn:
            cur = await conn.execute(query, params)
        # Fetched after COMMIT: the pipeline delivered the rows with it, one round trip.
        row = await cur.fetchone()
        return self._tuple(row) if row else None

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        clauses, params = ["c.org_id = %s"], [self._org]
        if config:
            configurable = config["configurable"]
            clauses.append("c.thread_id = %s")
            params.append(configurable["thread_id"])
            if (ns := configurable.get("checkpoint_ns")) is not None:
                clauses.append("c.checkpoint_ns = %s")
                params.append(ns)
            if checkpoint_id := get_checkpoint_id(config):
                clauses.append("c.checkpoint_id = %s")
                params.append(checkpoint_id)
        if filter:
            clauses.append("c.metadata @> %s")
            params.append(Jsonb(filter))
        if before and (before_id := get_checkpoint_id(before)):
            clauses.append("c.checkpoint_id < %s")
            params.append(before_id)
        query = f"{_SELECT} WHERE {' AND '.join(clauses)} ORDER BY c.checkpoint_id DESC"
        if limit is not None:
            query += " LIMIT %s"
            params.append(int(limit))
        async with self.db.tenant(self.principal) as conn:
            cur = await conn.execute(query, params)
        rows = await cur.fetchall()  # after COMMIT, as in aget_tuple
        for row in rows:
            yield self._tuple(row)

    def _tuple(self, row: dict[str, Any]) -> CheckpointTuple:
        thread_id, ns = row["thread_id"], row["checkpoint_ns"]
        checkpoint: Checkpoint = self.serde.loads_typed((row["checkpoint_type"], row["checkpoint"]))
        channel_values = {
            channel: self.serde.loads_typed((kind, blob))
            for channel, kind, blob in zip(
                row["blob_channels"], row["blob_types"], row["blobs"], strict=True
            )
        }
        writes = [
            (task_id, channel, self.serde.loads_typed((kind, blob)))
            for (task_id, channel, kind), blob in zip(
                row["write_keys"], row["write_blobs"], strict=True
            )
        ]
        parent = row["parent_checkpoint_id"]
        return CheckpointTuple(
            config=_config(thread_id, ns, row["checkpoint_id"]),
            checkpoint={**checkpoint, "channel_values": channel_values},
            metadata=row["metadata"],
            parent_config=_config(thread_id, ns, parent) if parent else None,
            pending_writes=writes,
        )

    # --- writes --------------------------------------------------------------------

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = config["configurable"]
        thread_id = configurable["thread_id"]
        ns = configurable.get("checkpoint_ns", "")
        stored = dict(checkpoint)
        values = stored.pop("channel_values")
        blobs = []
        for channel, version in new_versions.items():
            kind, blob = (
                self.serde.dumps_typed(values[channel]) if channel in values else ("empty", None)
            )
            blobs.append((self._org, thread_id, ns, channel, str(version), kind, blob))
        kind, data = self.serde.dumps_typed(stored)
        meta = get_serializable_checkpoint_metadata(config, metadata)
        run_id = meta.get("run_id")
        async with self.db.tenant(self.principal) as conn:
            if blobs:
                async with conn.cursor() as cur:
                    await cur.executemany(_UPSERT_BLOB, blobs)
            await conn.execute(
                _UPSERT_CHECKPOINT,
                (
                    self._org,
                    thread_id,
                    ns,
                    checkpoint["id"],
                    configurable.get("checkpoint_id"),
                    str(run_id) if run_id is not None else None,
                    kind,
                    data,
                    Jsonb({k: str(v) for k, v in checkpoint["channel_versions"].items()}),
                    Jsonb(_jsonable(meta)),
                ),
            )
        return _config(thread_id, ns, checkpoint["id"])

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        configurable = config["configurable"]
        rows = []
        for idx, (channel, value) in enumerate(writes):
            kind, blob = self.serde.dumps_typed(value)
            rows.append(
                (
                    self._org,
                    configurable["thread_id"],
                    configurable.get("checkpoint_ns", ""),
                    configurable["checkpoint_id"],
                    task_id,
                    WRITES_IDX_MAP.get(channel, idx),
                    channel,
                    kind,
                    blob,
                    task_path,
                )
            )
        if not rows:
            return
        special = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        async with self.db.tenant(self.principal) as conn, conn.cursor() as cur:
            await cur.executemany(_UPSERT_WRITE if special else _INSERT_WRITE, rows)

    async def adelete_thread(self, thread_id: str) -> None:
        async with self.db.tenant(self.principal) as conn:
            for table in ("checkpoint_writes", "checkpoint_blobs", "checkpoints"):
                await conn.execute(
                    f"DELETE FROM {table} WHERE org_id = %s AND thread_id = %s",
                    (self._org, thread_id),
                )

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints a run wrote (rollback), with their pending writes."""
        ids = [str(r) for r in run_ids]
        async with self.db.tenant(self.principal) as conn:
            await conn.execute(
                """DELETE FROM checkpoint_writes w USING checkpoints c
                   WHERE c.org_id = %s AND c.run_id = ANY(%s) AND w.org_id = c.org_id
                     AND w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns
                     AND w.checkpoint_id = c.checkpoint_id""",
                (self._org, ids),
            )
            await conn.execute(
                "DELETE FROM checkpoints WHERE org_id = %s AND run_id = ANY(%s)", (self._org, ids)
            )

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, blob and write of a thread (the target row must exist)."""
        params = {"org": self._org, "source": source_thread_id, "target": target_thread_id}
        async with self.db.tenant(self.principal) as conn:
            for statement in _COPY_THREAD:
                await conn.execute(statement, params)

    def get_next_version(self, current: str | None, channel: None = None) -> str:
        """`<counter>.<random>` like LangGraph's savers: forks of a thread never reuse a
        version string for a different value, so blob rows are never overwritten."""
        counter = 0 if current is None else int(str(current).split(".")[0])
        return f"{counter + 1:032}.{random.random():016}"  # noqa: S311


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def _jsonable(value: Any) -> Any:
    """Metadata as JSON (filterable with @>), dropping NUL characters Postgres rejects."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str):
        return value.replace("\x00", "")
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)
