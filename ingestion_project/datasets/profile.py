"""Schema and per-column profile of a DataFrame, for version records and the web UI.

The profile is computed on every registration, so it must cost a fraction of reading the data.
Integers in a narrow range are counted exactly with a bitmap; other numbers and times are mixed
once into 64-bit hashes (a bijection, so exact counts stay exact), counted exactly below
``EXACT_DISTINCT`` and estimated above it from the ``EXACT_DISTINCT`` smallest hashes (a
k-minimum-values sketch, within about 2 %). Text is counted from its distinct values, taken by
Arrow when the column was read through Arrow. Columns are profiled on a thread each (NumPy and
Arrow release the GIL), so every core takes part.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
from pandas.util import hash_array

from ingestion_project.datasets.dictionary_text import is_marked, used_values
from ingestion_project.records import ProfileRow, SchemaColumn

if TYPE_CHECKING:
    import pyarrow as pa

EXACT_DISTINCT = 8192
"""Distinct counts below this are exact; above, a k-minimum-values estimate (k = this)."""
_HASH_SPACE = 2.0**64
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)  # SplitMix64's odd multipliers
_MIX_2 = np.uint64(0x94D049BB133111EB)
_HASH_SLICE = 1 << 14
"""Values hashed at a time: 128 KiB a buffer, so the six passes stay in the CPU's cache."""
_TEXT_SAMPLE = 20_000
_PARALLEL_ROWS = 100_000
"""Frames with fewer rows are profiled on one thread: a pool costs more than it saves."""


def frame_schema(frame: pd.DataFrame) -> list[SchemaColumn]:
    return [SchemaColumn(name=str(name), type=str(dtype)) for name, dtype in frame.dtypes.items()]


def frame_profile(
    frame: pd.DataFrame, arrow_text: Mapping[str, pa.ChunkedArray] | None = None
) -> list[ProfileRow]:
    """Per column: type, nulls, distinct count, and min/max/mean where they make sense.

    ``arrow_text`` holds the Arrow form of some text columns (see :func:`arrow_text_columns`),
    which are counted by Arrow's hash table instead of over Python strings; the frame's own
    dtype is still what the row records.
    """
    arrow = arrow_text or {}

    def profile(name: Any) -> ProfileRow:
        column = frame[name]
        if str(name) in arrow:
            return _arrow_text_profile(str(name), pd.Series(column), arrow[str(name)])
        return _column_profile(str(name), column)

    names = list(frame.columns)
    workers = min(os.cpu_count() or 1, len(names))
    if len(frame) < _PARALLEL_ROWS or workers < 2:
        return [profile(name) for name in names]
    with ThreadPoolExecutor(workers, thread_name_prefix="profile") as pool:
        return list(pool.map(profile, names))


def arrow_text_columns(table: pa.Table) -> dict[str, pa.ChunkedArray]:
    """The table's text columns, to profile after the table is turned into pandas.

    Text read as its dictionary (``dictionary_text``) is counted from the dictionary.
    """
    import pyarrow as pa

    return {
        str(field.name): column
        for field, column in zip(table.schema, table.columns, strict=True)
        if pa.types.is_string(field.type)
        or pa.types.is_large_string(field.type)
        or is_marked(field)
    }


