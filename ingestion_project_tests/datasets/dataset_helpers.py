"""Real local stores for dataset tests, with counters where a test must prove what was touched."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from pydantic import PrivateAttr

from ingestion_project.datastores.local import LocalDatastore


class CountingDatastore(LocalDatastore):
    """A real local store that also remembers which files were opened, written and closed."""

    _events: list[str] = PrivateAttr(default_factory=list)

    @property
    def events(self) -> list[str]:
        return self._events

    @property
    def opened(self) -> list[str]:
        return [event.removeprefix("open ") for event in self._events if event.startswith("open ")]

    @property
    def written(self) -> list[str]:
        return [
            event.removeprefix("write ") for event in self._events if event.startswith("write ")
        ]

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        self._events.append(f"open {path}")
        with super().open_read(path) as stream:
            yield stream
        self._events.append(f"close {path}")

    def write_bytes(self, path: str, data: bytes, *, overwrite: bool = True) -> None:
        self._events.append(f"write {path}")
        super().write_bytes(path, data, overwrite=overwrite)


class Unseekable(io.RawIOBase):
    """A forward-only stream, like a blob download or an HTTP body."""

    def __init__(self, inner: IO[bytes]) -> None:
        super().__init__()
        self._inner = inner

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class ForwardOnlyDatastore(LocalDatastore):
    """A local store whose reads cannot seek, as remote stores' reads cannot."""

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        with super().open_read(path) as stream:
            yield io.BufferedReader(Unseekable(stream))


def write(root: Path, relative: str, text: str) -> Path:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def bump_mtime(path: Path) -> None:
    """Move mtime forward so the ETag changes even when a fast test rewrites in the same tick."""
    stamp = path.stat().st_mtime_ns + 5_000_000_000
    os.utime(path, ns=(stamp, stamp))
