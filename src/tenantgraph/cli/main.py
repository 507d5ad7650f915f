"""The `tenantgraph` command: serve, migrate and operate a deployment."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from tenantgraph.cli._resources import run_with_resources
from tenantgraph.cli.experiments import experiments_app
from tenantgraph.cli.limits import limits_app
from tenantgraph.cli.memory import memory_app
from tenantgraph.cli.redis import redis_app
from tenantgraph.scope import Principal, Role
from tenantgraph.settings import Settings

if TYPE_CHECKING:
    from tenantgraph.api.shutdown import Shutdown
    from tenantgraph.resources import Resources

T = TypeVar("T")

app = typer.Typer(
    help="A multi-tenant agent server for LangGraph applications.", no_args_is_help=True
)
console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="tenantgraph.json or langgraph.json", exists=True)
]


def _print_table(table: Table) -> None:
    """On a terminal, fitted to it; piped, never cut (a script reads every id and scope)."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=1000)
    console.print(table)


def _settings(config: Path | None) -> Settings:
    return Settings(config=config) if config else Settings()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8123,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="TENANTGRAPH_SERVE_WORKERS",
            help="Server processes sharing the port, each with its own pool and run worker",
        ),
    ] = 1,
    reload: Annotated[
        bool,
        typer.Option(
            "--reload",
            help="Development: restart the server when a .py, .json or .env file under the "
            "config file's directory changes",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Run the API server (starts embedded Postgres and Valkey when no URL is set)."""
    from tenantgraph.api.app import create_app
    from tenantgraph.api.observability import LOGGING
    from tenantgraph.api.shutdown import signals_noted
    from tenantgraph.resources import hold_embedded_servers

    if reload and workers > 1:
        raise typer.BadParameter("--reload runs one server process; leave out --workers")
    settings = _settings(config)
    console.print(
        f"[bold]tenantgraph[/] serving on http://{host}:{port} (data: {settings.data_dir}"
        f", {workers} process{'es' if workers > 1 else ''}{', reloading' if reload else ''})"
    )
    # uvicorn waits this long for open connections; the app ends its streams at the signal
    # (api/shutdown.py) and gives the worker what is left.
    grace = settings.shutdown_grace_seconds
    if workers == 1 and not reload:
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_config=LOGGING,
            timeout_graceful_shutdown=grace,  # type: ignore[arg-type]
        )
        return
    with (
        signals_noted() as received,
        hold_embedded_servers(settings),
        tempfile.TemporaryDirectory() as samples,
    ):
        if received:  # a signal while the embedded servers started: stop them now
            return
        # uvicorn's worker processes (or, reloading, each new server process) are spawned
        # and build the app from the environment; the embedded servers outlive them here.
        if config is not None:
            os.environ["TENANTGRAPH_CONFIG"] = str(config.resolve())
        watch = {}
        if reload:
            watch = {
                "reload": True,
                "reload_dirs": [str(settings.config_file.base_dir)],
                "reload_includes": ["*.py", "*.json", ".env"],
            }
        else:  # prometheus_client reads its multi-process directory when imported
            os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", samples)
        uvicorn.run(
            "tenantgraph.api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=LOGGING,
            timeout_graceful_shutdown=grace,  # type: ignore[arg-type]
            **watch,
        )


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


def _run(work: Callable[[Resources], Awaitable[T]]) -> T:
    """Open the resources (embedded servers included), run `work`, close them."""
    return run_with_resources(Settings(), work)


orgs_app = typer.Typer(help="Manage organisations.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage an organisation's API keys.", no_args_is_help=True)
app.add_typer(orgs_app, name="orgs")
app.add_typer(keys_app, name="keys")
app.add_typer(redis_app, name="redis")
app.add_typer(memory_app, name="memory")
app.add_typer(limits_app, name="limits")
app.add_typer(experiments_app, name="experiments")


@orgs_app.command("create")
def orgs_create(
    org_id: str,
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    owner: Annotated[str | None, typer.Option(help="user id of the first owner")] = None,
) -> None:
    """Create an organisation."""
    from tenantgraph.services.orgs import Orgs

    row = _run(lambda r: Orgs(r.db, r.redis).create_org(org_id, name or org_id, owner=owner))
    console.print(f"created organisation [bold]{row['org_id']}[/]")


@orgs_app.command("list")
def orgs_list(limit: int = 100, offset: int = 0) -> None:
    """List organisations."""
    from tenantgraph.services.orgs import Orgs

    rows = _run(lambda r: Orgs(r.db, r.redis).list_orgs(limit=limit, offset=offset))
    table = Table("org_id", "name", "created_at")
    for row in rows:
        table.add_row(row["org_id"], row["name"], row["created_at"].isoformat())
    _print_table(table)


@orgs_app.command("delete")
def orgs_delete(org_id: str, yes: Annotated[bool, typer.Option("--yes")] = False) -> None:
    """Delete an organisation and everything it owns."""
    from tenantgraph.services.orgs import Orgs

    if not yes:
        typer.confirm(f"Delete organisation {org_id} and all of its data?", abort=True)
    _run(lambda r: Orgs(r.db, r.redis).delete_org(org_id))
    console.print(f"deleted organisation [bold]{org_id}[/]")


@orgs_app.command("members")
def orgs_members(org_id: str) -> None:
    """List an organisation's members and their roles."""
    from tenantgraph.services.orgs import Orgs

    rows = _run(lambda r: Orgs(r.db, r.redis).list_members(Principal(org_id, "cli", Role.OWNER)))
    table = Table("user_id", "role", "created_at")
    for row in rows:
        table.add_row(row["user_id"], row["role"], row["created_at"].isoformat())
    _print_table(table)


@orgs_app.command("set-member")
def orgs_set_member(
    org_id: str,
    user_id: str,
    role: Annotated[Role, typer.Option(help="role in the organisation")] = Role.MEMBER,
) -> None:
    """Add a member or change their role."""
    from tenantgraph.services.orgs import Orgs

    owner = Principal(org_id, "cli", Role.OWNER)
    _run(lambda r: Orgs(r.db, r.redis).set_member(owner, user_id, role))
    console.print(f"{user_id} is {role.value} of [bold]{org_id}[/]")


@orgs_app.command("remove-member")
def orgs_remove_member(org_id: str, user_id: str) -> None:
    """Remove a member from an organisation."""
    from tenantgraph.services.orgs import Orgs

    _run(lambda r: Orgs(r.db, r.redis).delete_member(Principal(org_id, "cli", Role.OWNER), user_id))
    console.print(f"removed {user_id} from [bold]{org_id}[/]")


@orgs_app.command("purge")
def orgs_purge(org_id: str) -> None:
    """Remove every Valkey key of an organisation (its Postgres data stays)."""
    from tenantgraph.ephemeral.audit import purge_org

    removed = _run(lambda r: purge_org(r.redis, org_id))
    console.print(f"removed {removed} keys of [bold]{org_id}[/]")


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="runs executed at once")] = 4,
    config: ConfigOption = None,
) -> None:
    """Run a worker: executes queued runs and fires crons until SIGINT/SIGTERM."""
    asyncio.run(_serve_worker(_settings(config), concurrency=concurrency))


