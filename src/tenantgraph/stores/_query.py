"""Small SQL builders shared by the resource stores: visibility, sorting, selection."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from psycopg import sql

from tenantgraph.errors import InvalidRequest
from tenantgraph.scope import Principal


def caller_params(principal: Principal) -> dict[str, Any]:
    """The named query parameters `org`, `user` and `admin` that visibility clauses use;
    `admin` (seeing every user's rows) is never true for a service account."""
    return {"org": principal.org_id, "user": principal.user_id, "admin": principal.sees_all_users}


def owner_or_admin(alias: str) -> str:
    """The visibility rule of an owned resource (docs/architecture.md §1): the caller owns
    the row `alias` or is an admin of the org (the parameters of `caller_params`)."""
    return f"(%(admin)s OR {alias}.owner_id = %(user)s)"


def order_by(
    sort_by: str | None, sort_order: str | None, allowed: Collection[str], default: str
) -> sql.Composed:
    """`ORDER BY <column> <dir>` from a whitelist; unknown columns are a 400, not SQL."""
    column = sort_by or default
    if column not in allowed:
        raise InvalidRequest(f"sort_by must be one of {sorted(allowed)}, not {column!r}")
    direction = (sort_order or "desc").lower()
    if direction not in ("asc", "desc"):
        raise InvalidRequest("sort_order must be 'asc' or 'desc'")
    return sql.SQL("ORDER BY {} {}").format(sql.Identifier(column), sql.SQL(direction.upper()))


def selected(rows: Sequence[dict], select: Sequence[str] | None, allowed: Collection[str]) -> list:
    """Keep only the `select`ed fields of each row (all of them when select is empty)."""
    if not select:
        return list(rows)
    unknown = set(select) - set(allowed)
    if unknown:
        raise InvalidRequest(f"select: unknown fields {sorted(unknown)}")
    return [{k: row[k] for k in select} for row in rows]
