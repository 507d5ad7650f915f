"""tests/test_stream_hub.py against the Valkey Cluster (see conftest.py)."""

from tests.test_stream_hub import *  # noqa: F403
