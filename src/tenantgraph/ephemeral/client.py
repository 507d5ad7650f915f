"""The one way the process connects to Valkey/Redis, a single server or a cluster.

Three choices, each found the hard way (tests/test_ephemeral_cancellation.py):

- A `BlockingConnectionPool`: redis-py's default async pool raises `MaxConnectionsError`
  once 100 commands are in flight (redis-py ≥ 8), so a burst of requests would fail
  instead of waiting for a connection. Its cluster client's per-node pools raise the same
  way, so there a semaphore makes commands wait for one of `max_connections` instead.
- No `socket_timeout` on Python < 3.12: redis-py then bounds every socket write with
  `asyncio.wait_for`, which on 3.11 swallows a cancellation that arrives as the write
  completes (CPython gh-86296, fixed in 3.12). The cancelled task silently carries on —
  a cancelled run or request keeps going. Connecting stays bounded
  (`socket_connect_timeout`) and TCP keepalive detects dead peers.
- redis-py ≥ 4.5.4 drops a connection whose command was cancelled before its reply was
  read (CVE-2023-28858/28859), so no caller is ever handed another's reply.

On a cluster (`TENANTGRAPH_REDIS_CLUSTER`) every key of one org shares its hash slot (the
`{org}` tag scope.py puts first), so each script, `MULTI` and multi-key command of the
product runs on one node and redis-py's cluster client follows `MOVED`/`ASK` when a slot
moves.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import AskError, MovedError, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["VALKEY_DOWN", "Client", "connect", "node_client"]

# What an unreachable Valkey raises (refused, reset, no connection free in the pool, a
# server still loading): an outage to wait out or to answer with 503, never a 500.
VALKEY_DOWN = (RedisConnectionError, RedisTimeoutError)

# Bounding socket I/O is safe only where asyncio.wait_for keeps cancellations (3.12+).
_SOCKET_TIMEOUT = 5.0 if sys.version_info >= (3, 12) else None

Client = aioredis.Redis | RedisCluster
_TRY_AGAIN_SECONDS = 0.05


def _socket_options(url: str) -> dict[str, Any]:
    return {
        "socket_timeout": _SOCKET_TIMEOUT,
        "socket_connect_timeout": 5.0,
        **({} if url.startswith("unix:") else {"socket_keepalive": True}),
    }


class _WaitingCluster(RedisCluster):
    """A cluster client whose commands wait up to `wait_seconds` for one of
    `max_connections`, as the single-server pool does, instead of failing at once."""

    def __init__(self, *args: Any, max_connections: int, wait_seconds: float, **kw: Any) -> None:
        # Pipelines take their connections from the node pools directly: leave them room.
        super().__init__(*args, max_connections=2 * max_connections, **kw)
        self._free = asyncio.Semaphore(max_connections)
        self._wait_seconds = wait_seconds

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(self._wait_seconds):
                await self._free.acquire()
        except TimeoutError:
            raise RedisConnectionError("No connection available.") from None
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            self._free.release()

    async def _execute_command(self, target_node: ClusterNode, *args: Any, **kwargs: Any) -> Any:
        """Follow an `ASK` with `ASKING` and the command on one connection.

        redis-py (8.1) sends `ASKING` and the redirected command as two pooled commands: with
        more than one free connection they go out on different ones, the target answers
        `MOVED` back to the source, and with several clients at once a stray `ASKING` lets
        another command run on the importing node (a run's events appended twice while
        its slot moved). A multi-key command whose keys are on both nodes for now
        (`TRYAGAIN`) is tried again for about a second, then counts as Valkey unavailable
        (a 503, or the rate limits' local bound), never a 500. Every other outcome is left
        to redis-py, which runs the command again.
        """
        for _ in range(self.RedisClusterRequestTTL):
            try:
                try:
                    return await target_node.execute_command(*args, **kwargs)
                except MovedError:
                    break  # not run: redis-py updates its slot table and sends it on
                except AskError as ask:
                    node = self.get_node(host=ask.host, port=int(ask.port))
                    if node is None:
                        break
                    return await _asking(node, *args, **kwargs)
            except TryAgainError:
                await asyncio.sleep(_TRY_AGAIN_SECONDS)
            except ResponseError:
                raise
            except VALKEY_DOWN:
                break  # redis-py's handling of a failed node
        else:
            raise RedisConnectionError(f"{args[0]}: its keys are moving between two nodes")
        return await super()._execute_command(target_node, *args, **kwargs)


async def _asking(node: ClusterNode, *args: Any, **kwargs: Any) -> Any:
    connection = node.acquire_connection()
    try:
        await node.disconnect_if_needed(connection)
        await connection.send_packed_command(connection.pack_commands([("ASKING",), args]))
        await connection.read_response()
        return await node.parse_response(connection, args[0], **kwargs)
    finally:
        node.release(connection)


def connect(
    url: str, *, cluster: bool = False, max_connections: int = 64, wait_seconds: float = 20
) -> Client:
    """A client for `url` (on a cluster: any node; the client finds the others) whose
    commands wait up to `wait_seconds` for one of its connections."""
    if cluster:
        return _WaitingCluster.from_url(
            url,
            max_connections=max_connections,
            wait_seconds=wait_seconds,
            **_socket_options(url),
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=wait_seconds, **_socket_options(url)
    )
    return aioredis.Redis.from_pool(pool)


def node_client(host: str, port: int) -> aioredis.Redis:
    """One connection to one node of a cluster, for a command the cluster client cannot
    hold open on a connection of its own (a stream reader's blocking `XREAD`)."""
    return aioredis.Redis(
        host=host, port=port, single_connection_client=True, **_socket_options("redis:")
    )
