from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import dagster as dg
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from pydantic import PrivateAttr

from ingestion_project.catalog.spec import DatasetSpec, RegistrySpec
from ingestion_project.datasets.assets import build_dataset_assets
from ingestion_project.datasets.snapshot import new_snapshot_token, snapshot_prefix
from ingestion_project.datasets.versions import (
    DatasetError,
    DatasetRegistry,
    Registration,
    SnapshotChangedError,
    dataset_registry,
    load_version,
    logical_paths,
    register_file_dataset,
    version_files,
)
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.records import ManifestEntry
from ingestion_project_tests.datasets.dataset_helpers import CountingDatastore, bump_mtime, write

NAME = "rides"
JAN = "id,temp\n1,0.5\n2,1.5\n"
FEB = "id,temp\n3,2.5\n"
SPEC = DatasetSpec(datastore="landing", path="rides/*.csv", mode="snapshot", path_column="file")


@pytest.fixture
def registry_root(tmp_path: Path) -> Path:
    return tmp_path / "reg"


@pytest.fixture
def registry_store(registry_root: Path) -> CountingDatastore:
    return CountingDatastore(name="registry", root=str(registry_root))


@pytest.fixture
def registry(registry_store: CountingDatastore) -> DatasetRegistry:
    return dataset_registry(registry_store, "_reg")


def snapshot(
    store: LocalDatastore,
    registry: DatasetRegistry,
    spec: DatasetSpec = SPEC,
    **options: object,
) -> Registration:
    return register_file_dataset(
        NAME,
        spec,
        store,
        registry,
        run_id="r",
        code_version="c",
        snapshot_store=registry.store,
        snapshot_store_name="registry",
        **options,  # type: ignore[arg-type]
    )


def snapshot_files_on_disk(registry_root: Path) -> list[str]:
    folder = registry_root / "_reg" / "snapshots"
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_snapshot_prefix_puts_each_version_in_its_own_token_folder() -> None:
    first, second = new_snapshot_token(), new_snapshot_token()

    assert first != second
    assert snapshot_prefix("_registry/", "rides", first) == f"_registry/snapshots/rides/{first}"
    assert snapshot_prefix("", "rides", first) == f"snapshots/rides/{first}"


def test_a_snapshot_copies_each_file_and_pins_the_copies(
    store: CountingDatastore,
    registry_store: CountingDatastore,
    registry: DatasetRegistry,
    landing: Path,
) -> None:
    write(landing, "rides/2011-01.csv", JAN)
    write(landing, "rides/2011-02.csv", FEB)

    outcome = snapshot(store, registry, upstream=[{"dataset": "raw", "version": 3}])

    record = outcome.record
    folder = record.snapshot_prefix or ""
    assert folder.startswith("_reg/snapshots/rides/")
    assert record.mode == "snapshot"
    assert record.manifest_store == "registry"
    assert record.datastore == "landing"
    assert [info.path for info in version_files(record)] == [
        f"{folder}/rides/2011-01.csv",
        f"{folder}/rides/2011-02.csv",
    ]
    assert version_files(record) == [
        registry_store.stat(info.path) for info in version_files(record)
    ]
    originals = store.list_files("rides/*.csv")
    assert record.source_manifest == [ManifestEntry.of(info) for info in originals]
    assert logical_paths(record) == ["rides/2011-01.csv", "rides/2011-02.csv"]
    assert record.row_count == 3
    assert record.lineage.upstream == [{"dataset": "raw", "version": 3}]
    assert outcome.frame is not None
    assert outcome.frame["file"].tolist() == ["rides/2011-01.csv"] * 2 + ["rides/2011-02.csv"]
    # The table was read from the copies, never from the originals a second time.
    assert store.opened == ["rides/2011-01.csv", "rides/2011-02.csv"]
    assert registry_store.opened == [info.path for info in version_files(record)]


