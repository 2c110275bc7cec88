"""A registered version loads file by file (and piece by piece) into its frame's columns.

The frame must be the one the joined read gives (every file parsed, joined in Arrow, converted
once), which a record without a row count still takes; where that cannot be assured, the load
falls back to it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pandas.testing import assert_frame_equal

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets import formats, frame_assembly
from ingestion_project.datasets.formats import MalformedFileError
from ingestion_project.datasets.versions import (
    DatasetRegistry,
    load_version,
    register_file_dataset,
)
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.records import DatasetVersionRecord
from ingestion_project_tests.datasets.dataset_helpers import ForwardOnlyDatastore, write


@pytest.fixture(params=["seekable", "forward_only"])
def store(request: pytest.FixtureRequest, landing: Path) -> LocalDatastore:
    kind = ForwardOnlyDatastore if request.param == "forward_only" else LocalDatastore
    return kind(name="landing", root=str(landing))


@pytest.fixture
def assembled(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The row counts of frames that were assembled, not read the joined way."""
    frames: list[int] = []
    original = frame_assembly.FrameAssembly.frame

    def frame(self: frame_assembly.FrameAssembly) -> pd.DataFrame:
        result = original(self)
        frames.append(len(result))
        return result

    monkeypatch.setattr(frame_assembly.FrameAssembly, "frame", frame)
    yield frames


def register(store: LocalDatastore, registry: DatasetRegistry, path: str) -> DatasetVersionRecord:
    spec = DatasetSpec(datastore="landing", path=path)
    return register_file_dataset(
        "sales", spec, store, registry, run_id="r", code_version="c"
    ).record


def joined(record: DatasetVersionRecord, store: LocalDatastore) -> pd.DataFrame:
    """The version read the joined way: a record that does not say how many rows it has."""
    return load_version(record.model_copy(update={"row_count": None}), store)


def test_a_value_missing_only_in_a_later_file_turns_ints_to_floats_and_bools_to_objects(
    store: LocalDatastore, registry: DatasetRegistry, landing: Path, assembled: list[int]
) -> None:
    # 'note' has no value in the first file (Arrow's null type), 'empty' in none.
    write(landing, "in/a.csv", "id,flag,note,empty\n1,true,,\n2,false,,\n")
    write(landing, "in/b.csv", "id,flag,note,empty\n3,,x,\n,true,,\n")
    record = register(store, registry, "in/*.csv")

    frame = load_version(record, store)

    assert assembled == [4]
    assert_frame_equal(frame, joined(record, store))
    assert frame.dtypes.astype(str).to_dict() == {
        "id": "float64",
        "flag": "object",
        "note": "object",
        "empty": "float64",
    }
    assert frame["flag"].tolist() == [True, False, None, True]
    assert frame["note"].tolist() == [None, None, "x", None]


def test_parquet_files_load_by_row_group_as_the_joined_read_loads_them(
    store: LocalDatastore, registry: DatasetRegistry, landing: Path, assembled: list[int]
) -> None:
    rows = 5_000
    rng = np.random.default_rng(3)
    first = pd.DataFrame(
        {
            "id": np.arange(rows),
            "at": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**6, rows), "s"),
            "country": np.array(["NO", "SE", "DK"])[rng.integers(0, 3, rows)],
            "order": [f"o-{index}" for index in range(rows)],
            "amount": rng.random(rows),
            "paid": rng.random(rows) < 0.5,
            "day": [dt.date(2024, 1, 1 + index % 28) for index in range(rows)],
        }
    )
    second = first.assign(amount=np.where(np.arange(rows) % 7 == 0, np.nan, first["amount"]))
    second["paid"] = second["paid"].astype(object).where(np.arange(rows) % 5 != 0, None)
    second["id"] = second["id"].astype("float64")  # pandas wrote the ints with gaps as floats
    (landing / "pq").mkdir(parents=True)
    first.to_parquet(landing / "pq/a.parquet", row_group_size=1_000)  # pandas' metadata
    pq.write_table(pa.Table.from_pandas(second, preserve_index=False), landing / "pq/b.parquet")
    record = register(store, registry, "pq/*.parquet")

    frame = load_version(record, store)

    assert_frame_equal(frame, joined(record, store))
    assert len(frame) == 2 * rows
    # 'id' is int64 in one file and double in the other: Arrow joins them, assembly does not.
    assert assembled == []
    (landing / "pq/b.parquet").unlink()
    first.to_parquet(landing / "pq/b.parquet", row_group_size=1_500)
    record = register(store, registry, "pq/*.parquet")
    frame = load_version(record, store)
    assert assembled == [2 * rows]
    assert_frame_equal(frame, joined(record, store))
    countries = frame["country"].to_numpy()
    assert len({id(value) for value in countries}) == 3  # one string per value, across files


def test_types_pandas_keeps_in_its_own_arrays_load_the_joined_way(
    store: LocalDatastore, registry: DatasetRegistry, landing: Path, assembled: list[int]
) -> None:
    frame = pd.DataFrame(
        {
            "at": pd.date_range("2024-01-01", periods=4, freq="h", tz="Europe/Oslo"),
            "kind": pd.Categorical(["a", "b", "a", "b"]),
            "count": pd.array([1, None, 3, 4], dtype="Int64"),
        }
    )
    (landing / "pq").mkdir(parents=True)
    frame.to_parquet(landing / "pq/a.parquet")
    record = register(store, registry, "pq/*.parquet")

    loaded = load_version(record, store)

    assert assembled == []
    assert_frame_equal(loaded, frame)


