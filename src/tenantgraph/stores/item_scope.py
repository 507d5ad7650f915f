"""Where a store item lives: the owner a namespace maps to, and a namespace's index key.

Callers and graphs name namespaces as in any LangGraph app; the org and the owner are never
part of what they pass or see. An item belongs to the caller's org and to its writer, or to
`shared` when the first label is `"shared"` (the org-wide space: members read it, admins
write it), so two users writing the same namespace and key each get their own item
(docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from tenantgraph.scope import SHARED, Principal

__all__ = ["ns_path", "owner_of", "owners_under", "path_range"]


def ns_path(namespace: Sequence[str]) -> str:
    """The index key of a namespace: each label followed by '.'; mirrors SQL store_ns_path."""
    return "".join(f"{label}." for label in namespace)


def path_range(prefix: Sequence[str]) -> tuple[str, str] | None:
    """The [low, high) ns_path range of every namespace under `prefix` ('/' follows '.')."""
    if not prefix:
        return None
    low = ns_path(prefix)
    return low, low[:-1] + "/"


def owner_of(principal: Principal, namespace: Sequence[str]) -> str:
    """The owner column of the item `principal` names in `namespace`."""
    return SHARED if namespace[:1] == (SHARED,) else principal.user_id


def owners_under(principal: Principal, prefix: Sequence[str]) -> list[str]:
    """Owners whose items `principal` sees under `prefix` ('*' is a wildcard label)."""
    if not prefix or prefix[0] == "*":
        return [principal.user_id, SHARED]
    return [owner_of(principal, prefix)]
