"""Paired significance tests behind the promotion gate.

A challenger is promoted only for a win beyond a declared minimum effect that a paired test on the
same rows supports: DeLong's test for ROC AUC, a paired bootstrap for any other metric. Pairing
(both models scored on the same rows, resampled with the same indices) removes the variance the
two models share, so real differences show up on far smaller windows than unpaired tests need.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

AUC = "auc"
DELONG = "delong"
BOOTSTRAP = "paired_bootstrap"

# Indices generated per bootstrap chunk: 2**22 int64 plus as many counts is about 64 MB.
_CHUNK_ELEMENTS = 2**22
# A variance this small relative to the models' own variances is rounding noise, not signal.
_RELATIVE_ZERO_VARIANCE = 1e-12
# Metric values are sums of floats: an improvement this close to the minimum effect meets it.
_EFFECT_TOLERANCE = 1e-12
_LOG_LOSS_EPS = float(np.finfo(np.float64).eps)

Metric = Callable[[Any, Any], float]


@dataclass(frozen=True)
class PairedComparison:
    """Model b (challenger) against model a (champion) on the same rows.

    `difference` is always b - a in the metric's units; `p_value` is one-sided for "b is better
    than a" (what a promotion needs) and `p_value_two_sided` for "they differ".
    `confidence_interval` bounds `difference` at `confidence_level`.
    """

    metric: str
    method: str
    value_a: float
    value_b: float
    difference: float
    p_value: float
    p_value_two_sided: float
    standard_error: float
    confidence_interval: tuple[float, float]
    confidence_level: float
    n: int
    higher_is_better: bool

    @property
    def improvement(self) -> float:
        """How much better b is than a, positive when b wins, whichever way the metric points."""
        return self.difference if self.higher_is_better else -self.difference

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so the result can go into Dagster metadata or JSON."""
        return {
            "metric": self.metric,
            "method": self.method,
            "value_a": self.value_a,
            "value_b": self.value_b,
            "difference": self.difference,
            "p_value": self.p_value,
            "p_value_two_sided": self.p_value_two_sided,
            "standard_error": self.standard_error,
            "confidence_interval": list(self.confidence_interval),
            "confidence_level": self.confidence_level,
            "n": self.n,
            "higher_is_better": self.higher_is_better,
        }


@dataclass(frozen=True)
class Decision:
    """Whether to promote the challenger, with a reason that quotes the figures behind it."""

    promote: bool
    reason: str


@dataclass(frozen=True)
class RowMeanMetric:
    """A metric that is a function of means of per-row values, e.g. MAE, RMSE, R², log loss.

    A bootstrap resample only reweights rows, so such a metric is recomputed for every resample
    from one matrix product of resample counts with the per-row values, instead of one Python call
    per resample. `rows(y_true, pred)` returns shape (n,) or (n, k); `combine` maps the k means
    (last axis) to the metric and defaults to the mean itself.
    """

    name: str
    higher_is_better: bool
    rows: Callable[[np.ndarray, np.ndarray], np.ndarray]
    combine: Callable[[np.ndarray], np.ndarray] | None = None

    def row_values(self, y_true: np.ndarray, pred: np.ndarray) -> np.ndarray:
        values = np.asarray(self.rows(y_true, pred), dtype=np.float64)
        return values.reshape(len(values), -1)

    def from_means(self, means: np.ndarray) -> np.ndarray:
        if self.combine is None:
            return means[..., 0]
        return np.asarray(self.combine(means), dtype=np.float64)

    def __call__(self, y_true: npt.ArrayLike, pred: npt.ArrayLike) -> float:
        values = self.row_values(np.asarray(y_true), np.asarray(pred))
        return float(self.from_means(values.mean(axis=0)))


