"""The commands' one way to the database: open the process's resources (embedded servers
included), run one piece of work with them, close them. An error of the family (a missing
org, a refused change) ends the command with its message, not a traceback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console

from tenantgraph.errors import TenantgraphError
from tenantgraph.resources import Resources, open_resources
from tenantgraph.settings import Settings

T = TypeVar("T")
_errors = Console(stderr=True)


def run_with_resources(settings: Settings, work: Callable[[Resources], Awaitable[T]]) -> T:
    async def main() -> T:
        async with open_resources(settings) as resources:
            return await work(resources)

    try:
        return asyncio.run(main())
    except TenantgraphError as exc:
        _errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
