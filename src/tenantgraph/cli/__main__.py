"""`python -m tenantgraph.cli`, as the tests and `make run` start the server."""

from tenantgraph.cli.main import app

app()
