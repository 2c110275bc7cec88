"""How fast a registered tabular dataset loads into pandas, against pyarrow and mltable.

One table (10 mixed columns: ints, floats, strings, a timestamp, a bool) is generated with
numpy's default_rng(0) and written twice under a temp dir: as Parquet files totalling at least
--size-mb, and as CSV files with the same rows (about 2.8 times larger). Each is registered as a
dataset version with `register_file_dataset`, first on a local datastore, then on Azure Blob
(Azurite, started here) after uploading the same files. Then, taking turns, best of 3:
 - ours: `load_version(record, store, spec)`, what `DatasetVersion.to_pandas()` does;
 - pyarrow: plain pyarrow reading the same bytes (local files; for Azurite, the same blobs
   downloaded with the Azure SDK's `download_blob().readall()`), then one `to_pandas()`;
 - pandas: `pd.read_csv`/`pd.read_parquet(engine="pyarrow")` per file + `pd.concat` (local);
 - mltable: Azure ML's data runtime, `mltable.from_delimited_files/from_parquet_files(...)
   .to_pandas_dataframe()` on the same local files, in its own interpreter (see README).
It prints wall and CPU seconds, MB/s and the ratio ours / baseline, and the peak RSS of one
load of ours and of pyarrow, each in a fresh process.

Run: .venv/bin/python benchmarks/load_tabular.py [--size-mb 200] [--repeats 3] [--skip-azurite]
     [--skip-mltable] [--mltable-python PATH] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib.util
import io
import json
import math
import multiprocessing
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets import versions
from ingestion_project.datasets.formats import system_memory
from ingestion_project.datasets.versions import (
    DatasetRegistry,
    dataset_registry,
    load_version,
    register_file_dataset,
)
from ingestion_project.datastores.azure_blob import AzureBlobDatastore
from ingestion_project.datastores.azure_common import AzureCredential
from ingestion_project.datastores.base import FileDatastore
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.records import DatasetVersionRecord
from ingestion_project_tests.azurite import (
    ACCOUNT_KEY,
    Azurite,
    running_azurite,
)

FILES = 8
MB = 1_000_000
FORMATS = ("parquet", "csv", "jsonl")
TITLES = {"parquet": "Parquet", "csv": "CSV", "jsonl": "JSON lines"}
OTHER_POOL = {
    "parquet": "the system allocator",
    "csv": "the system allocator",
    "jsonl": "pyarrow's own pool",
}
PYARROW_READERS = {"parquet": "read_table", "csv": "csv.read_csv", "jsonl": "json.read_json"}
JSONL_FILES = 2
"""JSON lines hold the rows of the first files only: the same rows in full would be 1.5 GB."""
CATEGORIES = ["books", "garden", "toys", "music", "grocery", "sports", "beauty", "tools"]
COUNTRIES = ["DE", "FR", "NL", "BE", "ES", "IT", "PL", "SE", "DK", "AT", "CH", "GB", "US", "CA"]


@dataclass
class Timing:
    wall: float
    cpu: float


def interleaved(
    contenders: dict[str, Callable[[], pd.DataFrame]],
    repeats: int,
    check: Callable[[str, pd.DataFrame], None],
) -> dict[str, Timing]:
    """Best wall and CPU seconds of each contender, taking turns so load on the machine hits all.

    The order flips every round; ``check`` sees each contender's first frame, then it is dropped.
    """
    walls: dict[str, list[float]] = {label: [] for label in contenders}
    cpus: dict[str, list[float]] = {label: [] for label in contenders}
    for round_number in range(repeats):
        order = list(contenders)
        if round_number % 2:
            order.reverse()
        for label in order:
            wall, cpu = time.perf_counter(), time.process_time()
            frame = contenders[label]()
            walls[label].append(time.perf_counter() - wall)
            cpus[label].append(time.process_time() - cpu)
            if round_number == 0:
                check(label, frame)
            del frame
    return {label: Timing(min(walls[label]), min(cpus[label])) for label in contenders}


def make_table(rng: np.random.Generator, start: int, rows: int) -> pa.Table:
    base = np.datetime64("2024-01-01T00:00:00", "s")
    return pa.table(
        {
            "order_id": np.arange(start, start + rows, dtype=np.int64),
            "ordered_at": base + rng.integers(0, 365 * 86_400, rows).astype("timedelta64[s]"),
            "customer_id": rng.integers(0, 1_000_000, rows, dtype=np.int64),
            "category": pc.take(pa.array(CATEGORIES), rng.integers(0, len(CATEGORIES), rows)),
            "country": pc.take(pa.array(COUNTRIES), rng.integers(0, len(COUNTRIES), rows)),
            "amount": np.round(rng.lognormal(3.0, 1.0, rows), 2),
            "unit_price": np.round(rng.uniform(1.0, 500.0, rows), 2),
            "quantity": rng.integers(1, 21, rows, dtype=np.int64),
            "score": rng.random(rows),
            "returned": rng.random(rows) < 0.1,
        }
    )


@dataclass
class Dataset:
    file_format: str
    paths: list[Path]
    rows: int

    @property
    def bytes(self) -> int:
        return sum(path.stat().st_size for path in self.paths)

    @property
    def glob(self) -> str:
        return f"data/sales_{self.file_format}/*.{self.file_format}"

    @property
    def name(self) -> str:
        return f"sales_{self.file_format}"


@dataclass
class Shaped(Dataset):
    """The same rows in another shape: one file, or Parquet written by pandas."""

    shape: str = ""

    @property
    def glob(self) -> str:
        return f"data/{self.name}/*.{self.file_format}"

    @property
    def name(self) -> str:
        return f"sales_{self.file_format}_{self.shape}"


def other_shapes(dataset: Dataset, root: Path) -> list[Shaped]:
    """The dataset's rows as one file, and (Parquet) as files pandas wrote with its metadata."""
    shapes = [Shaped(dataset.file_format, [], dataset.rows, "one_file")]
    if dataset.file_format == "parquet":
        shapes.append(Shaped(dataset.file_format, [], dataset.rows, "pandas_written"))
    for shaped in shapes:
        folder = root / "data" / shaped.name
        folder.mkdir(parents=True, exist_ok=True)
        if shaped.shape == "pandas_written":
            for path in dataset.paths:
                pq.read_table(path).to_pandas().to_parquet(folder / path.name)
                shaped.paths.append(folder / path.name)
            continue
        target = folder / f"all.{dataset.file_format}"
        if dataset.file_format == "parquet":
            tables = [pq.read_table(path) for path in dataset.paths]
            pq.write_table(pa.concat_tables(tables), target)
        else:  # CSV and JSON lines: the files' lines one after another, one header kept
            with target.open("wb") as out:
                for index, path in enumerate(dataset.paths):
                    with path.open("rb") as lines:
                        if dataset.file_format == "csv" and index:
                            lines.readline()
                        while chunk := lines.read(1 << 24):
                            out.write(chunk)
        shaped.paths.append(target)
    return shapes


