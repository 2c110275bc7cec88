"""Sensors that fire when the files behind a dataset change, judged from listings alone."""

from collections.abc import Sequence

import dagster as dg

from ingestion_project.catalog.spec import DataChangeTrigger, DatasetSpec
from ingestion_project.datasets.fingerprint import listing_fingerprint
from ingestion_project.triggers.change_cursor import change_result


def data_change_sensor_name(dataset: str) -> str:
    return f"{dataset}_data_change_sensor"


def build_data_change_sensor(
    name: str, spec: DatasetSpec, selection: Sequence[str]
) -> dg.SensorDefinition:
    """One run per change of the listing (see change_cursor): never twice for the same state.

    Its runs materialize ``selection``: the dataset and what scores or monitors it.
    """
    trigger = spec.trigger
    assert isinstance(trigger, DataChangeTrigger)
    assert spec.path is not None
    path = spec.path

    @dg.sensor(
        name=data_change_sensor_name(name),
        asset_selection=dg.AssetSelection.assets(*selection),
        minimum_interval_seconds=trigger.interval_seconds,
        required_resource_keys={spec.datastore},
        description=f"Refreshes '{name}' when files matching '{path}' in '{spec.datastore}' "
        "are added, removed or changed.",
    )
    def data_change_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        files = getattr(context.resources, spec.datastore).list_files(path)
        if not files:
            return dg.SkipReason(f"No files match '{path}' in '{spec.datastore}' yet.")
        return change_result(
            name,
            context.cursor,
            listing_fingerprint(files),
            f"'{name}' unchanged ({len(files)} files).",
        )

    return data_change_sensor
