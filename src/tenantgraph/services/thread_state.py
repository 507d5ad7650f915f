"""Thread state as the LangGraph API shows it: get_state, history, update_state, and the
copy of a thread with its checkpoints.

A thread's graph is the one its last run used (`metadata.graph_id`); the graph is given a
`TenantCheckpointer` for the caller's org, so a thread id of another org shows an empty
state, exactly like an unknown one.
"""

from __future__ import annotations

import uuid
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.pregel import Pregel

from tenantgraph.db.database import Database
from tenantgraph.runtime.checkpointer import TenantCheckpointer
from tenantgraph.runtime.graphs import GraphRegistry
from tenantgraph.runtime.state_values import (
    EMPTY_STATE,
    checkpoint_of,
    interrupts_by_task,
    jsonable,
    snapshot_to_thread_state,
)
from tenantgraph.scope import Principal
from tenantgraph.services.runs import InvalidRun, RunConflict, RunNotFound
from tenantgraph.stores import checkpoints as checkpoint_store
from tenantgraph.stores import runs as store
from tenantgraph.stores import threads as thread_store

__all__ = ["EMPTY_STATE", "ThreadStates"]


def _thread_config(
    principal: Principal, thread_id: uuid.UUID, checkpoint: dict[str, Any] | None = None
) -> RunnableConfig:
    configurable: dict[str, Any] = {
        k: v for k, v in (checkpoint or {}).items() if v is not None and k != "thread_id"
    }
    configurable.update(
        thread_id=str(thread_id), org_id=principal.org_id, user_id=principal.user_id
    )
    return {"configurable": configurable}


class ThreadStates:
    """Checkpointed state of the threads a principal may see."""

    def __init__(self, db: Database, registry: GraphRegistry) -> None:
        self.db = db
        self.registry = registry

    async def _graph(self, principal: Principal, thread_id: uuid.UUID) -> Pregel | None:
        """The thread's graph with a checkpointer of the principal's org; None before the
        thread's first run."""
        async with self.db.tenant(principal) as conn:
            thread = await store.find_thread(conn, principal, thread_id)
        return await self._bind(
            principal, thread_id, thread, TenantCheckpointer(self.db, principal)
        )

    async def _bind(
        self,
        principal: Principal,
        thread_id: uuid.UUID,
        thread: dict[str, Any] | None,
        checkpointer: TenantCheckpointer,
    ) -> Pregel | None:
        """The graph of `thread` (as `find_thread` or `lock_thread` read it) holding
        `checkpointer`; None before the thread's first run."""
        if thread is None:
            raise RunNotFound("Thread not found")
        graph_id = (thread["metadata"] or {}).get("graph_id")
        if not graph_id or graph_id not in self.registry:
            return None
        graph = await self.registry.get(graph_id, _thread_config(principal, thread_id))
        return graph.copy(update={"checkpointer": checkpointer})

    async def get(
        self,
        principal: Principal,
        thread_id: uuid.UUID,
        checkpoint: dict[str, Any] | None = None,
        *,
        subgraphs: bool = False,
    ) -> dict[str, Any]:
        """`GET /threads/{id}/state[/{checkpoint_id}]`, `POST …/state/checkpoint`."""
        graph = await self._graph(principal, thread_id)
        if graph is None:
            return dict(EMPTY_STATE)
        config = _thread_config(principal, thread_id, checkpoint)
        state = await graph.aget_state(config, subgraphs=subgraphs)
        if checkpoint and checkpoint.get("checkpoint_id") and not state.config:
            raise RunNotFound("Checkpoint not found")
        return snapshot_to_thread_state(state)

    async def history(
        self,
        principal: Principal,
        thread_id: uuid.UUID,
        *,
        limit: int = 10,
        before: str | dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        checkpoint: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """`POST /threads/{id}/history`, newest first; `[]` for a thread with no graph."""
        graph = await self._graph(principal, thread_id)
        if graph is None:
            return []
        if isinstance(before, str):
            before = {"checkpoint_id": before}
        config = _thread_config(principal, thread_id, checkpoint)
        before_config = _thread_config(principal, thread_id, before) if before else None
        return [
            snapshot_to_thread_state(state)
            async for state in graph.aget_state_history(
                config, filter=metadata or None, before=before_config, limit=limit
            )
        ]

    async def update(
        self,
        principal: Principal,
        thread_id: uuid.UUID,
        values: Any,
        *,
        as_node: str | None = None,
        checkpoint: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`POST /threads/{id}/state`: a new checkpoint with `values` applied as `as_node`.
        RunConflict while runs are pending or running; InvalidRun before any run."""
        # Checked and written in one transaction that holds the thread's lock, the one run
        # creation takes: a run created meanwhile waits for this commit and starts from the
        # update, and an update that fails half way leaves no checkpoint behind.
        async with self.db.tenant(principal) as conn:
            thread = await store.lock_thread(conn, principal, thread_id)
            if thread is not None and await store.active_runs(conn, thread_id):
                raise RunConflict("Thread is busy with a run; update its state when it ends.")
            checkpointer = TenantCheckpointer(self.db, principal, conn=conn)
            graph = await self._bind(principal, thread_id, thread, checkpointer)
            if graph is None:
                raise InvalidRun("Thread has no graph ID; run it once before updating its state.")
            config = _thread_config(principal, thread_id, checkpoint)
            config["metadata"] = {"graph_id": thread["metadata"]["graph_id"]}
            new_config = await graph.aupdate_state(config, values, as_node=as_node)
            state = await graph.aget_state(_thread_config(principal, thread_id))
            await store.settle_thread(
                conn,
                principal.org_id,
                thread_id,
                "interrupted" if state.next else "idle",
                values=jsonable(state.values),
                interrupts=interrupts_by_task(state),
            )
        saved = checkpoint_of(new_config)
        return {
            "checkpoint": saved,
            "configurable": saved,
            "checkpoint_id": saved and saved["checkpoint_id"],
        }

    async def copy_thread(self, principal: Principal, thread_id: uuid.UUID) -> dict[str, Any]:
        """`POST /threads/{id}/copy`: a new thread of the caller's with the source's
        metadata, values and every checkpoint, in one transaction (all or nothing)."""
        async with self.db.tenant(principal) as conn:
            copied = await thread_store.copy(conn, principal, thread_id)
            if copied is None:
                raise RunNotFound(f"thread {thread_id} not found")
            await checkpoint_store.copy_thread(
                conn, principal.org_id, thread_id, copied["thread_id"]
            )
        return copied
