"""A data-change tick uses the Definitions' own datastores, so Dagster opens no instance for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ingestion_project.catalog.spec import DataChangeTrigger, DatasetSpec
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.triggers.data_change import WatchedDataset, build_data_change_sensor
from ingestion_project.triggers.tick_stores import TickStores
from ingestion_project_tests.triggers.code_server import code_server_tick, unopenable_instance_ref

SENSOR = "lake__data_change_every_60s"


@pytest.fixture
def unopenable_instance(tmp_path: Path) -> Any:
    return unopenable_instance_ref(tmp_path)


def run_keys(result: Any) -> list[list[str]]:
    """Each requested run's key as (dataset, change count, fingerprint)."""
    return [str(request.run_key).split(":") for request in result.run_requests or []]


def lake(tmp_path: Path, *, given: bool) -> tuple[dg.Definitions, Path]:
    """One watched dataset in a local store, the store given to the sensor or declared."""
    root = tmp_path / "lake"
    (root / "trips").mkdir(parents=True)
    store = LocalDatastore(name="lake", root=str(root))
    spec = DatasetSpec(datastore="lake", path="trips/*.csv", trigger=DataChangeTrigger())
    sensor = build_data_change_sensor(
        SENSOR,
        [WatchedDataset("trips", spec, ("trips",))],
        datastores={"lake": store} if given else None,
    )
    defs = dg.Definitions(
        assets=[dg.AssetSpec("trips")], sensors=[sensor], resources={"lake": store}
    )
    return defs, root / "trips"


def test_the_catalogs_data_change_sensors_declare_no_resources(defs: dg.Definitions) -> None:
    sensors = [s for s in defs.sensors or [] if "__data_change_every_" in s.name]
    assert sensors
    assert all(not sensor.required_resource_keys for sensor in sensors)


def test_a_tick_of_the_catalogs_sensor_opens_no_instance(
    defs: dg.Definitions, unopenable_instance: Any
) -> None:
    (sensor,) = [s for s in defs.sensors or [] if s.name == "catalog__data_change_every_30s"]
    result = code_server_tick(defs, sensor.name, unopenable_instance)
    assert [key[0] for key in run_keys(result)] == ["bikeshare_scoring"]


def test_a_sensor_that_declares_its_store_needs_the_instance(
    tmp_path: Path, unopenable_instance: Any
) -> None:
    """The contrast that shows the instance above would have been opened, and failed."""
    defs, folder = lake(tmp_path, given=False)
    (folder / "a.csv").write_text("id\n1\n")
    with pytest.raises(FileExistsError):
        code_server_tick(defs, SENSOR, unopenable_instance)


def test_a_given_store_keeps_run_keys_and_cursor(tmp_path: Path, unopenable_instance: Any) -> None:
    defs, folder = lake(tmp_path, given=True)
    empty = code_server_tick(defs, SENSOR, unopenable_instance)
    (folder / "a.csv").write_text("id\n1\n")
    sensor = defs.resolve_sensor_def(SENSOR)

    def tick(cursor: str | None):
        with dg.build_sensor_context(
            instance_ref=unopenable_instance, definitions=defs, cursor=cursor
        ) as context:
            return sensor.evaluate_tick(context)

    first = tick(empty.cursor)
    again = tick(first.cursor)
    assert not empty.run_requests
    assert [key[:2] for key in run_keys(first)] == [["trips", "1"]]
    assert not again.run_requests and again.cursor == first.cursor


def test_resources_handed_to_an_evaluation_win_over_the_given_store(tmp_path: Path) -> None:
    given = LocalDatastore(name="lake", root=str(tmp_path / "nothing_here"))
    handed = LocalDatastore(name="lake", root=str(tmp_path / "files"))
    (tmp_path / "files" / "trips").mkdir(parents=True)
    (tmp_path / "files" / "trips" / "a.csv").write_text("id\n1\n")
    spec = DatasetSpec(datastore="lake", path="trips/*.csv", trigger=DataChangeTrigger())
    sensor = build_data_change_sensor(
        SENSOR, [WatchedDataset("trips", spec, ("trips",))], datastores={"lake": given}
    )
    defs = dg.Definitions(
        assets=[dg.AssetSpec("trips")], sensors=[sensor], resources={"lake": given}
    )
    with dg.build_sensor_context(definitions=defs, resources={"lake": handed}) as context:
        result = sensor.evaluate_tick(context)
    assert [key[0] for key in run_keys(result)] == ["trips"]


def test_only_stores_not_given_are_declared() -> None:
    store = LocalDatastore(name="lake", root="unused")
    stores = TickStores({"lake", "registry"}, {"lake": store, "elsewhere": store})
    assert stores.required_resource_keys == {"registry"}
