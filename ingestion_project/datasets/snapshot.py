"""Snapshot copies: a version's own immutable copy of its files, so later edits cannot reach it.

Copies go to a fresh token folder (``<registry prefix>/snapshots/<dataset>/<token>/``), so racing
writers never collide; they become visible only through the version record, which is written
last and atomically. A failure before that record is written leaves no version: its copies are
deleted on a best-effort basis, and any that remain are orphans in a folder nobody references
(safe to delete).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from ingestion_project.datastores.base import FileDatastore, FileInfo


class SnapshotCopyError(Exception):
    """A file could not be copied into a snapshot; nothing was registered."""


def new_snapshot_token() -> str:
    """A folder name no other writer can pick: a random UUID."""
    return uuid.uuid4().hex


def snapshot_prefix(registry_prefix: str, dataset: str, token: str) -> str:
    """The folder, in the snapshot store, that holds one version's copies.

    Each copy keeps its original store-relative path under it, so the original path (for
    partition columns and ``path_column``) is the copy's path without this prefix.
    """
    root = registry_prefix.strip("/")
    return f"{root}/snapshots/{dataset}/{token}" if root else f"snapshots/{dataset}/{token}"


def copy_file(source: FileDatastore, path: str, target: FileDatastore, target_path: str) -> None:
    """Stream one file from ``source`` into ``target``, never overwriting an existing file.

    Stores with ``write_stream`` (Azure Blob) copy in bounded memory; the others hold one file.
    """
    with source.open_read(path) as stream:
        write_stream = getattr(target, "write_stream", None)
        if callable(write_stream):
            write_stream(target_path, stream, overwrite=False)
        else:
            target.write_bytes(target_path, stream.read(), overwrite=False)


def snapshot_files(
    dataset: str,
    files: list[FileInfo],
    source: FileDatastore,
    target: FileDatastore,
    folder: str,
) -> list[FileInfo]:
    """Copy every file under ``folder`` and return the copies' listing (path, size, ETag).

    A copy whose size differs from the pinned file means the source changed while it was being
    copied: that is an error, and the copies made so far are discarded.
    """
    copies: list[FileInfo] = []
    attempted: list[str] = []
    try:
        for info in files:
            target_path = f"{folder}/{info.path}"
            attempted.append(target_path)
            copy_file(source, info.path, target, target_path)
            copy = target.stat(target_path)
            if copy.size != info.size:
                raise SnapshotCopyError(
                    f"dataset '{dataset}': '{info.path}' in datastore '{source.store_name}' "
                    f"changed while it was being copied ({info.size} bytes listed, {copy.size} "
                    "copied). Nothing was registered; run the materialization again."
                )
            copies.append(copy)
    except BaseException as error:
        discard_copies(target, attempted, error)
        raise
    return copies


def discard_copies(
    store: FileDatastore, paths: Iterable[str], error: BaseException | None = None
) -> list[str]:
    """Best-effort removal of copies no version will reference; returns those left behind.

    With ``error``, the orphans left behind are noted on it, since that error is what the
    user will read; without one, leftovers are harmless orphans in an unreferenced folder.
    """
    left: list[str] = []
    for path in paths:
        try:
            store.delete(path)
        except Exception:  # the original error matters more; the orphan is only noted
            left.append(path)
    if left and error is not None:
        error.add_note(
            f"Could not delete {len(left)} orphaned snapshot copies in datastore "
            f"'{store.store_name}' (e.g. '{left[0]}'); no version references them, so they can "
            "be deleted."
        )
    return left
