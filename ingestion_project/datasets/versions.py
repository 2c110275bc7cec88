"""Register and read dataset versions.

``reference`` mode pins the exact files and their ETags; ``snapshot`` mode copies them into the
registry's store first, so editing or deleting the originals can never change a version. A
version is a :class:`DatasetVersionRecord`: ``manifest`` (the files to read), ``manifest_store``
(the datastore holding them), ``format``, ``read_options`` and ``load_options`` (how to read
them, so a version always loads as it was registered), and ``lineage``. A tabular version is
judged by its dataset's declared checks before its record is written (``quality``); a version
that failed them is kept, loadable by number, but is never the latest (:class:`DatasetRegistry`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets.fingerprint import version_fingerprint
from ingestion_project.datasets.formats import (
    TEXT_TYPES,
    MalformedFileError,
    PiecesDisagree,
    ReadSettings,
    apply_column_types,
    arrow_frame,
    iter_arrow_tables,
    iter_table_batches,
    joined_frame,
    read_arrow_table,
    read_json_with_pandas,
    read_memory,
)
from ingestion_project.datasets.frame_assembly import AssemblyAbandoned, FrameAssembly
from ingestion_project.datasets.partitions import PartitionFormat, PartitionFormatError
from ingestion_project.datasets.profile import (
    arrow_text_columns,
    frame_profile,
    frame_schema,
)
from ingestion_project.datasets.snapshot import (
    discard_copies,
    new_snapshot_token,
    snapshot_files,
    snapshot_prefix,
)
from ingestion_project.datasets.windows import files_in_window, rows_in_window, version_series
from ingestion_project.datastores.base import FileColumns, FileDatastore, FileInfo
from ingestion_project.quality.gate import (
    judge,
    judge_again,
    no_passing_version_message,
    quality_word,
)
from ingestion_project.records import (
    DatasetLineage,
    DatasetVersionRecord,
    LoadOptions,
    Manifest,
    QualityReport,
    ReadOptions,
    WindowBounds,
)
from ingestion_project.registry import VersionRegistry

if TYPE_CHECKING:
    import pyarrow as pa


class DatasetError(Exception):
    """A dataset could not be registered or loaded; the message says what to do."""


class DatasetVersionChangedError(DatasetError):
    """The files a version pins have changed since it was registered."""


class SnapshotChangedError(DatasetVersionChangedError):
    """A snapshot's own copies were edited or deleted: something outside the platform did it."""


class NoPassingVersionError(DatasetError):
    """A dataset has versions, but every one of them failed its checks: there is no latest."""


@dataclass(frozen=True)
class Registration:
    """Outcome of materializing a dataset: the version, and whether it is new.

    ``frame`` is the data just read for a new tabular version; None otherwise.
    """

    record: DatasetVersionRecord
    created: bool
    frame: pd.DataFrame | None


class DatasetRegistry(VersionRegistry[DatasetVersionRecord]):
    """Dataset versions, where the latest is the newest version that passed its checks.

    Every consumer (training, scoring, monitors, the API's default, the CLI) takes the latest
    from here; a failed version stays readable by number with :meth:`get`.
    """

    def latest(self, name: str, *, include_failed: bool = False) -> DatasetVersionRecord | None:
        """The newest version that passed its checks (with ``include_failed``: the newest)."""
        for number in reversed(self.version_numbers(name)):
            record = self.get(name, number)
            if include_failed or record.passed:
                return record
        return None

    def require_latest(self, name: str) -> DatasetVersionRecord:
        """The latest version that passed its checks, or an error saying why there is none."""
        numbers = self.version_numbers(name)
        newest = None
        for number in reversed(numbers):
            record = self.get(name, number)
            if record.passed:
                return record
            newest = newest or record
        if newest is None:
            raise DatasetError(f"dataset '{name}' has no version yet: materialize '{name}' first.")
        raise NoPassingVersionError(no_passing_version_message(name, newest, len(numbers)))

    def windows(self, name: str) -> list[str]:
        """The time windows of ``name`` that have versions, in order (their partition keys)."""
        folder = f"{self._folder(version_series(name, '*'))}/v*.json"
        keys = {info.path.split("/")[-2] for info in self.store.list_files(folder)}
        return sorted(keys)


def dataset_registry(store: FileDatastore, prefix: str) -> DatasetRegistry:
    return DatasetRegistry(store, prefix, "datasets", DatasetVersionRecord)


