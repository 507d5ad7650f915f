"""tests/test_ephemeral_sessions.py against the Valkey Cluster (see conftest.py)."""

from tests.test_ephemeral_sessions import *  # noqa: F403
