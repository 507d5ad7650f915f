"""tests/test_middleware_ratelimit.py against the Valkey Cluster (see conftest.py)."""

from tests.test_middleware_ratelimit import *  # noqa: F403
