"""Migrations: applied once, in order, even when several processes start together."""

import asyncio
import subprocess
import sys
import uuid

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tenantgraph.db.migrate import SCHEMA, load_migrations, migrate


def test_migrations_are_numbered_and_ordered():
    migrations = load_migrations()
    versions = [m.version for m in migrations]
    assert versions == sorted(versions) and versions[0] == 1
    assert all(m.sql.strip() for m in migrations)


async def test_concurrent_migrations_apply_each_version_once(resources):
    dbname = f"migrate_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(
        resources.admin_conninfo, autocommit=True
    ) as admin:
        await admin.execute(f'CREATE DATABASE "{dbname}"')
    target = make_conninfo(**{**conninfo_to_dict(resources.admin_conninfo), "dbname": dbname})
    results = await asyncio.gather(*(migrate(target) for _ in range(4)))
    applied = sorted(len(r) for r in results)
    assert applied == [0, 0, 0, len(load_migrations())]
    async with await psycopg.AsyncConnection.connect(target) as conn:
        cur = await conn.execute(f"SELECT count(*) FROM {SCHEMA}.schema_migrations")
        assert (await cur.fetchone())[0] == len(load_migrations())


def test_migrate_command_reports_an_up_to_date_schema(resources, settings):
    env = {"TENANTGRAPH_DATA_DIR": str(settings.data_dir), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "tenantgraph.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "schema is up to date" in result.stderr
