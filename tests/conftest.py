"""Shared fixtures: one embedded Postgres + Valkey for the whole session, as in production."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tenantgraph.ephemeral.audit import audit_keys
from tenantgraph.resources import Resources, open_resources
from tenantgraph.settings import Settings

from .api_fixtures import Tenants, start_api_server
from .servers import SECRET_KEY, create_database

API_DATABASE = "tenantgraph_api"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def settings(data_dir: Path) -> Settings:
    # Small shared_buffers: the suite holds little data and runs beside other servers.
    return Settings(data_dir=data_dir, pg_shared_buffers_mb=256, pool_max_size=10)


@pytest.fixture(scope="session")
async def resources(settings: Settings) -> AsyncIterator[Resources]:
    """The session's servers. When the session ends (after every test and server process
    that used them, whatever the file order), Valkey must hold no key without a TTL or an
    org hash tag: the same audit as `tenantgraph redis audit`."""
    async with open_resources(settings) as opened:
        yield opened
        report = await audit_keys(opened.redis)
        assert report.ok, f"immortal: {report.without_ttl[:20]} untagged: {report.untagged[:20]}"


@pytest.fixture
def org_ids() -> tuple[str, str]:
    """Two fresh org ids per test, so tests never see each other's rows."""
    suffix = uuid.uuid4().hex[:8]
    return f"org-a-{suffix}", f"org-b-{suffix}"


@pytest.fixture
async def fresh_database(resources: Resources) -> str:
    """The admin conninfo of a new, empty database on the session's server: for a test
    whose workers or migrations must not meet any other test's rows."""
    return await create_database(resources.admin_conninfo, f"tenantgraph_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
async def api_env(resources: Resources, settings: Settings) -> dict[str, str]:
    """Environment of the API server processes: the session's embedded Postgres, but a
    database of their own, so their workers never take the runs that in-process runtime
    tests queue for their own workers; the session's Valkey (embedded, or tests_cluster's
    cluster)."""
    database = await create_database(resources.admin_conninfo, API_DATABASE)
    env = {"DATABASE_URL": database, "TENANTGRAPH_SECRET_KEY": SECRET_KEY}
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
        env["TENANTGRAPH_REDIS_CLUSTER"] = str(settings.redis_cluster).lower()
    return env


@pytest.fixture(scope="session")
def api_url(api_env: dict[str, str], data_dir: Path) -> Iterator[str]:
    """One `tenantgraph serve` process sharing the session's embedded servers."""
    server = start_api_server(data_dir, **api_env)
    yield server.url
    server.terminate()


@pytest.fixture
def tenants(api_url: str) -> Tenants:
    return Tenants.create(api_url)
