"""A real Label Studio server, started by the tests from its own environment (.venv-label-studio).

`make test` installs Label Studio there from ingestion_project_tests/labeling/
label_studio_requirements.txt: its pins would collide with ours in .venv.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingestion_project_tests.processes import free_port, stop_process_group, wait_for

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LABEL_STUDIO = PROJECT_ROOT / ".venv-label-studio" / "bin" / "label-studio"
# A fresh database takes 40-50 s of migrations on a 2-core machine before /health answers.
STARTUP_SECONDS = 120
# The administrator Label Studio creates on its first start; local test values, not secrets.
USERNAME = "labeler@example.com"
PASSWORD = "labeling-tests"
TOKEN = "ingestion-tests-token"


@dataclass(frozen=True)
class LabelStudioServer:
    """Where a running Label Studio answers and its administrator's credentials.

    The REST API takes ``Authorization: Token <token>`` (the legacy token, switched on here).
    """

    url: str
    token: str
    username: str
    password: str
    data_dir: Path


def _get(url: str, timeout: float = 5) -> bytes:
    """GET ``url`` directly (no proxy from the environment for 127.0.0.1)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return response.read()


def _is_up(url: str) -> bool:
    try:
        return json.loads(_get(f"{url}/health")).get("status") == "UP"
    except ValueError:  # an answer that is not Label Studio's JSON: another server on the port
        return False


def _up_or_exited(url: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    """Whether Label Studio answers at ``url``; fail at once, with its log, if it has exited."""
    if process.poll() is not None:
        tail = log.read_text(errors="replace")[-6000:]
        pytest.fail(f"Label Studio exited with code {process.returncode}:\n{tail}")
    return _is_up(url)


def require_label_studio() -> None:
    """Skip locally, fail under CI, when Label Studio's environment is not installed."""
    if LABEL_STUDIO.exists():
        return
    reason = f"Label Studio is not installed in {LABEL_STUDIO.parent.parent.name} (run `make test`)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must run the labeling tests.", pytrace=False)
    pytest.skip(reason)


def _environment(data_dir: Path, home: Path, document_root: Path | None) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "LABEL_STUDIO_", "LOCAL_FILES_", "VIRTUAL_ENV"))
    }
    env.update(
        HOME=str(home),  # Label Studio writes under the home folder otherwise
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        DJANGO_DB="sqlite",
        LABEL_STUDIO_USERNAME=USERNAME,
        LABEL_STUDIO_PASSWORD=PASSWORD,
        LABEL_STUDIO_USER_TOKEN=TOKEN,
        # Without it Label Studio 1.23 only takes JWTs: `Authorization: Token <t>` gets a 401.
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
        LATEST_VERSION_CHECK="false",
        COLLECT_ANALYTICS="false",
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
        LOCAL_FILES_SERVING_ENABLED="true" if document_root else "false",
    )
    if document_root is not None:
        env["LOCAL_FILES_DOCUMENT_ROOT"] = str(document_root)
    return env


@contextlib.contextmanager
def running_label_studio(
    data_dir: Path, *, document_root: Path | None = None
) -> Iterator[LabelStudioServer]:
    """Label Studio on a free port with its SQLite database and files under ``data_dir``.

    With ``document_root`` it serves local files under it (``/data/local-files/?d=<path>``);
    without, local-file serving is off. Stopped, with its whole process group, on exit.
    """
    require_label_studio()
    data_dir.mkdir(parents=True, exist_ok=True)
    home = data_dir / "home"
    home.mkdir(exist_ok=True)
    log = data_dir / "label-studio.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(LABEL_STUDIO),
        "start",
        "--no-browser",
        "--internal-host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command,
            cwd=data_dir,  # a ./mydata folder in the working directory would switch on local files
            env=_environment(data_dir, home, document_root),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopping it leaves no child behind
        )
    try:
        # Label Studio moves to the next port silently when its own is taken: insist on ours.
        wait_for(
            lambda: _up_or_exited(url, process, log),
            f"Label Studio did not answer {url}/health",
            log,
            STARTUP_SECONDS,
        )
        yield LabelStudioServer(
            url=url, token=TOKEN, username=USERNAME, password=PASSWORD, data_dir=data_dir
        )
    finally:
        stop_process_group(process)


@pytest.fixture(scope="session")
def label_studio_document_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder Label Studio serves local files from: tests put their images under it."""
    return tmp_path_factory.mktemp("label-studio-files")


@pytest.fixture(scope="session")
def label_studio(
    tmp_path_factory: pytest.TempPathFactory, label_studio_document_root: Path
) -> Iterator[LabelStudioServer]:
    """Label Studio for the session (skips locally, fails under CI, if not installed)."""
    data_dir = tmp_path_factory.mktemp("label-studio")
    with running_label_studio(data_dir, document_root=label_studio_document_root) as server:
        yield server
