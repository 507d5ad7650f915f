"""Thread state values as the LangGraph API shows them, from LangGraph's StateSnapshot:
pure functions shared by the executor (a thread's values after a run) and the thread
state use cases (services/thread_state.py), and the text of a message in them for the
channels and A2A, which answer in plain text.
"""

from __future__ import annotations

from typing import Any

import orjson
from langchain_core.runnables import RunnableConfig
from langgraph.types import Interrupt, StateSnapshot

from tenantgraph.runtime import events

__all__ = [
    "EMPTY_STATE",
    "checkpoint_of",
    "interrupts_by_task",
    "jsonable",
    "message_text",
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


def checkpoint_of(config: RunnableConfig | None) -> dict[str, Any] | None:
    """The API's checkpoint object for a config; None unless it names a checkpoint."""
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
    checkpoint = checkpoint_of(state.config)
    parent = checkpoint_of(state.parent_config)
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


def message_text(content: Any) -> str:
    """A message's text: a string, or the text blocks of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""
