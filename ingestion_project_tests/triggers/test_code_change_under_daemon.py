"""Code change under the real daemon: the code location loaded before and after an edit.

A project with `automation: {code_change: true}` runs under `dagster-daemon`. Its first ticks
only record the code versions: no run. The catalog is edited (a read option of one dataset) and
the daemon restarted, as a deploy does: exactly one run re-materializes that dataset, and only
it; later ticks ask for nothing more.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ingestion_project.demo.loop import DEMO_DATA
from ingestion_project_tests.catalogs import write_catalog, write_project
from ingestion_project_tests.processes import (
    start_daemon,
    stop_process_group,
    wait_for,
    write_workspace,
)

PACKAGE = "code_change_project"
SENSOR = "catalog__code_change"
CATALOG: dict[str, Any] = {
    "automation": {"code_change": True, "every": "5s"},
    "datasets": {
        "history": {"path": "history/*.csv", "timestamp_column": "timestamp"},
        "incoming": {"path": "incoming/*.csv", "timestamp_column": "timestamp"},
    },
}


def sensor_ticks(instance: dg.DagsterInstance) -> list[Any]:
    states = [state for state in instance.all_instigator_state() if state.name == SENSOR]
    if not states:
        return []
    return list(instance.get_ticks(states[0].instigator_origin_id, states[0].selector_id))


@pytest.mark.slow
def test_an_edit_re_runs_the_edited_dataset_once_under_the_daemon(tmp_path: Path) -> None:
    root = write_project(tmp_path / "project", {"catalog": CATALOG}, package=PACKAGE)
    write_workspace(root, PACKAGE)
    home, dagster_home = tmp_path / "ingestion", tmp_path / "dagster"
    store = home / "datastores" / "workspace_default"
    for folder, month in (("history", 1), ("incoming", 2)):
        (store / folder).mkdir(parents=True)
        shutil.copy2(DEMO_DATA / f"2011-{month:02d}.csv", store / folder)
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "INGESTION_HOME": str(home)}
    log = tmp_path / "daemon.log"

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        process = start_daemon(root, env, log)
        try:
            # On from the start; its first ticks record the versions and ask for nothing.
            wait_for(lambda: len(sensor_ticks(instance)) >= 2, "two ticks of the sensor", log)
            assert instance.get_runs() == []

            edited = copy.deepcopy(CATALOG)
            edited["datasets"]["history"]["column_types"] = {"weathersit": "string"}
            write_catalog(root / PACKAGE / "defs" / "catalog", edited)
            stop_process_group(process)
            process = start_daemon(
                root, env, log
            )  # a deploy: the code location loads again, edited

            wait_for(
                lambda: (
                    [run.status for run in instance.get_runs()] == [dg.DagsterRunStatus.SUCCESS]
                ),
                "one successful run after the edit",
                log,
            )
            (run,) = instance.get_runs()
            assert run.asset_selection == {dg.AssetKey("history")}
            ticks_then = len(sensor_ticks(instance))
            wait_for(
                lambda: len(sensor_ticks(instance)) >= ticks_then + 3,
                "three more ticks",
                log,
            )
            assert len(instance.get_runs()) == 1
        finally:
            stop_process_group(process)
    registry = store / "_registry" / "datasets"
    assert (registry / "history" / "v000001.json").is_file()
    assert not (registry / "incoming").exists()
