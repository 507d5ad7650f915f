"""`tenantgraph memory …`: export and erase long-term memory (the GDPR path) as an operator.

The operator acts as the org's owner, so these commands run through the same tenant
transaction and the same `Memory` use cases as the HTTP admin routes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from tenantgraph.cli._resources import run_with_resources
from tenantgraph.scope import Principal, Role
from tenantgraph.services.memory import Memory
from tenantgraph.settings import Settings

memory_app = typer.Typer(help="Export and delete long-term memory (store items).")
console = Console(stderr=True)
OPERATOR = "tenantgraph-cli"
T = TypeVar("T")

OrgOption = Annotated[str, typer.Option("--org", help="Organisation id")]
UserOption = Annotated[str, typer.Option("--user", help="User id ('shared': the org space)")]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="tenantgraph.json or langgraph.json", exists=True)
]
YesOption = Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")]


def _run(config: Path | None, work: Callable[[Memory], Awaitable[T]]) -> T:
    settings = Settings(config=config) if config else Settings()
    return run_with_resources(
        settings, lambda resources: work(Memory(resources.db, resources.store_config))
    )


def _operator(org: str) -> Principal:
    return Principal(org, OPERATOR, Role.OWNER)


@memory_app.command("export")
def export(
    org: OrgOption,
    user: UserOption,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout)")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write every live item a user owns as JSON lines."""

    async def work(memory: Memory) -> int:
        count = 0
        sink = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            async for item in memory.export_user_items(_operator(org), user):
                sink.write(json.dumps(item, ensure_ascii=False) + "\n")
                count += 1
        finally:
            if output:
                sink.close()
        return count

    count = _run(config, work)
    console.print(f"exported [bold]{count}[/] items of {user} in {org}")


@memory_app.command("delete-user")
def delete_user(
    org: OrgOption, user: UserOption, yes: YesOption = False, config: ConfigOption = None
) -> None:
    """Delete every item a user owns in an org."""
    if not yes:
        typer.confirm(f"Delete all memory of user {user} in org {org}?", abort=True)
    deleted = _run(config, lambda memory: memory.delete_user_items(_operator(org), user))
    console.print(f"deleted [bold]{deleted}[/] items of {user} in {org}")


@memory_app.command("delete-org")
def delete_org(org: OrgOption, yes: YesOption = False, config: ConfigOption = None) -> None:
    """Delete every store item of an org (all users and the shared space)."""
    if not yes:
        typer.confirm(f"Delete all memory of org {org}?", abort=True)
    deleted = _run(config, lambda memory: memory.delete_org_items(_operator(org)))
    console.print(f"deleted [bold]{deleted}[/] items in {org}")
