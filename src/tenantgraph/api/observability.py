"""Request ids in logs and Prometheus metrics, as one outermost ASGI middleware."""

from __future__ import annotations

import contextvars
import logging
import os
import time
import uuid

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["LOGGING", "ObservabilityMiddleware", "RequestIdFilter", "metrics", "request_id"]

log = logging.getLogger("tenantgraph.access")
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

REQUESTS = Counter(
    "tenantgraph_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
LATENCY = Histogram(
    "tenantgraph_http_request_duration_seconds", "HTTP request latency", ["method", "route"]
)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every log record (install on the handlers that format it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


# uvicorn's log_config: one line per record, request id included, for every logger.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": RequestIdFilter}},
    "formatters": {
        "line": {
            "format": "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s %(message)s"
        }
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["stderr"], "level": "INFO"},
    "loggers": {
        "uvicorn": {"level": "INFO"},
        # Our own access line carries the request id; uvicorn's would not.
        "uvicorn.access": {"level": "WARNING"},
    },
}


class ObservabilityMiddleware:
    """Tags each request with an id (the caller's `X-Request-Id` or a new one), echoes it
    in the response, logs one access line with it, and records count and latency by
    route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = Headers(scope=scope).get("x-request-id") or str(uuid.uuid4())
        token = request_id.set(rid)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-request-id"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - started
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(elapsed)
            log.info("%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed * 1000)
            request_id.reset(token)


async def metrics(_: Request) -> Response:
    """Prometheus text exposition. Under `serve --workers N` each process writes its
    samples to PROMETHEUS_MULTIPROC_DIR, and any of them answers with the sum of all."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
