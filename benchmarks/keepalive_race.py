"""The keep-alive race behind ``httpx.ReadError`` under load, and why ``sara serve --keep-alive`` defaults to 30 s.

An HTTP client keeps idle connections in a pool (httpx and requests: 5 s) and reuses them; the server closes
idle ones after its own timeout (uvicorn's default: also 5 s).  A request sent on a connection the server is
closing at that moment reads a reset (``ReadError``) or an empty answer (``RemoteProtocolError``).  Here
``--clients`` clients each make one request, wait 4.9-5.1 s and make another on the pooled connection, against a
uvicorn server with a 5 s idle timeout and one with sara's default; the script prints the failures of each.

    python benchmarks/keepalive_race.py [--clients 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import threading
import time

import httpx
import uvicorn
from fastapi import FastAPI

from sara.cli.serve import KEEP_ALIVE_S

CLIENT_POOL_EXPIRY_S = 5.0  # httpx's default keepalive_expiry


def _app() -> FastAPI:
    app = FastAPI()
    app.get("/ping")(lambda: {"ok": True})
    return app


def _serve(keep_alive: float) -> int:
    """A uvicorn server on a free loopback port in a daemon thread; its port once it listens."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    config = uvicorn.Config(_app(), log_level="error", timeout_keep_alive=keep_alive)
    threading.Thread(target=uvicorn.Server(config).run, kwargs={"sockets": [sock]}, daemon=True).start()
    port = sock.getsockname()[1]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return port
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


async def _client(port: int, idle: float, errors: list[str]) -> None:
    limits = httpx.Limits(keepalive_expiry=CLIENT_POOL_EXPIRY_S)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as http:
        await http.get("/ping")
        await asyncio.sleep(idle)
        try:
            await http.get("/ping")  # on the pooled connection, if the pool still holds it
        except httpx.TransportError as exc:
            errors.append(type(exc).__name__)


async def _round(port: int, clients: int) -> list[str]:
    errors: list[str] = []
    idles = [CLIENT_POOL_EXPIRY_S - 0.1 + 0.2 * i / clients for i in range(clients)]
    await asyncio.gather(*(_client(port, idle, errors) for idle in idles))
    return errors


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    for keep_alive in (5.0, KEEP_ALIVE_S):
        port, errors = _serve(keep_alive), []
        for _ in range(args.rounds):
            errors += asyncio.run(_round(port, args.clients))
        total = args.clients * args.rounds
        print(f"server idle timeout {keep_alive:g} s: {len(errors)} of {total} second requests failed "
              f"({len(errors) / total:.1%}) {sorted(set(errors))}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