def test_a_large_csv_file_is_parsed_in_pieces_cut_at_line_ends(
    store: LocalDatastore,
    registry: DatasetRegistry,
    landing: Path,
    assembled: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(formats, "CSV_PIECE_BYTES", 64)
    lines = ["id,name,amount,at"]
    lines += [
        f"{index},name {index % 3},{index * 1.5},2024-01-01 00:00:{index % 60:02d}"
        for index in range(200)
    ]
    lines.append(f"200,{'x' * 300},1.0,2024-01-02 00:00:00")  # a line longer than a piece
    write(landing, "big/a.csv", "\r\n".join(lines))  # Windows line ends, none after the last
    record = register(store, registry, "big/*.csv")

    frame = load_version(record, store)

    assert assembled == [201]
    assert_frame_equal(frame, joined(record, store))
    assert frame["at"].dtype == "datetime64[ns]"
    assert frame["name"].iloc[-1] == "x" * 300


def test_a_later_piece_that_needs_a_wider_type_reads_the_file_whole(
    store: LocalDatastore,
    registry: DatasetRegistry,
    landing: Path,
    assembled: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(formats, "CSV_PIECE_BYTES", 64)
    rows = [f"{index},{index}" for index in range(100)] + ["100,1.5", "101,word"]
    write(landing, "big/a.csv", "id,value\n" + "\n".join(rows) + "\n")
    record = register(store, registry, "big/*.csv")

    frame = load_version(record, store)

    assert assembled == []
    assert_frame_equal(frame, joined(record, store))
    assert frame["value"].tolist()[-2:] == ["1.5", "word"]


def test_a_csv_without_a_header_is_assembled_with_its_numbered_columns(
    store: LocalDatastore,
    registry: DatasetRegistry,
    landing: Path,
    assembled: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(formats, "CSV_PIECE_BYTES", 32)
    write(landing, "raw/a.csv", "".join(f"{index},v{index % 2}\n" for index in range(50)))
    spec = DatasetSpec(datastore="landing", path="raw/*.csv", header=False)
    record = register_file_dataset("raw", spec, store, registry, run_id="r", code_version="c")

    frame = load_version(record.record, store)

    assert assembled == [50]
    assert list(frame.columns) == ["col_0", "col_1"]
    assert_frame_equal(frame, joined(record.record, store))


def test_a_byte_that_is_not_utf8_in_a_later_piece_is_reported_at_its_place_in_the_file(
    store: LocalDatastore,
    registry: DatasetRegistry,
    landing: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = "id,name\n" + "".join(f"{index},n{index}\n" for index in range(40))
    write(landing, "bad/a.csv", text)
    record = register(store, registry, "bad/*.csv")
    path = landing / "bad/a.csv"
    data = path.read_bytes()
    at = len(data) - 4
    stamp = path.stat()
    path.write_bytes(data[:at] + b"\xff" + data[at + 1 :])  # same size and time: same listing
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    monkeypatch.setattr(formats, "CSV_PIECE_BYTES", 64)

    with pytest.raises(MalformedFileError, match=f"not valid utf-8 text .* at byte {at}"):
        load_version(record, store)


def test_a_record_whose_row_count_is_wrong_still_loads_every_row(
    store: LocalDatastore, registry: DatasetRegistry, landing: Path, assembled: list[int]
) -> None:
    write(landing, "in/a.csv", "id\n1\n2\n")
    write(landing, "in/b.csv", "id\n3\n")
    record = register(store, registry, "in/*.csv")

    for rows in (2, 4):
        frame = load_version(record.model_copy(update={"row_count": rows}), store)
        assert frame["id"].tolist() == [1, 2, 3]
    assert assembled == []


def test_json_lines_are_assembled_in_pieces_and_a_block_that_disagrees_reads_the_file_whole(
    store: LocalDatastore,
    registry: DatasetRegistry,
    landing: Path,
    assembled: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(formats, "JSON_STREAM_BLOCK_BYTES", 256)
    monkeypatch.setattr(formats, "CSV_PIECE_BYTES", 512)
    rows = [
        f'{{"id": {index}, "country": "{["NO", "SE"][index % 2]}", "amount": {index}.5}}'
        for index in range(100)
    ]
    write(landing, "js/a.jsonl", "\n".join(rows) + "\n")
    spec = DatasetSpec(datastore="landing", path="js/*.jsonl", format="jsonl")
    record = register_file_dataset("js", spec, store, registry, run_id="r", code_version="c")

    frame = load_version(record.record, store)

    assert assembled == [100]
    assert_frame_equal(frame, joined(record.record, store))
    assert len({id(value) for value in frame["country"]}) == 2

    late = [*rows, '{"id": 100, "country": "DK", "amount": "a lot"}']  # text after numbers
    write(landing, "js/a.jsonl", "\n".join(late) + "\n")
    record = register_file_dataset("js", spec, store, registry, run_id="r", code_version="c")

    frame = load_version(record.record, store)

    assert assembled == [100]  # not assembled: read whole, and by pandas
    assert_frame_equal(frame, joined(record.record, store))
    assert frame["amount"].tolist()[-1] == "a lot"


def test_a_table_given_up_after_it_was_taken_is_read_again_not_lost(
    store: LocalDatastore,
    registry: DatasetRegistry,
    landing: Path,
    assembled: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write(landing, "in/a.csv", "id\n1\n2\n")
    write(landing, "in/b.csv", "id\n3\n")
    record = register(store, registry, "in/*.csv")

    def refuse(*_: object) -> None:
        raise frame_assembly.AssemblyAbandoned("a type it does not expect")

    monkeypatch.setattr(frame_assembly.FrameAssembly, "_room_for", refuse)

    assert load_version(record, store)["id"].tolist() == [1, 2, 3]
    assert assembled == []
