"""The retrain sensor requests one run per drift result above the threshold, never by the clock."""

from __future__ import annotations

import dagster as dg

from ingestion_project.monitoring.assets import DRIFT_DETECTED, DRIFT_SHARE, RESULT_ID, THRESHOLD
from ingestion_project.triggers.drift_retrain import retrain_sensor_name

SENSOR = retrain_sensor_name("bikeshare_drift")


def record_drift(instance: dg.DagsterInstance, share: float, result_id: str) -> None:
    """A real materialization event of the drift asset in the instance's event log."""
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key="bikeshare_drift",
            metadata={
                DRIFT_SHARE: share,
                THRESHOLD: 0.75,
                DRIFT_DETECTED: share >= 0.75,
                RESULT_ID: result_id,
            },
        )
    )


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    return defs.resolve_sensor_def(SENSOR).evaluate_tick(context)


def test_drift_above_threshold_requests_retraining_keyed_by_result(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    record_drift(instance, 0.83, "abc123")
    result = tick(defs, instance, None)
    assert [r.run_key for r in result.run_requests] == ["bikeshare_drift:abc123"]
    assert result.run_requests[0].tags["ingestion/drift_result"] == "abc123"
    assert defs.resolve_sensor_def(SENSOR).job_name == "retrain_bikeshare_demand"


def test_each_drift_event_is_read_once(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    record_drift(instance, 0.9, "first")
    first = tick(defs, instance, None)
    again = tick(defs, instance, first.cursor)
    assert len(first.run_requests) == 1
    assert not again.run_requests


def test_same_drift_result_gives_the_same_run_key(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    """Re-materializing an unchanged comparison must not retrain twice: the key repeats."""
    record_drift(instance, 0.9, "same")
    first = tick(defs, instance, None)
    record_drift(instance, 0.9, "same")
    second = tick(defs, instance, first.cursor)
    assert second.run_requests[0].run_key == first.run_requests[0].run_key


def test_drift_below_threshold_is_skipped(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    record_drift(instance, 0.5, "low")
    result = tick(defs, instance, None)
    assert not result.run_requests
    assert "below the threshold" in (result.skip_message or "")
