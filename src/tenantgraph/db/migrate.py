"""Roles, schema and forward-only migrations.

A small runner rather than a migration framework: the schema is plain SQL files applied
in order, once, under an advisory lock, each in its own transaction as the owner role —
the pattern LangGraph's own Postgres store uses. Alembic or yoyo would add an ORM or a
second connection stack for nothing we need, and neither knows about our two roles.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = [
    "APP_ROLE",
    "OWNER_ROLE",
    "SCHEMA",
    "Migration",
    "app_conninfo",
    "load_migrations",
    "migrate",
]

OWNER_ROLE = "tenantgraph_owner"
APP_ROLE = "tenantgraph_app"
SCHEMA = "tenantgraph"
# pg_advisory_lock key shared by every process that migrates ("tgmigrat" in ASCII).
_LOCK_KEY = 0x74676D6967726174


class MigrationError(RuntimeError):
    """The database cannot be brought to the current schema; the message says why."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The migrations shipped in `db/migrations/NNNN_name.sql`, in version order."""
    folder = resources.files("tenantgraph.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append(Migration(int(number), name, entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {versions}")
    return found


def app_conninfo(admin_conninfo: str, password: str | None = None) -> str:
    """The runtime role's connection string on the same server and database."""
    params = conninfo_to_dict(admin_conninfo)
    params["user"] = APP_ROLE
    params.pop("password", None)
    if password is not None:
        params["password"] = password
    return make_conninfo(**params)


_ROLES = f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{OWNER_ROLE}') THEN
        CREATE ROLE {OWNER_ROLE} NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END $$;
"""

_SCHEMA = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA} AUTHORIZATION {OWNER_ROLE};
GRANT USAGE ON SCHEMA {SCHEMA} TO {APP_ROLE};
ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA {SCHEMA}
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE};
ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA {SCHEMA}
    GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE};
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE {SCHEMA}.schema_migrations OWNER TO {OWNER_ROLE};
"""


async def _bootstrap(conn: psycopg.AsyncConnection, app_password: str | None) -> None:
    """Create the two roles and the schema; refuse a runtime role with too many rights."""
    await conn.execute(_ROLES)
    cur = await conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    row = await cur.fetchone()
    if row is None or not row[0]:
        # A non-superuser (e.g. a managed database's admin with CREATEROLE) must be a
        # member of the owner role to SET ROLE to it.
        await conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(OWNER_ROLE)))
    await conn.execute(_SCHEMA)
    dbname = conn.info.dbname
    await conn.execute(
        sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}, public").format(
            sql.Identifier(APP_ROLE), sql.Identifier(dbname), sql.Identifier(SCHEMA)
        )
    )
    await conn.execute(
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(dbname), sql.Identifier(APP_ROLE)
        )
    )
    if app_password is not None:
        await conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(APP_ROLE), sql.Literal(app_password)
            )
        )
    cur = await conn.execute(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", (APP_ROLE,)
    )
    superuser, bypass = await cur.fetchone()  # type: ignore[misc]
    if superuser or bypass:
        raise MigrationError(
            f"role {APP_ROLE} is SUPERUSER or BYPASSRLS; row-level security would not hold. "
            f"Run: ALTER ROLE {APP_ROLE} NOSUPERUSER NOBYPASSRLS"
        )


async def migrate(admin_conninfo: str, *, app_password: str | None = None) -> list[Migration]:
    """Bring the database to the newest schema; return the migrations this call applied.

    Safe to run from several processes at once: the advisory lock serialises them and the
    pending list is read after the lock is taken.
    """
    applied: list[Migration] = []
    async with await psycopg.AsyncConnection.connect(admin_conninfo, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            await _bootstrap(conn, app_password)
            cur = await conn.execute(f"SELECT version FROM {SCHEMA}.schema_migrations")
            done = {v for (v,) in await cur.fetchall()}
            for migration in load_migrations():
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL ROLE {OWNER_ROLE}")
                    await conn.execute(f"SET LOCAL search_path = {SCHEMA}, public")
                    await conn.execute(migration.sql.encode())
                    await conn.execute(
                        f"INSERT INTO {SCHEMA}.schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                applied.append(migration)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied
