"""Any supported table input, read as a stream of Arrow record batches of the wanted columns.

Memory stays bounded by one batch: a pandas frame is converted a slice at a time, an Arrow table
is split into its own chunks, and an iterable is consumed lazily.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeGuard

import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

TableData: TypeAlias = "pd.DataFrame | pa.Table | Iterable[pa.RecordBatch | pd.DataFrame]"

# Rows of a pandas frame converted at once; large enough that numpy's per-call cost is noise.
FRAME_SLICE_ROWS = 1 << 18


def record_batches(
    data: TableData, columns: Sequence[str], *, role: str
) -> Iterator[pa.RecordBatch]:
    """Yield batches holding exactly ``columns``, in that order.

    ``role`` ("baseline", "target") names the input in errors. A missing column is a
    ``ValueError`` that names it and the columns the data has.
    """
    if _is_frame(data):
        yield from _frame_batches(data, columns, role)
    elif isinstance(data, pa.Table):
        yield from _table_batches(data, columns, role)
    elif isinstance(data, pa.RecordBatch):
        yield _selected(data, columns, role)
    elif isinstance(data, str | bytes) or not isinstance(data, Iterable):
        raise TypeError(
            f"The {role} is a {type(data).__name__}; pass a pandas DataFrame, a pyarrow Table, "
            "or an iterable of pyarrow RecordBatches or DataFrames."
        )
    else:
        for item in data:
            if _is_frame(item):
                yield from _frame_batches(item, columns, role)
            elif isinstance(item, pa.Table):
                yield from _table_batches(item, columns, role)
            elif isinstance(item, pa.RecordBatch):
                yield _selected(item, columns, role)
            else:
                raise TypeError(
                    f"The {role} yielded a {type(item).__name__}; its items must be pyarrow "
                    "RecordBatches, Tables or pandas DataFrames."
                )


def _is_frame(data: object) -> TypeGuard[pd.DataFrame]:
    # A DataFrame can only exist once pandas is imported, so there is no need to import it here.
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(data, pandas.DataFrame)


def _check_columns(present: Sequence[Any], columns: Sequence[str], role: str) -> None:
    have = set(present)
    missing = [name for name in columns if name not in have]
    if missing:
        raise ValueError(
            f"The {role} has no column(s) {missing}; its columns are {list(present)}. "
            "Rename the columns in the data, or leave these features out."
        )


def _selected(batch: pa.RecordBatch, columns: Sequence[str], role: str) -> pa.RecordBatch:
    _check_columns(batch.schema.names, columns, role)
    return batch.select(list(columns))


def _table_batches(table: pa.Table, columns: Sequence[str], role: str) -> Iterator[pa.RecordBatch]:
    _check_columns(table.schema.names, columns, role)
    selected = table.select(list(columns))
    batches = selected.to_batches()
    if not batches:
        yield pa.RecordBatch.from_pylist([], schema=selected.schema)
    yield from batches


def _frame_batches(
    frame: pd.DataFrame, columns: Sequence[str], role: str
) -> Iterator[pa.RecordBatch]:
    _check_columns(list(frame.columns), columns, role)
    for start in range(0, max(len(frame), 1), FRAME_SLICE_ROWS):
        part = frame.iloc[start : start + FRAME_SLICE_ROWS]
        arrays = [_arrow_column(part[name]) for name in columns]
        yield pa.RecordBatch.from_arrays(arrays, names=list(columns))


def _arrow_column(series: pd.Series) -> pa.Array:
    """One pandas column as Arrow; an ``object`` column becomes text, as the kind rules say."""
    if series.dtype != object:
        return pa.array(series, from_pandas=True)
    try:
        array = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Python objects of mixed types: each value's str(). Per-value Python, for messy data only.
        array = pa.array(series.map(str, na_action="ignore"), from_pandas=True)
    return array if pa.types.is_string(array.type) else array.cast(pa.string())
