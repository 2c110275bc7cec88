"""CSV rows and headers longer than pyarrow's block: the read starts again with larger blocks.

Blocks are made small (64 KiB) so that the files stay small.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from pandas.testing import assert_frame_equal

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets import formats
from ingestion_project.datasets.formats import MalformedFileError
from ingestion_project.datasets.versions import (
    DatasetRegistry,
    iter_version_batches,
    load_version,
    register_file_dataset,
)
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.records import DatasetVersionRecord
from ingestion_project_tests.datasets.dataset_helpers import (
    CountingDatastore,
    ForwardOnlyDatastore,
    write,
)

NAME = "trips"
BLOCK = 64 << 10
SPEC = DatasetSpec(datastore="landing", path="in/*.csv")


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "CSV_BLOCK_BYTES", BLOCK)


def long_row(rows: int = 12_000, at: int = 10_000) -> pd.DataFrame:
    """Short rows, and at row ``at`` (a few blocks in) a note three blocks long."""
    notes = [f"note {n}" for n in range(rows)]
    notes[at] = "x" * (3 * BLOCK)
    return pd.DataFrame({"id": range(rows), "note": notes, "amount": [n / 4 for n in range(rows)]})


def long_header(columns: int = 3_000) -> pd.DataFrame:
    """A header (and a row) longer than a block, as wide feature tables have."""
    names = [f"feature_with_a_long_name_{n:05d}" for n in range(columns)]
    return pd.DataFrame([range(columns), range(1, columns + 1)], columns=names)


SHAPES = {"long_row": long_row, "long_header": long_header}


def register(store: LocalDatastore, registry: DatasetRegistry) -> DatasetVersionRecord:
    return register_file_dataset(NAME, SPEC, store, registry, run_id="r", code_version="c").record


def streamed(batches: list[pa.RecordBatch]) -> pd.DataFrame:
    return pa.Table.from_batches(batches).to_pandas()


@pytest.mark.parametrize("shape", SHAPES)
def test_a_csv_with_a_line_longer_than_a_block_registers_and_loads(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path, shape: str
) -> None:
    frame = SHAPES[shape]()
    (landing / "in").mkdir(parents=True)
    frame.to_csv(landing / "in" / "a.csv", index=False)

    record = register(store, registry)

    assert record.row_count == len(frame)
    assert_frame_equal(load_version(record, store), frame)


@pytest.mark.parametrize("forward_only", [False, True], ids=["seekable", "forward_only"])
@pytest.mark.parametrize("shape", SHAPES)
def test_a_csv_with_a_line_longer_than_a_block_streams_every_row_once(
    registry: DatasetRegistry, landing: Path, shape: str, forward_only: bool
) -> None:
    """The long row comes after batches were given: the new start goes on after them."""
    frame = SHAPES[shape]()
    (landing / "in").mkdir(parents=True)
    frame.to_csv(landing / "in" / "a.csv", index=False)
    kind = ForwardOnlyDatastore if forward_only else CountingDatastore
    store = kind(name="landing", root=str(landing))
    record = register(store, registry)

    batches = list(iter_version_batches(record, store, batch_size=1_000))

    assert_frame_equal(streamed(batches), frame)


def test_a_line_longer_than_the_largest_block_is_an_error_that_gives_no_block_advice(
    store: CountingDatastore,
    registry: DatasetRegistry,
    landing: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (landing / "in").mkdir(parents=True)
    long_row().to_csv(landing / "in" / "a.csv", index=False)
    record = register(store, registry)
    monkeypatch.setattr(formats, "CSV_MAX_BLOCK_BYTES", 2 * BLOCK)

    for read in (
        lambda: load_version(record, store),
        lambda: list(iter_version_batches(record, store)),
    ):
        with pytest.raises(MalformedFileError) as raised:
            read()
        message = str(raised.value)
        assert message.startswith("dataset 'trips', datastore 'landing'")
        assert "'in/a.csv' has a row longer than 0.125 MiB" in message
        assert "block" not in message


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        pytest.param(
            "id,note\n" + "1,a\n" * 20_000 + "2,b,c\n",
            "CSV parse error: Expected 2 columns, got 3",
            id="row",
        ),
        pytest.param("", "Empty CSV file.", id="empty"),
        pytest.param(
            "id,note" + " " * BLOCK, "CSV parse error: Empty CSV file or block", id="header_only"
        ),
    ],
)
def test_a_malformed_csv_still_names_the_dataset_the_datastore_and_the_file(
    store: CountingDatastore, registry: DatasetRegistry, landing: Path, text: str, detail: str
) -> None:
    write(landing, "in/a.csv", text)

    with pytest.raises(MalformedFileError) as raised:
        register(store, registry)

    message = str(raised.value)
    assert message.startswith("dataset 'trips', datastore 'landing'")
    assert f"'in/a.csv' could not be read as csv: {detail}" in message
    assert "Fix the file, or the dataset's 'format:'/'separator:'" in message
    assert registry.latest(NAME) is None