def list_dataset_files(name: str, spec: DatasetSpec, store: FileDatastore) -> FileColumns:
    """The files a dataset's glob matches now; an empty match is an error, not an empty version."""
    assert spec.path is not None
    files = store.list_columns(spec.path)
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
    registry: DatasetRegistry,
    *,
    run_id: str | None,
    code_version: str,
    snapshot_store: FileDatastore | None = None,
    snapshot_store_name: str | None = None,
    upstream: list[dict[str, Any]] | None = None,
    window: WindowBounds | None = None,
) -> Registration:
    """Register a new version if the files or the way they are read changed; else return latest.

    Tabular datasets are read once to record schema, profile and row count, and to judge them
    by the declared checks (the verdict goes into the record); ``kind: file`` datasets are only
    listed. Unchanged files are not registered again, even when the newest version failed its
    checks, unless those checks have changed since. ``mode: snapshot`` first copies every file
    (streaming) under a fresh :func:`snapshot_prefix` folder of ``snapshot_store`` (default: the
    registry's store), whose catalog name ``snapshot_store_name`` is recorded as the version's
    ``manifest_store``. A failure before the record is written registers nothing; see
    ``datasets.snapshot`` for the copies it may leave behind. With a ``window``, only the
    window's files and rows are read, and the version is numbered in the window's own series
    (``datasets.windows``).
    """
    settings = ReadSettings.from_spec(spec, window)
    listed = list_dataset_files(name, spec, store)
    partitions = partition_format(name, settings)
    if partitions is not None:
        _check_partitions(name, spec.datastore, partitions, listed.paths)
    if window is not None:
        listed = _in_window(listed, partitions, window)
        if not listed:
            raise DatasetError(
                f"dataset '{name}': no files of '{spec.path}' in datastore '{spec.datastore}' "
                f"are dated in window {window.key}. Nothing was registered for it; wait for its "
                "data to arrive, or leave the window out of the run."
            )
    series = version_series(name, window.key if window else None)
    mode = spec.effective_mode
    target, target_name = store, spec.datastore
    if mode == "snapshot":
        target, target_name = _snapshot_target(name, registry, snapshot_store, snapshot_store_name)
    listing = listed.digest()
    fingerprint = version_fingerprint(
        listing,
        {
            "kind": spec.kind,
            "mode": mode,
            "manifest_store": target_name,
            "format": settings.file_format,
            **settings.read_options(),
            **settings.load_options(),
        },
    )
    latest = registry.latest(series, include_failed=True)
    if (
        latest is not None
        and latest.fingerprint == fingerprint
        and not judge_again(latest, spec)
        and (mode == "reference" or not changed_files(latest, target))
    ):
        return Registration(record=latest, created=False, frame=None)

    def register_version(
        manifest: Manifest,
        read: FrameRead | None,
        folder: str | None,
        quality: QualityReport | None,
    ) -> Registration:
        """Record the files themselves, or their copies under ``folder`` (a snapshot)."""
        originals = Manifest(listed) if folder else None
        frame = None if read is None else read.frame
        schema = None if read is None else frame_schema(read.frame)
        profile = None if read is None else frame_profile(read.frame, read.arrow_text)

        def build(version: int) -> DatasetVersionRecord:
            return DatasetVersionRecord(
                dataset=name,
                version=version,
                fingerprint=fingerprint,
                listing_fingerprint=listing,
                kind=spec.kind,
                mode="snapshot" if folder else "reference",
                datastore=spec.datastore,
                manifest_store=target_name,
                path=spec.path,
                format=settings.file_format,
                read_options=ReadOptions(**settings.read_options()),
                load_options=LoadOptions(**settings.load_options()),
                manifest=manifest,
                bytes=sum(manifest.columns.sizes),
                snapshot_prefix=folder,
                source_manifest=originals,
                table_schema=schema,
                row_count=None if frame is None else len(frame),
                profile=profile,
                quality=quality,
                lineage=DatasetLineage(
                    run_id=run_id, code_version=code_version, upstream=upstream or []
                ),
                description=spec.description,
                tags=spec.tags,
            )

        return Registration(record=registry.register(series, build), created=True, frame=frame)

    if mode == "reference":
        read = _read_pinned(name, spec, settings, store, listed)
        return register_version(Manifest(listed), read, None, _judge(spec, read))
    folder = snapshot_prefix(registry.prefix, series, new_snapshot_token())
    files = listed.infos()
    copies = snapshot_files(name, files, store, target, folder)
    try:
        _require_unchanged(name, spec, settings, store, listing, "copied")
        read = None
        if spec.kind == "tabular":
            logical = [info.path for info in files]
            where = _where(target, spec.datastore, snapshot_in=target_name)
            read = _read(name, settings, target, copies, logical, where, profile=True)
        quality = _judge(spec, read)
        racer = registry.latest(series, include_failed=True)
    except BaseException as error:
        discard_copies(target, [copy.path for copy in copies], error)
        raise
    seen = latest.version if latest is not None else 0
    if racer is not None and racer.version != seen and racer.fingerprint == fingerprint:
        # Another run snapshotted the same files meanwhile: keep its version, drop our copies.
        discard_copies(target, [copy.path for copy in copies])
        return Registration(record=racer, created=False, frame=None)
    # Copies are never deleted once the record write starts: a write that timed out may still
    # have landed, and a version must never lose its copies. A failure here leaves orphans.
    return register_version(Manifest.of(copies), read, folder, quality)


def _judge(spec: DatasetSpec, read: FrameRead | None) -> QualityReport | None:
    """The checks' verdict on the data just read, before any record of it is written."""
    return None if read is None else judge(spec, read.frame)


def _read_pinned(
    name: str,
    spec: DatasetSpec,
    settings: ReadSettings,
    store: FileDatastore,
    listed: FileColumns,
) -> FrameRead | None:
    """Read reference files in place, then make sure none changed while they were read."""
    if spec.kind != "tabular":
        return None
    where = _where(store, spec.datastore)
    read = _read(name, settings, store, listed.infos(), listed.paths, where, profile=True)
    _require_unchanged(name, spec, settings, store, listed.digest(), "read")
    return read


def _snapshot_target(
    name: str, registry: DatasetRegistry, store: FileDatastore | None, store_name: str | None
) -> tuple[FileDatastore, str]:
    if store_name is None:
        raise DatasetError(
            f"dataset '{name}' is 'mode: snapshot' but no snapshot datastore was named: pass "
            "snapshot_store_name (the registry's datastore) so versions can find their copies."
        )
    return store or registry.store, store_name


def _require_unchanged(
    name: str,
    spec: DatasetSpec,
    settings: ReadSettings,
    store: FileDatastore,
    listing: str,
    action: str,
) -> None:
    files = store.list_columns(spec.path or "")
    if settings.window is not None:
        files = _in_window(files, partition_format(name, settings), settings.window)
    if files.digest() != listing:
        raise DatasetError(
            f"dataset '{name}': files under '{spec.path}' in datastore '{spec.datastore}' "
            f"changed while they were being {action}. Nothing was registered; run the "
            "materialization again."
        )


def _in_window(
    listed: FileColumns, partitions: PartitionFormat | None, window: WindowBounds
) -> FileColumns:
    """The listed files dated in ``window`` (``files_in_window``), still as columns."""
    return FileColumns.of(files_in_window(listed.infos(), partitions, window))


def partition_format(name: str, settings: ReadSettings) -> PartitionFormat | None:
    """The compiled partition format, or None; a malformed one names the dataset."""
    if not settings.partition_format:
        return None
    try:
        compiled = PartitionFormat(settings.partition_format)
    except PartitionFormatError as error:
        raise DatasetError(f"dataset '{name}': {error}. Fix 'partition_format'.") from None
    if settings.path_column and settings.path_column in compiled.columns:
        raise DatasetError(
            f"dataset '{name}': path_column '{settings.path_column}' is also a placeholder in "
            f"partition_format '{settings.partition_format}'. Rename one of them."
        )
    return compiled


def _check_partitions(
    name: str, datastore: str, partitions: PartitionFormat, paths: Iterable[str]
) -> None:
    """Every file must match the partition format, checked from the listing before any read."""
    for path in paths:
        try:
            values = partitions.values(path)
        except PartitionFormatError as error:
            raise DatasetError(
                f"dataset '{name}', datastore '{datastore}': {error}. Fix or move the file."
            ) from None
        if values is None:
            raise DatasetError(
                f"dataset '{name}', datastore '{datastore}': '{path}' does not match "
                f"partition_format '{partitions.text}'. Move the file, narrow 'path' so it is "
                "not listed, or fix 'partition_format'."
            )


