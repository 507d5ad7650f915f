"""Long-term memory: remembers every user message and says how many it knows.

The namespace comes from `scope.memory_namespace(config)` (this assistant's memories);
the server binds the store to the caller, so the same namespace holds each user's own items.
"""

import uuid
from typing import Annotated

from langchain_core.messages import AIMessage, AnyMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.store.base import BaseStore
from typing_extensions import TypedDict

from tenantgraph.scope import memory_namespace


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


async def remember(state: State, config: RunnableConfig, *, store: BaseStore) -> dict:
    namespace = memory_namespace(config)
    user_id = config["configurable"]["user_id"]
    text = state["messages"][-1].text if state["messages"] else ""  # string or blocks
    await store.aput(namespace, str(uuid.uuid4()), {"text": text, "user_id": user_id})
    known = await store.asearch(namespace, limit=100)
    texts = sorted(item.value["text"] for item in known)
    return {"messages": [AIMessage(content=f"{user_id} told me {len(texts)}: {texts}")]}


builder = StateGraph(State)
builder.add_node("remember", remember)
builder.add_edge(START, "remember")
builder.add_edge("remember", END)
graph = builder.compile()
