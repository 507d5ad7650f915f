"""The cluster suite (`make test-cluster`): the main suite's fixtures, with Valkey a
3-master cluster started for the session from the embedded binaries. Its modules re-export
the main suite's Valkey tests, which then run against the cluster unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from tests.conftest import api_env, api_url, data_dir, fresh_database, org_ids, resources, tenants

from tenantgraph.settings import Settings

from .valkey_cluster import CommandLog, ValkeyCluster

__all__ = [
    "api_env",
    "api_url",
    "command_log",
    "data_dir",
    "fresh_database",
    "org_ids",
    "resources",
    "settings",
    "tenants",
    "valkey_cluster",
]


@pytest.fixture(scope="session")
def valkey_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyCluster]:
    cluster = ValkeyCluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def settings(data_dir: Path, valkey_cluster: ValkeyCluster) -> Settings:
    return Settings(
        data_dir=data_dir,
        pg_shared_buffers_mb=256,
        pool_max_size=10,
        redis_url=valkey_cluster.url,
        redis_cluster=True,
    )


@pytest.fixture(scope="session", autouse=True)
async def command_log(valkey_cluster: ValkeyCluster) -> AsyncIterator[CommandLog]:
    """What the cluster runs during the whole suite, checked by test_one_slot.py last."""
    log = CommandLog(valkey_cluster)
    await log.start()
    yield log
    await log.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The check of every command the suite sent runs after the suite."""
    last = [i for i in items if i.get_closest_marker("after_the_suite")]
    items[:] = [i for i in items if i not in last] + last


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "after_the_suite: runs after every other test")