def test_a_snapshot_still_loads_after_its_originals_change_or_vanish(
    store: CountingDatastore,
    registry_store: CountingDatastore,
    registry: DatasetRegistry,
    landing: Path,
) -> None:
    jan = write(landing, "rides/2011-01.csv", JAN)
    write(landing, "rides/2011-02.csv", FEB)
    record = snapshot(store, registry).record
    before = load_version(record, {"landing": store, "registry": registry_store})

    jan.write_text(JAN.replace("0.5", "9.5"))
    bump_mtime(jan)
    (landing / "rides" / "2011-02.csv").unlink()

    after = load_version(record, {"landing": store, "registry": registry_store}, SPEC)
    assert_frame_equal(after, before)
    assert after.temp.tolist() == [0.5, 1.5, 2.5]
    newer = snapshot(store, registry)
    assert newer.record.version == 2
    assert newer.frame is not None
    assert newer.frame["temp"].tolist() == [9.5, 1.5]


def test_an_unchanged_listing_copies_nothing_and_gives_no_new_version(
    store: CountingDatastore,
    registry_store: CountingDatastore,
    registry: DatasetRegistry,
    landing: Path,
    registry_root: Path,
) -> None:
    write(landing, "rides/2011-01.csv", JAN)
    first = snapshot(store, registry)
    copies = snapshot_files_on_disk(registry_root)
    opened, written = list(store.opened), list(registry_store.written)

    again = snapshot(store, registry)

    assert not again.created
    assert again.record == first.record
    assert store.opened == opened
    assert registry_store.written == written
    assert snapshot_files_on_disk(registry_root) == copies


