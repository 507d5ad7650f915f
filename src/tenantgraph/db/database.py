"""The runtime role's connection pool and the tenant transaction: the door to tenant data."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from tenantgraph.db.breaker import Breaker
from tenantgraph.errors import Unavailable
from tenantgraph.scope import Principal

__all__ = ["Database", "LocalSettings"]


class _SentWithNext(deque[Callable[[], None]]):
    """A pipeline's command queue that sends the commands given to `hold` together with
    the next command queued. psycopg flushes the socket after each command it sends, and
    each write wakes the backend: BEGIN and set_config leave with the transaction's first
    statement, and COMMIT with the pipeline's closing Sync, so a one-statement transaction
    is two writes where it was three (docs/measurements.md).

    The statements in between are sent as they are executed, not held for the COMMIT:
    Postgres runs each while the next is prepared, and holding them all cost a batch of
    16 concurrent store gets ~10% of its throughput (docs/measurements.md)."""

    def __init__(self) -> None:
        super().__init__()
        self._held: list[Callable[[], None]] = []

    def hold(self, command: Callable[[], None]) -> None:
        self._held.append(command)

    def append(self, command: Callable[[], None]) -> None:
        if not self._held:
            super().append(command)
            return
        held, self._held = self._held, []

        def together() -> None:
            for each in held:
                each()
            command()

        super().append(together)


class _NewestFirst(deque[AsyncConnection]):
    """The pool's idle connections, handed out newest first (psycopg_pool takes the oldest
    and has no option for it). First-in first-out cycles every connection the pool ever
    grew to: after a burst of 32 clients, a lone caller's statements went round 40 backends,
    each with cold caches and not yet prepared (psycopg prepares on a connection's 5th use),
    and a store get or put cost ~20% more CPU than on the few connections last-in first-out
    keeps warm (docs/measurements.md). The pool returns a connection with `append` and takes
    one with `popleft`, here the last appended; its shrinking, after `max_idle` with
    connections to spare, then closes the newest rather than the oldest, one as good as the
    other for the count."""

    def popleft(self) -> AsyncConnection:
        return self.pop()


_TENANT_SETTING = "tenantgraph.org_id"
_SET_TENANT = sql.SQL("SELECT set_config({}, {}, true)")
_AND_SET = sql.SQL(", set_config({}, {}, true)")
# Transaction-local settings a caller starts its transaction with: (name, value) pairs.
LocalSettings = tuple[tuple[str, str], ...]
_OPEN = (TransactionStatus.INTRANS, TransactionStatus.INERROR)
# A pool slot whose reconnection fails is given up after this long (psycopg_pool's default,
# 5 minutes of doubling delays, left the slots asleep for 10 s after Postgres returned); the
# pool grows again on demand, and the breaker refills it when the server answers.
_RECONNECT_SECONDS = 2.0
_PROBE_TIMEOUT_SECONDS = 2.0
_SET_TENANT_CACHE = 10_000


def _first_error(exc: BaseException) -> BaseException:
    """The statement's own error: a statement that failed in a pipeline is reported by the
    closing sync, and psycopg then raises `PipelineAborted` for the skipped COMMIT over it."""
    while isinstance(exc, psycopg.errors.PipelineAborted) and isinstance(
        exc.__context__, psycopg.Error
    ):
        exc = exc.__context__
    return exc


class Database:
    """A pool of connections as the runtime role (NOBYPASSRLS, owns no table).

    Tenant tables are reached only through `tenant()`, which sets the org for one
    transaction with `set_config(..., true)`. Nothing here issues a session-level SET, so
    a pooled connection carries no tenant from one use to the next.

    An outage is an `Unavailable` (503) at once, never a hang: a caller waits at most
    `timeout` for a connection, a lost connection fails its call, and the breaker
    (db/breaker.py) fails every call while the server refuses connections.
    """

    def __init__(
        self, conninfo: str, *, min_size: int = 2, max_size: int = 20, timeout: float = 5.0
    ) -> None:
        self.conninfo = conninfo
        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "autocommit": True},
            open=False,
            name="tenantgraph",
            timeout=timeout,
            reconnect_timeout=_RECONNECT_SECONDS,
        )
        self.pool._pool = _NewestFirst()  # the one private attribute we set: see the class
        self.breaker = Breaker(self._probe, self.pool.check)
        # (org id, settings) -> the statement setting them
        self._set_tenant: dict[tuple[str, LocalSettings], bytes] = {}

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        await self.breaker.close()
        await self.pool.close()

    async def ping(self, seconds: float) -> None:
        """Readiness: return if a pooled connection answers `SELECT 1` within `seconds`, else
        raise (`Unavailable` at once while the breaker is open, TimeoutError past `seconds`):
        it must fail fast rather than wait out the pool's own timeout."""
        async with asyncio.timeout(seconds), self._connection() as conn:
            await conn.execute("SELECT 1")

    async def _probe(self) -> None:
        """A new connection, outside the pool: does the server accept connections?"""
        conn = await asyncio.wait_for(
            AsyncConnection.connect(self.conninfo, connect_timeout=2), _PROBE_TIMEOUT_SECONDS
        )
        await conn.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection; the loss of the server becomes `Unavailable` here, once."""
        self.breaker.check()
        conn: AsyncConnection | None = None
        try:
            async with self.pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            self.breaker.suspect()
            raise Unavailable("no database connection is free or reachable; retry") from exc
        except psycopg.OperationalError as exc:
            if conn is None or not conn.closed:
                raise  # a statement's error (a deadlock, a cancel), not a lost connection
            self.breaker.suspect()
            raise Unavailable("the connection to the database was lost; retry") from exc

    @asynccontextmanager
    async def tenant(
        self, principal: Principal, *, settings: LocalSettings = ()
    ) -> AsyncIterator[AsyncConnection]:
        """One transaction scoped to `principal.org_id`, committed on normal exit and
        rolled back on any exception. `settings` are set for the transaction in the same
        statement as the org: a statement fewer than setting them in one of its own. None
        of them may be the org's own setting (ValueError): the org comes from `principal`.

        Pipeline mode: BEGIN and set_config leave in the same write as the first statement
        and COMMIT in the same write as the closing Sync (`_SentWithNext`), so a transaction
        of one statement whose results are fetched after it (as the store's reads are) is
        one round trip and two writes, and one that fetches inside costs one more of each.
        In pipeline mode a statement's results (and `rowcount`) arrive when they are
        fetched: use RETURNING to count.

        BEGIN, set_config and COMMIT are queued as psycopg queues its own transaction
        commands (`_exec_command`: no wait, never prepared), not through
        `conn.transaction()`, whose nested pipelines each sync: 3 round trips for a
        one-statement transaction (docs/measurements.md). Never prepared: psycopg would
        cache a prepared ROLLBACK right after the ROLLBACK emptied its statement cache, and
        the next use of that name fails.
        """
        async with self._connection() as conn:
            try:
                async with conn.pipeline() as pipeline:
                    pgconn = conn.pgconn
                    set_tenant = self._set_tenant_statement(principal.org_id, settings, conn)

                    def begin() -> None:
                        pgconn.send_query_params(b"BEGIN", None)
                        pgconn.send_query_params(set_tenant, None)

                    queue = pipeline.command_queue = _SentWithNext()
                    queue.hold(begin)
                    pipeline.result_queue.extend((None, None))  # checked for errors only
                    yield conn
                    queue.hold(partial(pgconn.send_query_params, b"COMMIT", None))
                    pipeline.result_queue.append(None)
            except BaseException as exc:
                # A failed statement or COMMIT, an exception of the caller, a cancellation:
                # nothing of this transaction may stay open on a pooled connection (a
                # connection still busy with a query is discarded by the pool instead).
                # BEGIN went out at the latest with the pipeline's closing sync.
                #
                # psycopg records a statement as prepared when it sends the PREPARE (at
                # the prepare_threshold-th use), not when the server confirms it; in a
                # pipeline aborted by an earlier error, or cancelled, the server never
                # ran it, and every later use of that name on this connection fails.
                # psycopg's own Transaction forgets all prepared statements on rollback
                # for this reason; there is no public call for it, so the private cache
                # is cleared here (its DEALLOCATE ALL goes out with the next statement).
                conn._prepared.clear()
                if conn.info.transaction_status in _OPEN:
                    await conn.execute("ROLLBACK", prepare=False)
                first = _first_error(exc)
                if first is exc:
                    raise
                raise first from None

    def _set_tenant_statement(
        self, org_id: str, settings: LocalSettings, conn: AsyncConnection
    ) -> bytes:
        """The org's set_config (and the settings'), quoted by psycopg once per org and
        settings (the pool's connections share their encoding and quoting settings)."""
        statement = self._set_tenant.get((org_id, settings))
        if statement is None:
            # Set after the org in one statement, a later set_config of it would win
            # (setting names are case-insensitive).
            if any(name.lower() == _TENANT_SETTING for name, _ in settings):
                raise ValueError(f"{_TENANT_SETTING} is set from the principal, not a setting")
            if len(self._set_tenant) >= _SET_TENANT_CACHE:
                self._set_tenant.clear()
            composed = sql.Composed(
                [
                    _SET_TENANT.format(sql.Literal(_TENANT_SETTING), sql.Literal(org_id)),
                    *(_AND_SET.format(sql.Literal(k), sql.Literal(v)) for k, v in settings),
                ]
            )
            statement = composed.as_bytes(conn)
            self._set_tenant[(org_id, settings)] = statement
        return statement

    @asynccontextmanager
    async def system(self) -> AsyncIterator[AsyncConnection]:
        """A connection with no tenant: it sees no tenant row and may only call the audited
        SECURITY DEFINER functions of the schema (API key lookup, run queue claims, …)."""
        async with self._connection() as conn:
            yield conn
