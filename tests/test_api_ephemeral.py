"""Rate limits and idempotency in the assembled server, behind real authentication."""

import asyncio
import re
import uuid

from tenantgraph.api import runs
from tenantgraph.api.app import create_app
from tenantgraph.api.middleware import RUN_ROUTE
from tenantgraph.settings import Settings

from .api_fixtures import Tenants, start_api_server

SINGLE_RUN_ROUTES = {
    runs.create_run,
    runs.create_stateless_run,
    runs.stream_run,
    runs.stream_stateless_run,
    runs.wait_run,
    runs.wait_stateless_run,
}


async def test_idempotent_thread_creation(tenants):
    http = tenants.a_member.http
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await http.post("/threads", json={"metadata": {"n": 1}}, headers=key)
    replay = await http.post("/threads", json={"metadata": {"n": 1}}, headers=key)
    assert first.status_code == replay.status_code == 200
    assert replay.json() == first.json() and replay.headers["idempotent-replayed"] == "true"
    assert await tenants.a_member.sdk.threads.count(metadata={"n": 1}) == 1
    different = await http.post("/threads", json={"metadata": {"n": 2}}, headers=key)
    assert different.status_code == 422
    other_org = await tenants.b_member.http.post(
        "/threads", json={"metadata": {"n": 1}}, headers=key
    )
    assert other_org.status_code == 200 and other_org.json() != first.json()


async def test_concurrent_duplicates_create_one_thread(tenants):
    http = tenants.a_member.http
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    tag = uuid.uuid4().hex
    answers = await asyncio.gather(
        *(
            http.post("/threads", json={"metadata": {"tag": tag}}, headers=headers)
            for _ in range(10)
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes.count(200) >= 1 and set(codes) <= {200, 409}
    assert await tenants.a_member.sdk.threads.count(metadata={"tag": tag}) == 1


async def test_run_budget_answers_429_with_headers(tmp_path):
    env = {
        "TENANTGRAPH_EPHEMERAL__RATE_LIMITS__USER_RUNS__LIMIT": "2",
        "TENANTGRAPH_EPHEMERAL__RATE_LIMITS__USER_RUNS__WINDOW_SECONDS": "3600",
        "TENANTGRAPH_PG_SHARED_BUFFERS_MB": "128",
    }
    server = start_api_server(tmp_path / "limited", **env)
    try:
        tenants = Tenants.create(server.url)
        http = tenants.a_member.http
        body = {"assistant_id": "agent", "input": {"messages": []}}
        codes = [(await http.post("/runs", json=body)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        limited = await http.post("/runs", json=body)
        assert int(limited.headers["retry-after"]) > 0
        assert limited.headers["ratelimit-remaining"] == "0"
        assert "ratelimit-limit" in limited.headers
        # Another user of the same org, and another org, still have their budgets.
        assert (await tenants.a_admin.http.post("/runs", json=body)).status_code == 200
        assert (await tenants.b_member.http.post("/runs", json=body)).status_code == 200
        # Requests that are not runs are counted separately.
        assert (await http.post("/threads", json={})).status_code == 200
    finally:
        server.terminate()


def test_the_run_route_pattern_names_exactly_the_routes_that_create_one_run(tmp_path):
    """The rate limit middleware spends a run token for a POST whose path matches
    RUN_ROUTE: every route that creates one run must match, and no other POST route."""
    paths = create_app(Settings(data_dir=tmp_path, config=None)).openapi()["paths"]
    posts = {path: ops["post"]["operationId"] for path, ops in paths.items() if "post" in ops}
    assert len(posts) > 20
    # FastAPI's operation id: the endpoint's name and the path, non-word characters as "_".
    single_run = {
        re.sub(r"\W", "_", f.__name__ + path) + "_post" for f in SINGLE_RUN_ROUTES for path in posts
    }
    seen = 0
    for template, operation in posts.items():
        path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), template)
        creates_one_run = operation in single_run
        seen += creates_one_run
        assert (RUN_ROUTE.fullmatch(path) is not None) == creates_one_run, template
    assert seen == len(SINGLE_RUN_ROUTES)
