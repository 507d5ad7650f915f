"""Stream encoding matches the LangGraph API's wire names and payloads."""

from __future__ import annotations

from typing import TypedDict

import orjson
from langchain_core.messages import HumanMessage
from langgraph.graph import START, StateGraph

from tenantgraph.runtime.events import RunEvent, StreamEncoder, dumps, format_sse, mode_matches

from .runtime_fixtures import registry


async def _encode(graph, graph_input, modes, *, subgraphs=False):
    encoder = StreamEncoder(modes, subgraphs)
    out = []
    async for chunk in graph.astream(
        graph_input, stream_mode=encoder.graph_modes, subgraphs=subgraphs
    ):
        out.extend((name, orjson.loads(dumps(data))) for name, data in encoder.encode(chunk))
    return out


async def test_messages_tuple_is_event_messages_with_message_and_metadata():
    graph = await registry().get("agent")
    out = await _encode(graph, {"messages": [HumanMessage("hi", id="h1")]}, ["messages-tuple"])
    assert [name for name, _ in out] == ["messages"]
    message, meta = out[0][1]
    assert message["content"] == "echo: hi" and message["type"] in ("ai", "AIMessageChunk")
    assert meta["langgraph_node"] == "echo"


async def test_messages_mode_sends_metadata_then_complete_messages():
    graph = await registry().get("agent")
    out = await _encode(graph, {"messages": [HumanMessage("hi", id="h1")]}, ["messages"])
    names = [name for name, _ in out]
    assert names == ["messages/metadata", "messages/complete"]
    ((message_id, entry),) = out[0][1].items()
    assert entry["metadata"]["langgraph_node"] == "echo"
    assert out[1][1][0]["id"] == message_id and out[1][1][0]["content"] == "echo: hi"


async def test_only_requested_modes_and_subgraph_namespaces():
    class State(TypedDict):
        n: int

    child = StateGraph(State)
    child.add_node("inc", lambda s: {"n": s["n"] + 1})
    child.add_edge(START, "inc")
    parent = StateGraph(State)
    parent.add_node("child", child.compile())
    parent.add_edge(START, "child")
    graph = parent.compile()

    out = await _encode(graph, {"n": 1}, ["updates"], subgraphs=True)
    names = [name for name, _ in out]
    assert names[-1] == "updates"
    assert out[-1][1] == {"child": {"n": 2}}
    nested = [n for n in names if n != "updates"]
    assert nested and all(n.startswith("updates|child:") for n in nested)
    assert await _encode(graph, {"n": 1}, ["values"]) == [
        ("values", {"n": 1}),
        ("values", {"n": 2}),
    ]


def test_sse_frames_and_join_filters():
    event = RunEvent("1-0", "messages", b'[{"a":1},{}]')
    assert format_sse(event) == b'event: messages\r\ndata: [{"a":1},{}]\r\nid: 1-0\r\n\r\n'
    assert format_sse(event, with_id=False) == b'event: messages\r\ndata: [{"a":1},{}]\r\n\r\n'
    assert mode_matches("messages/partial", ["messages-tuple"])
    assert mode_matches("updates|child:1", ["updates"])
    assert mode_matches("metadata", ["values"]) and mode_matches("error", ["values"])
    assert not mode_matches("updates", ["values"])
    assert mode_matches("custom", [])
