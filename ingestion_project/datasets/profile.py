"""Schema and per-column profile of a DataFrame, for version records and the web UI."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ingestion_project.records import ProfileRow, SchemaColumn


def frame_schema(frame: pd.DataFrame) -> list[SchemaColumn]:
    return [SchemaColumn(name=str(name), type=str(dtype)) for name, dtype in frame.dtypes.items()]


def frame_profile(frame: pd.DataFrame) -> list[ProfileRow]:
    """Per column: type, nulls, distinct count, and min/max/mean where they make sense."""
    rows: list[ProfileRow] = []
    for name in frame.columns:
        column = frame[name]
        low = high = mean = None
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            low, high, mean = _number(column.min()), _number(column.max()), _number(column.mean())
        elif (
            pd.api.types.is_datetime64_any_dtype(column) or pd.api.types.is_bool_dtype(column)
        ) and bool(column.notna().any()):
            # Compared as times, not formatted first: formatting millions of them is slow.
            low, high = str(column.min()), str(column.max())
        elif len(column.dropna()):
            values = column.dropna().astype(str)
            low, high = str(values.min()), str(values.max())
        rows.append(
            ProfileRow(
                column=str(name),
                type=str(column.dtype),
                nulls=int(column.isna().sum()),
                distinct=_distinct(column),
                min=low,
                max=high,
                mean=mean,
            )
        )
    return rows


def _distinct(column: Any) -> int:
    """Distinct values; lists and mappings (nested JSON or Parquet) are compared as text."""
    try:
        return int(column.nunique(dropna=True))
    except TypeError:
        return int(column.dropna().map(str).nunique())


def _number(value: Any) -> float | int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    as_float = float(value)
    return int(as_float) if as_float.is_integer() else round(as_float, 6)
