from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from pandas.testing import assert_frame_equal

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets import formats
from ingestion_project.datasets.formats import MalformedFileError
from ingestion_project.datasets.versions import (
    DatasetError,
    DatasetRegistry,
    DatasetVersionChangedError,
    iter_version_batches,
    load_version,
    register_file_dataset,
)
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.records import DatasetVersionRecord, LoadOptions
from ingestion_project_tests.datasets.dataset_helpers import (
    CountingDatastore,
    ForwardOnlyDatastore,
    bump_mtime,
    write,
)

NAME = "trips"
FRAME = pd.DataFrame(
    {
        "id": range(1, 8),
        "temp": [0.25, None, 1.5, 2.0, 3.5, None, 4.0],
        "station": ["north", "south", None, "east", "west", "north", "x"],
        "busy": [True, False, True, False, True, True, False],
    }
)


def put(frame: pd.DataFrame, target: Path, file_format: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "csv":
        frame.to_csv(target, index=False)
    elif file_format == "parquet":
        frame.to_parquet(target, index=False)
    else:
        frame.to_json(target, orient="records", lines=True)


def register(
    store: LocalDatastore, registry: DatasetRegistry, spec: DatasetSpec
) -> DatasetVersionRecord:
    return register_file_dataset(NAME, spec, store, registry, run_id="r", code_version="c").record


def streamed(batches: list[pa.RecordBatch]) -> pd.DataFrame:
    return pa.Table.from_batches(batches).to_pandas()


@pytest.mark.parametrize("file_format", ["csv", "parquet", "jsonl"])
@pytest.mark.parametrize("batch_size", [1, 2, 65_536])
def test_batches_hold_the_rows_load_version_gives_with_one_schema(
    store: CountingDatastore,
    registry: DatasetRegistry,
    landing: Path,
    file_format: str,
    batch_size: int,
) -> None:
    put(FRAME.iloc[:4], landing / "by_day" / "eu" / f"a.{file_format}", file_format)
    put(FRAME.iloc[4:], landing / "by_day" / "us" / f"b.{file_format}", file_format)
    spec = DatasetSpec(
        datastore="landing",
        partition_format=f"by_day/{{region}}/*.{file_format}",
        path_column="file",
        column_types={"id": "float64", "station": "category"},
    )
    record = register(store, registry, spec)

    batches = list(iter_version_batches(record, store, batch_size=batch_size))

    assert all(batch.num_rows <= batch_size for batch in batches)
    assert len({batch.schema for batch in batches}) == 1
    assert sum(batch.num_rows for batch in batches) == 7
    expected = load_version(record, store)
    # Batches cannot know every category up front: they list them in order of appearance.
    assert_frame_equal(streamed(batches), expected, check_categorical=False)
    assert expected["region"].tolist() == ["eu"] * 4 + ["us"] * 3


def test_files_are_opened_one_at_a_time_and_only_when_needed(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    put(FRAME.iloc[:4], landing / "in" / "a.csv", "csv")
    put(FRAME.iloc[4:], landing / "in" / "b.csv", "csv")
    record = register(store, registry, DatasetSpec(datastore="landing", path="in/*.csv"))
    store.events.clear()

    batches = iter_version_batches(record, store, batch_size=2)
    first = next(batches)

    assert first.num_rows == 2
    assert store.events == ["open in/a.csv"]
    rest = list(batches)
    assert store.events == ["open in/a.csv", "close in/a.csv", "open in/b.csv", "close in/b.csv"]
    assert sum(batch.num_rows for batch in [first, *rest]) == 7


def test_csv_blocks_keep_the_types_of_the_whole_file(
    store: CountingDatastore,
    registry: DatasetRegistry,
    landing: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [f"{n},,{n}" for n in range(200)] + ["200,1.5,not a number", "201,2.5,"]
    write(landing, "in/a.csv", "id,temp,code\n" + "\n".join(rows) + "\n")
    record = register(store, registry, DatasetSpec(datastore="landing", path="in/*.csv"))
    # Blocks of a few rows: pyarrow would guess 'temp' as null and 'code' as int from the first.
    monkeypatch.setattr(formats, "CSV_BLOCK_BYTES", 256)

    batches = list(iter_version_batches(record, store, batch_size=50))

    assert len(batches) > 4
    assert_frame_equal(streamed(batches), load_version(record, store))


def test_dates_and_the_timestamp_column_stream_as_datetimes_unsorted(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(
        landing,
        "in/a.csv",
        "at,day,n\n2011-01-02 10:00,2011-01-02,2\n1/1/2011 09:00,2011-01-01,1\n",
    )
    spec = DatasetSpec(datastore="landing", path="in/*.csv", timestamp_column="at")
    record = register(store, registry, spec)

    frame = streamed(list(iter_version_batches(record, store)))

    assert frame["n"].tolist() == [2, 1]
    assert frame["at"].tolist() == [
        pd.Timestamp("2011-01-02 10:00"),
        pd.Timestamp("2011-01-01 09:00"),
    ]
    assert frame["day"].dtype == "datetime64[ns]"
    loaded = load_version(record, store)
    assert_frame_equal(frame.sort_values("at", ignore_index=True), loaded)


def test_a_forward_only_parquet_stream_is_spooled_not_refused(
    registry: DatasetRegistry, landing: Path
) -> None:
    put(FRAME, landing / "in" / "a.parquet", "parquet")
    store = ForwardOnlyDatastore(name="landing", root=str(landing))
    record = register(store, registry, DatasetSpec(datastore="landing", path="in/*.parquet"))

    assert_frame_equal(streamed(list(iter_version_batches(record, store, batch_size=3))), FRAME)


def test_a_changed_pinned_file_is_refused_before_any_batch(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    path = landing / "in" / "a.csv"
    put(FRAME, path, "csv")
    record = register(store, registry, DatasetSpec(datastore="landing", path="in/*.csv"))
    path.write_text("id\n1\n")
    bump_mtime(path)
    store.events.clear()

    with pytest.raises(DatasetVersionChangedError, match=r"in/a\.csv \(modified\)"):
        next(iter_version_batches(record, store))
    assert store.opened == []


def test_a_bad_value_in_a_later_batch_names_its_row(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    values = ["1", "0", "yes", "no", "true", "false", "maybe", "1"]
    write(landing, "in/a.csv", "id,flag\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    record = register(store, registry, DatasetSpec(datastore="landing", path="in/*.csv"))
    # A version reads as its record says: a record declaring 'flag' a bool meets 'maybe'.
    declared = (record.load_options or LoadOptions()).model_copy(
        update={"column_types": {"flag": "bool"}}
    )
    altered = record.model_copy(update={"load_options": declared})

    with pytest.raises(MalformedFileError) as raised:
        list(iter_version_batches(altered, store, batch_size=4))

    message = str(raised.value)
    assert "dataset 'trips', datastore 'landing'" in message
    assert "'in/a.csv', column 'flag': value 'maybe' (row 7) is not bool" in message


def test_a_batch_size_below_one_is_refused(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    put(FRAME, landing / "in" / "a.csv", "csv")
    record = register(store, registry, DatasetSpec(datastore="landing", path="in/*.csv"))

    with pytest.raises(DatasetError, match="batch_size must be at least 1, not 0"):
        next(iter_version_batches(record, store, batch_size=0))
