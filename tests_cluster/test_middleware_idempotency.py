"""tests/test_middleware_idempotency.py against the Valkey Cluster (see conftest.py)."""

from tests.test_middleware_idempotency import *  # noqa: F403
