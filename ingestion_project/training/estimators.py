"""Build, fit and evaluate scikit-learn pipelines from a model declaration.

Regressors predict a number; classifiers (binary) predict the probability of the positive class
and the class at 0.5. Missing feature values are imputed, handed to an estimator that accepts
them, or the rows are dropped, as declared; every dropped row is counted, and too many fail
training with the count and the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ingestion_project.catalog.spec import HIGHER_IS_BETTER, ModelSpec

PREDICTION = "prediction"
PROBABILITY = "probability"


class TrainingError(Exception):
    """Training could not start or finish; the message says what to change."""


@dataclass(frozen=True)
class DroppedRows:
    """Rows left out of training, by reason, out of how many."""

    total: int
    missing_target: int = 0
    missing_features: int = 0

    @property
    def dropped(self) -> int:
        return self.missing_target + self.missing_features

    @property
    def share(self) -> float:
        return self.dropped / self.total if self.total else 0.0

    def describe(self) -> str:
        parts = []
        if self.missing_target:
            parts.append(f"{self.missing_target:,} without a target")
        if self.missing_features:
            parts.append(f"{self.missing_features:,} with a missing feature")
        if not parts:
            return f"none of {self.total:,} rows dropped"
        return f"{self.dropped:,} of {self.total:,} rows dropped ({', '.join(parts)})"


@dataclass(frozen=True)
class TrainingData:
    """Features and target ready to fit, and what was left out on the way."""

    features: pd.DataFrame
    target: pd.Series
    dropped: DroppedRows
    frame: pd.DataFrame = field(repr=False)


def target_values(frame: pd.DataFrame, spec: ModelSpec) -> pd.Series:
    """The target as the model learns it: a number, or 0/1 for a classifier (missing kept)."""
    target = pd.Series(frame[spec.target], index=frame.index)
    if spec.task_name == "regression":
        return pd.Series(pd.to_numeric(target, errors="coerce"), index=frame.index)
    if spec.positive_above is not None:
        numeric = pd.Series(pd.to_numeric(target, errors="coerce"), index=frame.index)
        positive = pd.Series(numeric > spec.positive_above, index=frame.index).astype("float")
        return positive.where(numeric.notna())
    return binary_labels(target, spec)


def binary_labels(target: pd.Series, spec: ModelSpec) -> pd.Series:
    values = sorted(target.dropna().unique().tolist(), key=str)
    if len(values) > 2:
        raise TrainingError(
            f"the target '{spec.target}' has {len(values)} classes ({values[:5]}...): "
            "classifiers here are binary. Declare 'positive_above' on a numeric column, or "
            "model a two-class column."
        )
    if set(values) <= {0, 1}:
        return target.astype("float")
    positive = values[-1] if values else None
    return (target == positive).astype("float").where(target.notna())


def require_columns(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise TrainingError(
            f"{what} lacks columns {missing} (it has: {', '.join(map(str, frame.columns))}). "
            "Fix the model's 'features'/'target' or the dataset."
        )


def prepare_training(frame: pd.DataFrame, spec: ModelSpec, what: str) -> TrainingData:
    """The rows a model can learn from, counting (and bounding) the rows left out."""
    require_columns(frame, [*spec.features, spec.target], what)
    target = target_values(frame, spec)
    keep = target.notna()
    missing_target = int((~keep).sum())
    missing_features = 0
    if spec.missing.strategy == "drop":
        complete = frame[spec.features].notna().all(axis=1)
        missing_features = int((keep & ~complete).sum())
        keep &= complete
    dropped = DroppedRows(len(frame), missing_target, missing_features)
    if dropped.share > spec.missing.max_dropped_share:
        raise TrainingError(
            f"{what}: {dropped.describe()}, {dropped.share:.1%} of the rows, more than "
            f"missing.max_dropped_share ({spec.missing.max_dropped_share:.1%}). Fill the data, "
            "use missing.strategy 'impute' (or 'native' with hist_gradient_boosting), or raise "
            "missing.max_dropped_share."
        )
    kept = frame.loc[keep]
    return TrainingData(kept[spec.features], target.loc[keep], dropped, kept)


def build_pipeline(spec: ModelSpec) -> Any:
    """Impute (if declared), one-hot encode the categorical features, then the estimator."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    numeric = [column for column in spec.features if column not in spec.categorical]
    encode = OneHotEncoder(handle_unknown="ignore")
    if spec.missing.strategy == "impute":
        categorical: Any = make_pipeline(SimpleImputer(strategy="most_frequent"), encode)
        numbers: Any = SimpleImputer(strategy="median")
    else:
        categorical, numbers = encode, "passthrough"
    transform = ColumnTransformer(
        [("categorical", categorical, list(spec.categorical)), ("numeric", numbers, numeric)]
    )
    return Pipeline([("encode", transform), ("estimate", _estimator(spec))])


