"""Thread state (LangGraph checkpoints) in tenant tables, bound to one principal.

Why our own `BaseCheckpointSaver` rather than `langgraph-checkpoint-postgres`: its SQL
(class constants and `ON CONFLICT (thread_id, checkpoint_ns, ...)` targets) has no tenant
column, so two orgs with the same thread id would share rows; making it tenant-aware
means overriding every statement and its private connection handling (`_cursor`), which
ties us to internals that change between releases. This saver keeps its table layout
(checkpoint rows, one blob per channel version, pending writes — see migration 0004),
uses LangGraph's own serializer, and runs every call inside `db.tenant(principal)` (the
SQL is in stores/checkpoints.py), so a graph holding it can reach its own org's threads
and no other, whatever thread id it asks.
Threads are rows of `threads`: checkpoints of a thread that does not exist cannot be written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

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
from psycopg import AsyncConnection

from tenantgraph.db.database import Database
from tenantgraph.errors import Unavailable
from tenantgraph.runtime.group_commit import GroupCommit, together_or_alone
from tenantgraph.runtime.held_writes import HeldWrites, Write, in_order
from tenantgraph.scope import Principal
from tenantgraph.stores import checkpoints as store

__all__ = ["WRITE_RETRY_SECONDS", "TenantCheckpointer"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a checkpoint write keeps retrying through an outage: about a run's lease, past
# which the run is retried elsewhere anyway (from its last saved checkpoint).
WRITE_RETRY_SECONDS = 30.0
_FIRST_DELAY, _MAX_DELAY = 0.05, 1.0

# Writes of one org in flight at once: LangGraph sends a step's task writes and its
# checkpoint together, in the background, and concurrent runs of an org overlap; sharing
# a transaction saves a commit (a WAL flush, ~2 ms on this VM's disk) per write joined.
_WRITE_GROUPS = 2
_GROUPS: weakref.WeakKeyDictionary[Database, GroupCommit[tuple[Principal, Write]]] = (
    weakref.WeakKeyDictionary()
)


async def _write(db: Database, principal: Principal, write: Write) -> None:
    """`write` in the next group commit of `principal`'s org on `db`."""
    group = _GROUPS.get(db)
    if group is None:
        group = _GROUPS[db] = GroupCommit(max_inflight=_WRITE_GROUPS)

    async def run(writes: list[tuple[Principal, Write]]) -> None:
        async with db.tenant(writes[0][0]) as conn:  # the org's, whichever user
            for _, each in writes:
                await each(conn)

    async def flush(writes: list[tuple[Principal, Write]]) -> list[BaseException | None]:
        return await together_or_alone(run, writes)

    await group.submit(principal.org_id, (principal, write), flush)


