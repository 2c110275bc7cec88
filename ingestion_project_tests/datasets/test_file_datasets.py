from pathlib import Path

import dagster as dg
import pytest

from ingestion_project.catalog.spec import DatasetSpec, RegistrySpec
from ingestion_project.datasets.assets import VERSIONS_SHOWN, build_dataset_assets, dataset_metadata
from ingestion_project.datasets.versions import (
    DatasetError,
    DatasetRegistry,
    iter_version_batches,
    load_version,
    register_file_dataset,
    version_files,
)
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.records import ManifestEntry
from ingestion_project_tests.datasets.dataset_helpers import CountingDatastore, write

NAME = "images"


SPEC = DatasetSpec(kind="file", datastore="landing", path="photos/**/*.jpg")


def put_photos(landing: Path, count: int) -> None:
    for index in range(count):
        write(landing, f"photos/{index % 3}/p{index:02d}.jpg", "x" * (index + 1))


def test_a_file_dataset_records_its_files_without_reading_any(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    put_photos(landing, 4)
    write(landing, "photos/readme.txt", "not a photo")

    outcome = register_file_dataset(NAME, SPEC, store, registry, run_id="r", code_version="c")

    record = outcome.record
    assert store.opened == []
    assert outcome.created
    assert outcome.frame is None
    assert record.kind == "file"
    assert record.mode == "reference"
    assert record.manifest == [ManifestEntry.of(info) for info in store.list_files(SPEC.path or "")]
    assert record.bytes == 1 + 2 + 3 + 4
    assert version_files(record) == store.list_files(SPEC.path or "")
    assert (record.table_schema, record.profile, record.row_count) == (None, None, None)
    assert registry.latest(NAME) == record


def test_an_unchanged_file_dataset_gives_no_new_version_and_a_new_file_does(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    put_photos(landing, 2)
    first = register_file_dataset(NAME, SPEC, store, registry, run_id="r", code_version="c")
    again = register_file_dataset(NAME, SPEC, store, registry, run_id="r", code_version="c")
    write(landing, "photos/9/new.jpg", "new")
    newer = register_file_dataset(NAME, SPEC, store, registry, run_id="r", code_version="c")

    assert not again.created
    assert again.record == first.record
    assert newer.created
    assert newer.record.version == 2
    assert len(newer.record.manifest) == 3
    assert store.opened == []


def test_a_file_dataset_has_no_table_to_load(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    put_photos(landing, 1)
    record = register_file_dataset(NAME, SPEC, store, registry, run_id="r", code_version="c").record

    for attempt in (
        lambda: load_version(record, store),
        lambda: list(iter_version_batches(record, store)),
    ):
        with pytest.raises(DatasetError) as raised:
            attempt()
        assert "dataset 'images' is a file dataset (kind: file)" in str(raised.value)
        assert "version_files()" in str(raised.value)
    assert store.opened == []


def test_the_asset_of_a_file_dataset_shows_files_and_bytes_not_rows(
    store: CountingDatastore, registry_store: LocalDatastore, landing: Path
) -> None:
    put_photos(landing, 25)
    asset = build_dataset_assets(
        "datasets", {NAME: SPEC}, RegistrySpec(datastore="registry", prefix="_reg"), {NAME: "v"}
    )

    result = dg.materialize(
        [asset],
        resources={"landing": store, "registry": registry_store},
        instance=dg.DagsterInstance.ephemeral(),
    )

    assert result.success
    assert store.opened == []
    metadata = result.asset_materializations_for_node("datasets")[0].metadata
    assert metadata["kind"].value == "file"
    assert metadata["mode"].value == "reference"
    assert metadata["files"].value == 25
    assert metadata["bytes"].value == sum(range(1, 26))
    listing = metadata["file_list"]
    assert isinstance(listing, dg.TableMetadataValue)
    assert listing.schema is not None
    assert [column.name for column in listing.schema.columns] == ["path", "bytes", "modified"]
    assert [row.data["path"] for row in listing.records][:1] == ["photos/0/p00.jpg"]
    assert len(listing.records) == 20
    assert metadata["file_list_note"].value == "the first 20 of 25 files"
    for absent in ("dagster/row_count", "dagster/column_schema", "profile"):
        assert absent not in metadata
    assert asset.specs_by_key[dg.AssetKey(NAME)].kinds == {"files"}


def test_the_versions_table_reads_only_the_versions_it_shows(
    store: CountingDatastore,
    registry: DatasetRegistry,
    landing: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for count in range(1, VERSIONS_SHOWN + 3):
        put_photos(landing, count)
        outcome = register_file_dataset(NAME, SPEC, store, registry, run_id="r", code_version="c")
    read: list[int] = []
    get = registry.get

    def counting_get(name: str, version: int):
        read.append(version)
        return get(name, version)

    monkeypatch.setattr(registry, "get", counting_get)

    table = dataset_metadata(outcome, registry)["versions"]

    shown = [row.data["version"] for row in table.records]
    assert shown == list(range(VERSIONS_SHOWN + 2, 2, -1))
    assert sorted(read) == list(range(3, VERSIONS_SHOWN + 3))
