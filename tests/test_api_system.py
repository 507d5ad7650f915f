"""System routes: liveness, info, metrics and request ids."""

import re
import uuid

import httpx
from langgraph.version import __version__ as langgraph_version
from starlette.routing import Match

from tenantgraph.api.app import create_app

from .route_table import app_routes


async def test_ok_info_and_request_ids(api_url):
    async with httpx.AsyncClient(base_url=api_url) as client:
        ok = await client.get("/ok", headers={"X-Request-Id": "trace-42"})
        assert ok.json() == {"ok": True} and ok.headers["x-request-id"] == "trace-42"
        generated = (await client.get("/ok")).headers["x-request-id"]
        assert str(uuid.UUID(generated)) == generated  # a UUID, as langgraph-api makes them
        info = (await client.get("/info")).json()
    # The keys langgraph-api 0.16 answers, so UIs that read them find them.
    assert set(info) == {"version", "langgraph_py_version", "flags", "host"}
    assert info["langgraph_py_version"] == langgraph_version
    assert info["flags"]["assistants"] is info["flags"]["crons"] is True
    assert set(info["flags"]) >= {"langsmith", "langsmith_tracing_replicas"}
    assert info["host"]["kind"] == "self-hosted"


async def test_metrics_count_requests_by_route_template(api_url, tenants):
    await tenants.a_member.sdk.threads.create()
    async with httpx.AsyncClient(base_url=api_url) as client:
        text = (await client.get("/metrics")).text
    assert 'tenantgraph_http_requests_total{method="POST",route="/threads",status="200"}' in text
    assert "tenantgraph_http_request_duration_seconds_bucket" in text


async def test_openapi_lists_the_routes(api_url):
    async with httpx.AsyncClient(base_url=api_url) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/assistants", "/assistants/search", "/threads", "/threads/{thread_id}", "/orgs"):
        assert path in paths


async def test_openapi_names_both_credentials_where_they_are_needed(api_url):
    """So the docs page's "Authorize" sends a key or a token with each call."""
    async with httpx.AsyncClient(base_url=api_url) as client:
        schema = (await client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKey"] == {**schemes["apiKey"], "in": "header", "name": "X-Api-Key"}
    either = [{"bearer": []}, {"apiKey": []}]
    assert schema["paths"]["/threads"]["post"]["security"] == either
    assert schema["paths"]["/store/items"]["put"]["security"] == either
    assert "security" not in schema["paths"]["/ok"]["get"]


def test_no_two_routers_answer_the_same_path():
    """The app tries its hot routers first (api/app.py); that order is free only while no
    request can be fully matched by two of its top-level routes. An id placeholder is
    filled with a fresh UUID (anything else is refused as a bad id by either route); any
    other with every literal segment the app's paths use."""
    app = create_app()
    templates = app_routes()
    literals = {part for _, path in templates for part in path.split("/") if "{" not in part}
    fillers = [str(uuid.uuid4()), *(literal for literal in literals if literal)]
    for method, template in templates:
        for filler in fillers:
            scope = {"type": "http", "method": method, "path": _fill(template, filler)}
            answering = [r for r in app.routes if r.matches(scope)[0] == Match.FULL]
            assert len(answering) == 1, (method, scope["path"], answering)


_UUID_IDS = {"thread_id", "run_id", "cron_id"}


def _fill(template: str, filler: str) -> str:
    return re.sub(
        r"\{([^}]*)\}",
        lambda m: str(uuid.uuid4()) if m.group(1) in _UUID_IDS else filler,
        template,
    )
