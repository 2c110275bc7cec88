from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets.formats import MalformedFileError
from ingestion_project.datasets.versions import (
    DatasetRegistry,
    Registration,
    load_version,
    register_file_dataset,
)
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.records import ReadOptions
from ingestion_project_tests.datasets.dataset_helpers import CountingDatastore, write

NAME = "stations"


def register(store: LocalDatastore, registry: DatasetRegistry, **options: object) -> Registration:
    spec = DatasetSpec(datastore="landing", path="in/*.csv", **options)  # type: ignore[arg-type]
    return register_file_dataset(NAME, spec, store, registry, run_id="r", code_version="c")


def test_a_headerless_csv_gets_col_n_names_and_types_can_name_them(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(landing, "in/a.csv", "1,007,north\n2,010,south\n")

    outcome = register(store, registry, header=False, column_types={"col_1": "string"})
    loaded = load_version(outcome.record, store)

    expected = pd.DataFrame(
        {
            "col_0": [1, 2],
            "col_1": pd.array(["007", "010"], dtype="string"),
            "col_2": ["north", "south"],
        }
    )
    assert_frame_equal(outcome.frame, expected)
    assert_frame_equal(loaded, expected)
    assert outcome.record.load_options.header is False


def test_declared_column_types_are_applied_and_recorded(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(
        landing,
        "in/a.csv",
        "code,open,since,kind,capacity,lat\n"
        "007,yes,2011-01-01,dock,12,1\n"
        "010,No,2011-02-01 10:30,kiosk,8,2.5\n",
    )
    write(landing, "in/b.csv", "code,open,since,kind,capacity,lat\n020,1,2011-03-01,hub,20,3\n")
    column_types = {
        "code": "string",
        "open": "bool",
        "since": "datetime64[ns]",
        "kind": "category",
        "capacity": "float64",
        "lat": "float64",
    }

    outcome = register(store, registry, column_types=column_types)
    loaded = load_version(outcome.record, store)

    assert loaded["code"].tolist() == ["007", "010", "020"]
    assert loaded["open"].tolist() == [True, False, True]
    assert loaded["since"].tolist() == [
        pd.Timestamp("2011-01-01"),
        pd.Timestamp("2011-02-01 10:30"),
        pd.Timestamp("2011-03-01"),
    ]
    assert loaded["kind"].tolist() == ["dock", "kiosk", "hub"]
    assert {column.name: column.type for column in outcome.record.table_schema or []} == {
        "code": "string",
        "open": "bool",
        "since": "datetime64[ns]",
        "kind": "category",
        "capacity": "float64",
        "lat": "float64",
    }
    assert_frame_equal(outcome.frame, loaded)
    assert outcome.record.load_options.column_types == column_types


@pytest.mark.parametrize(
    ("declared", "rows", "shown"),
    [
        pytest.param("int64", ["1", "2", "abc"], "value 'abc' (row 3) is not int64", id="int"),
        pytest.param("int64", ["1", "2.5"], "value '2.5' (row 2) is not int64", id="fraction"),
        pytest.param("int64", ["1", ""], "an empty value (row 2) cannot be int64", id="missing"),
        pytest.param("float64", ["1.5", "n/a?"], "value 'n/a?' (row 2)", id="float"),
        pytest.param("bool", ["true", "maybe"], "value 'maybe' (row 2) is not bool", id="bool"),
        pytest.param(
            "datetime64[ns]", ["2024-01-01", "last tuesday"], "value 'last tuesday'", id="date"
        ),
    ],
)
def test_a_value_that_does_not_convert_names_file_column_row_and_value(
    store: CountingDatastore,
    registry: DatasetRegistry,
    landing: Path,
    declared: str,
    rows: list[str],
    shown: str,
) -> None:
    write(landing, "in/a.csv", "id,value\n" + "".join(f"{n},{v}\n" for n, v in enumerate(rows)))

    with pytest.raises(MalformedFileError) as raised:
        register(store, registry, column_types={"value": declared})

    message = str(raised.value)
    assert "dataset 'stations', datastore 'landing'" in message
    assert "'in/a.csv', column 'value'" in message
    assert shown in message
    assert registry.latest(NAME) is None


def test_a_declared_column_missing_from_a_file_is_named(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(landing, "in/a.csv", "id,temp\n1,0.5\n")

    with pytest.raises(MalformedFileError) as raised:
        register(store, registry, column_types={"tmp": "float64"})

    message = str(raised.value)
    assert "'in/a.csv' has no column 'tmp' named in 'column_types'" in message
    assert "(columns: id, temp)" in message


@pytest.mark.parametrize(
    ("separator", "encoding", "data"),
    [
        pytest.param("\t", "utf-8", "id\tname\n1\tZürich\n".encode(), id="tab"),
        pytest.param("|", "cp1252", "id|name\n1|Zürich\n".encode("cp1252"), id="pipe-cp1252"),
        pytest.param(";", "utf-16", "id;name\n1;Zürich\n".encode("utf-16"), id="utf-16"),
    ],
)
def test_separator_and_encoding_are_used_and_recorded(
    store: CountingDatastore,
    registry: DatasetRegistry,
    landing: Path,
    separator: str,
    encoding: str,
    data: bytes,
) -> None:
    (landing / "in").mkdir(parents=True)
    (landing / "in" / "a.csv").write_bytes(data)

    outcome = register(store, registry, separator=separator, encoding=encoding)

    expected = pd.DataFrame({"id": [1], "name": ["Zürich"]})
    assert_frame_equal(load_version(outcome.record, store), expected)
    assert outcome.record.read_options == ReadOptions(separator=separator, encoding=encoding)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"separator": "||"}, "must be exactly one character", id="separator"),
        pytest.param({"encoding": "klingon"}, "'klingon' is not a known text encoding", id="enc"),
    ],
)
def test_unusable_read_options_name_the_option(
    store: CountingDatastore,
    registry: DatasetRegistry,
    landing: Path,
    options: dict[str, str],
    message: str,
) -> None:
    write(landing, "in/a.csv", "id\n1\n")

    with pytest.raises(MalformedFileError, match=message):
        register(store, registry, **options)


