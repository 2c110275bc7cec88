"""What one daemon's sensor work costs for a project of many datasets, against a bare listing.

A project of ``--datasets`` datasets (10 small CSV files each, in a local datastore) is declared
in ``--catalogs`` catalog folders, each dataset with a data-change trigger every 60 s: one sensor
per catalog. Every sensor's tick is evaluated in this process as Dagster's code server evaluates
it (the instance's ref, only the resources the sensor declares, the cursor read and written),
once to seed the cursors and then with one file changed in one dataset per catalog. The project
is built twice over the same files: as the catalog builds it (each sensor given the Definitions'
datastore objects: now) and with the sensors declaring their datastores as resources (before:
Dagster then opens the instance on every tick to build them); each round ticks both fleets, in
an order that flips each round. The baseline is the bare listing the ticks rest on: a ``glob`` +
``stat`` of every dataset's files, in the same run. The daemon runs a project's sensors one after
another by default, so the sum of the ticks is what one interval costs it.

Run: .venv/bin/python benchmarks/sensor_fleet.py [--datasets 1000] [--catalogs 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingestion_project.catalog import definitions as catalog_module
from ingestion_project.triggers.data_change import build_data_change_sensors
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


@contextmanager
def stores_declared() -> Iterator[None]:
    """Definitions built meanwhile have data-change sensors that declare their datastores."""

    def declaring(*args: Any, **kwargs: Any) -> list[dg.SensorDefinition]:
        return build_data_change_sensors(*args[:3], **kwargs, datastores=None)

    with mock.patch.object(catalog_module, "build_data_change_sensors", declaring):
        yield


def sensor_names(defs: dg.Definitions) -> list[str]:
    return sorted(sensor.name for sensor in defs.sensors or [])


@dataclass
class Fleet:
    """One project's sensors, their cursors, and the best round seen."""

    label: str
    defs: dg.Definitions
    sensors: list[str]
    cursors: dict[str, str | None] = field(default_factory=dict)
    best_total: float = float("inf")
    best_slowest: float = 0.0
    runs_seen: list[int] = field(default_factory=list)

    def tick_all(self, instance_ref: Any) -> tuple[float, float, int]:
        """Every sensor ticked once from its cursor; (total s, slowest s, runs asked)."""
        resources = self.defs.resources or {}
        total, slowest, runs = 0.0, 0.0, 0
        for name in self.sensors:
            started = time.perf_counter()
            sensor = self.defs.resolve_sensor_def(name)
            declared = {key: resources[key] for key in sensor.required_resource_keys}
            with dg.build_sensor_context(
                instance_ref=instance_ref,
                cursor=self.cursors.get(name),
                definitions=self.defs,
                resources=declared,
            ) as context:
                result = sensor.evaluate_tick(context)
            elapsed = time.perf_counter() - started
            total, slowest = total + elapsed, max(slowest, elapsed)
            runs += len(result.run_requests or [])
            self.cursors[name] = result.cursor
        return total, slowest, runs

    def round(self, instance_ref: Any) -> None:
        total, slowest, runs = self.tick_all(instance_ref)
        self.runs_seen.append(runs)
        if total < self.best_total:
            self.best_total, self.best_slowest = total, slowest


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--catalogs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    os.environ["INGESTION_HOME"] = str(work / "given")
    try:
        started = time.perf_counter()
        raws = project(args.datasets, args.catalogs)
        given = catalog_definitions(*raws)
        built = time.perf_counter() - started
        print(f"definitions of {args.datasets:,} datasets built in {built:.1f} s")
        fleets = [Fleet("stores given to the sensors (now)", given, sensor_names(given))]
        # Its own home: equal catalogs in the same home would reuse the definitions above.
        os.environ["INGESTION_HOME"] = str(work / "declared")
        with stores_declared():
            declared = catalog_definitions(*raws)
        fleets.append(Fleet("stores declared as resources (before)", declared, fleets[0].sensors))
        roots = [Path(fleet.defs.resources["landing"].root) for fleet in fleets]  # type: ignore[index]
        assert roots[0] != roots[1]
        for root in roots:
            land(root, args.datasets)
        root, sensors = roots[0], fleets[0].sensors
        assert not any(given.resolve_sensor_def(name).required_resource_keys for name in sensors)
        assert all(declared.resolve_sensor_def(name).required_resource_keys for name in sensors)
        files = args.datasets * FILES_PER_DATASET
        print(f"{len(sensors)} sensors; {files:,} files in each of {roots[0]} and {roots[1]}")
        with (
            tempfile.TemporaryDirectory() as home,
            dg.DagsterInstance.local_temp(home) as instance,
        ):
            ref = instance.get_ref()
            for fleet in fleets:
                seed, _, seeded = fleet.tick_all(ref)
                print(f"first ticks, {fleet.label}: {seed:.2f} s, {seeded:,} runs asked")

            per_catalog = -(-args.datasets // args.catalogs)
            best_bare = float("inf")
            for repeat in range(args.repeats):
                started = time.perf_counter()
                bare_listing(root, args.datasets)
                best_bare = min(best_bare, time.perf_counter() - started)
                for number in range(args.catalogs):  # one changed file in one dataset per catalog
                    index = number * per_catalog
                    if index < args.datasets:
                        for landing in roots:
                            changed = landing / "tables" / f"{index:05d}" / "part-0.csv"
                            changed.write_text(f"id,value\n0,{repeat}\nchanged,{repeat}\n")
                for fleet in fleets if repeat % 2 == 0 else fleets[::-1]:
                    fleet.round(ref)
        print()
        print(f"bare listing of {args.datasets:,} datasets: {best_bare * 1000:,.0f} ms")
        for fleet in fleets:
            per_dataset = fleet.best_total / args.datasets
            print(
                f"{fleet.label}: all {len(sensors)} sensor ticks {fleet.best_total * 1000:,.0f} ms "
                f"({fleet.best_total / best_bare:.2f}x), slowest tick "
                f"{fleet.best_slowest * 1000:,.0f} ms; runs asked per round: {fleet.runs_seen} "
                f"(expected {min(args.catalogs, args.datasets)}); per dataset per interval "
                f"{per_dataset * 1000:.3f} ms, so 30 s of each 60 s interval at about "
                f"{int(30 / per_dataset):,} datasets"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
