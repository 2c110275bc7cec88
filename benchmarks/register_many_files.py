"""How fast a version of a 10,000-file dataset registers, and proof that it reads no data.

A `kind: file` dataset (DatasetSpec(kind="file", path="data/**/*.csv")) is registered over
10,000 small CSV files in a local datastore (and, with --azurite, 10,000 blobs in Azurite,
started here). Printed, measured in the same run:
 - the baseline: the bare listing a hand-written script would do (os.walk + stat; list_blobs),
   run before each registration so that other work on the machine hits both alike;
 - ours: `register_file_dataset` writing a new version (into an empty registry each run), and
   re-registering the unchanged files (which must give no new version);
 - the data bytes read, counted by a datastore subclass whose open_read/read_bytes count every
   byte handed out: it must be 0 for both;
 - for contrast, one registration of the same files as `kind: tabular`, which reads them all.
The registry lives in its own local store, so reading version records is not counted as data.

Run: .venv/bin/python benchmarks/register_many_files.py [--files 10000] [--azurite]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets.versions import dataset_registry, register_file_dataset
from ingestion_project.datastores.azure_blob import AzureBlobDatastore
from ingestion_project.datastores.azure_common import AzureCredential
from ingestion_project.datastores.base import FileDatastore
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project_tests.azurite import (
    ACCOUNT_KEY,
    Azurite,
    running_azurite,
)

PATTERN = "data/**/*.csv"
REPEATS = 5
# Every byte a counting store hands out, and every file it opens: module-level because
# datastores are frozen pydantic models.
READ = Counter[str]()


class CountingReader:
    """A read-only stream that adds every byte it returns to READ["bytes"]."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner

    def _count(self, data: bytes) -> bytes:
        READ["bytes"] += len(data)
        return data

    def read(self, size: int = -1) -> bytes:
        return self._count(self._inner.read(size))

    def read1(self, size: int = -1) -> bytes:
        return self._count(self._inner.read1(size))  # type: ignore[attr-defined]

    def readline(self, size: int = -1) -> bytes:
        return self._count(self._inner.readline(size))

    def readinto(self, buffer: Any) -> int:
        count = self._inner.readinto(buffer)  # type: ignore[attr-defined]
        READ["bytes"] += count or 0
        return count

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class CountingLocalDatastore(LocalDatastore):
    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        READ["opens"] += 1
        with super().open_read(path) as stream:
            yield CountingReader(stream)  # type: ignore[misc]


class CountingAzureBlobDatastore(AzureBlobDatastore):
    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        READ["opens"] += 1
        with super().open_read(path) as stream:
            yield CountingReader(stream)  # type: ignore[misc]

    def read_bytes(self, path: str) -> bytes:
        READ["opens"] += 1
        data = super().read_bytes(path)
        READ["bytes"] += len(data)
        return data


@dataclass
class Measured:
    label: str
    seconds: float
    data_bytes: int
    files_opened: int
    note: str = ""
    baseline: float | None = None
    """The best bare listing of the rounds this row took turns with, if it took turns."""


def best_of(
    call: Callable[[], object],
    repeats: int = REPEATS,
    baseline: Callable[[], object] | None = None,
) -> tuple[float, int, int, float | None]:
    """Best seconds of ``repeats`` calls, the most bytes/opens any single call counted, and
    the best ``baseline`` (None without one).

    With ``baseline``, it runs before each call: on a busy machine, other work then hits both
    alike, and the call's ratio is to the best baseline of the same rounds.
    """
    times, most_bytes, most_opens, baselines = [], 0, 0, []
    for _ in range(repeats):
        if baseline is not None:
            started = time.perf_counter()
            baseline()
            baselines.append(time.perf_counter() - started)
        READ.clear()
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
        most_bytes, most_opens = max(most_bytes, READ["bytes"]), max(most_opens, READ["opens"])
    return min(times), most_bytes, most_opens, min(baselines, default=None)


def bench_store(label: str, store: FileDatastore, baseline: Callable[[], list[Any]], files: int):
    """Register the files as kind: file (new, then unchanged) and once as kind: tabular."""
    assert len(baseline()) == files
    rows: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as registry_root:
        fresh = iter(range(1_000_000))

        def new_registry() -> Any:
            folder = Path(registry_root, f"r{next(fresh)}")
            return dataset_registry(LocalDatastore(name="registry", root=str(folder)), "reg")

        file_spec, note = file_dataset_spec()
        kind = file_spec.kind

        def register_new() -> None:
            result = register_file_dataset(
                "many", file_spec, store, new_registry(), run_id=None, code_version="bench"
            )
            assert result.created and len(result.record.manifest) == files

        seconds, data_bytes, opens, base = best_of(register_new, baseline=baseline)
        rows.append(Measured(f"kind: {kind}, new version", seconds, data_bytes, opens, note, base))

        registry = new_registry()
        first = register_file_dataset(
            "many", file_spec, store, registry, run_id=None, code_version="bench"
        )

        def register_unchanged() -> None:
            result = register_file_dataset(
                "many", file_spec, store, registry, run_id=None, code_version="bench"
            )
            assert not result.created and result.record.version == first.record.version

        seconds, data_bytes, opens, base = best_of(register_unchanged, baseline=baseline)
        rows.append(
            Measured(f"kind: {kind}, unchanged (no version)", seconds, data_bytes, opens, "", base)
        )

        if kind == "file":
            tabular = DatasetSpec(datastore="bench", path=PATTERN, format="csv")
            seconds, data_bytes, opens, _ = best_of(
                lambda: register_file_dataset(
                    "many", tabular, store, new_registry(), run_id=None, code_version="bench"
                ),
                repeats=1,
            )
            rows.append(
                Measured(
                    "kind: tabular, new version (once)",
                    seconds,
                    data_bytes,
                    opens,
                    "for contrast: reads every file",
                )
            )
    bests = [row.baseline for row in rows if row.baseline is not None]
    report(label, files, min(bests), rows, kind)


