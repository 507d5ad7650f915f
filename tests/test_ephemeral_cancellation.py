"""Cancelling a command mid-flight never hands its reply to another caller.

redis-py once returned a cancelled command's connection to the pool with its reply still
unread, so the next caller read someone else's answer (CVE-2023-28858/28859). Here the
server is slowed for real (a Lua script that busy-waits, which blocks every client), many
tasks issue commands whose replies name their caller, and half of them are cancelled at
random moments while the others run. Every reply that arrives must be the caller's own,
on the client setup the server uses (`tenantgraph.ephemeral.client.connect`), including a
pool small enough that every connection is reused many times.

It also checks that every cancellation takes effect: on Python 3.11 redis-py's default
`socket_timeout` routes writes through `asyncio.wait_for`, which can swallow a cancel
(CPython gh-86296) — with the library defaults some victims here never stop.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from tenantgraph.ephemeral.client import connect
from tenantgraph.scope import KeyKind, redis_key

from .ephemeral_app import valkey_url

# Echo ARGV[1] after ARGV[2] rounds of busy work (TIME is frozen inside a script, so the
# delay is counted in iterations: about 2 ms per 100k on this machine).
SLOW_ECHO = """
local x = 0
for i = 1, tonumber(ARGV[2]) do x = x + i % 7 end
return ARGV[1]
"""


@pytest.mark.parametrize("max_connections", [64, 4])
async def test_cancelled_commands_never_leak_replies_to_other_callers(
    resources, settings, org_ids, max_connections
):
    redis = connect(valkey_url(settings), max_connections=max_connections)
    slow_echo = redis.register_script(SLOW_ECHO)
    org = org_ids[0]
    rng = random.Random(2023_28858)
    mismatches: list[tuple[str, object]] = []
    completed = 0

    async def caller(name: str, rounds: int | None) -> None:
        """Run `rounds` rounds, or until cancelled when None."""
        nonlocal completed
        key = redis_key(org, KeyKind.CACHE, "cancel-test", name)
        await redis.set(key, name, ex=60)
        round_ = 0
        while rounds is None or round_ < rounds:
            round_ += 1
            expected = f"{name}:{round_}"
            got = await slow_echo(keys=[key], args=[expected, rng.randrange(10_000, 150_000)])
            if got.decode() != expected:
                mismatches.append((expected, got))
            got = await redis.get(key)
            if got.decode() != name:
                mismatches.append((name, got))
            async with redis.pipeline(transaction=True) as pipe:
                pipe.get(key)
                pipe.echo(expected)
                replies = await pipe.execute()
            if [r.decode() for r in replies] != [name, expected]:
                mismatches.append((expected, replies))
            completed += 1

    try:
        survivors = [asyncio.create_task(caller(f"s{i}", 6)) for i in range(20)]
        victims = [asyncio.create_task(caller(f"v{i}", None)) for i in range(20)]
        tasks = survivors + victims
        for task in victims:
            await asyncio.sleep(rng.uniform(0.0, 0.02))
            task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=30)
        assert not pending, "a cancellation was swallowed: the cancelled task carried on"
        results = [t.exception() if not t.cancelled() else asyncio.CancelledError() for t in tasks]
        cancelled = sum(isinstance(r, asyncio.CancelledError) for r in results)
        errors = [r for r in results if isinstance(r, Exception)]
        assert errors == []
        assert cancelled == 20
        assert all(task.done() and not task.cancelled() for task in survivors)
        assert mismatches == []

        # After the storm, every pooled connection still answers its own caller.
        echoes = await asyncio.gather(*(redis.echo(f"after-{i}") for i in range(100)))
        assert [e.decode() for e in echoes] == [f"after-{i}" for i in range(100)]
    finally:
        await redis.aclose()
