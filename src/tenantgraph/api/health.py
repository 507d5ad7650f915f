"""Readiness (`GET /ready`): whether this process reaches Postgres and Valkey right now.

Liveness is `/ok`. Each check is bounded by `READY_TIMEOUT_SECONDS`, so a probe answers
within about a second even when a server hangs rather than refuses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from fastapi import Request
from fastapi.responses import JSONResponse

from tenantgraph.api.deps import app_state

__all__ = ["READY_TIMEOUT_SECONDS", "ready"]

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 1.0


async def _reachable(name: str, check: Awaitable[object]) -> bool:
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await check
    except Exception as exc:
        log.warning("not ready: %s out of reach (%r)", name, exc)
        return False
    return True


async def ready(request: Request) -> JSONResponse:
    """200 `{"postgres": "ok", "valkey": "ok"}` when both answer; else 503 with
    `Retry-After`, naming the one that is `unavailable`."""
    resources = app_state(request).resources
    postgres, valkey = await asyncio.gather(
        _reachable("Postgres", resources.db.ping(READY_TIMEOUT_SECONDS)),
        _reachable("Valkey", resources.redis.ping()),
    )
    body = {
        name: "ok" if up else "unavailable"
        for name, up in (("postgres", postgres), ("valkey", valkey))
    }
    if postgres and valkey:
        return JSONResponse(body)
    return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})
