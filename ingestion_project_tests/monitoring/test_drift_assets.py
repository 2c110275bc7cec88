"""Drift monitors materialized on real months: per run, per time window with backfills, alerts.

Catalogs are declared as a user would; data are the demo's bikeshare months in a local store.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from ingestion_project.catalog.definitions import monitor_job_name
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.demo.loop import DEMO_DATA
from ingestion_project.monitoring.history import load_window, recent_windows
from ingestion_project_tests.alerts.receiver import WebhookReceiver
from ingestion_project_tests.catalogs import (
    catalog_definitions,
    materialization_metadata,
    materialize,
)

WEATHER = ["temp", "atemp", "hum", "windspeed", "weathersit"]
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    root = tmp_path / "datastores" / "workspace_default"
    root.mkdir(parents=True)
    return root


def place(store: Path, folder: str, *months: int) -> None:
    (store / folder).mkdir(parents=True, exist_ok=True)
    for month in months:
        shutil.copy2(DEMO_DATA / f"2011-{month:02d}.csv", store / folder)


def replace(store: Path, folder: str, month: int) -> None:
    """``folder`` holds exactly one month, as an incoming drop replaced by the next."""
    shutil.rmtree(store / folder, ignore_errors=True)
    place(store, folder, month)


def registry(store: Path) -> LocalDatastore:
    return LocalDatastore(name="workspace_default", root=str(store))


def run(defs: dg.Definitions, instance: dg.DagsterInstance, *assets: str) -> dict[str, Any]:
    result = materialize(defs, *assets, instance=instance)
    assert result.success
    done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    return {name: materialization_metadata(result, name) for name in done}


def dataset_monitor(**monitor: Any) -> dict[str, Any]:
    return {
        "datasets": {
            "winter": {"path": "winter/*.csv", "timestamp_column": "timestamp"},
            "incoming": {"path": "incoming/*.csv", "timestamp_column": "timestamp"},
        },
        "monitors": {
            "weather": {
                "target": "incoming",
                "baseline": {"dataset": "winter", "version": 1},
                "features": WEATHER,
                **monitor,
            }
        },
    }


def test_a_dataset_monitor_records_every_feature_with_its_test(store: Path) -> None:
    place(store, "winter", 1, 2)
    replace(store, "incoming", 7)
    defs = catalog_definitions(dataset_monitor())
    instance = dg.DagsterInstance.ephemeral()

    meta = run(defs, instance, "winter", "incoming", "weather")["weather"]

    table = meta["features"]
    rows = {row.data["feature"]: row.data for row in table.records}
    assert set(rows) == set(WEATHER)
    assert rows["temp"]["method"] == "ks" and rows["weathersit"]["method"] == "chi_squared"
    # July against January-February: temperature moved, and the verdict says so.
    assert rows["temp"]["drifted"] and rows["temp"]["p_value"] < 0.05
    assert meta["drift_share"] == pytest.approx(
        sum(row["drifted"] for row in rows.values()) / len(rows)
    )
    assert 0 < meta["drift_magnitude"] <= 1
    assert meta["baseline"] == "winter v1"
    assert meta["evidence_key"] == "data:incoming:v1"
    assert "prediction_drift" not in meta
    result = json.loads((store / str(meta["result_path"])).read_bytes())
    assert {f["feature"] for f in result["report"]["features"]} == set(WEATHER)


def test_the_baseline_summary_is_computed_once_and_reused(store: Path) -> None:
    place(store, "winter", 1, 2)
    replace(store, "incoming", 3)
    defs = catalog_definitions(dataset_monitor())
    instance = dg.DagsterInstance.ephemeral()
    run(defs, instance, "winter", "incoming", "weather")
    summaries = sorted((store / "_registry" / "monitors" / "weather" / "baselines").iterdir())
    assert len(summaries) == 1
    written = summaries[0].stat().st_mtime_ns

    replace(store, "incoming", 4)
    run(defs, instance, "incoming", "weather")

    again = sorted((store / "_registry" / "monitors" / "weather" / "baselines").iterdir())
    assert again == summaries and again[0].stat().st_mtime_ns == written


def test_an_alarm_needs_drift_to_persist(store: Path) -> None:
    place(store, "winter", 1, 2)
    defs = catalog_definitions(dataset_monitor(threshold=0.5, persist=2))
    instance = dg.DagsterInstance.ephemeral()
    run(defs, instance, "winter")
    verdicts = []
    for month in (2, 7, 8):
        replace(store, "incoming", month)
        meta = run(defs, instance, "incoming", "weather")["weather"]
        verdicts.append((meta["drift_detected"], meta["drift_alarm"]))

    # February is the baseline's own month: no drift. July drifts, but only once so far;
    # August drifts again: two windows in a row, the alarm.
    assert verdicts == [(False, False), (True, False), (True, True)]
    windows = recent_windows(registry(store), "_registry", "weather")
    assert [w.window for w in windows] == ["incoming v3", "incoming v2", "incoming v1"]


def test_an_evidently_report_is_rendered_on_request_on_a_bounded_sample(store: Path) -> None:
    place(store, "winter", 1, 2)
    replace(store, "incoming", 7)
    defs = catalog_definitions(dataset_monitor(report=True, report_rows=500))

    meta = run(defs, dg.DagsterInstance.ephemeral(), "winter", "incoming", "weather")["weather"]

    html = (store / str(meta["report_path"])).read_text()
    assert html.lstrip().lower().startswith("<!doctype html")


def windowed_catalog(**monitor: Any) -> dict[str, Any]:
    return {
        "datasets": {"history": {"path": "history/*.csv", "timestamp_column": "timestamp"}},
        "monitors": {
            "daily": {
                "target": "history",
                "baseline": {"dataset": "history", "start": "2011-01-01", "end": "2011-02-01"},
                "frequency": "day",
                "start": "2011-01-01",
                "end": "2012-01-01",
                "features": WEATHER,
                "threshold": 0.4,
                "persist": 3,
                **monitor,
            }
        },
    }


def backfill(
    defs: dg.Definitions, instance: dg.DagsterInstance, first: str, last: str
) -> dg.ExecuteInProcessResult:
    """One run over a range of windows, as a single-run backfill from the UI or the CLI."""
    job = defs.resolve_job_def(monitor_job_name("daily"))
    return job.execute_in_process(instance=instance, tags={RANGE_START: first, RANGE_END: last})


def partition_events(instance: dg.DagsterInstance) -> dict[str, dict[str, Any]]:
    records = instance.fetch_materializations(dg.AssetKey("daily"), limit=1000).records
    return {
        str(record.partition_key): {
            key: value.value
            for key, value in record.asset_materialization.metadata.items()  # type: ignore[union-attr]
        }
        for record in records
    }


@pytest.mark.slow
def test_a_backfill_measures_every_window_in_one_run(store: Path) -> None:
    place(store, "history", 1, 2, 3)
    defs = catalog_definitions(windowed_catalog())
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(defs, "history", instance=instance).success

    result = backfill(defs, instance, "2011-01-01", "2011-04-10")

    assert result.success
    events = partition_events(instance)
    assert len(events) == 100
    measured = {key: meta for key, meta in events.items() if meta.get("rows")}
    assert len(measured) == 90  # January to March; April has no rows yet
    assert events["2011-04-05"]["note"] == "no rows in this window"
    assert all(meta["rows"] == 24 or meta["rows"] > 0 for meta in measured.values())
    # Every window has its own figures, plotted over time in the UI.
    assert len({meta["drift_magnitude"] for meta in measured.values()}) > 30
    # An alarm only ever follows two detected windows before it.
    keys = sorted(measured)
    for index, key in enumerate(keys):
        if measured[key]["drift_alarm"]:
            assert index >= 2
            assert all(measured[k]["drift_detected"] for k in keys[index - 2 : index + 1])
    january = [measured[k]["drift_share"] for k in keys if k.startswith("2011-01")]
    march = [measured[k]["drift_share"] for k in keys if k.startswith("2011-03")]
    assert sum(march) > sum(january)
    stored = load_window(registry(store), "_registry", "daily", "2011-03-15")
    assert stored is not None and stored.rows == measured["2011-03-15"]["rows"]


def test_persistence_reads_windows_of_earlier_runs(store: Path) -> None:
    place(store, "history", 1, 7)
    defs = catalog_definitions(windowed_catalog(persist=2))
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(defs, "history", instance=instance).success

    assert backfill(defs, instance, "2011-07-10", "2011-07-10").success
    assert backfill(defs, instance, "2011-07-11", "2011-07-11").success

    events = partition_events(instance)
    assert events["2011-07-10"]["drift_detected"] and not events["2011-07-10"]["drift_alarm"]
    assert events["2011-07-11"]["drift_detected"] and events["2011-07-11"]["drift_alarm"]


def test_an_alarm_is_posted_to_the_declared_webhook(
    store: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_WEBHOOK_URL", receiver.url())
    place(store, "winter", 1, 2)
    replace(store, "incoming", 7)
    catalog = dataset_monitor(threshold=0.2)
    catalog["alerts"] = {"team": {"webhook": {"env": "TEAM_WEBHOOK_URL"}, "events": ["drift"]}}
    defs = catalog_definitions(catalog)

    meta = run(defs, dg.DagsterInstance.ephemeral(), "winter", "incoming", "weather")["weather"]

    assert meta["drift_alarm"]
    assert len(receiver.received) == 1
    body = receiver.received[0].json()
    assert body["text"].startswith("Drift on weather")
    assert "incoming v1" in body["text"]


def test_an_unreachable_webhook_never_fails_the_run(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_WEBHOOK_URL", "http://127.0.0.1:9/hooks/secret-token")
    place(store, "winter", 1, 2)
    replace(store, "incoming", 7)
    catalog = dataset_monitor(threshold=0.2)
    catalog["alerts"] = {"team": {"webhook": {"env": "TEAM_WEBHOOK_URL"}}}
    defs = catalog_definitions(catalog)

    meta = run(defs, dg.DagsterInstance.ephemeral(), "winter", "incoming", "weather")["weather"]

    assert meta["drift_alarm"]


def test_a_model_monitor_reports_prediction_drift(store: Path) -> None:
    place(store, "history", 1, 2, 3, 4)
    replace(store, "incoming", 7)
    catalog = {
        "datasets": {
            "history": {"path": "history/*.csv", "timestamp_column": "timestamp"},
            "incoming": {"path": "incoming/*.csv", "timestamp_column": "timestamp"},
        },
        "models": {
            "demand": {
                "train_on": "history",
                "target": "bikers",
                "features": ["hr", "workingday", *WEATHER],
                "categorical": ["weathersit"],
                "estimator": {"kind": "ridge"},
                "scoring": {"dataset": "incoming"},
            }
        },
        "monitors": {"demand_drift": {"model": "demand", "features": WEATHER}},
    }
    defs = catalog_definitions(catalog)
    instance = dg.DagsterInstance.ephemeral()

    done = run(
        defs, instance, "history", "demand", "incoming", "demand_predictions", "demand_drift"
    )

    meta = done["demand_drift"]
    rows = {row.data["feature"] for row in meta["features"].records}
    assert rows == {*WEATHER, "prediction"}
    assert 0 <= meta["prediction_drift"] <= 1
    assert meta["model_version"] == 1
    assert meta["baseline"] == "history v1"
    frame = pd.read_parquet(store / str(done["demand_predictions"]["path"]))
    assert len(frame) == meta["rows"]
