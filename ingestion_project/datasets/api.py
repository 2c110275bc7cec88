"""The Python API for datasets outside Dagster: get a registered version by name and read it.

Like Azure ML's ``Dataset.get_by_name(ws, name, version).to_pandas_dataframe()``, but a version
always reads exactly the data it was registered with, or says why it cannot. The default version
is the latest that passed its checks; a failed one is read only when asked for by number.
"""

from __future__ import annotations

import io
import os
import posixpath
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ingestion_project.catalog.project import ProjectCatalog
from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets.versions import (
    DatasetError,
    DatasetRegistry,
    DatasetVersionChangedError,
    NoPassingVersionError,
    SnapshotChangedError,
    dataset_registry,
    iter_version_batches,
    load_version,
    logical_paths,
    manifest_store,
    verify_version,
    version_files,
)
from ingestion_project.datasets.windows import version_series
from ingestion_project.datastores.base import (
    DatastoreError,
    FileDatastore,
    FileInfo,
    UnsafePathError,
    normalize_relative_path,
)
from ingestion_project.quality.gate import quality_word
from ingestion_project.records import DatasetVersionRecord, QualityReport

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from ingestion_project.datastores.sql import SqlDatastore
    from ingestion_project.training.registry import ModelRegistry

CHUNK_BYTES = 1 << 20
DEFAULT_BATCH_SIZE = 65_536


class UnknownDatasetError(DatasetError, LookupError):
    """A dataset name or version that neither the catalog nor the registry knows."""


class UnknownDatastoreError(DatastoreError, LookupError):
    """A datastore name the catalog does not declare."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="not found")


class DownloadConflictError(DatasetError, FileExistsError):
    """A download would overwrite a local file whose content differs from the version's."""


def materialize_hint(name: str, window: str | None = None) -> str:
    """How a person makes the first (or next) version of a dataset, from the project's folder."""
    if window is not None:
        return f"dg launch --assets {name} --partition {window}"
    return f"dg launch --assets {name}"


@dataclass(frozen=True)
class DatasetVersionInfo:
    """The facts about one version that a versions table shows."""

    dataset: str
    version: int
    kind: str
    registered_at: datetime | None
    fingerprint: str
    rows: int | None
    files: int
    bytes: int
    mode: str
    tags: dict[str, str]
    run_id: str | None
    used_by: list[dict[str, Any]] = field(default_factory=list)
    quality: str = "unchecked"
    """'passed', 'failed', or 'unchecked' (no checks, or registered before versions were judged)."""
    failed_checks: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether the version may be the latest: it did not fail its checks."""
        return self.quality != "failed"

    @property
    def quality_text(self) -> str:
        """'passed', 'FAILED checks: not_null, between' or 'unchecked', for tables."""
        if self.quality == "failed":
            return f"FAILED checks: {', '.join(self.failed_checks)}"
        return self.quality

    @classmethod
    def from_record(
        cls, record: DatasetVersionRecord, used_by: list[dict[str, Any]]
    ) -> DatasetVersionInfo:
        return cls(
            dataset=record.dataset,
            version=record.version,
            kind=record.kind,
            registered_at=record.registered_at,
            fingerprint=record.fingerprint,
            rows=record.row_count,
            files=len(record.manifest),
            bytes=record.bytes,
            mode=record.mode,
            tags=dict(record.tags),
            run_id=record.lineage.run_id,
            used_by=used_by,
            quality="unchecked" if record.quality is None else record.quality.status,
            failed_checks=[] if record.quality is None else record.quality.failed_checks,
        )


@dataclass(frozen=True)
class DatasetSummary:
    """A declared dataset, where it points, and its versions.

    ``latest`` is the latest version that passed its checks (None before the first, or when
    every version failed); ``newest`` the last one registered, which may have failed.
    """

    name: str
    kind: str
    datastore: str
    path: str | None
    query: str | None
    mode: str
    description: str
    latest: DatasetVersionInfo | None
    newest: DatasetVersionInfo | None = None


class Workspace:
    """A project's catalogs, their datastores and the registry, for scripts and notebooks.

    Datastores are built only when first used, so secrets of unused ones need not be set.
    """

    def __init__(
        self, catalog: ProjectCatalog, home: Path, project_root: Path | None = None
    ) -> None:
        self.catalog = catalog
        self.home = home
        self.project_root = project_root
        self._stores: dict[str, Any] = {}

    @classmethod
    def load(cls, project: Path | str | None = None, home: Path | None = None) -> Workspace:
        """The catalogs of the project at or above ``project`` (default: the working folder).

        They load as `dg dev` loads them; INGESTION_HOME is the default home.

        Secrets are read when a datastore is used, not here, so one missing secret does not
        block reading datasets that live elsewhere.
        """
        from ingestion_project.catalog.loading import load_project
        from ingestion_project.settings import ingestion_home

        loaded = load_project(Path(project) if project is not None else None)
        home = Path(home).resolve() if home else ingestion_home(loaded.root)
        return cls(loaded.catalog, home, loaded.root)

    def datastore(self, name: str) -> FileDatastore | SqlDatastore:
        """The resource for a declared datastore, built once."""
        if name not in self.catalog.datastores:
            declared = ", ".join(sorted(self.catalog.datastores)) or "none"
            raise UnknownDatastoreError(
                f"'{name}' is not a datastore of {self._source()} (declared: {declared}). "
                "Use one of those, or declare it under 'datastores:'."
            )
        if name not in self._stores:
            from ingestion_project.catalog.datastore_entries import build_datastore

            self._stores[name] = build_datastore(name, self.catalog.datastores[name], self.home)
        return self._stores[name]

    def file_datastore(self, name: str) -> FileDatastore:
        """A declared datastore that holds files; a SQL one is an error saying so."""
        store = self.datastore(name)
        if not isinstance(store, FileDatastore):
            files = sorted(
                key for key in self.catalog.datastores if self.catalog.is_file_datastore(key)
            )
            raise DatastoreError(
                f"datastore '{name}' is a SQL database ({store.describe()}), not a file store. "
                f"Use a file datastore ({', '.join(files) or 'none declared'}).",
                reason="invalid request",
            )
        return store

    @cached_property
    def registry(self) -> DatasetRegistry:
        registry = self.catalog.registry
        return dataset_registry(self.file_datastore(registry.datastore), registry.prefix)

    @cached_property
    def models(self) -> ModelRegistry:
        from ingestion_project.training.registry import ModelRegistry

        registry = self.catalog.registry
        return ModelRegistry(self.file_datastore(registry.datastore), registry.prefix)

    def datasets(self) -> list[DatasetSummary]:
        """Every declared dataset with its latest and newest versions, in catalog order.

        The labeled datasets of labeling entries come last (each version is one export).
        """
        uses = self._model_uses()

        def info(record: DatasetVersionRecord | None) -> DatasetVersionInfo | None:
            if record is None:
                return None
            used_by = uses.get((record.dataset, record.version), [])
            return DatasetVersionInfo.from_record(record, used_by)

        summaries = []
        for name, spec in self.catalog.datasets.items():
            newest = self.registry.latest(name, include_failed=True)
            latest = newest if newest is None or newest.passed else self.registry.latest(name)
            summaries.append(
                DatasetSummary(
                    name=name,
                    kind=spec.kind,
                    datastore=spec.datastore,
                    path=spec.path,
                    query=spec.query,
                    mode=spec.effective_mode,
                    description=spec.description,
                    latest=info(latest),
                    newest=info(newest),
                )
            )
        for name, labeling in self.catalog.labeling.items():
            latest = self.registry.latest(name)
            summaries.append(
                DatasetSummary(
                    name=name,
                    kind="labels",
                    datastore=self.catalog.registry.datastore,
                    path=f"Label Studio exports of '{labeling.images}'",
                    query=None,
                    mode="snapshot",
                    description=labeling.description,
                    latest=info(latest),
                    newest=info(latest),
                )
            )
        return summaries

    def versions(self, name: str, window: str | None = None) -> list[DatasetVersionInfo]:
        """Every registered version of a dataset (or of one window), oldest first."""
        series = self._series(name, window)
        uses = self._model_uses()
        return [
            DatasetVersionInfo.from_record(record, uses.get((name, record.version), []))
            for record in self.registry.all(series)
        ]

    def windows(self, name: str) -> list[str]:
        """The time windows of a windowed dataset that have versions, oldest first."""
        self._require_known(name)
        return self.registry.windows(name)

    def get(
        self, name: str, version: int | None = None, *, window: str | None = None
    ) -> DatasetVersion:
        """A registered version that reads exactly its pinned data.

        By default the latest version that passed its checks; a failed version only by its
        number (its ``quality`` says what failed). A windowed dataset numbers the versions of
        each ``window`` (its partition key, e.g. '2026-01-31') on their own.
        """
        series = self._series(name, window)
        numbers = self.registry.version_numbers(series)
        hint = materialize_hint(name, window)
        what = f"dataset '{name}'" + (f" window {window}" if window else "")
        if not numbers:
            raise UnknownDatasetError(
                f"{what} has no version yet. Register one by materializing it: {hint}"
            )
        if version is None:
            try:
                return DatasetVersion(self, name, self.registry.require_latest(series))
            except NoPassingVersionError as error:
                raise NoPassingVersionError(f"{error} To materialize it: {hint}") from None
        number = version
        if number not in numbers:
            raise UnknownDatasetError(
                f"{what} has no version {version} (registered: "
                f"{_numbers(numbers)}). Ask for one of those, or leave the version out for the "
                "latest."
            )
        return DatasetVersion(self, name, self.registry.get(series, number))

    def _series(self, name: str, window: str | None) -> str:
        """Where the versions asked for are numbered; a windowed dataset needs its window."""
        self._require_known(name)
        spec = self.catalog.datasets.get(name)
        windowed = spec is not None and spec.windows is not None
        if windowed and window is None:
            assert spec is not None and spec.windows is not None
            registered = self.registry.windows(name)
            example = registered[-1] if registered else spec.windows.start.isoformat()
            shown = ", ".join(registered[-5:]) if registered else "none yet"
            raise UnknownDatasetError(
                f"dataset '{name}' is split into {spec.windows.frequency} windows, each with its "
                f"own versions: name one, e.g. window='{example}' (latest registered: {shown})."
            )
        if window is not None and not windowed:
            raise UnknownDatasetError(
                f"dataset '{name}' has no time windows: leave 'window' out, or declare "
                f"datasets.{name}.windows."
            )
        return version_series(name, window)

    def known_datasets(self) -> list[str]:
        """Declared datasets, then any that only the registry still remembers."""
        declared = [*self.catalog.datasets, *self.catalog.labeling]
        return declared + [name for name in self.registry.names() if name not in declared]

    def _require_known(self, name: str) -> None:
        if name in self.catalog.datasets or name in self.catalog.labeling:
            return
        known = self.known_datasets()
        if name in known:
            return
        raise UnknownDatasetError(
            f"'{name}' is not a dataset of {self._source()} (known: "
            f"{', '.join(known) or 'none'}). Use one of those, or declare it under 'datasets:'."
        )

    def _model_uses(self) -> dict[tuple[str, int], list[dict[str, Any]]]:
        """(dataset, version) -> the model versions trained on it, read once per call."""
        uses: dict[tuple[str, int], list[dict[str, Any]]] = {}
        versions = self.models.versions
        for model in versions.names():
            champion = self.models.champion(model)
            for record in versions.all(model):
                trained = record.lineage.trained_on
                uses.setdefault((trained.dataset, trained.version), []).append(
                    {
                        "model": model,
                        "version": record.version,
                        "champion": champion is not None and champion.version == record.version,
                        "promoted": record.promoted,
                        "metrics": dict(record.metrics),
                        "registered_at": record.registered_at.isoformat()
                        if record.registered_at
                        else None,
                    }
                )
        return uses

    def _source(self) -> str:
        return f"the project at {self.project_root}" if self.project_root else "the catalog"


class _FileStores(Mapping[str, FileDatastore]):
    """The workspace's file datastores by name, each built only if a version needs it."""

    def __init__(self, workspace: Workspace) -> None:
        self._workspace = workspace
        self._names = [
            name
            for name in workspace.catalog.datastores
            if workspace.catalog.is_file_datastore(name)
        ]

    def __getitem__(self, name: str) -> FileDatastore:
        if name not in self._names:
            raise KeyError(name)
        return self._workspace.file_datastore(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class DatasetVersion:
    """One registered version of a dataset: read it, list, download or open its files."""

    def __init__(self, workspace: Workspace, name: str, record: DatasetVersionRecord) -> None:
        self.workspace = workspace
        self.name = name
        self.version: int = record.version
        self.record = record

    def __repr__(self) -> str:
        flag = "" if self.passed else f", quality={quality_word(self.record)!r}"
        return f"DatasetVersion({self.name!r}, version={self.version}{flag})"

    @property
    def quality(self) -> QualityReport | None:
        """What the declared checks said of this version; None if none were declared."""
        return self.record.quality

    @property
    def passed(self) -> bool:
        """False for a version that failed its checks: it is never the latest."""
        return self.record.passed

    @property
    def spec(self) -> DatasetSpec | None:
        """The current declaration, or None if the dataset has left the catalog."""
        return self.workspace.catalog.datasets.get(self.name)

    @property
    def mode(self) -> str:
        return self.record.mode

    def _stores(self) -> _FileStores:
        return _FileStores(self.workspace)

    def _store(self) -> FileDatastore:
        return manifest_store(self.record, self._stores())

    def to_pandas(self) -> pd.DataFrame:
        """All rows of the version in memory; refuses if a pinned file changed since."""
        return load_version(self.record, self._stores(), self.spec)

    def iter_batches(self, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[pa.RecordBatch]:
        """The rows in Arrow batches of at most ``batch_size`` rows, for data too big for memory."""
        if batch_size <= 0:
            raise DatasetError(
                f"dataset '{self.name}': batch_size must be positive, got {batch_size}."
            )
        return iter_version_batches(self.record, self._stores(), self.spec, batch_size)

    def files(self) -> list[FileInfo]:
        """The files this version pins, as they were when it was registered."""
        return version_files(self.record)

    def attachments(self) -> list[str]:
        """The roles of the version's other files, e.g. ['coco'] for a labeled dataset."""
        return sorted(self.record.attachments or {})

    def read_attachment(self, role: str) -> bytes:
        """The bytes of one of the version's other files (a labeled dataset's 'coco' JSON)."""
        attached = self.record.attachments or {}
        if role not in attached:
            raise UnknownDatasetError(
                f"dataset '{self.name}' version {self.version} has no '{role}' file (it has: "
                f"{', '.join(sorted(attached)) or 'none'})."
            )
        pinned = attached[role].file_info()
        store = self._store()
        self._verify(store, pinned)
        return store.read_bytes(pinned.path)

    def used_by(self) -> list[dict[str, Any]]:
        """The model versions trained on this version (model, version, champion, metrics)."""
        return self.workspace._model_uses().get((self.name, self.version), [])

    def _relative_paths(self) -> list[str]:
        """Where a download puts each pinned file: its original path below the common folder.

        Snapshot copies are placed by the path they had in the dataset's own datastore.
        """
        paths = [self._safe_pinned_path(path) for path in logical_paths(self.record)]
        if not paths:
            return []
        common = posixpath.dirname(paths[0]) if len(paths) == 1 else posixpath.commonpath(paths)
        if len(paths) > 1 and common in paths:
            common = posixpath.dirname(common)
        return [path[len(common) :].lstrip("/") if common else path for path in paths]

    def open(self, path: str) -> AbstractContextManager[IO[bytes]]:
        """Stream one pinned file without downloading it (our answer to Azure ML's mount).

        Only files the version pins may be opened; a reference-mode file must still be the one
        that was registered. Nothing is contacted until the context is entered.
        """
        return self._open(path)

    @contextmanager
    def _open(self, path: str) -> Iterator[IO[bytes]]:
        pinned = self._pinned(path)
        store = self._store()
        self._verify(store, pinned)
        with store.open_read(pinned.path) as stream:
            yield stream

    def download(
        self, target: Path, *, progress: Callable[[int, int], None] | None = None
    ) -> list[Path]:
        """Copy every pinned file under ``target``, keeping folders below their common folder.

        The version is verified first (no pinned file changed), then each file is streamed
        through a temporary file and checked against the recorded size, so a failure never
        leaves a partial file. ``progress(bytes_done, bytes_total)`` is called as bytes arrive.
        A local file that is already identical is kept; a different one is refused.
        """
        files = self.files()
        root = Path(target).resolve()
        plan = [
            (info, self._local_target(root, relative, info))
            for info, relative in zip(files, self._relative_paths(), strict=True)
        ]
        for info, local in plan:
            if local.exists() and (not local.is_file() or local.stat().st_size != info.size):
                raise self._conflict(info, local)
        store = self._store()
        verify_version(self.record, store)
        total = sum(info.size for info in files)
        done = 0
        if progress:
            progress(0, total)
        written = []
        for info, local in plan:

            def advance(count: int) -> None:
                nonlocal done
                done += count
                if progress:
                    progress(done, total)

            self._download_one(store, info, local, advance)
            written.append(local)
        return written

    def _download_one(
        self,
        store: FileDatastore,
        info: FileInfo,
        local: Path,
        advance: Callable[[int], None],
    ) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=local.parent, prefix=".download-")
        try:
            size = 0
            with os.fdopen(handle, "wb") as temp, store.open_read(info.path) as stream:
                while chunk := stream.read(CHUNK_BYTES):
                    temp.write(chunk)
                    size += len(chunk)
                    advance(len(chunk))
            if size != info.size:
                raise DatasetVersionChangedError(
                    f"dataset '{self.name}' version {self.version}: '{info.path}' in datastore "
                    f"'{store.store_name}' has {size} bytes, but {info.size} were registered; "
                    "it changed while it was downloaded. Download a newer version, or register "
                    "the current files as a new version by materializing the dataset."
                )
            if local.exists():
                if not _same_content(Path(temp_name), local):
                    raise self._conflict(info, local)
                return
            os.replace(temp_name, local)
        finally:
            if os.path.exists(temp_name):
                os.unlink(temp_name)

    def _safe_pinned_path(self, path: str) -> str:
        """A pinned path as a clean relative path; a record altered to escape is refused."""
        try:
            return normalize_relative_path(path, store=self.record.datastore)
        except UnsafePathError:
            raise UnsafePathError(
                f"dataset '{self.name}' version {self.version}: pinned path '{path}' is not a "
                "safe relative path, so nothing was downloaded. The version record was altered; "
                "use another version."
            ) from None

    def _local_target(self, root: Path, relative: str, info: FileInfo) -> Path:
        """``root/relative``, refusing a path that a symlink in the target would lead outside."""
        local = (root / relative).resolve()
        if root not in local.parents:
            raise UnsafePathError(
                f"dataset '{self.name}' version {self.version}: '{info.path}' would be written "
                f"to {local}, outside {root} (a symlink in the target folder?). Download into "
                "an empty folder."
            )
        return local

    def _conflict(self, info: FileInfo, local: Path) -> DownloadConflictError:
        return DownloadConflictError(
            f"dataset '{self.name}' version {self.version}: {local} already exists and differs "
            f"from '{info.path}'; it was not overwritten. Download into an empty folder, or "
            "delete that file first."
        )

    def _pinned(self, path: str) -> FileInfo:
        files = self.files()
        try:
            wanted = normalize_relative_path(path, store=self.record.datastore)
        except UnsafePathError:
            wanted = path
        for info in files:
            if info.path == wanted:
                return info
        shown = ", ".join(info.path for info in files[:5])
        more = f" and {len(files) - 5} more" if len(files) > 5 else ""
        raise UnknownDatasetError(
            f"dataset '{self.name}' version {self.version} does not pin '{path}', so it cannot "
            f"be opened. Open one of its files ({shown}{more}); see .files()."
        )

    def _verify(self, store: FileDatastore, pinned: FileInfo) -> None:
        """A pinned file must be unchanged: same size and ETag as when registered."""
        try:
            current = store.stat(pinned.path)
        except FileNotFoundError:
            state = "was deleted"
        else:
            if (current.etag, current.size) == (pinned.etag, pinned.size):
                return
            state = "was modified"
        what = f"dataset '{self.name}' version {self.version}"
        where = f"'{pinned.path}' in datastore '{store.store_name}'"
        if self.mode == "snapshot":
            raise SnapshotChangedError(
                f"{what} is a snapshot, but its copy {where} {state} since it was registered. "
                "Snapshot copies must never be edited: restore it, or materialize the dataset "
                "to register a fresh snapshot of the current data."
            )
        raise DatasetVersionChangedError(
            f"{what}: {where} {state} since the version was registered. Use a newer version, or "
            "register the current files as a new version by materializing the dataset."
        )


def upload_files(
    workspace: Workspace,
    local_paths: Sequence[Path],
    datastore: str,
    folder: str,
    *,
    overwrite: bool = False,
) -> list[str]:
    """Put local files (or folders, recursively) into a datastore under ``folder``.

    Existing files are kept unless ``overwrite``: replacing a file that a reference-mode version
    pins makes that version unreadable. Re-uploading an identical file is not an error.
    Returns the datastore paths, in the order given.
    """
    store = workspace.file_datastore(datastore)
    prefix = normalize_relative_path(folder, store=datastore) if folder.strip("/.") else ""
    pairs: list[tuple[Path, str]] = []
    for given in local_paths:
        local = Path(given)
        if local.is_dir():
            pairs.extend(
                (item, f"{local.name}/{item.relative_to(local).as_posix()}")
                for item in sorted(local.rglob("*"))
                if item.is_file() and not any(p.startswith(".") for p in item.parts)
            )
        elif local.is_file():
            pairs.append((local, local.name))
        else:
            raise FileNotFoundError(
                f"cannot upload {local} to datastore '{datastore}': no such file or folder. "
                "Check the path."
            )
    uploaded = []
    for local, relative in pairs:
        remote = f"{prefix}/{relative}" if prefix else relative
        _upload_one(store, local, remote, overwrite=overwrite)
        uploaded.append(remote)
    return uploaded


def _upload_one(store: FileDatastore, local: Path, remote: str, *, overwrite: bool) -> None:
    write_stream = getattr(store, "write_stream", None)
    try:
        if write_stream is not None:
            with local.open("rb") as stream:
                write_stream(remote, stream, overwrite=overwrite)
        else:
            store.write_bytes(remote, local.read_bytes(), overwrite=overwrite)
    except FileExistsError:
        if _remote_equals(store, remote, local):
            return
        raise FileExistsError(
            f"datastore '{store.store_name}' already has a different '{remote}'; {local} was not "
            "uploaded. Upload into a new folder (versions may pin the old file), or pass "
            "overwrite=True."
        ) from None


def _remote_equals(store: FileDatastore, remote: str, local: Path) -> bool:
    if store.stat(remote).size != local.stat().st_size:
        return False
    with store.open_read(remote) as theirs, local.open("rb") as ours:
        return _same_stream(theirs, ours)


def write_dataframe(
    workspace: Workspace,
    frame: pd.DataFrame,
    datastore: str,
    path: str,
    format: str = "parquet",
    *,
    overwrite: bool = False,
) -> str:
    """Write an in-memory DataFrame as one file in a datastore, ready to declare as a dataset.

    The extension must agree with ``format``, because a dataset infers its format from it.
    """
    suffixes = {"parquet": (".parquet",), "csv": (".csv",), "jsonl": (".jsonl", ".json")}
    if format not in suffixes:
        raise DatasetError(
            f"cannot write '{path}' to datastore '{datastore}': format '{format}' is not one of "
            f"{', '.join(suffixes)}. Pick one of those."
        )
    if not path.lower().endswith(suffixes[format]):
        raise DatasetError(
            f"cannot write '{path}' to datastore '{datastore}' as {format}: the name should end "
            f"in {suffixes[format][0]} so a dataset over it reads it as {format}. Rename it."
        )
    store = workspace.file_datastore(datastore)
    buffer = io.BytesIO()
    if format == "parquet":
        frame.to_parquet(buffer, index=False, engine="pyarrow")
    elif format == "csv":
        frame.to_csv(buffer, index=False)
    else:
        frame.to_json(buffer, orient="records", lines=True, date_format="iso")
    clean = normalize_relative_path(path, store=datastore)
    try:
        store.write_bytes(clean, buffer.getvalue(), overwrite=overwrite)
    except FileExistsError:
        raise FileExistsError(
            f"datastore '{datastore}' already has '{clean}'; the DataFrame was not written. "
            "Write it under a new name (versions may pin the old file), or pass overwrite=True."
        ) from None
    return clean


def _same_content(left: Path, right: Path) -> bool:
    if left.stat().st_size != right.stat().st_size:
        return False
    with left.open("rb") as first, right.open("rb") as second:
        return _same_stream(first, second)


def _same_stream(first: IO[bytes], second: IO[bytes]) -> bool:
    while True:
        a, b = _read_full(first), _read_full(second)
        if a != b:
            return False
        if not a:
            return True


def _read_full(stream: IO[bytes]) -> bytes:
    """CHUNK_BYTES bytes, or fewer only at the end: network streams may return short reads."""
    parts, size = [], 0
    while size < CHUNK_BYTES:
        part = stream.read(CHUNK_BYTES - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def _numbers(numbers: list[int]) -> str:
    if len(numbers) > 10 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]}..{numbers[-1]}"
    return ", ".join(map(str, numbers))
