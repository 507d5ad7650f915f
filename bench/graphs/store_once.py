"""The peer bench's graph: one store write and one store read per run, as a memory agent
makes. Imports nothing of tenantgraph, so `langgraph dev` loads it as it is."""

from typing import Annotated

from langchain_core.messages import AIMessage, AnyMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.store.base import BaseStore
from typing_extensions import TypedDict


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


async def remember(state: State, config: RunnableConfig, *, store: BaseStore) -> dict:
    key = config["configurable"]["thread_id"]
    text = state["messages"][-1].text if state["messages"] else ""
    await store.aput(("bench", "runs"), key, {"text": text})
    item = await store.aget(("bench", "runs"), key)
    return {"messages": [AIMessage(content=f"stored: {item.value['text']}")]}


builder = StateGraph(State)
builder.add_node("remember", remember)
builder.add_edge(START, "remember")
builder.add_edge("remember", END)
graph = builder.compile()
