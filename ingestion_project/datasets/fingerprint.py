"""Fingerprints of dataset contents taken from listing metadata only, never from the data."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from ingestion_project.datastores.base import FileInfo


def listing_fingerprint(files: Iterable[FileInfo]) -> str:
    """Hash of (path, size, etag) of every file: any file added, removed or edited changes it."""
    digest = hashlib.sha256()
    for info in sorted(files, key=lambda item: item.path):
        digest.update(f"{info.path}\t{info.size}\t{info.etag}\n".encode())
    return digest.hexdigest()