def _clipped_log_loss_rows(y_true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Binary log loss per row, clipped like scikit-learn so a confident miss stays finite."""
    p = np.clip(pred.astype(np.float64), _LOG_LOSS_EPS, 1 - _LOG_LOSS_EPS)
    return -(y_true * np.log(p) + (1 - y_true) * np.log1p(-p))


def _r2_rows(y_true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Squared error, y and y² per row; y is centred first so the variance keeps its digits."""
    centred = y_true.astype(np.float64) - float(np.mean(y_true))
    return np.column_stack([(y_true - pred) ** 2, centred, centred**2])


def _r2_combine(means: np.ndarray) -> np.ndarray:
    variance = means[..., 2] - means[..., 1] ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 - means[..., 0] / variance


# ACCURACY compares predicted labels with the truth; BRIER and LOG_LOSS take probabilities.
ACCURACY = RowMeanMetric("accuracy", True, lambda y, p: (y == p).astype(np.float64))
BRIER = RowMeanMetric("brier", False, lambda y, p: (y - p) ** 2)
LOG_LOSS = RowMeanMetric("log_loss", False, _clipped_log_loss_rows)
MAE = RowMeanMetric("mae", False, lambda y, p: np.abs(y - p))
RMSE = RowMeanMetric("rmse", False, lambda y, p: (y - p) ** 2, lambda m: np.sqrt(m[..., 0]))
R2 = RowMeanMetric("r2", True, _r2_rows, _r2_combine)


def _binary_labels(y_true: npt.ArrayLike) -> np.ndarray:
    labels = np.asarray(y_true)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"y_true must be a non-empty 1-D array of 0/1 labels, got {labels.shape}.")
    values = set(np.unique(labels).tolist())
    if not values <= {0, 1}:
        shown = sorted(values, key=str)[:5]
        raise ValueError(f"y_true must hold 0/1 (or bool) labels; found {shown}.")
    return labels.astype(bool)


def _finite_scores(scores: npt.ArrayLike, what: str, n: int) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != (n,):
        raise ValueError(f"{what} must have one score per label ({n}), got shape {values.shape}.")
    if not np.isfinite(values).all():
        raise ValueError(f"{what} has NaN or infinite scores; score every row before comparing.")
    return values


def _midranks(rows: np.ndarray) -> np.ndarray:
    """1-based ranks along each row, tied values sharing the mean of their ranks."""
    ranks = np.empty(rows.shape, dtype=np.float64)
    for i, row in enumerate(rows):
        _, group, counts = np.unique(row, return_inverse=True, return_counts=True)
        below = np.cumsum(counts) - counts
        ranks[i] = (below + (counts + 1) / 2)[group]
    return ranks


def _normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal, accurate far into the tail (no 1 - cdf cancellation)."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def _midrank_components(
    positive: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and DeLong's structural components from midranks (Sun & Xu 2014), O(n log n).

    `scores` is (models, n). A positive's component is the share of negatives it outranks, a
    negative's the share of positives that outrank it; ties count one half.
    """
    x, y = scores[:, positive], scores[:, ~positive]
    m, k = x.shape[1], y.shape[1]
    rank_x, rank_y = _midranks(x), _midranks(y)
    rank_z = _midranks(np.hstack([x, y]))
    aucs = (rank_z[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * k)
    v10 = (rank_z[:, :m] - rank_x) / k
    v01 = 1 - (rank_z[:, m:] - rank_y) / m
    return aucs, v10, v01


def _normal_p_values(difference: float, standard_error: float) -> tuple[float, float]:
    """One-sided (b > a) and two-sided p-values of a normal statistic.

    A zero standard error arises when both models rank every pair alike (e.g. identical scores);
    a zero difference is then no evidence either way, any other difference is certain.
    """
    if standard_error == 0:
        if difference == 0:
            return 0.5, 1.0
        return (0.0 if difference > 0 else 1.0), 0.0
    z = difference / standard_error
    return _normal_sf(z), 2 * _normal_sf(abs(z))


def delong_test(
    y_true: npt.ArrayLike,
    scores_a: npt.ArrayLike,
    scores_b: npt.ArrayLike,
    *,
    confidence: float = 0.95,
) -> PairedComparison:
    """DeLong's test of two correlated ROC AUCs measured on the same rows.

    The covariance of the two AUCs comes from per-row structural components, so the test needs
    no resampling and runs in O(n log n). Scores may be probabilities, margins or ranks.
    """
    _check_level(confidence)
    positive = _binary_labels(y_true)
    n = len(positive)
    a = _finite_scores(scores_a, "scores_a", n)
    b = _finite_scores(scores_b, "scores_b", n)
    m = int(positive.sum())
    if m in (0, n):
        only = "positives" if m else "negatives"
        raise ValueError(
            f"AUC needs both classes in the window, but all {n} rows are {only}; "
            "compare on a window that holds both labels."
        )
    if min(m, n - m) < 2:
        raise ValueError(
            f"DeLong's variance needs at least two rows of each class ({m} positive, "
            f"{n - m} negative); compare on a larger window."
        )
    aucs, v10, v01 = _midrank_components(positive, np.vstack([a, b]))
    covariance = np.cov(v10) / m + np.cov(v01) / (n - m)
    variance = float(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    scale = float(covariance[0, 0] + covariance[1, 1])
    if variance <= _RELATIVE_ZERO_VARIANCE * scale:
        variance = 0.0
    difference = float(aucs[1] - aucs[0])
    standard_error = math.sqrt(variance)
    p_one, p_two = _normal_p_values(difference, standard_error)
    half_width = NormalDist().inv_cdf(0.5 + confidence / 2) * standard_error
    return PairedComparison(
        metric=AUC,
        method=DELONG,
        value_a=float(aucs[0]),
        value_b=float(aucs[1]),
        difference=difference,
        p_value=p_one,
        p_value_two_sided=p_two,
        standard_error=standard_error,
        confidence_interval=(difference - half_width, difference + half_width),
        confidence_level=confidence,
        n=n,
        higher_is_better=True,
    )


def _check_level(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}.")


def _paired_arrays(
    y_true: npt.ArrayLike, pred_a: npt.ArrayLike, pred_b: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, a, b = np.asarray(y_true), np.asarray(pred_a), np.asarray(pred_b)
    if not len(y) == len(a) == len(b):
        raise ValueError(
            f"y_true, pred_a and pred_b must have one row each per sample, "
            f"got {len(y)}, {len(a)} and {len(b)} rows."
        )
    if len(y) < 2:
        raise ValueError(f"A bootstrap needs at least two rows, got {len(y)}.")
    return y, a, b


def _index_chunks(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Resample indices, (rows, n) at a time so memory stays bounded whatever the window size.

    numpy draws the same stream whatever the chunk size, so results do not depend on it.
    """
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, resamples, per_chunk):
        yield rng.integers(0, n, size=(min(per_chunk, resamples - start), n))


