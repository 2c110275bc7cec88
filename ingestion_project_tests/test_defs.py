"""The whole code location loads, as `dg dev`, the daemon and the CLI load it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import dagster as dg
import pytest
import yaml

import ingestion_project
from ingestion_project_tests.conftest import PROJECT_ROOT

PACKAGE_DIR = Path(ingestion_project.__file__).resolve().parent

EXPECTED_ASSETS = {
    "bikeshare_history",
    "bikeshare_daily",
    "bikeshare_scoring",
    "bikeshare_demand",
    "bikeshare_demand_predictions",
    "bikeshare_drift",
    "busy_hours",
    "busy_hours_predictions",
    "busy_hours_drift",
    "busy_hours_performance",
    "weather_daily",
}
EXPECTED_CHECKS = {
    ("bikeshare_history", "columns"),
    ("bikeshare_history", "not_null"),
    ("bikeshare_history", "between"),
    ("bikeshare_scoring", "not_null"),
}
EXPECTED_JOBS = {
    "refresh_bikeshare_history",
    "refresh_bikeshare_daily",
    "retrain_bikeshare_demand",
    "retrain_busy_hours",
    "monitor_weather_daily",
}
EXPECTED_SENSORS = {
    "catalog__data_change_every_30s",
    "bikeshare_demand_retrain_sensor",
    "busy_hours_retrain_sensor",
}
EXPECTED_SCHEDULES = {"bikeshare_history_schedule", "weather_daily_schedule"}


def load_code_location() -> dg.Definitions:
    from ingestion_project.definitions import defs

    return defs()


def test_code_location_has_the_declared_definitions(home: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_code_location()
        graph = loaded.resolve_asset_graph()
    # Attributed by our package's own folder: a clone or a venv may have the same name in its path.
    ours = [w for w in caught if Path(w.filename).resolve().is_relative_to(PACKAGE_DIR)]
    assert not ours, [str(w.message) for w in ours]

    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == EXPECTED_ASSETS
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert checks == EXPECTED_CHECKS
    jobs = {job.name for job in loaded.resolve_all_job_defs()} - {"__ASSET_JOB"}
    assert jobs == EXPECTED_JOBS
    assert {sensor.name for sensor in loaded.sensors or []} == EXPECTED_SENSORS
    assert {schedule.name for schedule in loaded.schedules or []} == EXPECTED_SCHEDULES
    loaded.resolve_implicit_global_asset_job_def()


def test_retrain_job_covers_training_scoring_and_monitoring(home: Path) -> None:
    job = load_code_location().resolve_job_def("retrain_bikeshare_demand")
    selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert selected == {
        "bikeshare_history",
        "bikeshare_demand",
        "bikeshare_demand_predictions",
        "bikeshare_drift",
    }


def test_assets_carry_a_code_version(home: Path) -> None:
    graph = load_code_location().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        assert graph.get(key).code_version, key


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "INGESTION_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "VIRTUAL_ENV": str(Path(sys.executable).parent.parent),
    }
    (home / "dagster").mkdir(exist_ok=True)
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    bin_dir = Path(sys.executable).parent
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_dg_check_defs_passes(home: Path) -> None:
    result = run_cli("dg", "check", "defs", home=home)
    assert result.returncode == 0, result.stdout + result.stderr


def test_definitions_validate_on_the_workspace(home: Path) -> None:
    result = run_cli("dagster", "definitions", "validate", "-w", "workspace.yaml", home=home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ingestion_project" in result.stdout + result.stderr


def test_workspace_and_pyproject_name_one_code_location() -> None:
    """Sensor and schedule state is kept per location name, so dg, dagster and the daemon agree."""
    tool = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]
    project = tool["dg"]["project"]
    assert "dagster" not in tool, "[tool.dagster] would name the location a second time"
    workspace = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())
    assert workspace["load_from"] == [
        {
            "python_module": {
                "module_name": f"{project['root_module']}.definitions",
                "location_name": project["code_location_name"],
            }
        }
    ]


@pytest.mark.parametrize(
    ("command", "expected"),
    [("sensor", EXPECTED_SENSORS), ("schedule", EXPECTED_SCHEDULES)],
)
def test_sensors_and_schedules_are_listed(command: str, expected: set[str], home: Path) -> None:
    result = run_cli("dagster", command, "list", home=home)
    assert result.returncode == 0, result.stderr
    for name in expected:
        assert name in result.stdout
    assert "does not match the name" not in result.stdout + result.stderr


def test_cli_materializes_a_dataset(home: Path) -> None:
    # As the README says: `dg launch --assets NAME` from the project's root.
    result = run_cli("dg", "launch", "--assets", "bikeshare_history", home=home)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    registry = home / "datastores" / "workspace_default" / "_registry" / "datasets"
    assert (registry / "bikeshare_history" / "v000001.json").is_file()
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    event = instance.get_latest_materialization_event(dg.AssetKey("bikeshare_history"))
    assert event is not None and event.asset_materialization is not None
    assert event.asset_materialization.metadata["version"].value == 1


def test_cli_backfills_a_range_of_monitor_windows_in_one_run(home: Path) -> None:
    # As the README says: `dg launch --assets MONITOR --partition-range START...END`.
    assert run_cli("dg", "launch", "--assets", "bikeshare_history", home=home).returncode == 0
    result = run_cli(
        "dg",
        "launch",
        "--assets",
        "weather_daily",
        "--partition-range",
        "2011-03-01...2011-03-31",
        home=home,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    records = instance.fetch_materializations(dg.AssetKey("weather_daily"), limit=100).records
    assert sorted(record.partition_key or "" for record in records) == [
        f"2011-03-{day:02d}" for day in range(1, 32)
    ]
    assert len({record.run_id for record in records}) == 1
    meta = records[0].asset_materialization
    assert meta is not None and {"drift_share", "drift_magnitude"} <= set(meta.metadata)
    # A window record and the full result per day, kept beside the monitor.
    windows = home / "datastores" / "workspace_default" / "_registry" / "monitors" / "weather_daily"
    assert len(list((windows / "windows").glob("2011-03-??.json"))) == 31
    assert len(list((windows / "windows").glob("2011-03-??.report.json"))) == 31


def test_cli_backfills_a_month_of_dataset_windows_in_one_run(home: Path) -> None:
    # As the README says: `dg launch --assets DATASET --partition-range START...END`.
    result = run_cli(
        "dg",
        "launch",
        "--assets",
        "bikeshare_daily",
        "--partition-range",
        "2011-03-01...2011-03-31",
        home=home,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    records = instance.fetch_materializations(dg.AssetKey("bikeshare_daily"), limit=100).records
    days = [f"2011-03-{day:02d}" for day in range(1, 32)]
    assert sorted(record.partition_key or "" for record in records) == days
    assert len({record.run_id for record in records}) == 1
    registry = home / "datastores" / "workspace_default" / "_registry" / "datasets"
    windows = registry / "bikeshare_daily" / "windows"
    assert sorted(path.parent.name for path in windows.glob("*/v000001.json")) == days
    one_day = json.loads((windows / "2011-03-13" / "v000001.json").read_text())
    assert one_day["manifest"]["path"] == ["bikeshare/history/2011-03.csv"]
    assert 0 < one_day["row_count"] <= 24


def test_dot_env_is_git_ignored() -> None:
    # Secrets go in .env (read by dg, dagster and ingestion); it must never be committed.
    if not (PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run(
        ["git", "check-ignore", "--quiet", ".env"], cwd=PROJECT_ROOT, timeout=30, check=False
    )
    assert result.returncode == 0
