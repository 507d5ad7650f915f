"""Helpers for the run tests: waiting for a run's status, slow-graph configs, SSE parts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph_sdk.client import LangGraphClient

HI = {"messages": [{"role": "user", "content": "hi"}]}


def slow(steps: int = 3, delay: float = 0.2, **extra: Any) -> dict[str, Any]:
    """Config for examples/slow.py: `steps` ticks of `delay` seconds."""
    return {"configurable": {"steps": steps, "delay": delay, **extra}}


async def until_status(
    sdk: LangGraphClient, thread_id: str, run_id: str, *statuses: str
) -> dict[str, Any]:
    """Poll the run until its status is one of `statuses` (the SDK has no watch call)."""
    async with asyncio.timeout(30):
        while True:
            run = await sdk.runs.get(thread_id, run_id)
            if run["status"] in statuses:
                return run
            await asyncio.sleep(0.05)


async def until(check: Callable[[], Awaitable[Any]], deadline: float = 60) -> Any:
    """Poll `check()` until it returns something truthy, and return that."""
    async with asyncio.timeout(deadline):
        while True:
            if found := await check():
                return found
            await asyncio.sleep(0.1)


async def parts(stream: Any) -> list[tuple[str, Any]]:
    """Every (event, data) of an SDK stream."""
    return [(part.event, part.data) for part in [p async for p in stream]]
