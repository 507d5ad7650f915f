"""Fault tests: real server processes whose Postgres or Valkey is killed and restarted
(`make test-faults`, run by `.ci/run`). They use the main suite's session fixtures."""

from tests.conftest import api_env, data_dir, org_ids, resources, settings

__all__ = ["api_env", "data_dir", "org_ids", "resources", "settings"]
