"""Render records as Dagster metadata that people can read in the web UI.

Lists are ``MetadataValue.table`` with a typed schema, kept to a few narrow columns so the asset
page fits a laptop screen; times are timestamps, runs and files are links, and the series people
compare over time are plain numbers, which the UI plots.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd

from ingestion_project.records import SchemaColumn

TEXT_CHARS = 64
"""Longer text in a table cell is cut, so one long value cannot widen the whole table."""


def table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[dg.TableColumn]
) -> dg.TableMetadataValue:
    """``rows`` as a table with ``columns`` as its schema; cells are made plain and short."""
    return dg.MetadataValue.table(
        [
            dg.TableRecord({column.name: cell(row.get(column.name)) for column in columns})
            for row in rows
        ],
        dg.TableSchema(columns=list(columns)),
    )


def cell(value: Any) -> str | int | float | bool | None:
    """A value a table cell holds: numbers rounded, times to the minute, long text cut."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else number(value)
    if isinstance(value, datetime):
        return short_time(value)
    text = str(value)
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"


def number(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits: enough to compare, short enough to read."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def short_time(value: datetime) -> str:
    """'2011-03-01 14:05 UTC': a time in a table cell, without seconds and microseconds."""
    if value.tzinfo is None:
        return value.strftime("%Y-%m-%d %H:%M")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def timestamp(value: datetime) -> dg.TimestampMetadataValue:
    """A time the UI shows in the viewer's timezone; a naive time is taken as UTC."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return dg.MetadataValue.timestamp(aware)


def frame_table(frame: pd.DataFrame, columns: Sequence[str]) -> dg.TableMetadataValue:
    """The named columns of ``frame`` as a table typed from their dtypes."""
    schema = [dg.TableColumn(name, _column_type(frame[name].dtype)) for name in columns]
    rows = [
        {name: _plain(frame[name].iloc[index]) for name in columns} for index in range(len(frame))
    ]
    return table(rows, schema)


def _column_type(dtype: Any) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "string"


def _plain(value: Any) -> Any:
    """A numpy or pandas scalar as the Python value a table cell accepts."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def column_schema(schema: Sequence[SchemaColumn]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name=column.name, type=column.type) for column in schema]
    )
