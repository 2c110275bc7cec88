"""A version's files written straight into its frame's columns, one file at a time.

Joining every file's Arrow table and converting the whole once (:func:`formats.joined_frame`)
holds all the parsed tables, the parser's leftover pages and the frame being built at the same
time: a 200 MB Parquet version peaked at 1.5x its frame, and 2.4x when pandas wrote the files.
When a version's row count is known before its files are read (a registered version), each
column is allocated once for all its rows, each file's values are converted into their slice,
and each of the file's columns is let go as soon as it is converted: the peak is the frame and
one file.

The frame is the one the joined conversion gives: ints with a missing value anywhere become
floats, bools objects, a column no file has a value in is objects (floats for CSV). Where that
cannot be assured (types that differ between files, pandas metadata beyond plain columns,
types pandas holds in its own arrays), :class:`AssemblyAbandoned` says so, before anything of
that file is taken, and the caller reads the joined way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ingestion_project.datasets.dictionary_text import is_marked, text_objects
from ingestion_project.datasets.formats import shares_repeated_text

if TYPE_CHECKING:
    import pyarrow as pa

_MISSING_FORM = {"i": np.dtype(np.float64), "u": np.dtype(np.float64), "b": np.dtype(object)}
"""What a column of this numpy kind becomes when a value is missing; other kinds stay."""

_WIDEN_CHUNK = 1 << 20
"""Values converted at a time when an int column turns float in place."""


class AssemblyAbandoned(Exception):
    """The files cannot be assembled column by column; read them the joined way instead."""


@dataclass
class _Column:
    """One column of the frame being assembled."""

    arrow_type: Any  # None while every file so far had no value in it (Arrow's null type)
    values: np.ndarray | None = None
    missing: list[tuple[int, int]] = field(default_factory=list)  # rows without a value
    texts: dict[str, str] = field(default_factory=dict)  # one object per repeated text


class FrameAssembly:
    """A frame of ``rows`` rows, filled a file's table at a time by :meth:`take`."""

    def __init__(self, rows: int, *, file_format: str) -> None:
        self.rows = rows
        self.file_format = file_format
        self.filled = 0
        self._columns: dict[str, _Column] = {}

    def take(self, tables: list[pa.Table | pd.DataFrame]) -> None:
        """Convert the one table in ``tables`` into the frame's next rows, emptying the list.

        The list holds the table so that each column's Arrow memory is given back as soon as it
        is converted. AssemblyAbandoned from the checks leaves the table in the list, to be read
        the joined way with the tables after it if nothing was taken before (``filled`` is 0);
        raised once the list is emptied, or with rows taken, every file must be read again.
        """
        (table,) = tables
        if not _is_arrow_table(table):
            raise AssemblyAbandoned("a file was read by pandas")
        self._check(table)
        tables.clear()
        import pyarrow as pa

        pool = pa.default_memory_pool()
        position = self.filled
        rows = table.num_rows
        for name in list(table.column_names):
            arrow_field = table.schema.field(name)
            values = table.column(name)
            table = table.drop_columns([name])
            self._write(self._columns[name], arrow_field, values, position)
            del values
            pool.release_unused()
        self.filled = position + rows

    def frame(self) -> pd.DataFrame:
        """The assembled frame; AssemblyAbandoned if the files held another number of rows."""
        if self.filled != self.rows:
            raise AssemblyAbandoned(f"{self.filled} rows read where the version has {self.rows}")
        series = {}
        for name, column in self._columns.items():
            if column.values is None:
                # No file had a value: pandas reads such a CSV column as floats.
                kind = np.float64 if self.file_format == "csv" else object
                column.values = _allocated(np.dtype(kind), self.rows)
                column.missing = [(0, self.rows)]
            for start, stop in column.missing:
                column.values[start:stop] = _missing_value(column.values.dtype)
            column.missing.clear()
            series[name] = pd.Series(column.values, copy=False)
        return pd.DataFrame(series, copy=False)

    def _check(self, table: pa.Table) -> None:
        """Refuse a table whose conversion could differ from the joined one."""
        stored = _plain_pandas_types(table.schema)
        if stored is None:
            raise AssemblyAbandoned("pandas metadata beyond plain columns")
        names = table.column_names
        if len(set(names)) != len(names):
            raise AssemblyAbandoned("repeated column names")
        if self._columns and names != list(self._columns):
            raise AssemblyAbandoned("files with other columns")
        if self.filled + table.num_rows > self.rows:
            raise AssemblyAbandoned("more rows than the version has")
        for arrow_field in table.schema:
            arrow_type = _joined_type(arrow_field)
            if arrow_type is not None and _numpy_type(arrow_type) is None:
                raise AssemblyAbandoned(f"column '{arrow_field.name}' is {arrow_type}")
            expected = stored.get(arrow_field.name)
            if expected is not None and not _as_stored(arrow_type, expected):
                raise AssemblyAbandoned(f"column '{arrow_field.name}' is not as pandas stored it")
            column = self._columns.get(arrow_field.name)
            if column is None:
                continue
            if None not in (arrow_type, column.arrow_type) and arrow_type != column.arrow_type:
                raise AssemblyAbandoned(f"column '{arrow_field.name}' changes type between files")
        if not self._columns:
            for arrow_field in table.schema:
                self._columns[arrow_field.name] = _Column(_joined_type(arrow_field))

    def _write(
        self, column: _Column, arrow_field: pa.Field, values: pa.ChunkedArray, position: int
    ) -> None:
        arrow_type = _joined_type(arrow_field)
        if arrow_type is None:
            self._missing(column, position, len(values))
            return
        column.arrow_type = arrow_type
        for part in _numpy_parts(values, is_marked(arrow_field), column.texts):
            self._room_for(column, part.dtype)
            assert column.values is not None
            column.values[position : position + len(part)] = part
            position += len(part)

    def _missing(self, column: _Column, start: int, count: int) -> None:
        column.missing.append((start, start + count))
        if column.values is not None:
            column.values = _with_missing(column.values)

    def _room_for(self, column: _Column, dtype: np.dtype) -> None:
        """Allocate the column, or widen it, so that values of ``dtype`` fit."""
        if column.values is None:
            target = _MISSING_FORM.get(dtype.kind, dtype) if column.missing else dtype
            column.values = _allocated(target, self.rows)
        elif column.values.dtype != dtype:
            widened = _MISSING_FORM.get(column.values.dtype.kind)
            if widened != dtype:  # a missing value only ever makes a column float or objects
                if _MISSING_FORM.get(dtype.kind) == column.values.dtype:
                    return  # values cast on assignment, as in the joined column
                raise AssemblyAbandoned(f"{dtype} values in a {column.values.dtype} column")
            column.values = _with_missing(column.values)


