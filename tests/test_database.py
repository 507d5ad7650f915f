"""The tenant transaction: RLS fails closed, the pool leaks nothing, no cross-tenant write."""

import asyncio
import random

import psycopg
import pytest
from psycopg import errors
from psycopg.rows import dict_row

from tenantgraph.db.database import Database, _SentWithNext
from tenantgraph.resources import runtime_conninfo
from tenantgraph.scope import Principal

from .tenant_rows import ASSISTANT_ID, SEED, THREAD_ID, params, seed

TABLES = [table for table, _ in SEED]


@pytest.fixture
async def two_orgs(resources, org_ids):
    """Orgs A and B, each with one row in every tenant table."""
    for org in org_ids:
        async with resources.db.tenant(Principal(org, "alice")) as conn:
            await seed(conn, org)
    return org_ids


@pytest.fixture
async def app_conn(resources):
    """A raw connection as the runtime role, outside any tenant transaction."""
    conninfo = runtime_conninfo(resources.settings, resources.admin_conninfo)
    async with await psycopg.AsyncConnection.connect(
        conninfo, autocommit=True, row_factory=dict_row
    ) as conn:
        yield conn


async def _visible_rows(conn) -> dict[str, int]:
    counts = {}
    for table in TABLES:
        cur = await conn.execute(f"SELECT count(*) AS n FROM {table}")
        counts[table] = (await cur.fetchone())["n"]
    return counts


async def test_tenant_sees_only_its_own_rows(resources, two_orgs):
    a, _ = two_orgs
    async with resources.db.tenant(Principal(a, "alice")) as conn:
        for table in TABLES:
            cur = await conn.execute(f"SELECT DISTINCT org_id FROM {table}")
            assert [r["org_id"] for r in await cur.fetchall()] == [a], table


async def test_no_tenant_sees_nothing_and_writes_nothing(app_conn, two_orgs):
    assert await _visible_rows(app_conn) == dict.fromkeys(TABLES, 0)
    for table, statement in SEED:
        refused = f'row-level security policy for table "{table.split(".")[-1]}"'
        with pytest.raises(errors.InsufficientPrivilege, match=refused):
            await app_conn.execute(statement, params("org-new"))


async def test_stale_empty_tenant_fails_closed(app_conn, two_orgs):
    a, _ = two_orgs
    async with app_conn.transaction():
        await app_conn.execute("SELECT set_config('tenantgraph.org_id', %s, true)", (a,))
        assert (await _visible_rows(app_conn))["assistants"] == 1
    cur = await app_conn.execute("SELECT current_setting('tenantgraph.org_id', true)")
    assert (await cur.fetchone())[
        "current_setting"
    ] == ""  # the setting survives as '' after the transaction
    assert await _visible_rows(app_conn) == dict.fromkeys(TABLES, 0)
    with pytest.raises(errors.InsufficientPrivilege):
        await app_conn.execute(SEED[0][1], params("org-new"))


async def test_no_leak_through_a_pool_of_one(resources, two_orgs):
    """200 interleaved tenant transactions on one pooled connection, some failing."""
    pool = Database(
        runtime_conninfo(resources.settings, resources.admin_conninfo), min_size=1, max_size=1
    )
    await pool.open()
    try:

        async def task(i: int) -> None:
            org = two_orgs[i % 2]
            try:
                async with pool.tenant(Principal(org, "alice")) as conn:
                    cur = await conn.execute("SELECT org_id, assistant_id FROM assistants")
                    rows = await cur.fetchall()
                    assert rows == [{"org_id": org, "assistant_id": ASSISTANT_ID}], (i, rows)
                    await asyncio.sleep(random.random() / 1000)
                    if i % 7 == 0:
                        await conn.execute("SELECT 1 / 0")
            except errors.DivisionByZero:
                assert i % 7 == 0

        await asyncio.gather(*(task(i) for i in range(200)))
        async with pool.system() as conn:
            assert (await _visible_rows(conn))["assistants"] == 0
    finally:
        await pool.close()


