"""How long a code location takes to load with 1,000 declared datasets, against the demo's.

Two Dagster projects are written to a temp dir: one holding the demo catalog (two datasets, a
model, a monitor), one holding 1,000 datasets spread over 10 catalog folders, each dataset with
a data-change trigger and a check. Each is loaded the way the webserver and daemon load it,
`dagster definitions validate`, in a fresh process, best of ``--repeats``. The ratio
(1,000 datasets / demo) is the figure; both include the same fixed cost of starting Python and
importing Dagster, which the script also prints (``python -c "import dagster"``).

Run: .venv/bin/python benchmarks/load_catalog.py [--datasets 1000] [--repeats 3] [--profile]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingestion_project_tests.catalogs import write_project

ROOT = Path(__file__).resolve().parent.parent
DEMO_CATALOG = ROOT / "ingestion_project" / "defs" / "catalog" / "defs.yaml"
BIN = Path(sys.executable).parent


def many_datasets(count: int, folders: int) -> dict[str, object]:
    per_folder = -(-count // folders)
    catalogs: dict[str, object] = {
        "stores": {"datastores": {"landing": {"kind": "local", "root": "landing"}}}
    }
    for folder in range(folders):
        datasets = {}
        for index in range(folder * per_folder, min(count, (folder + 1) * per_folder)):
            datasets[f"table_{index:04d}"] = {
                "datastore": "landing",
                "path": f"tables/{index:04d}/*.csv",
                "timestamp_column": "ts",
                "checks": [{"not_null": ["id"]}],
                "trigger": {"data_change": {"every": "60s"}},
            }
        catalogs[f"team_{folder:02d}"] = {"datasets": datasets}
    return catalogs


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    return elapsed


def best(command: list[str], cwd: Path, env: dict[str, str], repeats: int) -> float:
    return min(timed(command, cwd, env) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--folders", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="pyinstrument-free cProfile top 25")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        demo = write_project(work / "demo", {"catalog": DEMO_CATALOG.read_text()})
        many = write_project(work / "many", many_datasets(args.datasets, args.folders))
        env = {
            **os.environ,
            "INGESTION_HOME": str(work / "home"),
            "DAGSTER_HOME": str(work / "dagster"),
            "PYTHONPATH": os.pathsep.join([str(demo), str(many)]),
        }
        (work / "dagster").mkdir()
        (work / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

        def validate(project: Path) -> list[str]:
            module = next(project.glob("*/definitions.py")).parent.name
            return [str(BIN / "dagster"), "definitions", "validate", "-m", f"{module}.definitions"]

        python = best([str(BIN / "python"), "-c", "import dagster"], work, env, args.repeats)
        base = best(validate(demo), demo, env, args.repeats)
        ours = best(validate(many), many, env, args.repeats)
        print(f"python + import dagster:             {python:6.2f} s")
        print(f"demo catalog (2 datasets):           {base:6.2f} s")
        print(f"{args.datasets:,} datasets in {args.folders} catalogs:     {ours:6.2f} s")
        print(f"ratio {args.datasets:,} datasets / demo: {ours / base:.2f}x (goal <= 2x)")
        if args.profile:
            module = next(many.glob("*/definitions.py")).parent.name
            subprocess.run(
                [
                    str(BIN / "python"),
                    "-c",
                    "import cProfile, pstats, importlib; "
                    f"m = importlib.import_module('{module}.definitions'); "
                    "cProfile.run('m.defs().resolve_asset_graph(); "
                    "[j for j in m.defs().resolve_all_job_defs()]', '/tmp/load.prof'); "
                    "pstats.Stats('/tmp/load.prof').sort_stats('cumulative').print_stats(25)",
                ],
                cwd=many,
                env=env,
                check=False,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
