"""The drift engine on 1,000,000 rows x (20 numeric + 4 categorical) columns a side.

In the same run, on the same data (a baseline and a target; a third of the columns shifted):

- ours: the baseline summarized once and stored (timed apart, as a monitor does it once per
  baseline), then one monitor run: the stored summary read back and ``measure_drift`` over the
  target frame. Goal: at most 5 s a run on this machine.
- ours streaming the target from a Parquet file a row group at a time, with the peak of traced
  memory beside the size of the target in memory (memory stays bounded by one batch).
- a plain scipy loop: ``ks_2samp`` per numeric column and ``chi2_contingency`` per categorical.
- evidently's default ``DataDriftPreset`` (the previous monitor), on ``--evidently-rows`` rows a
  side (all of them by default); extrapolated linearly to the full size when fewer.

Run: .venv/bin/python benchmarks/drift_engine.py [--rows 1000000] [--evidently-rows N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ingestion_project.drift.engine import DriftReport, measure_drift
from ingestion_project.drift.summaries import BaselineSummary, summarize

NUMERIC = [f"n{index:02d}" for index in range(20)]
CATEGORICAL = [f"c{index}" for index in range(4)]
COLUMNS = NUMERIC + CATEGORICAL
SHIFTED = {"n00", "n03", "n06", "n09", "n12", "n15", "n18", "c0"}


def table(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    """Mixed shapes: normal, lognormal, integer and uniform columns; 3 to 40 categories."""
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {}
    for index, name in enumerate(NUMERIC):
        shift = 0.05 if shifted and name in SHIFTED else 0.0
        match index % 4:
            case 0:
                data[name] = rng.normal(shift, 1.0, rows)
            case 1:
                data[name] = rng.lognormal(shift, 0.7, rows)
            case 2:
                data[name] = rng.poisson(5.0 + 10 * shift, rows).astype(np.float64)
            case _:
                data[name] = rng.uniform(shift, 1.0 + shift, rows)
    for index, name in enumerate(CATEGORICAL):
        categories = np.array([f"{name}_{k}" for k in range(3 + 12 * index)])
        weights = np.linspace(1.0, 2.0, len(categories))
        if shifted and name in SHIFTED:
            weights[0] *= 1.1
        data[name] = rng.choice(categories, rows, p=weights / weights.sum())
    return pd.DataFrame(data)


def ours(baseline: pd.DataFrame, target: pd.DataFrame) -> tuple[float, float, DriftReport]:
    started = time.perf_counter()
    stored = summarize(baseline, COLUMNS).to_bytes()
    summarized = time.perf_counter() - started
    started = time.perf_counter()
    report = measure_drift(BaselineSummary.from_bytes(stored), target)
    return summarized, time.perf_counter() - started, report


def streamed(summary: BaselineSummary, path: Path) -> tuple[float, float]:
    """Seconds and peak traced MB of a run reading the target a row group at a time."""
    parquet = pq.ParquetFile(path)
    tracemalloc.start()
    started = time.perf_counter()
    measure_drift(summary, parquet.iter_batches(batch_size=1 << 17, columns=COLUMNS))
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return elapsed, peak / 1e6


def scipy_loop(baseline: pd.DataFrame, target: pd.DataFrame) -> tuple[float, set[str]]:
    from scipy import stats

    drifted = set()
    started = time.perf_counter()
    for name in NUMERIC:
        if stats.ks_2samp(baseline[name], target[name], method="asymp").pvalue < 0.05:
            drifted.add(name)
    for name in CATEGORICAL:
        counts = pd.concat([baseline[name].value_counts(), target[name].value_counts()], axis=1)
        if stats.chi2_contingency(counts.fillna(0).to_numpy().T)[1] < 0.05:
            drifted.add(name)
    return time.perf_counter() - started, drifted


def evidently_preset(baseline: pd.DataFrame, target: pd.DataFrame) -> float:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    started = time.perf_counter()
    reference = Dataset.from_pandas(baseline, data_definition=definition)
    current = Dataset.from_pandas(target, data_definition=definition)
    Report([DataDriftPreset()]).run(current, reference)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description="The drift engine against scipy and evidently.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--evidently-rows", type=int, default=None)
    args = parser.parse_args()
    rows, evidently_rows = args.rows, min(args.evidently_rows or args.rows, args.rows)
    print(f"Load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())} (2 cores)")
    print(f"Making {rows:,} rows x {len(NUMERIC)} numeric + {len(CATEGORICAL)} categorical a side…")
    baseline, target = table(rows, 0, False), table(rows, 1, True)
    in_memory = target.memory_usage(deep=True).sum() / 1e6

    summarized, run, report = ours(baseline, target)
    print(
        f"ours: baseline summarized once and stored in {summarized:.2f} s; a monitor run "
        f"(stored summary read back, target measured) in {run:.2f} s "
        f"({'within' if run <= 5 else 'over'} the 5 s goal)."
    )
    print(
        f"      flagged {len(report.drifted)} of {len(COLUMNS)} features "
        f"({len(set(report.drifted) & SHIFTED)} of the {len(SHIFTED)} shifted, "
        f"{len(set(report.drifted) - SHIFTED)} unshifted; BH at 5 %)."
    )
    summary = summarize(baseline, COLUMNS)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "target.parquet"
        pq.write_table(
            pa.Table.from_pandas(target, preserve_index=False), path, row_group_size=1 << 17
        )
        seconds, peak = streamed(summary, path)
    print(
        f"ours streaming the target from Parquet: {seconds:.2f} s, peak traced memory "
        f"{peak:.0f} MB while the target takes {in_memory:.0f} MB in pandas."
    )

    plain, scipy_drifted = scipy_loop(baseline, target)
    print(
        f"scipy loop (ks_2samp + chi2_contingency, full samples): {plain:.2f} s; "
        f"ours / scipy = {run / plain:.2f}x; scipy at 5 % per test flags "
        f"{len(scipy_drifted & SHIFTED)} shifted and {len(scipy_drifted - SHIFTED)} unshifted."
    )

    import evidently  # noqa: F401  (its 5 s import stays out of the timing)

    sample = evidently_preset(baseline.head(evidently_rows), target.head(evidently_rows))
    full = sample * rows / evidently_rows
    label = (
        ""
        if evidently_rows == rows
        else f" on {evidently_rows:,} rows, ~{full:.0f} s at {rows:,} (extrapolated)"
    )
    print(
        f"evidently DataDriftPreset: {sample:.1f} s{label}; ours / evidently = {run / full:.3f}x "
        f"(evidently is {full / run:.0f}x slower)."
    )


if __name__ == "__main__":
    main()