def read_files(
    name: str, spec: DatasetSpec, store: FileDatastore, files: list[FileInfo]
) -> pd.DataFrame:
    """Read files in place as the spec declares (one frame; columns checked to agree)."""
    settings = ReadSettings.from_spec(spec)
    where = f"datastore '{spec.datastore}' ({store.describe()})"
    return _read_frame(name, settings, store, files, [info.path for info in files], where)


def _read_frame(
    name: str,
    settings: ReadSettings,
    store: FileDatastore,
    files: list[FileInfo],
    logical: list[str],
    where: str,
    rows: int | None = None,
) -> pd.DataFrame:
    return _read(name, settings, store, files, logical, where, rows=rows).frame


@dataclass(frozen=True)
class FrameRead:
    """A version's rows, and the Arrow form of its text columns, for the profile to count."""

    frame: pd.DataFrame
    arrow_text: dict[str, pa.ChunkedArray]


def _read(
    name: str,
    settings: ReadSettings,
    store: FileDatastore,
    files: list[FileInfo],
    logical: list[str],
    where: str,
    *,
    profile: bool = False,
    rows: int | None = None,
) -> FrameRead:
    """Read the files as one frame: parsed into Arrow, joined, and turned into pandas once.

    Files whose columns pandas could join but Arrow cannot (a number in one file, text in
    another) are turned into pandas one by one and joined by pandas, as before. With
    ``profile``, the Arrow form of the text columns is kept for the profile to count. With
    ``rows``, the number of rows the files hold, each file is converted into the frame as it
    is read (:mod:`frame_assembly`); if a later file cannot be, all are read again and joined.
    """
    with read_memory(settings.file_format):
        try:
            return _read_with(name, settings, store, files, logical, where, profile, rows)
        except (AssemblyAbandoned, PiecesDisagree):
            return _read_with(name, settings, store, files, logical, where, profile, None)


def _read_with(
    name: str,
    settings: ReadSettings,
    store: FileDatastore,
    files: list[FileInfo],
    logical: list[str],
    where: str,
    profile: bool,
    rows: int | None,
) -> FrameRead:
    partitions = partition_format(name, settings)
    added = {*(partitions.columns if partitions else []), settings.path_column} - {None}
    # Only text types need the exact text ('007'); pyarrow's own parse is faster for the rest.
    text_columns = (
        frozenset(column for column, kind in settings.column_types.items() if kind in TEXT_TYPES)
        - added
    )
    parts: list[pa.Table | pd.DataFrame] = []
    path_values: list[dict[str, Any]] = []
    names: list[list[Any]] = []
    counts: list[int] = []
    assembly = None
    if rows is not None and not profile and settings.window is None:
        assembly = FrameAssembly(rows, file_format=settings.file_format)
    for info, path in zip(files, logical, strict=True):
        count, columns = 0, []
        try:
            with store.open_read(info.path) as stream:
                pieces = assembly is not None
                for part in _parts(stream, path, settings, text_columns, pieces=pieces):
                    if not count:
                        columns = _column_names(part)
                    count += len(part)
                    read = [part]
                    del part
                    if assembly is not None:
                        try:
                            assembly.take(read)
                        except AssemblyAbandoned:
                            if assembly.filled or not read:
                                raise  # rows already taken: read every file again
                            assembly = None
                    parts.extend(read)
            path_values.append(_path_values(columns, path, partitions, settings.path_column))
        except MalformedFileError as error:
            raise MalformedFileError(f"dataset '{name}', {where}: {error}") from None
        names.append(columns)
        counts.append(count)
    _check_same_columns(name, logical, names)
    arrow_text: dict[str, pa.ChunkedArray] = {}

    def keep_text(joined: pa.Table) -> None:
        """Keep text columns whose values pandas will hold unchanged, for the profile."""
        nonlocal arrow_text
        if profile and settings.window is None:  # a window drops rows after this
            typed = settings.typed_columns()
            converted = {column for column, kind in typed.items() if kind not in TEXT_TYPES}
            found = arrow_text_columns(joined)
            arrow_text = {column: found[column] for column in found if column not in converted}

    frame = None
    if assembly is not None:
        frame = assembly.frame()
    elif all(not isinstance(part, pd.DataFrame) for part in parts):
        frame = joined_frame(parts, file_format=settings.file_format, inspect=keep_text)
    if frame is None:
        frames = [
            part
            if isinstance(part, pd.DataFrame)
            else arrow_frame(part, file_format=settings.file_format)
            for part in parts
        ]
        parts.clear()
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame = _add_path_columns(frame, path_values, counts)
    try:
        frame = _typed(name, frame, settings, list(zip(logical, counts, strict=True)))
    except MalformedFileError as error:
        raise MalformedFileError(f"dataset '{name}', {where}: {error}") from None
    for column, declared in settings.column_types.items():
        if declared == "category" and not isinstance(frame[column].dtype, pd.CategoricalDtype):
            # Files with different categories concatenate to object: categorize the whole.
            frame[column] = frame[column].astype("category")
    if settings.timestamp_column:
        if settings.window is not None:
            frame = rows_in_window(frame, settings.timestamp_column, settings.window)
            if frame.empty:
                raise DatasetError(
                    f"dataset '{name}': none of its {len(files)} file(s) in {where} has a row "
                    f"whose '{settings.timestamp_column}' is in window {settings.window.key}. "
                    "Nothing was registered for it; wait for "
                    "its data to arrive, or leave the window out of the run."
                )
        frame = frame.sort_values(settings.timestamp_column, kind="stable", ignore_index=True)
    return FrameRead(frame, arrow_text)


