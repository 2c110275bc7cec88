import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from pydantic import PrivateAttr

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets.formats import MalformedFileError
from ingestion_project.datasets.versions import (
    DatasetError,
    DatasetRegistry,
    DatasetVersionChangedError,
    Registration,
    dataset_registry,
    load_version,
    register_file_dataset,
)
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.records import (
    DatasetLineage,
    DatasetVersionRecord,
    ManifestEntry,
    ProfileRow,
    ReadOptions,
    SchemaColumn,
)

NAME = "rides"
CODE_VERSION = "code-v1"


class CountingDatastore(LocalDatastore):
    """A real local store that also remembers which files were opened for reading."""

    _opened: list[str] = PrivateAttr(default_factory=list)

    @property
    def opened(self) -> list[str]:
        return self._opened

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        self._opened.append(path)
        with super().open_read(path) as stream:
            yield stream


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture
def store(data_root: Path) -> CountingDatastore:
    return CountingDatastore(name="landing", root=str(data_root))


@pytest.fixture
def registry(tmp_path: Path) -> DatasetRegistry:
    return dataset_registry(LocalDatastore(name="registry", root=str(tmp_path / "reg")), "_reg")


def csv_spec(**options: object) -> DatasetSpec:
    return DatasetSpec(datastore="landing", path="data/*.csv", **options)


def register(
    store: LocalDatastore, registry: DatasetRegistry, spec: DatasetSpec | None = None
) -> Registration:
    return register_file_dataset(
        NAME, spec or csv_spec(), store, registry, run_id="run-1", code_version=CODE_VERSION
    )


def write(root: Path, relative: str, text: str) -> Path:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def bump_mtime(path: Path) -> None:
    """Move mtime forward so the ETag changes even when a fast test rewrites in the same tick."""
    stamp = path.stat().st_mtime_ns + 5_000_000_000
    os.utime(path, ns=(stamp, stamp))


JAN = "id,temp,station\n1,0.5,north\n2,,south\n3,1.5,north\n"
FEB = "id,temp,station\n4,2.5,east\n5,3.0,\n"


def test_first_registration_records_everything_about_the_files(
    store: CountingDatastore, registry: DatasetRegistry, data_root: Path
) -> None:
    write(data_root, "data/2011-01.csv", JAN)
    write(data_root, "data/2011-02.csv", FEB)
    write(data_root, "data/notes.txt", "not part of the dataset")

    outcome = register(store, registry)

    record = outcome.record
    assert outcome.created
    assert record.version == 1
    assert record.dataset == NAME
    assert record.mode == "reference"
    assert record.format == "csv"
    assert len(record.fingerprint) == 64
    listing = store.list_files("data/*.csv")
    assert record.manifest == [ManifestEntry.of(info) for info in listing]
    assert record.files() == listing
    assert [item.path for item in record.manifest] == ["data/2011-01.csv", "data/2011-02.csv"]
    assert [item.size for item in record.manifest] == [len(JAN), len(FEB)]
    assert all(item.etag for item in record.manifest)
    assert record.bytes == len(JAN) + len(FEB)
    assert record.row_count == 5
    assert record.table_schema == [
        SchemaColumn(name="id", type="int64"),
        SchemaColumn(name="temp", type="float64"),
        SchemaColumn(name="station", type="object"),
    ]
    assert record.lineage == DatasetLineage(run_id="run-1", code_version=CODE_VERSION, upstream=[])
    assert record.profile is not None
    profile = {row.column: row for row in record.profile}
    assert profile["id"] == ProfileRow(
        column="id", type="int64", nulls=0, distinct=5, min=1, max=5, mean=3
    )
    assert profile["temp"] == ProfileRow(
        column="temp", type="float64", nulls=1, distinct=4, min=0.5, max=3, mean=1.875
    )
    assert profile["station"].nulls == 1
    assert profile["station"].distinct == 3
    assert (profile["station"].min, profile["station"].max) == ("east", "south")
    assert profile["station"].mean is None
    assert registry.latest(NAME) == record
    assert outcome.frame is not None
    assert len(outcome.frame) == 5


def test_unchanged_data_is_not_read_and_gives_no_new_version(
    store: CountingDatastore, registry: DatasetRegistry, data_root: Path
) -> None:
    write(data_root, "data/2011-01.csv", JAN)
    first = register(store, registry)
    assert store.opened == ["data/2011-01.csv"]

    again = register(store, registry)

    assert not again.created
    assert again.frame is None
    assert again.record == first.record
    assert registry.version_numbers(NAME) == [1]
    assert store.opened == ["data/2011-01.csv"]


