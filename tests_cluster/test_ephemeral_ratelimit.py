"""tests/test_ephemeral_ratelimit.py against the Valkey Cluster (see conftest.py)."""

from tests.test_ephemeral_ratelimit import *  # noqa: F403
