"""What one SIGINT/SIGTERM starts in a server process, and how open responses learn of it.

uvicorn handles the signals itself: it stops accepting, waits for every open connection to
close (at most `timeout_graceful_shutdown`), and only then runs the app's lifespan
shutdown, which stops the worker (its runs go back to the queue) and the resources. An SSE
stream or a long-polling `wait` never closes by itself, so the app must learn of the signal
when it arrives: while the lifespan runs, `Shutdown.on_signals` puts a handler in front of
uvicorn's that starts the shutdown (the open responses end at once) and passes the signal
on. Later signals are only logged: a second one would make uvicorn skip the lifespan
shutdown (the runs would not be handed back, the embedded servers would be left to the
event loop's teardown), and the first one's shutdown is bounded by the grace period anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from types import FrameType
from typing import TypeVar

__all__ = ["EXIT_SIGNALS", "Shutdown", "cutting_off", "signals_noted"]

log = logging.getLogger("tenantgraph")
EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
T = TypeVar("T")


_UNFINISHED = "ASGI callable returned without completing response."


class _CutsAreDeliberate(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != _UNFINISHED


_CUTS = _CutsAreDeliberate()


def cutting_off(what: str) -> None:
    """Say that the shutdown cuts `what` off unfinished, in place of uvicorn's error line
    for a response without its end: here the cut is the point (the client reconnects)."""
    logging.getLogger("uvicorn.error").addFilter(_CUTS)
    log.info("shutting down: %s cut off; the client reconnects", what)


@contextlib.contextmanager
def signals_noted() -> Iterator[list[int]]:
    """Exit signals are noted, not acted on, during the block: a process starting servers
    it must stop (the embedded ones) checks the list once they are up, rather than die
    half-way and leave them running."""
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda s, _: received.append(s)) for sig in EXIT_SIGNALS}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Shutdown:
    """Started once, by the first exit signal or the lifespan's end; `grace` seconds from
    then the process should be gone."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self._event = asyncio.Event()
        self._deadline: float | None = None

    @property
    def started(self) -> bool:
        return self._deadline is not None

    def start(self) -> None:
        if self._deadline is None:
            self._deadline = time.monotonic() + self.grace
            self._event.set()

    async def wait(self) -> None:
        await self._event.wait()

    def remaining(self) -> float:
        """Seconds left of the grace period (all of it before the shutdown starts)."""
        if self._deadline is None:
            return self.grace
        return max(0.0, self._deadline - time.monotonic())

    async def until_started(self, source: AsyncIterator[T]) -> AsyncIterator[T]:
        """`source`'s items until it ends or the shutdown starts, whichever is first; the
        read in flight is cancelled then, and `source` closed either way."""
        stop = asyncio.ensure_future(self._event.wait())
        step: asyncio.Future[T] | None = None
        try:
            while True:
                step = asyncio.ensure_future(anext(source))
                await asyncio.wait((step, stop), return_when=asyncio.FIRST_COMPLETED)
                if not step.done():
                    return
                try:
                    item = step.result()
                except StopAsyncIteration:
                    return
                yield item
        finally:
            stop.cancel()
            if step is not None and not step.done():
                step.cancel()
                with contextlib.suppress(BaseException):
                    await step
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

    async def race(self, task: asyncio.Future[T], seconds: float | None) -> bool:
        """Wait for `task` at most `seconds` or until the shutdown starts; whether
        `task` is done."""
        stop = asyncio.ensure_future(self._event.wait())
        try:
            await asyncio.wait((task, stop), timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        return task.done()

    @contextlib.contextmanager
    def on_signals(self) -> Iterator[None]:
        """While the block runs, the first SIGINT/SIGTERM starts the shutdown and goes on to
        the handler installed before (uvicorn's); later ones are logged. Only in the main
        thread (signals go nowhere else), and only over a handler that can be called."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        previous = {sig: signal.getsignal(sig) for sig in EXIT_SIGNALS}

        received: list[int] = []

        def handle(signum: int, frame: FrameType | None) -> None:
            if received:
                log.warning(
                    "received %s while stopping; exiting within %.0f s",
                    signal.Signals(signum).name,
                    self.remaining(),
                )
                return
            received.append(signum)
            # Run by the loop, which this wakes: a signal handler may interrupt its callbacks.
            loop.call_soon_threadsafe(self.start)
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)

        for sig, handler in previous.items():
            if callable(handler):
                signal.signal(sig, handle)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                if callable(handler):
                    signal.signal(sig, handler)