def _parts(
    stream: IO[bytes],
    path: str,
    settings: ReadSettings,
    text_columns: frozenset[str],
    *,
    pieces: bool,
) -> Iterable[pa.Table | pd.DataFrame]:
    """A file's rows as Arrow tables, or as a frame where pandas reads it.

    With ``pieces``, in pieces to be converted one at a time (:func:`iter_arrow_tables`).
    """
    if settings.file_format == "jsonl" and not settings.arrow_json:
        return [read_json_with_pandas(stream, path=path, encoding=settings.encoding)]
    options: dict[str, Any] = {
        "file_format": settings.file_format,
        "path": path,
        "separator": settings.separator,
        "encoding": settings.encoding,
        "header": settings.header,
        "text_columns": text_columns,
    }
    if pieces:
        return iter_arrow_tables(stream, **options)
    return [read_arrow_table(stream, **options)]


def _column_names(part: pa.Table | pd.DataFrame) -> list[Any]:
    return list(part.columns) if isinstance(part, pd.DataFrame) else part.column_names


def _typed(
    name: str,
    frame: pd.DataFrame,
    settings: ReadSettings,
    files: list[tuple[str, int]],
    first_row: int = 1,
) -> pd.DataFrame:
    """Apply declared column types and parse the timestamp column, naming file and row.

    ``files`` are the (path, rows) the frame's rows come from, in order; ``first_row`` is the
    first file's row number of the frame's first row (a batch starts further in).
    """
    column = settings.timestamp_column
    if column and column not in frame.columns:
        raise DatasetError(
            f"dataset '{name}': timestamp_column '{column}' is not a column of '{files[0][0]}' "
            f"(columns: {', '.join(map(str, frame.columns))}). Fix 'timestamp_column'."
        )
    return apply_column_types(frame, settings.typed_columns(), files=files, first_row=first_row)


def _path_values(
    columns: list[Any], path: str, partitions: PartitionFormat | None, path_column: str | None
) -> dict[str, Any]:
    """The columns a file's path encodes: partition values, and the path itself."""
    values: dict[str, Any] = {}
    if partitions is not None:
        try:
            found = partitions.values(path)
        except PartitionFormatError as error:
            raise MalformedFileError(str(error)) from None
        if found is None:
            raise MalformedFileError(
                f"'{path}' does not match partition_format '{partitions.text}'"
            )
        values.update(found)
    if path_column:
        values[path_column] = path
    clash = [column for column in values if column in columns]
    if clash:
        raise MalformedFileError(
            f"'{path}' already has a column {clash[0]!r}, which partition_format or path_column "
            "would add. Rename the placeholder or path_column."
        )
    return values


def _add_path_columns(
    frame: pd.DataFrame, values: list[dict[str, Any]], counts: list[int]
) -> pd.DataFrame:
    """Each file's path values repeated over its rows: text as objects, dates as datetimes."""
    if not values or not values[0]:
        return frame
    for column in values[0]:
        per_file = [file_values[column] for file_values in values]
        text = all(isinstance(value, str) for value in per_file)
        array = np.array(per_file, dtype=object if text else "datetime64[ns]")
        frame[column] = pd.Series(np.repeat(array, counts), index=frame.index)
    return frame


