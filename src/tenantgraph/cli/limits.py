"""`tenantgraph limits …`: an org's overrides of the default budgets, set by the operator
(who may raise them; an org's own admins may only tighten them over HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tenantgraph.cli._resources import run_with_resources
from tenantgraph.ephemeral.ratelimit import Bucket
from tenantgraph.scope import Principal, Role
from tenantgraph.services.limits import OrgLimits
from tenantgraph.settings import Limit, Settings

limits_app = typer.Typer(help="Show and set an organisation's budgets.", no_args_is_help=True)
console = Console()
OPERATOR = "tenantgraph-cli"

OrgOption = Annotated[str, typer.Option("--org", help="Organisation id")]
BucketOption = Annotated[Bucket, typer.Option("--bucket", help="The budget to change")]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="tenantgraph.json or langgraph.json", exists=True)
]


def _settings(config: Path | None) -> Settings:
    return Settings(config=config) if config else Settings()


def _operator(org: str) -> Principal:
    return Principal(org, OPERATOR, Role.OWNER)


@limits_app.command("show")
def show(org: OrgOption, config: ConfigOption = None) -> None:
    """Every budget of the org: its override, or the default."""
    settings = _settings(config)
    budgets = run_with_resources(
        settings,
        lambda r: OrgLimits(r.db, settings.ephemeral.rate_limits).effective(_operator(org)),
    )
    table = Table("bucket", "limit", "window (s)", "source")
    for bucket, budget in budgets.items():
        table.add_row(bucket, str(budget["limit"]), str(budget["window_seconds"]), budget["source"])
    console.print(table)


@limits_app.command("set")
def set_limit(
    org: OrgOption,
    bucket: BucketOption,
    limit: Annotated[int, typer.Option(min=1, help="Tokens the bucket holds")],
    window: Annotated[int, typer.Option(min=1, help="Seconds to refill all of them")] = 60,
    config: ConfigOption = None,
) -> None:
    """Override one budget of the org."""
    chosen = Limit(limit=limit, window_seconds=window)
    run_with_resources(
        _settings(config), lambda r: OrgLimits(r.db).set(_operator(org), bucket, chosen)
    )
    console.print(f"{org}: {bucket.value} = {limit} per {window} s")


@limits_app.command("reset")
def reset(org: OrgOption, bucket: BucketOption, config: ConfigOption = None) -> None:
    """Back to the default for one budget of the org."""
    run_with_resources(
        _settings(config), lambda r: OrgLimits(r.db).set(_operator(org), bucket, None)
    )
    console.print(f"{org}: {bucket.value} follows the default")
