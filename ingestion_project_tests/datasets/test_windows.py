"""Datasets split into time windows: each day, week or month its own versions, backfilled in ranges.

Data are the demo's real bikeshare months in a local store, cut into day files where a test needs
files dated by day. A backfill is one run over a range of windows, as the UI and the CLI launch it
(the asset's single-run backfill policy), here with the run's partition-range tags.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from ingestion_project.catalog.definitions import refresh_job_name
from ingestion_project.catalog.errors import CatalogError
from ingestion_project.datasets.api import UnknownDatasetError, Workspace
from ingestion_project.datasets.versions import DatasetVersionChangedError, dataset_registry
from ingestion_project.datasets.windows import version_series
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.demo.loop import DEMO_DATA
from ingestion_project_tests.catalogs import catalog_definitions, project_catalog_of

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
MARCH = [f"2011-03-{day:02d}" for day in range(1, 32)]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    root = tmp_path / "datastores" / "workspace_default"
    root.mkdir(parents=True)
    return root


def month(number: int) -> pd.DataFrame:
    return pd.read_csv(DEMO_DATA / f"2011-{number:02d}.csv")


def place_days(store: Path, *months: int) -> None:
    """Each day of the months in its own file, ``days/2011/MM/DD.csv``, as a daily drop lands."""
    for number in months:
        frame = month(number)
        for day, rows in frame.groupby(frame["timestamp"].str[:10]):
            target = store / "days" / str(day).replace("-", "/")
            target.parent.mkdir(parents=True, exist_ok=True)
            rows.to_csv(target.with_suffix(".csv"), index=False)


def place_months(store: Path, *months: int) -> None:
    (store / "history").mkdir(parents=True, exist_ok=True)
    for number in months:
        month(number).to_csv(store / "history" / f"2011-{number:02d}.csv", index=False)


def catalog(**datasets: dict[str, Any]) -> dict[str, Any]:
    return {"datastores": {"workspace_default": {"kind": "local"}}, "datasets": datasets}


DAY_FILES = {
    "path": "days/**/*.csv",
    "partition_format": "days/{date:yyyy/MM/dd}.csv",
    "windows": {"frequency": "day", "start": "2011-01-01", "end": "2012-01-01"},
    "checks": [{"not_null": ["timestamp", "bikers"]}],
}
MONTH_FILES_BY_DAY = {
    "path": "history/*.csv",
    "partition_format": "history/{month:yyyy-MM}.csv",
    "timestamp_column": "timestamp",
    "windows": {"frequency": "day", "start": "2011-01-01", "end": "2012-01-01"},
}


def backfill(
    defs: dg.Definitions, instance: dg.DagsterInstance, name: str, first: str, last: str
) -> dg.ExecuteInProcessResult:
    """One run over a range of windows, as a single-run backfill from the UI or the CLI runs."""
    job = defs.resolve_job_def(refresh_job_name(name))
    return job.execute_in_process(
        instance=instance, tags={RANGE_START: first, RANGE_END: last}, raise_on_error=False
    )


def windows_of(instance: dg.DagsterInstance, name: str) -> dict[str, list[dict[str, Any]]]:
    """Every recorded materialization of ``name``, by window, oldest first, as plain values."""
    records = instance.fetch_materializations(dg.AssetKey(name), limit=1000).records
    found: dict[str, list[dict[str, Any]]] = {}
    for record in reversed(records):
        event = record.asset_materialization
        assert event is not None and record.partition_key is not None
        values = {key: value.value for key, value in event.metadata.items()}
        found.setdefault(record.partition_key, []).append(values | {"run": record.run_id})
    return found


def workspace(store: Path, raw: dict[str, Any]) -> Workspace:
    return Workspace(project_catalog_of(raw), store.parent.parent)


def test_a_backfill_of_a_month_registers_each_day_as_its_own_version(store: Path) -> None:
    place_days(store, 2, 3, 4)
    defs = catalog_definitions(catalog(daily=DAY_FILES))
    instance = dg.DagsterInstance.ephemeral()

    result = backfill(defs, instance, "daily", MARCH[0], MARCH[-1])

    assert result.success
    events = windows_of(instance, "daily")
    assert sorted(events) == MARCH
    assert {event["run"] for day in MARCH for event in events[day]} == {result.run_id}
    march = month(3)
    for day in MARCH:
        (event,) = events[day]
        assert event["version"] == 1 and event["new_version"] is True
        assert event["window"] == day
        assert event["dagster/row_count"] == (march["timestamp"].str[:10] == day).sum()
    api = workspace(store, catalog(daily=DAY_FILES))
    assert api.windows("daily") == MARCH
    loaded = api.get("daily", window="2011-03-13").to_pandas()
    expected = march[march["timestamp"].str.startswith("2011-03-13")].reset_index(drop=True)
    pd.testing.assert_series_equal(loaded["bikers"], expected["bikers"], check_dtype=False)
    assert [info.path for info in api.get("daily", window="2011-03-13").files()] == [
        "days/2011/03/13.csv"
    ]


def test_a_backfill_again_registers_nothing_and_a_changed_day_only_that_day(store: Path) -> None:
    place_days(store, 3)
    defs = catalog_definitions(catalog(daily=DAY_FILES))
    instance = dg.DagsterInstance.ephemeral()
    assert backfill(defs, instance, "daily", MARCH[0], MARCH[-1]).success

    assert backfill(defs, instance, "daily", MARCH[0], MARCH[-1]).success
    changed = store / "days" / "2011" / "03" / "17.csv"
    frame = pd.read_csv(changed)
    frame.loc[0, "bikers"] += 1  # a corrected count arrives for one day
    frame.to_csv(changed, index=False)
    assert backfill(defs, instance, "daily", MARCH[0], MARCH[-1]).success

    events = windows_of(instance, "daily")
    assert [event["new_version"] for event in events["2011-03-16"]] == [True, False, False]
    assert [event["version"] for event in events["2011-03-17"]] == [1, 1, 2]
    registry = dataset_registry(LocalDatastore(name="r", root=str(store)), "_registry")
    assert {day: registry.version_numbers(version_series("daily", day))[-1] for day in MARCH} == {
        day: 2 if day == "2011-03-17" else 1 for day in MARCH
    }
    api = workspace(store, catalog(daily=DAY_FILES))
    assert api.get("daily", window="2011-03-17").to_pandas()["bikers"][0] == frame["bikers"][0]
    # Version 1 pinned the file as it was: it refuses to read the corrected one (reference mode).
    with pytest.raises(DatasetVersionChangedError, match="version 1 of window 2011-03-17 pins"):
        api.get("daily", 1, window="2011-03-17").to_pandas()


def test_a_day_without_data_fails_the_run_naming_it_and_the_others_register(
    store: Path,
) -> None:
    place_days(store, 3)
    (store / "days" / "2011" / "03" / "15.csv").unlink()
    defs = catalog_definitions(catalog(daily=DAY_FILES))
    instance = dg.DagsterInstance.ephemeral()

    result = backfill(defs, instance, "daily", MARCH[0], MARCH[-1])

    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    message = failure.step_failure_data.error.message  # type: ignore[union-attr]
    assert "Of 31 windows of 'daily', 1 registered nothing (2011-03-15" in message
    assert "run the failed windows again once their data is fixed" in message
    assert sorted(windows_of(instance, "daily")) == [day for day in MARCH if day != "2011-03-15"]
    logs = "\n".join(
        str(event.message) for event in instance.all_logs(result.run_id) if event.message
    )
    assert "no files of 'days/**/*.csv' in datastore 'workspace_default' are dated in window " in (
        logs
    )
    assert "2011-03-15" not in workspace(store, catalog(daily=DAY_FILES)).windows("daily")


def test_month_files_are_cut_into_days_by_their_timestamps(store: Path) -> None:
    place_months(store, 1, 2, 3)
    defs = catalog_definitions(catalog(history=MONTH_FILES_BY_DAY))
    instance = dg.DagsterInstance.ephemeral()

    result = backfill(defs, instance, "history", "2011-02-20", "2011-03-10")

    assert result.success
    events = windows_of(instance, "history")
    assert len(events) == 19
    api = workspace(store, catalog(history=MONTH_FILES_BY_DAY))
    last_of_february = api.get("history", window="2011-02-28")
    assert [info.path for info in last_of_february.files()] == ["history/2011-02.csv"]
    frame = last_of_february.to_pandas()
    assert len(frame) == events["2011-02-28"][0]["dagster/row_count"] > 0
    stamps = pd.to_datetime(frame["timestamp"])
    assert stamps.min() >= pd.Timestamp("2011-02-28") and stamps.max() < pd.Timestamp("2011-03-01")


def test_weekly_windows_cut_from_timestamps_alone(store: Path) -> None:
    place_months(store, 3)
    weekly = {
        "path": "history/*.csv",
        "timestamp_column": "timestamp",
        "windows": {"frequency": "week", "start": "2011-01-02", "timezone": "America/New_York"},
    }
    defs = catalog_definitions(catalog(weekly=weekly))
    instance = dg.DagsterInstance.ephemeral()

    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(instance=instance, partition_key="2011-03-06")

    assert result.success
    frame = workspace(store, catalog(weekly=weekly)).get("weekly", window="2011-03-06").to_pandas()
    stamps = pd.to_datetime(frame["timestamp"])
    march = pd.to_datetime(month(3)["timestamp"])
    in_week = (march >= pd.Timestamp("2011-03-06")) & (march < pd.Timestamp("2011-03-13"))
    assert len(frame) == in_week.sum() > 100
    assert stamps.min() >= pd.Timestamp("2011-03-06") and stamps.max() < pd.Timestamp("2011-03-13")


def test_a_cron_trigger_registers_the_window_that_last_closed(store: Path) -> None:
    nightly = DAY_FILES | {"trigger": {"cron": "0 3 * * *", "timezone": "Europe/Berlin"}}
    defs = catalog_definitions(catalog(daily=nightly))
    schedule, repo = defs.resolve_schedule_def("daily_schedule"), defs.get_repository_def()

    assert schedule.cron_schedule == "0 3 * * *"
    assert schedule.execution_timezone == "Europe/Berlin"
    when = datetime(2011, 3, 18, 2, 0, tzinfo=UTC)  # 03:00 in Berlin
    with dg.build_schedule_context(scheduled_execution_time=when, repository_def=repo) as context:
        (request,) = schedule.evaluate_tick(context).run_requests or []
    assert request.partition_key == "2011-03-17" and request.run_key == "daily:2011-03-17"
    early = datetime(2010, 12, 31, 2, 0, tzinfo=UTC)
    with dg.build_schedule_context(scheduled_execution_time=early, repository_def=repo) as context:
        skipped = schedule.evaluate_tick(context)
    assert skipped.skip_message == "no window of 'daily' has closed yet"


def test_code_change_automation_leaves_windows_to_a_backfill() -> None:
    raw = catalog(daily=DAY_FILES, whole={"path": "history/*.csv"})
    defs = catalog_definitions(raw | {"automation": {"code_change": True}})

    conditions = {
        name: defs.resolve_assets_def(name).automation_conditions_by_key.get(dg.AssetKey(name))
        for name in ("daily", "whole")
    }
    assert conditions["daily"] is None  # every past window would re-run: a user's decision
    assert conditions["whole"] is not None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            {"path": None, "partition_format": None, "query": "select 1", "datastore": "db"},
            "a SQL dataset cannot be windowed",
        ),
        ({"trigger": {"data_change": {}}}, "refreshed window by window"),
        ({"partition_format": None}, "'windows' need a 'timestamp_column'"),
        (
            {"kind": "file", "partition_format": None, "checks": None, "timestamp_column": "t"},
            "picks files by date",
        ),
        (
            {"partition_format": "days/{date:yyyy/MM}/*.csv"},
            "files dated by month cannot be cut into day windows",
        ),
        ({"windows": {"frequency": "day", "start": "2011-02-01", "end": "2011-01-01"}}, "after"),
        ({"windows": {"frequency": "day", "start": "2011-01-01", "timezone": "Mars"}}, "timezone"),
        ({"windows": {"frequency": "hour", "start": "2011-01-01"}}, "frequency"),
    ],
)
def test_a_window_that_cannot_be_cut_is_refused_at_load_time(
    change: dict[str, Any], words: str
) -> None:
    entry = {key: value for key, value in (DAY_FILES | change).items() if value is not None}
    raw = catalog(daily=entry)
    raw["datastores"]["db"] = {"kind": "postgresql", "host": "h", "database": "d", "user": "u"}

    with pytest.raises(CatalogError) as caught:
        project_catalog_of(raw)

    assert "datasets.daily" in str(caught.value) and words in str(caught.value)


def test_models_and_monitors_cannot_read_a_windowed_dataset() -> None:
    raw = catalog(daily=MONTH_FILES_BY_DAY)
    raw["models"] = {
        "demand": {"train_on": "daily", "target": "bikers", "features": ["temp"]},
    }
    raw["monitors"] = {
        "watch": {"target": "daily", "baseline": {"dataset": "daily", "version": 1}},
    }

    with pytest.raises(CatalogError) as caught:
        project_catalog_of(raw)

    text = str(caught.value)
    assert "models.demand.train_on: dataset 'daily' is split into time windows" in text
    assert "monitors.watch.target: dataset 'daily' is split into time windows" in text
    assert "Declare a second dataset over the same files without 'windows'" in text


def test_the_api_asks_for_a_window_and_names_the_registered_ones(store: Path) -> None:
    place_days(store, 3)
    defs = catalog_definitions(catalog(daily=DAY_FILES))
    assert backfill(defs, dg.DagsterInstance.ephemeral(), "daily", MARCH[0], MARCH[2]).success
    api = workspace(store, catalog(daily=DAY_FILES))

    with pytest.raises(UnknownDatasetError, match="split into day windows") as caught:
        api.get("daily")
    assert "window='2011-03-03' (latest registered: 2011-03-01, 2011-03-02, 2011-03-03)" in str(
        caught.value
    )
    with pytest.raises(UnknownDatasetError, match="--partition 2011-04-01"):
        api.get("daily", window="2011-04-01")
    assert [info.version for info in api.versions("daily", window="2011-03-02")] == [1]