def generate(root: Path, size_mb: int) -> dict[str, Dataset]:
    """The same rows as Parquet (at least ``size_mb`` MB in FILES or more files) and as CSV."""
    rows_per_file = 200_000
    for _ in range(2):  # Parquet bytes per row depend on the file's size: estimate at that size
        sample = io.BytesIO()
        pq.write_table(make_table(np.random.default_rng(1), 0, rows_per_file), sample)
        rows_per_file = math.ceil(size_mb * MB / FILES / (sample.tell() / rows_per_file) * 1.01)
    rng = np.random.default_rng(0)
    datasets = {fmt: Dataset(fmt, [], 0) for fmt in FORMATS}
    for fmt in FORMATS:
        (root / "data" / f"sales_{fmt}").mkdir(parents=True)
    index = 0
    while index < FILES or datasets["parquet"].bytes < size_mb * MB:
        table = make_table(rng, index * rows_per_file, rows_per_file)
        for fmt in FORMATS:
            path = root / "data" / f"sales_{fmt}" / f"part-{index:05d}.{fmt}"
            if fmt == "parquet":
                pq.write_table(table, path)
            elif fmt == "jsonl":
                if index >= JSONL_FILES:
                    continue
                frame = table.to_pandas()
                frame.to_json(path, orient="records", lines=True, date_format="iso")
            else:
                pa_csv.write_csv(table, path)
            datasets[fmt].paths.append(path)
            datasets[fmt].rows += table.num_rows
        index += 1
    return datasets


