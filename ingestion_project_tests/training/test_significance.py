import json
import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    log_loss,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)

from ingestion_project.training import significance
from ingestion_project.training.significance import (
    ACCURACY,
    BRIER,
    LOG_LOSS,
    MAE,
    R2,
    RMSE,
    PairedComparison,
    RowMeanMetric,
    decide_promotion,
    delong_test,
    paired_bootstrap,
)


def _brute_force_delong(
    y: np.ndarray, a: np.ndarray, b: np.ndarray
) -> tuple[float, float, float, float]:
    """AUCs from Mann-Whitney over every pair and DeLong's variance from its O(n²) definition."""
    positive = y == 1
    components = []
    for scores in (a, b):
        x, z = scores[positive], scores[~positive]
        kernel = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        components.append((kernel.mean(), kernel.mean(axis=1), kernel.mean(axis=0)))
    (auc_a, v10_a, v01_a), (auc_b, v10_b, v01_b) = components
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    s = s10 / positive.sum() + s01 / (~positive).sum()
    variance = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    z_stat = (auc_b - auc_a) / math.sqrt(variance)
    return auc_a, auc_b, math.sqrt(variance), float(stats.norm.sf(z_stat))


def _two_models(
    seed: int, n: int, noise_a: float, noise_b: float, *, decimals: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a = y + rng.normal(0, noise_a, n)
    b = y + rng.normal(0, noise_b, n)
    if decimals is not None:
        a, b = a.round(decimals), b.round(decimals)
    return y, a, b


@pytest.mark.parametrize(
    ("seed", "n", "decimals"), [(0, 60, 0), (1, 250, 1), (2, 400, 0), (3, 97, 1)]
)
def test_delong_matches_brute_force_with_ties(seed: int, n: int, decimals: int) -> None:
    y, a, b = _two_models(seed, n, 1.0, 1.3, decimals=decimals)
    assert len(np.unique(a)) < n and len(np.unique(b)) < n

    result = delong_test(y, a, b)
    auc_a, auc_b, standard_error, p_value = _brute_force_delong(y, a, b)

    assert result.value_a == pytest.approx(auc_a, abs=1e-9)
    assert result.value_b == pytest.approx(auc_b, abs=1e-9)
    assert result.value_a == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert result.difference == pytest.approx(auc_b - auc_a, abs=1e-9)
    assert result.standard_error == pytest.approx(standard_error, abs=1e-9)
    assert result.p_value == pytest.approx(p_value, abs=1e-9)
    assert result.p_value_two_sided == pytest.approx(2 * min(p_value, 1 - p_value), abs=1e-9)
    assert result.n == n
    assert (result.metric, result.method, result.higher_is_better) == ("auc", "delong", True)


def test_delong_finds_a_clearly_better_model() -> None:
    y, a, b = _two_models(7, 500, 2.0, 0.6)

    result = delong_test(y, a, b)

    assert result.difference > 0.1
    assert result.p_value < 0.01
    assert result.confidence_interval[0] > 0


def test_comparison_serialises_to_json() -> None:
    result = delong_test(*_two_models(10, 200, 1.0, 1.2))

    stored = json.loads(json.dumps(result.to_dict()))

    assert stored["p_value"] == result.p_value
    assert stored["confidence_interval"] == list(result.confidence_interval)
    assert (stored["metric"], stored["method"], stored["n"]) == ("auc", "delong", 200)


def test_delong_of_identical_rankings_is_no_evidence() -> None:
    y, a, _ = _two_models(8, 300, 1.0, 1.0)

    for same in (a, np.exp(a)):
        result = delong_test(y, a, same)
        assert result.difference == 0
        assert result.standard_error == 0
        assert result.p_value == 0.5
        assert result.p_value_two_sided == 1.0


def test_delong_is_antisymmetric() -> None:
    y, a, b = _two_models(9, 300, 1.0, 1.1)

    forward, backward = delong_test(y, a, b), delong_test(y, b, a)

    assert backward.difference == pytest.approx(-forward.difference)
    assert forward.p_value + backward.p_value == pytest.approx(1.0)
    assert forward.p_value_two_sided == pytest.approx(backward.p_value_two_sided)


def test_delong_rejects_at_the_nominal_rate_for_equally_good_models() -> None:
    rejections = [
        delong_test(*_two_models(seed, 200, 1.0, 1.0)).p_value < 0.05 for seed in range(600)
    ]

    assert 0.03 <= np.mean(rejections) <= 0.075


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([1, 1, 1, 1], "AUC needs both classes in the window"),
        ([0, 0, 0, 0], "AUC needs both classes in the window"),
        ([1, 0, 0, 0], "at least two rows of each class"),
        ([0, 1, 2, 1], "0/1"),
    ],
)
def test_delong_explains_unusable_labels(labels: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        delong_test(labels, [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1])


def test_delong_rejects_mismatched_or_missing_scores() -> None:
    with pytest.raises(ValueError, match="one score per label"):
        delong_test([0, 1, 0, 1], [0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="NaN"):
        delong_test([0, 1, 0, 1], [0.1, np.nan, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4])


def _regression(seed: int, n: int, noise_a: float, noise_b: float):
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, n)
    return y, y + rng.normal(0, noise_a, n), y + rng.normal(0, noise_b, n)


def _probabilities(seed: int, n: int, sharp_a: float, sharp_b: float):
    """Labels drawn from true probabilities; each model sees the true logit times a sharpness."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    noisy = [logit * sharp + rng.normal(0, 1.0, n) for sharp in (sharp_a, sharp_b)]
    return y, *(1 / (1 + np.exp(-score)) for score in noisy)


@pytest.mark.parametrize(
    ("metric", "reference", "data"),
    [
        (MAE, mean_absolute_error, "regression"),
        (RMSE, root_mean_squared_error, "regression"),
        (R2, r2_score, "regression"),
        (BRIER, brier_score_loss, "probabilities"),
        (LOG_LOSS, log_loss, "probabilities"),
        (ACCURACY, accuracy_score, "labels"),
    ],
)
def test_row_mean_metrics_equal_scikit_learn(
    metric: RowMeanMetric, reference: Callable[..., float], data: str
) -> None:
    if data == "regression":
        y, pred, _ = _regression(0, 1000, 1.0, 1.0)
    else:
        y, pred, _ = _probabilities(0, 1000, 1.0, 1.0)
        if data == "labels":
            pred = (pred >= 0.5).astype(int)

    assert metric(y, pred) == pytest.approx(reference(y, pred), rel=1e-12)


def test_row_mean_metrics_follow_the_python_loop_exactly() -> None:
    y, a, b = _regression(1, 400, 1.0, 1.05)

    for fast, slow in [(MAE, mean_absolute_error), (R2, r2_score)]:
        vectorised = paired_bootstrap(y, a, b, fast, fast.higher_is_better, resamples=300, seed=4)
        looped = paired_bootstrap(y, a, b, slow, fast.higher_is_better, resamples=300, seed=4)
        assert vectorised.p_value == looped.p_value
        assert vectorised.p_value_two_sided == looped.p_value_two_sided
        assert vectorised.confidence_interval == pytest.approx(
            looped.confidence_interval, abs=1e-12
        )
        assert vectorised.standard_error == pytest.approx(looped.standard_error, rel=1e-9)


def test_row_mean_metric_rows_are_computed_once_whatever_the_resamples() -> None:
    y, a, b = _regression(2, 500, 1.0, 1.0)
    calls: list[int] = []

    def absolute_error(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
        calls.append(len(truth))
        return np.abs(truth - pred)

    counted = RowMeanMetric("mae", False, absolute_error)
    for resamples in (10, 1000):
        calls.clear()
        paired_bootstrap(y, a, b, counted, False, resamples=resamples)
        assert calls == [500] * 4


def test_a_plain_callable_is_called_twice_per_resample() -> None:
    y, a, b = _regression(3, 50, 1.0, 1.0)
    calls: list[int] = []

    def mae(truth: np.ndarray, pred: np.ndarray) -> float:
        calls.append(len(truth))
        return float(np.mean(np.abs(truth - pred)))

    result = paired_bootstrap(y, a, b, mae, False, resamples=25)

    assert len(calls) == 2 + 2 * 25
    assert result.metric == "mae"


def test_bootstrap_does_not_depend_on_the_memory_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    y, a, b = _regression(5, 300, 1.0, 1.1)
    whole = paired_bootstrap(y, a, b, MAE, False, resamples=500, seed=3)

    monkeypatch.setattr(significance, "_CHUNK_ELEMENTS", 7 * 300 + 5)
    chunked = paired_bootstrap(y, a, b, MAE, False, resamples=500, seed=3)

    assert chunked.p_value == whole.p_value
    assert chunked.p_value_two_sided == whole.p_value_two_sided
    assert chunked.confidence_interval == pytest.approx(whole.confidence_interval, abs=1e-12)


def test_bootstrap_is_deterministic_given_the_seed() -> None:
    y, a, b = _regression(6, 300, 1.0, 1.1)

    first = paired_bootstrap(y, a, b, MAE, False, resamples=400, seed=11)
    again = paired_bootstrap(y, a, b, MAE, False, resamples=400, seed=11)
    other = paired_bootstrap(y, a, b, MAE, False, resamples=400, seed=12)

    assert first == again
    assert other.confidence_interval != first.confidence_interval
    assert other.difference == first.difference


def test_bootstrap_rejects_at_the_nominal_rate_for_equally_good_models() -> None:
    rejections = [
        paired_bootstrap(
            *_regression(seed, 300, 1.0, 1.0), MAE, False, resamples=400, seed=seed
        ).p_value
        < 0.05
        for seed in range(600)
    ]

    assert 0.03 <= np.mean(rejections) <= 0.075


@pytest.mark.parametrize(
    ("metric", "data"),
    [
        (MAE, "regression"),
        (RMSE, "regression"),
        (LOG_LOSS, "probabilities"),
        (BRIER, "probabilities"),
    ],
)
def test_bootstrap_finds_the_better_model_when_lower_is_better(
    metric: RowMeanMetric, data: str
) -> None:
    if data == "regression":
        y, worse, better = _regression(7, 2000, 1.2, 1.0)
    else:
        y, worse, better = _probabilities(7, 2000, 0.6, 1.0)

    result = paired_bootstrap(y, worse, better, metric, False, resamples=1000)
    reverse = paired_bootstrap(y, better, worse, metric, False, resamples=1000)

    assert result.difference < 0 < result.improvement
    assert result.confidence_interval[1] < 0
    assert result.p_value < 0.01
    assert reverse.p_value > 0.99
    assert result.p_value >= 1 / 1001


def test_bootstrap_agrees_with_delong_on_auc() -> None:
    y, a, b = _two_models(12, 400, 1.0, 0.85)

    delong = delong_test(y, a, b)
    bootstrap = paired_bootstrap(y, a, b, roc_auc_score, True, resamples=500)

    assert bootstrap.difference == pytest.approx(delong.difference, abs=1e-12)
    assert bootstrap.standard_error == pytest.approx(delong.standard_error, rel=0.15)
    assert bootstrap.p_value == pytest.approx(delong.p_value, abs=0.03)


def test_bootstrap_of_identical_models_is_no_evidence() -> None:
    y, a, _ = _regression(13, 200, 1.0, 1.0)

    result = paired_bootstrap(y, a, a.copy(), MAE, False, resamples=200)

    assert result.difference == 0
    assert result.p_value == 1.0
    assert result.confidence_interval == (0.0, 0.0)


def test_bootstrap_explains_bad_arguments() -> None:
    y, a, b = _regression(14, 20, 1.0, 1.0)

    with pytest.raises(ValueError, match="contradicts mae"):
        paired_bootstrap(y, a, b, MAE, True)
    with pytest.raises(ValueError, match="one row each"):
        paired_bootstrap(y, a[:-1], b, MAE, False)
    with pytest.raises(ValueError, match="at least 1"):
        paired_bootstrap(y, a, b, MAE, False, resamples=0)
    with pytest.raises(ValueError, match="not finite"):
        paired_bootstrap(
            [0, 1, 1, 1],
            [0.2, 0.4, 0.6, 0.8],
            [0.1, 0.5, 0.9, 0.3],
            _nan_without_both,
            True,
            resamples=50,
        )


def _nan_without_both(y: np.ndarray, pred: np.ndarray) -> float:
    return float(roc_auc_score(y, pred)) if len(np.unique(y)) == 2 else math.nan


def _comparison(
    value_a: float,
    value_b: float,
    p_value: float,
    *,
    metric: str = "auc",
    method: str = "delong",
    higher_is_better: bool = True,
) -> PairedComparison:
    return PairedComparison(
        metric=metric,
        method=method,
        value_a=value_a,
        value_b=value_b,
        difference=value_b - value_a,
        p_value=p_value,
        p_value_two_sided=min(1.0, 2 * p_value),
        standard_error=0.01,
        confidence_interval=(0.0, 0.0),
        confidence_level=0.95,
        n=1000,
        higher_is_better=higher_is_better,
    )


@pytest.mark.parametrize(
    ("comparison", "min_effect", "promote", "reason"),
    [
        (
            _comparison(0.795, 0.812, 0.003),
            0.01,
            True,
            "AUC 0.812 vs champion 0.795 (+0.017 ≥ min effect 0.01), "
            "DeLong p=0.003 < 0.05: promote",
        ),
        (
            _comparison(0.795, 0.812, 0.21),
            0.01,
            False,
            "AUC 0.812 vs champion 0.795 (+0.017 ≥ min effect 0.01), DeLong p=0.21 ≥ 0.05: "
            "keep the champion",
        ),
        (
            _comparison(0.795, 0.8, 0.001),
            0.01,
            False,
            "AUC 0.800 vs champion 0.795 (+0.005 < min effect 0.01), DeLong p=0.001 < 0.05: "
            "keep the champion",
        ),
        (
            _comparison(
                43.0, 41.2, 0.002, metric="mae", method="paired_bootstrap", higher_is_better=False
            ),
            1.0,
            True,
            "mae 41.200 vs champion 43.000 (-1.800, lower is better: 1.800 ≥ min effect 1), "
            "bootstrap p=0.002 < 0.05: promote",
        ),
        (
            _comparison(0.40, 0.41, 0.01),
            0.01,
            True,
            "AUC 0.410 vs champion 0.400 (+0.010 ≥ min effect 0.01), DeLong p=0.01 < 0.05: promote",
        ),
    ],
)
def test_decision_quotes_the_figures(
    comparison: PairedComparison, min_effect: float, promote: bool, reason: str
) -> None:
    decision = decide_promotion(comparison, min_effect)

    assert decision.promote is promote
    assert decision.reason == reason


def test_decision_never_rounds_across_the_bound() -> None:
    near = decide_promotion(_comparison(0.8, 0.80999, 0.0499), 0.01)
    borderline = decide_promotion(_comparison(0.8, 0.82, 0.05), 0.01)

    assert not near.promote
    assert "(+0.00999 < min effect 0.01)" in near.reason
    assert "p=0.0499 < 0.05" in near.reason
    assert not borderline.promote
    assert "p=0.05 ≥ 0.05" in borderline.reason


def test_decision_keeps_the_champion_without_a_p_value() -> None:
    decision = decide_promotion(_comparison(0.7, 0.8, math.nan), 0.01)

    assert not decision.promote
    assert "p=nan ≥ 0.05" in decision.reason


def test_decision_rejects_meaningless_thresholds() -> None:
    with pytest.raises(ValueError, match="min_effect"):
        decide_promotion(_comparison(0.7, 0.8, 0.01), -0.01)
    with pytest.raises(ValueError, match="alpha"):
        decide_promotion(_comparison(0.7, 0.8, 0.01), 0.01, alpha=1.5)


def test_gate_end_to_end() -> None:
    y, champion, challenger = _two_models(15, 800, 1.5, 0.8)

    decision = decide_promotion(delong_test(y, champion, challenger), min_effect=0.02)

    assert decision.promote
    assert decision.reason.endswith(": promote")
    assert not decide_promotion(delong_test(y, challenger, champion), min_effect=0.02).promote
