"""The dashboard at /ui: static files (HTML, ES modules, CSS; no build step, no CDN) that call the JSON API
with the key the user gives once. The files carry no data and need no key; every call they make does."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    @app.get("/ui", include_in_schema=False)
    async def ui_root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    app.mount("/ui/", StaticFiles(directory=STATIC_DIR, html=True), name="ui")
