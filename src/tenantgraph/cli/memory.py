"""`tenantgraph memory …`: export and erase long-term memory and the feedback users gave (the
GDPR path) as an operator.

The operator acts as the org's owner, so these commands run through the same tenant
transaction and the same `Memory` and `Feedback` use cases as the HTTP admin routes.
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
from tenantgraph.services.feedback import Feedback
from tenantgraph.services.feedback_tokens import FeedbackTokens
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


def _run(config: Path | None, work: Callable[[Memory, Feedback], Awaitable[T]]) -> T:
    settings = Settings(config=config) if config else Settings()
    return run_with_resources(
        settings,
        lambda resources: work(
            Memory(resources.db, resources.store_config),
            Feedback(resources.db, FeedbackTokens(resources.secret_key)),
        ),
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
    """Write every live item a user owns, then the feedback they gave, as JSON lines."""

    async def work(memory: Memory, feedback: Feedback) -> int:
        count = 0
        sink = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            async for item in memory.export_user_items(_operator(org), user):
                sink.write(json.dumps(item, ensure_ascii=False) + "\n")
                count += 1
            async for event in feedback.export_user(_operator(org), user):
                sink.write(json.dumps({"feedback": event}, ensure_ascii=False, default=str) + "\n")
                count += 1
        finally:
            if output:
                sink.close()
        return count

    count = _run(config, work)
    console.print(f"exported [bold]{count}[/] items and feedback events of {user} in {org}")


@memory_app.command("delete-user")
def delete_user(
    org: OrgOption, user: UserOption, yes: YesOption = False, config: ConfigOption = None
) -> None:
    """Delete every item a user owns in an org, and the feedback they gave."""
    if not yes:
        typer.confirm(f"Delete all memory and feedback of user {user} in org {org}?", abort=True)

    async def work(memory: Memory, feedback: Feedback) -> tuple[int, int]:
        principal = _operator(org)
        items = await memory.delete_user_items(principal, user)
        return items, await feedback.delete_user(principal, user)

    items, events = _run(config, work)
    console.print(f"deleted [bold]{items}[/] items and {events} feedback events of {user} in {org}")


@memory_app.command("delete-org")
def delete_org(org: OrgOption, yes: YesOption = False, config: ConfigOption = None) -> None:
    """Delete every store item of an org (all users and the shared space) and its feedback."""
    if not yes:
        typer.confirm(f"Delete all memory and feedback of org {org}?", abort=True)

    async def work(memory: Memory, feedback: Feedback) -> tuple[int, int]:
        principal = _operator(org)
        items = await memory.delete_org_items(principal)
        return items, await feedback.delete_org(principal)

    items, events = _run(config, work)
    console.print(f"deleted [bold]{items}[/] items and {events} feedback events in {org}")