def _is_arrow_table(table: object) -> bool:
    import pyarrow as pa

    return isinstance(table, pa.Table)


def _joined_type(arrow_field: pa.Field) -> Any:
    """The column's type as the joined conversion sees it: marked dictionaries as their text."""
    import pyarrow as pa

    if pa.types.is_null(arrow_field.type):
        return None
    if is_marked(arrow_field):
        return arrow_field.type.value_type
    return arrow_field.type


def _numpy_type(arrow_type: pa.DataType) -> np.dtype | None:
    """The numpy type pyarrow gives a column of ``arrow_type`` with every value present.

    None for types pandas holds otherwise (time zones, categories, nested values).
    """
    import pyarrow as pa

    types = pa.types
    if types.is_integer(arrow_type) or types.is_floating(arrow_type):
        return np.dtype(arrow_type.to_pandas_dtype())
    if types.is_boolean(arrow_type):
        return np.dtype(np.bool_)
    if (types.is_timestamp(arrow_type) and arrow_type.tz is None) or types.is_duration(arrow_type):
        return np.dtype(arrow_type.to_pandas_dtype())
    plain_objects = (
        types.is_string,
        types.is_large_string,
        types.is_binary,
        types.is_large_binary,
        types.is_fixed_size_binary,
        types.is_date,
        types.is_time,
        types.is_decimal,
    )
    if any(is_type(arrow_type) for is_type in plain_objects):
        return np.dtype(object)
    return None


