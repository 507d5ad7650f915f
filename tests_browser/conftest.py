"""Tests in a real Chromium (`make test-browser`, which installs Playwright and, as root, the
distribution's Chromium). They use the main suite's session fixtures."""

from tests.conftest import api_env, data_dir, resources, settings

__all__ = ["api_env", "data_dir", "resources", "settings"]