async def test_a_lone_caller_gets_the_connection_used_last(resources, two_orgs):
    """After a burst grew the pool, one caller at a time keeps reusing one warm backend
    (db/database.py `_NewestFirst`); first-in first-out would cycle all four."""
    pool = Database(
        runtime_conninfo(resources.settings, resources.admin_conninfo), min_size=1, max_size=4
    )
    await pool.open()
    principal = Principal(two_orgs[0], "alice")
    try:
        inside: list[int] = []
        all_inside, released = asyncio.Event(), asyncio.Event()

        async def backend(hold: bool = False) -> int:
            async with pool.tenant(principal) as conn:
                cur = await conn.execute("SELECT pg_backend_pid() AS pid")
                pid = (await cur.fetchone())["pid"]
                if hold:
                    inside.append(pid)
                    if len(inside) == 4:
                        all_inside.set()
                    await released.wait()
                return pid

        burst = [asyncio.create_task(backend(hold=True)) for _ in range(4)]
        await all_inside.wait()
        released.set()
        assert len(set(await asyncio.gather(*burst))) == 4
        alone = [await backend() for _ in range(8)]
        assert len(set(alone)) == 1, (alone, pool.pool.get_stats())
        assert pool.pool.get_stats()["pool_available"] == 4
    finally:
        await pool.close()


async def test_settings_hold_for_their_transaction_only(resources, two_orgs):
    """`tenant(settings=…)` sets them with the org, in one statement, for that transaction;
    the pooled connection's next transaction has its defaults again."""
    pool = Database(
        runtime_conninfo(resources.settings, resources.admin_conninfo), min_size=1, max_size=1
    )
    await pool.open()
    principal = Principal(two_orgs[0], "alice")
    read = (
        "SELECT current_setting('plan_cache_mode') AS plans, current_setting('enable_sort') AS sort"
    )
    try:
        settings = (("plan_cache_mode", "force_generic_plan"), ("enable_sort", "off"))
        async with pool.tenant(principal, settings=settings) as conn:
            cur = await conn.execute(read)
            inside = await cur.fetchone()
            cur = await conn.execute("SELECT count(*) AS n FROM assistants")
            assert (await cur.fetchone())["n"] == 1  # the org is set too
        assert inside == {"plans": "force_generic_plan", "sort": "off"}
        async with pool.tenant(principal) as conn:
            cur = await conn.execute(read)
            assert await cur.fetchone() == {"plans": "auto", "sort": "on"}
    finally:
        await pool.close()


def test_held_commands_leave_with_the_next_command():
    """BEGIN and set_config are held for the transaction's first statement, COMMIT for the
    closing Sync: each held command runs, in order, as part of the next one queued (psycopg
    flushes the socket once per queued command), and the ones after it are queued alone."""
    sent: list[str] = []
    queue = _SentWithNext()
    queue.hold(lambda: sent.append("BEGIN"))
    queue.hold(lambda: sent.append("set_config"))
    queue.append(lambda: sent.append("SELECT"))
    queue.append(lambda: sent.append("UPDATE"))
    queue.hold(lambda: sent.append("COMMIT"))
    queue.append(lambda: sent.append("Sync"))
    flushed = []
    while queue:
        queue.popleft()()
        flushed.append(list(sent))
        sent.clear()
    assert flushed == [["BEGIN", "set_config", "SELECT"], ["UPDATE"], ["COMMIT", "Sync"]]


@pytest.mark.parametrize("name", ["tenantgraph.org_id", "TenantGraph.Org_Id"])
async def test_a_setting_cannot_switch_the_transaction_to_another_org(resources, two_orgs, name):
    """Org A's principal passing org B's id as a setting (which, set after the org in the
    same statement, would win) is refused before anything is sent; A then still sees only
    its own rows."""
    a, b = two_orgs
    alice = Principal(a, "alice")
    with pytest.raises(ValueError, match="set from the principal"):
        async with resources.db.tenant(alice, settings=((name, b),)) as conn:
            await conn.execute("SELECT 1")
    async with resources.db.tenant(alice) as conn:
        cur = await conn.execute("SELECT DISTINCT org_id FROM assistants")
        assert [r["org_id"] for r in await cur.fetchall()] == [a]


