"""A graph with a subgraph that asks a question: for `stream_subgraphs` and for thread
state with `subgraphs=True` (the interrupt sits inside the child).

Resume with `Command(resume=<answer>)`; the answer lands in the parent's `answer`.
"""

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    topic: str
    answer: str


def prepare(state: State) -> dict:
    return {"topic": (state.get("topic") or "nothing").upper()}


def ask(state: State) -> dict:
    return {"answer": str(interrupt({"question": f"about {state['topic']}?"}))}


child_builder = StateGraph(State)
child_builder.add_node("ask", ask)
child_builder.add_edge(START, "ask")
child_builder.add_edge("ask", END)
child = child_builder.compile()

builder = StateGraph(State)
builder.add_node("prepare", prepare)
builder.add_node("child", child)
builder.add_edge(START, "prepare")
builder.add_edge("prepare", "child")
builder.add_edge("child", END)
graph = builder.compile()
