"""Schema and per-column profile of a DataFrame, for version records and the web UI."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def frame_schema(frame: pd.DataFrame) -> list[dict[str, str]]:
    return [{"name": str(name), "type": str(dtype)} for name, dtype in frame.dtypes.items()]


def frame_profile(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per column: type, nulls, distinct count, and min/max/mean where they make sense."""
    rows: list[dict[str, Any]] = []
    for name in frame.columns:
        column = frame[name]
        row: dict[str, Any] = {
            "column": str(name),
            "type": str(column.dtype),
            "nulls": int(column.isna().sum()),
            "distinct": int(column.nunique(dropna=True)),
            "min": None,
            "max": None,
            "mean": None,
        }
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            row["min"] = _number(column.min())
            row["max"] = _number(column.max())
            row["mean"] = _number(column.mean())
        elif (
            pd.api.types.is_datetime64_any_dtype(column) or pd.api.types.is_bool_dtype(column)
        ) and bool(column.notna().any()):
            # Compared as times, not formatted first: formatting millions of them is slow.
            row["min"], row["max"] = str(column.min()), str(column.max())
        elif len(column.dropna()):
            values = column.dropna().astype(str)
            row["min"], row["max"] = values.min(), values.max()
        rows.append(row)
    return rows


def _number(value: Any) -> float | int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    as_float = float(value)
    return int(as_float) if as_float.is_integer() else round(as_float, 6)