def file_dataset_spec() -> tuple[DatasetSpec, str]:
    """The kind: file spec; the tabular one (with a note) if this checkout has no kind: file."""
    try:
        return DatasetSpec(datastore="bench", kind="file", path=PATTERN), ""
    except ValueError as error:
        first = str(error).strip().splitlines()[0]
        return DatasetSpec(datastore="bench", path=PATTERN), f"kind: file refused ({first})"


def report(label: str, files: int, baseline: float, rows: list[Measured], kind: str) -> None:
    print(f"{label}: {files:,} files")
    print(
        f"  {'':40}{'best of ' + str(REPEATS):>11}{'ratio':>9}{'data bytes read':>17}{'opened':>8}"
    )
    label = "baseline: bare listing (each round)"
    print(f"  {label:40}{baseline * 1000:8.1f} ms{'1.00x':>9}{0:>17,}{0:>8,}")
    print("  (a ratio is to the best bare listing of the rounds that registration took turns with)")
    for row in rows:
        note = f"  {row.note}" if row.note else ""
        print(
            f"  {row.label:40}{row.seconds * 1000:8.1f} ms"
            f"{row.seconds / (row.baseline or baseline):8.2f}x"
            f"{row.data_bytes:>17,}{row.files_opened:>8,}{note}"
        )
    verdicts = [row for row in rows if row.label.startswith(f"kind: {kind}")]
    if kind != "file":
        print(
            "  kind: file is not available in this checkout: the unchanged re-registration "
            "above used a tabular spec (it reads nothing either)."
        )
    for row in verdicts:
        if kind != "file" and "new version" in row.label:
            continue
        verdict = "OK" if row.data_bytes == 0 else "FAIL: must be 0"
        print(f"  Data bytes read, {row.label}: {row.data_bytes:,} ({verdict}).")
    print()


def bench_local(files: int) -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 1_000_000, size=(files, 2))
    with tempfile.TemporaryDirectory(prefix="bench-files-") as root:
        for index in range(files):
            folder = Path(root, "data", f"part={index % 100:03d}")
            folder.mkdir(parents=True, exist_ok=True)
            first, second = values[index]
            (folder / f"{index:06d}.csv").write_text(f"a,b\n{first},{second}\n")
        store = CountingLocalDatastore(name="bench", root=root)

        def baseline() -> list[tuple[str, int, float]]:
            found = []
            for dirpath, _, names in os.walk(Path(root, "data")):
                for name in names:
                    if name.endswith(".csv"):
                        stat = os.stat(os.path.join(dirpath, name))
                        found.append((name, stat.st_size, stat.st_mtime))
            return found

        bench_store("local datastore", store, baseline, files)


@contextlib.contextmanager
def temporary_azurite() -> Iterator[Azurite]:
    with tempfile.TemporaryDirectory() as location, running_azurite(Path(location)) as service:
        yield service


def bench_blob(files: int) -> None:
    from azure.storage.blob import BlobServiceClient

    rng = np.random.default_rng(0)
    values = rng.integers(0, 1_000_000, size=(files, 2))
    with temporary_azurite() as azurite:
        service = BlobServiceClient(azurite.account_url, credential=ACCOUNT_KEY)
        container = service.create_container("bench")
        started = time.perf_counter()

        def upload(index: int) -> None:
            first, second = values[index]
            container.upload_blob(
                f"data/part={index % 100:03d}/{index:06d}.csv", f"a,b\n{first},{second}\n"
            )

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(upload, range(files)))
        print(f"(uploaded {files:,} blobs to Azurite in {time.perf_counter() - started:.1f} s)")
        store = CountingAzureBlobDatastore(
            name="bench",
            account_url=azurite.account_url,
            container="bench",
            credential=AzureCredential(account_key=ACCOUNT_KEY),
        )

        def baseline() -> list[tuple[str, int, str]]:
            return [
                (blob.name, blob.size, blob.etag)
                for blob in container.list_blobs(name_starts_with="data/")
            ]

        try:
            bench_store("azure_blob on Azurite", store, baseline, files)
        finally:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--azurite", action="store_true", help="also 10,000 blobs in Azurite")
    args = parser.parse_args()
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"Load average: {load} on {os.cpu_count()} cores (other work skews every figure).\n")
    bench_local(args.files)
    if args.azurite:
        bench_blob(args.files)


if __name__ == "__main__":
    main()
