"""tests/test_middleware_idempotency_scope.py against the Valkey Cluster (see conftest.py)."""

from tests.test_middleware_idempotency_scope import *  # noqa: F403
