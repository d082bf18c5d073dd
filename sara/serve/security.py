"""Who may call the server: loopback binds by default, a bearer token compared in constant time, and the
Host names a loopback server answers (so a web page cannot reach it through DNS rebinding)."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable

from fastapi import HTTPException, Request

from sara.errors import ConfigError

__all__ = ["LOOPBACK_HOST_NAMES", "bearer_auth", "check_bind", "is_loopback"]

LOOPBACK_HOST_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None, insecure: bool) -> None:
    """Refuse to serve a non-loopback address without a token unless ``insecure`` says so.

    Raises:
        ConfigError: a non-loopback ``host`` with neither ``token`` nor ``insecure``.
    """
    if not is_loopback(host) and token is None and not insecure:
        raise ConfigError(f"--host {host} is reachable from other machines: give --token TOKEN "
                          "(or --insecure to serve without authentication)")


def bearer_auth(token: str | None) -> Callable[[Request], None]:
    """A FastAPI dependency requiring ``Authorization: Bearer <token>`` (a no-op when ``token`` is None)."""
    expected = None if token is None else token.encode()

    def check(request: Request) -> None:
        if expected is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise HTTPException(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)",
                                headers={"WWW-Authenticate": "Bearer"})

    return check
