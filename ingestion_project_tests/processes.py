"""Real Dagster processes for tests: a project's workspace, the daemon, waiting on what it does."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

GIVE_UP_SECONDS = 180


def executable(argv: list[str] | tuple[str, ...]) -> list[str]:
    """``argv`` with its program taken from the environment running the tests."""
    return [str(Path(sys.executable).parent / argv[0]), *argv[1:]]


def write_workspace(root: Path, package: str) -> Path:
    """A workspace.yaml naming the project's one code location, ``package``."""
    location = {
        "module_name": f"{package}.definitions",
        "working_directory": str(root),
        "location_name": package,
    }
    path = root / "workspace.yaml"
    path.write_text(yaml.safe_dump({"load_from": [{"python_module": location}]}))
    return path


def start_daemon(root: Path, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`dagster-daemon run` on the project's workspace, in its own process group."""
    with log.open("ab") as sink:
        return subprocess.Popen(
            executable(["dagster-daemon", "run", "-w", "workspace.yaml"]),
            cwd=root,
            env=dict(env),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@contextmanager
def running_web_server(
    cwd: Path, env: Mapping[str, str], log: Path, *, dev: bool = False
) -> Iterator[str]:
    """`dagster-webserver` (or, with ``dev``, `dg dev` and its daemon) on a free port.

    Yields its URL once it answers GraphQL; stops its whole process group on exit.
    """
    port = free_port()
    if dev:
        command = ["dg", "dev", "--port", str(port)]
    else:
        command = ["dagster-webserver", "-h", "127.0.0.1", "-p", str(port)]
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            executable(command),
            cwd=cwd,
            env=dict(env),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: graphql(url, "{ version }"), "the web server answered", log)
        yield url
    finally:
        stop_process_group(server)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Stop ``process`` and the code servers it started, which share its process group.

    SIGINT first: Dagster's processes stop on it within seconds (as on Ctrl-C), while on SIGTERM
    `dg dev` lingered past a minute. Whatever of the group outlives its leader is killed, so no
    code server is left behind for later tests.
    """
    for sig, grace in ((signal.SIGINT, 20), (signal.SIGTERM, 20), (signal.SIGKILL, 60)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for(
    condition: Callable[[], object], what: str, log: Path, seconds: float = GIVE_UP_SECONDS
) -> object:
    """``condition()``'s first true value; fail with the log's tail if none comes in time."""
    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up:
        try:
            value = condition()
        except OSError:  # a server not answering yet
            value = None
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"{what} within {seconds:.0f} s:\n{log.read_text()[-6000:]}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, for a server a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """Ask Dagster's GraphQL at ``url`` (the web server's root) as the UI does; its data."""
    request = urllib.request.Request(
        f"{url}/graphql",
        json.dumps({"query": query, "variables": variables or {}}).encode(),
        {"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]
