"""`tenantgraph serve --reload`: a change to a graph's source is served without a restart
by hand, as `langgraph dev` does, while the embedded servers keep running."""

from __future__ import annotations

import asyncio
import json

from langgraph_sdk import get_client

from .api_fixtures import JWT_SECRET, mint
from .servers import ServerProcess

GRAPH = """
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict):
    said: str


def speak(state: State) -> dict:
    return {{"said": "{word}"}}


builder = StateGraph(State)
builder.add_node("speak", speak)
builder.add_edge(START, "speak")
builder.add_edge("speak", END)
graph = builder.compile()
"""


async def test_a_changed_graph_is_served_after_a_reload(api_env, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "speaker.py").write_text(GRAPH.format(word="first"))
    config = project / "langgraph.json"
    config.write_text(json.dumps({"graphs": {"speaker": "./speaker.py:graph"}}))
    server = ServerProcess(
        tmp_path / "data",
        env={**api_env, "TENANTGRAPH_JWT_SECRET": JWT_SECRET},
        config=config,
        args=["--reload"],
    )
    try:
        server.wait_ready()
        token = mint("reload-org", "alice")
        sdk = get_client(url=server.url, headers={"Authorization": f"Bearer {token}"})
        said = await sdk.runs.wait(None, "speaker", input={"said": ""})
        assert said == {"said": "first"}
        (project / "speaker.py").write_text(GRAPH.format(word="second"))
        for _ in range(600):  # the reloaded server answers with the new graph
            try:
                said = await sdk.runs.wait(None, "speaker", input={"said": ""})
            except Exception:  # the server is restarting
                said = None
            if said == {"said": "second"}:
                break
            await asyncio.sleep(0.1)
        assert said == {"said": "second"}
    finally:
        assert server.terminate() == 0
