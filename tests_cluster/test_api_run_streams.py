"""tests/test_api_run_streams.py against the Valkey Cluster (see conftest.py)."""

from tests.test_api_run_streams import *  # noqa: F403
