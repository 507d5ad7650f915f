"""Store search filters compiled to SQL over the item's jsonb value.

Written here rather than taken from LangGraph's Postgres store, which compares ranges as
text and knows only `$eq $ne $gt $gte $lt $lte`. The rules:

- `{"a.b": v}` and `{"a": {"b": v}}` both address the nested key `a.b`; a bare value or a
  list means equality of the JSON value (numbers compare numerically: 1 equals 1.0).
- `$gt $gte $lt $lte` compare numbers as numbers and strings as strings (code point order);
  a value of another JSON type, or a missing key, never matches.
- `$ne` and `$nin` match a missing key (as `InMemoryStore` and MongoDB do); `$eq` and
  `$in` do not. `$exists: true` matches any present key, JSON null included.
- `$and` / `$or` take a list of filters; the keys of one filter are ANDed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from psycopg.types.json import Jsonb

from tenantgraph.errors import InvalidInput

__all__ = ["InvalidFilter", "compile_filter"]

_RANGE = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


class InvalidFilter(InvalidInput, ValueError):
    """A filter the store cannot evaluate (an invalid input, like any bad request body)."""


def compile_filter(filter: Mapping[str, Any] | None, column: str) -> tuple[str, list[Any]]:
    """SQL condition (with `%s` placeholders) and its parameters; `TRUE` for no filter.

    `column` is the trusted SQL name of the jsonb value column, e.g. `i.value`.
    """
    if not filter:
        return "TRUE", []
    if not isinstance(filter, Mapping):
        raise InvalidFilter(f"filter must be an object, got {type(filter).__name__}")
    params: list[Any] = []
    return _conjunction(filter, (), column, params), params


def _conjunction(
    filter: Mapping[str, Any], base: tuple[str, ...], column: str, params: list[Any]
) -> str:
    parts = []
    for key, expected in filter.items():
        if not isinstance(key, str) or not key:
            raise InvalidFilter(f"filter keys must be non-empty strings, got {key!r}")
        if key in ("$and", "$or"):
            if base:
                raise InvalidFilter(f"{key} is allowed only at the top of a filter")
            parts.append(_logical(key, expected, column, params))
        elif key.startswith("$"):
            raise InvalidFilter(f"unknown filter operator {key!r}")
        else:
            parts.append(_field((*base, *_split(key)), expected, column, params))
    return "(" + " AND ".join(parts) + ")" if parts else "TRUE"


def _logical(op: str, clauses: Any, column: str, params: list[Any]) -> str:
    if not isinstance(clauses, list) or not clauses:
        raise InvalidFilter(f"{op} takes a non-empty list of filters")
    compiled = []
    for clause in clauses:
        if not isinstance(clause, Mapping):
            raise InvalidFilter(f"{op} takes a list of filter objects, got {clause!r}")
        compiled.append(_conjunction(clause, (), column, params))
    return "(" + (" AND " if op == "$and" else " OR ").join(compiled) + ")"


def _split(key: str) -> tuple[str, ...]:
    path = tuple(key.split("."))
    if "" in path:
        raise InvalidFilter(f"filter key {key!r} has an empty path segment")
    return path


def _field(path: tuple[str, ...], expected: Any, column: str, params: list[Any]) -> str:
    if isinstance(expected, Mapping):
        operators = [k for k in expected if isinstance(k, str) and k.startswith("$")]
        if not operators:
            if not expected:
                params.append(list(path))
                return f"(jsonb_typeof({column} #> %s) = 'object')"
            return _conjunction(expected, path, column, params)
        if len(operators) != len(expected):
            raise InvalidFilter(f"filter on {'.'.join(path)!r} mixes operators and fields")
        return (
            "("
            + " AND ".join(_operator(path, k, v, column, params) for k, v in expected.items())
            + ")"
        )
    return _operator(path, "$eq", expected, column, params)


def _operator(path: tuple[str, ...], op: str, operand: Any, column: str, params: list[Any]) -> str:
    # `->` for a top-level key is cheaper than the general `#>` path lookup.
    target, key = (
        (f"({column} -> %s)", path[0]) if len(path) == 1 else (f"({column} #> %s)", list(path))
    )
    if op == "$eq":
        params.extend([key, Jsonb(operand)])
        return f"{target} = %s::jsonb"
    if op == "$ne":
        params.extend([key, Jsonb(operand)])
        return f"{target} IS DISTINCT FROM %s::jsonb"
    if op in ("$in", "$nin"):
        if not isinstance(operand, list | tuple):
            raise InvalidFilter(f"{op} takes a list, got {operand!r}")
        params.extend([key, [Jsonb(v) for v in operand]])
        test = f"{target} = ANY(%s::jsonb[])"
        return test if op == "$in" else f"NOT coalesce({test}, false)"
    if op == "$exists":
        if not isinstance(operand, bool):
            raise InvalidFilter(f"$exists takes true or false, got {operand!r}")
        params.append(key)
        return f"{target} IS {'NOT ' if operand else ''}NULL"
    if op in _RANGE:
        sign = _RANGE[op]
        if isinstance(operand, bool) or not isinstance(operand, int | float | str):
            raise InvalidFilter(f"{op} compares numbers or strings, got {operand!r}")
        if isinstance(operand, float) and not math.isfinite(operand):
            raise InvalidFilter(f"{op} needs a finite number, got {operand!r}")
        params.extend([key, key, operand])
        if isinstance(operand, str):
            return (
                f"(CASE WHEN jsonb_typeof({target}) = 'string'"
                f" THEN ({target} #>> '{{}}') COLLATE \"C\" {sign} %s::text ELSE false END)"
            )
        return (
            f"(CASE WHEN jsonb_typeof({target}) = 'number'"
            f" THEN {target}::numeric {sign} %s::numeric ELSE false END)"
        )
    raise InvalidFilter(f"unknown filter operator {op!r}")
