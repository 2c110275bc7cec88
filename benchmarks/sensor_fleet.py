"""What one daemon's sensor work costs for a project of many datasets, against a bare listing.

A project of ``--datasets`` datasets (10 small CSV files each, in a local datastore) is declared
in ``--catalogs`` catalog folders, each dataset with a data-change trigger every 60 s: one sensor
per catalog. Every sensor's tick is evaluated in this process, as the daemon evaluates it
(resources built, the cursor read and written), once to seed the cursors and then with one file
changed in one dataset per catalog. The baseline is the bare listing the ticks rest on: a
``glob`` + ``stat`` of every dataset's files, in the same run. The daemon runs a project's
sensors one after another by default, so the sum of the ticks is what one interval costs it.

Run: .venv/bin/python benchmarks/sensor_fleet.py [--datasets 1000] [--catalogs 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingestion_project_tests.catalogs import catalog_definitions

FILES_PER_DATASET = 10


def project(datasets: int, catalogs: int) -> list[dict[str, object]]:
    """The catalogs' attributes: datasets spread evenly, one datastore in the first."""
    per_catalog = -(-datasets // catalogs)
    raws: list[dict[str, object]] = []
    for number in range(catalogs):
        entries = {
            f"table_{index:05d}": {
                "datastore": "landing",
                "path": f"tables/{index:05d}/*.csv",
                "trigger": {"data_change": {"every": "60s"}},
            }
            for index in range(number * per_catalog, min(datasets, (number + 1) * per_catalog))
        }
        raw: dict[str, object] = {"datasets": entries}
        if number == 0:
            raw["datastores"] = {"landing": {"kind": "local", "root": "landing"}}
        raws.append(raw)
    return raws


def land(root: Path, datasets: int) -> None:
    for index in range(datasets):
        folder = root / "tables" / f"{index:05d}"
        folder.mkdir(parents=True)
        for part in range(FILES_PER_DATASET):
            (folder / f"part-{part}.csv").write_text(f"id,value\n{part},{index}\n")


def bare_listing(root: Path, datasets: int) -> int:
    """What a hand-written poller does: each dataset's files, with their size and time."""
    seen = 0
    for index in range(datasets):
        for path in sorted((root / "tables" / f"{index:05d}").glob("*.csv")):
            stat = path.stat()
            seen += bool(stat.st_size or stat.st_mtime)
    return seen


def tick_all(
    defs: dg.Definitions, sensors: list[str], cursors: dict[str, str | None]
) -> tuple[float, float, int]:
    """Every sensor ticked once from its cursor; (total s, slowest s, runs asked)."""
    instance = dg.DagsterInstance.ephemeral()
    total, slowest, runs = 0.0, 0.0, 0
    for name in sensors:
        started = time.perf_counter()
        with dg.build_sensor_context(
            instance=instance,
            cursor=cursors[name],
            definitions=defs,
            resources=dict(defs.resources or {}),
        ) as context:
            result = defs.resolve_sensor_def(name).evaluate_tick(context)
        elapsed = time.perf_counter() - started
        total, slowest = total + elapsed, max(slowest, elapsed)
        runs += len(result.run_requests or [])
        cursors[name] = result.cursor
    return total, slowest, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--catalogs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    os.environ["INGESTION_HOME"] = str(work)
    try:
        started = time.perf_counter()
        defs = catalog_definitions(*project(args.datasets, args.catalogs))
        built = time.perf_counter() - started
        print(f"definitions of {args.datasets:,} datasets built in {built:.1f} s")
        store = defs.resources["landing"]  # type: ignore[index]
        root = Path(store.root)
        land(root, args.datasets)
        sensors = sorted(sensor.name for sensor in defs.sensors or [])
        print(f"{len(sensors)} sensors; {args.datasets * FILES_PER_DATASET:,} files under {root}")
        cursors: dict[str, str | None] = dict.fromkeys(sensors)
        seed, _, seeded = tick_all(defs, sensors, cursors)
        print(f"first ticks (every dataset new): {seed:.2f} s, {seeded:,} runs asked")

        per_catalog = -(-args.datasets // args.catalogs)
        best_bare, best_total, best_slowest, runs_seen = float("inf"), float("inf"), 0.0, []
        for repeat in range(args.repeats):
            started = time.perf_counter()
            bare_listing(root, args.datasets)
            best_bare = min(best_bare, time.perf_counter() - started)
            for number in range(args.catalogs):  # one changed file in one dataset per catalog
                index = number * per_catalog
                if index < args.datasets:
                    changed = root / "tables" / f"{index:05d}" / "part-0.csv"
                    changed.write_text(f"id,value\n0,{repeat}\nchanged,{repeat}\n")
            total, slowest, runs = tick_all(defs, sensors, cursors)
            runs_seen.append(runs)
            if total < best_total:
                best_total, best_slowest = total, slowest
        print()
        print(f"bare listing of {args.datasets:,} datasets: {best_bare * 1000:,.0f} ms")
        print(
            f"all {len(sensors)} sensor ticks: {best_total * 1000:,.0f} ms "
            f"({best_total / best_bare:.2f}x), slowest tick {best_slowest * 1000:,.0f} ms; "
            f"runs asked per round: {runs_seen} (expected {min(args.catalogs, args.datasets)})"
        )
        per_dataset = best_total / args.datasets
        print(
            f"per dataset per interval: {per_dataset * 1000:.2f} ms, so one daemon ticking these "
            f"sensors serially spends 30 s of each 60 s interval at about "
            f"{int(30 / per_dataset):,} datasets"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
