"""`tenantgraph redis …`: operate the Valkey/Redis state from the command line."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tenantgraph.ephemeral.audit import AuditReport, audit_keys
from tenantgraph.ephemeral.client import connect
from tenantgraph.settings import Settings

__all__ = ["redis_app"]

redis_app = typer.Typer(help="Inspect the Valkey/Redis tenant state.", no_args_is_help=True)
console = Console()


@redis_app.callback()
def main() -> None:
    """Inspect the Valkey/Redis tenant state (REDIS_URL, or the embedded Valkey)."""


async def _audit(settings: Settings) -> AuditReport:
    # The same URL resolution as the server (embedded Valkey when REDIS_URL is unset).
    from tenantgraph.resources import redis_url

    async with AsyncExitStack() as stack:
        client = connect(await redis_url(settings, stack), cluster=settings.redis_cluster)
        stack.push_async_callback(client.aclose)
        return await audit_keys(client)


@redis_app.command()
def audit(
    config: Annotated[
        Path | None, typer.Option("--config", help="tenantgraph.json or langgraph.json")
    ] = None,
    show: Annotated[int, typer.Option(help="How many offending keys to list")] = 50,
) -> None:
    """List keys without a TTL or without an org hash tag; exit 1 if there is any."""
    report = asyncio.run(_audit(Settings(config=config) if config else Settings()))
    for title, keys in (("without TTL", report.without_ttl), ("without org tag", report.untagged)):
        if keys:
            table = Table(title=f"{len(keys)} keys {title}")
            table.add_column("key")
            for key in keys[:show]:
                table.add_row(key)
            console.print(table)
    verdict = "[green]ok[/]" if report.ok else "[red]FAILED[/]"
    console.print(
        f"{verdict}: scanned {report.scanned} keys, {len(report.without_ttl)} without TTL, "
        f"{len(report.untagged)} without org tag"
    )
    if not report.ok:
        raise typer.Exit(1)
