"""Replies with the permissions the run's credential carried (langgraph_auth_permissions)
and the user the auth handler returned (langgraph_auth_user)."""

import json

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, MessagesState, StateGraph


def tell(state: MessagesState, config: RunnableConfig) -> dict:
    configurable = config["configurable"]
    user = configurable["langgraph_auth_user"]
    told = {
        "permissions": configurable.get("langgraph_auth_permissions"),
        "user": {**dict(user), "identity": user.identity, "display_name": user.display_name},
    }
    return {"messages": [AIMessage(content=json.dumps(told))]}


builder = StateGraph(MessagesState)
builder.add_node("tell", tell)
builder.add_edge(START, "tell")
builder.add_edge("tell", END)
graph = builder.compile()
