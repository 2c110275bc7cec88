"""The retraining sensor applies the model's policy to each new result: one run per piece of data.

Results are real materialization events in an instance's event log; the sensor is the one the
code location defines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ingestion_project.triggers.drift_retrain import DRIFT_SHARE, THRESHOLD, retrain_sensor_name
from ingestion_project_tests.catalogs import catalog_definitions

SENSOR = retrain_sensor_name("bikeshare_demand")


def record(instance: dg.DagsterInstance, asset: str, **metadata: Any) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset, metadata=metadata))


def record_drift(instance: dg.DagsterInstance, share: float, scoring_version: int) -> None:
    record(
        instance,
        "bikeshare_drift",
        **{
            DRIFT_SHARE: share,
            THRESHOLD: 0.75,
            "evidence_key": f"data:bikeshare_scoring:v{scoring_version}",
        },
    )


WATCHED = {
    SENSOR: ["bikeshare_drift"],
    retrain_sensor_name("busy"): ["busy_predictions", "busy_performance"],
}


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, sensor: str, cursor: str | None):
    definition = defs.resolve_sensor_def(sensor)
    assert isinstance(definition, dg.MultiAssetSensorDefinition)
    context = dg.build_multi_asset_sensor_context(
        monitored_assets=[dg.AssetKey(name) for name in WATCHED[sensor]],
        instance=instance,
        cursor=cursor,
        definitions=defs,
    )
    return definition.evaluate_tick(context)


def test_drift_above_threshold_requests_one_retraining_keyed_by_the_data(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    record_drift(instance, 0.83, 3)
    result = tick(defs, instance, SENSOR, None)
    assert [r.run_key for r in result.run_requests] == [
        "bikeshare_demand:data:bikeshare_scoring:v3"
    ]
    assert "drift share 0.83" in result.run_requests[0].tags["ingestion/reason"]
    assert defs.resolve_sensor_def(SENSOR).job_name == "retrain_bikeshare_demand"


def test_each_result_is_read_once(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    record_drift(instance, 0.9, 1)
    first = tick(defs, instance, SENSOR, None)
    again = tick(defs, instance, SENSOR, first.cursor)
    assert len(first.run_requests) == 1
    assert not again.run_requests


def test_rechecking_the_same_data_after_a_promotion_gives_the_same_key(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    """The retrain job re-scores and re-checks drift: same data, same key, no second run."""
    record_drift(instance, 0.9, 4)
    first = tick(defs, instance, SENSOR, None)
    record_drift(instance, 0.88, 4)  # the new champion's drift on the same month
    second = tick(defs, instance, SENSOR, first.cursor)
    assert second.run_requests[0].run_key == first.run_requests[0].run_key


def test_drift_below_threshold_keeps_the_champion(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    record_drift(instance, 0.5, 2)
    result = tick(defs, instance, SENSOR, None)
    assert not result.run_requests
    assert "keep: drift share 0.50 (threshold 0.75)" in (result.skip_message or "")


PERFORMANCE_CATALOG = {
    "datasets": {
        "history": {"path": "history/*.csv", "timestamp_column": "ts"},
        "scoring": {"path": "incoming/*.csv", "timestamp_column": "ts"},
    },
    "models": {
        "busy": {
            "train_on": "history",
            "target": "riders",
            "positive_above": 100,
            "features": ["temp"],
            "estimator": {"kind": "logistic_regression"},
            "metric": "auc",
            "scoring": {"dataset": "scoring"},
            "labels": {"dataset": "history", "key": "ts"},
            "retrain": {"when": ["performance_drop"], "tolerance": 0.02},
        }
    },
}


@pytest.fixture
def performance_defs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dg.Definitions:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    return catalog_definitions(PERFORMANCE_CATALOG)


def test_a_realized_drop_beyond_the_tolerance_retrains_and_a_small_one_does_not(
    performance_defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    sensor = retrain_sensor_name("busy")
    record(
        instance,
        "busy_performance",
        realized_auc=0.89,
        reference_auc=0.90,
        evidence_key="labels:scoring:v1",
    )
    small = tick(performance_defs, instance, sensor, None)
    record(
        instance,
        "busy_performance",
        realized_auc=0.85,
        reference_auc=0.90,
        evidence_key="labels:scoring:v2",
    )
    large = tick(performance_defs, instance, sensor, small.cursor)

    assert not small.run_requests
    assert "drop +0.0100, tolerance 0.0200" in (small.skip_message or "")
    assert [r.run_key for r in large.run_requests] == ["busy:labels:scoring:v2"]


def test_an_estimated_drop_retrains_before_labels_arrive(
    performance_defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    sensor = retrain_sensor_name("busy")
    record(
        instance,
        "busy_predictions",
        estimated_auc=0.80,
        reference_auc=0.90,
        evidence_key="data:scoring:v5",
    )
    result = tick(performance_defs, instance, sensor, None)
    assert [r.run_key for r in result.run_requests] == ["busy:data:scoring:v5"]
    assert "estimated auc 0.8000" in result.run_requests[0].tags["ingestion/reason"]
