"""One Arrow column read as float64 numbers, or counted by category with each category as text.

The text of a category is Arrow's cast to string, applied to distinct values only: ``1`` and
``1.0`` both read "1", so a flag stored as integers in one table and floats in another agrees.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def is_numeric_type(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def is_text_type(kind: pa.DataType) -> bool:
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_string_view(kind)
        or pa.types.is_dictionary(kind)
        or pa.types.is_boolean(kind)
    )


def numeric_values(array: pa.Array) -> tuple[np.ndarray, int]:
    """The values as float64 with NaN where missing, and how many could not be read as numbers.

    Text is parsed; a value that does not parse is missing and counted as a type error, so one
    bad value does not make the whole column unreadable.
    """
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.dictionary_decode()
        kind = array.type
    if is_numeric_type(kind) or pa.types.is_boolean(kind) or pa.types.is_null(kind):
        if not pa.types.is_float64(kind):
            array = array.cast(pa.float64(), safe=False)
        return array.to_numpy(zero_copy_only=False), 0
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        try:
            return array.cast(pa.float64()).to_numpy(zero_copy_only=False), 0
        except pa.ArrowInvalid:
            return _parsed_leniently(array)
    return np.full(len(array), np.nan), len(array) - array.null_count


def _parsed_leniently(array: pa.Array) -> tuple[np.ndarray, int]:
    import pandas as pd

    text = array.to_pandas()
    numbers = np.asarray(pd.to_numeric(text, errors="coerce"), dtype=np.float64)
    errors = int(np.count_nonzero(np.isnan(numbers))) - array.null_count
    return numbers, errors


def category_counts(array: pa.Array) -> tuple[dict[str, int], int]:
    """Rows per category (as text) and the number of missing values; a float NaN is missing."""
    if pa.types.is_null(array.type):
        return {}, len(array)
    counted = array.value_counts()
    counts: dict[str, int] = {}
    missing = 0
    texts = category_texts(counted.field("values"))
    for text, rows in zip(texts, counted.field("counts").to_pylist(), strict=True):
        if text is None:
            missing += rows
        else:
            counts[text] = counts.get(text, 0) + rows
    return counts, missing


def category_texts(values: pa.Array) -> list[str | None]:
    """The text of each (distinct) value; None for null and NaN."""
    kind = values.type
    if pa.types.is_dictionary(kind):
        values = values.dictionary_decode()
        kind = values.type
    if pa.types.is_null(kind):
        return [None] * len(values)
    if pa.types.is_floating(kind):
        numbers = values.to_numpy(zero_copy_only=False) + 0.0  # -0.0 + 0.0 is 0.0: one zero
        values = pa.array(numbers, type=kind, mask=np.isnan(numbers))
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        values = values.cast(pa.string())
    return values.to_pylist()
