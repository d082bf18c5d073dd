"""``sara serve``: an HTTP API with a bounded, batching job queue and an offline web page.

Library use (the CLI is :mod:`sara.cli.serve`)::

    from sara.serve import ServeConfig, create_app
    app = create_app(ServeConfig(models=("sara-demo",)))   # any ASGI server, e.g. uvicorn.run(app)

Modules: :mod:`~sara.serve.config` (settings), :mod:`~sara.serve.limits` (request validation, the CLI's
rules), :mod:`~sara.serve.backends` (one interface per system), :mod:`~sara.serve.registry` (named models,
loaded lazily), :mod:`~sara.serve.store` (jobs, output folder, expiry), :mod:`~sara.serve.jobs` (queue
and batching workers), :mod:`~sara.serve.api` / :mod:`~sara.serve.app` (HTTP), :mod:`~sara.serve.security`.
Needs the ``serve`` extra (``pip install 'sara[serve]'``).
"""

from __future__ import annotations

from sara.serve.app import create_app
from sara.serve.config import Limits, ServeConfig

__all__ = ["Limits", "ServeConfig", "create_app"]
