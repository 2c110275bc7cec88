"""Estimated classifier performance per window before labels arrive, and the realized value after.

Confidence-based performance estimation (CBPE, as in NannyML): when a binary classifier's
probabilities are calibrated, each row is a positive with probability q and a negative with
probability 1 - q, so every metric has an expected value computable without labels. A
calibrator fitted on a labelled reference window (e.g. the model's holdout) maps the model's
scores to q. The estimate stays right under covariate shift (P(X) changes, P(y | score) does
not) and goes wrong under concept drift, which is why the realized value is recorded beside it
once labels arrive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

AUC = "auc"
ACCURACY = "accuracy"
F1 = "f1"
PRECISION = "precision"
RECALL = "recall"
LOG_LOSS = "log_loss"
BRIER = "brier"
METRICS = (AUC, ACCURACY, F1, PRECISION, RECALL, LOG_LOSS, BRIER)

# Like scikit-learn: a confident miss costs -log(eps), not infinity.
_LOG_LOSS_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Calibrator:
    """Monotone map from the model's probability to the calibrated one, clipped at the ends.

    Stored as the isotonic fit's breakpoints, linearly interpolated like scikit-learn's
    `IsotonicRegression.predict`, so it serialises as two lists of numbers.
    """

    scores: tuple[float, ...]
    probabilities: tuple[float, ...]

    def __post_init__(self) -> None:
        scores, probabilities = np.array(self.scores), np.array(self.probabilities)
        if len(scores) == 0 or scores.shape != probabilities.shape:
            raise ValueError(
                "A calibrator needs one or more breakpoints and as many probabilities as scores, "
                f"got {len(scores)} scores and {len(probabilities)} probabilities."
            )
        if np.any(np.diff(scores) < 0) or np.any(np.diff(probabilities) < 0):
            raise ValueError("A calibrator's scores and probabilities must both be non-decreasing.")
        if not np.all((probabilities >= 0) & (probabilities <= 1)):
            raise ValueError("A calibrator's probabilities must lie in [0, 1].")

    @classmethod
    def identity(cls) -> Calibrator:
        """For a model whose probabilities are calibrated as they are."""
        return cls(scores=(0.0, 1.0), probabilities=(0.0, 1.0))

    def calibrate(self, probabilities: npt.ArrayLike) -> np.ndarray:
        """Scores outside the reference range get the probability at the nearest end."""
        return np.interp(
            np.asarray(probabilities, dtype=np.float64), self.scores, self.probabilities
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so a calibrator can be stored with the model version it belongs to."""
        return {"scores": list(self.scores), "probabilities": list(self.probabilities)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        return cls(
            scores=tuple(float(value) for value in data["scores"]),
            probabilities=tuple(float(value) for value in data["probabilities"]),
        )


def _probabilities(values: npt.ArrayLike, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or len(array) == 0:
        raise ValueError(
            f"{what} must be a non-empty 1-D array of positive-class probabilities, "
            f"got shape {array.shape}."
        )
    if not np.all((array >= 0) & (array <= 1)):
        raise ValueError(f"{what} must hold probabilities in [0, 1]; found NaN or values outside.")
    return array


def _labels(values: npt.ArrayLike, what: str, n: int) -> np.ndarray:
    array = np.asarray(values)
    if array.shape != (n,):
        raise ValueError(f"{what} must have one label per probability ({n}), got {array.shape}.")
    found = set(np.unique(array).tolist())
    if not found <= {0, 1}:
        raise ValueError(
            f"{what} must hold 0/1 (or bool) labels; found {sorted(found, key=str)[:5]}."
        )
    return array.astype(np.float64)


def _threshold(threshold: float) -> float:
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be a probability in [0, 1], got {threshold}.")
    return float(threshold)


def fit_calibrator(y_ref: npt.ArrayLike, p_ref: npt.ArrayLike) -> Calibrator:
    """Isotonic regression of labels on the model's probabilities in a labelled reference window.

    Isotonic rather than Platt scaling because it assumes only that a higher score means a higher
    chance of a positive, and that is all a ranking model promises.
    """
    from sklearn.isotonic import IsotonicRegression

    probabilities = _probabilities(p_ref, "p_ref")
    labels = _labels(y_ref, "y_ref", len(probabilities))
    positives = int(labels.sum())
    if positives in (0, len(labels)):
        raise ValueError(
            f"Calibration needs both classes in the reference window; all {len(labels)} rows "
            f"are {'positive' if positives else 'negative'}."
        )
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    isotonic.fit(probabilities, labels)
    return Calibrator(
        scores=tuple(float(value) for value in isotonic.X_thresholds_),
        probabilities=tuple(float(value) for value in isotonic.y_thresholds_),
    )


def _ratio(numerator: float, denominator: float) -> float:
    """NaN when nothing is counted, e.g. precision with no predicted positive."""
    return numerator / denominator if denominator > 0 else float("nan")


def _expected_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC of `scores` with row i a positive with probability positive[i], in O(n log n).

    Expected pairs a positive outranks (ties half) over expected positive-negative pairs; a row
    is never paired with itself. With 0/1 labels this is the ordinary (Mann-Whitney) AUC.
    """
    _, group = np.unique(scores, return_inverse=True)
    pos = np.bincount(group, weights=positive)
    neg = np.bincount(group, weights=1 - positive)
    neg_below = np.cumsum(neg) - neg
    self_pairs = float(np.sum(positive * (1 - positive)))
    outranked = float(np.sum(pos * (neg_below + neg / 2))) - self_pairs / 2
    return _ratio(outranked, float(pos.sum() * neg.sum()) - self_pairs)


def _expected_metrics(
    scores: np.ndarray, positive: np.ndarray, threshold: float
) -> dict[str, float]:
    """Expected metrics of the model's `scores` when row i is positive with probability positive[i].

    The expected confusion matrix gives accuracy, precision, recall and F1 (ratios of expected
    counts, as CBPE does); log loss and Brier are expectations per row. Given 0/1 labels as
    `positive`, every expectation is the realized metric itself.
    """
    predicted = scores >= threshold
    tp = float(positive[predicted].sum())
    fp = float((1 - positive[predicted]).sum())
    fn = float(positive[~predicted].sum())
    tn = float((1 - positive[~predicted]).sum())
    clipped = np.clip(scores, _LOG_LOSS_EPS, 1 - _LOG_LOSS_EPS)
    log_loss = -(positive * np.log(clipped) + (1 - positive) * np.log1p(-clipped))
    brier = positive * (1 - scores) ** 2 + (1 - positive) * scores**2
    return {
        AUC: _expected_auc(scores, positive),
        ACCURACY: (tp + tn) / len(scores),
        F1: _ratio(2 * tp, 2 * tp + fp + fn),
        PRECISION: _ratio(tp, tp + fp),
        RECALL: _ratio(tp, tp + fn),
        LOG_LOSS: float(log_loss.mean()),
        BRIER: float(brier.mean()),
    }


def estimate_performance(
    p_window: npt.ArrayLike, calibrator: Calibrator, threshold: float = 0.5
) -> dict[str, float]:
    """Expected performance of the model on a window without labels (CBPE).

    Metrics are of the model as deployed: its own probabilities rank the rows, decide the class
    (positive when p >= threshold) and enter log loss and Brier; only the chance that a row is
    positive comes from the calibrator. NaN marks a metric the window cannot define (precision
    with no predicted positive, AUC when no positive-negative pair is expected).
    """
    scores = _probabilities(p_window, "p_window")
    return _expected_metrics(scores, calibrator.calibrate(scores), _threshold(threshold))


def realized_performance(
    y: npt.ArrayLike, p: npt.ArrayLike, threshold: float = 0.5
) -> dict[str, float]:
    """The same metrics from the labels, to record beside the estimate once labels arrive.

    NaN marks a metric the window cannot define, e.g. AUC when only one class arrived.
    """
    scores = _probabilities(p, "p")
    return _expected_metrics(scores, _labels(y, "y", len(scores)), _threshold(threshold))
