"""Time windows of a dataset: which files and rows a window holds, and where its versions live.

A windowed dataset is one Dagster asset partitioned by day, week or month. Each window has its
own numbered versions (``<dataset>/windows/<key>`` in the registry), so a late file in one
day registers a new version of that day only. A window holds the files whose partition-format
date period overlaps it and, with a ``timestamp_column``, only the rows stamped inside it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd

from ingestion_project.datasets.partitions import (
    PartitionFormat,
    date_granularity,
    date_placeholder,
)
from ingestion_project.datastores.base import FileInfo
from ingestion_project.records import WindowBounds

if TYPE_CHECKING:
    import dagster as dg

    from ingestion_project.catalog.spec import DatasetWindowsSpec

WINDOWS_FOLDER = "windows"


def partitions_for(
    frequency: str, start: str, end: str | None, timezone: str
) -> dg.TimeWindowPartitionsDefinition:
    """Day, week or month windows from ``start`` (to ``end``), in ``timezone``."""
    import dagster as dg

    classes: dict[str, Any] = {
        "day": dg.DailyPartitionsDefinition,
        "week": dg.WeeklyPartitionsDefinition,
        "month": dg.MonthlyPartitionsDefinition,
    }
    partitions: dg.TimeWindowPartitionsDefinition = classes[frequency](
        start_date=start, end_date=end, timezone=timezone
    )
    return partitions


def dataset_partitions(windows: DatasetWindowsSpec) -> dg.TimeWindowPartitionsDefinition:
    return partitions_for(
        windows.frequency,
        windows.start.isoformat(),
        windows.end.isoformat() if windows.end else None,
        windows.timezone,
    )


def window_bounds(partitions: dg.TimeWindowPartitionsDefinition, key: str) -> WindowBounds:
    """The window a partition key names, as a version records it."""
    window = partitions.time_window_for_partition_key(key)
    return WindowBounds(key=key, start=window.start, end=window.end, timezone=partitions.timezone)


def version_series(name: str, window: str | None) -> str:
    """The registry name a window's versions are numbered under; the dataset's own without one."""
    return name if window is None else f"{name}/{WINDOWS_FOLDER}/{window}"


def files_in_window(
    files: list[FileInfo], partitions: PartitionFormat | None, window: WindowBounds
) -> list[FileInfo]:
    """The files whose date period overlaps the window; all of them when paths carry no date.

    A file under ``2024/01/31`` covers that whole day; one under ``2024/01`` the whole month.
    Every path must already match the format (checked before any read).
    """
    part = None if partitions is None else date_placeholder(partitions)
    if partitions is None or part is None:
        return files
    unit = date_granularity(partitions)
    assert unit is not None
    zone = ZoneInfo(window.timezone)
    kept = []
    for info in files:
        values = partitions.values(info.path)
        assert values is not None
        dated = values[part.name]
        assert isinstance(dated, datetime)
        start = dated.replace(tzinfo=zone)
        end = _period_end(dated, unit).replace(tzinfo=zone)
        if start < window.end and end > window.start:
            kept.append(info)
    return kept


def _period_end(start: datetime, unit: str) -> datetime:
    if unit == "year":
        return start.replace(year=start.year + 1)
    if unit == "month":
        year, month = divmod(start.month, 12)
        return start.replace(year=start.year + year, month=month + 1)
    steps = {
        "day": timedelta(days=1),
        "hour": timedelta(hours=1),
        "minute": timedelta(minutes=1),
        "second": timedelta(seconds=1),
    }
    return start + steps[unit]


def in_zone(stamps: pd.Series, zone: Any) -> pd.Series:
    """Timestamps in ``zone``: naive ones are read as local times there, aware ones converted."""
    stamps = pd.to_datetime(stamps, errors="coerce")
    if stamps.dt.tz is None:
        return stamps.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    return stamps.dt.tz_convert(zone)


def rows_in_window(frame: pd.DataFrame, column: str, window: WindowBounds) -> pd.DataFrame:
    """The rows stamped in [start, end); rows without a readable time belong to no window."""
    stamps = in_zone(pd.Series(frame[column]), ZoneInfo(window.timezone))
    keep = ((stamps >= window.start) & (stamps < window.end)).to_numpy()
    if keep.all():
        return frame
    return frame.loc[keep].reset_index(drop=True)