async def _serve_worker(settings: Settings, *, concurrency: int) -> None:
    """A worker process until SIGINT/SIGTERM, then a clean stop (runs in flight go back to
    the queue for another worker, within the grace period). The signals are ours before
    anything starts: one during the start lets it finish and then stops, so every embedded
    server this process started is stopped too; later ones are only logged."""
    from tenantgraph.api.shutdown import EXIT_SIGNALS, Shutdown
    from tenantgraph.ephemeral.context import bind
    from tenantgraph.ephemeral.ratelimit import RateLimiter
    from tenantgraph.resources import open_resources, startup_line
    from tenantgraph.runtime.graphs import GraphRegistry
    from tenantgraph.runtime.webhooks import WebhookSender
    from tenantgraph.runtime.worker import Worker
    from tenantgraph.services.crons import Crons
    from tenantgraph.services.limits import OrgLimits
    from tenantgraph.services.memory import Memory
    from tenantgraph.services.runs import Runs

    shutdown = Shutdown(settings.shutdown_grace_seconds)
    loop = asyncio.get_running_loop()
    for sig in EXIT_SIGNALS:
        loop.add_signal_handler(sig, _stop_on, shutdown)
    async with open_resources(settings) as resources:
        if shutdown.started:
            return
        limiter = RateLimiter(resources.redis, OrgLimits(resources.db).get, settings.ephemeral)
        crons = Crons(
            resources.db,
            Runs(resources.db, resources.redis, resources.streams),
            min_interval_seconds=settings.cron_min_interval_seconds,
            max_per_user=settings.crons_per_user,
            charge=limiter.check_run,
        )
        registry = GraphRegistry.from_settings(settings)
        sender = WebhookSender(resources.db, resources.outbound, resources.secret_key)
        worker = Worker.from_settings(
            settings,
            resources.db,
            resources.redis,
            registry,
            Memory(resources.db, resources.store_config).store,
            concurrency=concurrency,
            fire_crons=crons.fire_due,
            on_end=sender.run_ended,
        )
        console.print(startup_line(settings, registry.ids(), concurrency), soft_wrap=True)
        with bind(resources.redis, settings.ephemeral):
            await worker.start()  # its tasks inherit the bound Valkey client
        try:
            await shutdown.wait()
        finally:
            await worker.stop(shutdown.remaining())
            await sender.aclose()  # the runs ended while stopping send their webhooks


