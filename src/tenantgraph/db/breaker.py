"""A circuit breaker in front of the pool: while Postgres is known to be down, callers fail
at once with `Unavailable` instead of each waiting out the pool's timeout."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from tenantgraph.errors import Unavailable

__all__ = ["Breaker"]

log = logging.getLogger(__name__)

# How often an open breaker asks the server again: the delay between its return and service.
PROBE_SECONDS = 0.25


class Breaker:
    """Closed, callers use the pool. A caller that lost its connection or waited out the
    pool calls `suspect()`, which starts one watcher: it `probe()`s the server (a fresh
    connection). A probe that fails opens the breaker, so every caller fails at once, and is
    repeated every `PROBE_SECONDS`; the first that succeeds runs `recover()` (the pool drops
    its dead connections and refills) and closes the breaker.

    A connection lost alone (a terminated backend, a restarted proxy) costs one failed call
    and one probe, never an open breaker: only a server that refuses new connections opens it.
    """

    def __init__(
        self,
        probe: Callable[[], Awaitable[None]],
        recover: Callable[[], Awaitable[None]],
        *,
        probe_seconds: float = PROBE_SECONDS,
    ) -> None:
        self._probe = probe
        self._recover = recover
        self._probe_seconds = probe_seconds
        self._open = False
        self._watcher: asyncio.Task[None] | None = None

    @property
    def is_open(self) -> bool:
        return self._open

    def check(self) -> None:
        """Raise `Unavailable` while the server is known to be down."""
        if self._open:
            raise Unavailable("the database is out of reach; retry shortly")

    def suspect(self) -> None:
        """A call failed as if the server were down: find out, unless a watcher is at it."""
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="database breaker")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None

    async def _watch(self) -> None:
        while True:
            try:
                await self._probe()
            except Exception as exc:
                if not self._open:
                    log.warning("database out of reach (%s); failing fast until it answers", exc)
                    self._open = True
                await asyncio.sleep(self._probe_seconds)
                continue
            if self._open:
                try:
                    await self._recover()
                except Exception:
                    log.exception("database answers, but refilling the pool failed; retrying")
                    await asyncio.sleep(self._probe_seconds)
                    continue
                log.warning("database answers again; serving")
                self._open = False
            return
