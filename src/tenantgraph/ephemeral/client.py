"""The one way the process connects to Valkey/Redis.

Three choices, each found the hard way (tests/test_ephemeral_cancellation.py):

- A `BlockingConnectionPool`: redis-py's default async pool raises `MaxConnectionsError`
  once 100 commands are in flight (redis-py ≥ 8), so a burst of requests would fail
  instead of waiting for a connection.
- No `socket_timeout` on Python < 3.12: redis-py then bounds every socket write with
  `asyncio.wait_for`, which on 3.11 swallows a cancellation that arrives as the write
  completes (CPython gh-86296, fixed in 3.12). The cancelled task silently carries on —
  a cancelled run or request keeps going. Connecting stays bounded
  (`socket_connect_timeout`) and TCP keepalive detects dead peers.
- redis-py ≥ 4.5.4 drops a connection whose command was cancelled before its reply was
  read (CVE-2023-28858/28859), so no caller is ever handed another's reply.
"""

from __future__ import annotations

import sys

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["VALKEY_DOWN", "connect"]

# What an unreachable Valkey raises (refused, reset, no connection free in the pool, a
# server still loading): an outage to wait out or to answer with 503, never a 500.
VALKEY_DOWN = (RedisConnectionError, RedisTimeoutError)

# Bounding socket I/O is safe only where asyncio.wait_for keeps cancellations (3.12+).
_SOCKET_TIMEOUT = 5.0 if sys.version_info >= (3, 12) else None


def connect(url: str, *, max_connections: int = 64, wait_seconds: float = 20) -> aioredis.Redis:
    """A client for `url` whose pool waits up to `wait_seconds` for one of its connections."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=wait_seconds,
        socket_timeout=_SOCKET_TIMEOUT,
        socket_connect_timeout=5.0,
        **({} if url.startswith("unix:") else {"socket_keepalive": True}),
    )
    return aioredis.Redis.from_pool(pool)
