"""Errors the stores and runtime raise; the API maps each class to one HTTP status.

Nothing below the API knows about HTTP, so these carry no status codes: `api/errors.py`
owns that mapping.
"""

from __future__ import annotations


class TenantgraphError(Exception):
    """Base class: the message is safe to show to the caller."""


class NotFound(TenantgraphError):
    """Missing, or belonging to another tenant: the two are never told apart."""


class Conflict(TenantgraphError):
    """The object exists already, or is busy."""


class Forbidden(TenantgraphError):
    """The caller is known but their role does not allow this."""


class InvalidRequest(TenantgraphError):
    """The request is well-formed JSON but asks for something impossible."""
