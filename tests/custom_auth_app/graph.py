"""Replies with the permissions the run's credential carried (langgraph_auth_permissions)."""

import json

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, MessagesState, StateGraph


def tell(state: MessagesState, config: RunnableConfig) -> dict:
    permissions = config["configurable"].get("langgraph_auth_permissions")
    return {"messages": [AIMessage(content=json.dumps(permissions))]}


builder = StateGraph(MessagesState)
builder.add_node("tell", tell)
builder.add_edge(START, "tell")
builder.add_edge("tell", END)
graph = builder.compile()