def _row_mean_differences(
    y: np.ndarray, a: np.ndarray, b: np.ndarray, metric: RowMeanMetric, chunks: Iterator[np.ndarray]
) -> np.ndarray:
    """Metric(b) - metric(a) per resample, from resample counts times per-row values."""
    values_a, values_b = metric.row_values(y, a), metric.row_values(y, b)
    width, n = values_a.shape[1], len(y)
    stacked = np.hstack([values_a, values_b])
    differences: list[np.ndarray] = []
    for indices in chunks:
        rows = len(indices)
        offsets = (np.arange(rows) * n)[:, None]
        counts = np.bincount((indices + offsets).ravel(), minlength=rows * n).reshape(rows, n)
        means = counts @ stacked / n
        differences.append(
            metric.from_means(means[:, width:]) - metric.from_means(means[:, :width])
        )
    return np.concatenate(differences)


def _looped_differences(
    y: np.ndarray, a: np.ndarray, b: np.ndarray, metric: Metric, chunks: Iterator[np.ndarray]
) -> np.ndarray:
    """Metric(b) - metric(a) per resample, two Python calls per resample."""
    return np.array(
        [
            float(metric(y[rows], b[rows])) - float(metric(y[rows], a[rows]))
            for indices in chunks
            for rows in indices
        ]
    )


def _metric_name(metric: Metric, name: str | None) -> str:
    if name is not None:
        return name
    if isinstance(metric, RowMeanMetric):
        return metric.name
    return str(getattr(metric, "__name__", "metric"))


