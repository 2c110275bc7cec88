"""Schema and per-column profile of a DataFrame, for version records and the web UI.

The profile is computed on every registration, so it must cost a fraction of reading the data.
Integers in a narrow range are counted exactly with a bitmap; other numbers and times are mixed
into 64-bit hashes (a bijection, so exact counts stay exact), counted exactly below
``EXACT_DISTINCT`` and estimated above it from the flags their hashes mark (linear counting,
within 0.5 %), or from the ``EXACT_DISTINCT`` smallest hashes when the flags fill up (a
k-minimum-values sketch, within about 2 %). Text is counted from its distinct values, taken by
Arrow when the column was read through Arrow. Columns are profiled on a thread each (NumPy and
Arrow release the GIL), so every core takes part.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
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
_HASH_SLICE = 1 << 16
"""Values hashed at a time: 512 KiB a buffer, so the passes stay in the CPU's cache. Smaller
slices were quicker on one thread but slower on two: each slice takes the GIL a few times."""
_FLAG_BITS = 20
"""Linear counting's bitmap holds up to 2**20 flags (1 MiB, in the CPU's cache)."""
_FULLEST = math.exp(-7)
"""Below this share of empty flags (7 values a flag), linear counting's error passes 0.5 %."""
_NAT = np.iinfo(np.int64).min
"""NaT's tick."""
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
    with np.errstate(invalid="ignore"):  # +inf and -inf sum to NaN: a mean of None
        total = float(np.add.reduce(values, dtype=np.float64)) if kind == "f" else math.nan
    present, nulls = _present(values, total)
    low = high = mean = None
    distinct = 0
    if len(present) and kind == "b":
        low, high = str(bool(present.min())), str(bool(present.max()))
        distinct = int(bool(present.any())) + int(not bool(present.all()))
    elif len(present) and kind in "mM":
        # Compared as ticks, not formatted first: formatting millions of them is slow.
        ticks = present.view(np.int64)
        first, last = int(ticks.min()), int(ticks.max())
        scalar = pd.Timestamp if kind == "M" else pd.Timedelta
        unit = np.datetime_data(values.dtype)
        low, high = (str(scalar(values.dtype.type(tick, unit))) for tick in (first, last))
        distinct = _distinct_integers(ticks, first, last)
    elif len(present):
        smallest, largest = present.min(), present.max()
        low, high = _number(smallest), _number(largest)
        if kind == "f":
            if nulls:
                with np.errstate(invalid="ignore"):
                    total = float(np.add.reduce(present, dtype=np.float64))
            mean = _number(total / len(present))
            distinct = _distinct_64bit(
                present.astype(np.float64, copy=False), fold_zeros=smallest <= 0 <= largest
            )
        else:
            mean = _number(_integer_mean(present, int(smallest), int(largest)))
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


def _present(values: np.ndarray, total: float) -> tuple[np.ndarray, int]:
    """The values that are not NaN or NaT, and how many are.

    A float column's ``total`` is NaN if a value is NaN (or if +inf and -inf meet), and NaT
    is the smallest tick: where they show none, the values are not searched one by one.
    """
    kind = values.dtype.kind
    if kind == "f" and not math.isnan(total):
        return values, 0
    if kind in "mM" and (not len(values) or int(values.view(np.int64).min()) != _NAT):
        return values, 0
    if kind not in "fmM":
        return values, 0
    missing = np.isnan(values) if kind == "f" else np.isnat(values)
    nulls = int(np.count_nonzero(missing))
    return (values[~missing] if nulls else values), nulls