def test_a_new_file_is_a_new_version_and_the_old_version_still_loads(
    store: CountingDatastore, registry: DatasetRegistry, data_root: Path
) -> None:
    write(data_root, "data/2011-01.csv", JAN)
    first = register(store, registry).record
    write(data_root, "data/2011-02.csv", FEB)

    second = register(store, registry)

    assert second.created
    assert second.record.version == 2
    assert second.record.fingerprint != first.fingerprint
    assert second.record.row_count == 5
    assert registry.version_numbers(NAME) == [1, 2]
    old = load_version(registry.get(NAME, 1), store)
    assert old["id"].tolist() == [1, 2, 3]
    new = load_version(registry.get(NAME, 2), store)
    assert new["id"].tolist() == [1, 2, 3, 4, 5]
    assert_frame_equal(new, second.frame)


def test_loading_a_version_whose_file_was_modified_is_refused(
    store: CountingDatastore, registry: DatasetRegistry, data_root: Path
) -> None:
    pinned = write(data_root, "data/2011-01.csv", JAN)
    first = register(store, registry).record

    pinned.write_text(JAN.replace("0.5", "9.5"))
    bump_mtime(pinned)

    with pytest.raises(DatasetVersionChangedError) as raised:
        load_version(first, store)
    message = str(raised.value)
    assert f"dataset '{NAME}' version 1" in message
    assert "data/2011-01.csv (modified)" in message
    assert "Load a newer version" in message
    assert "materializing the dataset" in message


def test_loading_a_version_whose_file_was_deleted_is_refused(
    store: CountingDatastore, registry: DatasetRegistry, data_root: Path
) -> None:
    write(data_root, "data/2011-01.csv", JAN)
    write(data_root, "data/2011-02.csv", FEB)
    first = register(store, registry).record

    (data_root / "data" / "2011-02.csv").unlink()

    with pytest.raises(DatasetVersionChangedError, match=r"data/2011-02\.csv \(deleted\)"):
        load_version(first, store)


def test_a_changed_pinned_file_is_registered_as_a_new_version(
    store: CountingDatastore, registry: DatasetRegistry, data_root: Path
) -> None:
    pinned = write(data_root, "data/2011-01.csv", JAN)
    register(store, registry)
    pinned.write_text(JAN.replace("0.5", "9.5"))
    bump_mtime(pinned)

    second = register(store, registry)

    assert second.record.version == 2
    assert load_version(second.record, store)["temp"].tolist()[0] == 9.5


FRAME = pd.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "temp": [0.25, None, 1.5, 2.0],
        "station": ["north", "south", None, "east"],
        "busy": [True, False, True, False],
    }
)


