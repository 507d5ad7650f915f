"""Request-body building blocks shared by the routes.

PostgreSQL cannot store NUL characters or unpaired UTF-16 surrogates (both valid in JSON
text), JSON has no infinities (Python's parser accepts NaN and Infinity all the same), and
a value nested too deep cannot be searched later: every request body is checked for all
of these before a route runs, with a 422 that names the field, so nothing is stored that a
later read could not serve.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

__all__ = ["MAX_JSON_DEPTH", "Body", "Count", "JsonObject", "Text"]

# Deeper than any state or metadata we have met, far below what Postgres's jsonb and
# Python's parser refuse.
MAX_JSON_DEPTH = 100


def _where(path: str) -> str:
    return f"{path}: " if path else ""


def _check_text(value: str, path: str = "") -> str:
    where = _where(path)
    if "\x00" in value:
        raise ValueError(f"{where}must not contain NUL (\\u0000) characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{where}must not contain unpaired UTF-16 surrogates") from exc
    return value


def _check_json(value: Any, path: str = "", depth: int = 0) -> Any:
    """`value` if it is storable JSON; else a ValueError naming where (`input.messages.0`)."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"{_where(path)}must not be nested more than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        _check_text(value, path)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{_where(path)}numbers must be finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, path)
            _check_json(item, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{path}.{index}" if path else str(index), depth + 1)
    return value


Text = Annotated[str, AfterValidator(_check_text)]
# Offsets, depths and window sizes: what a Postgres bigint (and a Valkey index) can hold.
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_check_json)]


class Body(BaseModel):
    """A request body: unknown fields are ignored, as the LangGraph API does; the whole
    body is checked to be storable JSON first."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        return _check_json(data)
