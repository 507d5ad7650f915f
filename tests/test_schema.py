"""Catalog lint: the isolation rules of docs/architecture.md §3 hold for every table."""

import psycopg
import pytest

from tenantgraph.db.migrate import APP_ROLE, SCHEMA, load_migrations, migrate

from .tenant_rows import SEED


async def _tenant_tables(conn) -> list[str]:
    cur = await conn.execute(
        """SELECT c.relname FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id'
           WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY 1""",
        (SCHEMA,),
    )
    return [r[0] for r in await cur.fetchall()]


@pytest.fixture
async def admin(resources):
    async with await psycopg.AsyncConnection.connect(resources.admin_conninfo) as conn:
        yield conn


async def test_every_tenant_table_has_forced_rls_and_a_tenant_policy(admin):
    tables = await _tenant_tables(admin)
    assert len(tables) >= 11
    cur = await admin.execute(
        """SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                  (SELECT array_agg(p.polname) FROM pg_policy p WHERE p.polrelid = c.oid)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = %s AND c.relname = ANY(%s)""",
        (SCHEMA, tables),
    )
    for name, enabled, forced, policies in await cur.fetchall():
        assert enabled and forced, f"{name}: RLS enabled={enabled} forced={forced}"
        assert policies and "tenant_isolation" in policies, f"{name}: policies {policies}"


async def test_tenant_policy_reads_the_transaction_setting_and_fails_closed(admin):
    cur = await admin.execute(
        """SELECT c.relname, pg_get_expr(p.polqual, p.polrelid),
                  pg_get_expr(p.polwithcheck, p.polrelid)
           FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = %s AND p.polname = 'tenant_isolation'""",
        (SCHEMA,),
    )
    rows = await cur.fetchall()
    assert {r[0] for r in rows} == set(await _tenant_tables(admin))
    for name, using, check in rows:
        for expr in (using, check):
            assert "NULLIF(current_setting('tenantgraph.org_id'::text, true), ''::text)" in expr, (
                name,
                expr,
            )


async def test_primary_keys_and_uniques_lead_with_org_id(admin):
    cur = await admin.execute(
        """SELECT c.relname, con.conname, con.contype,
                  (SELECT array_agg(a.attname ORDER BY k.ord)
                   FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
                   JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum)
           FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = %s AND c.relname = ANY(%s) AND con.contype IN ('p', 'u', 'f')""",
        (SCHEMA, await _tenant_tables(admin)),
    )
    constraints = await cur.fetchall()
    assert constraints
    for table, name, kind, columns in constraints:
        assert columns[0] == "org_id", f"{table}.{name} ({kind}) is {columns}"
    cur = await admin.execute(
        """SELECT i.indexrelid::regclass::text, a.attname
           FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
           WHERE n.nspname = %s AND i.indisunique AND c.relname = ANY(%s)""",
        (SCHEMA, await _tenant_tables(admin)),
    )
    for index, first in await cur.fetchall():
        assert first == "org_id", f"unique index {index} starts with {first}"


async def test_runtime_role_is_unprivileged_and_owns_nothing(admin):
    cur = await admin.execute(
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles"
        " WHERE rolname = %s",
        (APP_ROLE,),
    )
    assert await cur.fetchone() == (False, False, False, False)
    cur = await admin.execute(
        """SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
           WHERE r.rolname = %s""",
        (APP_ROLE,),
    )
    assert await cur.fetchall() == []
    cur = await admin.execute(
        """SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member
           WHERE r.rolname = %s""",
        (APP_ROLE,),
    )
    assert (await cur.fetchone())[0] == 0, "the runtime role must not inherit another role"


async def test_the_seed_covers_every_tenant_table(admin):
    """The isolation tests seed one row per table; a new table must join the seed."""
    assert {table for table, _ in SEED} == set(await _tenant_tables(admin))


async def test_migrate_is_idempotent(resources):
    assert await migrate(resources.admin_conninfo) == []
    async with await psycopg.AsyncConnection.connect(resources.admin_conninfo) as conn:
        cur = await conn.execute(f"SELECT version FROM {SCHEMA}.schema_migrations ORDER BY 1")
        assert [r[0] for r in await cur.fetchall()] == [m.version for m in load_migrations()]
