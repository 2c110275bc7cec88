"""Sensors that fire when the tables behind a SQL dataset change, judged without reading rows."""

from collections.abc import Sequence

import dagster as dg

from ingestion_project.catalog.spec import DataChangeTrigger, DatasetSpec
from ingestion_project.datastores.base import DatastoreError
from ingestion_project.datastores.sql import SqlDatastore
from ingestion_project.triggers.change_cursor import change_result
from ingestion_project.triggers.data_change import data_change_sensor_name


def build_sql_change_sensor(
    name: str, spec: DatasetSpec, selection: Sequence[str]
) -> dg.SensorDefinition:
    """One run per change of the tables behind the query (see change_cursor), never twice.

    The fingerprint comes from the query, its params and the declared tables' fingerprints
    (``SqlDatastore.query_fingerprint``), never from running the query itself.
    """
    trigger = spec.trigger
    assert isinstance(trigger, DataChangeTrigger)
    assert spec.query is not None and spec.tables, "validated by DatasetSpec"
    query, params, tables = spec.query, dict(spec.params), list(spec.tables)

    @dg.sensor(
        name=data_change_sensor_name(name),
        asset_selection=dg.AssetSelection.assets(*selection),
        minimum_interval_seconds=trigger.interval_seconds,
        required_resource_keys={spec.datastore},
        description=f"Refreshes '{name}' when rows of {', '.join(tables)} in "
        f"'{spec.datastore}' are inserted, updated or deleted.",
    )
    def sql_change_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        store: SqlDatastore = getattr(context.resources, spec.datastore)
        try:
            fingerprint = store.query_fingerprint(query, params, tables=tables)
        except DatastoreError as error:
            raise DatastoreError(
                f"dataset '{name}': cannot tell whether its tables changed: {error}",
                reason=error.reason,
            ) from error
        return change_result(
            name, context.cursor, fingerprint, f"'{name}' unchanged (tables: {', '.join(tables)})."
        )

    return sql_change_sensor
