"""A Valkey of a test's own, killed and restarted under a running server or worker (the
session's Valkey serves every other test and must stay up)."""

from __future__ import annotations

from pathlib import Path

import psutil

from tenantgraph.embedded import EmbeddedValkey


class OwnValkey:
    """The embedded Valkey binary on its own data directory; its URL goes to REDIS_URL."""

    def __init__(self, directory: Path) -> None:
        self.server = EmbeddedValkey(directory)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> str:
        return self.server.start()

    def kill(self) -> None:
        """`kill -9`: an outage, until `restart`."""
        pid = self.server.pid()
        assert pid is not None, "Valkey is not running"
        process = psutil.Process(pid)
        process.kill()
        process.wait(10)

    def restart(self) -> None:
        """A new, empty server (no persistence, as the embedded default runs it)."""
        self.server.stop()  # drops this process as the holder of the dead server
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
