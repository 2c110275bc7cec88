"""Numbered, immutable version records kept in a file datastore.

A version becomes visible in one atomic create-only-if-absent write of its complete record, so
racing writers can never take the same number and a crash never leaves a half-written version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ingestion_project.datastores.base import FileDatastore

Record = dict[str, Any]
_VERSION_FILE = re.compile(r"v(\d{6})\.json$")
MAX_REGISTRATION_ATTEMPTS = 50


class RegistryError(Exception):
    """The registry is missing a version or could not record one."""


class VersionRegistry:
    """Versions of named things of one kind ('datasets', 'models') under a prefix in a store."""

    def __init__(self, store: FileDatastore, prefix: str, kind: str) -> None:
        self.store = store
        self.prefix = prefix.strip("/")
        self.kind = kind

    def _folder(self, name: str) -> str:
        return f"{self.prefix}/{self.kind}/{name}"

    def _path(self, name: str, version: int) -> str:
        return f"{self._folder(name)}/v{version:06d}.json"

    def version_numbers(self, name: str) -> list[int]:
        numbers = []
        for info in self.store.list_files(f"{self._folder(name)}/v*.json"):
            match = _VERSION_FILE.search(info.path)
            if match:
                numbers.append(int(match.group(1)))
        return sorted(numbers)

    def get(self, name: str, version: int) -> Record:
        try:
            return json.loads(self.store.read_bytes(self._path(name, version)))
        except FileNotFoundError:
            known = self.version_numbers(name)
            raise RegistryError(
                f"{self.kind[:-1]} '{name}' has no version {version} "
                f"(registered: {_ranges(known) or 'none'})."
            ) from None

    def latest(self, name: str) -> Record | None:
        numbers = self.version_numbers(name)
        return self.get(name, numbers[-1]) if numbers else None

    def all(self, name: str) -> list[Record]:
        return [self.get(name, number) for number in self.version_numbers(name)]

    def register(self, name: str, build: Callable[[int], Record]) -> Record:
        """Write ``build(n)`` as version n = latest + 1, retrying with n + 1 if a racer took n."""
        numbers = self.version_numbers(name)
        candidate = (numbers[-1] if numbers else 0) + 1
        for _ in range(MAX_REGISTRATION_ATTEMPTS):
            record = build(candidate)
            record.setdefault("registered_at", datetime.now(UTC).isoformat())
            payload = json.dumps(record, indent=2, sort_keys=True, default=str).encode()
            try:
                self.store.write_bytes(self._path(name, candidate), payload, overwrite=False)
            except FileExistsError:
                candidate += 1
                continue
            return record
        raise RegistryError(
            f"could not register a version of {self.kind[:-1]} '{name}' after "
            f"{MAX_REGISTRATION_ATTEMPTS} attempts: too many concurrent writers; retry."
        )

    def set_alias(self, name: str, alias: str, record: Record) -> None:
        """Point a mutable alias (e.g. 'champion') at a version; the versions stay immutable."""
        path = f"{self._folder(name)}/{alias}.alias.json"
        self.store.write_bytes(path, json.dumps(record, indent=2, default=str).encode())

    def get_alias(self, name: str, alias: str) -> Record | None:
        path = f"{self._folder(name)}/{alias}.alias.json"
        try:
            return json.loads(self.store.read_bytes(path))
        except FileNotFoundError:
            return None

    def names(self) -> list[str]:
        seen = {
            info.path.split("/")[-2]
            for info in self.store.list_files(f"{self.prefix}/{self.kind}/*/v*.json")
            if _VERSION_FILE.search(info.path)
        }
        return sorted(seen)


def _ranges(numbers: list[int]) -> str:
    if not numbers:
        return ""
    return f"{numbers[0]}..{numbers[-1]}" if len(numbers) > 1 else str(numbers[0])