def _stop_on(shutdown: Shutdown) -> None:
    if shutdown.started:
        console.print(f"already stopping; exiting within {shutdown.remaining():.0f} s")
    else:
        shutdown.start()


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Option(help="organisation id")],
    user: Annotated[
        str, typer.Option(help="user id the key acts as: a person, or a service account svc:<name>")
    ],
    role: Annotated[Role, typer.Option(help="role the key carries")] = Role.MEMBER,
    name: Annotated[str, typer.Option(help="a label for the key")] = "",
    scope: Annotated[
        list[str] | None, typer.Option(help="a scope the key is narrowed to (repeatable)")
    ] = None,
    assistant: Annotated[
        list[str] | None, typer.Option(help="an assistant id or graph it may run (repeatable)")
    ] = None,
) -> None:
    """Create an API key; the secret is printed once, on standard output. The CLI is the
    operator: it may create any person's key and change any role, but the rules of the org
    service hold (reserved names, an org's last owner is kept)."""
    from tenantgraph.services.orgs import Orgs

    principal = Principal(org, user, Role.OWNER)
    secret, record = _run(
        lambda r: Orgs(r.db, r.redis).create_api_key(
            principal, user_id=user, role=role, name=name, scopes=scope, assistants=assistant
        )
    )
    console.print(f"key [bold]{record['key_id']}[/] for {user} ({role.value}) in {org}:")
    print(secret)


@keys_app.command("list")
def keys_list(org: Annotated[str, typer.Option(help="organisation id")]) -> None:
    """List an organisation's API keys (never their secrets)."""
    from tenantgraph.services.orgs import Orgs

    rows = _run(lambda r: Orgs(r.db, r.redis).list_api_keys(Principal(org, "cli", Role.OWNER)))
    table = Table("key_id", "user_id", "role", "name", "scopes", "revoked_at")
    for row in rows:
        revoked = row["revoked_at"].isoformat() if row["revoked_at"] else ""
        scopes = "all" if row["scopes"] is None else " ".join(row["scopes"]) or "none"
        table.add_row(str(row["key_id"]), row["user_id"], row["role"], row["name"], scopes, revoked)
    _print_table(table)


@keys_app.command("revoke")
def keys_revoke(org: Annotated[str, typer.Option(help="organisation id")], key_id: str) -> None:
    """Revoke an API key; requests using it fail from now on."""
    from tenantgraph.services.orgs import Orgs

    principal = Principal(org, "cli", Role.OWNER)
    _run(lambda r: Orgs(r.db, r.redis).revoke_api_key(principal, uuid.UUID(key_id)))
    console.print(f"revoked key [bold]{key_id}[/]")


@app.command()
def token(
    org: Annotated[str, typer.Option(help="organisation id (the org claim)")],
    user: Annotated[str, typer.Option(help="user id (the sub claim)")],
    role: Annotated[Role, typer.Option(help="role claim")] = Role.MEMBER,
    hours: Annotated[float, typer.Option(help="lifetime")] = 24,
) -> None:
    """Mint a development JWT signed with TENANTGRAPH_JWT_SECRET."""
    import jwt

    settings = Settings()
    if settings.jwt_secret is None:
        console.print("[red]TENANTGRAPH_JWT_SECRET is not set: there is nothing to sign with[/]")
        raise typer.Exit(1)
    Principal(org, user, role)  # validates the ids before anything is signed
    claims = {
        "sub": user,
        settings.org_claim: org,
        settings.role_claim: role.value,
        "exp": int(time.time() + hours * 3600),
    }
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    print(jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256"))
