"""Normalising and comparing the records of one scenario run against both servers.

A record is one SDK call: `call` (its label), `method` (the client method it covers),
`statuses` (the HTTP statuses it got), `error` (the SDK's error class, or None) and `body`
(what the method returned, or the error's body). Ids the scenario named are replaced by
their names, any other UUID by `<uuid>`, timestamps by `<ts>`; what is left must agree
unless `DELIBERATE` lists the difference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from differences import DELIBERATE, Deliberate

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?", re.I)
# Interrupt ids and other hashes of run-specific values.
HEX_ID = re.compile(r"\b[0-9a-f]{32}\b")
# Each server's own address (langgraph-api writes it into checkpoint metadata).
LOCAL_URL = re.compile(r"http://127\.0\.0\.1:\d+")
# Values that are clocks whatever their form.
CLOCK_KEYS = frozenset({"__request_start_time_ms__"})


def normalise(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            _text(str(k), names): "<clock>" if k in CLOCK_KEYS else normalise(v, names)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [normalise(v, names) for v in value]
    if isinstance(value, str):
        return _text(value, names)
    return value


def _text(text: str, names: dict[str, str]) -> str:
    text = UUID.sub(lambda m: f"<{names.get(m.group(0).lower(), 'uuid')}>", text)
    text = TIMESTAMP.sub("<ts>", text)
    text = LOCAL_URL.sub("<server>", text)
    return HEX_ID.sub("<hex>", text)


@dataclass(frozen=True)
class Difference:
    path: str  # `$.a.b[0]`
    kind: str  # "missing" (only langgraph dev has it), "extra" (only tenantgraph), "value"
    expected: Any  # langgraph dev's
    actual: Any  # tenantgraph's

    def wildcard_path(self) -> str:
        return re.sub(r"\[\d+\]", "[*]", self.path)


def differences(expected: Any, actual: Any, path: str = "$") -> list[Difference]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        found: list[Difference] = []
        for key in expected.keys() | actual.keys():
            sub = f"{path}.{key}"
            if key not in actual:
                found.append(Difference(sub, "missing", expected[key], None))
            elif key not in expected:
                found.append(Difference(sub, "extra", None, actual[key]))
            else:
                found += differences(expected[key], actual[key], sub)
        return sorted(found, key=lambda d: d.path)
    if isinstance(expected, list) and isinstance(actual, list):
        found = []
        for index, (e, a) in enumerate(zip(expected, actual, strict=False)):
            found += differences(e, a, f"{path}[{index}]")
        if len(expected) != len(actual):
            found.append(Difference(f"{path}.length", "value", len(expected), len(actual)))
        return found
    if expected != actual:
        return [Difference(path, "value", expected, actual)]
    return []


COLUMNS = ("status", "error", "keys", "values")


def column(difference: Difference) -> str:
    if difference.path in ("status", "error"):
        return difference.path
    return "values" if difference.kind == "value" else "keys"


@dataclass
class Comparison:
    call: str
    method: str
    documented: list[tuple[Difference, Deliberate]]
    undocumented: list[Difference]
    broken: bool = False

    @property
    def verdict(self) -> str:
        if self.broken:
            return "BROKEN"
        if self.undocumented:
            return "DIFF"
        return "DOC" if self.documented else "OK"

    def columns(self) -> list[str]:
        """Per column: `same`, `doc` (only documented differences) or `DIFF`."""
        undocumented = {column(d) for d in self.undocumented}
        documented = {column(d) for d, _ in self.documented}
        return [
            "DIFF" if name in undocumented else "doc" if name in documented else "same"
            for name in COLUMNS
        ]


def compare(expected: dict[str, Any], actual: dict[str, Any], sdk: str) -> Comparison:
    """One call: `expected` is langgraph dev's record, `actual` tenantgraph's."""
    found = [
        Difference("status", "value", expected["statuses"], actual["statuses"]),
        Difference("error", "value", expected["error"], actual["error"]),
    ]
    found = [d for d in found if d.expected != d.actual]
    found += differences(expected["body"], actual["body"])
    documented, undocumented = [], []
    for difference in found:
        entry = _deliberate(sdk, expected["call"], difference)
        if entry is None:
            undocumented.append(difference)
        else:
            documented.append((difference, entry))
    return Comparison(
        call=expected["call"],
        method=expected["method"],
        documented=documented,
        undocumented=undocumented,
        # langgraph dev failing without an HTTP answer is the scenario's own mistake.
        broken=expected["error"] is not None and not expected["statuses"],
    )


def grouped(found: list[Difference]) -> list[tuple[Difference, int]]:
    """The same difference at every index of a list is shown once, with its count."""
    groups: dict[tuple[str, str], list[Difference]] = {}
    for difference in found:
        groups.setdefault((difference.wildcard_path(), difference.kind), []).append(difference)
    return [(same[0], len(same)) for same in groups.values()]


def merged(found: list[Difference]) -> list[tuple[Difference, int]]:
    """`grouped`, then the keys one server alone sends under the same parent in one line:
    `$.a.{b, c} (missing)` with both servers' values as objects."""
    groups: dict[tuple[str, str, int], list[Difference]] = {}
    for difference, count in grouped(found):
        parent = difference.wildcard_path().rpartition(".")[0]
        if difference.kind == "value" or not parent:
            groups[(difference.path, difference.kind, count)] = [difference]
        else:
            groups.setdefault((parent, difference.kind, count), []).append(difference)
    result = []
    for (parent, kind, count), same in groups.items():
        if len(same) == 1:
            result.append((same[0], count))
            continue
        keys = [d.wildcard_path().rpartition(".")[2] for d in same]
        expected = {k: d.expected for k, d in zip(keys, same, strict=True)}
        actual = {k: d.actual for k, d in zip(keys, same, strict=True)}
        result.append(
            (Difference(f"{parent}.{{{', '.join(keys)}}}", kind, expected, actual), count)
        )
    return result


def _deliberate(sdk: str, call: str, difference: Difference) -> Deliberate | None:
    for entry in DELIBERATE:
        if (
            entry.sdk in ("*", sdk)
            and fnmatchcase(call, entry.call)
            and fnmatchcase(difference.wildcard_path(), entry.path)
            and entry.kind in ("*", difference.kind)
        ):
            return entry
    return None