def spec_for(dataset: Dataset) -> DatasetSpec:
    return DatasetSpec(datastore="bench", path=dataset.glob, format=dataset.file_format)  # type: ignore[arg-type]


def parse_with_pyarrow(file_format: str, source: str | pa.NativeFile) -> pa.Table:
    if file_format == "parquet":
        return pq.read_table(source)
    if file_format == "jsonl":
        return pa_json.read_json(source)
    return pa_csv.read_csv(source)


def pyarrow_local(dataset: Dataset) -> pd.DataFrame:
    if dataset.file_format == "parquet":
        # read_table over a list of files is how a pyarrow user reads a multi-file dataset.
        return pq.read_table([str(path) for path in dataset.paths]).to_pandas()
    tables = [parse_with_pyarrow(dataset.file_format, str(path)) for path in dataset.paths]
    return pa.concat_tables(tables).to_pandas()


def pandas_local(dataset: Dataset) -> pd.DataFrame:
    if dataset.file_format == "parquet":
        frames = [pd.read_parquet(path, engine="pyarrow") for path in dataset.paths]
    elif dataset.file_format == "jsonl":
        frames = [pd.read_json(path, lines=True) for path in dataset.paths]
    else:
        frames = [pd.read_csv(path, engine="pyarrow") for path in dataset.paths]
    return pd.concat(frames, ignore_index=True)


@dataclass
class Row:
    label: str
    timing: Timing | None
    note: str = ""


@dataclass
class Report:
    title: str
    data_bytes: int
    registration: float
    repeats: int
    registration_again: float | None = None
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    shape: tuple[int, int] = (0, 0)
    dtypes: dict[str, str] = field(default_factory=dict)

    def print(self) -> None:
        print(self.title)
        ours = self.rows[0].timing
        assert ours is not None
        print(
            f"  Registering the version (list, read, profile, write the record) took "
            f"{self.registration:.2f} s the first time in this process."
        )
        if self.registration_again is not None:
            print(
                f"  Registering it again into an empty registry, taking turns with the loads "
                f"below, best of {self.repeats}: "
                f"{self.registration_again:.3f} s = {self.registration_again / ours.wall:.2f}x "
                f"ours: load_version below (goal: at most 1.5x)."
            )
        best = f"best of {self.repeats}"
        print(f"  {'':38}{best:>10}{'CPU s':>8}{'MB/s':>7}{'ours / this':>13}")
        for row in self.rows:
            note = f"  {row.note}" if row.note else ""
            if row.timing is None:
                print(f"  {row.label:38}{'-':>10}{'-':>8}{'-':>7}{'-':>13}{note}")
                continue
            ratio = "" if row is self.rows[0] else f"{ours.wall / row.timing.wall:12.2f}x"
            rate = self.data_bytes / MB / row.timing.wall
            print(
                f"  {row.label:38}{row.timing.wall:9.3f}s{row.timing.cpu:8.2f}{rate:7.0f}"
                f"{ratio:>13}{note}"
            )
        for note in self.notes:
            print(f"  {note}")
        print()


def frame_difference(
    label: str, shape: tuple[int, int], dtypes: pd.Series, other: pd.DataFrame
) -> str | None:
    """Say so when a baseline did not build the same frame as ours, so no ratio is misread."""
    if other.shape != shape:
        return f"{label} gave shape {other.shape}, ours {shape}."
    differing = [
        f"{name}: ours {dtype}, theirs {other[name].dtype}"
        for name, dtype in dtypes.items()
        if name in other.columns and other[name].dtype != dtype
    ]
    return f"{label} differs in dtypes ({'; '.join(differing)})." if differing else None


REGISTER_AGAIN = "ours: register a new version"


def register(
    dataset: Dataset, store: FileDatastore, registry: DatasetRegistry
) -> tuple[DatasetVersionRecord, float]:
    started = time.perf_counter()
    registration = register_file_dataset(
        dataset.name, spec_for(dataset), store, registry, run_id=None, code_version="bench"
    )
    elapsed = time.perf_counter() - started
    assert registration.created, f"{dataset.name}: expected a new version"
    assert registration.record.row_count == dataset.rows
    return registration.record, elapsed


