"""The app's one state object: the services the routes call and the collaborators the
middlewares use, opened and closed by the app's lifespan (`AppState.running`).

`create_app` builds it empty, hands it to every middleware it installs and keeps it as
`app.state.tenantgraph` for the route dependencies (api/deps.py); `running()` fills it.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from rich.console import Console

from tenantgraph.api.auth import Authenticator
from tenantgraph.api.custom_auth import load_auth
from tenantgraph.api.shutdown import Shutdown
from tenantgraph.api.stream_slots import StreamSlots
from tenantgraph.ephemeral.context import bind
from tenantgraph.ephemeral.ratelimit import RateLimiter
from tenantgraph.errors import Conflict
from tenantgraph.resources import Resources, open_resources, startup_line
from tenantgraph.runtime.channel_delivery import SlackReplies, WhatsAppReplies
from tenantgraph.runtime.graphs import GraphRegistry
from tenantgraph.runtime.webhooks import WebhookSender
from tenantgraph.runtime.worker import Worker
from tenantgraph.services.assistants import Assistants
from tenantgraph.services.channel_turns import ChannelTurns
from tenantgraph.services.channels import Channels
from tenantgraph.services.crons import Crons
from tenantgraph.services.escalation import Escalations
from tenantgraph.services.experiments import Experiments
from tenantgraph.services.feedback import Feedback
from tenantgraph.services.feedback_tokens import FeedbackTokens
from tenantgraph.services.idempotency import Idempotency
from tenantgraph.services.limits import OrgLimits
from tenantgraph.services.memory import Memory
from tenantgraph.services.orgs import Orgs
from tenantgraph.services.runs import Runs
from tenantgraph.services.store_sweeper import StoreSweeper
from tenantgraph.services.thread_state import ThreadStates
from tenantgraph.services.thread_stream import ThreadStreams
from tenantgraph.services.threads import Threads
from tenantgraph.services.web_chat import WebChat
from tenantgraph.services.webhooks import Webhooks
from tenantgraph.settings import Settings

__all__ = ["DEFAULT_ADMIN", "DEFAULT_ORG", "YOUNG_GC_THRESHOLD", "AppState"]

log = logging.getLogger("tenantgraph")
DEFAULT_ORG = "default"
DEFAULT_ADMIN = "admin"
YOUNG_GC_THRESHOLD = 20_000
STOP_SECONDS = 1.0  # the least a stopping worker gets to hand its runs back


class AppState:
    """Everything a request may need, built once per process when the app starts."""

    resources: Resources
    registry: GraphRegistry
    authenticator: Authenticator
    limits: OrgLimits
    rate_limiter: RateLimiter
    idempotency: Idempotency
    orgs: Orgs
    assistants: Assistants
    threads: Threads
    thread_states: ThreadStates
    runs: Runs
    thread_streams: ThreadStreams
    stream_slots: StreamSlots
    crons: Crons
    memory: Memory
    webhooks: Webhooks
    feedback: Feedback
    experiments: Experiments
    worker: Worker | None
    channels: Channels
    escalations: Escalations
    channel_turns: ChannelTurns
    slack_replies: SlackReplies
    whatsapp_replies: WhatsAppReplies
    web_chat: WebChat

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.custom_auth = None  # the config file's `auth.path` handlers, loaded at start
        self.shutdown = Shutdown(settings.shutdown_grace_seconds)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Open the resources, build the services, start the worker and the sweeper; undo
        all of it in reverse order on exit (the worker within what is left of the grace
        period). An exit signal starts the shutdown at once (api/shutdown.py)."""
        settings = self.settings
        registry = GraphRegistry.from_settings(settings)
        log.info(startup_line(settings, registry.ids(), settings.worker_concurrency))
        async with AsyncExitStack() as stack:
            stack.enter_context(self.shutdown.on_signals())  # a signal while starting too
            resources = await stack.enter_async_context(open_resources(settings))
            db, redis = resources.db, resources.redis
            self.resources, self.registry = resources, registry
            self.orgs = Orgs(db, redis)
            self.custom_auth = load_auth(settings)
            self.authenticator = Authenticator(settings, self.orgs, self.custom_auth)
            self.limits = OrgLimits.from_settings(db, settings, resources.store_config.limits)
            self.rate_limiter = RateLimiter(redis, self.limits.get, settings.ephemeral)
            self.idempotency = Idempotency(db, settings.ephemeral)
            self.assistants = Assistants(db, registry)
            self.threads = Threads(db)
            self.thread_states = ThreadStates(db, registry)
            tokens = FeedbackTokens(resources.secret_key)
            self.runs = Runs(db, redis, resources.streams, feedback_tokens=tokens)
            self.thread_streams = ThreadStreams(db, self.threads, self.runs)
            self.stream_slots = StreamSlots(settings.streams_per_user, settings.streams_per_org)
            self.crons = Crons(
                db,
                self.runs,
                min_interval_seconds=settings.cron_min_interval_seconds,
                max_per_user=settings.crons_per_user,
                charge=self.rate_limiter.check_run,
            )
            self.memory = Memory(db, resources.store_config)
            self.webhooks = Webhooks(db, resources.outbound, resources.secret_key)
            self.feedback = Feedback(db, tokens)
            self.experiments = Experiments(db)
            self.channels = Channels(db, resources.secret_key, self.assistants)
            flag_ttl = settings.ephemeral.flag_ttl_seconds
            self.escalations = Escalations(self.threads, redis, ttl_seconds=flag_ttl)
            self.slack_replies = SlackReplies(settings.slack_api_url)
            self.whatsapp_replies = WhatsAppReplies(settings.whatsapp_api_url, resources.outbound)
            await _first_start(settings, self.orgs)
            self.worker = None
            if settings.worker_concurrency > 0:
                # Closed after the worker stops: the runs it ends on the way send theirs.
                sender = WebhookSender(db, resources.outbound, resources.secret_key)
                stack.push_async_callback(sender.aclose)
                worker = Worker.from_settings(
                    settings,
                    db,
                    redis,
                    registry,
                    self.memory.store,
                    fire_crons=self.crons.fire_due,
                    on_end=sender.run_ended,
                )
                # The worker's tasks inherit this context: graphs reach the ephemeral
                # helpers (session windows, episodes) through the bound client.
                with bind(redis, settings.ephemeral):
                    await worker.start()
                # What the open requests left of the grace period, but time to hand back.
                stack.push_async_callback(
                    lambda: worker.stop(max(self.shutdown.remaining(), STOP_SECONDS))
                )
                self.worker = worker
            # Closed first: a channel turn still waiting on a run ends before the worker.
            self.channel_turns = ChannelTurns(
                self.runs,
                self.threads,
                self.thread_states,
                self.assistants,
                self.escalations,
                self.rate_limiter,
                redis,
                flag_ttl_seconds=flag_ttl,
                worker=self.worker,
            )
            stack.push_async_callback(self.channel_turns.aclose)
            self.web_chat = WebChat(
                self.runs,
                self.threads,
                self.assistants,
                self.rate_limiter,
                redis,
                ttl_seconds=flag_ttl,
                worker=self.worker,
            )
            ttl = resources.store_config.ttl or {}
            sweeper = StoreSweeper(
                db,
                interval=60 * (ttl.get("sweep_interval_minutes") or 1),
                thread_ttl=settings.config_file.checkpointer.ttl,
            )
            sweeper.start()
            stack.push_async_callback(sweeper.stop)
            # A run allocates many short-lived containers (LangGraph, pydantic, psycopg):
            # young collections every 700 allocations cost ~10% of the server's CPU per
            # run at 8 concurrent runs; every 20,000 it fell from ~5.8 to ~5.2 ms per run
            # (bench/runs_bench.py, docs/measurements.md). Older generations keep theirs.
            stack.callback(gc.set_threshold, *gc.get_threshold())
            gc.set_threshold(YOUNG_GC_THRESHOLD)
            stack.callback(self.shutdown.start)  # whatever is still open ends first
            yield


async def _first_start(settings: Settings, orgs: Orgs) -> None:
    """On an embedded database with no `default` org yet, create it with one owner key.

    The key is printed once; the API never runs without a credential.
    """
    if settings.database_url:
        return
    try:
        _, secret = await orgs.create_org_with_key(
            DEFAULT_ORG, "Default", owner=DEFAULT_ADMIN, key_name="first start"
        )
    except Conflict:
        return
    Console(stderr=True).print(
        f"\n[bold]Created organisation '{DEFAULT_ORG}' with an owner API key "
        "(shown only now):[/]\n"
        f"  [green]{secret}[/]\n"
        "Use it as  Authorization: Bearer <key>  or  X-Api-Key: <key>, e.g.\n"
        "  get_client(url=..., api_key=<key>)  from langgraph-sdk.\n"
    )
