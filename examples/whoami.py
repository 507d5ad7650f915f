"""A graph written for LangGraph Platform: it greets the caller the server authenticated,
read from `config["configurable"]["langgraph_auth_user"]`, and its state is a plain
`typing.TypedDict` (what pydantic refuses to build a schema from on Python 3.11)."""

from typing import TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    greeting: str
    identity: str
    permissions: list[str]


def greet(state: State, config: RunnableConfig) -> dict:
    configurable = config["configurable"]
    user = configurable.get("langgraph_auth_user")
    identity = user.identity if user is not None else "anonymous"
    return {
        "greeting": f"hello {getattr(user, 'display_name', identity)}",
        "identity": identity,
        "permissions": list(configurable.get("langgraph_auth_permissions") or []),
    }


builder = StateGraph(State)
builder.add_node("greet", greet)
builder.add_edge(START, "greet")
builder.add_edge("greet", END)
graph = builder.compile()
