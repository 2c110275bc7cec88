"""Parquet text read as the dictionary it is stored in, and turned into pandas' strings.

Parquet writers store text as a dictionary of distinct values and an index per row, unless
the values are too many. Read as it is stored, a column of 6.45 M rows and 8 values decodes in
a fifth of the time and holds 4 bytes a row instead of the text; pandas then gets one string
object per distinct value and an array of references, which is what it builds anyway when it
shares repeated strings, and the profile counts the distinct values from the dictionary.

Only text that pyarrow would read as plain strings is read this way, and each such field is
marked (:data:`MARK`), so its pandas form stays an object column of ``str`` and ``None``;
columns stored as dictionaries on purpose (pandas categoricals) keep their own type.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

MARK = b"ingestion_project.text_read_as_dictionary"
"""Field metadata key of a text column read as its dictionary (see :func:`read_parquet`)."""


def read_parquet(source: IO[bytes] | Any) -> pa.Table:
    """A Parquet file's table, its dictionary-stored text as marked dictionary columns."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source)
    stored = _dictionary_stored_text(parquet)
    if stored:
        parquet = pq.ParquetFile(source, read_dictionary=stored, metadata=parquet.metadata)
    table = parquet.read()
    return _marked(table, stored)


def read_parquet_row_groups(source: IO[bytes] | Any) -> Iterator[pa.Table]:
    """A Parquet file's tables one row group at a time, marked as :func:`read_parquet` does.

    A file without row groups gives its empty table.
    """
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source)
    stored = _dictionary_stored_text(parquet)
    if stored:
        parquet = pq.ParquetFile(source, read_dictionary=stored, metadata=parquet.metadata)
    if parquet.num_row_groups == 0:
        yield _marked(parquet.read(), stored)
    for group in range(parquet.num_row_groups):
        yield _marked(parquet.read_row_group(group), stored)


def _dictionary_stored_text(parquet: Any) -> list[str]:
    """Top-level text columns stored as a dictionary in every row group, that Arrow reads as text.

    A writer falls back to plain values when a dictionary grows too large; such a column is
    read as text, as building a dictionary of many values would cost more than it saves.
    """
    import pyarrow as pa

    metadata = parquet.metadata
    arrow_schema = parquet.schema_arrow
    if metadata.num_row_groups == 0:
        return []
    names = []
    for index in range(metadata.num_columns):
        column = parquet.schema.column(index)
        name = column.path
        is_text = column.physical_type == "BYTE_ARRAY" and (
            column.logical_type.type == "STRING" or column.converted_type == "UTF8"
        )
        if not is_text or "." in name or arrow_schema.get_field_index(name) < 0:
            continue
        if not pa.types.is_string(arrow_schema.field(name).type):
            continue
        row_groups = range(metadata.num_row_groups)
        if all(metadata.row_group(group).column(index).has_dictionary_page for group in row_groups):
            names.append(name)
    return names


def marked_text(table: pa.Table) -> pa.Table:
    """The table with its dictionary columns of text marked as text read as a dictionary.

    For a parser that dictionary-encodes text on its own (pyarrow's CSV reader, asked to).
    """
    import pyarrow as pa

    names = [
        field.name
        for field in table.schema
        if pa.types.is_dictionary(field.type)
        and (
            pa.types.is_string(field.type.value_type)
            or pa.types.is_large_string(field.type.value_type)
        )
    ]
    return _marked(table, names)


def _marked(table: pa.Table, names: list[str]) -> pa.Table:
    for name in names:
        index = table.schema.get_field_index(name)
        field = table.schema.field(index)
        marked = field.with_metadata({**(field.metadata or {}), MARK: b"1"})
        table = table.set_column(index, marked, table.column(index))
    return table


def is_marked(field: pa.Field) -> bool:
    """Whether the field is text read as its dictionary, to become pandas' strings."""
    import pyarrow as pa

    return bool(field.metadata and MARK in field.metadata) and pa.types.is_dictionary(field.type)


def decoded(table: pa.Table) -> pa.Table:
    """The table with its marked columns as plain text, for code that converts it whole."""
    for index, field in enumerate(table.schema):
        if is_marked(field):
            table = _as_text(table, index)
    return table


def _as_text(table: pa.Table, index: int) -> pa.Table:
    import pyarrow as pa

    field = table.schema.field(index)
    plain = pa.field(field.name, field.type.value_type, field.nullable)
    return table.set_column(index, plain, table.column(index).cast(plain.type))


def same_text_form(tables: list[pa.Table]) -> list[pa.Table]:
    """Tables whose marked columns are plain text where another file has the column as text.

    One file may store a column as a dictionary and another as plain values (or as a pandas
    categorical): Arrow joins neither with the other, or would take the first's type.
    """
    import pyarrow as pa

    kinds: dict[str, set[tuple[bool, bool]]] = {}
    for table in tables:
        for field in table.schema:
            form = (pa.types.is_dictionary(field.type), is_marked(field))
            kinds.setdefault(field.name, set()).add(form)
    mixed = {name for name, found in kinds.items() if len(found) > 1}
    if not mixed:
        return tables
    result = []
    for table in tables:
        for index, field in enumerate(table.schema):
            if field.name in mixed and is_marked(field):
                table = _as_text(table, index)
        result.append(table)
    return result


def text_objects(column: pa.ChunkedArray, shared: dict[str, str] | None = None) -> np.ndarray:
    """Dictionary text as pandas holds text: one ``str`` per distinct value, ``None`` if null.

    ``shared`` holds the strings made for earlier parts of the same column (other files), so
    that a value repeated across files is one object, as in a column converted whole.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(column) == 0:
        return np.empty(0, dtype=object)
    column = column.unify_dictionaries()
    dictionary = column.chunk(0).dictionary.to_numpy(zero_copy_only=False)
    values = np.empty(len(dictionary) + 1, dtype=object)
    if shared is None:
        values[:-1] = dictionary
    else:
        values[:-1] = [shared.setdefault(text, text) for text in dictionary]
    values[-1] = None
    indices = pa.chunked_array([chunk.indices for chunk in column.chunks])
    codes = pc.fill_null(indices, -1).to_numpy()
    return values[codes]


def used_values(column: pa.ChunkedArray) -> pa.Array:
    """The distinct values a marked column's rows use: each chunk's dictionary holds more."""
    import pyarrow as pa
    import pyarrow.compute as pc

    used = [_used_in(chunk) for chunk in column.chunks]
    return pc.call_function("unique", [pa.chunked_array(used, type=column.type.value_type)])


def _used_in(chunk: pa.DictionaryArray) -> pa.Array:
    """The dictionary values a chunk's rows point at.

    Without nulls, the rows' indices mark a flag per dictionary value: a third of the time
    Arrow's hash table of the indices took (6.5 M rows, 8 values).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if chunk.indices.null_count:
        return chunk.dictionary.take(pc.call_function("unique", [chunk.indices]).drop_null())
    seen = np.zeros(len(chunk.dictionary), dtype=np.bool_)
    seen[chunk.indices.to_numpy().astype(np.intp, copy=False)] = True
    return chunk.dictionary.filter(pa.array(seen))
