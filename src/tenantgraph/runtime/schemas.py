"""A graph's JSON schemas as `GET /assistants/{id}/schemas` shows them.

Each schema is built on its own and is None when it cannot be: a graph whose state is a
`typing.TypedDict` on Python < 3.12 has no input or output schema (pydantic refuses the
type), yet its state schema (built channel by channel, `Any` for a channel pydantic cannot
describe) and its other schemas are still served, as langgraph-api serves them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from langgraph.pregel import Pregel
from pydantic import TypeAdapter, create_model

__all__ = ["graph_schemas"]

log = logging.getLogger(__name__)


def _state_schema(graph: Pregel) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in graph.stream_channels_list:
        kind = graph.channels[name].UpdateType
        try:
            TypeAdapter(kind).json_schema()
        except Exception:
            kind = Any
        fields[name] = (kind, None)
    return create_model(graph.get_name("State"), **fields).model_json_schema()


def _config_schema(graph: Pregel) -> dict[str, Any]:
    """The schema of `config["configurable"]` ({} when the graph declares none)."""
    fields = graph.config_schema().model_fields  # type: ignore[deprecated]
    if "configurable" not in fields:
        return {}
    schema = TypeAdapter(fields["configurable"].annotation).json_schema()
    if getattr(graph, "config_type", None) is not None:
        schema["title"] = getattr(graph.config_type, "__name__", schema.get("title"))
    return schema


def _try(graph: Pregel, what: str, build: Callable[[], Any]) -> Any:
    try:
        return build()
    except Exception as exc:
        log.warning("graph %s: no %s schema (%s)", graph.name, what, exc)
        return None


def graph_schemas(graph: Pregel) -> dict[str, Any]:
    return {
        "input_schema": _try(graph, "input", graph.get_input_jsonschema),
        "output_schema": _try(graph, "output", graph.get_output_jsonschema),
        "state_schema": _try(graph, "state", lambda: _state_schema(graph)),
        "config_schema": _try(graph, "config", lambda: _config_schema(graph)),
        "context_schema": _try(graph, "context", graph.get_context_jsonschema),
    }