class TenantCheckpointer(BaseCheckpointSaver[str]):
    """LangGraph's checkpointer contract (async half) for one principal's organisation.

    The org comes from the principal, never from the config: a config naming another
    org's thread id finds nothing, and writes land in the principal's org (and fail on
    the foreign key if the thread is not one of its threads).
    """

    def __init__(
        self,
        db: Database,
        principal: Principal,
        *,
        serde: SerializerProtocol | None = None,
        retry_seconds: float = WRITE_RETRY_SECONDS,
        latest: store.Latest | None = None,
        conn: AsyncConnection | None = None,
        hold: float | None = None,
    ) -> None:
        """`latest`: the thread's latest root checkpoint, read in the transaction that
        claimed the run (services/runs.py) or loaded it (executor.py). The graph's first
        read of it is answered from there, not with a transaction of its own: from that
        commit on the thread is busy with this run, so no other writer can have changed it
        (a state update is refused while it runs).

        `conn`: a transaction of the principal's org (`db.tenant`) to make every call in,
        for a caller whose checkpoint must commit with its other statements or not at all
        (services/thread_state.py). Its writes are neither grouped nor retried.

        `hold`: seconds to hold writes (runtime/held_writes.py), for a run that does not wait
        for them between steps (durability "async" or "exit", see executor.py); a read, a
        delete or a copy commits them first (`flush`), and the run's finish takes the last
        ones into its own transaction (`handing_over`)."""
        super().__init__(serde=serde)
        self.db = db
        self.principal = principal
        self.retry_seconds = retry_seconds
        self._latest = latest
        self._conn = conn
        self._held = HeldWrites(hold, self._commit) if hold is not None else None

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        """The caller's transaction if bound to one, else a new one of the principal's org."""
        if self._conn is not None:
            yield self._conn
        else:
            async with self.db.tenant(self.principal) as conn:
                yield conn

    async def _put(self, write: Write) -> None:
        """`write` in the caller's transaction if bound to one, held (see `hold`), or in
        the org's next group commit."""
        if self._conn is not None:
            await write(self._conn)
        elif self._held is not None:
            self._held.add(write)
        else:
            await self._commit(write)

    async def _commit(self, write: Write) -> None:
        """`write` in the org's next group commit, retried through an outage."""
        await self._retrying(lambda: _write(self.db, self.principal, write))

    async def flush(self) -> None:
        """Commit every held write now, and wait for it."""
        if self._held is not None:
            await self._held.flush()

    def handing_over(self) -> contextlib.AbstractAsyncContextManager[Write]:
        """The held writes as one write, for the caller's transaction (see HeldWrites);
        nothing when this checkpointer holds nothing."""
        if self._held is None:
            return contextlib.nullcontext(in_order([]))
        return self._held.handing_over()

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call` again on a fresh connection, with doubling delays for up to
        `retry_seconds`, while the database is out of reach (a dropped connection, an
        outage): a run's writes outlive a restart of Postgres. Repeating a write is safe,
        as every checkpoint statement is an upsert (one whose COMMIT landed before the
        connection dropped writes the same rows again).

        Bound to a caller's transaction, `call` runs once: that transaction fails whole."""
        if self._conn is not None:
            return await call()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_seconds
        delay = _FIRST_DELAY
        while True:
            try:
                return await call()
            except Unavailable as exc:
                if loop.time() + delay > deadline:
                    raise
                if delay == _FIRST_DELAY:
                    log.warning("checkpoint call failed (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_DELAY)

    @property
    def _org(self) -> str:
        return self.principal.org_id

    # --- reads ---------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = config["configurable"]
        # Only the first read: later ones must see the run's own writes.
        latest, self._latest = self._latest, None
        if (
            latest is not None
            and str(configurable["thread_id"]) == latest.thread_id
            and not configurable.get("checkpoint_ns")
            and not get_checkpoint_id(config)
        ):
            return self._tuple(latest.row) if latest.row else None
        await self.flush()

        async def select() -> dict[str, Any] | None:
            async with self._transaction() as conn:
                cur = await store.select_checkpoint(
                    conn,
                    self._org,
                    configurable["thread_id"],
                    configurable.get("checkpoint_ns", ""),
                    get_checkpoint_id(config),
                )
            # Fetched after COMMIT: the pipeline delivered the rows with it, one round trip.
            return await cur.fetchone()

        row = await self._retrying(select)
        return self._tuple(row) if row else None

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        configurable = config["configurable"] if config else {}
        await self.flush()
        async with self._transaction() as conn:
            cur = await store.select_checkpoints(
                conn,
                self._org,
                thread_id=configurable.get("thread_id") if config else None,
                checkpoint_ns=configurable.get("checkpoint_ns"),
                checkpoint_id=get_checkpoint_id(config) if config else None,
                metadata=filter,
                before_id=get_checkpoint_id(before) if before else None,
                limit=limit,
            )
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
            blobs.append((channel, str(version), kind, blob))
        kind, data = self.serde.dumps_typed(stored)
        # The thread's id too, as langgraph-api's checkpoints carry it (LangGraph leaves it out).
        meta = {**get_serializable_checkpoint_metadata(config, metadata), "thread_id": thread_id}
        run_id = meta.get("run_id")

        async def put(conn: AsyncConnection) -> None:
            await store.put_checkpoint(
                conn,
                self._org,
                thread_id,
                ns,
                checkpoint_id=checkpoint["id"],
                parent_checkpoint_id=configurable.get("checkpoint_id"),
                run_id=str(run_id) if run_id is not None else None,
                checkpoint_type=kind,
                checkpoint=data,
                channel_versions={k: str(v) for k, v in checkpoint["channel_versions"].items()},
                metadata=_jsonable(meta),
                blobs=blobs,
            )

        await self._put(put)
        return _config(thread_id, ns, checkpoint["id"])

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if not writes:
            return
        configurable = config["configurable"]
        serialized = []
        for idx, (channel, value) in enumerate(writes):
            kind, blob = self.serde.dumps_typed(value)
            serialized.append((WRITES_IDX_MAP.get(channel, idx), channel, kind, blob))
        special = all(channel in WRITES_IDX_MAP for channel, _ in writes)

        async def put(conn: AsyncConnection) -> None:
            await store.put_writes(
                conn,
                self._org,
                configurable["thread_id"],
                configurable.get("checkpoint_ns", ""),
                configurable["checkpoint_id"],
                task_id,
                task_path,
                serialized,
                replace=special,
            )

        await self._put(put)

    async def adelete_thread(self, thread_id: str) -> None:
        await self.flush()  # a held write must not land after the delete
        async with self._transaction() as conn:
            await store.delete_thread(conn, self._org, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints a run wrote (rollback), with their pending writes."""
        await self.flush()
        async with self._transaction() as conn:
            await store.delete_for_runs(conn, self._org, [str(r) for r in run_ids])

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, blob and write of a thread (the target row must exist)."""
        await self.flush()
        async with self._transaction() as conn:
            await store.copy_thread(conn, self._org, source_thread_id, target_thread_id)

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
