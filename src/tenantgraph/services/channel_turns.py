"""One turn of a channel conversation (Slack, WhatsApp, web chat): the user's message or
their answer to an interrupt becomes a run of the connection's assistant on the
conversation's thread, created through the run service as the run routes create theirs;
the turn waits for the run's result wherever a worker executes it.

A connection acts as its own service account (`Connection.principal`), so its threads are
its own and its `user_runs` budget is the channel's rate limit inside the org's.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

import redis.asyncio as aioredis

from tenantgraph.ephemeral.flags import ConversationFlags, PendingConfirmation
from tenantgraph.ephemeral.ratelimit import RateLimiter
from tenantgraph.runtime.channel_delivery import Reply
from tenantgraph.runtime.state_values import message_text
from tenantgraph.runtime.worker import Worker
from tenantgraph.scope import Principal
from tenantgraph.services.assistants import Assistants
from tenantgraph.services.channels import Connection
from tenantgraph.services.escalation import Escalations
from tenantgraph.services.runs import InvalidRun, RunConflict, RunCreate, Runs
from tenantgraph.services.thread_state import ThreadStates
from tenantgraph.services.threads import Threads

__all__ = ["INTERRUPT", "ChannelTurns", "reply_of"]

log = logging.getLogger(__name__)
INTERRUPT = "interrupt"  # the `tool_name` of a pending confirmation that is an interrupt
_FAILED = "Sorry, something went wrong. Please try again."


def reply_of(result: Any) -> Reply:
    """What a run's result (`/runs/wait`'s body) says to the user: the interrupt it waits
    on, or its last AI message."""
    if not isinstance(result, dict) or "__error__" in result:
        return Reply(_FAILED)
    if interrupts := result.get("__interrupt__"):
        first = interrupts[0]
        value = first.get("value")
        question = value.get("question") if isinstance(value, dict) else None
        text = question if isinstance(question, str) else str(value)
        return Reply(text, interrupt_id=str(first.get("id") or "0"))
    for message in reversed(result.get("messages") or []):
        if isinstance(message, dict) and message.get("type") in ("ai", "AIMessageChunk"):
            return Reply(message_text(message.get("content")))
    return Reply("")


class ChannelTurns:
    """Turns of every channel of this process; `spawn` runs one after the webhook's answer
    (providers want theirs within seconds), and `aclose` ends those still going."""

    def __init__(
        self,
        runs: Runs,
        threads: Threads,
        thread_states: ThreadStates,
        assistants: Assistants,
        escalations: Escalations,
        rate_limiter: RateLimiter,
        redis: aioredis.Redis,
        *,
        flag_ttl_seconds: int,
        worker: Worker | None,
    ) -> None:
        self.runs, self.threads, self.thread_states = runs, threads, thread_states
        self.assistants, self.escalations = assistants, escalations
        self.rate_limiter, self.redis = rate_limiter, redis
        self.flag_ttl_seconds = flag_ttl_seconds
        self.worker = worker
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, turn: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(turn)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("a channel turn failed: %r", exc)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def flags(self, principal: Principal, thread_id: uuid.UUID) -> ConversationFlags:
        return ConversationFlags(
            self.redis, principal, str(thread_id), ttl_seconds=self.flag_ttl_seconds
        )

    async def message(
        self, connection: Connection, thread_id: uuid.UUID, metadata: dict[str, Any], text: str
    ) -> Reply | None:
        """The user said `text` in the conversation `thread_id` (created with `metadata`
        on its first message): the assistant's reply, or None while a human has the thread
        (the message is recorded in it then). RateLimited past the channel's budget."""
        principal = connection.principal
        thread = await self.threads.create(
            principal, thread_id=thread_id, metadata=metadata, if_exists="do_nothing"
        )
        message = {"role": "user", "content": text}
        if await self.escalations.with_human(principal, thread):
            try:
                await self.thread_states.update(principal, thread_id, {"messages": [message]})
            except (InvalidRun, RunConflict) as exc:  # never ran yet, or a run is on it
                log.info("message on escalated thread %s not recorded: %s", thread_id, exc)
            return None
        return await self._run(connection, thread_id, RunCreate(input={"messages": [message]}))

    async def answer(
        self, connection: Connection, thread_id: uuid.UUID, interrupt_id: str, approved: bool
    ) -> Reply | None:
        """The user pressed approve or reject on the interrupt `interrupt_id`: the run
        resumes with True or False. None when that interrupt is not waiting (pressed
        already, or another one waits)."""
        flags = self.flags(connection.principal, thread_id)
        pending = await flags.take_confirmation()
        if pending is None:
            return None
        if pending.tool_call_id != interrupt_id:
            await flags.request_confirmation(pending)
            return None
        body = RunCreate(command={"resume": approved})
        return await self._run(connection, thread_id, body)

    async def _run(self, connection: Connection, thread_id: uuid.UUID, body: RunCreate) -> Reply:
        principal = connection.principal
        decision = await self.rate_limiter.check_run(principal)
        if not decision.allowed:
            raise decision.denial()
        graph = self.assistants.default_graph(connection.assistant_id)
        assistant_id = None if graph is not None else uuid.UUID(connection.assistant_id)
        run = await self.runs.create(
            principal, thread_id, assistant_id, body, default_graph=graph, worker=self.worker
        )
        if self.worker is not None and run["status"] == "pending":
            self.worker.wake()
        reply = reply_of(await self.runs.wait(principal, run, worker=self.worker))
        if reply.interrupt_id is not None:
            pending = PendingConfirmation(reply.interrupt_id, INTERRUPT)
            await self.flags(principal, thread_id).request_confirmation(pending)
        return reply
