"""Shared fixtures: a demo home with monthly files arriving, and definitions built on it."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ingestion_project.demo.loop import DEMO_DATA, HISTORY, INCOMING, demo_definitions
from ingestion_project_tests.alerts.receiver import WebhookReceiver

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Started by a shell with `&` (as CI may start the tests), Python inherits SIGINT as ignored and
# so would every process a test starts: Dagster's servers would then ignore the SIGINT that stops
# them in seconds (processes.stop_process_group). Handling it here gives children the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
PROJECT_CATALOG = PROJECT_ROOT / "ingestion_project" / "defs" / "catalog" / "defs.yaml"


def place_month(home: Path, folder: str, month: int) -> Path:
    """Copy one month of the demo data into the workspace_default store under ``folder``."""
    target = home / "datastores" / "workspace_default" / folder
    target.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(DEMO_DATA / f"2011-{month:02d}.csv", target))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An INGESTION_HOME with Jan-Apr in the history and May arriving for scoring."""
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    for month in (1, 2, 3, 4):
        place_month(tmp_path, HISTORY, month)
    place_month(tmp_path, INCOMING, 5)
    return tmp_path


@pytest.fixture
def defs(home: Path) -> dg.Definitions:
    """The demo's definitions, its local datastore under the ``home`` fixture."""
    return demo_definitions()


@pytest.fixture
def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.ephemeral()


from ingestion_project_tests.azurite import azurite, azurite_queue  # noqa: E402, F401  (fixtures)
from ingestion_project_tests.label_studio import (  # noqa: E402, F401  (fixtures)
    label_studio,
    label_studio_document_root,
)
from ingestion_project_tests.postgres import fresh_database  # noqa: E402, F401  (fixture)

_PROXY_VARIABLES = (
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
)


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    """A local webhook; proxy variables unset so 127.0.0.1 is reached directly."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    server = WebhookReceiver()
    server.start()
    yield server
    server.stop()
