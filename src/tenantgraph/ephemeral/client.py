"""The one way the process connects to Valkey/Redis.

redis-py's default async pool raises `MaxConnectionsError` once 100 commands are in flight
(redis-py ≥ 8), so a burst of concurrent requests would fail instead of waiting. A
`BlockingConnectionPool` queues them for a free connection instead. Cancelling a command
mid-flight is safe with redis-py ≥ 4.5.4 (CVE-2023-28858/28859): the connection is
dropped rather than returned with an unread reply (tests/test_ephemeral_cancellation.py).
"""

from __future__ import annotations

import redis.asyncio as aioredis

__all__ = ["connect"]


def connect(url: str, *, max_connections: int = 64, wait_seconds: float = 20) -> aioredis.Redis:
    """A client for `url` whose pool waits up to `wait_seconds` for one of its connections."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=wait_seconds
    )
    return aioredis.Redis.from_pool(pool)
