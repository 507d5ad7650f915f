"""The web console at `/ui`: static files shipped inside the package, read once at import.

Only the files present in `tenantgraph/console/` are served (no path from the request
reaches the filesystem). Every answer carries a Content-Security-Policy without inline
script or style: the page's own modules and the API of the same origin, nothing else.
The page holds no privilege: it calls the API with the credential its user typed in.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from tenantgraph.errors import NotFound

__all__ = ["CONTENT_SECURITY_POLICY", "router"]

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidated on each load (the ETag makes that a 304): an upgrade shows at once.
    "Cache-Control": "no-cache",
}


def _load(root: Path) -> dict[str, tuple[bytes, str, str]]:
    """Every servable file under `root`: relative path → (body, media type, ETag)."""
    files = {}
    for path in sorted(root.rglob("*")):
        media_type = MEDIA_TYPES.get(path.suffix)
        if path.is_file() and media_type is not None:
            body = path.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            files[path.relative_to(root).as_posix()] = (body, media_type, etag)
    return files


FILES = _load(CONSOLE_DIR)

router = APIRouter(prefix="/ui", tags=["console"], include_in_schema=False)


@router.get("")
async def console_root() -> RedirectResponse:
    """`/ui` → `/ui/`, so the page's relative module paths resolve under `/ui/`."""
    return RedirectResponse("/ui/", status_code=308, headers=HEADERS)


@router.get("/{path:path}")
async def console_file(path: str, request: Request) -> Response:
    """A console file, or the page itself for `/ui/` (views are routed in the page)."""
    found = FILES.get(path or "index.html")
    if found is None:
        raise NotFound("no such console file")
    body, media_type, etag = found
    headers = {**HEADERS, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)