def write_frame(frame: pd.DataFrame, target: Path, file_format: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "csv":
        frame.to_csv(target, index=False)
    elif file_format == "parquet":
        frame.to_parquet(target, index=False)
    else:
        frame.to_json(target, orient="records", lines=True)


@pytest.mark.parametrize(
    ("file_format", "suffix"), [("csv", "csv"), ("parquet", "parquet"), ("jsonl", "jsonl")]
)
def test_each_format_registers_and_loads_back_equal_frames(
    store: CountingDatastore,
    registry: DatasetRegistry,
    data_root: Path,
    file_format: str,
    suffix: str,
) -> None:
    write_frame(FRAME.iloc[:2], data_root / "data" / f"part-1.{suffix}", file_format)
    write_frame(FRAME.iloc[2:], data_root / "data" / f"part-2.{suffix}", file_format)
    spec = DatasetSpec(datastore="landing", path=f"data/*.{suffix}")

    outcome = register(store, registry, spec)
    loaded = load_version(registry.get(NAME, 1), store)

    assert outcome.record.format == file_format
    assert outcome.record.row_count == 4
    assert_frame_equal(loaded, FRAME)
    assert_frame_equal(outcome.frame, FRAME)


def test_a_declared_format_and_separator_are_used_to_load(
    store: CountingDatastore, registry: DatasetRegistry, data_root: Path
) -> None:
    write(data_root, "data/a.txt", "id;temp\n1;0.5\n2;1.5\n")
    spec = DatasetSpec(datastore="landing", path="data/*.txt", format="csv", separator=";")

    record = register(store, registry, spec).record
    loaded = load_version(record, store)

    assert record.read_options == ReadOptions(separator=";", encoding="utf-8")
    assert_frame_equal(loaded, pd.DataFrame({"id": [1, 2], "temp": [0.5, 1.5]}))


def test_a_declared_encoding_reads_non_utf8_files(
    store: CountingDatastore, registry: DatasetRegistry, data_root: Path
) -> None:
    (data_root / "data").mkdir()
    (data_root / "data" / "a.csv").write_bytes("id,städte\n1,Zürich\n".encode("latin-1"))

    record = register(store, registry, csv_spec(encoding="latin-1")).record

    assert_frame_equal(load_version(record, store), pd.DataFrame({"id": [1], "städte": ["Zürich"]}))


def assert_nothing_registered(
    registry: DatasetRegistry, before: DatasetVersionRecord | None
) -> None:
    assert registry.latest(NAME) == before


@pytest.mark.parametrize(
    "latin1_text",
    [
        pytest.param("id,städte\n1,x\n", id="header"),
        pytest.param("id,station\n1,Zürich\n", id="value"),
    ],
)
def test_a_non_utf8_file_names_the_file_and_the_encoding_option(
    store: CountingDatastore, registry: DatasetRegistry, data_root: Path, latin1_text: str
) -> None:
    (data_root / "data").mkdir()
    (data_root / "data" / "bad.csv").write_bytes(latin1_text.encode("latin-1"))

    with pytest.raises(MalformedFileError) as raised:
        register(store, registry)

    assert "'data/bad.csv'" in str(raised.value)
    assert "not valid utf-8" in str(raised.value)
    assert "'encoding:'" in str(raised.value)
    assert_nothing_registered(registry, None)


@pytest.mark.parametrize(
    "suffix",
    [
        "csv",
        "parquet",
        "jsonl",
    ],
)
def test_an_empty_file_is_malformed_and_nothing_is_registered(
    store: CountingDatastore, registry: DatasetRegistry, data_root: Path, suffix: str
) -> None:
    write(data_root, f"data/empty.{suffix}", "")

    with pytest.raises(MalformedFileError, match=rf"'data/empty\.{suffix}'"):
        register(store, registry, DatasetSpec(datastore="landing", path=f"data/*.{suffix}"))

    assert_nothing_registered(registry, None)


def test_a_bad_new_file_leaves_the_latest_version_unchanged(
    store: CountingDatastore, registry: DatasetRegistry, data_root: Path
) -> None:
    write(data_root, "data/2011-01.csv", JAN)
    first = register(store, registry).record
    write(data_root, "data/2011-02.csv", "")

    with pytest.raises(MalformedFileError, match=r"'data/2011-02\.csv'"):
        register(store, registry)

    assert_nothing_registered(registry, first)
    assert registry.version_numbers(NAME) == [1]


def test_a_file_with_different_columns_names_both_files(
    store: CountingDatastore, registry: DatasetRegistry, data_root: Path
) -> None:
    write(data_root, "data/2011-01.csv", JAN)
    first = register(store, registry).record
    write(data_root, "data/2011-02.csv", "id,temperature,station\n4,2.5,east\n")

    with pytest.raises(DatasetError) as raised:
        register(store, registry)

    message = str(raised.value)
    assert "'data/2011-02.csv' has different columns than 'data/2011-01.csv'" in message
    assert "missing: ['temp']" in message
    assert "extra: ['temperature']" in message
    assert "nothing was registered" in message
    assert_nothing_registered(registry, first)


def test_no_matching_files_is_an_error_and_registers_nothing(
    store: CountingDatastore, registry: DatasetRegistry, data_root: Path
) -> None:
    write(data_root, "data/2011-01.txt", JAN)

    with pytest.raises(DatasetError, match=r"dataset 'rides': no files match 'data/\*\.csv'"):
        register(store, registry)

    assert_nothing_registered(registry, None)
    assert registry.version_numbers(NAME) == []


def test_timestamp_column_sorts_rows_across_files(
    store: CountingDatastore, registry: DatasetRegistry, data_root: Path
) -> None:
    write(data_root, "data/a.csv", "at,id\n2011-01-03 00:00,3\n2011-01-01 00:00,1\n")
    write(data_root, "data/b.csv", "at,id\n2011-01-02 00:00,2\n2011-01-04 00:00,4\n")
    spec = csv_spec(timestamp_column="at")

    outcome = register(store, registry, spec)
    loaded = load_version(outcome.record, store, spec)

    for frame in (outcome.frame, loaded):
        assert frame["id"].tolist() == [1, 2, 3, 4]
        assert pd.api.types.is_datetime64_any_dtype(frame["at"])
        assert frame.index.tolist() == [0, 1, 2, 3]


def test_a_missing_timestamp_column_is_a_clear_error(
    store: CountingDatastore, registry: DatasetRegistry, data_root: Path
) -> None:
    write(data_root, "data/2011-01.csv", JAN)

    with pytest.raises(DatasetError) as raised:
        register(store, registry, csv_spec(timestamp_column="when"))

    message = str(raised.value)
    assert "timestamp_column 'when' is not a column" in message
    assert "columns: id, temp, station" in message
    assert "Fix 'timestamp_column'" in message
    assert_nothing_registered(registry, None)
