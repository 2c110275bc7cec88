"""Classifiers and regressors, missing values by declaration, and the rows left out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from ingestion_project.training.estimators import (
    PREDICTION,
    PROBABILITY,
    TrainingError,
    evaluate,
    fit,
    predict,
    prepare_training,
)
from ingestion_project_tests.training.bikeshare import busy_hours, demand, months

CLASSIFICATION = {"auc", "log_loss", "brier", "accuracy", "f1"}


@pytest.fixture(scope="module")
def spring() -> pd.DataFrame:
    return months(1, 2, 3, 4)


@pytest.fixture(scope="module")
def may() -> pd.DataFrame:
    return months(5)


@pytest.mark.parametrize("kind", ["logistic_regression", "random_forest", "hist_gradient_boosting"])
def test_each_classifier_gives_probabilities_and_every_classification_metric(
    kind: str, spring: pd.DataFrame, may: pd.DataFrame
) -> None:
    spec = busy_hours(estimator={"kind": kind})
    assert spec.task_name == "classification" and spec.metric_name == "auc"

    pipeline = fit(prepare_training(spring, spec, "spring"), spec)
    scored = predict(pipeline, may, spec)
    figures = evaluate(pipeline, may, spec)

    assert set(figures) == CLASSIFICATION
    assert scored[PROBABILITY].between(0, 1).all()
    assert (scored[PREDICTION] == (scored[PROBABILITY] >= 0.5)).all()
    # Busy hours follow the hour of day: every classifier ranks them far better than chance.
    assert figures["auc"] > 0.75
    assert 0 < figures["brier"] < 0.25
    assert 0 <= figures["f1"] <= 1


def test_regressors_keep_their_metrics(spring: pd.DataFrame, may: pd.DataFrame) -> None:
    spec = demand()
    assert spec.task_name == "regression" and spec.metric_name == "r2"

    figures = evaluate(fit(prepare_training(spring, spec, "spring"), spec), may, spec)

    assert set(figures) == {"r2", "mae", "rmse"}
    assert figures["rmse"] >= figures["mae"] > 0


def test_a_target_with_more_than_two_classes_is_refused_with_what_to_do(
    spring: pd.DataFrame,
) -> None:
    spec = busy_hours(
        target="weathersit",
        positive_above=None,
        task="classification",
        features=["hr", "temp"],
        categorical=[],
    )

    with pytest.raises(TrainingError, match=r"classes.*positive_above"):
        fit(prepare_training(spring, spec, "spring"), spec)


def test_a_two_class_text_target_is_learnt_with_its_later_value_positive(
    spring: pd.DataFrame,
) -> None:
    frame = spring.assign(busy=np.where(spring["bikers"] > 300, "yes", "no"))
    spec = busy_hours(target="busy", positive_above=None, task="classification")

    data = prepare_training(frame, spec, "spring")

    assert set(data.target.unique()) == {0.0, 1.0}
    assert data.target.sum() == (frame["busy"] == "yes").sum()


def test_declarations_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValidationError, match="not a classification estimator"):
        busy_hours(estimator={"kind": "ridge"})
    with pytest.raises(ValidationError, match="'native' needs an estimator"):
        busy_hours(estimator={"kind": "random_forest"}, missing={"strategy": "native"})
    with pytest.raises(ValidationError, match="not a regression metric"):
        demand(metric="auc", estimator={"kind": "random_forest"}, task="regression")


def _with_gaps(frame: pd.DataFrame, share: float, seed: int = 0) -> pd.DataFrame:
    """``frame`` with ``share`` of the humidity values missing, as a sparse sensor gives."""
    gaps = np.random.default_rng(seed).random(len(frame)) < share
    return frame.assign(hum=frame["hum"].mask(gaps))


@pytest.mark.parametrize(
    ("strategy", "kind"),
    [
        ("impute", "random_forest"),
        ("impute", "logistic_regression"),
        ("native", "hist_gradient_boosting"),
    ],
)
def test_missing_features_are_learnt_and_scored_without_dropping_rows(
    strategy: str, kind: str, spring: pd.DataFrame, may: pd.DataFrame
) -> None:
    spec = busy_hours(estimator={"kind": kind}, missing={"strategy": strategy})
    sparse_spring, sparse_may = _with_gaps(spring, 0.3), _with_gaps(may, 0.3, seed=1)

    data = prepare_training(sparse_spring, spec, "spring")
    scored = predict(fit(data, spec), sparse_may, spec)

    assert data.dropped.dropped == 0 and len(data.features) == len(spring)
    assert scored[PROBABILITY].notna().all(), "every row is scored, gaps included"


def test_dropping_rows_counts_them_and_scores_only_complete_rows(
    spring: pd.DataFrame, may: pd.DataFrame
) -> None:
    spec = busy_hours(missing={"strategy": "drop", "max_dropped_share": 0.5})
    sparse = _with_gaps(spring, 0.3)
    sparse.loc[sparse.index[:7], "bikers"] = np.nan

    data = prepare_training(sparse, spec, "spring")
    scored = predict(fit(data, spec), _with_gaps(may, 0.3, seed=1), spec)

    gaps = sparse["hum"].isna()
    assert data.dropped.missing_target == 7
    assert data.dropped.missing_features == int((gaps & sparse["bikers"].notna()).sum())
    assert data.dropped.total == len(spring)
    assert "rows dropped" in data.dropped.describe()
    assert scored[PROBABILITY].isna().sum() > 0
    assert scored[PROBABILITY].notna().sum() > 0


def test_dropping_more_than_the_declared_share_fails_saying_what_to_change(
    spring: pd.DataFrame,
) -> None:
    spec = busy_hours(missing={"strategy": "drop", "max_dropped_share": 0.05})

    with pytest.raises(TrainingError) as caught:
        prepare_training(_with_gaps(spring, 0.3), spec, "history v3")

    message = str(caught.value)
    assert message.startswith("history v3: ")
    assert "with a missing feature" in message
    assert "more than missing.max_dropped_share (5.0%)" in message
    assert "'impute'" in message


def test_a_training_set_of_one_class_is_refused(spring: pd.DataFrame) -> None:
    spec = busy_hours(positive_above=10_000)

    with pytest.raises(TrainingError, match="only one class"):
        fit(prepare_training(spring, spec, "spring"), spec)