def _estimator(spec: ModelSpec) -> Any:
    from sklearn import ensemble, linear_model

    params = dict(spec.estimator.params)
    classify = spec.task_name == "classification"
    builders: dict[str, Any] = {
        "random_forest": lambda: (
            ensemble.RandomForestClassifier if classify else ensemble.RandomForestRegressor
        )(random_state=0, n_jobs=-1, **params),
        "gradient_boosting": lambda: (
            ensemble.GradientBoostingClassifier if classify else ensemble.GradientBoostingRegressor
        )(random_state=0, **params),
        "hist_gradient_boosting": lambda: (
            ensemble.HistGradientBoostingClassifier
            if classify
            else ensemble.HistGradientBoostingRegressor
        )(random_state=0, **params),
        "ridge": lambda: linear_model.Ridge(**params),
        "linear": lambda: linear_model.LinearRegression(**params),
        "logistic_regression": lambda: linear_model.LogisticRegression(
            **{"max_iter": 1000, **params}
        ),
    }
    try:
        return builders[spec.estimator.kind]()
    except TypeError as error:
        raise TrainingError(
            f"estimator '{spec.estimator.kind}' rejected its params: {error}. Fix "
            "'estimator.params' in the model declaration."
        ) from None


def fit(data: TrainingData, spec: ModelSpec) -> Any:
    pipeline = build_pipeline(spec)
    if spec.task_name == "classification" and data.target.nunique() < 2:
        raise TrainingError(
            f"the training rows hold only one class of '{spec.target}': a classifier needs "
            "both. Widen train_window or add data."
        )
    pipeline.fit(data.features, data.target)
    return pipeline


def predict(pipeline: Any, frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Predictions for every row; with 'drop', rows with a missing feature get none (NaN)."""
    features = frame[spec.features]
    rows = pd.Series(True, index=frame.index)
    if spec.missing.strategy == "drop":
        rows = pd.Series(features.notna().all(axis=1), index=frame.index)
    out = pd.DataFrame(index=frame.index)
    out[PREDICTION] = np.nan
    if spec.task_name == "classification":
        out[PROBABILITY] = np.nan
    if rows.any():
        chosen = features.loc[rows]
        if spec.task_name == "classification":
            probability = pipeline.predict_proba(chosen)[:, 1]
            out.loc[rows, PROBABILITY] = probability
            out.loc[rows, PREDICTION] = (probability >= 0.5).astype(float)
        else:
            out.loc[rows, PREDICTION] = pipeline.predict(chosen)
    return out


def metrics(actual: pd.Series, predicted: pd.DataFrame, spec: ModelSpec) -> dict[str, float]:
    """Every metric of the model's task, on rows that have both a label and a prediction."""
    from sklearn import metrics as sk

    present = actual.notna() & predicted[PREDICTION].notna()
    y = np.asarray(actual[present], dtype=float)
    if spec.task_name == "regression":
        guess = predicted.loc[present, PREDICTION].to_numpy(dtype=float)
        return {
            "r2": round(float(sk.r2_score(y, guess)), 4),
            "mae": round(float(sk.mean_absolute_error(y, guess)), 4),
            "rmse": round(math.sqrt(float(sk.mean_squared_error(y, guess))), 4),
        }
    probability = predicted.loc[present, PROBABILITY].to_numpy(dtype=float)
    label = predicted.loc[present, PREDICTION].to_numpy(dtype=float)
    both = len(np.unique(y)) == 2
    return {
        "auc": round(float(sk.roc_auc_score(y, probability)), 4) if both else math.nan,
        "log_loss": round(float(sk.log_loss(y, probability, labels=[0, 1])), 4),
        "brier": round(float(sk.brier_score_loss(y, probability)), 4),
        "accuracy": round(float(sk.accuracy_score(y, label)), 4),
        "f1": round(float(sk.f1_score(y, label, zero_division=0)), 4),  # type: ignore[arg-type]
    }


def evaluate(pipeline: Any, frame: pd.DataFrame, spec: ModelSpec) -> dict[str, float]:
    """Metrics of a fitted pipeline on labelled rows (rows without a label are skipped)."""
    return metrics(target_values(frame, spec), predict(pipeline, frame, spec), spec)


def is_better(metric: str, challenger: dict[str, float], champion: dict[str, float]) -> bool:
    """Whether the challenger beats the champion on ``metric`` (ties keep the champion)."""
    if HIGHER_IS_BETTER[metric]:
        return challenger[metric] > champion[metric]
    return challenger[metric] < champion[metric]
