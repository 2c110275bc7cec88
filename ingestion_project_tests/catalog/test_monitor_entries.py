"""Monitors and alerts in YAML: every form a user writes, and the mistakes, worded at load time."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from ingestion_project.catalog.errors import CatalogError
from ingestion_project.catalog.spec import BaselineSpec, TargetSpec
from ingestion_project_tests.catalog.test_parse import assert_reported, base_catalog
from ingestion_project_tests.catalogs import project_catalog_of


def with_monitor(**entry: Any) -> dict[str, Any]:
    raw = base_catalog()
    raw["monitors"]["watch"] = entry
    return raw


def loaded(**entry: Any) -> Any:
    return project_catalog_of(with_monitor(**entry))


def mistake(raw: dict[str, Any]) -> CatalogError:
    with pytest.raises(CatalogError) as caught:
        project_catalog_of(raw)
    return caught.value


def test_a_model_monitor_watches_its_scored_data_against_the_champion() -> None:
    catalog = loaded(model="demand")

    spec = catalog.monitors["watch"]
    assert spec.baseline_spec.is_champion
    assert catalog.monitor_target("watch") == "trips_new"
    assert catalog.monitor_model("watch") == "demand"
    assert catalog.monitor_features("watch") == catalog.models["demand"].features


def test_a_monitor_without_a_model_compares_a_dataset_with_a_pinned_version() -> None:
    catalog = loaded(
        target="trips",
        baseline={"dataset": "trips", "version": 3},
        features="all",
        methods={"temp": "wasserstein"},
    )

    spec = catalog.monitors["watch"]
    assert spec.target_spec == TargetSpec(dataset="trips")
    assert spec.baseline_spec == BaselineSpec(dataset="trips", version=3)
    assert catalog.monitor_model("watch") is None
    assert catalog.monitor_features("watch") is None  # every shared column


def test_a_windowed_monitor_with_a_time_window_baseline() -> None:
    catalog = loaded(
        target={"dataset": "trips"},
        baseline={"dataset": "trips", "start": "2011-01-01", "end": "2011-02-01"},
        frequency="week",
        start="2011-01-03",
        timezone="Europe/Paris",
        thresholds={"alpha": 0.01, "fdr": False, "psi": 0.25},
        threshold=0.5,
        persist=3,
    )

    spec = catalog.monitors["watch"]
    assert spec.frequency == "week" and spec.start == date(2011, 1, 3)
    assert spec.baseline_spec.describe() == "trips from 2011-01-01 to 2011-02-01"
    assert spec.thresholds.alpha == 0.01 and not spec.thresholds.fdr
    assert spec.persist == 3


def test_predictions_of_a_model_as_the_target() -> None:
    catalog = loaded(target={"predictions": "demand"}, model="demand")

    assert catalog.monitor_model("watch") == "demand"
    assert catalog.monitor_target("watch") == "trips_new"


@pytest.mark.parametrize(
    ("entry", "where", "hints"),
    [
        (
            {"target": "trips"},
            "monitors.watch",
            ("without a 'model' there is no champion",),
        ),
        (
            {"model": "demand", "frequency": "day"},
            "monitors.watch",
            ("'frequency: day' needs 'start:'",),
        ),
        (
            {"model": "demand", "baseline": {"version": 2}},
            "monitors.watch.baseline",
            ("need a 'dataset'",),
        ),
        (
            {
                "target": "trips",
                "baseline": {"dataset": "trips", "version": 2, "start": "2011-01-01"},
            },
            "monitors.watch.baseline",
            ("either a 'version' or a window",),
        ),
        (
            {"model": "demand", "methods": {"temp": "anderson"}},
            "monitors.watch.methods.temp",
            ("ks", "chi_squared"),
        ),
        (
            {"model": "demand", "timezone": "Mars/Olympus"},
            "monitors.watch",
            ("unknown timezone 'Mars/Olympus'",),
        ),
        (
            {"model": "demand", "persist": 0},
            "monitors.watch.persist",
            (),
        ),
    ],
    ids=[
        "no-baseline",
        "no-start",
        "version-alone",
        "version-and-window",
        "method",
        "zone",
        "persist",
    ],
)
def test_entry_mistakes_are_worded(
    entry: dict[str, Any], where: str, hints: tuple[str, ...]
) -> None:
    assert_reported(mistake(with_monitor(**entry)), where, *hints)


@pytest.mark.parametrize(
    ("entry", "where", "hints"),
    [
        (
            {"target": "tripz", "baseline": {"dataset": "trips", "version": 1}},
            "monitors.watch.target",
            ("'tripz' is not a declared dataset", "did you mean 'trips'?"),
        ),
        (
            {"target": "trips", "baseline": {"dataset": "trip", "version": 1}},
            "monitors.watch.baseline.dataset",
            ("'trip' is not a declared dataset",),
        ),
        (
            {"target": {"predictions": "demnd"}, "baseline": {"dataset": "trips"}},
            "monitors.watch.target.predictions",
            ("'demnd' is not a declared model", "did you mean 'demand'?"),
        ),
    ],
    ids=["target", "baseline", "predictions"],
)
def test_references_are_checked(entry: dict[str, Any], where: str, hints: tuple[str, ...]) -> None:
    assert_reported(mistake(with_monitor(**entry)), where, *hints)


def test_windows_need_a_timestamp_column() -> None:
    raw = with_monitor(
        target="trips",
        baseline={"dataset": "trips", "start": "2011-01-01"},
        frequency="day",
        start="2011-01-01",
    )
    del raw["datasets"]["trips"]["timestamp_column"]

    error = mistake(raw)

    assert_reported(error, "monitors.watch.frequency", "cut by its timestamp column")
    assert_reported(error, "monitors.watch.baseline", "needs its timestamp column")


def test_alerts_name_an_environment_variable_and_known_subjects() -> None:
    raw = base_catalog()
    raw["alerts"] = {
        "team": {"webhook": {"env": "TEAM_WEBHOOK_URL"}, "events": ["drift", "promotion"]},
        "owners": {"webhook": {"env": "OWNERS_URL"}, "subjects": ["demand"]},
    }

    catalog = project_catalog_of(raw)

    assert catalog.alerts["team"].webhook.env == "TEAM_WEBHOOK_URL"
    assert catalog.alerts["owners"].events == ["drift", "performance_drop", "promotion"]


@pytest.mark.parametrize(
    ("alert", "where", "hints"),
    [
        (
            {"webhook": "https://hooks.slack.com/services/T0/B0/secret"},
            "alerts.team.webhook",
            (),
        ),
        (
            {"webhook": {"env": "URL"}, "events": ["drfit"]},
            "alerts.team.events.0",
            ("drift",),
        ),
        (
            {"webhook": {"env": "URL"}, "subjects": ["demnd"]},
            "alerts.team.subjects",
            ("'demnd' is not a declared model or monitor", "did you mean 'demand'?"),
        ),
    ],
    ids=["literal-url", "event", "subject"],
)
def test_alert_mistakes_are_worded(
    alert: dict[str, Any], where: str, hints: tuple[str, ...]
) -> None:
    raw = base_catalog()
    raw["alerts"] = {"team": alert}

    line = assert_reported(mistake(raw), where, *hints)

    assert "secret" not in line
