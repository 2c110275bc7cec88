"""Reachability guard for tests that need a real server (PostgreSQL, MySQL, Azurite, ...)."""

from __future__ import annotations

import os
import socket

import pytest


def require_tcp_server(host: str, port: int, what: str) -> None:
    """Skip the calling test when nothing listens on host:port; fail instead when CI=true.

    A developer without the server still gets a green run; CI, which must exercise the real
    server, turns a missing server into a failure rather than a silent skip.
    """
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        reason = f"{what} is not reachable at {host}:{port} ({exc})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must run this test, so start the server.", pytrace=False)
    pytest.skip(reason)
