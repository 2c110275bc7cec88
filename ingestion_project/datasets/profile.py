"""Schema and per-column profile of a DataFrame, for version records and the web UI.

The profile is computed on every registration, so it must cost a fraction of reading the data:
each column is hashed once (vectorized), distinct values are counted exactly below
``EXACT_DISTINCT`` and estimated above it from the ``EXACT_DISTINCT`` smallest hashes (a
k-minimum-values sketch, within about 2 %), and text columns take their minimum and maximum
from their distinct values rather than from every row.
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
import pandas as pd
from pandas.util import hash_array

from ingestion_project.records import ProfileRow, SchemaColumn

EXACT_DISTINCT = 8192
"""Distinct counts below this are exact; above, a k-minimum-values estimate (k = this)."""
_HASH_SPACE = 2.0**64


def frame_schema(frame: pd.DataFrame) -> list[SchemaColumn]:
    return [SchemaColumn(name=str(name), type=str(dtype)) for name, dtype in frame.dtypes.items()]


def frame_profile(frame: pd.DataFrame) -> list[ProfileRow]:
    """Per column: type, nulls, distinct count, and min/max/mean where they make sense."""
    return [_column_profile(str(name), frame[name]) for name in frame.columns]


def _column_profile(name: str, column: Any) -> ProfileRow:
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iufmMb":
        return _array_profile(name, column)
    if (
        pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
    ) and not isinstance(dtype, pd.CategoricalDtype):
        return _extension_profile(name, column)  # nullable Int64, boolean, tz-aware times
    return _object_profile(name, column)


def _array_profile(name: str, column: pd.Series) -> ProfileRow:
    """Numbers, times and booleans held in a NumPy array: reductions and one hash pass."""
    values = column.to_numpy()
    kind = values.dtype.kind
    missing = pd.isna(values) if kind in "fmM" else None
    nulls = int(missing.sum()) if missing is not None else 0
    present = values[~missing] if missing is not None and nulls else values
    low = high = mean = None
    if len(present):
        if kind == "b":
            low, high = str(bool(present.min())), str(bool(present.max()))
        elif kind in "mM":
            # Compared as times, not formatted first: formatting millions of them is slow.
            low, high = str(column.min()), str(column.max())
        else:
            low, high = _number(present.min()), _number(present.max())
            mean = _number(present.mean(dtype=np.float64))
    if kind == "b":
        distinct = int(bool(present.any())) + int(not bool(present.all())) if len(present) else 0
    else:
        distinct = _distinct_hashes(cast("np.ndarray", hash_array(cast(Any, present))))
    return ProfileRow(
        column=name,
        type=str(column.dtype),
        nulls=nulls,
        distinct=distinct,
        min=low,
        max=high,
        mean=mean,
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
    """Text, categories and nested values: counted from their distinct values."""
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


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _distinct_hashes(hashes: np.ndarray) -> int:
    """Distinct values among 64-bit hashes: exact below EXACT_DISTINCT, else estimated.

    The ``m`` smallest hashes (one partial sort) are taken, ``m`` growing with the duplicates
    among them until they hold ``k`` distinct ones; the k-th smallest distinct hash then
    estimates the count as ``(k - 1) / (h_k / 2**64)``. A column with fewer than ``k``
    distinct values, or so few that ``m`` would near the whole column, is counted exactly
    with a hash table, which is quick then.
    """
    k, rows = EXACT_DISTINCT, len(hashes)
    taken = 2 * k
    while taken < rows // 4:
        smallest = np.unique(np.partition(hashes, taken)[:taken])
        if len(smallest) >= k:
            return round((k - 1) / (float(smallest[k - 1]) / _HASH_SPACE))
        # As many more as the duplicates seen so far ask for, and a fifth more to be sure.
        taken = math.ceil(taken * k / max(len(smallest), 1) * 1.2)
    return len(pd.unique(hashes))


def _number(value: Any) -> float | int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    as_float = float(value)
    return int(as_float) if as_float.is_integer() else round(as_float, 6)
