"""Group commit: concurrent writers of one key share one transaction (the memory store's
writes and reads, services/memory_groups.py; checkpoint writes, runtime/checkpointer.py).

A commit costs a WAL flush and a round trip; LangGraph's `AsyncPostgresStore` wins on puts
by funnelling every call through one batching task (docs/measurements.md). This does the same
without a background task: the first writer of a key leads and flushes everything queued
for that key; writers arriving meanwhile queue, and when the leader is done it hands the
lead to the oldest of them. Nothing outlives the calls that use it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["GroupCommit", "together_or_alone"]

T = TypeVar("T")
G = TypeVar("G")

# Flushes a group; returns, per item, None for success or the exception for that item.
Flush = Callable[[list[T]], Awaitable[list[BaseException | None]]]


@dataclass(eq=False)
class _Waiter(Generic[T]):
    item: T
    done: asyncio.Future[None]  # the item's outcome
    turn: bool = False  # holds one of the key's in-flight slots
    wake: asyncio.Future[None] = field(default_factory=lambda: asyncio.Future())

    def give_turn(self) -> None:
        self.turn = True
        if not self.wake.done():
            self.wake.set_result(None)

    def finish(self, outcome: BaseException | None) -> None:
        if outcome is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(outcome)
        if not self.wake.done():
            self.wake.set_result(None)


class GroupCommit(Generic[T]):
    """Up to `max_inflight` groups per key run at once: one keeps commits few, a second lets
    the next group build (and use the other core) while the first commits.

    A group takes queued items, oldest first, while their summed `weight` stays within
    `max_weight` (and at least one): items that are slow to run (vector searches) then
    spread over several connections instead of queueing in one backend, while cheap ones
    (weight 0) still share a transaction however many there are.
    """

    def __init__(
        self,
        max_inflight: int = 1,
        *,
        weight: Callable[[T], int] = lambda item: 0,
        max_weight: int = 0,
    ) -> None:
        self.max_inflight = max_inflight
        self.weight = weight
        self.max_weight = max_weight
        self._queues: dict[Hashable, list[_Waiter[T]]] = {}
        self._inflight: dict[Hashable, int] = {}

    async def submit(self, key: Hashable, item: T, flush: Flush[T]) -> None:
        """Write `item` in the next group for `key`; raise what its flush raised for it."""
        me = _Waiter(item, asyncio.get_running_loop().create_future())
        self._queues.setdefault(key, []).append(me)
        if self._inflight.get(key, 0) < self.max_inflight:
            self._inflight[key] = self._inflight.get(key, 0) + 1
            me.turn = True
        else:
            try:
                await me.wake
            except asyncio.CancelledError:
                if me.turn:
                    self._release(key)
                raise
        if me.turn:
            # Lead groups, oldest items first, until one takes this item; if another group
            # took it along already, just pass the slot on.
            try:
                while me in self._queues.get(key, ()):
                    await self._lead(key, flush)
            finally:
                self._release(key)
        return await me.done

    async def _lead(self, key: Hashable, flush: Flush[T]) -> None:
        # One turn of the event loop first: callers the last group just answered are about
        # to queue again, and taking them along keeps groups whole instead of alternating.
        await asyncio.sleep(0)
        queue = self._queues.pop(key, [])
        taken, load = 0, 0
        for waiter in queue:
            load += self.weight(waiter.item)
            if taken and load > self.max_weight:
                break
            taken += 1
        group = queue[:taken]
        if taken < len(queue):
            self._queues[key] = queue[taken:]
        try:
            outcomes = await flush([w.item for w in group]) if group else []
        except Exception as exc:
            outcomes = [exc] * len(group)
        except BaseException:
            for waiter in group:
                waiter.done.cancel()
                if not waiter.wake.done():
                    waiter.wake.set_result(None)
            raise
        for waiter, outcome in zip(group, outcomes, strict=True):
            waiter.finish(outcome)

    def _release(self, key: Hashable) -> None:
        """Pass this slot to the oldest waiter without one, or give it up."""
        waiting = next((w for w in self._queues.get(key, ()) if not w.turn), None)
        if waiting is not None:
            waiting.give_turn()
            return
        self._inflight[key] -= 1
        if not self._inflight[key]:
            del self._inflight[key]


async def together_or_alone(
    run: Callable[[list[G]], Awaitable[None]],
    groups: list[G],
    error: Callable[[Exception], BaseException] = lambda exc: exc,
) -> list[BaseException | None]:
    """Run `groups` in one transaction; if that fails, run each alone, so only the calls
    that cause an error (a quota, a deadlock) see it (as `error(exc)`). Returns each call's
    outcome."""
    try:
        await run(groups)
        return [None] * len(groups)
    except Exception as exc:
        if len(groups) == 1:
            return [error(exc)]
    outcomes: list[BaseException | None] = []
    for group in groups:
        try:
            await run([group])
            outcomes.append(None)
        except Exception as exc:
            outcomes.append(error(exc))
    return outcomes
