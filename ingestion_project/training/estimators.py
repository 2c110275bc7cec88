"""Build and evaluate scikit-learn pipelines from a model declaration."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ingestion_project.catalog.spec import ModelSpec

HIGHER_IS_BETTER = {"r2": True, "mae": False, "rmse": False}


class TrainingError(Exception):
    """Training could not start or finish; the message says what to change."""


@dataclass(frozen=True)
class TrainedModel:
    """A fitted pipeline with its holdout metrics and the holdout itself for comparisons."""

    pipeline: Any
    metrics: dict[str, float]
    train_rows: int
    holdout: pd.DataFrame


def build_pipeline(spec: ModelSpec) -> Any:
    """One-hot encode the categorical features, pass numeric ones through, then the regressor."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    numeric = [column for column in spec.features if column not in spec.categorical]
    encoder = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), list(spec.categorical)),
            ("numeric", "passthrough", numeric),
        ]
    )
    params = dict(spec.estimator.params)
    regressors = {
        "random_forest": lambda: RandomForestRegressor(random_state=0, n_jobs=-1, **params),
        "gradient_boosting": lambda: GradientBoostingRegressor(random_state=0, **params),
        "ridge": lambda: Ridge(**params),
        "linear": lambda: LinearRegression(**params),
    }
    try:
        regressor = regressors[spec.estimator.kind]()
    except TypeError as error:
        raise TrainingError(
            f"estimator '{spec.estimator.kind}' rejected its params: {error}. Fix "
            "'estimator.params' in the model declaration."
        ) from None
    return Pipeline([("encode", encoder), ("regress", regressor)])


def require_columns(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise TrainingError(
            f"{what} lacks columns {missing} (it has: {', '.join(map(str, frame.columns))}). "
            "Fix the model's 'features'/'target' or the dataset."
        )


def train(frame: pd.DataFrame, spec: ModelSpec, what: str) -> TrainedModel:
    """Fit on the older rows and score on the newest ``holdout`` share: time-ordered, honest."""
    require_columns(frame, [*spec.features, spec.target], what)
    frame = frame.dropna(subset=[*spec.features, spec.target])
    cut = int(len(frame) * (1 - spec.holdout))
    if cut < 10 or len(frame) - cut < 5:
        raise TrainingError(
            f"{what} has only {len(frame)} usable rows: too few to train and hold out "
            f"{spec.holdout:.0%}. Add data or lower 'holdout'."
        )
    fit_rows, holdout = frame.iloc[:cut], frame.iloc[cut:]
    pipeline = build_pipeline(spec)
    pipeline.fit(fit_rows[spec.features], fit_rows[spec.target])
    return TrainedModel(pipeline, evaluate(pipeline, holdout, spec), cut, holdout)


def evaluate(pipeline: Any, frame: pd.DataFrame, spec: ModelSpec) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    actual = frame[spec.target]
    predicted = pipeline.predict(frame[spec.features])
    return {
        "r2": round(float(r2_score(actual, predicted)), 4),
        "mae": round(float(mean_absolute_error(actual, predicted)), 4),
        "rmse": round(math.sqrt(float(mean_squared_error(actual, predicted))), 4),
    }


def is_better(metric: str, challenger: dict[str, float], champion: dict[str, float]) -> bool:
    """Whether the challenger beats the champion on the declared metric (ties keep the champion)."""
    if HIGHER_IS_BETTER[metric]:
        return challenger[metric] > champion[metric]
    return challenger[metric] < champion[metric]