async def test_rolled_back_transactions_leave_the_pooled_connection_usable(resources, two_orgs):
    """Failures of every kind, more often than psycopg's prepare threshold (5), on one
    pooled connection: each is rolled back, and the next transaction works and sees only
    its own org (a stale prepared ROLLBACK once broke the next use of the connection)."""
    pool = Database(
        runtime_conninfo(resources.settings, resources.admin_conninfo), min_size=1, max_size=1
    )
    await pool.open()
    a, b = two_orgs
    try:
        for i in range(12):
            with pytest.raises((errors.DivisionByZero, errors.UniqueViolation, KeyError)):
                async with pool.tenant(Principal(a, "alice")) as conn:
                    await conn.execute("DELETE FROM assistants")
                    if i % 3 == 0:
                        await (await conn.execute("SELECT 1 / 0")).fetchone()
                    elif i % 3 == 1:
                        await conn.execute(SEED[0][1], params(a))  # the org exists: fails
                    else:
                        raise KeyError("the caller's own error")
            async with pool.tenant(Principal(b, "alice")) as conn:
                cur = await conn.execute("SELECT org_id FROM assistants")
                assert await cur.fetchall() == [{"org_id": b}]
        async with pool.tenant(Principal(a, "alice")) as conn:
            assert (await _visible_rows(conn))["assistants"] == 1
    finally:
        await pool.close()


async def test_a_statement_prepared_in_an_aborted_pipeline_is_forgotten(resources, two_orgs):
    """psycopg prepares a statement at its 6th use; when that use is queued behind a
    failing statement, the server never runs the PREPARE. The rollback must make psycopg
    forget it, or every later use of the statement on this connection fails."""
    pool = Database(
        runtime_conninfo(resources.settings, resources.admin_conninfo), min_size=1, max_size=1
    )
    await pool.open()
    a, _ = two_orgs
    count = "SELECT count(*) AS n FROM assistants WHERE org_id = %s"
    try:
        for _ in range(2):  # the first rollback on a connection is special in psycopg
            with pytest.raises(errors.DivisionByZero):
                async with pool.tenant(Principal(a, "alice")) as conn:
                    await conn.execute("SELECT 1 / 0")
            for _ in range(5):
                async with pool.tenant(Principal(a, "alice")) as conn:
                    assert (await (await conn.execute(count, (a,))).fetchone())["n"] == 1
            with pytest.raises(errors.DivisionByZero):
                async with pool.tenant(Principal(a, "alice")) as conn:
                    await conn.execute("SELECT 1 / 0")
                    await conn.execute(count, (a,))  # its PREPARE is skipped by the server
            async with pool.tenant(Principal(a, "alice")) as conn:
                assert (await (await conn.execute(count, (a,))).fetchone())["n"] == 1
    finally:
        await pool.close()


async def test_cannot_insert_a_row_for_another_org(resources, two_orgs):
    a, b = two_orgs
    with pytest.raises(errors.InsufficientPrivilege):
        async with resources.db.tenant(Principal(a, "alice")) as conn:
            await conn.execute(
                "INSERT INTO threads (org_id, thread_id, owner_id)"
                " VALUES (%s, gen_random_uuid(), 'x')",
                (b,),
            )


async def test_cannot_move_a_row_to_another_org(resources, two_orgs):
    a, b = two_orgs
    with pytest.raises(errors.InsufficientPrivilege):
        async with resources.db.tenant(Principal(a, "alice")) as conn:
            await conn.execute("UPDATE store_items SET org_id = %s WHERE org_id = %s", (b, a))


