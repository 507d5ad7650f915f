"""The process's shared resources, opened and closed in one place.

`open_resources` starts (or reuses) the embedded servers when no external URL is given,
migrates, opens the runtime pool, the Valkey client, the stream hub and the outbound
HTTP client, and undoes all of it on exit in reverse order. The HTTP app's lifespan,
the worker and the tests all go through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass

import redis.asyncio as aioredis

from tenantgraph import __version__
from tenantgraph.db.database import Database
from tenantgraph.db.embedded import EmbeddedPostgres
from tenantgraph.db.migrate import app_conninfo, migrate
from tenantgraph.embedded import EmbeddedValkey, SharedServer, supervise
from tenantgraph.ephemeral.client import connect
from tenantgraph.runtime.outbound import OutboundClient
from tenantgraph.runtime.stream_hub import CONTROL_CONNECTIONS, StreamHub
from tenantgraph.secret_key import SecretKey
from tenantgraph.services.tenant_store import StoreConfig
from tenantgraph.settings import Settings

__all__ = [
    "Resources",
    "admin_conninfo",
    "hold_embedded_servers",
    "open_resources",
    "redis_url",
    "runtime_conninfo",
    "startup_line",
]


def startup_line(settings: Settings, graph_ids: list[str], concurrency: int) -> str:
    """What a starting process runs with, for its first log line: an operator sees at once
    a worker started from the wrong directory or with an older config."""
    config_file = settings.config_file
    line = (
        f"tenantgraph {__version__}: data dir {settings.data_dir.resolve()}, "
        f"config {config_file.path or 'none'}, graphs {', '.join(sorted(graph_ids)) or 'none'}, "
        f"worker concurrency {concurrency}"
    )
    if config_file.build_keys:
        line += f"; build-time config keys, no-ops here: {', '.join(config_file.build_keys)}"
    if config_file.unknown_keys:
        line += f"; WARNING: unknown config keys, ignored: {', '.join(config_file.unknown_keys)}"
    return line


@dataclass
class Resources:
    settings: Settings
    db: Database
    redis: aioredis.Redis
    streams: StreamHub
    admin_conninfo: str
    store_config: StoreConfig
    outbound: OutboundClient  # requests to tenants' URLs (webhooks), SSRF-guarded
    secret_key: SecretKey  # signs browser tokens, encrypts tenants' secrets at rest


async def admin_conninfo(settings: Settings, stack: AsyncExitStack) -> str:
    """The admin (migration) conninfo, starting embedded Postgres if none is configured."""
    if settings.database_url:
        return settings.database_url
    server = _embedded_postgres(settings)
    conninfo = await asyncio.to_thread(server.start)
    stack.push_async_callback(asyncio.to_thread, server.stop)
    _supervise(settings, server, stack)
    return conninfo


async def redis_url(settings: Settings, stack: AsyncExitStack) -> str:
    """The Valkey/Redis URL, starting embedded Valkey if none is configured."""
    if settings.redis_url:
        return settings.redis_url
    server = EmbeddedValkey(settings.data_dir)
    url = await asyncio.to_thread(server.start)
    stack.push_async_callback(asyncio.to_thread, server.stop)
    _supervise(settings, server, stack)
    return url


def _supervise(settings: Settings, server: SharedServer, stack: AsyncExitStack | ExitStack) -> None:
    """Restart the embedded server while this process holds it, unless told not to; stopped
    before the server is let go (the stack unwinds in reverse)."""
    if settings.supervise_embedded:
        stack.enter_context(supervise(server))


def _embedded_postgres(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.data_dir, shared_buffers_mb=settings.pg_shared_buffers_mb)


@contextmanager
def hold_embedded_servers(settings: Settings) -> Iterator[None]:
    """Keep the embedded servers these settings use (those without a URL) running for the
    block, for a process that opens no resources itself: the parent of several server
    processes, so a worker process that uvicorn restarts never finds them stopped."""
    with ExitStack() as stack:
        if not settings.database_url:
            postgres = _embedded_postgres(settings)
            postgres.start()
            stack.callback(postgres.stop)
            _supervise(settings, postgres, stack)
        if not settings.redis_url:
            valkey = EmbeddedValkey(settings.data_dir)
            valkey.start()
            stack.callback(valkey.stop)
            _supervise(settings, valkey, stack)
        yield


def runtime_conninfo(settings: Settings, admin_conninfo: str) -> str:
    """The runtime role's conninfo: given explicitly, or the admin one with the role swapped."""
    if settings.app_database_url:
        return settings.app_database_url
    return app_conninfo(admin_conninfo, settings.app_password)


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    secret_key = SecretKey.from_settings(settings)  # first: a missing key fails fast
    async with AsyncExitStack() as stack:
        admin = await admin_conninfo(settings, stack)
        await migrate(admin, app_password=settings.app_password)
        db = Database(
            runtime_conninfo(settings, admin),
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            timeout=settings.pool_timeout_seconds,
        )
        await db.open()
        stack.push_async_callback(db.close)
        url = await redis_url(settings, stack)
        cluster = settings.redis_cluster
        client = connect(url, cluster=cluster)
        stack.push_async_callback(client.aclose)
        # Streams read through a pool of their own: no number of them takes a connection
        # from requests (rate limits, idempotency, auth) or run publishing.
        readers = settings.stream_readers
        streams = StreamHub(
            connect(url, cluster=cluster, max_connections=readers + CONTROL_CONNECTIONS),
            readers=readers,
        )
        stack.push_async_callback(streams.aclose)
        outbound = OutboundClient(
            settings.outbound_allowed_networks,
            timeout=settings.outbound_timeout_seconds,
            user_agent=f"tenantgraph/{__version__}",
        )
        stack.push_async_callback(outbound.aclose)
        yield Resources(
            settings=settings,
            db=db,
            redis=client,
            streams=streams,
            admin_conninfo=admin,
            store_config=StoreConfig.from_mapping(
                settings.config_file.store, settings.config_file.base_dir
            ),
            outbound=outbound,
            secret_key=secret_key,
        )
