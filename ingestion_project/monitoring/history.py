"""A monitor's verdicts window by window: persistence reads them, the UI shows them over time.

Each window's verdict is one small record in the registry's datastore, next to its full result;
rewriting a window (a backfill run again) replaces it, as re-materializing a partition does.
"""

from __future__ import annotations

from collections.abc import Sequence

from ingestion_project.datastores.base import FileDatastore
from ingestion_project.records import DriftWindowRecord, read_record, record_json


def window_folder(prefix: str, monitor: str) -> str:
    return f"{prefix.strip('/')}/monitors/{monitor}/windows"


def _file_name(window: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in window)


def window_path(prefix: str, monitor: str, window: str) -> str:
    return f"{window_folder(prefix, monitor)}/{_file_name(window)}.json"


def report_path(prefix: str, monitor: str, window: str, extension: str = "json") -> str:
    return f"{window_folder(prefix, monitor)}/{_file_name(window)}.report.{extension}"


def save_window(store: FileDatastore, prefix: str, record: DriftWindowRecord) -> None:
    store.write_bytes(window_path(prefix, record.monitor, record.window), record_json(record))


def load_window(
    store: FileDatastore, prefix: str, monitor: str, window: str
) -> DriftWindowRecord | None:
    path = window_path(prefix, monitor, window)
    if not store.exists(path):
        return None
    return read_record(DriftWindowRecord, store.read_bytes(path), path)


def persisted(
    detected: bool,
    earlier: Sequence[DriftWindowRecord | None],
    windows: int,
) -> bool:
    """Whether drift held for ``windows`` windows in a row, this one included.

    ``earlier`` are the verdicts of the windows just before, newest first; a window never measured
    breaks the run, so a monitor does not alarm on what it did not see.
    """
    if not detected:
        return False
    needed = list(earlier[: windows - 1])
    if len(needed) < windows - 1:
        return False
    return all(record is not None and record.detected for record in needed)


def recent_windows(
    store: FileDatastore, prefix: str, monitor: str, limit: int = 12
) -> list[DriftWindowRecord]:
    """The latest recorded windows, newest first, for the drift-over-time table."""
    records = []
    for info in store.list_files(f"{window_folder(prefix, monitor)}/*.json"):
        if info.path.endswith(".report.json"):
            continue
        records.append(read_record(DriftWindowRecord, store.read_bytes(info.path), info.path))
    records.sort(key=lambda record: record.order, reverse=True)
    return records[:limit]