def test_changing_how_unchanged_files_are_read_registers_a_new_version(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(landing, "in/a.csv", "code\n007\n")
    first = register(store, registry)
    again = register(store, registry)

    retyped = register(store, registry, column_types={"code": "string"})

    assert not again.created
    assert retyped.created
    assert retyped.record.version == 2
    assert retyped.record.listing_fingerprint == first.record.listing_fingerprint
    assert load_version(first.record, store)["code"].tolist() == [7]
    assert load_version(retyped.record, store)["code"].tolist() == ["007"]


def test_a_version_loads_as_registered_even_if_the_spec_changed_since(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(landing, "in/a.csv", "code,at\n007,2011-01-02\n010,2011-01-01\n")
    record = register(store, registry, column_types={"code": "string"}).record
    newer_spec = DatasetSpec(datastore="landing", path="in/*.csv", timestamp_column="at")

    loaded = load_version(record, store, newer_spec)

    assert loaded["code"].tolist() == ["007", "010"]
    assert loaded["at"].tolist() == [pd.Timestamp("2011-01-02"), pd.Timestamp("2011-01-01")]


def test_a_record_without_load_options_falls_back_to_the_spec(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(landing, "in/a.csv", "code,at\n007,2011-01-02\n010,2011-01-01\n")
    # As registered before load_options existed.
    record = register(store, registry).record.model_copy(update={"load_options": None})
    spec = DatasetSpec(datastore="landing", path="in/*.csv", timestamp_column="at")

    loaded = load_version(record, store, spec)

    assert loaded["code"].tolist() == [10, 7]
