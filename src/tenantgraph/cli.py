"""The `tenantgraph` command: serve, migrate and operate a deployment."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from tenantgraph.settings import Settings

app = typer.Typer(
    help="A multi-tenant agent server for LangGraph applications.", no_args_is_help=True
)
console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="tenantgraph.json or langgraph.json", exists=True)
]


def _settings(config: Path | None) -> Settings:
    return Settings(config=config) if config else Settings()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8123,
    config: ConfigOption = None,
) -> None:
    """Run the API server (starts embedded Postgres and Valkey when no URL is set)."""
    from tenantgraph.api.app import create_app

    settings = _settings(config)
    console.print(
        f"[bold]tenantgraph[/] serving on http://{host}:{port} (data: {settings.data_dir})"
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@app.command()
def migrate(config: ConfigOption = None) -> None:
    """Create the roles and apply pending schema migrations, then exit."""
    from tenantgraph.db.migrate import migrate as run_migrations
    from tenantgraph.resources import admin_conninfo

    settings = _settings(config)

    async def run() -> list[str]:
        async with AsyncExitStack() as stack:
            conninfo = await admin_conninfo(settings, stack)
            applied = await run_migrations(conninfo, app_password=settings.app_password)
            return [f"{m.version:04d}_{m.name}" for m in applied]

    applied = asyncio.run(run())
    if applied:
        for name in applied:
            console.print(f"applied [green]{name}[/]")
    else:
        console.print("schema is up to date")


if __name__ == "__main__":
    app()
