"""tests/test_ephemeral_episodes.py against the Valkey Cluster (see conftest.py)."""

from tests.test_ephemeral_episodes import *  # noqa: F403
