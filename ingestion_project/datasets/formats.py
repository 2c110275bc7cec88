"""Read the files of a tabular dataset, whole or in batches, with errors that say which file.

CSV goes through pyarrow's reader (the speed of ``pd.read_csv(engine="pyarrow")`` with the same
missing-value markers); declared ``column_types`` are applied after reading, so a value that
does not convert is reported with its file, column, row and value. pyarrow parses in blocks and
fails on a row longer than one; such a read starts again with larger blocks, by itself.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import shutil
import stat
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from ingestion_project.datasets.dictionary_text import (
    decoded,
    is_marked,
    marked_text,
    read_parquet,
    read_parquet_row_groups,
    same_text_form,
    text_objects,
)
from ingestion_project.datasets.profile import text_repeats

if TYPE_CHECKING:
    import pyarrow as pa

    from ingestion_project.catalog.spec import DatasetSpec
    from ingestion_project.records import WindowBounds

_Arrow = TypeVar("_Arrow", "pa.Table", "pa.RecordBatch")

# pandas' default missing-value markers, so CSV reads as pd.read_csv would read it.
NA_VALUES = [
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
]
TEXT_TYPES = frozenset({"string", "category"})
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})
CSV_BLOCK_BYTES = 4 << 20
# A row (or header) longer than a block makes pyarrow fail; the read is retried with blocks twice
# as large, up to this (pyarrow keeps the size in an int32).
CSV_MAX_BLOCK_BYTES = 1 << 30
_STRADDLING = "straddling object straddles two block boundaries"
_NO_COLUMNS = "Empty CSV file or block: cannot infer number of columns"
# Non-seekable Parquet streams (blob, HTTP) are spooled to disk past this size to find the footer.
SPOOL_MEMORY_BYTES = 64 << 20
CSV_PIECE_BYTES = 32 << 20
"""A UTF-8 CSV file converted straight into a frame is parsed this much at a time, cut at a
line's end: its text, table and the parser's working memory are then held for one piece, not
the whole file (a 570 MB file peaked at 3.3x its frame when parsed whole)."""
JSON_STREAM_BLOCK_BYTES = 1 << 20
"""JSON lines are streamed in blocks this large: larger ones raised the peak (4 MiB: +306 MB
for 320 MB of JSON, 1 MiB: +182 MB, read whole: +401 MB) and were no faster."""


class MalformedFileError(ValueError):
    """A file could not be parsed in the dataset's declared format."""


@dataclass(frozen=True)
class ReadSettings:
    """Everything that decides how a version's files become a table; recorded with the version.

    A version keeps its settings so that it loads the same way after the YAML changes.
    """

    file_format: str = "csv"
    separator: str = ","
    encoding: str = "utf-8"
    header: bool = True
    column_types: Mapping[str, str] = field(default_factory=dict)
    partition_format: str | None = None
    path_column: str | None = None
    timestamp_column: str | None = None
    window: WindowBounds | None = None
    json_reader: str = "pandas"
    """JSON lines: "arrow" (pyarrow's reader) for versions registered since it became the
    default; "pandas" (``pd.read_json``) for older ones, which keep loading as they were."""

    @classmethod
    def from_spec(cls, spec: DatasetSpec, window: WindowBounds | None = None) -> ReadSettings:
        return cls(
            file_format=spec.file_format,
            separator=spec.separator,
            encoding=spec.encoding,
            header=spec.header,
            column_types=dict(spec.column_types),
            partition_format=spec.partition_format,
            path_column=spec.path_column,
            timestamp_column=spec.timestamp_column,
            window=window,
            json_reader="arrow" if spec.file_format == "jsonl" else "pandas",
        )

    def typed_columns(self) -> dict[str, str]:
        """Columns converted after reading: the declared ones, and the timestamp as a datetime."""
        typed = dict(self.column_types)
        if self.timestamp_column:
            typed.setdefault(self.timestamp_column, "datetime64[ns]")
        return typed

    def read_options(self) -> dict[str, Any]:
        """How bytes become text (kept under the record's ``read_options``)."""
        return {"separator": self.separator, "encoding": self.encoding}

    def load_options(self) -> dict[str, Any]:
        """How text becomes columns (kept under the record's ``load_options``)."""
        return {
            "header": self.header,
            "column_types": dict(self.column_types),
            "partition_format": self.partition_format,
            "path_column": self.path_column,
            "timestamp_column": self.timestamp_column,
            # Only windowed versions carry the key, so other fingerprints stay as they were.
            **({"window": self.window.model_dump(mode="json")} if self.window else {}),
            **({"json_reader": self.json_reader} if self.arrow_json else {}),
        }

    @property
    def arrow_json(self) -> bool:
        return self.file_format == "jsonl" and self.json_reader == "arrow"


def read_json_with_pandas(stream: IO[bytes], *, path: str, encoding: str) -> pd.DataFrame:
    """A JSON lines file as ``pd.read_json`` reads it.

    Versions registered before the Arrow reader load this way (``ReadSettings.json_reader``).
    """
    with _malformed(path, "jsonl", encoding):
        frame = pd.read_json(stream, lines=True, encoding=encoding)
    return _with_columns(frame, path)


