"""The graph registry: the `graphs` section of the config file, loaded once.

Entries use `langgraph.json` syntax: `"./path/to/file.py:attr"` (relative to the config
file) or `"package.module:attr"`. The attribute is a compiled graph, an uncompiled
`StateGraph` (compiled here), or a factory called per run with the run's config (sync or
async, taking the config or nothing) that returns either.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from tenantgraph.errors import NotFound

__all__ = ["GraphNotFound", "GraphRegistry", "load_graph_spec"]


class GraphNotFound(NotFound, LookupError):
    """No graph is registered under this id."""


def load_graph_spec(spec: str, base_dir: Path) -> Any:
    """Import the object named by `spec` (`file.py:attr` or `module:attr`)."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ValueError(f"graph spec {spec!r} must look like './file.py:graph' or 'module:graph'")
    if target.endswith(".py") or "/" in target:
        path = (base_dir / target).resolve()
        if not path.is_file():
            raise ValueError(f"graph spec {spec!r}: no file {path}")
        name = f"tenantgraph_graphs.{path.stem}_{abs(hash(str(path))):x}"
        module = sys.modules.get(name)
        if module is None:
            module_spec = importlib.util.spec_from_file_location(name, path)
            if module_spec is None or module_spec.loader is None:
                raise ValueError(f"graph spec {spec!r}: cannot import {path}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"graph spec {spec!r}: module has no attribute {attr!r}") from None


def _compiled(obj: Any, graph_id: str) -> Pregel:
    if isinstance(obj, StateGraph):
        obj = obj.compile()
    if not isinstance(obj, Pregel):
        raise TypeError(f"graph {graph_id!r} is a {type(obj).__name__}, not a LangGraph graph")
    return obj


class GraphRegistry:
    """Graph id → graph. Modules are imported when the registry is built, so a bad entry
    fails at startup rather than at the first run."""

    def __init__(self, specs: Mapping[str, Any], base_dir: Path) -> None:
        self._graphs: dict[str, Pregel | Callable[..., Any]] = {}
        for graph_id, entry in specs.items():
            spec = entry["path"] if isinstance(entry, Mapping) else entry
            obj = load_graph_spec(str(spec), base_dir)
            self._graphs[graph_id] = obj if _is_factory(obj) else _compiled(obj, graph_id)

    @classmethod
    def from_settings(cls, settings: Any) -> GraphRegistry:
        config_file = settings.config_file
        config_file.apply_env()  # the graphs' modules may read it when imported
        return cls(config_file.graphs, config_file.base_dir)

    def ids(self) -> list[str]:
        return list(self._graphs)

    def __contains__(self, graph_id: object) -> bool:
        return graph_id in self._graphs

    async def get(self, graph_id: str, config: RunnableConfig | None = None) -> Pregel:
        """The graph for one run; factories are called with the run's config."""
        try:
            obj = self._graphs[graph_id]
        except KeyError:
            raise GraphNotFound(graph_id) from None
        if isinstance(obj, Pregel):
            return obj
        takes_config = bool(inspect.signature(obj).parameters)
        made = obj(config or {}) if takes_config else obj()
        if inspect.isawaitable(made):
            made = await made
        return _compiled(made, graph_id)


def _is_factory(obj: Any) -> bool:
    return callable(obj) and not isinstance(obj, Pregel | StateGraph)