def paired_bootstrap(
    y_true: npt.ArrayLike,
    pred_a: npt.ArrayLike,
    pred_b: npt.ArrayLike,
    metric: Metric,
    higher_is_better: bool,
    *,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    name: str | None = None,
) -> PairedComparison:
    """Paired bootstrap test of metric(b) against metric(a) on the same rows.

    Each resample draws rows with replacement and scores both models on the same draw. The
    one-sided p-value centres the resampled improvements on zero (the null of no improvement)
    and counts those at least as large as the observed one, with the +1 correction so that p is
    never 0; the interval is the percentile interval of the resampled differences.

    A `RowMeanMetric` (ACCURACY, BRIER, LOG_LOSS, MAE, RMSE, R2 or your own) is vectorised:
    50,000 rows x 2,000 resamples take one to two seconds. Any other callable `metric(y, pred)`
    (e.g. sklearn's f1_score) is called twice per resample: 2 x resamples calls on n rows each.
    """
    _check_level(confidence)
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}.")
    if isinstance(metric, RowMeanMetric) and metric.higher_is_better != higher_is_better:
        direction = "higher" if metric.higher_is_better else "lower"
        raise ValueError(
            f"higher_is_better={higher_is_better} contradicts {metric.name}, "
            f"for which {direction} is better."
        )
    y, a, b = _paired_arrays(y_true, pred_a, pred_b)
    label = _metric_name(metric, name)
    value_a, value_b = float(metric(y, a)), float(metric(y, b))
    chunks = _index_chunks(len(y), resamples, seed)
    if isinstance(metric, RowMeanMetric):
        differences = _row_mean_differences(y, a, b, metric, chunks)
    else:
        differences = _looped_differences(y, a, b, metric, chunks)
    failed = int(np.count_nonzero(~np.isfinite(differences)))
    if failed or not (math.isfinite(value_a) and math.isfinite(value_b)):
        raise ValueError(
            f"{label} was not finite on the window or on {failed} of {resamples} resamples "
            "(too few rows, or a resample without one of the classes); use a larger window."
        )
    difference = value_b - value_a
    sign = 1.0 if higher_is_better else -1.0
    observed, resampled = sign * difference, sign * differences
    centred = resampled - observed
    p_one = (1 + int(np.count_nonzero(centred >= observed))) / (resamples + 1)
    p_two = (1 + int(np.count_nonzero(np.abs(centred) >= abs(observed)))) / (resamples + 1)
    low, high = np.quantile(differences, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return PairedComparison(
        metric=label,
        method=BOOTSTRAP,
        value_a=value_a,
        value_b=value_b,
        difference=difference,
        p_value=p_one,
        p_value_two_sided=p_two,
        standard_error=float(np.std(differences, ddof=1)) if resamples > 1 else math.nan,
        confidence_interval=(float(low), float(high)),
        confidence_level=confidence,
        n=len(y),
        higher_is_better=higher_is_better,
    )


def _shown(value: float, bound: float, meets: bool, style: str, signed: bool = False) -> str:
    """`value` rounded, with more digits when rounding would contradict the verdict on `bound`.

    `meets` is the verdict: "value < bound" for p-values ("g" style), "value >= bound" for
    effects ("f" style); 0.0499 must not print as "0.05 < 0.05".
    """
    sign = "+" if signed else ""
    digits = range(2, 10) if style == "g" else range(3, 11)
    text = ""
    for precision in digits:
        text = f"{value:{sign}.{precision}{style}}"
        shown_meets = float(text) < bound if style == "g" else float(text) >= bound
        if shown_meets == meets:
            return text
    return text


def _effect_text(comparison: PairedComparison, min_effect: float, big_enough: bool) -> str:
    relation = "≥" if big_enough else "<"
    if comparison.higher_is_better:
        shown = _shown(comparison.difference, min_effect, big_enough, "f", signed=True)
        return f"{shown} {relation} min effect {min_effect:g}"
    gain = _shown(comparison.improvement, min_effect, big_enough, "f")
    difference = f"{comparison.difference:+.3f}"
    return f"{difference}, lower is better: {gain} {relation} min effect {min_effect:g}"


def decide_promotion(
    comparison: PairedComparison, min_effect: float, alpha: float = 0.05
) -> Decision:
    """Promote only when the improvement reaches `min_effect` and the paired test is significant.

    Which way is better comes from the comparison itself, which already computed its p-value for
    that direction. Ties and NaN p-values keep the champion.
    """
    if not min_effect >= 0:
        raise ValueError(
            f"min_effect must be zero or more, in the metric's units; got {min_effect}."
        )
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (e.g. 0.05), got {alpha}.")
    big_enough = comparison.improvement >= min_effect - _EFFECT_TOLERANCE
    significant = comparison.p_value < alpha
    promote = big_enough and significant
    metric = "AUC" if comparison.metric == AUC else comparison.metric
    method = "DeLong" if comparison.method == DELONG else "bootstrap"
    p_text = _shown(comparison.p_value, alpha, significant, "g")
    verdict = "promote" if promote else "keep the champion"
    reason = (
        f"{metric} {comparison.value_b:.3f} vs champion {comparison.value_a:.3f} "
        f"({_effect_text(comparison, min_effect, big_enough)}), "
        f"{method} p={p_text} {'<' if significant else '≥'} {alpha:g}: {verdict}"
    )
    return Decision(promote=promote, reason=reason)
