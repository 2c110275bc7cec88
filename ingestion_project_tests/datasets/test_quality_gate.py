"""Versions are judged by their checks before they are recorded: files, snapshots, SQL, Dagster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets.sql_datasets import register_sql_dataset
from ingestion_project.datasets.versions import (
    DatasetRegistry,
    Registration,
    dataset_registry,
    load_columns,
    load_version,
    register_file_dataset,
)
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.quality.gate import checks_fingerprint
from ingestion_project_tests.catalogs import (
    catalog_definitions,
    materialization_metadata,
    materialize,
)
from ingestion_project_tests.datasets.dataset_helpers import CountingDatastore, bump_mtime, write
from ingestion_project_tests.datasets.test_sql_datasets import SNAPSHOTS, SqlTable, sql_table

NAME = "rides"
CHECKS: list[dict[str, Any]] = [
    {"columns": ["id", "temp", "riders"]},
    {"between": {"temp": [0, 1]}},
]
GOOD = "id,temp,riders\n1,0.5,3\n2,0.7,4\n"
HOT = "id,temp,riders\n3,0.6,5\n4,41.0,6\n"
NO_TEMP = "id,riders\n1,3\n2,4\n"


def checked(checks: list[dict[str, Any]] = CHECKS, **options: Any) -> DatasetSpec:
    return DatasetSpec.model_validate(
        {"datastore": "landing", "path": "rides/*.csv", "checks": checks, **options}
    )


def register(
    store: LocalDatastore, registry: DatasetRegistry, spec: DatasetSpec | None = None
) -> Registration:
    spec = spec or checked()
    snapshot = spec.effective_mode == "snapshot"
    return register_file_dataset(
        NAME,
        spec,
        store,
        registry,
        run_id="run-1",
        code_version="code-v1",
        snapshot_store=registry.store if snapshot else None,
        snapshot_store_name=registry.store.store_name if snapshot else None,
    )


def stored_json(registry: DatasetRegistry, version: int) -> dict[str, Any]:
    return json.loads(registry.store.read_bytes(f"_reg/datasets/{NAME}/v{version:06d}.json"))


def test_out_of_range_values_register_a_failed_version_that_is_never_the_latest(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(landing, "rides/a.csv", GOOD)
    first = register(store, registry).record
    hot = write(landing, "rides/b.csv", HOT)

    second = register(store, registry)

    assert first.passed and second.created and not second.record.passed
    quality = second.record.quality
    assert quality is not None
    assert quality.failed_checks == ["between"]
    assert quality.checks_fingerprint == checks_fingerprint(checked())
    (failure,) = quality.failures
    assert (failure.check, failure.column, failure.unexpected_count) == ("between", "temp", 1)
    assert failure.examples == ["41.0"]
    # The one write of the record already held the verdict: no version is ever visible unjudged.
    assert stored_json(registry, 2)["quality"]["status"] == "failed"
    assert registry.latest(NAME) == first
    assert registry.latest(NAME, include_failed=True) == second.record
    assert load_version(registry.get(NAME, 2), store)["temp"].max() == 41.0

    read_before = list(store.opened)
    again = register(store, registry)
    assert not again.created and again.record == second.record
    assert store.opened == read_before  # unchanged files are neither read nor judged again
    assert registry.version_numbers(NAME) == [1, 2]

    hot.write_text(HOT.replace("41.0", "0.9"))
    bump_mtime(hot)
    third = register(store, registry)
    assert third.created and third.record.version == 3 and third.record.passed
    assert registry.latest(NAME) == third.record


def test_a_column_that_disappears_fails_the_columns_check(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    source = write(landing, "rides/a.csv", GOOD)
    register(store, registry)
    source.write_text(NO_TEMP)
    bump_mtime(source)

    failed = register(store, registry).record

    assert failed.version == 2 and not failed.passed
    assert failed.quality is not None
    # The range check cannot run on a column that is gone: it fails too, saying why.
    assert failed.quality.failed_checks == ["columns", "between"]
    columns = [item for item in failed.quality.failures if item.check == "columns"]
    assert [(item.column, item.expectation) for item in columns] == [
        ("temp", "expect_column_to_exist")
    ]
    latest = registry.latest(NAME)
    assert latest is not None and latest.version == 1


def test_a_failed_version_is_judged_again_once_its_checks_change(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(landing, "rides/a.csv", HOT)
    failed = register(store, registry).record
    relaxed = checked([{"columns": ["id", "temp", "riders"]}, {"between": {"temp": [0, 50]}}])

    judged = register(store, registry, relaxed)

    assert not failed.passed
    assert judged.created and judged.record.version == 2 and judged.record.passed
    assert judged.record.fingerprint == failed.fingerprint  # same data, a new verdict
    assert not register(store, registry, relaxed).created
    # A version that passed is not registered again when its checks change.
    assert not register(store, registry, checked([{"not_null": ["id"]}])).created
    assert registry.version_numbers(NAME) == [1, 2]


def test_a_snapshot_that_fails_its_checks_keeps_its_copies_and_loads_by_number(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    original = write(landing, "rides/a.csv", HOT)

    outcome = register(store, registry, checked(mode="snapshot"))
    original.unlink()

    assert outcome.created and not outcome.record.passed
    assert registry.latest(NAME) is None
    loaded = load_version(registry.get(NAME, 1), registry.store)
    assert loaded["id"].tolist() == [3, 4]


class CrashingRegistryStore(LocalDatastore):
    """Dies writing a version record: after the files (and snapshot copies), before the record."""

    def write_bytes(self, path: str, data: bytes, *, overwrite: bool = True) -> None:
        if "/datasets/" in path and path.endswith(".json"):
            raise OSError(f"the process died while writing {path}")
        super().write_bytes(path, data, overwrite=overwrite)


@pytest.mark.parametrize("mode", ["reference", "snapshot"])
def test_a_crash_between_the_files_and_the_record_leaves_no_version(
    store: CountingDatastore, landing: Path, tmp_path: Path, mode: str
) -> None:
    write(landing, "rides/a.csv", HOT)
    registry = dataset_registry(
        CrashingRegistryStore(name="registry", root=str(tmp_path / "reg")), "_reg"
    )

    with pytest.raises(OSError, match="died"):
        register(store, registry, checked(mode=mode))

    assert registry.version_numbers(NAME) == []
    assert registry.latest(NAME, include_failed=True) is None


SQL_CHECKS: list[dict[str, Any]] = [
    {"columns": ["id", "amount", "qty"]},
    {"not_null": ["id"]},
    {"between": {"amount": [0, 100]}},
]
SQL_ROWS = [
    {"id": 1, "name": "anna", "amount": 1.5, "qty": 2},
    {"id": 2, "name": "bert", "amount": 20.0, "qty": 3},
]


@pytest.fixture
def postgres() -> Any:
    with sql_table("postgresql", SQL_ROWS) as space:
        yield space


def register_sql(space: SqlTable, snapshots: LocalDatastore) -> Registration:
    spec = DatasetSpec.model_validate(
        {
            "datastore": "warehouse",
            "query": f"SELECT * FROM {space.table} ORDER BY id",
            "checks": SQL_CHECKS,
        }
    )
    return register_sql_dataset(
        NAME,
        spec,
        space.store,
        dataset_registry(snapshots, "_registry"),
        snapshots,
        SNAPSHOTS,
        "_registry",
        run_id="run-1",
        code_version="code-v1",
    )


def test_a_sql_snapshot_is_judged_on_its_parts_before_its_record(
    postgres: SqlTable, tmp_path: Path
) -> None:
    snapshots = LocalDatastore(name=SNAPSHOTS, root=str(tmp_path / "store"))
    registry = dataset_registry(snapshots, "_registry")
    first = register_sql(postgres, snapshots).record
    postgres.insert([{"id": 3, "name": "cleo", "amount": 500, "qty": 1}])

    second = register_sql(postgres, snapshots).record

    assert first.passed and not second.passed
    assert second.quality is not None and second.quality.failed_checks == ["between"]
    (failure,) = second.quality.failures
    assert (failure.column, failure.unexpected_count) == ("amount", 1)
    assert failure.examples[0].startswith("500")
    assert registry.latest(NAME) == first
    # Judging reads back only the columns the checks name.
    assert list(load_columns(second, {SNAPSHOTS: snapshots}, None, {"amount", "gone"})) == [
        "amount"
    ]
    parts = snapshots.list_files("_registry/snapshots/**")

    again = register_sql(postgres, snapshots)
    assert not again.created and again.record == second
    assert snapshots.list_files("_registry/snapshots/**") == parts  # the re-read rows are dropped

    postgres.execute(f"DELETE FROM {postgres.table} WHERE id = 3")
    third = register_sql(postgres, snapshots).record
    assert third.version == 3 and third.passed and registry.latest(NAME) == third

    postgres.execute(f"ALTER TABLE {postgres.table} DROP COLUMN qty")
    fourth = register_sql(postgres, snapshots).record
    assert fourth.quality is not None and fourth.quality.failed_checks == ["columns"]
    assert registry.latest(NAME) == third


def rides_catalog(landing: Path) -> dict[str, Any]:
    return {
        "datastores": {"landing": {"kind": "local", "root": str(landing)}},
        "datasets": {"rides": {"datastore": "landing", "path": "rides/*.csv", "checks": CHECKS}},
        "models": {"demand": {"train_on": "rides", "target": "riders", "features": ["temp"]}},
    }


def test_a_failed_version_is_materialized_flagged_and_nothing_downstream_uses_it(
    tmp_path: Path, landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path / "home"))
    defs = catalog_definitions(rides_catalog(landing))
    write(landing, "rides/a.csv", HOT)
    instance = dg.DagsterInstance.ephemeral()

    result = materialize(defs, "rides", "demand", instance=instance, raise_on_error=False)

    metadata = materialization_metadata(result, "rides")
    assert (metadata["version"], metadata["quality"]) == (1, "failed")
    assert metadata["failed_checks"] == "between"
    assert "no version of it has passed its checks" in str(metadata["used_instead"])
    table = metadata["quality_failures"]
    assert [(row.data["check"], row.data["column"]) for row in table.records] == [
        ("between", "temp")
    ]
    outcomes = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert outcomes == {"columns": True, "between": False}
    failed = next(e for e in result.get_asset_check_evaluations() if not e.passed).metadata
    assert failed["failed_expectations"].value == 1
    assert isinstance(failed["failures"], dg.TableMetadataValue)
    assert [row.data["column"] for row in failed["failures"].records] == ["temp"]
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"rides"}  # the failed blocking check stopped the model

    # Run on its own, the model refuses the failed version and says what to do.
    with pytest.raises(Exception, match="has no version that passed its checks; version 1 failed"):
        materialize(defs, "demand", instance=instance)

    again = materialize(defs, "rides", instance=instance, raise_on_error=False)
    metadata = materialization_metadata(again, "rides")
    assert (metadata["version"], metadata["new_version"], metadata["quality"]) == (
        1,
        False,
        "failed",
    )
    evaluations = again.get_asset_check_evaluations()
    assert {(e.check_name, e.passed) for e in evaluations} == {
        ("columns", True),
        ("between", False),
    }


def test_a_failed_sql_version_is_flagged_in_the_run(
    postgres: SqlTable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    postgres.insert([{"id": 3, "name": "cleo", "amount": 500, "qty": 1}])
    catalog = {
        "datastores": {
            "warehouse": {
                "kind": "postgresql",
                "host": "127.0.0.1",
                "database": "test",
                "user": "postgres",
            }
        },
        "datasets": {
            "orders": {
                "datastore": "warehouse",
                "query": f"SELECT * FROM {postgres.table} ORDER BY id",
                "checks": SQL_CHECKS,
            }
        },
    }

    result = materialize(catalog_definitions(catalog), "orders", raise_on_error=False)

    metadata = materialization_metadata(result, "orders")
    assert (metadata["version"], metadata["quality"]) == (1, "failed")
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert [e.check_name for e in failed] == ["between"]
    assert failed[0].metadata["dataset_quality"].value == "FAILED checks: between"