def bench_local(
    datasets: dict[str, Dataset],
    root: Path,
    repeats: int,
    mltable_python: str | None,
    mltable_skip_reason: str | None,
    profile: bool,
) -> None:
    store = LocalDatastore(name="bench", root=str(root))
    registry = dataset_registry(LocalDatastore(name="registry", root=str(root / "registry")), "r")
    for fmt, dataset in datasets.items():
        record, registration = register(dataset, store, registry)
        spec = spec_for(dataset)
        report = Report(
            f"{TITLES[fmt]}, local datastore: {len(dataset.paths)} files, "
            f"{dataset.bytes / MB:,.1f} MB, {dataset.rows:,} rows x 10 columns",
            dataset.bytes,
            registration,
            repeats,
        )
        fresh = (str(root / f"registry-again-{fmt}-{n}") for n in range(1_000_000))

        def register_again(
            dataset: Dataset = dataset, fresh: Iterator[str] = fresh
        ) -> pd.DataFrame:
            again = dataset_registry(LocalDatastore(name="again", root=next(fresh)), "r")
            registration = register_file_dataset(
                dataset.name, spec_for(dataset), store, again, run_id=None, code_version="bench"
            )
            assert registration.created and registration.frame is not None
            return registration.frame

        contenders = {
            "ours: load_version": lambda record=record, spec=spec: load_version(
                record, store, spec
            ),
            REGISTER_AGAIN: register_again,
            f"ours, with {OTHER_POOL[fmt]}": lambda record=record, spec=spec: load_with_other_pool(
                record, store, spec
            ),
            f"pyarrow {PYARROW_READERS[fmt]} + to_pandas": (
                lambda dataset=dataset: pyarrow_local(dataset)
            ),
            f"pandas read_{fmt} per file + concat": lambda dataset=dataset: pandas_local(dataset),
        }
        measure(report, contenders, dataset.rows)
        again = next(row for row in report.rows if row.label == REGISTER_AGAIN)
        report.rows.remove(again)
        assert again.timing is not None
        report.registration_again = again.timing.wall
        report.rows.append(mltable_row(dataset, report, mltable_python, mltable_skip_reason))
        report.notes.append(fresh_process_note(dataset, root))
        report.notes.append(peak_rss_note(dataset, root))
        for shaped in other_shapes(dataset, root):
            register(shaped, store, registry)
            report.notes.append(peak_rss_note(shaped, root, shaped.shape.replace("_", " ")))
        report.notes.append(stream_rss_note(dataset, root))
        report.print()
        if profile:
            profile_load(record, store, spec)


def measure(
    report: Report, contenders: dict[str, Callable[[], pd.DataFrame]], expected_rows: int
) -> None:
    """Time the contenders (ours first) into the report, noting any that built another frame."""
    shape: dict[str, tuple[int, int]] = {}
    dtypes: dict[str, pd.Series] = {}
    ours = next(iter(contenders))

    def check(label: str, frame: pd.DataFrame) -> None:
        if label == ours:
            assert len(frame) == expected_rows, f"ours loaded {len(frame)} of {expected_rows} rows"
            shape["ours"], dtypes["ours"] = frame.shape, frame.dtypes
        elif note := frame_difference(label, shape["ours"], dtypes["ours"], frame):
            report.notes.append(note)

    timings = interleaved(contenders, report.repeats, check)
    report.rows.extend(Row(label, timing) for label, timing in timings.items())
    report.dtypes = {str(name): str(dtype) for name, dtype in dtypes["ours"].items()}
    report.shape = shape["ours"]


MLTABLE_WORKER = r"""
import importlib.metadata, json, sys, time
import mltable
file_format, repeats, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
entries = [{"file": path} for path in paths]
times, cpus = [], []
for _ in range(repeats):
    frame = None
    started, cpu = time.perf_counter(), time.process_time()
    if file_format == "parquet":
        table = mltable.from_parquet_files(entries)
    elif file_format == "jsonl":
        table = mltable.from_json_lines_files(entries)
    else:
        table = mltable.from_delimited_files(entries)
    frame = table.to_pandas_dataframe()
    times.append(time.perf_counter() - started)
    cpus.append(time.process_time() - cpu)
print(json.dumps({
    "times": times,
    "cpus": cpus,
    "shape": list(frame.shape),
    "dtypes": {str(name): str(dtype) for name, dtype in frame.dtypes.items()},
    "version": importlib.metadata.version("mltable"),
}))
"""