def _with_path_columns(
    frame: pd.DataFrame,
    path: str,
    partitions: PartitionFormat | None,
    path_column: str | None,
) -> pd.DataFrame:
    """Add the columns a file's path encodes to a frame of that file's rows."""
    values = _path_values(list(frame.columns), path, partitions, path_column)
    return _add_path_columns(frame, [values], [len(frame)])


def _check_same_columns(name: str, paths: list[str], columns: list[list[Any]]) -> None:
    """A schema change between files is reported, not silently turned into NaN columns."""
    expected = columns[0]
    for path, found in zip(paths[1:], columns[1:], strict=True):
        if found != expected:
            raise DatasetError(_columns_differ(name, path, paths[0], found, expected))


def _columns_differ(name: str, path: str, first: str, found: list[Any], expected: list[Any]) -> str:
    missing = sorted(set(expected) - set(found))
    added = sorted(set(found) - set(expected))
    return (
        f"dataset '{name}': '{path}' has different columns than '{first}' "
        f"(missing: {missing or 'none'}, extra: {added or 'none'}). Fix the file or "
        "split the dataset; nothing was registered."
    )


StoreOrStores = FileDatastore | Mapping[str, FileDatastore]


def manifest_store(record: DatasetVersionRecord, stores: StoreOrStores) -> FileDatastore:
    """The store holding a version's files: the dataset's own (reference) or a snapshot store.

    Callers with a single store pass it; callers with several pass a name -> store mapping.
    """
    name = record.manifest_store
    what = f"dataset '{record.dataset}' version {record.version}"
    if isinstance(stores, FileDatastore):
        given = stores.store_name
        if record.is_snapshot and given not in (name, type(stores).__name__):
            raise DatasetError(
                f"{what} is a snapshot kept "
                f"in datastore '{name}', but datastore '{given}' was given. Pass "
                f"datastore '{name}' (the registry's), or a mapping of datastore names."
            )
        return stores
    try:
        store = stores[name]
    except KeyError:
        raise DatasetError(
            f"{what} keeps its files in "
            f"datastore '{name}', which is not available here (have: {', '.join(stores)})."
        ) from None
    if not isinstance(store, FileDatastore):
        raise DatasetError(
            f"{what} keeps its files in datastore '{name}', which is not a file datastore."
        )
    return store


def stores_from_resources(resources: Any, names: Iterable[str]) -> dict[str, FileDatastore]:
    """The named file datastores among Dagster resources, for :func:`load_version`."""
    found = {name: getattr(resources, name) for name in dict.fromkeys(names)}
    return {name: store for name, store in found.items() if isinstance(store, FileDatastore)}


def version_files(record: DatasetVersionRecord) -> list[FileInfo]:
    """The files a version pins (in ``manifest_store(record, ...)``), to download or open."""
    return record.files()


def logical_paths(record: DatasetVersionRecord) -> list[str]:
    """Each pinned file's path as the dataset sees it: a snapshot copy's original path."""
    prefix = record.snapshot_prefix
    paths = list(record.manifest.columns.paths)
    if not prefix:
        return paths
    return [path.removeprefix(f"{prefix}/") for path in paths]


def changed_files(record: DatasetVersionRecord, store: FileDatastore) -> list[str]:
    """Pinned files whose ETag or size differ now, as 'path (modified)' or 'path (deleted)'."""
    pinned = version_files(record)
    prefix = record.snapshot_prefix
    if prefix:
        # One listing of the snapshot folder instead of a stat per file.
        now = {info.path: info for info in store.list_files(f"{prefix}/**")}
    else:
        now = {}
        for info in pinned:
            try:
                now[info.path] = store.stat(info.path)
            except FileNotFoundError:
                continue
    changed = []
    for info in pinned:
        current = now.get(info.path)
        if current is None:
            changed.append(f"{info.path} (deleted)")
        elif (current.etag, current.size) != (info.etag, info.size):
            changed.append(f"{info.path} (modified)")
    return changed


