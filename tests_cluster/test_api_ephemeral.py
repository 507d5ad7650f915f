"""tests/test_api_ephemeral.py against the Valkey Cluster (see conftest.py)."""

from tests.test_api_ephemeral import *  # noqa: F403
