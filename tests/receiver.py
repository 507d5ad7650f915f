"""A webhook receiver: a real HTTP server in the test's event loop, on 127.0.0.2 (the one
loopback address the test servers may send to), that records what it is sent."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response

from .ephemeral_app import serve

RECEIVER_HOST = "127.0.0.2"
HANG = "hang"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """`answers`: what the next requests get, in order (a status, or HANG: no answer until
    `release` is set); 200 once they are used up. `reply`: the body of every answer (JSON)."""

    url: str = ""
    answers: list[int | str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    reply: bytes = b""

    async def wait_for(self, count: int, within: float = 30) -> list[Received]:
        """The requests received, once there are `count` (a generous deadline)."""
        async with asyncio.timeout(within):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


def verify(secret: str, received: Received) -> bool:
    """What the README tells a receiver to do with `X-Tenantgraph-Signature`."""
    parts = dict(p.split("=", 1) for p in received.headers["x-tenantgraph-signature"].split(","))
    signed = parts["t"].encode() + b"." + received.body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    app = FastAPI()

    @app.post("/{path:path}")
    async def receive(request: Request) -> Response:
        state.received.append(Received(dict(request.headers), await request.body()))
        state.arrived.set()
        answer = state.answers.pop(0) if state.answers else 200
        if answer == HANG:
            await state.release.wait()
            answer = 200
        return Response(state.reply, status_code=int(answer), media_type="application/json")

    async with serve(app, host=RECEIVER_HOST) as url:
        state.url = url
        try:
            yield state
        finally:
            state.release.set()
