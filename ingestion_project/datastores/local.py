"""A datastore on the local filesystem: the embedded default, like Azure ML's workspaceblobstore."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, ClassVar, Self

from pydantic import Field

from ingestion_project.datastores.base import (
    DatastoreError,
    FileColumns,
    FileDatastore,
    FileInfo,
    UnsafePathError,
    glob_name_suffix,
    glob_prefix,
    glob_regex,
    normalize_relative_path,
    utc_from_microseconds,
    validate_glob,
)


def _etag(stat: os.stat_result) -> str:
    return _etags([stat.st_mtime_ns], [stat.st_size])[0]


def _etags(mtimes_ns: list[int], sizes: list[int]) -> list[str]:
    """Each file's ETag: its modification time (ns) and size in hex.

    Formatted by ``%`` in C, a third of the time of an f-string's ``:x`` a file.
    """
    return list(map("%x-%x".__mod__, zip(mtimes_ns, sizes, strict=True)))


class LocalDatastore(FileDatastore):
    """Files under one directory; ETags come from size and modification time, never from content."""

    name: str = Field(description="Catalog name of this datastore.")
    root: str = Field(
        description="Directory that holds the store's files. In a catalog a relative root lives "
        "under INGESTION_HOME, and no root means INGESTION_HOME/datastores/<name>."
    )

    kind: ClassVar[str] = "local"
    catalog_defaults: ClassVar[dict[str, Any]] = {"root": None}

    @classmethod
    def from_catalog(cls, name: str, values: dict[str, Any], home: Path) -> Self:
        """Relative roots live under the ingestion home; absolute ones are taken as they are."""
        root = Path(values.pop("root", None) or Path("datastores") / name)
        return cls(
            name=name, root=str(root if root.is_absolute() else (home / root).resolve()), **values
        )

    @property
    def store_name(self) -> str:
        return self.name

    def describe(self) -> str:
        return f"local directory {self.root}"

    def check(self) -> None:
        """The root may not exist yet (writes create it), but if it exists it must be a folder."""
        root = Path(self.root)
        if root.exists() and not root.is_dir():
            raise DatastoreError(
                f"datastore '{self.name}': root {root} is a file, not a folder. Fix 'root'.",
                reason="not found",
            )
        if root.is_dir() and not os.access(root, os.R_OK | os.X_OK):
            raise DatastoreError(
                f"datastore '{self.name}': no permission to read {root}. Fix its permissions.",
                reason="permission denied",
            )

    def _resolve(self, path: str) -> Path:
        relative = normalize_relative_path(path, store=self.name)
        root = Path(self.root).resolve()
        target = (root / relative).resolve()
        if target != root and root not in target.parents:
            # A symlink inside the store pointing elsewhere would otherwise leak outside the root.
            raise UnsafePathError(
                f"datastore '{self.name}': path '{path}' resolves outside the datastore root "
                f"{root}. Remove the symlink or give a path inside the store."
            )
        return target

    def _info(self, relative: str, stat: os.stat_result) -> FileInfo:
        return FileInfo(
            path=relative,
            size=stat.st_size,
            modified=utc_from_microseconds(stat.st_mtime_ns // 1000),
            etag=_etag(stat),
        )

    def list_files(self, pattern: str) -> list[FileInfo]:
        return self.list_columns(pattern).infos()

    def list_columns(self, pattern: str) -> FileColumns:
        """The matching files as columns, from one stat per file and no object per file."""
        rows = self._matches(pattern)
        rows.sort(key=itemgetter(0))
        sizes, mtimes = [row[1] for row in rows], [row[2] for row in rows]
        return FileColumns(
            [row[0] for row in rows],
            sizes,
            [mtime_ns // 1000 for mtime_ns in mtimes],
            _etags(mtimes, sizes),
        )

    def listing_fingerprint(self, pattern: str) -> tuple[str | None, int]:
        """As ``list_files`` + ``listing_digest``, without a FileInfo and datetime per file."""
        columns = self.list_columns(pattern)
        return (columns.digest() if columns else None), len(columns)

    def _matches(self, pattern: str) -> list[tuple[str, int, int]]:
        """Store-relative paths matching ``pattern``, with size and modification time in ns.

        The ETag is ``_etag`` of the same stat. Hidden names are skipped. scandir entries carry
        the file type from the directory listing, so only matched files cost a stat call;
        symlinked folders are not followed (they could lead outside the store). One loop over
        a stack of folders into one list: nested generators handed every file up through each
        folder level, a cost of the same order as its stat call.
        """
        clean = validate_glob(pattern, store=self.name)
        root = Path(self.root)
        if not root.is_dir():
            return []  # a fresh store has no root yet; writes create it
        prefix = glob_prefix(clean)
        start = self._resolve(prefix) if prefix else root.resolve()
        if not start.is_dir():
            return []
        root_resolved = root.resolve()
        matches = glob_regex(clean).fullmatch
        suffix = glob_name_suffix(clean)  # None: the regex decides
        found: list[tuple[str, int, int]] = []
        folders = [(str(start), f"{prefix}/" if prefix else "")]
        while folders:
            folder, relative = folders.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    name = entry.name
                    if name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        folders.append((entry.path, f"{relative}{name}/"))
                        continue
                    path = relative + name
                    if suffix is None:
                        if matches(path) is None:
                            continue
                    elif not name.endswith(suffix):
                        continue
                    if not entry.is_file():
                        continue
                    if (
                        entry.is_symlink()
                        and root_resolved not in Path(entry.path).resolve().parents
                    ):
                        continue  # a symlink out of the store; open_read would refuse it anyway
                    stat = entry.stat()
                    found.append((path, stat.st_size, stat.st_mtime_ns))
        return found

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        target = self._resolve(path)
        try:
            stream = target.open("rb")
        except FileNotFoundError:
            raise FileNotFoundError(
                f"datastore '{self.name}': no file at '{path}' (looked in {target})."
            ) from None
        with stream:
            yield stream

    def write_bytes(self, path: str, data: bytes, *, overwrite: bool = True) -> None:
        self.write_stream(path, io.BytesIO(data), overwrite=overwrite)

    def write_stream(self, path: str, stream: IO[bytes], *, overwrite: bool = True) -> None:
        """Copy a stream into a temp file beside the target, then publish it in one step."""
        target = self._resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.name)
        try:
            with os.fdopen(handle, "wb") as temp:
                shutil.copyfileobj(stream, temp, 1 << 20)
                temp.flush()
                os.fsync(temp.fileno())
            if overwrite:
                os.replace(temp_name, target)
            else:
                # link() is atomic and fails if the name exists: create-only-if-absent.
                try:
                    os.link(temp_name, target)
                except FileExistsError:
                    raise FileExistsError(
                        f"datastore '{self.name}': '{path}' already exists."
                    ) from None
        finally:
            if os.path.exists(temp_name):
                os.unlink(temp_name)

    def exists(self, path: str) -> bool:
        return self._resolve(path).is_file()

    def delete(self, path: str) -> None:
        self._resolve(path).unlink(missing_ok=True)

    def stat(self, path: str) -> FileInfo:
        target = self._resolve(path)
        try:
            stat = target.stat()
        except FileNotFoundError:
            raise FileNotFoundError(f"datastore '{self.name}': no file at '{path}'.") from None
        return self._info(normalize_relative_path(path, store=self.name), stat)
