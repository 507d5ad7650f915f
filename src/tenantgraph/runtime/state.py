"""Thread state as the LangGraph API shows it: get_state, history, update_state, copy.

A thread's graph is the one its last run used (`metadata.graph_id`); the graph is given a
`TenantCheckpointer` for the caller's org, so a thread id of another org shows an empty
state, exactly like an unknown one.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from langchain_core.runnables import RunnableConfig
from langgraph.pregel import Pregel
from langgraph.types import Interrupt, StateSnapshot

from tenantgraph.db.database import Database
from tenantgraph.runtime import events
from tenantgraph.runtime.checkpointer import TenantCheckpointer
from tenantgraph.runtime.graphs import GraphRegistry
from tenantgraph.runtime.runs import InvalidRun, RunConflict, RunNotFound
from tenantgraph.scope import Principal
from tenantgraph.stores import runs as store

__all__ = [
    "EMPTY_STATE",
    "ThreadStates",
    "interrupts_by_task",
    "jsonable",
    "snapshot_to_thread_state",
]

EMPTY_STATE: dict[str, Any] = {
    "values": {},
    "next": [],
    "tasks": [],
    "metadata": None,
    "created_at": None,
    "checkpoint": None,
    "parent_checkpoint": None,
    "interrupts": [],
    "checkpoint_id": None,
    "parent_checkpoint_id": None,
}


def jsonable(value: Any) -> Any:
    """Plain JSON values (messages as dicts …), as they go on the wire and into jsonb."""
    return orjson.loads(events.dumps(value))


def _checkpoint(config: RunnableConfig | None) -> dict[str, Any] | None:
    configurable = (config or {}).get("configurable") or {}
    if not configurable.get("thread_id") or not configurable.get("checkpoint_id"):
        return None
    checkpoint = {
        "thread_id": configurable["thread_id"],
        "checkpoint_ns": configurable.get("checkpoint_ns") or "",
        "checkpoint_id": configurable["checkpoint_id"],
    }
    if "checkpoint_map" in configurable:
        checkpoint["checkpoint_map"] = configurable["checkpoint_map"]
    return checkpoint


def _interrupt(interrupt: Interrupt) -> dict[str, Any]:
    return {"id": interrupt.id, "value": interrupt.value}


def interrupts_by_task(state: StateSnapshot) -> dict[str, list[dict[str, Any]]]:
    """The thread's `interrupts` field: task id → its pending interrupts."""
    return {t.id: [_interrupt(i) for i in t.interrupts] for t in state.tasks if t.interrupts}


def snapshot_to_thread_state(state: StateSnapshot) -> dict[str, Any]:
    """LangGraph's StateSnapshot in the API's ThreadState shape (langgraph-api state.py)."""
    tasks = [
        {
            "id": t.id,
            "name": t.name,
            "path": t.path,
            "error": t.error,
            "interrupts": [_interrupt(i) for i in t.interrupts],
            "checkpoint": t.state["configurable"]
            if t.state is not None and not isinstance(t.state, StateSnapshot)
            else None,
            "state": snapshot_to_thread_state(t.state)
            if isinstance(t.state, StateSnapshot)
            else None,
            "result": getattr(t, "result", None),
        }
        for t in state.tasks
    ]
    checkpoint = _checkpoint(state.config)
    parent = _checkpoint(state.parent_config)
    return jsonable(
        {
            "values": state.values,
            "next": list(state.next),
            "tasks": tasks,
            "metadata": state.metadata,
            "created_at": state.created_at,
            "checkpoint": checkpoint,
            "parent_checkpoint": parent,
            "interrupts": [_interrupt(i) for i in state.interrupts],
            "checkpoint_id": checkpoint["checkpoint_id"] if checkpoint else None,
            "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
        }
    )


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

    async def _graph(
        self, principal: Principal, thread_id: uuid.UUID, *, lock: bool = False
    ) -> tuple[Pregel | None, dict[str, Any]]:
        async with self.db.tenant(principal) as conn:
            thread = await store.lock_thread(conn, principal, thread_id)
            if thread is None:
                raise RunNotFound("Thread not found")
            busy = bool(await store.active_runs(conn, thread_id)) if lock else False
        if busy:
            raise RunConflict("Thread is busy with a run; update its state when it ends.")
        graph_id = (thread["metadata"] or {}).get("graph_id")
        if not graph_id or graph_id not in self.registry:
            return None, thread
        config = _thread_config(principal, thread_id)
        graph = await self.registry.get(graph_id, config)
        return graph.copy(update={"checkpointer": TenantCheckpointer(self.db, principal)}), thread

    async def get(
        self,
        principal: Principal,
        thread_id: uuid.UUID,
        checkpoint: dict[str, Any] | None = None,
        *,
        subgraphs: bool = False,
    ) -> dict[str, Any]:
        """`GET /threads/{id}/state[/{checkpoint_id}]`, `POST …/state/checkpoint`."""
        graph, _ = await self._graph(principal, thread_id)
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
        graph, _ = await self._graph(principal, thread_id)
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
        graph, _ = await self._graph(principal, thread_id, lock=True)
        if graph is None:
            raise InvalidRun("Thread has no graph ID; run it once before updating its state.")
        config = _thread_config(principal, thread_id, checkpoint)
        new_config = await graph.aupdate_state(config, values, as_node=as_node)
        state = await graph.aget_state(_thread_config(principal, thread_id))
        async with self.db.tenant(principal) as conn:
            await store.settle_thread(
                conn,
                principal.org_id,
                thread_id,
                "interrupted" if state.next else "idle",
                values=jsonable(state.values),
                interrupts=interrupts_by_task(state),
            )
        saved = _checkpoint(new_config)
        return {
            "checkpoint": saved,
            "configurable": saved,
            "checkpoint_id": saved and saved["checkpoint_id"],
        }

    async def copy(self, principal: Principal, source: uuid.UUID, target: uuid.UUID) -> None:
        """Copy the checkpoints of `source` to `target` (both threads must be visible)."""
        async with self.db.tenant(principal) as conn:
            for thread_id in (source, target):
                if await store.lock_thread(conn, principal, thread_id) is None:
                    raise RunNotFound("Thread not found")
        await TenantCheckpointer(self.db, principal).acopy_thread(str(source), str(target))
