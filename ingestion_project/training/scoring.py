"""Score a dataset version with a model version and keep the predictions as model-output data."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

from ingestion_project.catalog.spec import ModelSpec
from ingestion_project.datastores.base import FileDatastore
from ingestion_project.records import DatasetVersionRecord, ModelVersionRecord
from ingestion_project.training.estimators import (
    PREDICTION,
    PROBABILITY,
    evaluate,
    predict,
    require_columns,
)

__all__ = ["PREDICTION", "PROBABILITY", "live_metrics", "predictions_path", "score"]


def predictions_path(
    folder: str, model_record: ModelVersionRecord, dataset_record: DatasetVersionRecord
) -> str:
    """One immutable file per (model version, data version): scoring twice changes nothing."""
    return (
        f"{folder.strip('/')}/{model_record.model}/model_v{model_record.version}"
        f"__{dataset_record.dataset}_v{dataset_record.version}.parquet"
    )


def score(pipeline: Any, frame: pd.DataFrame, spec: ModelSpec, what: str) -> pd.DataFrame:
    """The rows with the model's prediction (and, for classifiers, the probability) added."""
    require_columns(frame, list(spec.features), what)
    predicted = predict(pipeline, frame, spec)
    scored = frame.copy()
    for column in predicted.columns:
        scored[column] = predicted[column]
    return scored


def live_metrics(scored: pd.DataFrame, pipeline: Any, spec: ModelSpec) -> dict[str, float] | None:
    """Metrics against actuals when the scored data already carries them (labels arrived)."""
    if spec.target not in scored.columns or bool(scored[spec.target].isna().all()):
        return None
    return evaluate(pipeline, scored.dropna(subset=[spec.target]), spec)


def write_predictions(store: FileDatastore, path: str, scored: pd.DataFrame) -> bool:
    """Write once; returns False when this exact scoring already exists."""
    if store.exists(path):
        return False
    buffer = io.BytesIO()
    scored.to_parquet(buffer, index=False)
    try:
        store.write_bytes(path, buffer.getvalue(), overwrite=False)
    except FileExistsError:
        return False
    return True


def read_predictions(store: FileDatastore, path: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(store.read_bytes(path)))
