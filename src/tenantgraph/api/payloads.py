"""Request-body building blocks shared by the routes.

PostgreSQL cannot store NUL characters or unpaired UTF-16 surrogates (both valid in JSON
text) and JSON has no infinities, so such input is refused here with a 422 that names
the field, instead of failing later inside a transaction.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

__all__ = ["Body", "JsonObject", "Text"]


def _check_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must not contain unpaired UTF-16 surrogates") from exc
    return value


def _check_json(value: Any) -> Any:
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_json(item)
    elif isinstance(value, list):
        for item in value:
            _check_json(item)
    return value


Text = Annotated[str, AfterValidator(_check_text)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_check_json)]


class Body(BaseModel):
    """A request body: unknown fields are ignored, as the LangGraph API does."""

    model_config = ConfigDict(extra="ignore")
