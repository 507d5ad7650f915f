"""The least a durable server can do for the peer bench's store calls and threads.create,
with tenantgraph's required parts added one step at a time (bench/floor_bench.py runs one
process per step beside langgraph dev and tenantgraph itself).

Starlette on uvicorn; each call is one statement on a table the bench made, through a
pooled psycopg connection in autocommit (durable: `synchronous_commit` on); a search reads
the one namespace given, cheaper than the prefix search a store does. Nothing else: no
authentication, no FastAPI, no access log, no metrics. Steps, named in
TENANTGRAPH_FLOOR_STEPS (comma-separated):

  rate-limit  tenantgraph's RateLimiter first spends the request's tokens and reads the
              org's API-key generation in Valkey, as authenticating an API key does;
  tenant-tx   the statement runs in tenantgraph's tenant transaction (`Database.tenant`:
              BEGIN, set_config, the statement, COMMIT) as the runtime role, on a table
              with forced row-level security;
  overlap     the rate limit's check runs while the statement does, and decides before
              the COMMIT and the answer (tenantgraph checks first): the least the two
              parts can add together.

Run by the bench: uvicorn bench.floor_server:app, with FLOOR_ADMIN_URL, FLOOR_RUNTIME_URL
and FLOOR_VALKEY_URL set.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import orjson
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tenantgraph.db.database import Database
from tenantgraph.ephemeral.client import connect
from tenantgraph.ephemeral.ratelimit import Bucket, RateLimiter
from tenantgraph.scope import Principal, PrincipalKind
from tenantgraph.settings import Limit, Settings

STEPS = ("rate-limit", "tenant-tx", "overlap")
PRINCIPAL = Principal(org_id="bench", user_id="bench", kind=PrincipalKind.API_KEY)
API_KEY_ID = str(uuid.UUID(int=1))

# Made by the bench as the admin role, read and written by the runtime role through RLS.
SCHEMA = """
CREATE SCHEMA IF NOT EXISTS floor;
GRANT USAGE ON SCHEMA floor TO {runtime_role};
CREATE TABLE IF NOT EXISTS floor.items (
    org_id text NOT NULL, namespace text NOT NULL, key text NOT NULL, value jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, namespace, key));
CREATE INDEX IF NOT EXISTS items_recent ON floor.items (org_id, namespace, updated_at);
CREATE TABLE IF NOT EXISTS floor.threads (
    org_id text NOT NULL, thread_id uuid NOT NULL, metadata jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (org_id, thread_id));
ALTER TABLE floor.items ENABLE ROW LEVEL SECURITY;
ALTER TABLE floor.items FORCE ROW LEVEL SECURITY;
ALTER TABLE floor.threads ENABLE ROW LEVEL SECURITY;
ALTER TABLE floor.threads FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant ON floor.items;
DROP POLICY IF EXISTS tenant ON floor.threads;
CREATE POLICY tenant ON floor.items
    USING (org_id = NULLIF(current_setting('tenantgraph.org_id', true), ''));
CREATE POLICY tenant ON floor.threads
    USING (org_id = NULLIF(current_setting('tenantgraph.org_id', true), ''));
