"""``/docs``: Swagger UI served from this process (FastAPI's default page loads it from a CDN, which an
offline machine cannot reach).  The assets come from the ``swagger-ui-py`` package (``serve`` extra);
without it ``/docs`` is a plain list of the endpoints and a link to ``/openapi.json``."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["add_docs", "swagger_assets"]


def swagger_assets() -> Path | None:
    """The folder holding ``swagger-ui-bundle.js`` and ``swagger-ui.css``, or None when not installed."""
    try:
        import swagger_ui
    except ImportError:
        return None
    folder = Path(swagger_ui.__file__).resolve().parent / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def add_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (the app must be built with ``docs_url=None, redoc_url=None``)."""
    assets = swagger_assets()
    if assets is not None:
        app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    def docs() -> HTMLResponse:
        if assets is None:
            return _endpoint_list(app)
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)


def _endpoint_list(app: FastAPI) -> HTMLResponse:
    rows = [f"<li><code>{', '.join(sorted(ops))} {html.escape(path)}</code></li>"
            for path, ops in ((p, {m.upper() for m in item}) for p, item in app.openapi()["paths"].items())]
    return HTMLResponse(f"<!doctype html><title>{html.escape(app.title)} API</title><h1>{html.escape(app.title)} API"
                        f"</h1><p>Schema: <a href='/openapi.json'>/openapi.json</a></p><ul>{''.join(rows)}</ul>")
