"""The commands' one way to the database: open the process's resources (embedded servers
included), run one piece of work with them, close them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenantgraph.resources import Resources, open_resources
from tenantgraph.settings import Settings

T = TypeVar("T")


def run_with_resources(settings: Settings, work: Callable[[Resources], Awaitable[T]]) -> T:
    async def main() -> T:
        async with open_resources(settings) as resources:
            return await work(resources)

    return asyncio.run(main())