def _as_stored(arrow_type: Any, expected: str) -> bool:
    """Whether pandas' metadata asks for the type the plain conversion gives."""
    try:
        stored = np.dtype(expected)
    except TypeError:
        return False  # an extension type ("Int64", "string")
    if arrow_type is None:
        return stored == np.dtype(object)
    return _numpy_type(arrow_type) == stored


def _plain_pandas_types(schema: pa.Schema) -> dict[str, str] | None:
    """The numpy type pandas' metadata names per column, or None if it asks for more.

    More is an index other than a range (the frame's index is always a new range), column
    labels other than plain text, or a column with its own metadata (time zones, categories,
    decimals' precision).
    """
    metadata = schema.pandas_metadata
    if not metadata:
        return {}
    if any(
        not isinstance(index, dict) or index.get("kind") != "range"
        for index in metadata.get("index_columns", [])
    ):
        return None
    levels = metadata.get("column_indexes", [])
    if len(levels) > 1 or any(
        level.get("name") is not None or level.get("pandas_type") != "unicode" for level in levels
    ):
        return None
    stored = {}
    for column in metadata.get("columns", []):
        name, numpy_type = column.get("field_name"), column.get("numpy_type")
        if column.get("metadata") is not None or not isinstance(numpy_type, str):
            return None
        if not isinstance(name, str) or column.get("name") != name:
            return None  # a label pandas restores as something other than its text
        stored[name] = numpy_type
    return stored


def _numpy_parts(values: pa.ChunkedArray, marked: bool, shared: dict[str, str]) -> list[np.ndarray]:
    """The column's values as numpy arrays, as the joined conversion gives them.

    Repeated text is one ``str`` per distinct value across all files (``shared``), as pyarrow
    makes it when it converts the joined column.
    """
    import pyarrow as pa

    if marked:
        return [text_objects(values, shared)]
    if _numpy_type(values.type).kind == "O":  # type: ignore[union-attr]
        text = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
        repeats = shares_repeated_text(values)
        if text and repeats:
            return [text_objects(values.dictionary_encode(), shared)]
        return [values.to_pandas(deduplicate_objects=repeats).to_numpy()]
    # Without missing values a chunk is a view of Arrow's memory: one copy, into the frame.
    return [chunk.to_numpy(zero_copy_only=False) for chunk in values.chunks if len(chunk)]


def _allocated(dtype: np.dtype, rows: int) -> np.ndarray:
    """An array of ``rows`` values, from Arrow's pool unless it holds Python objects.

    Arrow's pool is where pyarrow puts the arrays it converts, and where it keeps memory
    between loads.
    """
    if dtype.kind == "O":
        return np.full(rows, None, dtype=object)
    import pyarrow as pa

    buffer = pa.allocate_buffer(rows * dtype.itemsize, memory_pool=pa.default_memory_pool())
    return np.frombuffer(buffer, dtype=dtype)


def _with_missing(values: np.ndarray) -> np.ndarray:
    """The column turned into the type that can hold a missing value (ints into floats)."""
    target = _MISSING_FORM.get(values.dtype.kind)
    if target is None:
        return values
    if target.itemsize == values.itemsize:  # 8-byte ints: into floats in place
        floats = values.view(target)
        for start in range(0, len(values), _WIDEN_CHUNK):
            stop = start + _WIDEN_CHUNK
            floats[start:stop] = values[start:stop].copy()
        return floats
    widened = _allocated(target, len(values))
    widened[:] = values
    return widened


def _missing_value(dtype: np.dtype) -> Any:
    if dtype.kind == "f":
        return np.nan
    if dtype.kind in "Mm":
        return np.array("NaT", dtype=dtype)[()]
    return None
