"""Human in the loop: asks for approval with `interrupt()` and resumes with the answer.

Resume with `Command(resume="yes")` (HTTP: `"command": {"resume": "yes"}`).
"""

from typing import Annotated

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import interrupt
from typing_extensions import TypedDict


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    approved: bool


def draft(state: State) -> dict:
    return {"messages": [AIMessage(content="draft: ready to send")]}


def review(state: State) -> dict:
    answer = interrupt({"question": "send the draft?"})
    approved = str(answer).lower() in {"yes", "y", "true"}
    verdict = "sent" if approved else "discarded"
    return {"approved": approved, "messages": [AIMessage(content=verdict)]}


builder = StateGraph(State)
builder.add_node("draft", draft)
builder.add_node("review", review)
builder.add_edge(START, "draft")
builder.add_edge("draft", "review")
builder.add_edge("review", END)
graph = builder.compile()
