"""The search page: plain static files (HTML, CSS, JS) shipped in the package, with no build
step and nothing fetched from the internet, so the page works wherever the service runs. It
only calls the service's own JSON endpoints (/info, /search); it adds no endpoint of its own."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount_search_page(app: FastAPI) -> None:
    """GET / answers index.html; /static/... the page's stylesheet and script. Starlette's
    StaticFiles reads files through anyio, so it needs no extra package (aiofiles)."""

    @app.get("/", include_in_schema=False)
    def search_page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
