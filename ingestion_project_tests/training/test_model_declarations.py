"""Model declarations end to end: a catalog, real months in a local store, `materialize()`.

Missing values by declaration (rows left out are counted and shown, too many fail the run and
register nothing), and ``train_window`` by days or by versions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.training.registry import ModelRegistry
from ingestion_project_tests.catalogs import (
    catalog_definitions,
    materialization_metadata,
    materialize,
)
from ingestion_project_tests.training.bikeshare import FEATURES, months


def catalog(**model: Any) -> dict[str, Any]:
    return {
        "datasets": {"history": {"path": "history/*.csv", "timestamp_column": "timestamp"}},
        "models": {
            "busy": {
                "train_on": "history",
                "target": "bikers",
                "positive_above": 300,
                "features": FEATURES,
                "categorical": ["weathersit"],
                "estimator": {"kind": "hist_gradient_boosting"},
                "promotion": {"window_days": 14},
                **model,
            }
        },
    }


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    root = tmp_path / "datastores" / "workspace_default"
    (root / "history").mkdir(parents=True)
    return root


def arrive(store: Path, month: int, gaps: float = 0.0) -> pd.DataFrame:
    """Write one month into the history, ``gaps`` of its humidity readings missing."""
    rows = months(month)
    if gaps:
        missing = np.random.default_rng(month).random(len(rows)) < gaps
        rows = rows.assign(hum=rows["hum"].mask(missing))
    rows.to_csv(store / "history" / f"2011-{month:02d}.csv", index=False)
    return rows


def train(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return materialize(defs, "history", "busy", instance=instance, raise_on_error=False)


def registry(store: Path) -> ModelRegistry:
    return ModelRegistry(LocalDatastore(name="workspace_default", root=str(store)), "_registry")


def test_rows_with_missing_features_are_dropped_counted_and_shown(store: Path) -> None:
    written = [arrive(store, month, gaps=0.1) for month in (3, 4)]
    defs = catalog_definitions(catalog(missing={"strategy": "drop", "max_dropped_share": 0.2}))

    result = train(defs, dg.DagsterInstance.ephemeral())

    assert result.success
    meta = materialization_metadata(result, "busy")
    gaps = sum(int(frame["hum"].isna().sum()) for frame in written)
    total = sum(len(frame) for frame in written)
    assert meta["dropped_rows"] == gaps
    assert meta["rows_left_out"] == (
        f"{gaps:,} of {total:,} rows dropped ({gaps:,} with a missing feature)"
    )
    record = registry(store).versions.get("busy", 1)
    assert record.dropped is not None and record.dropped.missing_features == gaps
    assert record.train_rows + record.holdout_rows == total - gaps


def test_dropping_more_than_declared_fails_the_run_and_registers_nothing(store: Path) -> None:
    for month in (3, 4):
        arrive(store, month, gaps=0.3)
    defs = catalog_definitions(catalog(missing={"strategy": "drop", "max_dropped_share": 0.05}))

    result = train(defs, dg.DagsterInstance.ephemeral())

    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert "more than missing.max_dropped_share (5.0%)" in message
    assert "use missing.strategy 'impute'" in message
    assert registry(store).versions.version_numbers("busy") == []


def test_native_missing_values_keep_every_row(store: Path) -> None:
    written = [arrive(store, month, gaps=0.3) for month in (3, 4)]
    defs = catalog_definitions(catalog(missing={"strategy": "native"}))

    result = train(defs, dg.DagsterInstance.ephemeral())

    assert result.success
    meta = materialization_metadata(result, "busy")
    assert meta["dropped_rows"] == 0
    assert meta["train_rows"] + meta["holdout_rows"] == sum(len(frame) for frame in written)
    assert meta["task"] == "classification" and 0.5 < meta["holdout_auc"] <= 1


def test_train_window_of_versions_learns_only_the_newest_versions(store: Path) -> None:
    defs = catalog_definitions(catalog(train_window={"versions": 2}))
    instance = dg.DagsterInstance.ephemeral()
    for month in (3, 4, 5):
        arrive(store, month)
        assert train(defs, instance).success

    newest = registry(store).versions.get("busy", 3)

    assert newest.lineage.trained_on.version == 3
    assert newest.train_rows + newest.holdout_rows == len(months(4, 5))


def test_train_window_of_days_learns_only_the_last_days(store: Path) -> None:
    for month in (3, 4, 5):
        arrive(store, month)
    defs = catalog_definitions(catalog(train_window={"days": 45}))

    result = train(defs, dg.DagsterInstance.ephemeral())

    assert result.success
    record = registry(store).versions.get("busy", 1)
    stamps = pd.to_datetime(months(3, 4, 5)["timestamp"])
    expected = int((stamps > stamps.max() - pd.Timedelta(days=45)).sum())
    assert record.train_rows + record.holdout_rows == expected
