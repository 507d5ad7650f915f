"""Caps on the run streams and joins one user and one org hold open in this process.

Each open stream or join costs the process a subscriber in its stream hub and a response
held open; past `streams_per_user` or `streams_per_org` a new one is refused with 429 and
`Retry-After` before anything happens (a run stream's run is not created). The counts are
per process, so they cannot outlive it: with `serve --workers N` the caps apply in each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Coroutine
from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tenantgraph.errors import RateLimited
from tenantgraph.scope import Principal

__all__ = ["RETRY_AFTER_SECONDS", "StreamSlots"]

# Streams last as long as their runs: a slot rarely frees within a second.
RETRY_AFTER_SECONDS = 5


class StreamSlots:
    """How many streams each user and org holds open here, and their caps."""

    def __init__(self, per_user: int, per_org: int) -> None:
        self.per_user, self.per_org = per_user, per_org
        self.users: Counter[tuple[str, str]] = Counter()
        self.orgs: Counter[str] = Counter()

    async def hold(self, principal: Principal, respond: Coroutine[Any, Any, Response]) -> Response:
        """The response `respond` makes, counted as one of `principal`'s open streams until
        it has been sent or its client left (RateLimited past a cap, and `respond` never
        runs)."""
        user = (principal.org_id, principal.user_id)
        if self.users[user] >= self.per_user or self.orgs[principal.org_id] >= self.per_org:
            respond.close()
            whose = "user" if self.users[user] >= self.per_user else "organisation"
            raise RateLimited(
                f"Too many open streams for this {whose}; close one or retry later.",
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )
        self.users[user] += 1
        self.orgs[principal.org_id] += 1
        slot = _Slot(self, user)
        try:
            return _Held(await respond, slot)
        except BaseException:
            slot.release()
            raise


class _Slot:
    __slots__ = ("slots", "user")

    def __init__(self, slots: StreamSlots, user: tuple[str, str]) -> None:
        self.slots: StreamSlots | None = slots
        self.user = user

    def release(self) -> None:
        """Give the slot back, once."""
        slots, self.slots = self.slots, None
        if slots is None:
            return
        for counter, key in ((slots.users, self.user), (slots.orgs, self.user[0])):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]


class _Held(Response):
    """Sends `response`, then gives the slot back however the sending ended (a streaming
    body that never started included, which a `finally` in the body would miss)."""

    def __init__(self, response: Response, slot: _Slot) -> None:
        self.response, self.slot = response, slot
        self.background: BackgroundTask | None = None  # FastAPI may attach its tasks here

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.response(scope, receive, send)
        finally:
            self.slot.release()
        if self.background is not None:
            await self.background()
