"""Serving the built dashboard (ui/ -> web/static): files, precompressed when possible, and
`index.html` for every other path so the SPA's own router can take it (history fallback)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from web.errors import error_body

STATIC_DIR = Path(__file__).parent / "static"
# Paths that belong to the server, never to the SPA: unknown ones are real 404s.
SERVER_PREFIXES = ("/api/", "/federation/", "/v1/", "/ollama/")
SERVER_PATHS = ("/healthz", "/readyz", "/metrics", "/openapi.json")
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".woff2": "font/woff2",
    ".png": "image/png",
}


def mount_spa(app: FastAPI, directory: Path = STATIC_DIR) -> None:
    root = directory.resolve()

    @app.get("/{path:path}", include_in_schema=False)
    def spa(path: str, request: Request) -> Response:
        url_path = "/" + path
        if url_path.startswith(SERVER_PREFIXES) or url_path in SERVER_PATHS:
            return JSONResponse(error_body(f"no route {url_path}", "not_found"), status_code=404)
        index = root / "index.html"
        if not index.exists():
            return JSONResponse(
                error_body("the dashboard is not built: run `make ui`", "ui_not_built"),
                status_code=404,
            )
        candidate = (root / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(root):
            return _file(candidate, request, immutable=path.startswith("assets/"))
        return _file(index, request, immutable=False)


def _file(path: Path, request: Request, *, immutable: bool) -> Response:
    media_type = _TYPES.get(path.suffix, "application/octet-stream")
    headers = {
        # Hashed asset names never change; index.html must be revalidated every time.
        "Cache-Control": "public, max-age=31536000, immutable" if immutable else "no-cache",
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if path.name == "index.html":
        headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
        )
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "same-origin"
    compressed = path.with_name(path.name + ".gz")
    if compressed.exists() and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return FileResponse(compressed, media_type=media_type, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers)