async def test_upsert_cannot_reach_another_orgs_row(resources, two_orgs):
    a, b = two_orgs
    with pytest.raises(errors.InsufficientPrivilege):
        async with resources.db.tenant(Principal(a, "alice")) as conn:
            await conn.execute(
                """INSERT INTO threads (org_id, thread_id, owner_id) VALUES (%s, %s, 'mallory')
                   ON CONFLICT (org_id, thread_id) DO UPDATE SET owner_id = 'mallory'""",
                (b, THREAD_ID),
            )
    async with resources.db.tenant(Principal(b, "alice")) as conn:
        cur = await conn.execute("SELECT owner_id FROM threads")
        assert await cur.fetchall() == [{"owner_id": "alice"}]


async def test_updates_and_deletes_of_foreign_rows_touch_nothing(resources, two_orgs):
    a, b = two_orgs
    async with resources.db.tenant(Principal(a, "alice")) as conn:
        cur = await conn.execute(
            "UPDATE threads SET owner_id = 'mallory' WHERE org_id = %s RETURNING 1", (b,)
        )
        assert await cur.fetchall() == []
        cur = await conn.execute("DELETE FROM store_items WHERE org_id = %s RETURNING 1", (b,))
        assert await cur.fetchall() == []
    async with resources.db.tenant(Principal(b, "alice")) as conn:
        assert (await _visible_rows(conn))["store_items"] == 1


async def test_child_cannot_point_at_another_orgs_parent(resources, two_orgs, org_ids):
    a, b = two_orgs
    async with resources.db.tenant(Principal(b, "alice")) as conn:
        await conn.execute(
            "INSERT INTO assistants (org_id, assistant_id, graph_id, name)"
            " VALUES (%s, gen_random_uuid(), 'agent', 'only-b') RETURNING assistant_id",
            (b,),
        )
        cur = await conn.execute("SELECT assistant_id FROM assistants WHERE name = 'only-b'")
        b_only = (await cur.fetchone())["assistant_id"]
    with pytest.raises(errors.ForeignKeyViolation):
        async with resources.db.tenant(Principal(a, "alice")) as conn:
            await conn.execute(
                "INSERT INTO assistant_versions (org_id, assistant_id, version, graph_id, name)"
                " VALUES (%s, %s, 1, 'agent', 'x')",
                (a, b_only),
            )
    with pytest.raises(errors.InsufficientPrivilege):
        async with resources.db.tenant(Principal(a, "alice")) as conn:
            await conn.execute(
                "INSERT INTO assistant_versions (org_id, assistant_id, version, graph_id, name)"
                " VALUES (%s, %s, 2, 'agent', 'x')",
                (b, b_only),
            )


async def test_same_natural_key_in_two_orgs(resources, two_orgs):
    """Seeding gave both orgs the same assistant, thread, run, cron and item keys."""
    for org in two_orgs:
        async with resources.db.tenant(Principal(org, "alice")) as conn:
            assert await _visible_rows(conn) == dict.fromkeys(TABLES, 1)


async def test_failed_transaction_writes_nothing(resources, org_ids):
    a, _ = org_ids
    with pytest.raises(errors.UniqueViolation):
        async with resources.db.tenant(Principal(a, "alice")) as conn:
            await conn.execute(SEED[0][1], params(a))
            await conn.execute(SEED[0][1], params(a))
    async with resources.db.tenant(Principal(a, "alice")) as conn:
        assert (await _visible_rows(conn))["orgs"] == 0


async def test_invalid_org_ids_are_rejected_by_the_database_too(resources):
    for bad in ("with space", "a.b", "{x}", "x" * 129, "tab\t"):
        with pytest.raises(errors.CheckViolation):
            async with resources.db.tenant(Principal("placeholder", "alice")) as conn:
                await conn.execute("SELECT set_config('tenantgraph.org_id', %s, true)", (bad,))
                await conn.execute(
                    "INSERT INTO orgs (org_id, name, slug) VALUES (%s, 'n', 's')", (bad,)
                )