def verify_version(record: DatasetVersionRecord, stores: StoreOrStores) -> None:
    """Refuse a version whose pinned files (or snapshot copies) changed since registration."""
    store = manifest_store(record, stores)
    changed = changed_files(record, store)
    if not changed:
        return
    name, version = record.dataset, record.version
    if record.window is not None:
        version = f"{version} of window {record.window}"
    if record.is_snapshot:
        raise SnapshotChangedError(
            f"dataset '{name}' version {version} is a snapshot, but its copies in datastore "
            f"'{record.manifest_store}' were changed since it was registered: "
            f"{', '.join(changed)}. Snapshot copies must never be edited: restore them, or "
            "materialize the dataset to register a fresh snapshot of the current data."
        )
    raise DatasetVersionChangedError(
        f"dataset '{name}' version {version} pins files that changed since it was "
        f"registered: {', '.join(changed)}. Load a newer version, or register the current "
        "files as a new version by materializing the dataset."
    )


def record_settings(record: DatasetVersionRecord, spec: DatasetSpec | None = None) -> ReadSettings:
    """How to read a version: as recorded; records older than ``load_options`` use the spec."""
    options = record.read_options or ReadOptions()
    loading = record.load_options
    if loading is None and spec is not None:
        loading = LoadOptions(**ReadSettings.from_spec(spec).load_options())
    loading = loading or LoadOptions()
    return ReadSettings(
        file_format=record.format or (spec.file_format if spec else "csv"),
        separator=options.separator,
        encoding=options.encoding,
        header=loading.header,
        column_types=dict(loading.column_types),
        partition_format=loading.partition_format,
        path_column=loading.path_column,
        timestamp_column=loading.timestamp_column,
        window=loading.window,
        json_reader=loading.json_reader or "pandas",
    )


def _require_table(record: DatasetVersionRecord) -> None:
    if record.kind == "file":
        raise DatasetError(
            f"dataset '{record.dataset}' is a file dataset (kind: file): it has no table to "
            "load. List its files with version_files() and open them from manifest_store(), "
            "or declare 'kind: tabular' with a 'format:' to load it as a table."
        )


def _where(store: FileDatastore, datastore: str, snapshot_in: str | None = None) -> str:
    """Where files are read from, for errors: a datastore, or a snapshot kept in another."""
    if snapshot_in is not None:
        return (
            f"snapshot in datastore '{snapshot_in}' ({store.describe()}) of datastore '{datastore}'"
        )
    return f"datastore '{datastore}' ({store.describe()})"


def _record_where(record: DatasetVersionRecord, store: FileDatastore) -> str:
    return _where(store, record.datastore, record.manifest_store if record.is_snapshot else None)


def load_version(
    record: DatasetVersionRecord, stores: StoreOrStores, spec: DatasetSpec | None = None
) -> pd.DataFrame:
    """Read exactly the files a version pins, refusing if any of them changed since.

    ``stores`` is one FileDatastore or a name -> store mapping that includes the version's
    ``manifest_store`` (the registry's store, for snapshots).
    """
    _require_table(record)
    store = manifest_store(record, stores)
    verify_version(record, store)
    return _read_frame(
        record.dataset,
        record_settings(record, spec),
        store,
        version_files(record),
        logical_paths(record),
        _record_where(record, store),
        record.row_count,
    )


def load_columns(
    record: DatasetVersionRecord,
    stores: StoreOrStores,
    spec: DatasetSpec | None,
    columns: Iterable[str],
) -> pd.DataFrame:
    """The version's rows, but only those of ``columns`` it has, streamed batch by batch.

    What judging a version too big for memory needs: the checked columns, not all of them.
    """
    import pyarrow as pa

    wanted = set(columns)
    tables = [
        pa.Table.from_batches([batch]).select(
            [column for column in batch.schema.names if column in wanted]
        )
        for batch in iter_version_batches(record, stores, spec)
    ]
    if not tables:
        names = [column.name for column in record.table_schema or [] if column.name in wanted]
        return pd.DataFrame({name: pd.Series(dtype=object) for name in names})
    return pa.concat_tables(tables).to_pandas()


