"""Input the database could not store, or a later read could not serve, is refused with a
422 naming the field before anything is written: NaN and Infinity (Python's JSON parser
accepts them), NUL characters, unpaired surrogates, and JSON nested too deep."""

from __future__ import annotations

import httpx
import pytest

from tenantgraph.api.payloads import MAX_JSON_DEPTH


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


# Raw JSON text: the SDK's encoder would refuse NaN itself, a client in another language may not.
BAD_BODIES = [
    ("/threads", '{"metadata": {"score": NaN}}', "metadata.score: numbers must be finite"),
    ("/threads", '{"metadata": {"x": "a\\u0000b"}}', "metadata.x: must not contain NUL"),
    ("/threads", '{"metadata": {"x": "\\ud800"}}', "metadata.x: must not contain unpaired"),
    (
        "/runs/wait",
        '{"assistant_id": "agent", "input": {"messages": [Infinity]}}',
        "input.messages.0: numbers must be finite",
    ),
    (
        "/runs",
        '{"assistant_id": "agent", "config": {"configurable": {"k": -Infinity}}}',
        "config.configurable.k: numbers must be finite",
    ),
    ("/runs/crons", '{"assistant_id": "agent", "schedule": "0 3 * * *", "input": NaN}', "input"),
]


@pytest.mark.parametrize(("path", "body", "detail"), BAD_BODIES)
async def test_unstorable_json_is_422_naming_the_field_and_writes_nothing(
    tenants, path, body, detail
):
    member = tenants.a_member
    before = await member.sdk.threads.count()
    response = await member.http.post(
        path, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert detail in response.json()["detail"]
    assert await member.sdk.threads.count() == before  # no thread, temporary or not


async def test_json_nested_too_deep_is_422_and_the_limit_itself_is_accepted(tenants):
    member = tenants.a_member
    ok = await member.sdk.threads.create(metadata=_nested(MAX_JSON_DEPTH - 1))
    found = await member.sdk.threads.search(metadata={"a": {}}, limit=1000)  # readable
    assert ok["thread_id"] in {t["thread_id"] for t in found}
    too_deep = await member.http.post("/threads", json={"metadata": _nested(MAX_JSON_DEPTH + 1)})
    assert too_deep.status_code == 422
    assert "nested more than" in too_deep.json()["detail"]
    await member.sdk.threads.delete(ok["thread_id"])


async def test_the_connection_survives_a_refused_body(tenants):
    """One keep-alive connection: a 422, then an ordinary answer on the same socket."""
    member = tenants.a_member
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(
        base_url=member.http.base_url, headers=member.http.headers, limits=limits
    ) as client:
        bad = await client.post("/threads", content='{"metadata": {"x": NaN}}')
        assert bad.status_code == 422
        assert (await client.post("/threads/count", json={})).status_code == 200


BIG = 2**63  # one past a Postgres bigint
OUT_OF_RANGE = [
    ("POST", "/threads/search", {"offset": BIG}),
    ("POST", "/assistants/search", {"offset": BIG}),
    ("POST", "/runs/crons/search", {"offset": BIG}),
    ("POST", "/store/items/search", {"namespace_prefix": ["a"], "offset": BIG}),
    ("POST", "/store/namespaces", {"max_depth": BIG}),
    ("POST", "/store/namespaces", {"offset": BIG}),
    ("PUT", "/store/items", {"namespace": ["a"], "key": "k", "value": {}, "ttl": 1e308}),
    ("POST", "/runs", {"assistant_id": "agent", "after_seconds": 1e308}),
    ("GET", "/threads/{thread}/runs?offset=9223372036854775808", None),
    ("PUT", "/store/items", {"namespace": ["a"], "key": "", "value": {}}),
    ("DELETE", "/store/items", {"namespace": ["a"], "key": ""}),
    ("POST", "/runs/crons", {"assistant_id": "agent", "schedule": "0 3 * * *", "end_time": "x"}),
    ("GET", "/sessions/agent/s1/messages?last=100000000000000000000", None),
]


@pytest.mark.parametrize(("method", "path", "body"), OUT_OF_RANGE)
async def test_numbers_out_of_range_and_unusable_values_are_422_not_500(
    tenants, method, path, body
):
    member = tenants.a_member
    thread = await member.sdk.threads.create()
    before = await member.sdk.threads.count()
    response = await member.http.request(method, path.format(thread=thread["thread_id"]), json=body)
    assert response.status_code == 422, response.text
    assert await member.sdk.threads.count() == before


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("stream_mode=%5B%7B%7D%5D", {}),  # [{}]
        ("stream_mode=%5B%5B%5B", {}),  # [[[
        ("stream_mode=nonsense", {}),
        ("", {"Last-Event-ID": "garbage"}),
        ("", {"Last-Event-ID": "--1"}),
        ("", {"Last-Event-ID": "99999999999999999999999-0"}),
    ],
)
async def test_a_join_stream_with_bad_options_is_refused_before_it_starts(tenants, query, headers):
    member = tenants.a_member
    thread = await member.sdk.threads.create()
    run = await member.sdk.runs.create(thread["thread_id"], "agent", input={"messages": []})
    path = f"/threads/{thread['thread_id']}/runs/{run['run_id']}/stream?{query}"
    response = await member.http.get(path, headers=headers)
    assert response.status_code in (400, 422), response.text
    # Positive control: the same join with good options streams the run to its end.
    good = await member.http.get(
        f"/threads/{thread['thread_id']}/runs/{run['run_id']}/stream?stream_mode=values",
        headers={"Last-Event-ID": "0-0"},
    )
    assert good.status_code == 200 and "event: values" in good.text


async def _chunks(total: int, size: int = 64 * 1024):
    """A JSON body sent chunked (no Content-Length): a thread whose metadata is `total` long."""
    yield b'{"metadata": {"pad": "'
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)
    yield b'"}}'


async def test_a_body_over_the_cap_is_413_whether_sized_or_chunked(tenants):
    member = tenants.a_member
    before = await member.sdk.threads.count()
    cap = 10 * 2**20  # TENANTGRAPH_MAX_BODY_BYTES's default
    sized = await member.http.post("/threads", json={"metadata": {"pad": "x" * cap}})
    assert sized.status_code == 413
    assert "larger than" in sized.json()["detail"]
    chunked = await member.http.post("/threads", content=_chunks(cap))
    assert chunked.status_code == 413
    assert await member.sdk.threads.count() == before
    # Positive control: a chunked body under the cap reaches the route whole.
    small = await member.http.post(
        "/threads", content=_chunks(1000), headers={"content-type": "application/json"}
    )
    assert small.status_code == 200, small.text
    assert small.json()["metadata"]["pad"] == "x" * 1000