def _arrow_text_profile(name: str, column: pd.Series, arrow: pa.ChunkedArray) -> ProfileRow:
    """Text read through Arrow, counted as :func:`_object_profile` counts it, but sooner.

    Values that repeat are counted by Arrow's hash table, and compared for min and max among
    the distinct ones (comparing every row cost as much again); others are counted as
    pandas' strings are, and compared by Arrow.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arrow.type):
        uniques = used_values(arrow).drop_null()
        distinct = len(uniques)
        low_high = pc.call_function("min_max", [uniques])
    elif text_repeats(arrow):
        uniques = pc.call_function("unique", [arrow]).drop_null()
        distinct = len(uniques)
        low_high = pc.call_function("min_max", [uniques])
    else:
        distinct = _distinct_strings(column.dropna().to_numpy(dtype=object))
        low_high = pc.call_function("min_max", [arrow])
    return ProfileRow(
        column=name,
        type=str(column.dtype),
        nulls=arrow.null_count,
        distinct=distinct,
        min=low_high["min"].as_py(),
        max=low_high["max"].as_py(),
    )


def text_repeats(column: pa.ChunkedArray) -> bool:
    """Whether a text column's values mostly repeat, judged by its first values.

    They repeat if no more than half of the first ``_TEXT_SAMPLE`` are distinct; a column of
    nulls counts as repeating. :func:`_object_profile` judges pandas' values the same way.
    """
    import pyarrow.compute as pc

    sample = column.slice(0, _TEXT_SAMPLE)
    present = len(sample) - sample.null_count
    distinct = pc.call_function("count_distinct", [sample]).as_py()
    return present == 0 or distinct <= present / 2


def _distinct_strings(present: np.ndarray) -> int:
    """Distinct strings, from their 64-bit hashes: exact below EXACT_DISTINCT, else estimated.

    A hash table of millions of distinct strings cost 0.3-0.7 s a column; their hashes 0.18 s.
    """
    hashes = hash_array(cast(Any, present), categorize=False)  # pyright: ignore[reportCallIssue]
    return _distinct_hashes(cast("np.ndarray", hashes))


def _column_profile(name: str, column: Any) -> ProfileRow:
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iufmMb":
        return _array_profile(name, column)
    if isinstance(dtype, pd.CategoricalDtype):
        return _categorical_profile(name, column)
    if (
        pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
    ):
        return _extension_profile(name, column)  # nullable Int64, boolean, tz-aware times
    return _object_profile(name, column)


def _array_profile(name: str, column: pd.Series) -> ProfileRow:
    """Numbers, times and booleans held in a NumPy array: reductions and one counting pass."""
    values = column.to_numpy()
    kind = values.dtype.kind
    missing = np.isnat(values) if kind in "mM" else np.isnan(values) if kind == "f" else None
    nulls = int(missing.sum()) if missing is not None else 0
    present = values[~missing] if missing is not None and nulls else values
    low = high = mean = None
    distinct = 0
    if len(present) and kind == "b":
        low, high = str(bool(present.min())), str(bool(present.max()))
        distinct = int(bool(present.any())) + int(not bool(present.all()))
    elif len(present) and kind in "mM":
        # Compared as times, not formatted first: formatting millions of them is slow.
        low, high = str(column.min()), str(column.max())
        ticks = present.view(np.int64)
        distinct = _distinct_integers(ticks, int(ticks.min()), int(ticks.max()))
    elif len(present):
        smallest, largest = present.min(), present.max()
        low, high = _number(smallest), _number(largest)
        mean = _number(present.mean(dtype=np.float64))
        if kind == "f":
            distinct = _distinct_hashes(_mixed(present.astype(np.float64, copy=False)))
        else:
            distinct = _distinct_integers(present, int(smallest), int(largest))
    return ProfileRow(
        column=name,
        type=str(column.dtype),
        nulls=nulls,
        distinct=distinct,
        min=low,
        max=high,
        mean=mean,
    )


def _categorical_profile(name: str, column: pd.Series) -> ProfileRow:
    """Categories: counted from the codes, compared as text over the categories present."""
    codes = column.cat.codes.to_numpy()
    nulls = int((codes < 0).sum())
    categories = column.cat.categories
    used = np.bincount(codes[codes >= 0], minlength=len(categories)) > 0 if nulls else None
    if used is None:
        used = np.bincount(codes, minlength=len(categories)) > 0
    texts = [str(value) for value in categories[used]]
    return ProfileRow(
        column=name,
        type=str(column.dtype),
        nulls=nulls,
        distinct=len(texts),
        min=min(texts) if texts else None,
        max=max(texts) if texts else None,
        mean=None,
    )


def _extension_profile(name: str, column: pd.Series) -> ProfileRow:
    """Pandas' nullable and tz-aware types: its own reductions (rarer, and not the hot path)."""
    low = high = mean = None
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        low, high, mean = _number(column.min()), _number(column.max()), _number(column.mean())
    elif bool(column.notna().any()):
        low, high = str(column.min()), str(column.max())
    return ProfileRow(
        column=name,
        type=str(column.dtype),
        nulls=int(column.isna().sum()),
        distinct=int(column.nunique(dropna=True)),
        min=low,
        max=high,
        mean=mean,
    )


