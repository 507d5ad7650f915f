"""tests/test_ephemeral_flags.py against the Valkey Cluster (see conftest.py)."""

from tests.test_ephemeral_flags import *  # noqa: F403
