"""The OpenAPI schema names both credentials, so `/docs` can send a key or a token.

Authentication is the auth middleware's (api/auth.py), not a route dependency, so FastAPI
cannot see it: the schemes are added to the generated schema here, on every operation
but the public ones.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tenantgraph.api.auth import PUBLIC_PATHS, PUBLIC_PREFIXES

__all__ = ["SECURITY_SCHEMES", "describe_security"]

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A JWT from your identity provider, or an API key (`tg_…`).",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
        "description": "An API key (`tg_…`), as langgraph-sdk sends `api_key`.",
    },
}


def describe_security(app: FastAPI) -> None:
    """Make `app.openapi()` add the schemes and require one of them where auth applies."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        for path, operations in schema["paths"].items():
            if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
                continue
            for operation in operations.values():
                operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