def mltable_row(
    dataset: Dataset, report: Report, python: str | None, skip_reason: str | None
) -> Row:
    """Run mltable in its own interpreter: its pins (pyarrow<26, azure-identity<=1.17) clash."""
    if python is None:
        return Row("mltable to_pandas_dataframe", None, skip_reason or "skipped")
    command = [python, "-c", MLTABLE_WORKER, dataset.file_format, str(report.repeats)]
    command += [str(path) for path in dataset.paths]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    except subprocess.TimeoutExpired:
        return Row("mltable to_pandas_dataframe", None, "did not finish within 30 minutes")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Row("mltable to_pandas_dataframe", None, f"failed: {last[:160]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if tuple(result["shape"]) != report.shape:
        report.notes.append(f"mltable gave shape {tuple(result['shape'])}, ours {report.shape}.")
    differing = [
        f"{name}: ours {report.dtypes[name]}, theirs {dtype}"
        for name, dtype in result["dtypes"].items()
        if name in report.dtypes and report.dtypes[name] != dtype
    ]
    if differing:
        report.notes.append(f"mltable differs in dtypes ({'; '.join(differing)}).")
    timing = Timing(min(result["times"]), min(result["cpus"]))
    return Row(f"mltable {result['version']} to_pandas_dataframe", timing)


def find_mltable(requested: str | None, skip: bool) -> tuple[str | None, str | None]:
    """The interpreter that can import mltable, or why there is none."""
    if skip:
        return None, "skipped (--skip-mltable)"
    if requested:
        check = subprocess.run([requested, "-c", "import mltable"], capture_output=True, text=True)
        if check.returncode == 0:
            return requested, None
        last = (check.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"{requested} cannot import mltable: {last[:120]}"
    if importlib.util.find_spec("mltable") is not None:
        return sys.executable, None
    return None, "mltable is not importable here: see benchmarks/README.md (--mltable-python)"


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _one_load(which: str, dataset: Dataset, root: str) -> tuple[int, int, int]:
    """In a fresh process: RSS before and peak RSS during one load, in KiB, and the frame's bytes.

    VmHWM, not ru_maxrss: after exec, ru_maxrss still holds the forking parent's peak. Writing
    5 to clear_refs resets VmHWM to the current RSS, so the peak is the load's own.
    """
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    before = _status_kb("VmRSS")
    if which == "ours":
        store = LocalDatastore(name="bench", root=root)
        registry = dataset_registry(LocalDatastore(name="registry", root=f"{root}/registry"), "r")
        record = registry.latest(dataset.name)
        assert record is not None
        frame = load_version(record, store, spec_for(dataset))
    else:
        frame = pyarrow_local(dataset)
    peak = _status_kb("VmHWM")
    size = frame_bytes(frame)
    del frame
    return before, peak, size


def frame_bytes(frame: pd.DataFrame) -> int:
    """The memory a frame holds: its arrays, and each Python object in them once.

    pandas' ``memory_usage(deep=True)`` counts an object every time it appears; a load from
    Arrow shares one string object among equal values, so that would overstate the frame.
    """
    total = int(frame.memory_usage(deep=False, index=False).sum())
    for name in frame.columns:
        values = frame[name].to_numpy()
        if values.dtype == object:
            seen = {id(value): value for value in values}
            total += sum(sys.getsizeof(value) for value in seen.values())
    return total


def load_with_other_pool(
    record: DatasetVersionRecord, store: FileDatastore, spec: DatasetSpec
) -> pd.DataFrame:
    """load_version with the allocator read_memory does not choose for the format."""
    original = versions.read_memory

    def other(file_format: str) -> contextlib.AbstractContextManager[None]:
        if file_format == "jsonl":
            return contextlib.nullcontext()
        return system_memory()

    versions.read_memory = other  # type: ignore[assignment]
    try:
        return load_version(record, store, spec)
    finally:
        versions.read_memory = original


def _first_in_process(which: str, dataset: Dataset, root: str, attempt: int) -> float:
    """In a fresh process (as every Dagster run is): one registration or one load, timed."""
    store = LocalDatastore(name="bench", root=root)
    if which == "pyarrow":
        started = time.perf_counter()
        pyarrow_local(dataset)
        return time.perf_counter() - started
    if which == "register":
        again = f"{root}/registry-fresh-{dataset.file_format}-{attempt}"
        return register(
            dataset, store, dataset_registry(LocalDatastore(name="a", root=again), "r")
        )[1]
    registry = dataset_registry(LocalDatastore(name="registry", root=f"{root}/registry"), "r")
    record = registry.latest(dataset.name)
    assert record is not None
    started = time.perf_counter()
    load_version(record, store, spec_for(dataset))
    return time.perf_counter() - started


def fresh_process_note(dataset: Dataset, root: Path, attempts: int = 2) -> str:
    best = {}
    for which in ("load", "pyarrow", "register"):
        times = []
        for attempt in range(attempts):
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                times.append(
                    pool.submit(_first_in_process, which, dataset, str(root), attempt).result()
                )
        best[which] = min(times)
    return (
        f"First call in a fresh process (what each Dagster run does), best of {attempts}: "
        f"load_version {best['load']:.3f} s, pyarrow {best['pyarrow']:.3f} s "
        f"({best['load'] / best['pyarrow']:.2f}x; goal at most 1.25x); registering "
        f"{best['register']:.3f} s = {best['register'] / best['load']:.2f}x the load "
        "(goal: at most 1.5x)."
    )


def peak_rss_note(dataset: Dataset, root: Path, shape: str = "") -> str:
    figures = {}
    for which in ("ours", "pyarrow"):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            figures[which] = pool.submit(_one_load, which, dataset, str(root)).result()
    (ours_before, ours_peak, size), (arrow_before, arrow_peak, _) = figures.values()
    grown = (ours_peak - ours_before) * 1024
    shaped = f", the same rows {shape}" if shape else ""
    return (
        f"Peak RSS of one load in a fresh process{shaped}: ours {ours_peak / 1024:,.0f} MB "
        f"(+{grown / MB:,.0f} MB over the process before loading, {grown / size:.2f}x the "
        f"{size / MB:,.0f} MB frame it built; goal at most 1.5x), "
        f"pyarrow {arrow_peak / 1024:,.0f} MB (+{(arrow_peak - arrow_before) / 1024:,.0f} MB)."
    )


def _one_stream(dataset: Dataset, root: str, batch_size: int) -> tuple[int, int, int, int]:
    """In a fresh process: RSS before and peak during iter_version_batches (KiB), the largest
    batch's bytes and the rows seen; no batch is kept."""
    from ingestion_project.datasets.versions import iter_version_batches

    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    before = _status_kb("VmRSS")
    store = LocalDatastore(name="bench", root=root)
    registry = dataset_registry(LocalDatastore(name="registry", root=f"{root}/registry"), "r")
    record = registry.latest(dataset.name)
    assert record is not None
    largest = rows = 0
    for batch in iter_version_batches(record, store, spec_for(dataset), batch_size=batch_size):
        largest, rows = max(largest, batch.nbytes), rows + batch.num_rows
        del batch
    return before, _status_kb("VmHWM"), largest, rows


def stream_rss_note(dataset: Dataset, root: Path) -> str:
    parts = []
    for batch_size in (16_384, 65_536, 262_144):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            before, peak, largest, rows = pool.submit(
                _one_stream, dataset, str(root), batch_size
            ).result()
        assert rows == dataset.rows, f"streamed {rows} of {dataset.rows} rows"
        parts.append(
            f"{batch_size:,} rows: +{(peak - before) / 1024:,.0f} MB (a batch is "
            f"{largest / MB:,.1f} MB in Arrow)"
        )
    return (
        "Peak RSS of iter_version_batches over the whole version in a fresh process, over the "
        f"process before it, by batch size: {'; '.join(parts)}."
    )


def profile_load(record: DatasetVersionRecord, store: FileDatastore, spec: DatasetSpec) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    load_version(record, store, spec)
    profiler.disable()
    print(f"  cProfile of one load_version of {record.dataset} (top 12 by own time):")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    for line in lines[start : start + 13]:
        print(f"    {line}")
    print()


@contextlib.contextmanager
def temporary_azurite() -> Iterator[Azurite]:
    with tempfile.TemporaryDirectory() as location, running_azurite(Path(location)) as service:
        yield service


def bench_azurite(datasets: dict[str, Dataset], root: Path, repeats: int) -> None:
    from azure.storage.blob import BlobServiceClient

    with temporary_azurite() as azurite:
        service = BlobServiceClient(azurite.account_url, credential=ACCOUNT_KEY)
        container = service.create_container("bench")
        started = time.perf_counter()
        names = {}
        for fmt, dataset in datasets.items():
            names[fmt] = [str(path.relative_to(root)) for path in dataset.paths]

            def upload(path: Path) -> None:
                with path.open("rb") as stream:
                    container.upload_blob(str(path.relative_to(root)), stream, max_concurrency=4)

            with ThreadPoolExecutor(4) as pool:
                list(pool.map(upload, dataset.paths))
        total = sum(dataset.bytes for dataset in datasets.values())
        print(
            f"(uploaded {total / MB:,.0f} MB to Azurite in {time.perf_counter() - started:.1f} s)\n"
        )
        store = AzureBlobDatastore(
            name="bench",
            account_url=azurite.account_url,
            container="bench",
            credential=AzureCredential(account_key=ACCOUNT_KEY),
        )
        registry = dataset_registry(
            LocalDatastore(name="registry", root=str(root / "registry-azurite")), "r"
        )
        try:
            for fmt, dataset in datasets.items():
                record, registration = register(dataset, store, registry)
                report = Report(
                    f"{TITLES[fmt]}, azure_blob on Azurite: {len(dataset.paths)} blobs, "
                    f"{dataset.bytes / MB:,.1f} MB, {dataset.rows:,} rows",
                    dataset.bytes,
                    registration,
                    repeats,
                )

                def raw(fmt: str = fmt) -> pd.DataFrame:
                    tables = [
                        parse_with_pyarrow(
                            fmt, pa.BufferReader(container.download_blob(name).readall())
                        )
                        for name in names[fmt]
                    ]
                    return pa.concat_tables(tables).to_pandas()

                contenders = {
                    "ours: load_version": lambda record=record, dataset=dataset: load_version(
                        record, store, spec_for(dataset)
                    ),
                    "download_blob().readall() + pyarrow": raw,
                }
                measure(report, contenders, dataset.rows)
                report.print()
        finally:
            store.close()


def load_average() -> str:
    """Other work on the machine skews every figure; print it so a reader can judge."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--size-mb", type=int, default=200, help="Parquet size; CSV is ~2.8x")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each; the best is kept")
    parser.add_argument("--skip-azurite", action="store_true", help="local datastore only")
    parser.add_argument("--skip-mltable", action="store_true", help="no mltable baseline")
    parser.add_argument(
        "--mltable-python",
        help="an interpreter that can import mltable (default: this one, if it can)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one load of ours")
    parser.add_argument(
        "--formats", nargs="+", choices=FORMATS, default=list(FORMATS), help="what to measure"
    )
    args = parser.parse_args()
    mltable_python, mltable_skip = find_mltable(args.mltable_python, args.skip_mltable)
    print(f"Load average before: {load_average()} on {os.cpu_count()} cores.")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as temp:
        root = Path(temp)
        started = time.perf_counter()
        datasets = generate(root, args.size_mb)
        print(
            f"Generated {datasets['parquet'].rows:,} rows x 10 columns with default_rng(0) in "
            f"{time.perf_counter() - started:.1f} s: Parquet {datasets['parquet'].bytes / MB:,.1f} "
            f"MB and CSV {datasets['csv'].bytes / MB:,.1f} MB in {len(datasets['csv'].paths)} "
            f"files each, and JSON lines of the first {datasets['jsonl'].rows:,} rows, "
            f"{datasets['jsonl'].bytes / MB:,.1f} MB in {len(datasets['jsonl'].paths)} files. "
            f"Files are read warm from the page cache; the contenders take turns, "
            f"{args.repeats} runs each, best kept; CPU s is the least CPU time of this process "
            "over the runs (all threads; Azurite's own CPU not included).\n"
        )
        datasets = {fmt: datasets[fmt] for fmt in args.formats}
        bench_local(datasets, root, args.repeats, mltable_python, mltable_skip, args.profile)
        if not args.skip_azurite:
            bench_azurite(datasets, root, args.repeats)
    print(f"Load average after: {load_average()}.")


if __name__ == "__main__":
    main()
