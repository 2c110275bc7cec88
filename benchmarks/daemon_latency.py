"""Latency under the real daemon: a file lands on Azurite, how long until its version exists.

A project whose catalog watches one Azurite container twice: `trips` by storage events (an
Azurite queue, the event queued as Event Grid queues it) and `weather` by polling (a
data-change trigger). Both tick every `--every` seconds. The daemon runs with the repository's
SQLite `dagster.yaml` settings. Each round lands one file per dataset and times landing ->
version registered. The goal is at most two tick intervals.

Run: .venv/bin/python benchmarks/daemon_latency.py [--every 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from ingestion_project.triggers.data_change import data_change_sensor_name
from ingestion_project.triggers.storage_events import storage_events_sensor_name
from ingestion_project_tests.azurite import running_azurite
from ingestion_project_tests.catalogs import write_project
from ingestion_project_tests.eventgrid import KEY_VARIABLE, Lake, blob_event

PACKAGE = "latency_project"
BIN = Path(sys.executable).parent


def version_file(home: Path, dataset: str, version: int) -> Path:
    registry = home / "datastores" / "workspace_default" / "_registry" / "datasets"
    return registry / dataset / f"v{version:06d}.json"


def wait(paths: dict[str, Path], limit: float) -> dict[str, float | None]:
    """Seconds until each path exists (None if not within ``limit``), watched together."""
    started, found = time.monotonic(), dict.fromkeys(paths, None)
    while time.monotonic() - started < limit and None in found.values():
        for name, path in paths.items():
            if found[name] is None and path.is_file():
                found[name] = time.monotonic() - started
        time.sleep(0.2)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=10, help="tick interval, seconds")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        (base / "blob").mkdir()
        (base / "queue").mkdir()
        with (
            running_azurite(base / "blob") as blob,
            running_azurite(base / "queue", "queue") as queue,
        ):
            run(base, Lake(blob, queue), blob.account_key, args.every, args.rounds)


def run(base: Path, lake: Lake, key: str, every: int, rounds: int) -> None:
    lake.events["every"] = f"{every}s"
    catalog: dict[str, Any] = lake.catalog()
    catalog["datasets"]["weather"] = {
        "datastore": "lake",
        "path": "weather/*.csv",
        "trigger": {"data_change": {"every": f"{every}s"}},
    }
    root = write_project(base / "project", {"catalog": catalog}, package=PACKAGE)
    location = {
        "module_name": f"{PACKAGE}.definitions",
        "working_directory": str(root),
        "location_name": PACKAGE,
    }
    (root / "workspace.yaml").write_text(
        yaml.safe_dump({"load_from": [{"python_module": location}]})
    )
    home = base / "ingestion"
    dagster_home = base / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "INGESTION_HOME": str(home),
        KEY_VARIABLE: key,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    for name in (
        storage_events_sensor_name("catalog", "lake", lake.queue_name),
        data_change_sensor_name("catalog", f"{every}s"),
    ):
        subprocess.run(
            [str(BIN / "dagster"), "sensor", "start", name, "-w", "workspace.yaml"],
            cwd=root,
            env=env,
            check=True,
            capture_output=True,
        )
    log = (base / "daemon.log").open("wb")
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        print(f"Daemon started; sensors tick every {every} s. Waiting for the first ticks…")
        time.sleep(every + 15)
        events, polling = [], []
        for number in range(1, rounds + 1):
            lake.land(f"trips/{number}.csv")
            lake.land(f"weather/{number}.csv")
            lake.send(blob_event("Created", lake.container, f"trips/{number}.csv", number))
            waited = wait(
                {name: version_file(home, name, number) for name in ("trips", "weather")},
                6 * every + 60,
            )
            events.append(waited["trips"])
            polling.append(waited["weather"])
            print(
                f"round {number}: storage events {_seconds(events[-1])}, "
                f"polling {_seconds(polling[-1])} (tick interval {every} s)"
            )
        for label, values in (("storage events", events), ("polling", polling)):
            done = [value for value in values if value is not None]
            if done:
                mean = sum(done) / len(done)
                print(
                    f"{label}: landing -> version in {min(done):.1f}-{max(done):.1f} s, mean "
                    f"{mean:.1f} s = {mean / every:.2f} tick intervals (goal at most 2)"
                )
    finally:
        import signal

        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
        log.close()


def _seconds(value: float | None) -> str:
    return "not registered" if value is None else f"{value:.1f} s"


if __name__ == "__main__":
    main()
