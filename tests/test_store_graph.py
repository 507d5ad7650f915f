"""An unmodified LangGraph app runs against TenantStore, from async and from sync nodes."""

from __future__ import annotations

from typing import TypedDict

from langgraph.config import get_store
from langgraph.graph import END, START, StateGraph

from tenantgraph.scope import memory_namespace

from .store_support import create_org, store


class State(TypedDict, total=False):
    text: str
    recalled: list[str]


async def remember(state: State, config) -> State:
    namespace = memory_namespace(config, "memories")
    await get_store().aput(namespace, "latest", {"text": state["text"]})
    return {}


def recall(state: State, config) -> State:
    """A sync node: LangGraph runs it in a worker thread, where the sync API is used."""
    namespace = memory_namespace(config, "memories")
    hits = get_store().search(namespace, query=state["text"])
    return {"recalled": [h.value["text"] for h in hits]}


def _graph(checkpointer_free_store):
    builder = StateGraph(State)
    builder.add_node("remember", remember)
    builder.add_node("recall", recall)
    builder.add_edge(START, "remember")
    builder.add_edge("remember", "recall")
    builder.add_edge("recall", END)
    return builder.compile(store=checkpointer_free_store)


async def test_graph_nodes_use_the_store_bound_to_the_runs_principal(resources, org_ids):
    org = org_ids[0]
    await create_org(resources, org)
    config = {"configurable": {"assistant_id": "a1"}}
    alice, bob = store(resources, org, "alice"), store(resources, org, "bob")
    out = await _graph(alice).ainvoke({"text": "alice likes green tea"}, config)
    assert out["recalled"] == ["alice likes green tea"]
    out = await _graph(bob).ainvoke({"text": "bob likes coffee"}, config)
    assert out["recalled"] == ["bob likes coffee"], "same namespace, but only bob's own item"
    assert (await alice.aget(("a1", "memories"), "latest")).value == {
        "text": "alice likes green tea"
    }
