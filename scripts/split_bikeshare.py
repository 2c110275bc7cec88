"""Split the Capital Bikeshare 2011 hourly data into the monthly files the demo lets arrive.

Run from the repository root:
    python scripts/split_bikeshare.py ../shared/data/bikeshare_2011_hourly.csv
Adds a `timestamp` column (2011-01-01 + day-of-year + hour) because the source's month labels are
inconsistent ("Jan", "March", "Sept") and a real timestamp is what a dataset monitor windows on.
"""

import sys
from pathlib import Path

import pandas as pd

OUT = Path("ingestion_project/demo/data/bikeshare")


def main(source: str) -> None:
    """Write one CSV per calendar month of ``source``."""
    frame = pd.read_csv(source)
    stamp = pd.Timestamp("2011-01-01") + pd.to_timedelta(frame["day"] - 1, unit="D")
    frame.insert(0, "timestamp", stamp + pd.to_timedelta(frame["hr"].astype(int), unit="h"))
    OUT.mkdir(parents=True, exist_ok=True)
    for month, rows in frame.groupby(frame["timestamp"].dt.month):
        rows.to_csv(OUT / f"2011-{month:02d}.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S")


if __name__ == "__main__":
    main(sys.argv[1])
