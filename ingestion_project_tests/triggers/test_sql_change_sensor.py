"""The SQL change sensor fires once per change of the tables behind a query (real servers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest

from ingestion_project.catalog.spec import DataChangeTrigger, DatasetSpec
from ingestion_project.datastores.base import DatastoreError
from ingestion_project.triggers.change_cursor import ChangeCursor, WatchCursor
from ingestion_project.triggers.data_change import (
    WatchedDataset,
    build_data_change_sensor,
    data_change_sensor_name,
)
from ingestion_project_tests.datasets.test_sql_datasets import ROWS, SOURCE, SqlTable, sql_table

NAME = "orders"
SENSOR = data_change_sensor_name("catalog", "30s")


@pytest.fixture(params=["postgresql", "mysql"])
def source(request: pytest.FixtureRequest) -> Iterator[SqlTable]:
    with sql_table(request.param, ROWS) as space:
        yield space


@pytest.fixture
def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.ephemeral()


def spec_for(source: SqlTable, tables: list[str] | None = None) -> DatasetSpec:
    return DatasetSpec(
        datastore=SOURCE,
        query=f"SELECT id, name FROM {source.table} WHERE id >= :low ORDER BY id",
        params={"low": 2},
        tables=tables or [source.table],
        trigger=DataChangeTrigger.model_validate({"data_change": {"every": "30s"}}),
    )


def definitions(source: SqlTable, spec: DatasetSpec) -> dg.Definitions:
    @dg.asset(name=NAME)
    def orders() -> None:
        """Stands in for the dataset's asset; the sensor only targets it."""

    return dg.Definitions(
        assets=[orders],
        sensors=[build_data_change_sensor(SENSOR, [WatchedDataset(NAME, spec, (NAME,))])],
        resources={SOURCE: source.store},
    )


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    """One tick as the daemon runs it: the SQL store's pool is disposed when the tick ends."""
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=dict(defs.resources or {})
    ) as context:
        return defs.resolve_sensor_def(SENSOR).evaluate_tick(context)


def requests(result: Any) -> list[dg.RunRequest]:
    return list(result.run_requests or [])


def test_first_tick_requests_a_run_keyed_by_the_query_fingerprint(
    source: SqlTable, instance: dg.DagsterInstance
) -> None:
    spec = spec_for(source)
    defs = definitions(source, spec)

    result = tick(defs, instance, None)

    expected = source.store.query_fingerprint(spec.query or "", spec.params, tables=spec.tables)
    assert WatchCursor.parse(result.cursor).datasets[NAME] == ChangeCursor(expected, 1)
    assert [request.run_key for request in requests(result)] == [f"{NAME}:1:{expected}"]
    tags = requests(result)[0].tags
    assert tags["ingestion/dataset"] == NAME
    assert tags["ingestion/fingerprint"] == expected[:16]
    sensor = defs.resolve_sensor_def(SENSOR)
    assert sensor.asset_selection is not None
    assert sensor.asset_selection.resolve(defs.resolve_asset_graph()) == {dg.AssetKey(NAME)}
    assert sensor.minimum_interval_seconds == 30


def test_unchanged_tables_skip_and_a_change_fires_with_a_new_key(
    source: SqlTable, instance: dg.DagsterInstance
) -> None:
    defs = definitions(source, spec_for(source))
    first = tick(defs, instance, None)

    unchanged = tick(defs, instance, first.cursor)
    assert not unchanged.run_requests
    assert "unchanged" in (unchanged.skip_message or "")
    assert unchanged.cursor in (None, first.cursor)

    source.insert([{"id": 6, "name": "dora", "amount": 6.5, "qty": 2}])
    changed = tick(defs, instance, first.cursor)
    assert len(requests(changed)) == 1
    fingerprint = WatchCursor.parse(changed.cursor).datasets[NAME].fingerprint
    assert requests(changed)[0].run_key == f"{NAME}:2:{fingerprint}"
    assert changed.cursor != first.cursor

    source.execute(f"UPDATE {source.table} SET name = 'eve' WHERE id = 6")
    updated = tick(defs, instance, changed.cursor)
    assert len(requests(updated)) == 1
    assert updated.cursor not in (first.cursor, changed.cursor)
    assert not tick(defs, instance, updated.cursor).run_requests


def test_a_missing_table_fails_the_tick_naming_the_dataset(
    source: SqlTable, instance: dg.DagsterInstance
) -> None:
    defs = definitions(source, spec_for(source, tables=[f"{source.table}_gone"]))
    with pytest.raises(DatastoreError, match=f"dataset '{NAME}': cannot tell whether") as caught:
        tick(defs, instance, None)
    assert f"{source.table}_gone" in str(caught.value)
