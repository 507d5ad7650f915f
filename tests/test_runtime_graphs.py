"""The graph registry reads langgraph.json-style specs: files, modules, factories."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from langgraph.pregel import Pregel

from tenantgraph.runtime.graphs import GraphNotFound, GraphRegistry
from tenantgraph.settings import Settings

from .runtime_fixtures import ROOT

FACTORIES = """
from langgraph.graph import START, StateGraph
from typing import TypedDict


class State(TypedDict):
    who: str


def _build(who):
    builder = StateGraph(State)
    builder.add_node("hello", lambda state: {"who": who})
    builder.add_edge(START, "hello")
    return builder


def sync_factory(config):
    return _build(config["configurable"]["user_id"]).compile()


async def async_factory():
    return _build("async")


uncompiled = _build("plain")
not_a_graph = 42
"""


def test_the_repository_config_registers_the_examples():
    settings = Settings(config=ROOT / "tenantgraph.json")
    registry = GraphRegistry.from_settings(settings)
    assert registry.ids() == ["agent", "memory", "hitl", "custom", "slow", "nested"]


async def test_specs_relative_to_the_config_file_modules_and_factories(tmp_path: Path):
    (tmp_path / "graphs").mkdir()
    (tmp_path / "graphs" / "mine.py").write_text(FACTORIES)
    config = tmp_path / "langgraph.json"
    config.write_text(
        json.dumps(
            {
                "graphs": {
                    "per_user": "./graphs/mine.py:sync_factory",
                    "later": {"path": "./graphs/mine.py:async_factory"},
                    "plain": "graphs/mine.py:uncompiled",
                    "by_module": "tenantgraph_examples_echo_for_test:graph",
                }
            }
        )
    )
    (tmp_path / "tenantgraph_examples_echo_for_test.py").write_text(
        (ROOT / "examples" / "echo.py").read_text()
    )
    sys.path.insert(0, str(tmp_path))
    try:
        registry = GraphRegistry.from_settings(Settings(config=config))
    finally:
        sys.path.remove(str(tmp_path))
    per_user = await registry.get("per_user", {"configurable": {"user_id": "alice"}})
    assert (await per_user.ainvoke({"who": ""}))["who"] == "alice"
    assert (await (await registry.get("later")).ainvoke({"who": ""}))["who"] == "async"
    assert isinstance(await registry.get("plain"), Pregel)
    assert isinstance(await registry.get("by_module"), Pregel)
    with pytest.raises(GraphNotFound):
        await registry.get("nope")


@pytest.mark.parametrize(
    "spec",
    ["./graphs/mine.py", "./graphs/missing.py:graph", "./graphs/mine.py:nothing"],
)
def test_bad_specs_fail_at_startup(tmp_path: Path, spec: str):
    (tmp_path / "graphs").mkdir()
    (tmp_path / "graphs" / "mine.py").write_text(FACTORIES)
    with pytest.raises(ValueError, match="graph spec"):
        GraphRegistry({"g": spec}, tmp_path)


def test_a_non_graph_is_refused(tmp_path: Path):
    (tmp_path / "mine.py").write_text(FACTORIES)
    with pytest.raises(TypeError, match="not a LangGraph graph"):
        GraphRegistry({"g": "./mine.py:not_a_graph"}, tmp_path)
