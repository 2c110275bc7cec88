"""Fingerprints of dataset contents taken from listing metadata only, never from the data."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ingestion_project.datastores.base import FileInfo, listing_digest


def listing_fingerprint(files: Iterable[FileInfo]) -> str:
    """Hash of (path, size, etag) of every file: any file added, removed or edited changes it."""
    return listing_digest((info.path, info.size, info.etag) for info in files)


def version_fingerprint(listing: str, settings: Mapping[str, Any]) -> str:
    """A version's identity: its files plus how they are read (kind, mode, format, options).

    Changing how the same files are read (column types, a partition format, snapshot mode) must
    give a new version, or loading the latest would silently ignore the new declaration.
    """
    payload = json.dumps({"listing": listing, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()
