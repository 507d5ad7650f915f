"""The smallest chat graph: replies with the text of the last message. Needs no LLM."""

from typing import Annotated

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def echo(state: State) -> dict:
    last = state["messages"][-1] if state["messages"] else None
    # `.text`: a UI sends content blocks (`[{"type": "text", ...}]`), a script a string.
    text = last.text if last is not None else ""
    return {"messages": [AIMessage(content=f"echo: {text}")]}


builder = StateGraph(State)
builder.add_node("echo", echo)
builder.add_edge(START, "echo")
builder.add_edge("echo", END)
graph = builder.compile()