def _integer_mean(values: np.ndarray, low: int, high: int) -> float:
    """The mean of integers: from their exact 64-bit sum when it cannot overflow.

    Summing as integers is exact and took half the time of summing as floats.
    """
    if max(abs(low), abs(high)) * len(values) < 2**63:
        return int(values.sum(dtype=np.int64)) / len(values)
    return float(values.mean(dtype=np.float64))


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

    The bitmap is exact and cheaper than hashing. Values are offset a cache-sized slice at a
    time: offsetting the whole column first cost a pass over memory as long as the marking.
    """
    span = high - low + 1
    if span > 4 * len(values) + (1 << 16):
        wide = values.astype(np.uint64 if values.dtype.kind == "u" else np.int64, copy=False)
        return _distinct_64bit(wide)
    seen = np.zeros(span, dtype=np.bool_)
    offset = np.int64(low - 2**64 if low >= 2**63 else low)  # unsigned: wraps, as values do
    size = max(1, min(_HASH_SLICE, len(values)))
    buffer = np.empty(size, dtype=np.int64)
    for start in range(0, len(values), size):
        part = values[start : start + size]
        # In 64 bits whatever the type: narrow types would wrap. Unsigned values wrap too, and
        # their offsets, modulo 2**64, are the true ones: all are below the span.
        buffer_part = buffer[: len(part)]
        seen[np.subtract(part, offset, out=buffer_part, dtype=np.int64, casting="unsafe")] = True
    return int(np.count_nonzero(seen))


def _distinct_64bit(values: np.ndarray, *, fold_zeros: bool = False) -> int:
    """Distinct 64-bit values (integers, or floats by their bits), exact below EXACT_DISTINCT.

    Their hashes (:func:`_hash_slices`) mark a bitmap of up to ``2**_FLAG_BITS`` flags, and
    the empty flags give the count (linear counting: ``-m ln(empty / m)``, a standard error
    under 0.5 % up to 7 values a flag). That is one pass that keeps nothing, where keeping the
    smallest hashes of a column with tens of thousands of values took a second pass over half
    of them. Counts below about ``EXACT_DISTINCT`` are then counted exactly, which is quick for
    so few values; more than 7 values a flag are estimated from the smallest hashes
    (:func:`_distinct_hashes`).
    """
    flags = 1 << min(_FLAG_BITS, max(10, (4 * len(values) - 1).bit_length()))
    seen = np.zeros(flags, dtype=np.bool_)
    to_flag = np.uint64(64 - (flags.bit_length() - 1))
    for hashes, spare in _hash_slices(values, fold_zeros):
        seen[np.right_shift(hashes, to_flag, out=spare).view(np.intp)] = True
    empty = flags - int(np.count_nonzero(seen))
    if empty < flags * _FULLEST:
        return _distinct_hashes(_mixed(values, fold_zeros))
    estimate = -flags * math.log(empty / flags)
    if estimate < 1.25 * EXACT_DISTINCT:
        return len(pd.unique(values))  # pandas, too, counts -0.0 and 0.0 as one value
    return round(estimate)


def _mixed(values: np.ndarray, fold_zeros: bool) -> np.ndarray:
    """All of :func:`_hash_slices`' hashes, in one array."""
    hashes = np.empty(len(values), dtype=np.uint64)
    start = 0
    for part, _ in _hash_slices(values, fold_zeros):
        hashes[start : start + len(part)] = part
        start += len(part)
    return hashes


def _hash_slices(values: np.ndarray, fold_zeros: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """64-bit values mixed into well-spread 64-bit hashes, a slice at a time, with a spare buffer.

    SplitMix64's finalizer without its last shift (only the high bits are used):
    xorshifts and multiplications by odd constants, all bijections, so equal hashes mean
    equal values and exact counts stay exact. With ``fold_zeros`` (floats whose range holds 0),
    values are first added to 0.0, so that -0.0 and 0.0 are one value, as pandas counts them.
    Each slice overwrites the one before: whole passes over memory would cost twice as much.
    """
    size = max(1, min(_HASH_SLICE, len(values)))
    hashed, shifted = np.empty(size, dtype=np.uint64), np.empty(size, dtype=np.uint64)
    zero_folded = np.empty(size, dtype=np.float64) if fold_zeros else None
    for start in range(0, len(values), size):
        part = values[start : start + size]
        if zero_folded is not None:
            part = np.add(part, 0.0, out=zero_folded[: len(part)])
        bits = part.view(np.uint64)
        out, spare = hashed[: len(bits)], shifted[: len(bits)]
        np.right_shift(bits, np.uint64(31), out=spare)
        np.bitwise_xor(spare, bits, out=out)
        np.multiply(out, _MIX_1, out=out)
        np.right_shift(out, np.uint64(29), out=spare)
        np.bitwise_xor(out, spare, out=out)
        np.multiply(out, _MIX_2, out=out)
        yield out, spare


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