def test_switching_a_dataset_to_snapshot_mode_registers_a_snapshot_version(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(landing, "rides/2011-01.csv", JAN)
    reference = snapshot(store, registry, DatasetSpec(datastore="landing", path="rides/*.csv"))

    snapped = snapshot(store, registry)

    assert reference.record.mode == "reference"
    assert snapped.created
    assert snapped.record.mode == "snapshot"


class FailingDatastore(CountingDatastore):
    """Fails while reading the n-th file, as a dropped connection would."""

    fail_on: str
    _reads: int = PrivateAttr(default=0)

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        if path == self.fail_on:
            raise ConnectionError(f"connection reset while reading {path}")
        with super().open_read(path) as stream:
            yield stream


class UndeletableDatastore(CountingDatastore):
    def delete(self, path: str) -> None:
        raise PermissionError(f"no permission to delete {path}")


def test_a_failure_midway_leaves_no_version_and_removes_the_copies(
    registry: DatasetRegistry, landing: Path, registry_root: Path
) -> None:
    write(landing, "rides/2011-01.csv", JAN)
    write(landing, "rides/2011-02.csv", FEB)
    failing = FailingDatastore(name="landing", root=str(landing), fail_on="rides/2011-02.csv")

    with pytest.raises(ConnectionError, match="2011-02"):
        snapshot(failing, registry)

    assert registry.latest(NAME) is None
    assert snapshot_files_on_disk(registry_root) == []


def test_copies_that_cannot_be_removed_are_noted_on_the_error(
    landing: Path, registry_root: Path
) -> None:
    write(landing, "rides/2011-01.csv", JAN)
    write(landing, "rides/2011-02.csv", FEB)
    failing = FailingDatastore(name="landing", root=str(landing), fail_on="rides/2011-02.csv")
    target = UndeletableDatastore(name="registry", root=str(registry_root))
    registry = dataset_registry(target, "_reg")

    with pytest.raises(ConnectionError) as raised:
        snapshot(failing, registry)

    notes = " ".join(getattr(raised.value, "__notes__", []))
    assert "orphaned snapshot copies in datastore 'registry'" in notes
    assert "no version references them" in notes
    assert registry.latest(NAME) is None
    orphans = snapshot_files_on_disk(registry_root)
    assert len(orphans) == 1
    assert orphans[0].endswith("rides/2011-01.csv")


def test_a_bad_file_after_copying_leaves_no_version_and_no_copies(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path, registry_root: Path
) -> None:
    write(landing, "rides/2011-01.csv", JAN)
    write(landing, "rides/2011-02.csv", "id,temperature\n3,2.5\n")

    with pytest.raises(DatasetError, match="different columns"):
        snapshot(store, registry)

    assert registry.latest(NAME) is None
    assert snapshot_files_on_disk(registry_root) == []


@pytest.mark.parametrize("damage", ["modified", "deleted"])
def test_an_edited_snapshot_copy_is_detected_and_a_fresh_snapshot_repairs_it(
    store: CountingDatastore,
    registry_store: CountingDatastore,
    registry: DatasetRegistry,
    landing: Path,
    registry_root: Path,
    damage: str,
) -> None:
    write(landing, "rides/2011-01.csv", JAN)
    record = snapshot(store, registry).record
    copy = registry_root / version_files(record)[0].path
    if damage == "modified":
        copy.write_text(JAN.replace("0.5", "9.5"))
        bump_mtime(copy)
    else:
        copy.unlink()

    with pytest.raises(SnapshotChangedError) as raised:
        load_version(record, registry_store)

    message = str(raised.value)
    assert "dataset 'rides' version 1 is a snapshot" in message
    assert "copies in datastore 'registry'" in message
    assert f"{version_files(record)[0].path} ({damage})" in message
    assert "must never be edited" in message
    repaired = snapshot(store, registry)
    assert repaired.created
    assert repaired.record.version == 2
    assert repaired.record.snapshot_prefix != record.snapshot_prefix
    assert load_version(repaired.record, registry_store)["temp"].tolist() == [0.5, 1.5]


def test_a_snapshot_needs_its_own_store_to_load(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(landing, "rides/2011-01.csv", JAN)
    record = snapshot(store, registry).record

    with pytest.raises(DatasetError, match="is a snapshot kept in datastore 'registry'"):
        load_version(record, store)
    with pytest.raises(DatasetError, match="keeps its files in datastore 'registry'"):
        load_version(record, {"landing": store})


def test_snapshot_mode_without_a_snapshot_store_name_is_refused(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(landing, "rides/2011-01.csv", JAN)

    with pytest.raises(DatasetError, match="no snapshot datastore was named"):
        register_file_dataset(NAME, SPEC, store, registry, run_id="r", code_version="c")


def test_a_partitioned_snapshot_reads_partitions_from_the_original_paths(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(landing, "by_day/2024/01/31/a.csv", "n\n1\n")
    spec = DatasetSpec(
        datastore="landing",
        partition_format="by_day/{day:yyyy/MM/dd}/a.csv",
        path_column="file",
        mode="snapshot",
    )

    record = snapshot(store, registry, spec).record
    (landing / "by_day" / "2024" / "01" / "31" / "a.csv").unlink()

    loaded = load_version(record, registry.store)
    assert_frame_equal(
        loaded,
        pd.DataFrame(
            {
                "n": [1],
                "day": pd.Series([pd.Timestamp("2024-01-31")], dtype="datetime64[ns]"),
                "file": ["by_day/2024/01/31/a.csv"],
            }
        ),
    )


def test_a_file_dataset_snapshot_copies_files_without_a_schema(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path, registry_root: Path
) -> None:
    write(landing, "docs/a.pdf", "%PDF-1")
    spec = DatasetSpec(kind="file", datastore="landing", path="docs/*.pdf", mode="snapshot")

    record = snapshot(store, registry, spec).record

    assert record.table_schema is None
    assert (registry_root / version_files(record)[0].path).read_text() == "%PDF-1"


def test_the_asset_snapshots_into_the_registry_store_it_requires(
    store: CountingDatastore,
    registry_store: CountingDatastore,
    landing: Path,
    registry_root: Path,
) -> None:
    write(landing, "rides/2011-01.csv", JAN)
    asset = build_dataset_assets(
        "datasets", {NAME: SPEC}, RegistrySpec(datastore="registry", prefix="_reg"), {NAME: "v"}
    )
    instance = dg.DagsterInstance.ephemeral()
    resources = {"landing": store, "registry": registry_store}

    first = dg.materialize([asset], resources=resources, instance=instance)
    second = dg.materialize([asset], resources=resources, instance=instance)

    assert {"landing", "registry"} <= asset.required_resource_keys
    assert asset.specs_by_key[dg.AssetKey(NAME)].metadata["mode"] == "snapshot"
    metadata = first.asset_materializations_for_node("datasets")[0].metadata
    assert metadata["mode"].value == "snapshot"
    assert metadata["snapshot_datastore"].value == "registry"
    assert metadata["dagster/row_count"].value == 2
    assert "upstream" not in metadata, "an empty lineage is left out, not shown as []"
    assert [row.data["path"] for row in metadata["file_list"].value.records] == [
        "rides/2011-01.csv"
    ]
    again = second.asset_materializations_for_node("datasets")[0].metadata
    assert again["new_version"].value is False
    assert len(snapshot_files_on_disk(registry_root)) == 1


class RacingDatastore(CountingDatastore):
    """Runs a competing registration of the same files while our copy is being made."""

    _race: list[object] = PrivateAttr(default_factory=list)

    def race_with(self, competitor: object) -> None:
        self._race.append(competitor)

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        if self._race:
            self._race.pop()()  # type: ignore[operator]
        with super().open_read(path) as stream:
            yield stream


def test_a_racer_that_snapshots_the_same_files_first_wins_and_our_copies_go(
    registry: DatasetRegistry, landing: Path, registry_root: Path
) -> None:
    write(landing, "rides/2011-01.csv", JAN)
    source = RacingDatastore(name="landing", root=str(landing))
    racer: list[Registration] = []
    source.race_with(lambda: racer.append(snapshot(source, registry)))

    ours = snapshot(source, registry)

    assert racer[0].created
    assert not ours.created
    assert ours.record == racer[0].record
    assert registry.version_numbers(NAME) == [1]
    assert snapshot_files_on_disk(registry_root) == [
        f"rides/{(racer[0].record.snapshot_prefix or '').rsplit('/', 1)[1]}/rides/2011-01.csv"
    ]


def test_checks_on_a_snapshot_read_the_copies_after_the_originals_are_gone(
    store: CountingDatastore, registry_store: CountingDatastore, landing: Path
) -> None:
    write(landing, "rides/2011-01.csv", JAN)
    spec = DatasetSpec.model_validate(
        {**SPEC.model_dump(), "checks": [{"not_null": ["id"]}, {"between": {"temp": [0, 2]}}]}
    )
    registry_spec = RegistrySpec(datastore="registry", prefix="_reg")
    asset = build_dataset_assets("datasets", {NAME: spec}, registry_spec, {NAME: "v"})
    resources = {"landing": store, "registry": registry_store}
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([asset], resources=resources, instance=instance).success
    (landing / "rides" / "2011-01.csv").unlink()

    # Only the checks run: the version was judged by these very checks when it was recorded.
    same = dg.materialize(
        [asset],
        resources=resources,
        instance=instance,
        selection=dg.AssetSelection.checks_for_assets(NAME),
    )
    # A check declared since runs on the version's snapshot copies, not the (deleted) originals.
    stricter = DatasetSpec.model_validate(
        {**SPEC.model_dump(), "checks": [{"not_null": ["id"]}, {"between": {"temp": [0, 1]}}]}
    )
    changed = dg.materialize(
        [build_dataset_assets("datasets", {NAME: stricter}, registry_spec, {NAME: "v"})],
        resources=resources,
        instance=instance,
        selection=dg.AssetSelection.checks_for_assets(NAME),
        raise_on_error=False,
    )

    assert {(e.check_name, e.passed) for e in same.get_asset_check_evaluations()} == {
        ("not_null", True),
        ("between", True),
    }
    assert {(e.check_name, e.passed) for e in changed.get_asset_check_evaluations()} == {
        ("not_null", True),
        ("between", False),
    }
