"""``sara serve``: the HTTP API and web page (needs the ``serve`` extra).

    sara serve [--model NAME_OR_DIR ...] [--host 127.0.0.1] [--port 8000] [--token T | --insecure]

Serves every system ``sara generate`` loads (the bundled ``sara-demo`` by default; the first ``--model``
is the default model and is loaded at start, the others on first use).  Open ``http://HOST:PORT/`` for the
page, ``/docs`` for the API.  A non-loopback ``--host`` needs ``--token`` (or ``$SARA_SERVE_TOKEN``) or an
explicit ``--insecure``.  ``--port 0`` picks a free port; the URL is printed once the socket is bound.
"""

from __future__ import annotations

import argparse
import os

from sara.cli._args import float_range, int_range
from sara.cli.generate import MAX_DURATION_S, MAX_STEPS

TOKEN_ENV = "SARA_SERVE_TOKEN"
# Idle keep-alive connections are closed by the server after this long.  It must exceed the clients' own pool
# expiry (httpx and requests: 5 s): at uvicorn's default of 5 s the two race, and a client that reuses a
# connection the server is closing reads a reset (httpx.ReadError), more often the busier the machine.
KEEP_ALIVE_S = 30.0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``serve`` command."""
    p = sub.add_parser("serve", help="serve the HTTP API and web page")
    p.add_argument("--model", action="append", default=None, metavar="NAME_OR_DIR",
                   help="bundled model name or model directory; repeat for more (default: sara-demo)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int_range(0, 65535), default=8000, help="TCP port, 0 for a free one (default 8000)")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                   help=f"bearer token required on every API call (default: ${TOKEN_ENV})")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without --token")
    p.add_argument("--output-dir", default=None, help="folder for results (default: a new temporary folder)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    _add_serving_arguments(p)
    from sara.cli._runtime import add_runtime_arguments

    add_runtime_arguments(p)
    p.set_defaults(func=run)


def _add_serving_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queue-size", type=int_range(1, 100_000), default=64, help="most queued jobs (default 64)")
    p.add_argument("--max-batch", type=int_range(1, 1024), default=8, help="most requests per forward pass (default 8)")
    p.add_argument("--batch-window", type=float_range(0.0, 10.0), default=0.05,
                   help="seconds to wait for requests to batch with (default 0.05)")
    p.add_argument("--no-batching", action="store_true", help="run one request at a time")
    p.add_argument("--keep-alive", type=float_range(1.0, 3600.0), default=KEEP_ALIVE_S,
                   help=f"seconds an idle HTTP connection stays open (default {KEEP_ALIVE_S:g}; see below)")
    p.add_argument("--result-ttl", type=float_range(1.0, 1e7), default=600.0,
                   help="seconds results are kept (default 600)")
    p.add_argument("--max-duration", type=float_range(0.0, MAX_DURATION_S, low_open=True), default=30.0,
                   help="longest audio per request, seconds (default 30)")
    p.add_argument("--max-steps", type=int_range(1, MAX_STEPS), default=200, help="most steps per request (default 200)")
    p.add_argument("--max-prompt-chars", type=int_range(1, 100_000), default=500,
                   help="longest prompt, characters (default 500)")
    p.add_argument("--max-upload-mb", type=float_range(0.0, 4096.0, low_open=True), default=20.0,
                   help="largest upload, MB (default 20)")


def build_config(args: argparse.Namespace):  # noqa: ANN201 - ServeConfig
    """The :class:`~sara.serve.config.ServeConfig` of the parsed arguments."""
    from pathlib import Path

    from sara.serve.config import Limits, ServeConfig

    limits = Limits(max_duration=args.max_duration, max_steps=args.max_steps, max_prompt_chars=args.max_prompt_chars,
                    max_upload_bytes=int(args.max_upload_mb * 1024 * 1024))
    return ServeConfig(models=tuple(args.model or ("sara-demo",)), device=args.device, dtype=args.dtype,
                       compile=args.compile, limits=limits,
                       output_dir=None if args.output_dir is None else Path(args.output_dir),
                       queue_size=args.queue_size, max_batch=args.max_batch, batch_window=args.batch_window,
                       batching=not args.no_batching, result_ttl=args.result_ttl, token=args.token)


def run(args: argparse.Namespace) -> int:
    """Check the bind, load the default model, then serve until interrupted; the exit status."""
    from sara.errors import SaraError

    try:
        import uvicorn

        from sara.serve import create_app
        from sara.serve.registry import ModelRegistry
        from sara.serve.security import LOOPBACK_HOST_NAMES, check_bind, is_loopback
    except ImportError as exc:
        raise SaraError(f"sara serve needs the serve extra: pip install 'sara[serve]' ({exc})") from None
    check_bind(args.host, args.token, args.insecure)
    config = build_config(args)
    registry = ModelRegistry.from_specs(config.models, config.device, dtype=config.dtype, compile=config.compile)
    sock = _bind(args.host, args.port)  # before loading: a port in use fails at once
    print(f"loading {registry.default}...", flush=True)
    _set_threads(registry.get(None), args)
    app = create_app(config, registry=registry, allowed_hosts=LOOPBACK_HOST_NAMES if is_loopback(args.host) else None)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {', '.join(registry.names)} on http://{shown}:{port}/ (API docs: /docs; output: "
          f"{app.state.sara.store.output_dir}){'; token required' if args.token else ''}", flush=True)
    uvicorn.Server(uvicorn_config(app, args)).run(sockets=[sock])
    return 0


def _set_threads(backend, args: argparse.Namespace) -> None:  # noqa: ANN001 - a sara.serve Backend
    """The thread policy of :mod:`sara.runtime.threads`, sized by the default model."""
    from sara.runtime.inference import largest_network_params
    from sara.runtime.threads import configure_threads

    configure_threads(args.threads, num_params=largest_network_params(getattr(backend, "pipe", None)))


def uvicorn_config(app, args: argparse.Namespace):  # noqa: ANN001, ANN201 - FastAPI app -> uvicorn.Config
    """The uvicorn settings: quiet logs, ``--keep-alive`` idle timeout."""
    import uvicorn

    return uvicorn.Config(app, log_level="warning", timeout_keep_alive=args.keep_alive)


def _bind(host: str, port: int):  # noqa: ANN202 - socket.socket
    """A listening TCP socket on ``host:port`` (OSError, e.g. the port is in use, is a one-line error)."""
    import socket

    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    return sock
