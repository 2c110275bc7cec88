"""A version's files are parsed into Arrow, joined, and turned into pandas once.

What must not change with that: the frame pandas would build from the same files, errors that
name the file and its row, and a profile equal to the one pandas' own values give.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pandas.testing import assert_frame_equal

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets import formats
from ingestion_project.datasets.dictionary_text import (
    is_marked,
    read_parquet,
    text_objects,
    used_values,
)
from ingestion_project.datasets.formats import MalformedFileError
from ingestion_project.datasets.profile import frame_profile
from ingestion_project.datasets.versions import (
    DatasetRegistry,
    iter_version_batches,
    load_version,
    register_file_dataset,
)
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.records import DatasetVersionRecord, LoadOptions
from ingestion_project_tests.datasets.dataset_helpers import ForwardOnlyDatastore, write

NAME = "sales"


def register(
    store: LocalDatastore, registry: DatasetRegistry, spec: DatasetSpec
) -> DatasetVersionRecord:
    return register_file_dataset(NAME, spec, store, registry, run_id="r", code_version="c").record


@pytest.fixture(params=["seekable", "forward_only"])
def any_store(request: pytest.FixtureRequest, landing: Path) -> LocalDatastore:
    """Local files read as a local store reads them, and as a blob or HTTP body is read."""
    kind = ForwardOnlyDatastore if request.param == "forward_only" else LocalDatastore
    return kind(name="landing", root=str(landing))


def test_files_are_joined_with_the_types_pandas_would_give_them(
    any_store: LocalDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    # 'amount' is whole in one file and decimal in the other; 'note' is empty in the first.
    write(landing, "in/a.csv", "id,amount,note\n1,10,\n2,20,\n")
    write(landing, "in/b.csv", "id,amount,note\n3,2.5,late\n4,,\n")

    frame = load_version(
        register(any_store, registry, DatasetSpec(datastore="landing", path="in/*.csv")), any_store
    )

    assert frame.dtypes.astype(str).to_dict() == {
        "id": "int64",
        "amount": "float64",
        "note": "object",
    }
    assert frame["amount"].tolist()[:3] == [10.0, 20.0, 2.5]
    assert np.isnan(frame["amount"].iloc[3])
    assert frame["note"].tolist()[2] == "late"
    assert frame["note"].isna().tolist() == [True, True, False, True]
    assert list(frame.index) == [0, 1, 2, 3]


def test_a_column_that_is_a_number_in_one_file_and_text_in_another_is_kept_as_objects(
    any_store: LocalDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(landing, "in/a.csv", "id,code\n1,7\n2,8\n")
    write(landing, "in/b.csv", "id,code\n3,A9\n")

    frame = load_version(
        register(any_store, registry, DatasetSpec(datastore="landing", path="in/*.csv")), any_store
    )

    assert frame["code"].tolist() == [7, 8, "A9"]
    assert frame["code"].dtype == object


def test_a_value_that_does_not_convert_names_its_own_file_and_row(
    any_store: LocalDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(landing, "in/a.csv", "id,qty\n1,5\n2,6\n3,7\n")
    write(landing, "in/b.csv", "id,qty\n4,8\n5,9\n6,lots\n7,1\n")
    spec = DatasetSpec(datastore="landing", path="in/*.csv", column_types={"qty": "int64"})

    with pytest.raises(MalformedFileError) as raised:
        register(any_store, registry, spec)

    message = str(raised.value)
    assert "'in/b.csv', column 'qty': value 'lots' (row 3) is not int64" in message
    assert registry.latest(NAME, include_failed=True) is None


def test_parquet_written_by_pandas_with_its_index_loads_as_pandas_joins_it(
    registry: DatasetRegistry, landing: Path
) -> None:
    (landing / "in").mkdir(parents=True)
    first = pd.DataFrame({"amount": [1.5, 2.5]}, index=pd.Index([10, 11], name="order"))
    first.to_parquet(landing / "in" / "a.parquet")
    first.iloc[:0].to_parquet(landing / "in" / "b.parquet")  # no rows, same columns
    pd.DataFrame({"amount": [4.5]}).to_parquet(landing / "in" / "c.parquet")
    store = LocalDatastore(name="landing", root=str(landing))
    spec = DatasetSpec(datastore="landing", path="in/*.parquet", format="parquet")

    frame = load_version(register(store, registry, spec), store)

    expected = pd.concat(
        [pd.read_parquet(landing / "in" / f"{n}.parquet") for n in "abc"], ignore_index=True
    )
    assert_frame_equal(frame, expected)


def test_the_profile_counted_in_arrow_is_the_profile_of_the_loaded_frame(
    any_store: LocalDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    rows = 150_000  # enough rows for the columns to be profiled on several threads
    cities = np.array(["Oslo", "Bergen", "Zürich", "Ålesund", "東京", ""])
    for part in range(2):
        frame = pd.DataFrame(
            {
                "id": np.arange(part * rows, (part + 1) * rows),
                "city": cities[rng.integers(0, len(cities), rows)],
                "label": [f"item-{value}" for value in rng.integers(0, 50_000, rows)],
                "price": np.round(rng.uniform(1, 500, rows), 2),
                "kind": rng.choice(["a", "b"], rows),
            }
        )
        frame.to_csv(landing / f"part-{part}.csv", index=False)
    spec = DatasetSpec(datastore="landing", path="part-*.csv", column_types={"kind": "category"})

    record = register(any_store, registry, spec)
    loaded = load_version(record, any_store)

    assert record.profile == frame_profile(loaded)
    by_column = {row.column: row for row in record.profile or []}
    assert by_column["city"].nulls == int(loaded["city"].isna().sum()) > 0  # "" is missing
    assert (by_column["city"].min, by_column["city"].max) == ("Bergen", "東京")
    # 'label' seldom repeats: counted from hashes, estimated within 2 % above 8,192 values.
    assert by_column["label"].distinct == pytest.approx(loaded["label"].nunique(), rel=0.02)
    assert by_column["kind"].type == "category"


def test_json_lines_are_read_by_arrow_and_keep_text_as_text(
    any_store: LocalDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    lines = [
        {"id": 1, "zip": "007", "at": "2024-03-01T10:00:00", "tags": ["a"], "meta": {"k": 1}},
        {"id": 2, "zip": "010", "at": "2024-03-02T11:30:00", "tags": [], "meta": {"k": 2}},
    ]
    write(landing, "in/a.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    last = {"id": 3, "zip": None, "at": None, "tags": None, "meta": None}
    write(landing, "in/b.jsonl", json.dumps(last) + "\n")
    spec = DatasetSpec(datastore="landing", path="in/*.jsonl", format="jsonl")

    record = register(any_store, registry, spec)
    frame = load_version(record, any_store)

    assert record.load_options is not None and record.load_options.json_reader == "arrow"
    assert frame["zip"].tolist()[:2] == ["007", "010"]  # pandas' read_json makes them 7 and 10
    assert str(frame["at"].dtype) == "datetime64[ns]"
    assert frame["at"].iloc[1] == pd.Timestamp("2024-03-02 11:30:00")
    assert frame["meta"].iloc[0] == {"k": 1}
    assert list(frame["tags"].iloc[0]) == ["a"]
    assert frame["id"].tolist() == [1, 2, 3]
    batches = list(iter_version_batches(record, any_store, batch_size=1))
    streamed = pd.concat([batch.to_pandas() for batch in batches], ignore_index=True)
    assert streamed["zip"].tolist() == frame["zip"].tolist()
    assert list(streamed.columns) == list(frame.columns)


def test_a_json_lines_version_registered_by_pandas_still_loads_as_pandas_read_it(
    registry: DatasetRegistry, landing: Path
) -> None:
    write(landing, "in/a.jsonl", '{"id": 1, "zip": "007"}\n{"id": 2, "zip": "010"}\n')
    store = LocalDatastore(name="landing", root=str(landing))
    spec = DatasetSpec(datastore="landing", path="in/*.jsonl", format="jsonl")
    record = register(store, registry, spec)
    older = record.model_copy(
        update={
            "load_options": LoadOptions(**record.load_options.model_dump(exclude={"json_reader"}))
        }  # type: ignore[union-attr]
    )

    assert older.load_options is not None and older.load_options.json_reader is None
    assert load_version(older, store)["zip"].tolist() == [7, 10]
    assert load_version(record, store)["zip"].tolist() == ["007", "010"]


def test_json_lines_whose_column_changes_type_are_read_as_pandas_reads_them(
    any_store: LocalDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(landing, "in/a.jsonl", '{"id": 1, "code": 7}\n{"id": 2, "code": "A9"}\n')
    spec = DatasetSpec(datastore="landing", path="in/*.jsonl", format="jsonl")

    frame = load_version(register(any_store, registry, spec), any_store)

    assert frame["code"].tolist() == [7, "A9"]


def test_json_lines_that_are_not_utf8_name_the_file_the_byte_and_the_setting(
    any_store: LocalDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    (landing / "in").mkdir(parents=True)
    (landing / "in" / "a.jsonl").write_bytes('{"city": "Zürich"}\n'.encode("latin-1"))
    spec = DatasetSpec(datastore="landing", path="in/*.jsonl", format="jsonl")

    with pytest.raises(MalformedFileError) as raised:
        register(any_store, registry, spec)

    assert "'in/a.jsonl' is not valid utf-8 text" in str(raised.value)
    assert "at byte 11" in str(raised.value)
    assert "Set 'encoding:'" in str(raised.value)
    latin = spec.model_copy(update={"encoding": "latin-1"})
    assert load_version(register(any_store, registry, latin), any_store)["city"].tolist() == [
        "Zürich"
    ]


def test_a_json_line_longer_than_a_block_is_read_with_larger_blocks(
    any_store: LocalDatastore,
    registry: DatasetRegistry,
    landing: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(formats, "CSV_BLOCK_BYTES", 256)
    long_line = json.dumps({"id": 2, "text": "x" * 2_000})
    write(landing, "in/a.jsonl", '{"id": 1, "text": "short"}\n' + long_line + "\n")
    spec = DatasetSpec(datastore="landing", path="in/*.jsonl", format="jsonl")

    frame = load_version(register(any_store, registry, spec), any_store)

    assert frame["id"].tolist() == [1, 2]
    assert len(frame["text"].iloc[1]) == 2_000


def test_repeated_text_shares_one_string_and_distinct_text_is_not_looked_up(
    registry: DatasetRegistry, landing: Path
) -> None:
    rows = 30_000
    frame = pd.DataFrame(
        {
            "country": np.array(["NO", "SE", "DK"])[np.arange(rows) % 3],
            "order": [f"order-{index:06d}" for index in range(rows)],
        }
    )
    landing.mkdir(parents=True, exist_ok=True)
    frame.iloc[: rows // 2].to_csv(landing / "a.csv", index=False)
    frame.iloc[rows // 2 :].to_csv(landing / "b.csv", index=False)
    store = LocalDatastore(name="landing", root=str(landing))

    loaded = load_version(
        register(store, registry, DatasetSpec(datastore="landing", path="*.csv")), store
    )

    assert_frame_equal(loaded, frame)
    countries = loaded["country"].to_numpy()
    assert countries[0] is countries[3] is countries[rows - 3]  # one object for "NO"
    assert len({id(value) for value in countries}) == 3


def test_a_csv_file_parsed_block_by_block_is_kept_in_one_piece_per_column(
    landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The parser's blocks share pages with its scratch memory: joined, those pages free whole.
    monkeypatch.setattr(formats, "CSV_BLOCK_BYTES", 1 << 10)
    rows = pd.DataFrame({"id": range(2_000), "country": ["NO", "SE"] * 1_000})
    landing.mkdir(parents=True, exist_ok=True)
    rows.to_csv(landing / "a.csv", index=False)

    with (landing / "a.csv").open("rb") as stream:
        table = formats.read_arrow_table(stream, file_format="csv", path="a.csv")

    assert [column.num_chunks for column in table.columns] == [1, 1]
    assert_frame_equal(table.to_pandas(), rows)


def test_parquet_text_stored_as_a_dictionary_loads_as_pandas_reads_it(
    any_store: LocalDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    # Text stored as a dictionary in one file and as plain values in the other, with nulls,
    # no rows in a third; a categorical column pandas wrote keeps its type.
    (landing / "in").mkdir(parents=True)
    first = pa.table(
        {
            "country": ["NO", None, "SE", "NO"],
            "note": ["a", "b", None, "d"],
            "n": [1, 2, 3, 4],
        }
    )
    second = pa.table({"country": ["DK", "NO"], "note": ["e", "f"], "n": [5, 6]})
    pq.write_table(first, landing / "in" / "a.parquet")
    only_country = ["country"]  # pyarrow takes a list of columns as well as a bool
    pq.write_table(second, landing / "in" / "b.parquet", use_dictionary=only_country)  # pyright: ignore[reportArgumentType]
    pq.write_table(first.slice(0, 0), landing / "in" / "c.parquet")
    spec = DatasetSpec(datastore="landing", path="in/*.parquet", format="parquet")

    record = register(any_store, registry, spec)
    frame = load_version(record, any_store)

    read = read_parquet(str(landing / "in" / "a.parquet"))
    assert [is_marked(field) for field in read.schema] == [True, True, False]
    expected = pd.concat(
        [pd.read_parquet(landing / "in" / f"{n}.parquet") for n in "abc"], ignore_index=True
    )
    assert_frame_equal(frame, expected)
    assert frame["country"].tolist() == ["NO", None, "SE", "NO", "DK", "NO"]
    countries = frame["country"].to_numpy()
    assert countries[0] is countries[3] is countries[5]  # one string per distinct value
    assert record.profile == frame_profile(frame)
    by_column = {row.column: row for row in record.profile or []}
    assert (by_column["country"].distinct, by_column["country"].nulls) == (3, 1)
    assert (by_column["country"].min, by_column["country"].max) == ("DK", "SE")


def test_parquet_written_by_pandas_keeps_its_categories_and_its_text(
    registry: DatasetRegistry, landing: Path
) -> None:
    (landing / "in").mkdir(parents=True)
    written = pd.DataFrame(
        {
            "size": pd.Categorical(["S", "M", "S"], categories=["S", "M", "L"]),
            "city": ["Oslo", "Bergen", None],
        }
    )
    written.to_parquet(landing / "in" / "a.parquet")
    store = LocalDatastore(name="landing", root=str(landing))
    spec = DatasetSpec(datastore="landing", path="in/*.parquet", format="parquet")

    frame = load_version(register(store, registry, spec), store)

    assert_frame_equal(frame, pd.read_parquet(landing / "in" / "a.parquet"))
    assert isinstance(frame["size"].dtype, pd.CategoricalDtype)
    assert frame["city"].dtype == object


def test_the_profile_counts_only_the_dictionary_values_rows_use() -> None:
    column = pa.chunked_array(
        [
            pa.DictionaryArray.from_arrays(pa.array([0, 0, None], pa.int32()), ["b", "z"]),
            pa.DictionaryArray.from_arrays(pa.array([1], pa.int32()), ["z", "a"]),
        ]
    )

    assert sorted(used_values(column).to_pylist()) == ["a", "b"]
    assert text_objects(column).tolist() == ["b", "b", None, "a"]


def test_a_file_that_is_not_parquet_is_an_error_that_names_it(
    any_store: LocalDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    # A local file is read by pyarrow itself, a blob from its bytes: both name the file.
    (landing / "in").mkdir(parents=True)
    pq.write_table(pa.table({"n": [1, 2]}), landing / "in" / "a.parquet")
    write(landing, "in/b.parquet", "id,amount\n1,2\n")
    spec = DatasetSpec(datastore="landing", path="in/*.parquet", format="parquet")

    with pytest.raises(MalformedFileError, match=r"in/b\.parquet"):
        register(any_store, registry, spec)

    assert registry.latest(NAME, include_failed=True) is None
