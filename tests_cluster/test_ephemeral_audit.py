"""tests/test_ephemeral_audit.py against the Valkey Cluster (see conftest.py)."""

from tests.test_ephemeral_audit import *  # noqa: F403
