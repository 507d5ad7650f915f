"""The runtime role's connection pool and the tenant transaction: the door to tenant data."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tenantgraph.scope import Principal

__all__ = ["Database"]

_SET_TENANT = "SELECT set_config('tenantgraph.org_id', %s, true)"
_OPEN = (TransactionStatus.INTRANS, TransactionStatus.INERROR)


class Database:
    """A pool of connections as the runtime role (NOBYPASSRLS, owns no table).

    Tenant tables are reached only through `tenant()`, which sets the org for one
    transaction with `set_config(..., true)`. Nothing here issues a session-level SET, so
    a pooled connection carries no tenant from one use to the next.
    """

    def __init__(self, conninfo: str, *, min_size: int = 2, max_size: int = 20) -> None:
        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "autocommit": True},
            open=False,
            name="tenantgraph",
        )

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        await self.pool.close()

    async def ping(self, seconds: float) -> None:
        """Raise unless a pooled connection answers `SELECT 1` within `seconds`: readiness,
        which must fail fast rather than wait out the pool's own timeout."""
        async with asyncio.timeout(seconds), self.pool.connection(timeout=seconds) as conn:
            await conn.execute("SELECT 1")

    @asynccontextmanager
    async def tenant(self, principal: Principal) -> AsyncIterator[AsyncConnection]:
        """One transaction scoped to `principal.org_id`, committed on normal exit and
        rolled back on any exception.

        Pipeline mode sends BEGIN and set_config together with the first statement, so the
        tenant costs no extra round trip (docs/measurements.md). In pipeline mode a statement's
        results (and `rowcount`) arrive when they are fetched: use RETURNING to count.

        BEGIN and COMMIT are plain statements here, not psycopg's `conn.transaction()`: in
        pipeline mode that block nests two more pipelines, each a sync and a round trip
        of its own — 3 round trips and ~500 µs of CPU for a one-statement transaction,
        against 1 and ~190 µs this way (docs/measurements.md). They are never prepared:
        psycopg would cache a prepared ROLLBACK right after the ROLLBACK emptied its
        statement cache, and the next use of that name fails.
        """
        async with self.pool.connection() as conn:
            try:
                async with conn.pipeline():
                    await conn.execute("BEGIN", prepare=False)
                    await conn.execute(_SET_TENANT, (principal.org_id,))
                    yield conn
                    await conn.execute("COMMIT", prepare=False)
            except BaseException:
                # A failed statement or COMMIT, an exception of the caller, a cancellation:
                # nothing of this transaction may stay open on a pooled connection (a
                # connection still busy with a query is discarded by the pool instead).
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
                raise

    @asynccontextmanager
    async def system(self) -> AsyncIterator[AsyncConnection]:
        """A connection with no tenant: it sees no tenant row and may only call the audited
        SECURITY DEFINER functions of the schema (API key lookup, run queue claims, …)."""
        async with self.pool.connection() as conn:
            yield conn
