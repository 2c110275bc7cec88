import math

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from ingestion_project.monitoring.performance import (
    METRICS,
    Calibrator,
    estimate_performance,
    fit_calibrator,
    realized_performance,
)

ROWS = 20_000


def _window(seed: int, n: int, mean: float, spread: float) -> tuple[np.ndarray, np.ndarray]:
    """True probabilities from a logit-normal and labels drawn from them: calibrated by design."""
    rng = np.random.default_rng(seed)
    truth = 1 / (1 + np.exp(-rng.normal(mean, spread, n)))
    return truth, (rng.random(n) < truth).astype(int)


def _overconfident(truth: np.ndarray) -> np.ndarray:
    """A model that ranks rows right but pushes its probabilities towards 0 and 1."""
    return 1 / (1 + np.exp(-3 * np.log(truth / (1 - truth))))


def _errors(estimated: dict[str, float], realized: dict[str, float]) -> dict[str, float]:
    return {name: abs(estimated[name] - realized[name]) for name in METRICS}


def _sklearn_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = (p >= threshold).astype(int)
    return {
        "auc": roc_auc_score(y, p),
        "accuracy": accuracy_score(y, predicted),
        "f1": f1_score(y, predicted, zero_division=np.nan),
        "precision": precision_score(y, predicted, zero_division=np.nan),
        "recall": recall_score(y, predicted, zero_division=np.nan),
        "log_loss": log_loss(y, p, labels=[0, 1]),
        "brier": brier_score_loss(y, p),
    }


@pytest.mark.parametrize(
    ("seed", "threshold", "decimals"), [(0, 0.5, None), (1, 0.3, 2), (2, 0.8, 1)]
)
def test_realized_metrics_equal_scikit_learn(
    seed: int, threshold: float, decimals: int | None
) -> None:
    p, y = _window(seed, 3000, 0.0, 1.5)
    if decimals is not None:
        p = p.round(decimals)

    realized = realized_performance(y, p, threshold)

    assert tuple(realized) == METRICS
    assert realized == pytest.approx(_sklearn_metrics(y, p, threshold), rel=1e-12)


def test_estimated_auc_is_the_expected_pairwise_auc() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(60).round(1)
    positive, negative = p[:, None], 1 - p[None, :]
    kernel = (p[:, None] > p[None, :]) + 0.5 * (p[:, None] == p[None, :])
    weights = positive * negative
    np.fill_diagonal(weights, 0.0)

    estimated = estimate_performance(p, Calibrator.identity())

    assert estimated["auc"] == pytest.approx((weights * kernel).sum() / weights.sum(), abs=1e-12)


def test_calibrated_probabilities_give_the_closed_forms() -> None:
    p, _ = _window(4, 1000, 0.0, 1.0)

    estimated = estimate_performance(p, Calibrator.identity())

    assert estimated["brier"] == pytest.approx(np.mean(p * (1 - p)), abs=1e-12)
    assert estimated["accuracy"] == pytest.approx(np.mean(np.maximum(p, 1 - p)), abs=1e-12)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_estimate_matches_realized_on_a_large_calibrated_window(seed: int) -> None:
    p, y = _window(seed, ROWS, 0.0, 1.5)

    errors = _errors(estimate_performance(p, Calibrator.identity()), realized_performance(y, p))

    assert errors["accuracy"] < 0.02
    assert errors["auc"] < 0.02
    assert max(errors.values()) < 0.02


def test_estimate_follows_covariate_shift() -> None:
    p_ref, y_ref = _window(8, ROWS, 0.0, 1.5)
    p_now, y_now = _window(9, ROWS, 1.5, 0.7)
    calibrator = fit_calibrator(y_ref, p_ref)
    before, after = realized_performance(y_ref, p_ref), realized_performance(y_now, p_now)

    errors = _errors(estimate_performance(p_now, calibrator), after)

    assert abs(after["auc"] - before["auc"]) > 0.1
    assert abs(after["accuracy"] - before["accuracy"]) > 0.05
    assert errors["accuracy"] < 0.02
    assert errors["auc"] < 0.02
    assert max(errors.values()) < 0.02


