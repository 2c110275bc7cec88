"""Register and read dataset versions: reference mode pins the exact files and their ETags."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets.fingerprint import listing_fingerprint
from ingestion_project.datasets.formats import MalformedFileError, read_table
from ingestion_project.datasets.profile import frame_profile, frame_schema
from ingestion_project.datastores.base import FileDatastore, FileInfo
from ingestion_project.registry import Record, VersionRegistry


class DatasetError(Exception):
    """A dataset could not be registered or loaded; the message says what to do."""


class DatasetVersionChangedError(DatasetError):
    """The files a version pins have changed since it was registered."""


@dataclass(frozen=True)
class Registration:
    """Outcome of materializing a dataset: the version, and whether it is new."""

    record: Record
    created: bool
    frame: pd.DataFrame | None


def dataset_registry(store: FileDatastore, prefix: str) -> VersionRegistry:
    return VersionRegistry(store, prefix, "datasets")


def list_dataset_files(name: str, spec: DatasetSpec, store: FileDatastore) -> list[FileInfo]:
    """The files a dataset's glob matches now; an empty match is an error, not an empty version."""
    assert spec.path is not None
    files = store.list_files(spec.path)
    if not files:
        raise DatasetError(
            f"dataset '{name}': no files match '{spec.path}' in datastore '{spec.datastore}' "
            f"({store.describe()}). Check the path, or wait for data to arrive."
        )
    return files


def register_file_dataset(
    name: str,
    spec: DatasetSpec,
    store: FileDatastore,
    registry: VersionRegistry,
    *,
    run_id: str | None,
    code_version: str,
) -> Registration:
    """Register a new version if the listing changed; unchanged data gives no new version."""
    files = list_dataset_files(name, spec, store)
    fingerprint = listing_fingerprint(files)
    latest = registry.latest(name)
    if latest is not None and latest["fingerprint"] == fingerprint:
        return Registration(record=latest, created=False, frame=None)

    frame = read_files(name, spec, store, files)
    after = store.list_files(spec.path or "")
    if listing_fingerprint(after) != fingerprint:
        raise DatasetError(
            f"dataset '{name}': files under '{spec.path}' changed while they were being read. "
            "Nothing was registered; run the materialization again."
        )

    def build(version: int) -> Record:
        return {
            "dataset": name,
            "version": version,
            "fingerprint": fingerprint,
            "mode": "reference",
            "datastore": spec.datastore,
            "manifest_store": spec.datastore,
            "path": spec.path,
            "format": spec.file_format,
            "read_options": {"separator": spec.separator, "encoding": spec.encoding},
            "manifest": [info.to_dict() for info in files],
            "schema": frame_schema(frame),
            "row_count": len(frame),
            "bytes": sum(info.size for info in files),
            "profile": frame_profile(frame),
            "lineage": {"run_id": run_id, "code_version": code_version, "upstream": []},
            "description": spec.description,
            "tags": spec.tags,
        }

    record = registry.register(name, build)
    return Registration(record=record, created=True, frame=frame)


def read_files(
    name: str, spec: DatasetSpec, store: FileDatastore, files: list[FileInfo]
) -> pd.DataFrame:
    frames = []
    for info in files:
        with store.open_read(info.path) as stream:
            try:
                frame = read_table(
                    stream,
                    file_format=spec.file_format,
                    path=info.path,
                    separator=spec.separator,
                    encoding=spec.encoding,
                )
            except MalformedFileError as error:
                raise MalformedFileError(
                    f"dataset '{name}', datastore '{spec.datastore}' ({store.describe()}): {error}"
                ) from None
        frames.append(frame)
    _check_same_columns(name, files, frames)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if spec.timestamp_column:
        if spec.timestamp_column not in frame.columns:
            raise DatasetError(
                f"dataset '{name}': timestamp_column '{spec.timestamp_column}' is not a column "
                f"(columns: {', '.join(map(str, frame.columns))}). Fix 'timestamp_column'."
            )
        frame[spec.timestamp_column] = pd.to_datetime(frame[spec.timestamp_column])
        frame = frame.sort_values(spec.timestamp_column, kind="stable", ignore_index=True)
    return frame


def _check_same_columns(name: str, files: list[FileInfo], frames: list[pd.DataFrame]) -> None:
    """A schema change between files is reported, not silently turned into NaN columns."""
    expected = list(frames[0].columns)
    for info, frame in zip(files[1:], frames[1:], strict=True):
        if list(frame.columns) != expected:
            missing = sorted(set(expected) - set(frame.columns))
            added = sorted(set(frame.columns) - set(expected))
            raise DatasetError(
                f"dataset '{name}': '{info.path}' has different columns than '{files[0].path}' "
                f"(missing: {missing or 'none'}, extra: {added or 'none'}). Fix the file or "
                "split the dataset; nothing was registered."
            )


StoreOrStores = FileDatastore | Mapping[str, FileDatastore]


def manifest_store(record: Record, stores: StoreOrStores) -> FileDatastore:
    """The store holding a version's files: the dataset's own (reference) or a snapshot store.

    Callers with a single store pass it; callers with several pass a name -> store mapping.
    """
    if isinstance(stores, FileDatastore):
        return stores
    name = record.get("manifest_store", record["datastore"])
    try:
        return stores[name]
    except KeyError:
        raise DatasetError(
            f"dataset '{record['dataset']}' version {record['version']} keeps its files in "
            f"datastore '{name}', which is not available here (have: {', '.join(stores)})."
        ) from None


def load_version(
    record: Record, stores: StoreOrStores, spec: DatasetSpec | None = None
) -> pd.DataFrame:
    """Read exactly the files a version pins, refusing if any of them changed since."""
    store = manifest_store(record, stores)
    name = record["dataset"]
    files = [FileInfo.from_dict(item) for item in record["manifest"]]
    changed = []
    for pinned in files:
        try:
            current = store.stat(pinned.path)
        except FileNotFoundError:
            changed.append(f"{pinned.path} (deleted)")
            continue
        if (current.etag, current.size) != (pinned.etag, pinned.size):
            changed.append(f"{pinned.path} (modified)")
    if changed:
        raise DatasetVersionChangedError(
            f"dataset '{name}' version {record['version']} pins files that changed since it was "
            f"registered: {', '.join(changed)}. Load a newer version, or register the current "
            "files as a new version by materializing the dataset."
        )
    options = record.get("read_options", {})
    read_spec = spec or DatasetSpec(
        datastore=record["datastore"],
        path=record["path"],
        format=record["format"],
        separator=options.get("separator", ","),
        encoding=options.get("encoding", "utf-8"),
    )
    return read_files(name, read_spec, store, files)


def version_summary(record: Record) -> dict[str, Any]:
    """The few facts a person wants in a versions table."""
    return {
        "version": record["version"],
        "registered_at": record.get("registered_at", ""),
        "files": len(record.get("manifest", [])),
        "rows": record.get("row_count"),
        "fingerprint": record["fingerprint"][:12],
        "run_id": (record.get("lineage", {}).get("run_id") or "")[:8],
    }
