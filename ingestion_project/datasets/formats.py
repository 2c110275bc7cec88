"""Read the files of a tabular dataset, whole or in batches, with errors that say which file.

CSV goes through pyarrow's reader (the speed of ``pd.read_csv(engine="pyarrow")`` with the same
missing-value markers); declared ``column_types`` are applied after reading, so a value that
does not convert is reported with its file, column, row and value. pyarrow parses in blocks and
fails on a row longer than one; such a read starts again with larger blocks, by itself.
"""

from __future__ import annotations

import codecs
import io
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    import pyarrow as pa

    from ingestion_project.catalog.spec import DatasetSpec
    from ingestion_project.records import WindowBounds

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
        }


def read_table(
    stream: IO[bytes],
    *,
    file_format: str,
    path: str,
    separator: str = ",",
    encoding: str = "utf-8",
    header: bool = True,
    text_columns: frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """Parse one file; raise MalformedFileError naming the file and the fix.

    ``text_columns`` are read as text, untouched (CSV only), so '007' declared as a string
    stays '007'.
    """
    with _malformed(path, file_format, encoding):
        if file_format == "parquet":
            frame = pd.read_parquet(_parquet_source(stream), engine="pyarrow")
        elif file_format == "jsonl":
            frame = pd.read_json(stream, lines=True, encoding=encoding)
        else:
            frame = _read_csv(stream.read(), separator, encoding, header, text_columns)
    if frame.columns.empty:
        raise MalformedFileError(
            f"'{path}' has no columns (is it empty?). Fix the file or remove it from the dataset."
        )
    return frame


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
) -> Iterator[pd.DataFrame]:
    """Parse one file as frames of at most ``batch_size`` rows, never holding the whole file.

    ``csv_types`` fixes CSV column types (pyarrow would otherwise guess them from the first
    block only, and fail on a later block that disagrees).
    """
    with _malformed(path, file_format, encoding):
        if file_format == "parquet":
            yield from _parquet_batches(stream, batch_size)
        elif file_format == "jsonl":
            reader = pd.read_json(stream, lines=True, encoding=encoding, chunksize=batch_size)
            with reader:
                yield from reader
        else:
            yield from _csv_batches(stream, separator, encoding, header, csv_types, batch_size)


def _read_csv(
    raw: bytes, separator: str, encoding: str, header: bool, text_columns: frozenset[str]
) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    # pyarrow turns undecodable values into bytes instead of failing: check first. ASCII is
    # valid UTF-8, and isascii() costs a fraction of a full decode.
    utf8 = codecs.lookup(encoding).name == "utf-8"
    if not (raw.isascii() and utf8):
        raw.decode(encoding)
    names = _arrow_names(text_columns, header)
    parse_options = _csv_parse_options(separator)
    convert_options = pacsv.ConvertOptions(
        null_values=NA_VALUES,
        strings_can_be_null=True,
        column_types=dict.fromkeys(names, pa.string()),
    )
    block = CSV_BLOCK_BYTES
    while True:
        try:
            # BufferReader hands pyarrow the bytes without a copy or a Python call per read.
            table = pacsv.read_csv(
                pa.BufferReader(raw),
                read_options=_csv_read_options(encoding, header, block),
                parse_options=parse_options,
                convert_options=convert_options,
            )
        except pa.ArrowInvalid as error:
            # pyarrow parses transcoded text, whose length only UTF-8 files are known to have.
            larger = _larger_block(error, block, len(raw), len(raw) if utf8 else None)
            if larger is None:
                raise
            block = larger
        else:
            return _csv_frame(table, header)


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


def _csv_frame(table: pa.Table | pa.RecordBatch, header: bool) -> pd.DataFrame:
    import pyarrow as pa

    # As pandas does: a column with no values at all is float64 (all NaN). Dates and times
    # become datetime64[ns] (pandas would give dates as objects), as declared datetimes are.
    schema = table.schema
    for index, arrow_type in enumerate(schema.types):
        if pa.types.is_null(arrow_type):
            schema = schema.set(index, schema.field(index).with_type(pa.float64()))
        elif pa.types.is_date(arrow_type) or (
            pa.types.is_timestamp(arrow_type) and arrow_type.unit != "ns"
        ):
            exact = pa.timestamp("ns", tz=getattr(arrow_type, "tz", None))
            schema = schema.set(index, schema.field(index).with_type(exact))
    frame = table.cast(schema).to_pandas()
    if not header:
        frame.columns = [f"col_{index}" for index in range(len(frame.columns))]
    return frame


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


def _parquet_source(stream: IO[bytes]) -> Any:
    """A seekable stream as is; else its bytes, wrapped without a copy for pyarrow to read."""
    import pyarrow as pa

    return stream if _seekable(stream) else pa.BufferReader(stream.read())


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
    frame: pd.DataFrame, column_types: Mapping[str, str], *, path: str, first_row: int = 1
) -> pd.DataFrame:
    """Convert declared columns; a value that does not convert names file, column, row, value.

    ``first_row`` is the 1-based row number (not counting a header) of the frame's first row.
    """
    if not column_types:
        return frame
    missing = [column for column in column_types if column not in frame.columns]
    if missing:
        raise MalformedFileError(
            f"'{path}' has no column {', '.join(map(repr, missing))} named in 'column_types' "
            f"(columns: {', '.join(map(str, frame.columns))}). Fix 'column_types'."
        )
    frame = frame.copy(deep=False)  # new columns replace old ones; the caller's stay as they are
    for column, declared in column_types.items():
        values = pd.Series(frame[column], copy=False)
        frame[column] = _convert(values, declared, path, column, first_row)
    return frame


def _convert(values: pd.Series, declared: str, path: str, column: str, first_row: int) -> pd.Series:
    def refuse(bad: pd.Series, why: str = "", fix: str = "") -> MalformedFileError:
        position = int(bad.to_numpy().nonzero()[0][0])
        value = values.iloc[position]
        shown = "an empty value" if pd.isna(value) else f"value {str(value)[:60]!r}"
        return MalformedFileError(
            f"'{path}', column '{column}': {shown} (row {first_row + position}) "
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
    raise MalformedFileError(f"'{path}', column '{column}': unknown column type '{declared}'.")


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
