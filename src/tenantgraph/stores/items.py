"""Temporary: the names `api/errors.py` imports from here on this branch, until its mapping
reads the error family alone. Delete with that import."""

from tenantgraph.errors import QuotaExceeded
from tenantgraph.services.memory import StoreForbidden

__all__ = ["QuotaExceeded", "StoreForbidden"]