def test_calibrator_restores_the_estimate_of_a_miscalibrated_model() -> None:
    truth_ref, y_ref = _window(10, ROWS, 0.0, 1.5)
    truth_now, y_now = _window(11, ROWS, 1.0, 1.0)
    p_ref, p_now = _overconfident(truth_ref), _overconfident(truth_now)
    realized = realized_performance(y_now, p_now)

    naive = _errors(estimate_performance(p_now, Calibrator.identity()), realized)
    calibrated = _errors(estimate_performance(p_now, fit_calibrator(y_ref, p_ref)), realized)

    assert naive["accuracy"] > 0.1
    assert naive["auc"] > 0.1
    assert calibrated["accuracy"] < 0.02
    assert calibrated["auc"] < 0.02
    assert max(calibrated[name] for name in ("f1", "precision", "recall", "brier")) < 0.02
    # Log loss weighs the calibrator's noisiest region, near 0 and 1, by -log(1 - p).
    assert calibrated["log_loss"] < 0.1 * realized["log_loss"]


def test_estimate_cannot_see_concept_drift() -> None:
    p, _ = _window(12, ROWS, 0.0, 1.5)
    _, flipped = _window(12, ROWS, 0.0, 1.5)
    y = 1 - flipped

    errors = _errors(estimate_performance(p, Calibrator.identity()), realized_performance(y, p))

    assert errors["accuracy"] > 0.3
    assert errors["auc"] > 0.5


def test_calibrator_predicts_like_isotonic_regression_and_clips() -> None:
    truth, y = _window(13, 2000, 0.0, 1.5)
    p = _overconfident(truth)
    inside = p[(p > 0.05) & (p < 0.95)]
    isotonic = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(
        inside, y[: len(inside)]
    )
    probe = np.linspace(0, 1, 501)

    calibrator = fit_calibrator(y[: len(inside)], inside)

    assert calibrator.calibrate(probe) == pytest.approx(isotonic.predict(probe), abs=1e-12)
    assert calibrator.calibrate([0.0]) == pytest.approx(calibrator.probabilities[0])
    assert calibrator.calibrate([1.0]) == pytest.approx(calibrator.probabilities[-1])
    assert np.all(np.diff(calibrator.calibrate(probe)) >= 0)
    assert Calibrator.from_dict(calibrator.to_dict()) == calibrator


def test_identity_calibrator_changes_nothing() -> None:
    probe = np.linspace(0, 1, 11)

    assert Calibrator.identity().calibrate(probe) == pytest.approx(probe)


def test_calibrator_needs_both_classes_and_a_monotone_map() -> None:
    with pytest.raises(ValueError, match="both classes in the reference window"):
        fit_calibrator([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(ValueError, match="non-decreasing"):
        Calibrator(scores=(0.0, 0.5, 1.0), probabilities=(0.0, 0.8, 0.6))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        Calibrator(scores=(0.0, 1.0), probabilities=(0.0, 1.5))


def test_window_of_identical_probabilities() -> None:
    p = np.full(1000, 0.7)
    y = (np.arange(1000) < 700).astype(int)

    estimated = estimate_performance(p, Calibrator.identity())
    strict = estimate_performance(p, Calibrator.identity(), threshold=0.8)

    assert estimated["auc"] == pytest.approx(0.5)
    assert realized_performance(y, p)["auc"] == pytest.approx(0.5)
    assert estimated["accuracy"] == pytest.approx(0.7)
    assert estimated["precision"] == pytest.approx(0.7)
    assert estimated["recall"] == pytest.approx(1.0)
    assert math.isnan(strict["precision"])
    assert strict["recall"] == 0.0
    assert strict["accuracy"] == pytest.approx(0.3)


def test_tiny_windows_mark_what_they_cannot_define() -> None:
    single = estimate_performance([0.9], Calibrator.identity())
    one_class = realized_performance([1, 1, 1], [0.6, 0.7, 0.9])

    assert math.isnan(single["auc"])
    assert single["accuracy"] == pytest.approx(0.9)
    assert math.isnan(one_class["auc"])
    assert one_class["accuracy"] == 1.0
    assert one_class["recall"] == 1.0


@pytest.mark.parametrize(
    ("p", "message"),
    [([], "non-empty"), ([0.2, 1.3], r"in \[0, 1\]"), ([0.2, math.nan], "NaN"), ([[0.2]], "1-D")],
)
def test_unusable_windows_are_refused(p: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        estimate_performance(p, Calibrator.identity())


def test_realized_refuses_labels_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="one label per probability"):
        realized_performance([0, 1], [0.2, 0.4, 0.6])
    with pytest.raises(ValueError, match="0/1"):
        realized_performance([0, 2, 1], [0.2, 0.4, 0.6])
    with pytest.raises(ValueError, match="threshold"):
        realized_performance([0, 1, 1], [0.2, 0.4, 0.6], threshold=1.5)
