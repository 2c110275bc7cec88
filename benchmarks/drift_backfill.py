"""A year of daily drift windows backfilled on the demo data, against per-window baselines.

The demo's twelve months of 2011 (hourly rentals, 8,645 rows) are registered as one dataset
version; a monitor declared as the demo's `weather_daily` (daily windows, January as baseline,
six features) is backfilled over all 365 days in one run, as `dg launch --partition-range` or a
UI backfill with the single-run policy does: ours. In the same run, on the same windows:

- a plain scipy loop: per day, `ks_2samp` per numeric feature and `chi2_contingency` for the
  categorical one, against January (no Dagster, no records: the statistics alone);
- evidently's default `DataDriftPreset` per window, as the previous monitor ran, timed on
  ``--evidently-windows`` days and extrapolated to 365 (printed as such).

Run: .venv/bin/python benchmarks/drift_backfill.py [--evidently-windows 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dagster as dg
import pandas as pd

from ingestion_project.demo.loop import DEMO_DATA

FEATURES = ["temp", "atemp", "hum", "windspeed", "weathersit", "bikers"]
NUMERIC = [f for f in FEATURES if f != "weathersit"]
CATALOG = {
    "datasets": {"history": {"path": "history/*.csv", "timestamp_column": "timestamp"}},
    "monitors": {
        "daily": {
            "target": "history",
            "baseline": {"dataset": "history", "start": "2011-01-01", "end": "2011-02-01"},
            "frequency": "day",
            "start": "2011-01-01",
            "end": "2012-01-01",
            "features": FEATURES,
            "threshold": 0.5,
            "persist": 3,
        }
    },
}


def ours(home: Path) -> tuple[float, int]:
    from ingestion_project_tests.catalogs import catalog_definitions, materialize

    os.environ["INGESTION_HOME"] = str(home)
    folder = home / "datastores" / "workspace_default" / "history"
    folder.mkdir(parents=True)
    for month in range(1, 13):
        shutil.copy2(DEMO_DATA / f"2011-{month:02d}.csv", folder)
    defs = catalog_definitions(CATALOG)
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(defs, "history", instance=instance).success
    job = defs.resolve_job_def("monitor_daily")
    started = time.perf_counter()
    result = job.execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": "2011-01-01",
            "dagster/asset_partition_range_end": "2011-12-31",
        },
    )
    elapsed = time.perf_counter() - started
    assert result.success
    windows = len(instance.fetch_materializations(dg.AssetKey("daily"), limit=1000).records)
    return elapsed, windows


def days() -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    frame = pd.concat(
        [pd.read_csv(DEMO_DATA / f"2011-{m:02d}.csv") for m in range(1, 13)], ignore_index=True
    )
    stamps = pd.to_datetime(frame["timestamp"])
    january = pd.DataFrame(frame.loc[(stamps < "2011-02-01").to_numpy()])
    return january, [pd.DataFrame(rows) for _, rows in frame.groupby(stamps.dt.date) if len(rows)]


def scipy_loop(january: pd.DataFrame, windows: list[pd.DataFrame]) -> float:
    from scipy import stats

    started = time.perf_counter()
    for rows in windows:
        for column in NUMERIC:
            stats.ks_2samp(january[column], rows[column])
        counts = pd.concat(
            [january["weathersit"].value_counts(), rows["weathersit"].value_counts()], axis=1
        ).fillna(0)
        stats.chi2_contingency(counts.to_numpy().T + 0.5)
    return time.perf_counter() - started


def evidently_per_window(january: pd.DataFrame, windows: list[pd.DataFrame], count: int) -> float:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=["weathersit"])
    reference = Dataset.from_pandas(pd.DataFrame(january[FEATURES]), data_definition=definition)
    started = time.perf_counter()
    for rows in windows[:count]:
        current = Dataset.from_pandas(pd.DataFrame(rows[FEATURES]), data_definition=definition)
        Report([DataDriftPreset()]).run(current, reference)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description="A year of daily drift windows, backfilled.")
    parser.add_argument("--evidently-windows", type=int, default=10)
    args = parser.parse_args()
    print(f"Load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())} (2 cores)")
    with tempfile.TemporaryDirectory() as folder:
        elapsed, windows = ours(Path(folder))
    january, daily = days()
    print(
        f"ours: {windows} daily windows backfilled in one run in {elapsed:.1f} s "
        f"({elapsed / windows * 1000:.0f} ms a window, records and metadata included)."
    )
    plain = scipy_loop(january, daily)
    print(
        f"scipy loop (statistics only, no records): {len(daily)} windows in {plain:.2f} s; "
        f"ours / scipy = {elapsed / plain:.1f}x."
    )
    import evidently  # noqa: F401  (import cost kept out of the timing)

    sample = evidently_per_window(january, daily, args.evidently_windows)
    per_window = sample / args.evidently_windows
    year = per_window * len(daily)
    print(
        f"evidently DataDriftPreset: {args.evidently_windows} windows in {sample:.1f} s, "
        f"{per_window:.2f} s a window, about {year:.0f} s for {len(daily)} (extrapolated); "
        f"ours / evidently = {elapsed / year:.2f}x."
    )


if __name__ == "__main__":
    main()
