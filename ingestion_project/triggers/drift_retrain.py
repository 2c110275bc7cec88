"""The sensor that turns a drift result above its threshold into exactly one retraining run."""

import dagster as dg

from ingestion_project.monitoring.assets import DRIFT_DETECTED, DRIFT_SHARE, RESULT_ID, THRESHOLD


def retrain_sensor_name(monitor: str) -> str:
    return f"{monitor}_retrain_sensor"


def build_retrain_sensor(monitor: str, job_name: str) -> dg.SensorDefinition:
    """Reads each new drift materialization once; the run key is the drift result's id."""

    @dg.asset_sensor(
        asset_key=dg.AssetKey(monitor),
        job_name=job_name,
        name=retrain_sensor_name(monitor),
        description=f"Requests {job_name} when '{monitor}' records drift at or above its "
        "threshold; one run per drift result.",
    )
    def retrain_sensor(
        context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry
    ) -> dg.RunRequest | dg.SkipReason:
        materialization = asset_event.asset_materialization
        if materialization is None:
            return dg.SkipReason(f"No materialization of '{monitor}' in this event.")
        metadata = {key: value.value for key, value in materialization.metadata.items()}
        share, threshold = metadata.get(DRIFT_SHARE), metadata.get(THRESHOLD)
        if not metadata.get(DRIFT_DETECTED):
            return dg.SkipReason(
                f"Drift share {share} is below the threshold {threshold}: no retraining."
            )
        return dg.RunRequest(
            run_key=f"{monitor}:{metadata[RESULT_ID]}",
            tags={"ingestion/monitor": monitor, "ingestion/drift_result": str(metadata[RESULT_ID])},
        )

    return retrain_sensor
