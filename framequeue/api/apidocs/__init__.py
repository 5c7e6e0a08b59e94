"""The API's interactive docs, /docs (Swagger UI) and /redoc (ReDoc), with their scripts, styles and icon
served from the package (static/, vendored by `python -m tools.vendor_api_docs`): no CDN, so they work on
an air-gapped cluster. Like /openapi.json, they carry no data and need no key; "Authorize" in /docs takes
one for the calls it makes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
ASSETS = "/docs/assets"
#: Swagger UI settings: no validator badge (it would call validator.swagger.io), keep the key across reloads
SWAGGER_PARAMETERS = {"validatorUrl": None, "persistAuthorization": True}


def mount(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    title = f"{app.title} {app.version}"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{title}: Swagger UI",
            swagger_js_url=f"{ASSETS}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/swagger-ui/favicon-32x32.png",
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url, title=f"{title}: ReDoc",
            redoc_js_url=f"{ASSETS}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )

    app.mount(ASSETS, StaticFiles(directory=STATIC_DIR), name="docs-assets")