def read_arrow_table(
    stream: IO[bytes],
    *,
    file_format: str,
    path: str,
    separator: str = ",",
    encoding: str = "utf-8",
    header: bool = True,
    text_columns: frozenset[str] = frozenset(),
    kept: bool = True,
) -> pa.Table | pd.DataFrame:
    """Parse one CSV, Parquet or JSON lines file into Arrow, typed as its pandas frame will be.

    A JSON lines file whose values change type from row to row (a number, then text) is read
    by pandas instead, which keeps such a column as objects. Files are joined as Arrow tables
    and turned into pandas once (:func:`joined_frame`): one conversion is cheaper than a frame
    per file copied again by ``pd.concat``. Dates and times become nanoseconds; a Parquet
    file's stored pandas index is left out, as ``pd.concat`` with ``ignore_index`` leaves it
    out. Columns with no value keep Arrow's null type, so joining them with another file's
    values takes that file's type. ``kept``: the table is held while other files are read, so a
    CSV file's columns are joined in one piece (:func:`_compacted`); a table converted at once
    is not.
    """
    import pyarrow as pa

    with _malformed(path, file_format, encoding):
        if file_format == "parquet":
            with _parquet_source(stream) as source:
                table = _without_pandas_index(read_parquet(source))
        elif file_format == "jsonl":
            table = _read_jsonl(stream, encoding)
            if isinstance(table, pd.DataFrame):
                return _with_columns(table, path)
        else:
            table = _read_csv(stream, separator, encoding, header, text_columns)
            table = _compacted(table) if kept else table
    # The parser's working memory goes back to the system, not kept for the next file.
    pa.default_memory_pool().release_unused()
    if table.num_columns == 0:
        raise MalformedFileError(
            f"'{path}' has no columns (is it empty?). Fix the file or remove it from the dataset."
        )
    return table


def iter_arrow_tables(
    stream: IO[bytes],
    *,
    file_format: str,
    path: str,
    separator: str = ",",
    encoding: str = "utf-8",
    header: bool = True,
    text_columns: frozenset[str] = frozenset(),
) -> Iterator[pa.Table | pd.DataFrame]:
    """A file parsed as :func:`read_arrow_table` parses it, in pieces to convert one at a time.

    A Parquet file comes a row group at a time, a UTF-8 CSV or JSON lines file about
    ``CSV_PIECE_BYTES`` at a time, so a large file is never held whole in Arrow beside its
    frame; a CSV or JSON lines file in another encoding comes whole.
    """
    if file_format == "csv" and codecs.lookup(encoding).name == "utf-8":
        with _malformed(path, file_format, encoding):
            yield from _csv_pieces(stream, path, separator, header, text_columns)
        return
    if file_format == "jsonl" and codecs.lookup(encoding).name == "utf-8":
        with _malformed(path, file_format, encoding):
            yield from _jsonl_pieces(stream)
        return
    if file_format != "parquet":
        yield read_arrow_table(
            stream,
            file_format=file_format,
            path=path,
            separator=separator,
            encoding=encoding,
            header=header,
            text_columns=text_columns,
            kept=False,
        )
        return
    import pyarrow as pa

    with _malformed(path, file_format, encoding), _parquet_source(stream) as source:
        for table in read_parquet_row_groups(source):
            if table.num_columns == 0:
                raise MalformedFileError(
                    f"'{path}' has no columns (is it empty?). Fix the file or remove it from the "
                    "dataset."
                )
            held = [table]
            del table  # nothing here holds the piece while the caller converts and drops it
            yield _without_pandas_index(held.pop())
            pa.default_memory_pool().release_unused()


class PiecesDisagree(Exception):
    """A later piece of a file does not parse as its first did: read the file whole instead."""


