"""The demo's real bikeshare months (2011, hourly) and model declarations over them."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ingestion_project.catalog.spec import ModelSpec
from ingestion_project.demo.loop import DEMO_DATA

FEATURES = ["hr", "weekday", "workingday", "holiday", "weathersit", "temp", "atemp", "hum"]
DRIFTING = ["temp", "atemp", "hum", "windspeed", "weathersit"]


def months(*numbers: int) -> pd.DataFrame:
    """The rows of the given months of 2011, in time order, with a fresh index."""
    return pd.concat(
        [pd.read_csv(DEMO_DATA / f"2011-{month:02d}.csv") for month in numbers],
        ignore_index=True,
    )


def busy_hours(**overrides: Any) -> ModelSpec:
    """A classifier of busy hours (more than 300 rentals), as the demo declares it."""
    declaration: dict[str, Any] = {
        "train_on": "history",
        "target": "bikers",
        "positive_above": 300,
        "features": FEATURES,
        "categorical": ["weathersit"],
        "estimator": {"kind": "hist_gradient_boosting"},
        "promotion": {"window_days": 30},
    }
    declaration.update(overrides)
    return ModelSpec.model_validate(declaration)


def demand(**overrides: Any) -> ModelSpec:
    """A regressor of hourly rentals."""
    declaration: dict[str, Any] = {
        "train_on": "history",
        "target": "bikers",
        "features": FEATURES,
        "categorical": ["weathersit"],
        "estimator": {"kind": "ridge"},
        "promotion": {"window_days": 30},
    }
    declaration.update(overrides)
    return ModelSpec.model_validate(declaration)
