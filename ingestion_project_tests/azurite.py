"""Azurite, the Azure Storage emulator from npm, started by the tests themselves (Blob, Queue)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BLOB = PROJECT_ROOT / "node_modules" / ".bin" / "azurite-blob"
AZURITE_QUEUE = PROJECT_ROOT / "node_modules" / ".bin" / "azurite-queue"
# Azurite's published development account: a well-known value, not a secret.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
STARTUP_SECONDS = 30


@dataclass(frozen=True)
class Azurite:
    """Where a running Azurite blob service answers, and how to authenticate to it."""

    host: str
    port: int

    @property
    def account_url(self) -> str:
        return f"http://{self.host}:{self.port}/{ACCOUNT_NAME}"

    @property
    def account_name(self) -> str:
        return ACCOUNT_NAME

    @property
    def account_key(self) -> str:
        return ACCOUNT_KEY

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.account_url};"
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_listening(
    host: str, port: int, process: subprocess.Popen[bytes], service: str = "blob"
) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"azurite-{service} exited early with code {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(
        f"azurite-{service} did not listen on {host}:{port} within {STARTUP_SECONDS}s"
    )


@contextlib.contextmanager
def running_azurite(location: Path, service: str = "blob") -> Iterator[Azurite]:
    """Start Azurite's ``service`` (blob, queue) on a free port with ``location`` for its data."""
    host, port = "127.0.0.1", free_port()
    program = AZURITE_QUEUE if service == "queue" else AZURITE_BLOB
    process = subprocess.Popen(
        [
            str(program),
            f"--{service}Host",
            host,
            f"--{service}Port",
            str(port),
            "--location",
            str(location),
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: stopping it leaves no child behind
    )
    try:
        wait_until_listening(host, port, process, service)
        yield Azurite(host, port)
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite for the whole test session; skips locally, fails under CI, if not installed."""
    if not AZURITE_BLOB.exists() or shutil.which("node") is None:
        reason = "Azurite is not installed (run `npm ci` in the repository root, or `make test`)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI must run the Azure Blob tests.", pytrace=False)
        pytest.skip(reason)
    with running_azurite(tmp_path_factory.mktemp("azurite")) as service:
        yield service


@pytest.fixture(scope="session")
def azurite_queue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's queue service, where tests write storage events as Event Grid delivers them."""
    if not AZURITE_QUEUE.exists() or shutil.which("node") is None:
        reason = "Azurite is not installed (run `npm ci` in the repository root, or `make test`)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI must run the Azure Queue tests.", pytrace=False)
        pytest.skip(reason)
    with running_azurite(tmp_path_factory.mktemp("azurite-queue"), "queue") as service:
        yield service
