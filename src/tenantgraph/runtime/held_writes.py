"""Writes held for a moment, then committed in order, several in one transaction.

A run's checkpointer holds its writes (runtime/checkpointer.py, `hold`): LangGraph does not
wait for them between steps (durability "async" or "exit"), so a write returns at once and
is committed at most `hold` seconds later with the writes that came meanwhile, and the
run's finish takes the last ones into the transaction that records its end
(`handing_over`). A crash loses what is held, as it loses a write LangGraph has in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from psycopg import AsyncConnection

__all__ = ["Commit", "HeldWrites", "Write", "in_order"]

# One write: statements run in a transaction the caller opened.
Write = Callable[[AsyncConnection], Awaitable[None]]
# Runs one write in a transaction of its own and commits it (retried through an outage).
Commit = Callable[[Write], Awaitable[None]]


def in_order(writes: list[Write]) -> Write:
    """`writes` one after the other, as one write."""

    async def write(conn: AsyncConnection) -> None:
        for each in writes:
            await each(conn)

    return write


class HeldWrites:
    """Writes held up to `hold` seconds, committed by `commit` one group at a time, in the
    order they came."""

    def __init__(self, hold: float, commit: Commit) -> None:
        self.hold = hold
        self.commit = commit
        self._held: list[Write] = []  # added, not yet committing
        self._timer: asyncio.TimerHandle | None = None  # when they commit
        self._committing: asyncio.Future[None] | None = None
        self._failure: BaseException | None = None  # of a commit, not yet raised

    def add(self, write: Write) -> None:
        """Hold `write`; a commit that failed since the last call is raised instead."""
        self._raise_failure()
        self._held.append(write)
        self._schedule()

    async def flush(self) -> None:
        """Commit every held write now, and wait for it."""
        await self._settle()
        if self._held:
            self._commit_held()
            await self._settle()
        self._raise_failure()

    @contextlib.asynccontextmanager
    async def handing_over(self) -> AsyncIterator[Write]:
        """The held writes as one write, for the caller's own transaction: a run's last
        checkpoint commits with its end, one commit where there were two. The commit in
        flight is awaited first, so the order holds. If the caller's block fails, they are
        committed on their own, as they would have been; every checkpoint statement is an
        upsert, so one that landed already is written again unchanged."""
        await self._settle()
        self._raise_failure()
        writes, self._held = self._held, []
        try:
            yield in_order(writes)
        except BaseException:
            if writes:
                await self.commit(in_order(writes))
            raise

    def _schedule(self) -> None:
        """Commit the held writes `hold` seconds from now, unless that is scheduled already
        or a commit is in flight (which schedules the next when it is done)."""
        if self._held and self._timer is None and self._committing is None:
            self._timer = asyncio.get_running_loop().call_later(self.hold, self._commit_held)

    def _commit_held(self) -> None:
        """Start committing what is held (the timer's callback, or `flush`)."""
        self._timer = None
        self._committing = asyncio.ensure_future(self._commit(self._held))
        self._held = []

    async def _commit(self, writes: list[Write]) -> None:
        try:
            await self.commit(in_order(writes))
        except Exception as exc:
            self._failure = exc  # for the next call to raise
        finally:
            self._committing = None
            self._schedule()

    async def _settle(self) -> None:
        """Wait for the commit in flight, with nothing scheduled after it."""
        while True:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._committing is None:
                return
            await asyncio.shield(self._committing)

    def _raise_failure(self) -> None:
        """Raise a commit's failure, once: the run fails on it as on a write of its own."""
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure
