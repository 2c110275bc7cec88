from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from ingestion_project.catalog.errors import CatalogError
from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets.formats import MalformedFileError
from ingestion_project.datasets.partitions import PartitionFormat, PartitionFormatError
from ingestion_project.datasets.versions import (
    DatasetError,
    DatasetRegistry,
    load_version,
    register_file_dataset,
)
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project_tests.catalogs import project_catalog_of
from ingestion_project_tests.datasets.dataset_helpers import CountingDatastore, write


@pytest.mark.parametrize(
    ("partition_format", "path", "expected"),
    [
        pytest.param(
            "data/{region}/{date:yyyy/MM/dd}/*.parquet",
            "data/eu/2024/01/31/part-0.parquet",
            {"region": "eu", "date": datetime(2024, 1, 31)},
            id="azure-ml-example",
        ),
        pytest.param(
            "logs/{at:yyyy-MM-dd HH:mm:ss}.jsonl",
            "logs/2023-12-31 23:59:58.jsonl",
            {"at": datetime(2023, 12, 31, 23, 59, 58)},
            id="time-of-day",
        ),
        pytest.param(
            "{year:yyyy}/{month:MM}/x.csv",
            "2024/03/x.csv",
            {"year": datetime(2024, 1, 1), "month": datetime(1, 3, 1)},
            id="missing-date-parts-default-to-the-first",
        ),
        pytest.param(
            "x/{hour:yyyyMMddTHH}.csv",
            "x/20240102T05.csv",
            {"hour": datetime(2024, 1, 2, 5)},
            id="other-letters-are-literal",
        ),
        pytest.param("/{user}/data.csv", "alice/data.csv", {"user": "alice"}, id="leading-slash"),
        pytest.param(
            "**/{name}.csv", "a/b/c/trips.csv", {"name": "trips"}, id="double-star-spans-folders"
        ),
        pytest.param("{name}.csv", "trips.csv", {"name": "trips"}, id="double-star-may-be-empty"),
        pytest.param(
            "d/{a}_{b}.csv", "d/x_y_z.csv", {"a": "x_y", "b": "z"}, id="two-parts-in-one-name"
        ),
        pytest.param(
            "d/[ab]?/{k}.csv", "d/b1/v.csv", {"k": "v"}, id="glob-class-and-question-mark"
        ),
        pytest.param("d/{k}.c+v", "d/v.c+v", {"k": "v"}, id="regex-characters-are-literal"),
    ],
)
def test_a_matching_path_gives_its_partition_values(
    partition_format: str, path: str, expected: dict[str, object]
) -> None:
    assert PartitionFormat(partition_format).values(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("data/eu/2024/01/part-0.parquet", id="a-date-part-missing"),
        pytest.param("data/eu/24/01/31/part-0.parquet", id="two-digit-year"),
        pytest.param("data/eu/2024/1/31/part-0.parquet", id="one-digit-month"),
        pytest.param("data/eu/2024/01/31/extra/part-0.parquet", id="a-folder-too-many"),
        pytest.param("data/eu/2024/01/31/part-0.csv", id="other-extension"),
        pytest.param("other/eu/2024/01/31/part-0.parquet", id="other-root"),
        pytest.param("data//2024/01/31/part-0.parquet", id="empty-text-part"),
    ],
)
def test_a_path_that_does_not_fit_gives_no_values(path: str) -> None:
    assert PartitionFormat("data/{region}/{date:yyyy/MM/dd}/*.parquet").values(path) is None


@pytest.mark.parametrize(
    ("partition_format", "message"),
    [
        ("{a}/{a}.csv", "names 'a' twice"),
        ("{d:}/x.csv", "empty date format"),
        ("{d:abc}/x.csv", "has no date parts"),
        ("{d:yyyy/yyyy}/x.csv", "'yyyy' twice"),
        ("{a/x.csv", "unmatched"),
        ("a}/x.csv", "unmatched"),
        ("{1a}/x.csv", "unmatched"),
    ],
)
def test_a_malformed_format_says_what_is_wrong(partition_format: str, message: str) -> None:
    with pytest.raises(PartitionFormatError, match=message):
        PartitionFormat(partition_format)


def test_an_impossible_date_names_the_path_and_the_part() -> None:
    layout = PartitionFormat("{day:yyyy/MM/dd}/x.csv")
    with pytest.raises(PartitionFormatError) as raised:
        layout.values("2024/13/01/x.csv")
    assert "'2024/13/01/x.csv'" in str(raised.value)
    assert "'day' is not a valid date for 'yyyy/MM/dd'" in str(raised.value)


NAME = "sales"


def put_parquet(root: Path, relative: str, frame: pd.DataFrame) -> None:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(target, index=False)


def register(store: LocalDatastore, registry: DatasetRegistry, spec: DatasetSpec):
    return register_file_dataset(NAME, spec, store, registry, run_id="r", code_version="c")


def test_partition_values_and_the_path_become_columns_end_to_end(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    put_parquet(landing, "data/eu/2024/01/31/part-0.parquet", pd.DataFrame({"amount": [1, 2]}))
    put_parquet(landing, "data/us/2024/02/01/part-0.parquet", pd.DataFrame({"amount": [3]}))
    spec = DatasetSpec(
        datastore="landing",
        partition_format="data/{region}/{date:yyyy/MM/dd}/*.parquet",
        path_column="source",
    )

    outcome = register(store, registry, spec)
    loaded = load_version(outcome.record, store)

    expected = pd.DataFrame(
        {
            "amount": [1, 2, 3],
            "region": ["eu", "eu", "us"],
            "date": pd.to_datetime(["2024-01-31", "2024-01-31", "2024-02-01"]).astype(
                "datetime64[ns]"
            ),
            "source": [
                "data/eu/2024/01/31/part-0.parquet",
                "data/eu/2024/01/31/part-0.parquet",
                "data/us/2024/02/01/part-0.parquet",
            ],
        }
    )
    assert spec.path == "data/*/*/*/*/*.parquet"
    assert_frame_equal(outcome.frame, expected)
    assert_frame_equal(loaded, expected)
    assert outcome.record.load_options.partition_format == spec.partition_format
    schema = {column.name: column.type for column in outcome.record.table_schema or []}
    assert schema["region"] == "object"
    assert schema["date"] == "datetime64[ns]"


def test_a_declared_type_applies_to_a_partition_column(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(landing, "by_region/eu/a.csv", "amount\n1\n")
    write(landing, "by_region/us/a.csv", "amount\n2\n")
    spec = DatasetSpec(
        datastore="landing",
        partition_format="by_region/{region}/a.csv",
        column_types={"region": "category"},
    )

    frame = register(store, registry, spec).frame

    assert frame is not None
    assert isinstance(frame["region"].dtype, pd.CategoricalDtype)
    assert frame["region"].tolist() == ["eu", "us"]


def test_a_listed_file_that_does_not_fit_the_format_is_named_and_nothing_is_read(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    put_parquet(landing, "data/eu/2024/01/31/part-0.parquet", pd.DataFrame({"amount": [1]}))
    put_parquet(landing, "data/eu/latest/part-0.parquet", pd.DataFrame({"amount": [2]}))
    spec = DatasetSpec(
        datastore="landing",
        path="data/**/*.parquet",
        partition_format="data/{region}/{date:yyyy/MM/dd}/*.parquet",
    )

    with pytest.raises(DatasetError) as raised:
        register(store, registry, spec)

    message = str(raised.value)
    assert "dataset 'sales', datastore 'landing'" in message
    assert "'data/eu/latest/part-0.parquet' does not match partition_format" in message
    assert "narrow 'path'" in message
    assert store.opened == []
    assert registry.latest(NAME) is None


def test_an_impossible_date_in_a_path_is_an_error_naming_the_file(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path
) -> None:
    write(landing, "days/2024-02-30.csv", "amount\n1\n")
    spec = DatasetSpec(datastore="landing", partition_format="days/{day:yyyy-MM-dd}.csv")

    with pytest.raises(DatasetError, match=r"'days/2024-02-30\.csv'.*'day' is not a valid date"):
        register(store, registry, spec)


@pytest.mark.parametrize(
    ("options", "clash"),
    [
        pytest.param({"partition_format": "p/{amount}/a.csv"}, "'amount'", id="partition"),
        pytest.param({"path": "p/*/a.csv", "path_column": "amount"}, "'amount'", id="path"),
    ],
)
def test_a_generated_column_that_clashes_with_a_file_column_is_refused(
    store: CountingDatastore,
    registry: DatasetRegistry,
    landing: Path,
    options: dict[str, str],
    clash: str,
) -> None:
    write(landing, "p/x/a.csv", "amount\n1\n")

    with pytest.raises(MalformedFileError) as raised:
        register(store, registry, DatasetSpec.model_validate({"datastore": "landing", **options}))

    assert "dataset 'sales'" in str(raised.value)
    assert f"'p/x/a.csv' already has a column {clash}" in str(raised.value)


def test_a_malformed_partition_format_fails_when_the_catalog_loads() -> None:
    raw = {"datasets": {"sales": {"path": "p/*/a.csv", "partition_format": "p/{d:}/a.csv"}}}
    with pytest.raises(CatalogError, match=r"defs.yaml: datasets.sales: .*empty date format"):
        project_catalog_of(raw)


def test_a_path_column_that_is_also_a_placeholder_is_refused_at_load() -> None:
    raw = {"datasets": {"sales": {"partition_format": "p/{region}/a.csv", "path_column": "region"}}}
    with pytest.raises(CatalogError, match="path_column 'region' is also a placeholder"):
        project_catalog_of(raw)
