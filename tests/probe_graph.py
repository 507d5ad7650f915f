"""A graph that reports the server-owned keys it was given: in its config's `configurable`
and in its runtime context (what tests/test_runtime_server_keys.py checks)."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

# The keys a forged request names; `__pregel_store` is one LangGraph itself reads.
PROBED = (
    "org_id",
    "user_id",
    "assistant_id",
    "thread_id",
    "run_id",
    "graph_id",
    "langgraph_auth_user_id",
    "langgraph_auth_user",
    "langgraph_auth_permissions",
    "__pregel_store",
    "__pregel_forged",
)


class State(TypedDict, total=False):
    note: str
    seen_config: dict[str, Any]
    seen_context: dict[str, Any]


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | list | dict) else repr(value)


def probe(state: State, config: RunnableConfig, runtime: Runtime) -> dict:
    configurable = config["configurable"]
    return {
        "seen_config": {k: _plain(configurable[k]) for k in PROBED if k in configurable},
        "seen_context": dict(runtime.context or {}),
    }


builder = StateGraph(State)
builder.add_node("probe", probe)
builder.add_edge(START, "probe")
builder.add_edge("probe", END)
graph = builder.compile()