GRANT SELECT, INSERT, UPDATE ON floor.items, floor.threads TO {runtime_role};
"""

PUT = """INSERT INTO floor.items (org_id, namespace, key, value) VALUES (%s, %s, %s, %s)
ON CONFLICT (org_id, namespace, key) DO UPDATE SET value = excluded.value, updated_at = now()"""
GET = """SELECT value, created_at, updated_at FROM floor.items
WHERE org_id = %s AND namespace = %s AND key = %s"""
SEARCH = """SELECT namespace, key, value, created_at, updated_at FROM floor.items
WHERE org_id = %s AND namespace = %s ORDER BY updated_at DESC LIMIT %s"""
CREATE_THREAD = """INSERT INTO floor.threads (org_id, thread_id, metadata) VALUES (%s, %s, %s)
RETURNING created_at"""


async def _no_overrides(_: Principal) -> Mapping[Bucket, Limit]:
    return {}


class Floor:
    """The connections and the checks of the steps this process was started with."""

    def __init__(self, steps: frozenset[str]) -> None:
        unknown = steps - set(STEPS)
        if unknown:
            raise ValueError(f"unknown floor steps {sorted(unknown)}; known: {STEPS}")
        if "overlap" in steps and "rate-limit" not in steps:
            raise ValueError("the overlap step overlaps the rate limit's check")
        self.steps = steps
        self.db: Database | None = None
        self.pool: AsyncConnectionPool | None = None
        self.limiter: RateLimiter | None = None

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[None]:
        if "tenant-tx" in self.steps:
            self.db = Database(os.environ["FLOOR_RUNTIME_URL"], min_size=2, max_size=4)
            await self.db.open()
        else:  # the admin role is the embedded server's superuser: RLS does not apply
            self.pool = AsyncConnectionPool(
                os.environ["FLOOR_ADMIN_URL"],
                min_size=2,
                max_size=4,
                kwargs={"row_factory": dict_row, "autocommit": True},
                open=False,
            )
            await self.pool.open(wait=True)
        redis = connect(os.environ["FLOOR_VALKEY_URL"]) if "rate-limit" in self.steps else None
        if redis is not None:
            # Limits from the environment, as the server's (the bench lifts them).
            self.limiter = RateLimiter(redis, _no_overrides, Settings(config=None).ephemeral)
        try:
            yield
        finally:
            if redis is not None:
                await redis.aclose()
            if self.db is not None:
                await self.db.close()
            if self.pool is not None:
                await self.pool.close()

    def _connection(self) -> AbstractAsyncContextManager[AsyncConnection]:
        if self.db is not None:
            return self.db.tenant(PRINCIPAL)
        assert self.pool is not None
        return self.pool.connection()

    async def _admitted(self) -> bool:
        assert self.limiter is not None
        decision = await self.limiter.check_request(
            PRINCIPAL, api_key_id=API_KEY_ID, key_generation=True
        )
        return decision.allowed

    @asynccontextmanager
    async def call(self) -> AsyncIterator[AsyncConnection]:
        """The call's connection, once the rate limit admits it (`Denied` if not): checked
        before the connection is taken, or with `overlap` while the call's statement runs
        and decided before its COMMIT, so a denied write is rolled back."""
        if self.limiter is None:
            async with self._connection() as conn:
                yield conn
        elif "overlap" not in self.steps:
            if not await self._admitted():
                raise Denied
            async with self._connection() as conn:
                yield conn
        else:
            check = asyncio.ensure_future(self._admitted())
            try:
                async with self._connection() as conn:
                    yield conn
                    if not await check:
                        raise Denied
            finally:
                check.cancel()


class Denied(Exception):
    """The rate limit refused the call: 429."""


FLOOR = Floor(frozenset(filter(None, os.environ.get("TENANTGRAPH_FLOOR_STEPS", "").split(","))))
ORG = PRINCIPAL.org_id


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def _item(namespace: str, key: str, row: dict) -> dict:
    return {
        "namespace": namespace.split("."),
        "key": key,
        "value": row["value"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def put_item(request: Request) -> Response:
    body = orjson.loads(await request.body())
    value = orjson.dumps(body["value"]).decode()
    async with FLOOR.call() as conn:
        await conn.execute(PUT, (ORG, ".".join(body["namespace"]), body["key"], value))
    return Response(status_code=204)


async def get_item(request: Request) -> Response:
    namespace, key = request.query_params["namespace"], request.query_params["key"]
    async with FLOOR.call() as conn:
        cursor = await conn.execute(GET, (ORG, namespace, key))
        row = await cursor.fetchone()
    if row is None:
        return _json({"detail": "not found"}, 404)
    return _json(_item(namespace, key, row))


async def search_items(request: Request) -> Response:
    body = orjson.loads(await request.body())
    namespace = ".".join(body["namespace_prefix"])
    async with FLOOR.call() as conn:
        cursor = await conn.execute(SEARCH, (ORG, namespace, body.get("limit") or 10))
        rows = await cursor.fetchall()
    return _json({"items": [_item(row["namespace"], row["key"], row) for row in rows]})


async def create_thread(request: Request) -> Response:
    metadata = orjson.loads(await request.body() or b"{}").get("metadata") or {}
    thread_id = uuid.uuid4()
    async with FLOOR.call() as conn:
        cursor = await conn.execute(
            CREATE_THREAD, (ORG, thread_id, orjson.dumps(metadata).decode())
        )
        row = await cursor.fetchone()
    assert row is not None
    created = row["created_at"]
    thread = {"thread_id": str(thread_id), "created_at": created, "updated_at": created}
    return _json({**thread, "metadata": metadata, "status": "idle", "values": None})


async def denied(_: Request, __: Exception) -> Response:
    return _json({"detail": "rate limited"}, 429)


async def ok(_: Request) -> Response:
    return _json({"ok": True})


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    async with FLOOR.opened():
        yield


app = Starlette(
    routes=[
        Route("/ok", ok),
        Route("/store/items", put_item, methods=["PUT"]),
        Route("/store/items", get_item, methods=["GET"]),
        Route("/store/items/search", search_items, methods=["POST"]),
        Route("/threads", create_thread, methods=["POST"]),
    ],
    lifespan=lifespan,
    exception_handlers={Denied: denied},
)
