"""Web chat conversations: a conversation is a thread of the user's (metadata
`channel: "web"`), each message a run of the chosen assistant, and what the run says
becomes numbered frames (`ready`, `token`, `message`, `interrupt`, `error`, `done`).

The frames come from the run's event stream, read through the process's stream readers
wherever a worker executes the run, and are kept in the conversation's log
(ephemeral/webchat_log.py) before they are sent: a client that reconnects asks for what
followed the last `seq` it got, and the follower of an unfinished run starts again from
the last run event the log holds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis

from tenantgraph.ephemeral.ratelimit import RateLimiter
from tenantgraph.ephemeral.webchat_log import ConversationLog
from tenantgraph.errors import NotFound, Unavailable
from tenantgraph.runtime.events import RunEvent
from tenantgraph.runtime.state_values import message_text
from tenantgraph.runtime.worker import Worker
from tenantgraph.scope import Principal
from tenantgraph.services.assistants import Assistants
from tenantgraph.services.runs import RunCreate, Runs
from tenantgraph.services.threads import Threads

__all__ = ["WebChat", "public_frame"]

LEASE_SECONDS = 15.0
# Longer than a lease: one left by a process that died has expired by then.
_LEASE_WAIT_SECONDS = LEASE_SECONDS + 5
_MODES = ["messages-tuple", "values"]


def public_frame(frame: dict[str, Any]) -> dict[str, Any]:
    """A frame as the client gets it: without the log's own fields (`_run`, `_event`)."""
    return {k: v for k, v in frame.items() if not k.startswith("_")}


def _frames(event: RunEvent, seen: set[str]) -> list[dict[str, Any]]:
    """The frames of one run event; `seen`: the message and interrupt ids already sent."""
    data = event.json()
    if event.event == "messages" and isinstance(data, list) and data:
        chunk = data[0] if isinstance(data[0], dict) else {}
        text = message_text(chunk.get("content"))
        if chunk.get("type") in ("AIMessageChunk", "ai") and text:
            return [{"type": "token", "message_id": chunk.get("id"), "content": text}]
    elif event.event == "values" and isinstance(data, dict):
        frames = []
        for message in data.get("messages") or []:
            if not isinstance(message, dict) or message.get("type") != "ai":
                continue
            if (mid := str(message.get("id"))) not in seen:
                seen.add(mid)
                content = message_text(message.get("content"))
                frames.append({"type": "message", "message_id": mid, "role": "assistant"})
                frames[-1]["content"] = content
        for interrupt in data.get("__interrupt__") or []:
            if (iid := f"interrupt:{interrupt.get('id')}") not in seen:
                seen.add(iid)
                frames.append(
                    {
                        "type": "interrupt",
                        "interrupt_id": interrupt.get("id"),
                        "value": interrupt.get("value"),
                    }
                )
        return frames
    elif event.event == "error":
        detail = data.get("message") if isinstance(data, dict) else None
        return [{"type": "error", "detail": detail or "the run failed"}]
    return []


class WebChat:
    """The web chat use cases over the run and thread services."""

    def __init__(
        self,
        runs: Runs,
        threads: Threads,
        assistants: Assistants,
        rate_limiter: RateLimiter,
        redis: aioredis.Redis,
        *,
        ttl_seconds: int,
        worker: Worker | None,
    ) -> None:
        self.runs, self.threads, self.assistants = runs, threads, assistants
        self.rate_limiter, self.redis = rate_limiter, redis
        self.ttl_seconds = ttl_seconds
        self.worker = worker

    def log(self, principal: Principal, conversation_id: uuid.UUID) -> ConversationLog:
        return ConversationLog(
            self.redis, principal.org_id, str(conversation_id), ttl_seconds=self.ttl_seconds
        )

    async def open(
        self, principal: Principal, conversation_id: uuid.UUID | None, assistant_id: str
    ) -> tuple[uuid.UUID, list[dict[str, Any]]]:
        """The caller's conversation (a new one when None) and, for a new one, its `ready`
        frame. Another user's thread, or one that is not a web chat, is not found."""
        if conversation_id is None:
            metadata = {"channel": "web", "assistant_id": assistant_id}
            thread = await self.threads.create(principal, metadata=metadata)
            conversation_id = thread["thread_id"]
            ready = {"type": "ready", "conversation_id": str(conversation_id)}
            return conversation_id, await self.log(principal, conversation_id).append([ready])
        thread = await self.threads.get(principal, conversation_id)
        metadata = thread["metadata"]
        if metadata.get("channel") != "web" or metadata.get("owner") != principal.user_id:
            raise NotFound("conversation not found")
        return conversation_id, []

    async def send(
        self,
        principal: Principal,
        conversation_id: uuid.UUID,
        assistant_id: str,
        *,
        content: Any = None,
        resume: Any = None,
        answer: bool = False,
    ) -> list[dict[str, Any]]:
        """Start a run on the conversation: the user's message (logged as its `message`
        frame) or, with `answer`, the value resuming its interrupt."""
        decision = await self.rate_limiter.check_run(principal)
        if not decision.allowed:
            raise decision.denial()
        message = {"role": "user", "content": content, "id": str(uuid.uuid4())}
        body = RunCreate(
            input=None if answer else {"messages": [message]},
            command={"resume": resume} if answer else None,
            stream_mode=_MODES,
        )
        graph = self.assistants.default_graph(assistant_id)
        run = await self.runs.create(
            principal,
            conversation_id,
            None
            if graph is not None
            else await self.assistants.resolve_id(principal, assistant_id),
            body,
            default_graph=graph,
            worker=self.worker,
        )
        if self.worker is not None and run["status"] == "pending":
            self.worker.wake()
        frame: dict[str, Any] = {"_run": str(run["run_id"])}
        if answer:
            frame |= {"type": "answer", "value": resume}
        else:
            frame |= {"type": "message", "message_id": message["id"], "role": "user"}
            frame["content"] = content
        return await self.log(principal, conversation_id).append([frame])

    async def follow(
        self, principal: Principal, conversation_id: uuid.UUID, after_seq: int
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The conversation's frames after `after_seq`: those logged already, then those of
        its unfinished run, each batch logged before it is yielded, to the run's `done`.
        One follower at a time writes a conversation's frames (its lease); yields nothing
        when there is nothing new and no run to follow."""
        log = self.log(principal, conversation_id)
        frames = await log.after(after_seq)
        if frames:
            yield frames
            after_seq = frames[-1]["seq"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _LEASE_WAIT_SECONDS
        try:  # taken inside: a follower cancelled while taking it still gives it back
            while not await log.lease(LEASE_SECONDS):  # the last follower is stopping
                if loop.time() > deadline:
                    raise Unavailable("another connection follows this conversation")
                await asyncio.sleep(0.1)
            logged = await log.after(0)  # what the last follower wrote meanwhile, too
            if more := logged[after_seq:]:
                yield more
            last = logged[-1] if logged else None
            if last is None or "_run" not in last or last["type"] == "done":
                return
            seen = {
                str(f.get("message_id"))
                if f["type"] == "message"
                else f"interrupt:{f.get('interrupt_id')}"
                for f in logged
                if f["type"] in ("message", "interrupt")
            }
            tag = {"_run": last["_run"]}
            events = self.runs.events(principal, uuid.UUID(last["_run"]), last.get("_event"))
            async for event in events:
                if event is None:
                    continue
                batch = [{**f, **tag, "_event": event.id} for f in _frames(event, seen)]
                await log.lease(LEASE_SECONDS)
                yield await log.append(batch)
            yield await log.append([{"type": "done", "run_id": last["_run"], **tag}])
        finally:
            await log.release()
