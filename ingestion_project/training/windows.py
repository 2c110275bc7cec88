"""Which rows a model learns from, and the newest labelled window it is judged on.

Under drift the distant past can hurt: ``train_window`` keeps the last days (by the dataset's
timestamp column) or the rows of the last versions. Challenger and champion are compared on the
newest labelled window, which the challenger has not learnt from, so the comparison says how
each does on the data closest to what comes next.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ingestion_project.catalog.spec import ModelSpec
from ingestion_project.training.estimators import TrainingError


@dataclass(frozen=True)
class WindowSplit:
    """Rows to learn from and the newest window to judge on, and how the window was chosen."""

    learn: pd.DataFrame
    window: pd.DataFrame
    description: str


def within_days(
    frame: pd.DataFrame, timestamp_column: str | None, days: int, what: str
) -> pd.DataFrame:
    """The rows of the last ``days`` days before the newest timestamp."""
    return frame.loc[_recent(frame, timestamp_column, days, what)]


def _recent(frame: pd.DataFrame, timestamp_column: str | None, days: int, what: str) -> pd.Series:
    if not timestamp_column or timestamp_column not in frame.columns:
        raise TrainingError(
            f"{what}: a window in days needs the dataset's 'timestamp_column'. Declare it on the "
            "dataset, or use train_window.versions / promotion without window_days."
        )
    stamps = pd.to_datetime(frame[timestamp_column], errors="coerce", utc=True)
    newest = stamps.max()
    if pd.isna(newest):
        raise TrainingError(f"{what}: column '{timestamp_column}' holds no timestamps.")
    return pd.Series(stamps > newest - pd.Timedelta(days=days), index=frame.index)


def split_newest_window(
    frame: pd.DataFrame, spec: ModelSpec, timestamp_column: str | None, what: str
) -> WindowSplit:
    """The newest labelled window (last ``window_days``, else the newest ``holdout`` share)."""
    ordered = frame
    if timestamp_column and timestamp_column in frame.columns:
        stamps = pd.to_datetime(frame[timestamp_column], errors="coerce", utc=True)
        ordered = frame.assign(_stamp=stamps).sort_values("_stamp", kind="stable")
        ordered = ordered.drop(columns="_stamp")
    days = spec.promotion.window_days
    if days is not None:
        recent = _recent(ordered, timestamp_column, days, what).to_numpy()
        window, learn = ordered.loc[recent], ordered.loc[~recent]
        description = f"the last {days} days ({len(window):,} rows)"
    else:
        cut = int(len(ordered) * (1 - spec.holdout))
        learn, window = ordered.iloc[:cut], ordered.iloc[cut:]
        description = f"the newest {spec.holdout:.0%} of rows ({len(window):,} rows)"
    if len(learn) < 10 or len(window) < 5:
        raise TrainingError(
            f"{what} has {len(learn)} rows to learn from and {len(window)} in the newest window: "
            "too few. Add data, widen train_window, or change promotion.window_days/holdout."
        )
    return WindowSplit(learn, window, description)
