"""A property-based pass over every route of the app: bodies and query strings holding NaN,
Infinity, NUL, unpaired surrogates, deep nesting and integers past int64, sent by an org
admin on one keep-alive connection. No answer may be a 5xx, and the connection must stay
usable after every answer. Bounded: a fixed number of examples per route."""

from __future__ import annotations

import json
import re
import uuid

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenantgraph.api.app import create_app

EXAMPLES_PER_ROUTE = 6
# Field names the routes read, so generated bodies reach validation of real fields.
FIELDS = [
    "assistant_id", "input", "config", "context", "metadata", "command", "checkpoint",
    "stream_mode", "after_seconds", "namespace", "namespace_prefix", "key", "value", "ttl",
    "filter", "limit", "offset", "max_depth", "schedule", "end_time", "values", "status",
    "ids", "sort_by", "graph_id", "name", "role", "user_id", "if_exists", "messages",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, 2**63 - 1, -(2**63) - 1, 0, -1]),
    st.text(alphabet=st.characters(codec=None, categories=None), max_size=12),
    st.sampled_from(["", "\x00", "\ud800", "\x85", "{org}", "a.b", "*" * 300]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
deep = st.integers(min_value=90, max_value=400).map(lambda n: json.loads("[" * n + "]" * n))
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), values | deep, max_size=5),
    values,
)
query_values = st.one_of(
    st.text(max_size=8), st.sampled_from(["9223372036854775808", "-1", "NaN", "%00", "1e308"])
)


def _routes() -> list[tuple[str, str]]:
    """Every route the app serves, as its OpenAPI schema lists them."""
    paths = create_app().openapi()["paths"]
    return [(method.upper(), path) for path, item in paths.items() for method in item]


def _fill(path: str, ids: dict[str, str]) -> str:
    """A route's path with the fuzzer's own objects (or a fresh id) for its parameters."""
    return re.sub(r"{(\w+)(?::path)?}", lambda m: ids.get(m.group(1), str(uuid.uuid4())), path)


async def test_no_route_answers_5xx_or_drops_the_connection(api_url, tenants):
    admin = tenants.a_admin
    thread = await admin.sdk.threads.create()
    run = await admin.sdk.runs.create(thread["thread_id"], "agent", input={"messages": []})
    assistant = await admin.sdk.assistants.create("agent")
    cron = await admin.sdk.crons.create("agent", schedule="0 3 * * *")
    ids = {
        "thread_id": thread["thread_id"],
        "run_id": run["run_id"],
        "assistant_id": assistant["assistant_id"],
        "cron_id": cron["cron_id"],
        "org_id": admin.org,
        "user_id": admin.user,
        "session_id": "fuzz",
    }
    routes = _routes()
    assert len(routes) > 50  # the whole route table, not a sample
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    transport = httpx.AsyncHTTPTransport(limits=limits, retries=0)
    async with httpx.AsyncClient(
        base_url=api_url, headers=admin.http.headers, transport=transport, timeout=30
    ) as client:
        for method, path in routes:
            await _fuzz_route(client, method, _fill(path, ids))


async def _fuzz_route(client: httpx.AsyncClient, method: str, path: str) -> None:
    drawn: list[tuple[object, dict[str, str]]] = []

    @settings(
        max_examples=EXAMPLES_PER_ROUTE,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(body=bodies, query=st.dictionaries(st.sampled_from(FIELDS), query_values, max_size=2))
    def example(body: object, query: dict[str, str]) -> None:
        drawn.append((body, query))

    example()  # draws the examples; each is sent below, on the test's event loop
    for body, query in drawn:
        content = json.dumps(body, allow_nan=True)
        response = await client.request(
            method,
            path,
            params=query,
            content=content if method != "GET" else None,
            headers={"content-type": "application/json"},
        )
        assert response.status_code < 500, (method, path, content[:300], response.text[:300])
        # The same connection (socket) answers the next request: none was closed.
        after = await client.get("/ok")
        assert after.status_code == 200
        assert after.extensions["network_stream"] is response.extensions["network_stream"]
