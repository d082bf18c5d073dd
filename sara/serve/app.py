"""The ASGI application of ``sara serve``: the JSON API (:mod:`sara.serve.api`), the web page at ``/``
(static files in ``page/``, no external assets), ``/health``, and errors answered as one JSON line
``{"error": "..."}`` (401, 404, 409, 422, 429 with ``Retry-After``).  CORS is off: no
``Access-Control-Allow-Origin`` header is ever sent, so other sites' pages cannot read the answers."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from sara.errors import SaraError
from sara.serve.api import ServerState, router
from sara.serve.config import ServeConfig
from sara.serve.docs import add_docs
from sara.serve.jobs import QueueFull, Scheduler
from sara.serve.registry import ModelRegistry
from sara.serve.store import JobStore

__all__ = ["PAGE_DIR", "create_app"]

PAGE_DIR = Path(__file__).resolve().parent / "page"
EXPIRE_EVERY_S = 5.0  # how often finished jobs past their time are deleted


def create_app(config: ServeConfig, *, registry: ModelRegistry | None = None,
               allowed_hosts: Sequence[str] | None = None) -> FastAPI:
    """The server application; its workers start now and stop when the app shuts down.

    Args:
        config: serving settings (``output_dir`` None: a fresh temporary folder).
        registry: the models (None: :meth:`ModelRegistry.from_specs` of ``config.models``).
        allowed_hosts: the ``Host`` names answered (None: any); a loopback server passes
            :data:`~sara.serve.security.LOOPBACK_HOST_NAMES`.
    """
    registry = registry if registry is not None else ModelRegistry.from_specs(config.models, config.device)
    out = config.output_dir if config.output_dir is not None else Path(tempfile.mkdtemp(prefix="sara-serve-"))
    store = JobStore(out, config.result_ttl, config.max_jobs)
    state = ServerState(config, registry, store, Scheduler(registry, store, config), time.time())
    app = FastAPI(title="sara serve", description="Text-to-audio generation and reconstruction.",
                  version=_version(), lifespan=_lifespan(state, remove=config.output_dir is None),
                  docs_url=None, redoc_url=None)
    app.state.sara = state
    _add_error_handlers(app)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.include_router(router)
    app.add_api_route("/health", health, methods=["GET"])
    add_docs(app)
    app.add_api_route("/", index, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=PAGE_DIR), name="static")
    return app


def _version() -> str:
    import sara

    return str(sara.__version__)


def _lifespan(state: ServerState, *, remove: bool):  # noqa: ANN202 - an async context manager factory
    """Expire results while serving; on shutdown stop the workers (and delete a temporary output folder)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_expire_forever(state.store))
        try:
            yield
        finally:
            task.cancel()
            await asyncio.to_thread(state.scheduler.close)
            if remove:
                shutil.rmtree(state.store.output_dir, ignore_errors=True)

    return lifespan


async def _expire_forever(store: JobStore) -> None:
    while True:
        await asyncio.sleep(EXPIRE_EVERY_S)
        await asyncio.to_thread(store.expire)


def health(request: Request) -> dict[str, Any]:
    """Liveness and load: queue length and capacity, jobs kept, forward passes run, uptime (s)."""
    s: ServerState = request.app.state.sara
    s.store.expire()
    return {"status": "ok", "queued": s.scheduler.pending, "queue_size": s.config.queue_size,
            "jobs": len(s.store), "forward_passes": s.scheduler.forward_passes,
            "models": s.registry.names, "uptime_s": round(time.time() - s.started, 1)}


def index() -> FileResponse:
    """The web page."""
    return FileResponse(PAGE_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"error": "<one line>"}``."""
    app.add_exception_handler(SaraError, _sara_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(QueueFull, _queue_full)
    app.add_exception_handler(StarletteHTTPException, _http_error)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status, headers=headers)


async def _sara_error(_request: Request, exc: Exception) -> JSONResponse:
    return _error(422, str(exc))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
    return _error(422, f"{where}: {first.get('msg')}" if where else str(first.get("msg")))


async def _queue_full(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QueueFull)
    return _error(429, str(exc), {"Retry-After": str(exc.retry_after)})


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))
