"""CORS: a browser UI on an allowed origin calls the API with its key; any other origin is
refused by the browser, because the answers carry no `Access-Control-Allow-Origin`."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import ValidationError

from tenantgraph.settings import ConfigFile, Settings

from .api_fixtures import mint, start_api_server

ALLOWED, OTHER = "https://ui.example", "https://evil.example"


@pytest.fixture(scope="module")
def cors_url(api_env, tmp_path_factory):
    server = start_api_server(
        tmp_path_factory.mktemp("cors"), TENANTGRAPH_CORS_ORIGINS=ALLOWED, **api_env
    )
    yield server.url
    server.terminate()


def _preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-api-key",
    }


async def test_a_preflight_passes_without_credentials_for_an_allowed_origin_only(cors_url):
    async with httpx.AsyncClient(base_url=cors_url) as http:
        allowed = await http.options("/threads/search", headers=_preflight(ALLOWED))
        other = await http.options("/threads/search", headers=_preflight(OTHER))
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers


async def test_answers_carry_the_origin_and_the_headers_clients_read(cors_url):
    token = mint("cors-org", "alice")
    async with httpx.AsyncClient(base_url=cors_url) as http:
        created = await http.post(
            "/threads",
            json={},
            headers={"Origin": ALLOWED, "Authorization": f"Bearer {token}"},
        )
        refused = await http.post("/threads", json={}, headers={"Origin": ALLOWED})
        other = await http.post(
            "/threads", json={}, headers={"Origin": OTHER, "Authorization": f"Bearer {token}"}
        )
    assert created.status_code == 200, created.text
    assert created.headers["access-control-allow-origin"] == ALLOWED
    assert "x-request-id" in created.headers["access-control-expose-headers"].lower()
    # A 401 the page can read, so it can ask for a key.
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == ALLOWED
    assert "access-control-allow-origin" not in other.headers


def test_the_config_files_http_cors_is_read_and_its_unknown_keys_refused(tmp_path):
    config = tmp_path / "langgraph.json"
    config.write_text(json.dumps({"http": {"cors": {"allow_origins": [ALLOWED], "max_age": 5}}}))
    cors = Settings(config=config).cors
    assert cors is not None and (cors.allow_origins, cors.max_age) == ([ALLOWED], 5)
    assert Settings(config=config, cors_origins=[OTHER]).cors.allow_origins == [OTHER]
    config.write_text(json.dumps({"http": {"cors": {"allow_origin": [ALLOWED]}}}))
    with pytest.raises(ValidationError, match="allow_origin"):
        ConfigFile.load(config)
    config.write_text(json.dumps({"http": {"mount_prefix": "/api"}}))
    with pytest.raises(ValidationError, match="mount_prefix"):
        ConfigFile.load(config)