def iter_version_batches(
    record: DatasetVersionRecord,
    stores: StoreOrStores,
    spec: DatasetSpec | None = None,
    batch_size: int = 65_536,
) -> Iterator[pa.RecordBatch]:
    """Stream a version as Arrow record batches, file by file, never holding the whole dataset.

    Columns are typed, partitioned and path-tagged as by :func:`load_version`, and every batch
    has the same schema; rows come in file order (``timestamp_column`` is parsed, not sorted).
    Pinned files are verified before the first batch.
    """
    name = record.dataset
    if batch_size < 1:
        raise DatasetError(f"dataset '{name}': batch_size must be at least 1, not {batch_size}.")
    _require_table(record)
    store = manifest_store(record, stores)
    verify_version(record, store)
    settings = record_settings(record, spec)
    partitions = partition_format(name, settings)
    added = {*(partitions.columns if partitions else []), settings.path_column} - {None}
    csv_types = _csv_types(record, settings, added)
    if settings.arrow_json:
        import pyarrow as pa

        # JSON values are typed by the file (a number is never text), and nested values are
        # objects too: fix only the plain types, and convert the declared ones after reading.
        typed = settings.typed_columns()
        csv_types = {
            column: kind
            for column, kind in csv_types.items()
            if column not in typed and not pa.types.is_string(kind)
        }
    where = _record_where(record, store)
    schema: pa.Schema | None = None
    first = ""
    for info, path in zip(version_files(record), logical_paths(record), strict=True):
        row = 1
        with store.open_read(info.path) as stream:
            batches = iter_table_batches(
                stream,
                file_format=settings.file_format,
                path=path,
                batch_size=batch_size,
                separator=settings.separator,
                encoding=settings.encoding,
                header=settings.header,
                csv_types=csv_types,
                json_reader=settings.json_reader,
                column_order=[column.name for column in record.table_schema or []],
            )
            while True:
                try:
                    frame = next(batches, None)
                    if frame is None:
                        break
                    frame = _with_path_columns(frame, path, partitions, settings.path_column)
                    frame = _typed(name, frame, settings, [(path, len(frame))], first_row=row)
                except MalformedFileError as error:
                    raise MalformedFileError(f"dataset '{name}', {where}: {error}") from None
                row += len(frame)
                if settings.window is not None and settings.timestamp_column:
                    frame = rows_in_window(frame, settings.timestamp_column, settings.window)
                if schema is None:
                    schema, first = _stream_schema(frame), path
                yield _record_batch(name, frame, schema, path, first)


def _csv_types(
    record: DatasetVersionRecord, settings: ReadSettings, added: set[Any]
) -> dict[str, pa.DataType]:
    """CSV column types that make every block agree with the whole-file read of registration.

    Typed columns (declared, and the timestamp) are read as text and converted as load_version
    converts them; the others are fixed to the type the version recorded.
    """
    import pyarrow as pa

    fixed = {
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "object": pa.string(),
        "datetime64[ns]": pa.timestamp("ns"),
    }
    csv_types: dict[str, pa.DataType] = {}
    for column in record.table_schema or []:
        if column.name not in added and column.type in fixed:
            csv_types[column.name] = fixed[column.type]
    for name in settings.typed_columns():
        if name not in added:
            csv_types[name] = pa.string()
    return csv_types


def _stream_schema(frame: pd.DataFrame) -> pa.Schema:
    """The schema every batch is cast to: the first batch's, with no null or narrow types."""
    import pyarrow as pa

    schema = pa.Schema.from_pandas(frame, preserve_index=False).remove_metadata()
    for index, field in enumerate(schema):
        if pa.types.is_null(field.type):
            schema = schema.set(index, field.with_type(pa.string()))
        elif pa.types.is_dictionary(field.type):
            widened = pa.dictionary(pa.int32(), field.type.value_type)
            schema = schema.set(index, field.with_type(widened))
    return schema


def _record_batch(
    name: str, frame: pd.DataFrame, schema: pa.Schema, path: str, first: str
) -> pa.RecordBatch:
    import pyarrow as pa

    if list(frame.columns) != schema.names:
        raise DatasetError(_columns_differ(name, path, first, list(frame.columns), schema.names))
    try:
        batch = pa.RecordBatch.from_pandas(frame, schema=schema, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise DatasetError(
            f"dataset '{name}': rows of '{path}' do not fit the column types of the rows "
            f"before them ({str(error).splitlines()[0]}). Declare the column in "
            "'column_types' and register a new version."
        ) from None
    # pandas metadata differs per batch; the schema must not.
    return batch.replace_schema_metadata(None)


def version_summary(record: DatasetVersionRecord) -> dict[str, Any]:
    """The few facts a person wants in a versions table."""
    return {
        "version": record.version,
        "quality": quality_word(record),
        "registered_at": record.registered_at.isoformat() if record.registered_at else "",
        "mode": record.mode,
        "files": len(record.manifest),
        "rows": record.row_count,
        "fingerprint": record.fingerprint[:12],
        "run_id": (record.lineage.run_id or "")[:8],
    }