def _csv_pieces(
    stream: IO[bytes], path: str, separator: str, header: bool, text_columns: frozenset[str]
) -> Iterator[pa.Table]:
    """A UTF-8 CSV file as tables of about ``CSV_PIECE_BYTES`` of its text each.

    Each piece is parsed by pyarrow's threaded reader. Later pieces take the column names and
    types of the ones before, as one read of the whole file would; a piece that does not parse
    with them raises PiecesDisagree (the whole file's read then types or refuses it). pyarrow
    itself cuts a file into blocks at line ends, not minding quotes, so the cuts are its own.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    parse_options = _csv_parse_options(separator)
    types: dict[str, pa.DataType] = dict.fromkeys(_arrow_names(text_columns, header), pa.string())
    names: list[str] | None = None
    offset, first = 0, True
    for piece in _line_pieces(stream):
        if not len(piece) and not first:
            return
        # Text of few values comes as a dictionary, as Parquet stores it (see dictionary_text):
        # cheaper to parse, and one string object per value for pandas.
        convert_options = pacsv.ConvertOptions(
            null_values=NA_VALUES,
            strings_can_be_null=True,
            column_types=types,
            auto_dict_encode=True,
        )

        def parse(
            block: int, piece: pa.Buffer = piece, options: Any = convert_options, names: Any = names
        ) -> Any:
            read_options = _csv_read_options("utf-8", header, block)
            if names is not None:
                read_options.column_names = names
            return pacsv.read_csv(
                pa.BufferReader(piece),
                read_options=read_options,
                parse_options=parse_options,
                convert_options=options,
            )

        size = len(piece)
        try:
            table = _parse_in_blocks(parse, lambda size=size: size, size)
        except pa.ArrowInvalid as error:
            if first:
                _require_utf8_piece(piece, offset)  # a byte that is not text, where it is
                raise
            raise PiecesDisagree(str(error)) from None
        if any(
            pa.types.is_binary(kind) or pa.types.is_large_binary(kind)
            for kind in table.schema.types
        ):
            _require_utf8_piece(piece, offset)
        if first and table.num_columns == 0:
            raise MalformedFileError(
                f"'{path}' has no columns (is it empty?). Fix the file or remove it from the "
                "dataset."
            )
        offset += len(piece)
        del piece
        if header and names is None:
            names = table.column_names
        for name, kind in zip(table.column_names, table.schema.types, strict=True):
            if not pa.types.is_null(kind):
                types.setdefault(name, kind)
        held = [table]
        del table  # nothing here holds the piece while the caller converts and drops it
        yield marked_text(_csv_table(held.pop(), header))
        first = False


def _jsonl_pieces(stream: IO[bytes]) -> Iterator[pa.Table]:
    """A UTF-8 JSON lines file as tables of about ``CSV_PIECE_BYTES`` each.

    Typed by its first block, as :func:`_read_jsonl` types it; PiecesDisagree where that read
    would do more (a later block that disagrees, text that is not UTF-8, a file without rows).
    """
    import pyarrow as pa
    import pyarrow.json as pajson

    options = pajson.ReadOptions(block_size=JSON_STREAM_BLOCK_BYTES)
    batches: list[pa.RecordBatch] = []
    held = given = 0
    try:
        reader = pajson.open_json(stream, read_options=options)
        schema = reader.schema
        for batch in reader:
            batches.append(batch)
            held += batch.nbytes
            if held >= CSV_PIECE_BYTES:
                yield _json_piece(batches, schema)
                held, given = 0, given + 1
    except pa.ArrowInvalid as error:
        raise PiecesDisagree(str(error)) from None
    if batches:
        yield _json_piece(batches, schema)
    elif not given:
        raise PiecesDisagree("no rows")


def _json_piece(batches: list[pa.RecordBatch], schema: pa.Schema) -> pa.Table:
    """The batches as one table (the list emptied), checked to be UTF-8 as _read_jsonl checks."""
    import pyarrow as pa

    table = pa.Table.from_batches(batches, schema=schema)
    batches.clear()
    try:
        table.validate(full=True)
    except pa.ArrowInvalid as error:
        raise PiecesDisagree(str(error)) from None
    return _nanosecond_times(table)


def _line_pieces(stream: IO[bytes]) -> Iterator[pa.Buffer]:
    """The stream in pieces of about ``CSV_PIECE_BYTES``, each ending at a line's end.

    The next piece is read on another thread while the caller parses one, as pyarrow reads
    ahead of its own parser; each is read into its own buffer, with the line cut from the one
    before copied in front, so no piece is copied again. A file without line ends is one piece.
    """
    import pyarrow as pa

    def read(rest: bytes) -> tuple[pa.Buffer, int]:
        # From Arrow's pool, which hands the last piece's memory to the next one.
        data = pa.allocate_buffer(len(rest) + CSV_PIECE_BYTES)
        view = memoryview(data).cast("B")
        view[: len(rest)] = rest
        size = len(rest)
        while size < len(view):
            count = stream.readinto(view[size:])  # type: ignore[attr-defined]
            if not count:
                break
            size += count
        return data, size

    if not hasattr(stream, "readinto"):
        yield pa.py_buffer(stream.read())
        return
    with ThreadPoolExecutor(1, thread_name_prefix="csv-read") as reader:
        ahead = reader.submit(read, b"")
        while True:
            data, size = ahead.result()
            full = size == data.size
            end = _after_last_line(data, size) if full else size
            if full and end == 0:  # a line longer than the piece: read on to its end
                ahead = reader.submit(read, data[:size].to_pybytes())
                continue
            if full:
                ahead = reader.submit(read, data[end:size].to_pybytes())
            piece = data[:end]
            del data
            yield piece
            del piece
            if not full:
                return


def _after_last_line(data: pa.Buffer, size: int) -> int:
    """Where the last line of ``data[:size]`` ends (0 if none does), looking back from the end."""
    view = np.frombuffer(data, dtype=np.uint8, count=size)
    stop, window = size, 1 << 16
    while stop > 0:
        start = max(0, stop - window)
        ends = np.flatnonzero(view[start:stop] == ord("\n"))
        if len(ends):
            return start + int(ends[-1]) + 1
        stop, window = start, window * 4
    return 0


def _require_utf8_piece(piece: pa.Buffer, offset: int) -> None:
    """Raise UnicodeDecodeError, at its byte in the file, if a piece is not UTF-8 text."""
    try:
        piece.to_pybytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise UnicodeDecodeError(
            "utf-8", error.object, error.start + offset, error.end + offset, error.reason
        ) from None


def _compacted(table: pa.Table) -> pa.Table:
    """A parsed CSV file's columns each in one piece, apart from the parser's working memory.

    pyarrow's pool only gives back pages it holds nothing on. The parser leaves each column in
    a chunk per block, on the same pages as its scratch buffers; joined in one piece each, the
    scratch pages free whole. A 570 MB CSV load then peaked at 1.4x the frame, not 1.9x.
    Columns too long to join (over 2 GiB of text) stay in pieces.
    """
    import pyarrow as pa

    try:
        return table.combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowCapacityError):
        return table


def read_memory(file_format: str) -> contextlib.AbstractContextManager[None]:
    """Which allocator Arrow uses while files of ``file_format`` are read into pandas.

    Parsing makes many short-lived buffers, which pyarrow's own pool reuses: with the
    system's allocator, which gives each back and faults it in again, a Parquet or CSV load
    took 1.3-1.6x as long. JSON lines load as fast either way, and peak at 1.4x the frame with
    the system's against 1.8x with pyarrow's (``benchmarks/load_tabular.py``).
    """
    return system_memory() if file_format == "jsonl" else contextlib.nullcontext()


@contextmanager
def system_memory() -> Iterator[None]:
    """Arrow allocates with the system's allocator while a version is read into pandas.

    pyarrow's default pool (mimalloc) keeps memory it was given back for later, so a load held
    the parsed tables' memory and the frame's together (1.5-1.9x the frame, in
    ``benchmarks/load_tabular.py``); with the system's allocator each column freed after its
    conversion is returned at once (1.2-1.3x). In a fresh process, as each Dagster run is, it
    is also faster; loading again and again in one process gains from mimalloc's kept pages.
    Buffers remember their pool, so switching is safe.
    """
    import pyarrow as pa

    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def joined_frame(
    tables: list[pa.Table],
    *,
    file_format: str,
    inspect: Callable[[pa.Table], None] | None = None,
) -> pd.DataFrame | None:
    """The files' tables joined and turned into one frame, or None if pandas must join them.

    None is where pandas would need objects to join them (a number in one file, text in
    another); the tables are then kept. Types widen as pandas would widen them: int and float
    to float, a column without values to the other files' type. ``inspect`` sees the joined
    table before it is converted. The list is emptied: once joined, the table is converted a
    column at a time, each column's Arrow memory given back before the next, so a load peaks
    near the frame's own size rather than at the table and the frame together.
    """
    import pyarrow as pa

    tables[:] = same_text_form(tables)
    try:
        joined = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    tables.clear()
    joined = _nulls_as_float(joined, file_format)
    if inspect is not None:
        inspect(joined)
    names = joined.column_names
    if joined.schema.pandas_metadata or len(set(names)) != len(names):
        # pandas' own metadata (index, extension types) is applied to a whole table.
        return decoded(joined).to_pandas(split_blocks=True, self_destruct=True)
    pool = pa.default_memory_pool()
    columns: dict[str, pd.Series] = {}
    for name in names:
        column = joined.column(name)
        dictionary_text = is_marked(joined.schema.field(name))
        joined = joined.drop_columns([name])
        if dictionary_text:
            columns[name] = pd.Series(text_objects(column), copy=False)
        else:
            columns[name] = column.to_pandas(deduplicate_objects=shares_repeated_text(column))
        del column
        pool.release_unused()
    return pd.DataFrame(columns, copy=False)


def shares_repeated_text(column: pa.ChunkedArray) -> bool:
    """Whether pandas should share one Python string among equal values of this column.

    Sharing saves the memory of repeated text (8 countries in 6.45 M rows: 1 MB, not 96), but
    the table it takes costs more than it saves when values seldom repeat: 1.6 M timestamps
    as text took 0.69 s and peaked at +426 MB with it, 0.09 s and +122 MB without.
    """
    import pyarrow as pa

    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return True
    return text_repeats(column)


def arrow_frame(table: pa.Table | pa.RecordBatch, *, file_format: str = "csv") -> pd.DataFrame:
    """One table as pandas, as ``pd.read_csv``/``pd.read_parquet`` would give it."""
    return _nulls_as_float(decoded(table), file_format).to_pandas()


def _nulls_as_float(table: _Arrow, file_format: str) -> _Arrow:
    """A CSV column with no value at all as float64 (all NaN), as pandas makes it.

    Parquet's keeps the type pandas stored (objects, for a column of None).
    """
    import pyarrow as pa

    schema = table.schema
    for index, arrow_type in enumerate(schema.types):
        if pa.types.is_null(arrow_type) and file_format == "csv":
            schema = schema.set(index, schema.field(index).with_type(pa.float64()))
    return table.cast(schema) if schema != table.schema else table


def _with_columns(frame: pd.DataFrame, path: str) -> pd.DataFrame:
    if frame.columns.empty:
        raise MalformedFileError(
            f"'{path}' has no columns (is it empty?). Fix the file or remove it from the dataset."
        )
    return frame


def _without_pandas_index(table: pa.Table) -> pa.Table:
    """A Parquet table without the index pandas stored with it (its values and metadata)."""
    import json

    metadata = table.schema.metadata or {}
    pandas_metadata = table.schema.pandas_metadata
    if not pandas_metadata or not pandas_metadata.get("index_columns"):
        return table
    stored = [name for name in pandas_metadata["index_columns"] if isinstance(name, str)]
    pandas_metadata["index_columns"] = []
    pandas_metadata["columns"] = [
        column
        for column in pandas_metadata.get("columns", [])
        if column.get("field_name") not in stored
    ]
    table = table.drop_columns([name for name in stored if name in table.column_names])
    return table.replace_schema_metadata(
        {**metadata, b"pandas": json.dumps(pandas_metadata).encode()}
    )


def iter_table_batches(
    stream: IO[bytes],
    *,
    file_format: str,
    path: str,
    batch_size: int,
    separator: str = ",",
    encoding: str = "utf-8",
    header: bool = True,
    csv_types: Mapping[str, pa.DataType] | None = None,
    json_reader: str = "pandas",
    column_order: Sequence[str] = (),
) -> Iterator[pd.DataFrame]:
    """Parse one file as frames of at most ``batch_size`` rows, never holding the whole file.

    ``csv_types`` fixes CSV (and Arrow-read JSON lines) column types: pyarrow would otherwise
    guess them from the first block only, and fail on a later block that disagrees.
    ``column_order`` is the file's order of columns, which pyarrow's JSON reader changes.
    """
    with _malformed(path, file_format, encoding):
        if file_format == "parquet":
            yield from _parquet_batches(stream, batch_size)
        elif file_format == "jsonl" and json_reader == "arrow":
            yield from _jsonl_batches(stream, encoding, csv_types, column_order, batch_size)
        elif file_format == "jsonl":
            reader = pd.read_json(stream, lines=True, encoding=encoding, chunksize=batch_size)
            with reader:
                yield from reader
        else:
            yield from _csv_batches(stream, separator, encoding, header, csv_types, batch_size)


def _read_csv(
    stream: IO[bytes], separator: str, encoding: str, header: bool, text_columns: frozenset[str]
) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    utf8 = codecs.lookup(encoding).name == "utf-8"
    names = _arrow_names(text_columns, header)
    parse_options = _csv_parse_options(separator)
    convert_options = pacsv.ConvertOptions(
        null_values=NA_VALUES,
        strings_can_be_null=True,
        column_types=dict.fromkeys(names, pa.string()),
    )
    if utf8 and _seekable(stream):
        # pyarrow reads the file itself, ahead of its parser, with no copy of it held here.
        return _read_utf8_csv_file(stream, header, parse_options, convert_options)
    raw = stream.read()
    # pyarrow turns undecodable values into bytes instead of failing: check first. ASCII is
    # valid UTF-8, and isascii() costs a fraction of a full decode.
    if not (raw.isascii() and utf8):
        raw.decode(encoding)
    # pyarrow parses transcoded text, whose length only UTF-8 files are known to have.
    return _parse_csv(
        lambda: pa.BufferReader(raw),  # the bytes without a copy or a Python call per read
        lambda: len(raw),
        len(raw) if utf8 else None,
        encoding,
        header,
        parse_options,
        convert_options,
    )


def _read_utf8_csv_file(
    stream: IO[bytes], header: bool, parse_options: Any, convert_options: Any
) -> pa.Table:
    """A seekable UTF-8 file, parsed first and checked after.

    pyarrow types a column holding bytes that are not UTF-8 as binary (or fails on one
    declared as text); only then is the file decoded here, to say where the bad byte is.
    """
    import pyarrow as pa

    start = stream.tell()
    size = stream.seek(0, io.SEEK_END) - start
    stream.seek(start)
    with _RereadableStream(stream) as source:
        try:
            table = _parse_csv(
                source.reader,
                lambda: source.bytes_read,
                size,
                "utf-8",
                header,
                parse_options,
                convert_options,
            )
            table.column_names  # noqa: B018 (names are decoded here, and may not be UTF-8)
        except (pa.ArrowInvalid, UnicodeDecodeError):
            _require_utf8(stream, start)
            raise
    types = table.schema.types
    if any(pa.types.is_binary(kind) or pa.types.is_large_binary(kind) for kind in types):
        _require_utf8(stream, start)
    return table


def _require_utf8(stream: IO[bytes], start: int) -> None:
    """Raise UnicodeDecodeError (with the bad byte's position) if the file is not UTF-8."""
    stream.seek(start)
    stream.read().decode("utf-8")


def _parse_csv(
    source: Callable[[], Any],
    available: Callable[[], int],
    size: int | None,
    encoding: str,
    header: bool,
    parse_options: Any,
    convert_options: Any,
) -> pa.Table:
    """Parse a whole CSV, again with larger blocks while a row is longer than one.

    ``source`` gives a new reader from the beginning each time; ``available`` how many bytes
    the failed read had; ``size`` the text's length if known (see :func:`_larger_block`).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    block = CSV_BLOCK_BYTES
    while True:
        try:
            table = pacsv.read_csv(
                source(),
                read_options=_csv_read_options(encoding, header, block),
                parse_options=parse_options,
                convert_options=convert_options,
            )
        except pa.ArrowInvalid as error:
            larger = _larger_block(error, block, available(), size)
            if larger is None:
                raise
            block = larger
        else:
            return _csv_table(table, header)


def _read_jsonl(stream: IO[bytes], encoding: str) -> pa.Table | pd.DataFrame:
    """A JSON lines file by pyarrow's reader, or by pandas if a column changes type by row.

    The file is first streamed in blocks of ``JSON_STREAM_BLOCK_BYTES``, typed by the first
    block: the whole reader holds the text of every block while it parses (a load peaked at
    2.6x the frame; streamed, about half that). If a later block disagrees (a column first
    empty or whole numbers, then text or decimals), or a row is longer than a block, the file
    is read whole. pyarrow refuses a column holding a number in one row and text in another,
    where pandas keeps objects: such a file is read by pandas.
    """
    import pyarrow as pa
    import pyarrow.json as pajson

    utf8 = codecs.lookup(encoding).name == "utf-8"
    with contextlib.ExitStack() as stack:
        if utf8 and _seekable(stream):
            start = stream.tell()
            size = stream.seek(0, io.SEEK_END) - start
            stream.seek(start)
            rereadable = stack.enter_context(_RereadableStream(stream))
            source, available = rereadable.reader, lambda: rereadable.bytes_read

            def whole() -> bytes:
                stream.seek(start)
                return stream.read()
        else:
            raw = stream.read()
            text = raw if utf8 else raw.decode(encoding).encode()  # pyarrow reads only UTF-8
            size = len(text)

            def source() -> Any:
                return pa.BufferReader(text)

            def available() -> int:
                return len(text)

            def whole() -> bytes:
                return raw

        try:
            table = _streamed_json(source())
            if table is None:
                table = _parse_in_blocks(
                    lambda block: pajson.read_json(
                        source(), read_options=pajson.ReadOptions(block_size=block)
                    ),
                    available,
                    size,
                )
            # pyarrow's JSON reader keeps bytes that are not UTF-8 in its strings: check them.
            table.validate(full=True)
        except pa.ArrowInvalid as error:
            whole().decode(encoding)  # a byte that is not text is reported where it is
            if "changed from" in str(error):
                return pd.read_json(io.BytesIO(whole()), lines=True, encoding=encoding)
            raise
    return _nanosecond_times(table)


def _streamed_json(source: Any) -> pa.Table | None:
    """JSON lines read in blocks, typed by the first; None if a later block disagrees."""
    import pyarrow as pa
    import pyarrow.json as pajson

    try:
        options = pajson.ReadOptions(block_size=JSON_STREAM_BLOCK_BYTES)
        reader = pajson.open_json(source, read_options=options)
        return pa.Table.from_batches(list(reader), schema=reader.schema)
    except pa.ArrowInvalid:
        return None


def _jsonl_batches(
    stream: IO[bytes],
    encoding: str,
    arrow_types: Mapping[str, pa.DataType] | None,
    column_order: Sequence[str],
    batch_size: int,
) -> Iterator[pd.DataFrame]:
    """JSON lines in batches by pyarrow's streaming reader, with the version's column types."""
    import pyarrow as pa
    import pyarrow.json as pajson

    if codecs.lookup(encoding).name != "utf-8":
        stream = io.BytesIO(stream.read().decode(encoding).encode("utf-8"))
    parse_options = pajson.ParseOptions(
        explicit_schema=pa.schema(list((arrow_types or {}).items())),
        unexpected_field_behavior="infer",
    )
    with _RereadableStream(stream) as source:
        reader = pajson.open_json(
            source.reader(),
            read_options=pajson.ReadOptions(block_size=CSV_BLOCK_BYTES),
            parse_options=parse_options,
        )
        for batch in reader:
            batch.validate(full=True)
            # The reader puts the typed columns first: back in the file's order.
            found = batch.schema.names
            ordered = [name for name in column_order if name in found]
            batch = batch.select(ordered + [name for name in found if name not in ordered])
            frame = arrow_frame(_nanosecond_times(batch), file_format="jsonl")
            for start in range(0, len(frame), batch_size):
                yield frame.iloc[start : start + batch_size].reset_index(drop=True)


def _parse_in_blocks(
    parse: Callable[[int], pa.Table], available: Callable[[], int], size: int | None
) -> pa.Table:
    """``parse(block_size)``, again with larger blocks while a row is longer than one."""
    import pyarrow as pa

    block = CSV_BLOCK_BYTES
    while True:
        try:
            return parse(block)
        except pa.ArrowInvalid as error:
            larger = _larger_block(error, block, available(), size)
            if larger is None:
                raise
            block = larger


def _csv_batches(
    stream: IO[bytes],
    separator: str,
    encoding: str,
    header: bool,
    csv_types: Mapping[str, pa.DataType] | None,
    batch_size: int,
) -> Iterator[pd.DataFrame]:
    types = {
        (name if header else f"f{name.removeprefix('col_')}"): arrow_type
        for name, arrow_type in (csv_types or {}).items()
    }
    parse_options = _csv_parse_options(separator)
    with _RereadableStream(stream) as source:
        for batch in _csv_record_batches(source, encoding, header, parse_options, types):
            for start in range(0, batch.num_rows, batch_size):
                yield _csv_frame(batch.slice(start, batch_size), header)


def _csv_record_batches(
    source: _RereadableStream,
    encoding: str,
    header: bool,
    parse_options: Any,
    types: dict[str, pa.DataType],
) -> Iterator[pa.RecordBatch]:
    """Batches of pyarrow's streaming reader, started again with larger blocks if a row is long.

    A new start reads the stream from the beginning with the column types already given fixed,
    and skips the rows already given, so the batches go on where they stopped.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    block, given, skip = CSV_BLOCK_BYTES, 0, 0
    reader = None
    while True:
        try:
            if reader is None:
                reader = pacsv.open_csv(
                    source.reader(),
                    read_options=_csv_read_options(encoding, header, block),
                    parse_options=parse_options,
                    convert_options=pacsv.ConvertOptions(
                        null_values=NA_VALUES, strings_can_be_null=True, column_types=types
                    ),
                )
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as error:
            larger = _larger_block(error, block, source.bytes_read, None)
            if larger is None:
                raise
            if reader is not None:
                seen = zip(reader.schema.names, reader.schema.types, strict=True)
                types = {**{n: t for n, t in seen if not pa.types.is_null(t)}, **types}
            block, skip, reader = larger, given, None
            continue
        if skip >= batch.num_rows:
            skip -= batch.num_rows
            continue
        batch, skip = batch.slice(skip), 0
        given += batch.num_rows
        yield batch


def _larger_block(
    error: pa.ArrowInvalid, block: int, available: int, size: int | None
) -> int | None:
    """The block size to read again with, if ``error`` says a row did not fit in ``block``.

    ``available`` is how many bytes the failed read had (a full first block without a line end
    fails as if empty); ``size`` is the length of the text when known: one block that holds it
    all cannot be too small.
    """
    text = str(error)
    too_long = _STRADDLING in text or (_NO_COLUMNS in text and available >= block)
    limit = CSV_MAX_BLOCK_BYTES if size is None else min(size, CSV_MAX_BLOCK_BYTES)
    if not too_long or block >= limit:
        return None
    return min(block * 2, limit)


class _RereadableStream:
    """A stream that can be read again from its beginning, by one reader at a time.

    A seekable stream seeks back. A forward-only one (blob, HTTP) is copied into a spool as it is
    read (in memory up to one block, then a temporary file), and a new reader reads the copy
    first. pyarrow reads ahead on its own threads, so a reader that is replaced reads nothing
    more: its late reads cannot move the stream under the next one.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._start = stream.tell() if _seekable(stream) else None
        self._spool: IO[bytes] | None = None
        if self._start is None:
            self._spool = tempfile.SpooledTemporaryFile(max_size=CSV_BLOCK_BYTES)
        self._lock = threading.Lock()
        self._generation = 0
        self._replaying = False
        self.bytes_read = 0

    def __enter__(self) -> _RereadableStream:
        return self

    def __exit__(self, *_: object) -> None:
        """Close the spool; the stream belongs to whoever opened it."""
        with self._lock:
            self._generation += 1
            if self._spool is not None:
                self._spool.close()

    def reader(self) -> io.RawIOBase:
        """A file object for pyarrow from the beginning; the previous one reads nothing more."""
        with self._lock:
            self._generation += 1
            if self._generation > 1:
                if self._spool is None:
                    self._stream.seek(self._start or 0)
                else:
                    self._spool.seek(0)
                    self._replaying = True
            self.bytes_read = 0
            return _GenerationReader(self, self._generation)

    def read(self, generation: int, size: int) -> bytes:
        with self._lock:
            if generation != self._generation:
                return b""
            data = b""
            if self._spool is not None and self._replaying:
                data = self._spool.read(size)
            if size < 0 or len(data) < size:
                self._replaying = False
                more = self._stream.read(-1 if size < 0 else size - len(data))
                if self._spool is not None:
                    self._spool.write(more)
                data += more
            self.bytes_read += len(data)
            return data


class _GenerationReader(io.RawIOBase):
    """One reader of a _RereadableStream, the file object pyarrow is given."""

    def __init__(self, source: _RereadableStream, generation: int) -> None:
        super().__init__()
        self._source = source
        self._generation = generation

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._source.read(self._generation, -1 if size is None else size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _csv_read_options(encoding: str, header: bool, block: int) -> Any:
    import pyarrow.csv as pacsv

    return pacsv.ReadOptions(
        encoding=encoding, autogenerate_column_names=not header, block_size=block
    )


def _csv_parse_options(separator: str) -> Any:
    import pyarrow.csv as pacsv

    if len(separator) != 1:
        raise ValueError(f"the separator {separator!r} must be exactly one character")
    return pacsv.ParseOptions(delimiter=separator)


def _arrow_names(columns: frozenset[str], header: bool) -> list[str]:
    """Our headerless names col_0, col_1.. as pyarrow names them (f0, f1..)."""
    if header:
        return sorted(columns)
    return [f"f{name.removeprefix('col_')}" for name in columns if name.startswith("col_")]


def _csv_frame(batch: pa.RecordBatch, header: bool) -> pd.DataFrame:
    return arrow_frame(_csv_table(batch, header))


def _nanosecond_times(table: _Arrow) -> _Arrow:
    """Dates and times as nanosecond datetimes, as pandas holds them."""
    import pyarrow as pa

    schema = table.schema
    for index, arrow_type in enumerate(schema.types):
        if pa.types.is_date(arrow_type) or (
            pa.types.is_timestamp(arrow_type) and arrow_type.unit != "ns"
        ):
            exact = pa.timestamp("ns", tz=getattr(arrow_type, "tz", None))
            schema = schema.set(index, schema.field(index).with_type(exact))
    return table.cast(schema) if schema != table.schema else table


def _csv_table(table: _Arrow, header: bool) -> _Arrow:
    """A CSV table as its frame will be: dates and times as nanoseconds, names col_0, col_1...

    Pandas would give dates as objects; ours are datetimes, as declared datetimes are.
    """
    table = _nanosecond_times(table)
    if not header:
        table = table.rename_columns([f"col_{index}" for index in range(table.num_columns)])
    return table


def _parquet_batches(stream: IO[bytes], batch_size: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    if _seekable(stream):
        parquet = pq.ParquetFile(stream)
        for batch in parquet.iter_batches(batch_size=batch_size):
            yield batch.to_pandas()
        return
    # The footer is at the end: spool to a temporary file, holding at most SPOOL_MEMORY_BYTES.
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spool:
        shutil.copyfileobj(stream, spool, 1 << 20)
        spool.seek(0)
        yield from _parquet_batches(spool, batch_size)  # type: ignore[arg-type]


@contextmanager
def _parquet_source(stream: IO[bytes]) -> Iterator[Any]:
    """What pyarrow reads a Parquet file from, read as directly as the stream allows.

    A file on disk is opened again by pyarrow itself (Linux's ``/proc/self/fd``: the same file,
    even if renamed since), so no read goes through Python: a 200 MB Parquet load then peaked
    at 1.50x its frame instead of 1.55-1.61x. Another seekable stream is read as it is; a
    forward-only one (blob, HTTP) is read whole and wrapped without a copy.
    """
    import pyarrow as pa

    native = _reopened(stream)
    if native is not None:
        with native:
            yield native
    elif _seekable(stream):
        yield stream
    else:
        yield pa.BufferReader(stream.read())


def _reopened(stream: IO[bytes]) -> pa.NativeFile | None:
    """The file under one of Python's own file objects, opened by pyarrow; None elsewhere.

    Other streams are not asked for a descriptor: a spooled temporary file would write itself
    to disk to give one.
    """
    import pyarrow as pa

    if not isinstance(stream, io.BufferedReader | io.BufferedRandom | io.FileIO):
        return None
    try:
        path = f"/proc/self/fd/{stream.fileno()}"
        if not (os.path.exists(path) and stat.S_ISREG(os.stat(path).st_mode)):
            return None
        return pa.OSFile(path)
    except (OSError, ValueError, pa.ArrowException):
        return None


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, ValueError):
        return False


@contextmanager
def _malformed(path: str, file_format: str, encoding: str) -> Iterator[None]:
    """Turn parser errors into MalformedFileError naming the file and what to fix."""
    import pyarrow as pa

    try:
        yield
    except MalformedFileError:
        raise
    except UnicodeDecodeError as error:
        raise MalformedFileError(
            f"'{path}' is not valid {encoding} text ({error.reason} at byte {error.start}). "
            "Set 'encoding:' on the dataset to the file's encoding."
        ) from None
    except LookupError:
        raise MalformedFileError(
            f"'{path}': '{encoding}' is not a known text encoding. Fix 'encoding:' on the "
            "dataset (e.g. utf-8, latin-1, cp1252)."
        ) from None
    except (pd.errors.ParserError, ValueError, OSError, pa.ArrowException) as error:
        if _STRADDLING in str(error):  # pyarrow's advice names a setting our datasets do not have
            raise MalformedFileError(
                f"'{path}' has a row longer than {CSV_MAX_BLOCK_BYTES / (1 << 20):g} MiB, the "
                "most a CSV row may hold. Check that the file has one row per line and that the "
                "dataset's 'format:'/'separator:' are right, or split the row."
            ) from None
        raise MalformedFileError(
            f"'{path}' could not be read as {file_format}: {_first_line(error)}. "
            "Fix the file, or the dataset's 'format:'/'separator:' if they are wrong."
        ) from None


def apply_column_types(
    frame: pd.DataFrame,
    column_types: Mapping[str, str],
    *,
    files: Sequence[tuple[str, int]],
    first_row: int = 1,
) -> pd.DataFrame:
    """Convert declared columns; a value that does not convert names file, column, row, value.

    ``files`` are the (path, number of rows) the frame's rows come from, in order: the frame of
    several files is converted at once, and an error still names the file and its row.
    ``first_row`` is the 1-based row number (not counting a header) of the first file's first
    row in the frame.
    """
    if not column_types:
        return frame
    missing = [column for column in column_types if column not in frame.columns]
    if missing:
        raise MalformedFileError(
            f"'{files[0][0]}' has no column {', '.join(map(repr, missing))} named in "
            f"'column_types' (columns: {', '.join(map(str, frame.columns))}). "
            "Fix 'column_types'."
        )
    ends = np.cumsum([rows for _, rows in files])

    def locate(position: int) -> tuple[str, int]:
        index = int(np.searchsorted(ends, position, side="right"))
        start = int(ends[index - 1]) if index else 0
        return files[index][0], position - start + (first_row if index == 0 else 1)

    frame = frame.copy(deep=False)  # new columns replace old ones; the caller's stay as they are
    for column, declared in column_types.items():
        values = pd.Series(frame[column], copy=False)
        frame[column] = _convert(values, declared, column, locate)
    return frame


def _convert(
    values: pd.Series, declared: str, column: str, locate: Callable[[int], tuple[str, int]]
) -> pd.Series:
    def refuse(bad: pd.Series, why: str = "", fix: str = "") -> MalformedFileError:
        position = int(bad.to_numpy().nonzero()[0][0])
        value = values.iloc[position]
        shown = "an empty value" if pd.isna(value) else f"value {str(value)[:60]!r}"
        path, row = locate(position)
        return MalformedFileError(
            f"'{path}', column '{column}': {shown} (row {row}) "
            f"{why or f'is not {declared}'}. "
            f"{fix or 'Fix the value, or the column type in column_types.'}"
        )

    present = values.notna()
    if declared == "string":
        return values.astype("string")
    if declared == "category":
        return values.astype("category")
    if declared == "float64":
        if pd.api.types.is_numeric_dtype(values):
            return values.astype("float64")
        numbers = _numbers(values)
        bad = present & numbers.isna()
        if bad.any():
            raise refuse(bad)
        return numbers.astype("float64")
    if declared == "int64":
        if not present.all():
            raise refuse(
                ~present,
                "cannot be int64, which has no missing values",
                "Declare the column float64, or fill the value.",
            )
        numbers = _numbers(values)
        bad = numbers.isna() | (numbers % 1 != 0)
        if bad.any():
            raise refuse(bad)
        return numbers.astype("int64")
    if declared == "bool":
        if pd.api.types.is_bool_dtype(values) and present.all():
            return values.astype("bool")
        words = values.map(_as_bool, na_action="ignore")
        bad = ~present | words.isna()
        if bad.any():
            raise refuse(
                bad, fix="Booleans are true/false, yes/no or 1/0 and never empty; fix the value."
            )
        return words.astype("bool")
    if declared.startswith("datetime64"):
        return _to_datetime(values, present, refuse)
    raise MalformedFileError(
        f"'{locate(0)[0]}', column '{column}': unknown column type '{declared}'."
    )


def _numbers(values: pd.Series) -> pd.Series:
    """Numbers, with NaN where a value is not one (pandas' stubs type to_numeric too widely)."""
    return pd.Series(pd.to_numeric(values, errors="coerce"), index=values.index)


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word.endswith(".0"):
        word = word[:-2]
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def _to_datetime(values: pd.Series, present: pd.Series, refuse: Any) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        try:
            with warnings.catch_warnings():
                # "Could not infer format": expected for text columns, not the user's concern.
                warnings.simplefilter("ignore", UserWarning)
                parsed = pd.to_datetime(values)
        except (ValueError, TypeError, OverflowError):
            # Mixed formats, or a bad value: parse each on its own to tell which.
            parsed = pd.to_datetime(values, errors="coerce", format="mixed")
            bad = present & parsed.isna()
            if bad.any():
                fix = "Use ISO dates (2024-01-31 13:45:00), or fix the type."
                raise refuse(bad, fix=fix) from None
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
