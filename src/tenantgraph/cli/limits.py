"""`tenantgraph limits …`: an org's overrides of the default budgets and quotas, set by
the operator (who may raise them; an org's own admins may only tighten them over HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tenantgraph.cli._resources import run_with_resources
from tenantgraph.ephemeral.ratelimit import Bucket
from tenantgraph.scope import Principal, Role
from tenantgraph.services.limits import OrgLimits, Quota
from tenantgraph.settings import Limit, Settings

limits_app = typer.Typer(help="Show and set an organisation's budgets.", no_args_is_help=True)
console = Console()
OPERATOR = "tenantgraph-cli"

OrgOption = Annotated[str, typer.Option("--org", help="Organisation id")]
BucketOption = Annotated[Bucket | None, typer.Option("--bucket", help="The budget to change")]
QuotaOption = Annotated[Quota | None, typer.Option("--quota", help="The quota to change")]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="tenantgraph.json or langgraph.json", exists=True)
]


def _settings(config: Path | None) -> Settings:
    return Settings(config=config) if config else Settings()


def _operator(org: str) -> Principal:
    return Principal(org, OPERATOR, Role.OWNER)


def _one(bucket: Bucket | None, quota: Quota | None) -> Bucket | Quota:
    if (bucket is None) == (quota is None):
        raise typer.BadParameter("name one --bucket (a rate budget) or one --quota")
    return bucket or quota  # type: ignore[return-value]


@limits_app.command("show")
def show(org: OrgOption, config: ConfigOption = None) -> None:
    """Every budget and quota of the org: its override, or the default."""
    settings = _settings(config)
    budgets = run_with_resources(
        settings,
        lambda r: OrgLimits.from_settings(r.db, settings, r.store_config.limits).effective(
            _operator(org)
        ),
    )
    table = Table("budget or quota", "limit", "window (s)", "source")
    for name, budget in budgets.items():
        limit = "unlimited" if budget["limit"] is None else str(budget["limit"])
        table.add_row(name, limit, str(budget.get("window_seconds", "-")), budget["source"])
    console.print(table)


@limits_app.command("set")
def set_limit(
    org: OrgOption,
    limit: Annotated[
        int, typer.Option(min=1, help="Tokens the bucket holds, or the quota's items or bytes")
    ],
    bucket: BucketOption = None,
    quota: QuotaOption = None,
    window: Annotated[int, typer.Option(min=1, help="Seconds to refill a bucket")] = 60,
    config: ConfigOption = None,
) -> None:
    """Override one budget (--bucket) or quota (--quota) of the org."""
    if isinstance(chosen := _one(bucket, quota), Quota):
        run_with_resources(
            _settings(config), lambda r: OrgLimits(r.db).set_quota(_operator(org), chosen, limit)
        )
        console.print(f"{org}: {chosen.value} = {limit}")
        return
    budget = Limit(limit=limit, window_seconds=window)
    run_with_resources(
        _settings(config), lambda r: OrgLimits(r.db).set(_operator(org), chosen, budget)
    )
    console.print(f"{org}: {chosen.value} = {limit} per {window} s")


@limits_app.command("reset")
def reset(
    org: OrgOption,
    bucket: BucketOption = None,
    quota: QuotaOption = None,
    config: ConfigOption = None,
) -> None:
    """Back to the default for one budget (--bucket) or quota (--quota) of the org."""
    chosen = _one(bucket, quota)
    operator = _operator(org)
    run_with_resources(
        _settings(config),
        lambda r: (
            OrgLimits(r.db).set_quota(operator, chosen, None)
            if isinstance(chosen, Quota)
            else OrgLimits(r.db).set(operator, chosen, None)
        ),
    )
    console.print(f"{org}: {chosen.value} follows the default")
