"""The `tenantgraph` command: serve, worker, migrate, and the operator's commands (orgs,
keys, memory, redis). The top layer: it builds what the server builds and calls services."""

from tenantgraph.cli.main import app

__all__ = ["app"]
