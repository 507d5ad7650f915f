"""The one error family: every error a caller may see is a `TenantgraphError`.

Nothing below the API knows about HTTP, so these carry what the client needs (a message
safe to show, a retry delay, the budget that was spent) but no status codes:
`api/errors.py` maps each base class to one status, in one table.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "InvalidRequest",
    "NotFound",
    "QuotaExceeded",
    "RateLimited",
    "TenantgraphError",
    "Unauthenticated",
    "Unavailable",
]


class TenantgraphError(Exception):
    """Base class: the message is safe to show to the caller."""


class NotFound(TenantgraphError):
    """Missing, or belonging to another tenant: the two are never told apart."""


class Conflict(TenantgraphError):
    """The object exists already, or is busy."""


class Forbidden(TenantgraphError):
    """The caller is known but may not do this (role, organisation, reserved space)."""


class InvalidInput(TenantgraphError):
    """A value the server cannot accept: an identifier, a filter, a namespace, a field."""


class InvalidRequest(InvalidInput):
    """Well-formed input that asks for something impossible (the LangGraph API's 400)."""


class Unauthenticated(TenantgraphError):
    """No credential, or one that does not verify."""


class QuotaExceeded(TenantgraphError):
    """A size limit would be passed: the org's storage quota, a request body's size."""


class RateLimited(TenantgraphError):
    """A budget is spent. `budget` names the tightest one as `RateLimit-*` fields
    (`Limit`, `Remaining`, `Reset`, `Policy`); retry after `retry_after_seconds`."""

    def __init__(
        self, message: str, *, retry_after_seconds: int, budget: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
        self.budget = dict(budget or {})


class Unavailable(TenantgraphError):
    """A part the request needs (Postgres, Valkey) is out of reach; retry later."""

    def __init__(self, message: str, *, retry_after_seconds: int = 1) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
