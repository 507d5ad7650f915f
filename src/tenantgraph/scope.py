"""Who is asking, and the names of what they may touch.

This module is the only place where a tenant identity, a long-term-memory namespace or a
Valkey key is built. Every builder takes the tenant first, so a key or namespace without
its organisation cannot be written (docs/architecture.md §1, §3 rule 4).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tenantgraph.errors import Forbidden, InvalidInput

__all__ = [
    "CATEGORIES",
    "CONTEXT",
    "GLOBAL_ASSISTANT",
    "MEMORIES",
    "PREFERENCES",
    "SCOPES",
    "SERVICE_PREFIX",
    "SHARED",
    "TOKENS",
    "InvalidIdentifier",
    "KeyKind",
    "Principal",
    "PrincipalKind",
    "Role",
    "dedup_key",
    "memory_namespace",
    "org_key_pattern",
    "redis_key",
    "service_account",
    "validate_identifier",
    "validate_person_id",
    "webchat_key",
]

MAX_IDENTIFIER_LENGTH = 128
# Whitespace, C0 and C1 controls, lone surrogates (not encodable, so never storable), the
# hash-tag braces and the namespace separator. Stricter than the schema's
# `is_valid_identifier` (its [:space:] leaves out no-break spaces), never looser:
# tests/test_identifiers.py holds the two side by side.
_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f-\x9f\ud800-\udfff{}.]")


class InvalidIdentifier(InvalidInput, ValueError):
    """An org, user or key part that would be ambiguous or unsafe in a key or namespace."""


def validate_identifier(value: object, what: str = "identifier") -> str:
    """Return `value` if it is a usable org/user id, else raise `InvalidIdentifier`.

    Ids are opaque strings of 1 to 128 characters without whitespace, control characters,
    `{`, `}` (Redis Cluster hash tags) or `.` (namespace path separator in filters).
    """
    if not isinstance(value, str):
        raise InvalidIdentifier(f"{what} must be a string, got {type(value).__name__}")
    if not 1 <= len(value) <= MAX_IDENTIFIER_LENGTH:
        raise InvalidIdentifier(f"{what} must be 1 to {MAX_IDENTIFIER_LENGTH} characters long")
    bad = _FORBIDDEN.search(value)
    if bad:
        raise InvalidIdentifier(
            f"{what} {value!r} contains {bad.group()!r}: whitespace, control characters, "
            "'{', '}' and '.' are not allowed"
        )
    return value


# User ids no person can hold: the org-wide memory space, and service accounts (keys that
# act for a job, not a person). Authentication and memberships refuse them as person ids.
SHARED = "shared"
SERVICE_PREFIX = "svc:"


def validate_person_id(value: object, what: str = "user_id") -> str:
    """`validate_identifier`, and not a reserved name (`shared`, `svc:…`)."""
    value = validate_identifier(value, what)
    if value == SHARED or value.startswith(SERVICE_PREFIX):
        raise InvalidIdentifier(
            f"{what} {value!r} is reserved: {SHARED!r} and the {SERVICE_PREFIX!r} prefix "
            "are not person ids"
        )
    return value


def service_account(user_id: str) -> bool:
    """Whether `user_id` names a service account (`svc:<name>`)."""
    return user_id.startswith(SERVICE_PREFIX) and len(user_id) > len(SERVICE_PREFIX)


class Role(enum.StrEnum):
    """A member's rights inside one organisation, weakest last."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"

    @property
    def rank(self) -> int:
        return {Role.OWNER: 3, Role.ADMIN: 2, Role.MEMBER: 1}[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


# What a credential may be narrowed to (README "Scopes"); a route needs one of them
# (api/scopes.py). A credential that names none of them keeps what its role allows.
SCOPES = frozenset(
    {
        "threads:read",
        "threads:write",
        "runs:create",
        "runs:read",
        "assistants:read",
        "assistants:write",
        "store:read",
        "store:write",
        "crons:read",
        "crons:write",
        "feedback:read",
        "feedback:write",
        "mcp:invoke",
        "a2a:invoke",
        "admin",
    }
)


class PrincipalKind(enum.StrEnum):
    USER = "user"
    API_KEY = "api_key"


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller: built by authentication only, never from a request body."""

    org_id: str
    user_id: str
    role: Role = Role.MEMBER
    kind: PrincipalKind = PrincipalKind.USER
    # The credential's permissions as it gave them (None: it gave none); graphs receive
    # them as `langgraph_auth_permissions`, and the known ones narrow the role (`scopes`).
    permissions: tuple[str, ...] | None = None
    # The assistants (ids or graph names) the credential may run; None: every one.
    assistants: frozenset[str] | None = None

    def __post_init__(self) -> None:
        validate_identifier(self.org_id, "org_id")
        validate_identifier(self.user_id, "user_id")
        object.__setattr__(self, "role", Role(self.role))
        object.__setattr__(self, "kind", PrincipalKind(self.kind))
        if self.permissions is not None:
            object.__setattr__(self, "permissions", tuple(self.permissions))
        if self.assistants is not None:
            object.__setattr__(self, "assistants", frozenset(self.assistants))

    @property
    def scopes(self) -> frozenset[str] | None:
        """The scopes this credential is narrowed to, or None when it names none of
        `SCOPES` (an OAuth token's `openid profile` leaves the role's meaning)."""
        known = SCOPES.intersection(self.permissions or ())
        return frozenset(known) if known or self.permissions == () else None

    def may_run(self, assistant_id: str, graph_id: str) -> bool:
        """Whether the credential may run this assistant (by its id or its graph's name)."""
        return self.assistants is None or not self.assistants.isdisjoint({assistant_id, graph_id})

    @property
    def is_admin(self) -> bool:
        return self.role.at_least(Role.ADMIN)

    def require_admin(self, action: str = "this action") -> None:
        """Refuse (403) a caller below the admin role: one check for every admin-only use case."""
        if not self.is_admin:
            raise Forbidden(f"{action} needs the admin or owner role")

    @property
    def is_service(self) -> bool:
        return service_account(self.user_id)

    @property
    def sees_all_users(self) -> bool:
        """Whether the caller reaches other users' threads, runs and crons: a person who is
        an admin; never a service account, whatever its role."""
        return self.is_admin and not self.is_service


# --- Long-term memory convention -------------------------------------------------------
# Items are keyed by org column + owner column + namespace. The seed convention
# (org, user, assistant, category) maps to: org → org column, user → owner column (or
# SHARED for the org-wide space), and the namespace (assistant_id | GLOBAL_ASSISTANT,
# category).

GLOBAL_ASSISTANT = "global"
MEMORIES = "memories"
PREFERENCES = "preferences"
CONTEXT = "context"
TOKENS = "tokens"
CATEGORIES = frozenset({MEMORIES, PREFERENCES, CONTEXT, TOKENS})


def memory_namespace(
    config: Mapping[str, Any],
    category: str = MEMORIES,
    *,
    shared: bool = False,
    global_assistant: bool = False,
) -> tuple[str, ...]:
    """The namespace a graph uses for `category` memories, from its run config.

    The org and the owning user are not part of the namespace: the store adds them from
    the run's principal. `shared=True` addresses the org-wide space; `global_assistant`
    picks memories common to every assistant of the caller instead of this assistant's.
    """
    if category not in CATEGORIES:
        raise ValueError(f"unknown memory category {category!r}; use one of {sorted(CATEGORIES)}")
    configurable = config.get("configurable") or {}
    if global_assistant:
        assistant = GLOBAL_ASSISTANT
    else:
        assistant = configurable.get("assistant_id")
        if not assistant:
            raise ValueError("config has no configurable.assistant_id; is this a server run?")
        assistant = str(assistant)
    namespace = (assistant, category)
    return (SHARED, *namespace) if shared else namespace


# --- Valkey keys ---------------------------------------------------------------------


class KeyKind(enum.StrEnum):
    """Every kind of key tenantgraph keeps in Valkey; the second segment of each key."""

    RATE_LIMIT = "rl"
    SESSION_WINDOW = "sw"
    EPISODES = "ep"
    FLAG = "flag"
    RUN_EVENTS = "run"
    CACHE = "cache"
    DEDUP = "dedup"
    WEBCHAT = "webchat"
    KEY_GENERATION = "keygen"


def _escape_part(part: object) -> str:
    """Make `part` safe as one `:`-separated key segment (percent-escapes `%` and `:`)."""
    text = str(part)
    if not text:
        raise InvalidIdentifier("key parts must not be empty")
    return text.replace("%", "%25").replace(":", "%3A")


def redis_key(org_id: str, kind: KeyKind, *parts: object) -> str:
    """`{org_id}:<kind>:<part>:…` — the org hash tag keeps one org's keys in one slot."""
    validate_identifier(org_id, "org_id")
    return ":".join([f"{{{org_id}}}", KeyKind(kind).value, *map(_escape_part, parts)])


def dedup_key(org_id: str, channel: str, delivery_id: str) -> str:
    """`{org}:dedup:<channel>:<delivery id>`: a channel delivery already taken (a Slack
    `event_id`, a WhatsApp message id), so a provider's retry starts nothing twice."""
    return redis_key(org_id, KeyKind.DEDUP, channel, delivery_id)


def webchat_key(org_id: str, conversation_id: str, part: str) -> str:
    """`{org}:webchat:<conversation>:<part>`: a web chat conversation's frames (`frames`)
    and the lease of the one task that follows its run (`follower`)."""
    return redis_key(org_id, KeyKind.WEBCHAT, conversation_id, part)


def org_key_pattern(org_id: str) -> str:
    """A SCAN MATCH pattern for every key of one org."""
    validate_identifier(org_id, "org_id")
    escaped = re.sub(r"([*?\[\]\\])", r"\\\1", org_id)
    return f"{{{escaped}}}:*"
