"""The app's route table, read from the app itself, for tests that must cover every route."""

from __future__ import annotations

import re
import uuid

from tenantgraph.api.app import create_app


def app_routes() -> set[tuple[str, str]]:
    """(method, path template) of every route the app serves, included routers unfolded."""

    def walk(routes) -> set[tuple[str, str]]:
        found = set()
        for route in routes:
            if hasattr(route, "original_router"):
                found |= walk(route.original_router.routes)
            elif not hasattr(route, "methods"):
                continue  # the web chat WebSocket: tests/test_channels_web_chat.py
            else:
                found |= {(m, route.path) for m in route.methods - {"HEAD"}}
        return found

    return walk(create_app().routes)


def anonymous(path: str) -> str:
    """A path template with every placeholder unnamed, to compare tables with the app's."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def with_fresh_ids(path: str, **named: str) -> str:
    """A template filled with `named` values, and a fresh UUID for any other placeholder."""
    return re.sub(r"\{([^}]*)\}", lambda m: named.get(m.group(1), str(uuid.uuid4())), path)
