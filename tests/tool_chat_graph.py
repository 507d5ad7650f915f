"""A chat graph with a model's streamed tokens and a tool call, without an LLM: LangChain's
agent first asks for the `lookup` tool, then LangChain's fake chat model streams the answer
word by word (each word a `messages` event), as a tool-calling agent on a real model does."""

from typing import Annotated

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def agent(state: State) -> dict:
    last = state["messages"][-1]
    if not isinstance(last, ToolMessage):
        # The fake model streams text only (it drops tool calls), so the call is returned.
        call = {"name": "lookup", "args": {"q": last.text}, "id": f"call-{len(state['messages'])}"}
        return {"messages": [AIMessage(content="", tool_calls=[call])]}
    reply = AIMessage(content=f"the tool found {last.text} for you, word by word")
    model = GenericFakeChatModel(messages=iter([reply]))
    return {"messages": [model.invoke(state["messages"])]}


def lookup(state: State) -> dict:
    call = state["messages"][-1].tool_calls[0]
    found = f"{len(call['args']['q'])} letters"
    return {"messages": [ToolMessage(found, tool_call_id=call["id"], name="lookup")]}


def route(state: State) -> str:
    return "lookup" if state["messages"][-1].tool_calls else END


builder = StateGraph(State)
builder.add_node("agent", agent)
builder.add_node("lookup", lookup)
builder.add_edge(START, "agent")
builder.add_conditional_edges("agent", route, ["lookup", END])
builder.add_edge("lookup", "agent")
graph = builder.compile()