def _object_profile(name: str, column: pd.Series) -> ProfileRow:
    """Text and nested values: counted from their distinct values, or their hashes.

    Text whose first values seldom repeat (see :func:`text_repeats`) is counted from hashes,
    and compared for min and max as it is.
    """
    sample = column.iloc[:_TEXT_SAMPLE]
    present_in_sample = int(sample.notna().sum())
    if present_in_sample and _sample_distinct(sample) > present_in_sample / 2:
        present = column.dropna().to_numpy(dtype=object)
        if pd.api.types.infer_dtype(present, skipna=False) == "string":
            return ProfileRow(
                column=name,
                type=str(column.dtype),
                nulls=len(column) - len(present),
                distinct=_distinct_strings(present),
                min=min(present),
                max=max(present),
                mean=None,
            )
    try:
        uniques = pd.unique(column.to_numpy())
    except TypeError:  # lists and mappings (nested JSON or Parquet): compared as text
        uniques = pd.unique(column.map(lambda value: value if _is_null(value) else str(value)))
    absent = pd.isna(uniques) if len(uniques) else np.zeros(0, dtype=bool)
    if isinstance(absent, np.ndarray) and absent.any():
        nulls = int(column.isna().sum())
        present = [value for value, gone in zip(uniques, absent, strict=True) if not gone]
    else:
        nulls, present = 0, list(uniques)
    texts = [str(value) for value in present]
    return ProfileRow(
        column=name,
        type=str(column.dtype),
        nulls=nulls,
        distinct=len(present),
        min=min(texts) if texts else None,
        max=max(texts) if texts else None,
        mean=None,
    )


def _sample_distinct(sample: pd.Series) -> int:
    """Distinct values in a sample; lists and mappings (nested values) count as all alike."""
    try:
        return int(sample.nunique(dropna=True))
    except TypeError:
        return 0


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _distinct_integers(values: np.ndarray, low: int, high: int) -> int:
    """Distinct integers: marked in a bitmap when they span a few times their count, else hashed.

    The bitmap is exact and cheaper than hashing.
    """
    span = high - low + 1
    if span <= 4 * len(values) + (1 << 16):
        seen = np.zeros(span, dtype=np.bool_)
        seen[values - values.dtype.type(low)] = True
        return int(np.count_nonzero(seen))
    wide = values.astype(np.uint64 if values.dtype.kind == "u" else np.int64, copy=False)
    return _distinct_hashes(_mixed(wide))


def _mixed(values: np.ndarray) -> np.ndarray:
    """64-bit values (integers, or floats by their bits) mixed into well-spread 64-bit hashes.

    SplitMix64's finalizer without its last shift (only the high bits are compared):
    xorshifts and multiplications by odd constants, all bijections, so equal hashes mean
    equal values and exact counts stay exact. Floats are first added to 0.0, so that -0.0
    and 0.0 are one value, as pandas counts them. The work is done a cache-sized slice at a
    time into preallocated buffers: six passes over memory would cost three times as much.
    """
    hashes = np.empty(len(values), dtype=np.uint64)
    size = min(_HASH_SLICE, len(values))
    shifted = np.empty(size, dtype=np.uint64)
    zero_folded = np.empty(size, dtype=np.float64) if values.dtype.kind == "f" else None
    for start in range(0, len(values), size):
        part = values[start : start + size]
        rows = len(part)
        if zero_folded is not None:
            bits = np.add(part, 0.0, out=zero_folded[:rows]).view(np.uint64)
        else:
            bits = part.view(np.uint64)
        out, spare = hashes[start : start + rows], shifted[:rows]
        np.right_shift(bits, np.uint64(31), out=spare)
        np.bitwise_xor(spare, bits, out=out)
        np.multiply(out, _MIX_1, out=out)
        np.right_shift(out, np.uint64(29), out=spare)
        np.bitwise_xor(out, spare, out=out)
        np.multiply(out, _MIX_2, out=out)
    return hashes


def _distinct_hashes(hashes: np.ndarray) -> int:
    """Distinct values among well-mixed 64-bit hashes: exact below EXACT_DISTINCT, else estimated.

    The hashes below a threshold are kept (one comparison pass), the threshold growing with
    the duplicates among them until they hold ``k`` distinct ones; the k-th smallest distinct
    hash then estimates the count as ``(k - 1) / (h_k / 2**64)``. A column with fewer than
    ``k`` distinct values, or so few that the threshold would near the whole range, is counted
    exactly with a hash table, which is quick then.
    """
    k, rows = EXACT_DISTINCT, len(hashes)
    share = 2 * k / max(rows, 1)
    while share < 0.5:
        kept = np.asarray(pd.unique(hashes[hashes < np.uint64(share * _HASH_SPACE)]))
        if len(kept) >= k:
            kth = np.partition(kept, k - 1)[k - 1]
            return round((k - 1) / (float(kth) / _HASH_SPACE))
        # As many more as the duplicates seen so far ask for, and half as many again to be sure.
        share *= k / max(len(kept), 1) * 1.5
    return len(pd.unique(hashes))


def _number(value: Any) -> float | int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    as_float = float(value)
    return int(as_float) if as_float.is_integer() else round(as_float, 6)
