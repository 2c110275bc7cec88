"""Code change: an edit re-runs exactly the assets it affects, once.

Definitions are loaded before and after an edit of the catalog, and Dagster's own evaluator of
automation conditions (what the sensor runs under the daemon) says what it would request.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ingestion_project.demo.loop import DEMO_DATA
from ingestion_project_tests.catalogs import catalog_definitions

WEATHER = ["temp", "atemp", "hum", "windspeed", "weathersit"]


def catalog(**automation: Any) -> dict[str, Any]:
    return {
        "automation": {"code_change": True, **automation},
        "datasets": {
            "history": {"path": "history/*.csv", "timestamp_column": "timestamp"},
            "incoming": {"path": "incoming/*.csv", "timestamp_column": "timestamp"},
        },
        "models": {
            "demand": {
                "train_on": "history",
                "target": "bikers",
                "features": ["hr", "temp", "hum"],
                "estimator": {"kind": "random_forest", "params": {"n_estimators": 10}},
                "description": "Hourly rentals.",
            }
        },
        "monitors": {
            "weather": {
                "target": "incoming",
                "baseline": {"dataset": "history", "version": 1},
                "features": WEATHER,
            },
            "daily": {
                "target": "history",
                "baseline": {"dataset": "history", "start": "2011-01-01", "end": "2011-02-01"},
                "frequency": "day",
                "start": "2011-01-01",
                "features": WEATHER,
            },
        },
    }


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    root = tmp_path / "datastores" / "workspace_default"
    for folder, month in (("history", 1), ("incoming", 2)):
        (root / folder).mkdir(parents=True)
        shutil.copy2(DEMO_DATA / f"2011-{month:02d}.csv", root / folder)
    return root


ASSETS = ("history", "incoming", "demand", "weather")


def requested(result: dg.EvaluateAutomationConditionsResult) -> set[str]:
    return {name for name in ASSETS if result.get_num_requested(dg.AssetKey(name))}


def evaluate(
    defs: dg.Definitions, instance: dg.DagsterInstance, cursor: Any = None
) -> dg.EvaluateAutomationConditionsResult:
    return dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)


def test_an_edited_entry_re_runs_that_asset_once_and_nothing_else() -> None:
    instance = dg.DagsterInstance.ephemeral()
    before = catalog()
    first = evaluate(catalog_definitions(before), instance)
    assert first.total_requested == 0  # the first evaluation only records the versions

    after = copy.deepcopy(before)
    after["models"]["demand"]["estimator"]["params"]["n_estimators"] = 20
    edited = catalog_definitions(after)
    second = evaluate(edited, instance, first.cursor)
    assert requested(second) == {"demand"}

    third = evaluate(edited, instance, second.cursor)
    assert third.total_requested == 0  # once per change


def test_a_changed_read_option_re_runs_the_dataset_alone() -> None:
    instance = dg.DagsterInstance.ephemeral()
    before = catalog()
    first = evaluate(catalog_definitions(before), instance)
    after = copy.deepcopy(before)
    after["datasets"]["incoming"]["column_types"] = {"weathersit": "string"}

    second = evaluate(catalog_definitions(after), instance, first.cursor)

    # The dataset's entry changed. What reads it has its own code, unchanged: if the dataset
    # registers a new version, the data triggers refresh the rest.
    assert requested(second) == {"incoming"}


def test_words_for_people_change_nothing() -> None:
    instance = dg.DagsterInstance.ephemeral()
    before = catalog()
    first = evaluate(catalog_definitions(before), instance)
    after = copy.deepcopy(before)
    after["models"]["demand"]["description"] = "Hourly rentals, from the weather."
    after["datasets"]["history"]["tags"] = {"domain": "mobility"}

    assert evaluate(catalog_definitions(after), instance, first.cursor).total_requested == 0


def test_the_sensor_is_on_and_leaves_time_windows_to_backfills() -> None:
    defs = catalog_definitions(catalog(every="45s"))
    sensor = defs.resolve_sensor_def("defs__catalog__code_change")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 45
    assert "code version changed" in (sensor.description or "")
    graph = defs.resolve_asset_graph()
    conditions = {
        key.to_user_string(): graph.get(key).automation_condition
        for key in graph.get_all_asset_keys()
    }
    assert conditions["daily"] is None
    assert all(conditions[name] is not None for name in ASSETS)


def test_without_the_section_nothing_is_automated() -> None:
    plain = catalog()
    del plain["automation"]
    defs = catalog_definitions(plain)
    assert not [s for s in defs.sensors or [] if s.name.endswith("__code_change")]
    graph = defs.resolve_asset_graph()
    assert all(graph.get(key).automation_condition is None for key in graph.get_all_asset_keys())
