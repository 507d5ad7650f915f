"""Shared fixtures: one embedded Postgres + Valkey for the whole session, as in production."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tenantgraph.resources import Resources, open_resources
from tenantgraph.settings import Settings

from .api_fixtures import Tenants, start_api_server


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def settings(data_dir: Path) -> Settings:
    # Small shared_buffers: the suite holds little data and runs beside other servers.
    return Settings(data_dir=data_dir, pg_shared_buffers_mb=256, pool_max_size=10)


@pytest.fixture(scope="session")
async def resources(settings: Settings) -> AsyncIterator[Resources]:
    async with open_resources(settings) as opened:
        yield opened


@pytest.fixture
def org_ids() -> tuple[str, str]:
    """Two fresh org ids per test, so tests never see each other's rows."""
    suffix = uuid.uuid4().hex[:8]
    return f"org-a-{suffix}", f"org-b-{suffix}"


@pytest.fixture(scope="session")
def api_url(resources: Resources, data_dir: Path) -> Iterator[str]:
    """One `tenantgraph serve` process sharing the session's embedded servers."""
    server = start_api_server(data_dir)
    yield server.url
    server.terminate()


@pytest.fixture
def tenants(api_url: str) -> Tenants:
    return Tenants.create(api_url)
