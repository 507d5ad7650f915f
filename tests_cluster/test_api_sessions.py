"""tests/test_api_sessions.py against the Valkey Cluster (see conftest.py)."""

from tests.test_api_sessions import *  # noqa: F403
