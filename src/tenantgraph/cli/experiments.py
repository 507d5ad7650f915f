"""`tenantgraph experiments …`: an org's experiments and their results, as tables, for the
operator (acting as the org's owner through the same use cases as the HTTP routes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tenantgraph.cli._resources import run_with_resources
from tenantgraph.scope import Principal, Role
from tenantgraph.services.experiments import Experiments
from tenantgraph.settings import Settings

experiments_app = typer.Typer(help="List experiments and show their results.", no_args_is_help=True)
console = Console()
OPERATOR = "tenantgraph-cli"

OrgOption = Annotated[str, typer.Option("--org", help="Organisation id")]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="tenantgraph.json or langgraph.json", exists=True)
]


def _settings(config: Path | None) -> Settings:
    return Settings(config=config) if config else Settings()


def _number(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@experiments_app.command("list")
def list_experiments(org: OrgOption, config: ConfigOption = None) -> None:
    """Every experiment of the org: name, status, variants and weights, metric."""
    rows = run_with_resources(
        _settings(config), lambda r: Experiments(r.db).list(Principal(org, OPERATOR, Role.OWNER))
    )
    table = Table("name", "status", "variants", "metric", "started", "ended")
    for row in rows:
        variants = ", ".join(f"{v['name']} ({v['weight']:g})" for v in row["variants"])
        metric = f"{row['metric']['key']} ({row['metric']['goal']})"
        table.add_row(
            row["name"],
            row["status"],
            variants,
            metric,
            str(row["start_time"] or "-"),
            str(row["end_time"] or "-"),
        )
    console.print(table)


@experiments_app.command("results")
def results(
    name: Annotated[str, typer.Argument(help="The experiment's name")],
    org: OrgOption,
    config: ConfigOption = None,
) -> None:
    """Per variant: users, runs, feedback, mean with its 95% interval, and the difference
    to the first variant with its p-value and significance; the significant winner."""
    report = run_with_resources(
        _settings(config),
        lambda r: Experiments(r.db).results(Principal(org, OPERATOR, Role.OWNER), name),
    )
    table = Table(
        "variant",
        "users",
        "runs",
        "feedback",
        "mean",
        "95% interval",
        "difference",
        "p-value",
        "significant",
        title=f"{report['name']} ({report['status']}): {report['metric']['key']}",
        caption=f"significant winner: {report['significant_winner'] or 'none'}",
    )
    for v in report["variants"]:
        table.add_row(
            v["name"],
            str(v["users"]),
            str(v["runs"]),
            str(v["feedback"]),
            _number(v["mean"]),
            f"[{_number(v['ci_low'])}, {_number(v['ci_high'])}]",
            _number(v.get("difference")),
            _number(v.get("p_value"), 4),
            {True: "yes", False: "no"}.get(v.get("significant"), "-"),
        )
    console.print(table)
