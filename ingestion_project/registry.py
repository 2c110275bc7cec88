"""Numbered, immutable version records kept in a file datastore.

A version becomes visible in one atomic create-only-if-absent write of its complete record, so
racing writers can never take the same number and a crash never leaves a half-written version.
What a record holds, and its JSON form, live in ``ingestion_project.records``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Generic, TypeVar

from ingestion_project.datastores.base import FileDatastore
from ingestion_project.records import AliasRecord, VersionRecord, read_record, record_json

RecordT = TypeVar("RecordT", bound=VersionRecord)
_VERSION_FILE = re.compile(r"v(\d{6})\.json$")
MAX_REGISTRATION_ATTEMPTS = 50


class RegistryError(Exception):
    """The registry is missing a version or could not record one."""


class VersionRegistry(Generic[RecordT]):
    """Versions of named things of one kind ('datasets', 'models') under a prefix in a store.

    Every version of the kind is a ``record_type``; aliases are :class:`AliasRecord`.
    """

    def __init__(
        self, store: FileDatastore, prefix: str, kind: str, record_type: type[RecordT]
    ) -> None:
        self.store = store
        self.prefix = prefix.strip("/")
        self.kind = kind
        self.record_type = record_type

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

    def _where(self, name: str, what: str, path: str) -> str:
        return f"{self.kind[:-1]} '{name}' {what} ('{path}' in datastore '{self.store.store_name}')"

    def get(self, name: str, version: int) -> RecordT:
        path = self._path(name, version)
        try:
            payload = self.store.read_bytes(path)
        except FileNotFoundError:
            known = self.version_numbers(name)
            raise RegistryError(
                f"{self.kind[:-1]} '{name}' has no version {version} "
                f"(registered: {_ranges(known) or 'none'})."
            ) from None
        return read_record(self.record_type, payload, self._where(name, f"version {version}", path))

    def latest(self, name: str) -> RecordT | None:
        numbers = self.version_numbers(name)
        return self.get(name, numbers[-1]) if numbers else None

    def all(self, name: str) -> list[RecordT]:
        return [self.get(name, number) for number in self.version_numbers(name)]

    def register(self, name: str, build: Callable[[int], RecordT]) -> RecordT:
        """Write ``build(n)`` as version n = latest + 1, retrying with n + 1 if a racer took n."""
        numbers = self.version_numbers(name)
        candidate = (numbers[-1] if numbers else 0) + 1
        for _ in range(MAX_REGISTRATION_ATTEMPTS):
            record = build(candidate)
            if record.version != candidate:
                raise RegistryError(
                    f"building version {candidate} of {self.kind[:-1]} '{name}' gave a record "
                    f"numbered {record.version}: the build must number it as it is told."
                )
            if record.registered_at is None:
                record = record.model_copy(update={"registered_at": datetime.now(UTC)})
            try:
                self.store.write_bytes(
                    self._path(name, candidate), record_json(record), overwrite=False
                )
            except FileExistsError:
                candidate += 1
                continue
            return record
        raise RegistryError(
            f"could not register a version of {self.kind[:-1]} '{name}' after "
            f"{MAX_REGISTRATION_ATTEMPTS} attempts: too many concurrent writers; retry."
        )

    def set_alias(self, name: str, alias: str, record: AliasRecord) -> None:
        """Point a mutable alias (e.g. 'champion') at a version; the versions stay immutable."""
        path = f"{self._folder(name)}/{alias}.alias.json"
        self.store.write_bytes(path, record_json(record))

    def get_alias(self, name: str, alias: str) -> AliasRecord | None:
        path = f"{self._folder(name)}/{alias}.alias.json"
        try:
            payload = self.store.read_bytes(path)
        except FileNotFoundError:
            return None
        return read_record(AliasRecord, payload, self._where(name, f"alias '{alias}'", path))

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
