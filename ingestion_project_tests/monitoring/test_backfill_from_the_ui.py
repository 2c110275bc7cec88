"""Backfills of monitor and dataset windows launched as the web UI launches them, run by `dg dev`.

The UI's "Materialize" on a partitioned asset sends GraphQL's `launchPartitionBackfill`; the
daemon then runs it. With the single-run backfill policy, a month of daily windows is one run,
and each window is a partition: drift figures the UI plots, or a dataset version of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ingestion_project.demo.loop import HISTORY
from ingestion_project_tests.conftest import PROJECT_ROOT, place_month
from ingestion_project_tests.processes import (
    executable,
    graphql,
    running_web_server,
    wait_for,
)

MONITOR = "weather_daily"
DATASET = "bikeshare_daily"
LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status runs(limit: 10) { runId status } }
  }
}"""


@pytest.mark.slow
def test_a_ui_backfill_of_a_month_of_windows_is_one_run(tmp_path: Path) -> None:
    dagster_home, home = tmp_path / "dagster", tmp_path / "ingestion"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for month in (1, 2, 3, 4):
        place_month(home, HISTORY, month)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "INGESTION_HOME": str(home),
        "VIRTUAL_ENV": str(Path(sys.executable).parent.parent),
    }
    launched = subprocess.run(
        executable(["dg", "launch", "--assets", "bikeshare_history"]),
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]

    log = tmp_path / "dg-dev.log"
    with running_web_server(PROJECT_ROOT, env, log, dev=True) as url:
        days = [f"2011-04-{day:02d}" for day in range(1, 31)]
        launched = {asset: launch(url, asset, days) for asset in (MONITOR, DATASET)}
        states = {
            asset: finished(url, asset, backfill, log) for asset, backfill in launched.items()
        }

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for asset, state in states.items():
            assert state["status"] == "COMPLETED_SUCCESS", state
            assert [run["status"] for run in state["runs"]] == ["SUCCESS"]
            records = instance.fetch_materializations(dg.AssetKey(asset), limit=100).records
            assert sorted(record.partition_key or "" for record in records) == days
            assert {record.run_id for record in records} == {state["runs"][0]["runId"]}
        for record in instance.fetch_materializations(dg.AssetKey(MONITOR), limit=100).records:
            event = record.asset_materialization
            assert event is not None
            assert {"drift_share", "drift_magnitude", "drift_alarm"} <= set(event.metadata)
    windows = home / "datastores" / "workspace_default" / "_registry" / "datasets" / DATASET
    assert sorted(path.parent.name for path in windows.glob("windows/*/v000001.json")) == days


def launch(url: str, asset: str, partitions: list[str]) -> str:
    """Launch a backfill of ``partitions`` as the UI's Materialize does; its id."""
    params = {
        "assetSelection": [{"path": [asset]}],
        "partitionNames": partitions,
        "fromFailure": False,
    }
    answer = graphql(url, LAUNCH, {"params": params})["launchPartitionBackfill"]
    assert answer["__typename"] == "LaunchBackfillSuccess", answer
    return answer["backfillId"]


def finished(url: str, asset: str, backfill: str, log: Path) -> dict[str, Any]:
    """The backfill's state once the daemon has finished it."""

    def done() -> dict[str, Any] | None:
        state = graphql(url, STATUS, {"id": backfill})["partitionBackfillOrError"]
        return state if state["status"].startswith("COMPLETED") else None

    return wait_for(done, f"the daemon finished the backfill of {asset}", log)
