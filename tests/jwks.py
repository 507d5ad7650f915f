"""A JWKS endpoint on loopback for the JWT tests: it publishes one public key."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


@contextmanager
def serve_jwks(public_jwk: dict[str, Any], kid: str) -> Iterator[str]:
    """Serve `{"keys": [public_jwk]}` (with `kid`) and yield the endpoint's URL."""
    body = json.dumps({"keys": [{**public_jwk, "kid": kid, "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
    finally:
        server.shutdown()
