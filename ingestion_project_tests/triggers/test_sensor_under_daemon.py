"""A sensor started with the README's command is the one the daemon runs.

Dagster keys a sensor's on/off state by code location name, so a command that names the location
differently from the daemon reports "Started" while the daemon keeps the sensor stopped.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest

from ingestion_project.demo.loop import INCOMING
from ingestion_project.triggers.data_change import data_change_sensor_name
from ingestion_project_tests.conftest import PROJECT_ROOT, place_month
from ingestion_project_tests.processes import executable, stop_process_group

SENSOR = data_change_sensor_name("catalog", "30s")
LOCATION = "ingestion_project"
# `dg dev` (the README's UI command) runs this daemon on a workspace built from [tool.dg.project];
# run bare from the project root, `dagster-daemon run` loads the same code location.
DAEMON = ("dagster-daemon", "run")
# Give-up deadline for the daemon's first tick, which comes once the code location has loaded.
GIVE_UP_SECONDS = 180
MISMATCH_WARNING = "does not match the name"


def readme_command(*words: str) -> list[str]:
    """The one command in README.md's shell blocks that starts with ``words``, as argv."""
    found, in_shell = [], False
    for line in (PROJECT_ROOT / "README.md").read_text().splitlines():
        if line.startswith("```"):
            in_shell = line.strip() == "```bash"
            continue
        argv = shlex.split(line, comments=True) if in_shell else []
        if tuple(argv[: len(words)]) == words:
            found.append(argv)
    assert len(found) == 1, f"README.md shows {len(found)} `{' '.join(words)}` commands"
    return found[0]


def write_instance_config(dagster_home: Path) -> None:
    """A SQLite instance that queues requested runs without launching them."""
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(
        f"storage:\n  sqlite:\n    base_dir: {dagster_home / 'storage'}\n"
        "run_queue:\n  max_concurrent_runs: 0\n"
        "telemetry:\n  enabled: false\n"
    )


def sensor_state(instance: dg.DagsterInstance):
    """The sensor's one stored on/off state; a second one would be another location's."""
    states = [state for state in instance.all_instigator_state() if state.name == SENSOR]
    assert len(states) == 1, [state.origin.location_name for state in states]
    return states[0]


def wait_for_requested_run(
    instance: dg.DagsterInstance, daemon: subprocess.Popen[bytes], log: Path
) -> str:
    """The id of the first run a tick of the started sensor's own state requested."""
    state = sensor_state(instance)
    give_up = time.monotonic() + GIVE_UP_SECONDS
    while time.monotonic() < give_up:
        assert daemon.poll() is None, log.read_text()[-5000:]
        for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id):
            if tick.run_ids:
                return tick.run_ids[0]
        time.sleep(2)
    pytest.fail(f"the daemon requested no run in {GIVE_UP_SECONDS} s:\n{log.read_text()[-5000:]}")


@pytest.mark.slow
def test_sensor_started_as_the_readme_says_runs_under_the_daemon(tmp_path: Path) -> None:
    dagster_home, ingestion_home = tmp_path / "dagster", tmp_path / "ingestion"
    write_instance_config(dagster_home)
    for month in (5, 6):
        place_month(ingestion_home, INCOMING, month)
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "INGESTION_HOME": str(ingestion_home)}

    started = subprocess.run(
        executable(readme_command("dagster", "sensor", "start")),
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = started.stdout + started.stderr
    assert started.returncode == 0, output[-5000:]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        state = sensor_state(instance)
        assert (state.origin.location_name, state.status.value) == (LOCATION, "RUNNING")
    assert MISMATCH_WARNING not in output

    log = tmp_path / "daemon.log"
    with log.open("wb") as sink:
        daemon = subprocess.Popen(
            executable(DAEMON),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
                run = instance.get_run_by_id(wait_for_requested_run(instance, daemon, log))
                state = sensor_state(instance)
                assert (state.origin.location_name, state.status.value) == (LOCATION, "RUNNING")
                assert run is not None and run.job_name == "__ASSET_JOB"
                assert run.asset_selection == {
                    dg.AssetKey("bikeshare_scoring"),
                    dg.AssetKey("bikeshare_demand_predictions"),
                    dg.AssetKey("bikeshare_drift"),
                    dg.AssetKey("busy_hours_predictions"),
                    dg.AssetKey("busy_hours_drift"),
                }
                assert run.tags["dagster/sensor_name"] == SENSOR
        finally:
            stop_process_group(daemon)
    assert MISMATCH_WARNING not in log.read_text()
