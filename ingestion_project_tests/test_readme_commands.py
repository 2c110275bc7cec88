"""The README's commands, run as a user runs them, say nothing alarming about our configuration.

A warning printed on every command (a code-location name that does not match, a deprecated
setting, a dagster.yaml that is ignored) teaches people to ignore warnings. The commands are read
from the README itself, so a new one is checked as soon as it is documented. They run from a
copy of the repository's root files (the package linked in, not copied) with ``DAGSTER_HOME`` set
to it, as the README says, so the repository's own ``.ingestion`` folder is never touched.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestion_project.demo.loop import HISTORY, INCOMING
from ingestion_project_tests.conftest import PROJECT_ROOT, place_month
from ingestion_project_tests.processes import executable, stop_process_group, wait_for

README = PROJECT_ROOT / "README.md"
# A line that is a warning or a deprecation, from Python's warnings or from Dagster's loggers.
WARNING_LINE = re.compile(r"WARNING|Warning:|DeprecationWarning|deprecated", re.IGNORECASE)
# Commands that keep running: started, checked for what they print, then stopped.
SERVERS = {"dg dev": "Serving dagster-webserver", "dagster-daemon run": "Checking for new runs"}


def readme_commands() -> list[str]:
    """Every `dg` and `dagster` command of the README's "Using it" section and its backfills."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Using it the three ways Dagster is used", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command.startswith(("dg ", "dagster ", "dagster-")):
                commands.append(command)
    commands += re.findall(r"`(dg launch --assets \S+\s+--partition-range \S+?)`", text)
    commands.append("dagster-daemon run")  # "run `dagster-daemon run` from the root"
    return list(dict.fromkeys(" ".join(command.split()) for command in commands))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The repository's root files in a fresh folder, the demo's months in its default store."""
    folder = tmp_path_factory.mktemp("checkout")
    for name in ("pyproject.toml", "dagster.yaml", "workspace.yaml"):
        shutil.copy2(PROJECT_ROOT / name, folder / name)
    (folder / "ingestion_project").symlink_to(PROJECT_ROOT / "ingestion_project")
    home = folder / ".ingestion"
    for month in (1, 2, 3, 4):
        place_month(home, HISTORY, month)
    place_month(home, INCOMING, 5)
    yield folder


def environment(root: Path) -> dict[str, str]:
    """As the README says: the project's environment, ``DAGSTER_HOME=$PWD``, default home."""
    env = {key: value for key, value in os.environ.items() if key != "INGESTION_HOME"}
    env["DAGSTER_HOME"] = str(root)
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parent.parent)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def warnings_in(output: str) -> list[str]:
    return [line for line in output.splitlines() if WARNING_LINE.search(line)]


def test_the_readme_lists_the_commands_people_run() -> None:
    commands = readme_commands()

    assert "dg dev" in commands and "dagster-daemon run" in commands
    assert any(command.startswith("dg launch --assets bikeshare_history") for command in commands)
    assert any("--partition-range" in command for command in commands)
    assert any(command.startswith("dagster sensor start") for command in commands)


@pytest.mark.slow
@pytest.mark.parametrize("command", readme_commands())
def test_a_readme_command_runs_without_warnings(command: str, root: Path) -> None:
    argv = shlex.split(command)
    if command in SERVERS:
        output = run_server(argv, root, SERVERS[command])
    else:
        result = subprocess.run(
            executable(argv),
            cwd=root,
            env=environment(root),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-3000:]
    assert warnings_in(output) == [], output[-3000:]


def run_server(argv: list[str], root: Path, ready: str) -> str:
    """Start a long-running command, wait until it says ``ready``, stop it; what it printed."""
    log = root / f"{argv[0]}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            executable(argv),
            cwd=root,
            env=environment(root),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for(lambda: ready in log.read_text(errors="replace"), f"{argv[0]} started", log)
        finally:
            stop_process_group(process)
    return log.read_text(errors="replace")
