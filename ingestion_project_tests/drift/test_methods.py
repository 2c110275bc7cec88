"""The statistics computed from counts agree with scipy on the raw samples."""

import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from ingestion_project.drift import methods
from ingestion_project.drift.accumulate import NumericCounts
from ingestion_project.drift.engine import DriftSettings, measure_drift
from ingestion_project.drift.summaries import NumericSummary, summarize


def counted(
    baseline: np.ndarray, target: np.ndarray, *, sums: bool = False
) -> tuple[NumericSummary, NumericCounts]:
    """The baseline summarized exactly, the target counted in three batches."""
    summary = summarize(pd.DataFrame({"x": baseline}), ["x"]).features["x"]
    assert isinstance(summary, NumericSummary)
    counts = NumericCounts(summary, sums=sums)
    for part in np.array_split(target, 3):
        counts.add(pa.array(part))
    return summary, counts


SAMPLES = {
    "normal, shifted": lambda rng: (rng.normal(size=3000), rng.normal(0.1, 1, size=2000)),
    "wider": lambda rng: (rng.normal(size=5000), rng.normal(0, 1.3, size=5000)),
    "same": lambda rng: (rng.exponential(size=4000), rng.exponential(size=6000)),
    "integers with ties": lambda rng: (rng.poisson(4, 5000), rng.poisson(4.2, 3000)),
    "target beyond the range": lambda rng: (rng.uniform(0, 1, 2000), rng.uniform(0.5, 2, 2000)),
    "small": lambda rng: (rng.normal(size=40), rng.normal(0.5, 1, size=25)),
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_ks_equals_scipy(name: str) -> None:
    baseline, target = SAMPLES[name](np.random.default_rng(1))
    summary, counts = counted(baseline.astype(float), target.astype(float))

    statistic = methods.ks_statistic(summary.cdf, counts.cells)
    p_value = methods.ks_p_value(statistic, summary.sample_size, counts.count)
    expected_statistic, expected_p = stats.ks_2samp(baseline, target, method="asymp")

    assert statistic == pytest.approx(expected_statistic, rel=1e-12, abs=1e-15)
    assert p_value == pytest.approx(expected_p, rel=1e-9, abs=1e-300)


def test_ks_p_value_uses_the_kolmogorov_limit_for_large_samples() -> None:
    rng = np.random.default_rng(2)
    baseline, target = rng.normal(size=30_000), rng.normal(0.02, 1, size=30_000)
    summary, counts = counted(baseline, target)

    statistic = methods.ks_statistic(summary.cdf, counts.cells)
    p_value = methods.ks_p_value(statistic, summary.sample_size, counts.count)
    expected_statistic, expected_p = stats.ks_2samp(baseline, target, method="asymp")

    assert statistic == pytest.approx(expected_statistic, rel=1e-12)
    assert p_value == pytest.approx(expected_p, rel=0.01)
    assert p_value == pytest.approx(stats.kstwobign.sf(statistic * np.sqrt(15_000)), rel=1e-12)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_wasserstein_matches_scipy(name: str) -> None:
    """Within 0.001 baseline sd (0.02 for 40 vs 25 values): only gaps between consecutive
    baseline values where the ECDFs cross and that hold several target values are estimated.
    """
    baseline, target = SAMPLES[name](np.random.default_rng(3))
    summary, counts = counted(baseline.astype(float), target.astype(float), sums=True)
    assert counts.gap_sums is not None

    ours = methods.wasserstein(summary.values, summary.cdf, counts.cells, counts.gap_sums)
    expected = stats.wasserstein_distance(baseline, target)

    tolerance = 0.02 if len(target) < 100 else 1e-3
    assert abs(ours - expected) <= tolerance * np.std(baseline)


def test_wasserstein_is_exact_when_target_values_are_baseline_values() -> None:
    rng = np.random.default_rng(4)
    baseline, target = rng.poisson(5, 4000), rng.poisson(6, 4000)
    target = target[np.isin(target, baseline)]
    summary, counts = counted(baseline.astype(float), target.astype(float), sums=True)
    assert counts.gap_sums is not None

    ours = methods.wasserstein(summary.values, summary.cdf, counts.cells, counts.gap_sums)

    assert ours == pytest.approx(stats.wasserstein_distance(baseline, target), rel=1e-12)


def test_normalized_wasserstein_in_the_report() -> None:
    rng = np.random.default_rng(5)
    baseline, target = rng.normal(3, 2, 5000), rng.normal(3.3, 2, 5000)
    summary = summarize(pd.DataFrame({"x": baseline}), ["x"])

    report = measure_drift(
        summary, pd.DataFrame({"x": target}), DriftSettings(methods={"x": "wasserstein"})
    )

    expected = stats.wasserstein_distance(baseline, target) / np.std(baseline)
    assert report.feature("x").statistic == pytest.approx(expected, rel=2e-3)
    assert report.feature("x").effect == report.feature("x").statistic


def test_chi_squared_equals_scipy() -> None:
    baseline = np.array([300, 250, 200, 150, 100, 0])
    target = np.array([270, 250, 200, 150, 130, 7])

    statistic, p_value, cramers_v = methods.chi_squared(baseline, target)
    expected_statistic, expected_p, _, _ = stats.chi2_contingency(
        np.vstack([baseline, target]), correction=False
    )

    assert statistic == pytest.approx(expected_statistic, rel=1e-12)
    assert p_value == pytest.approx(expected_p, rel=1e-9)
    table = np.vstack([baseline, target])
    assert cramers_v == pytest.approx(
        stats.contingency.association(table, method="cramer", correction=False), rel=1e-12
    )


def test_chi_squared_of_one_category_and_of_an_empty_side() -> None:
    assert methods.chi_squared(np.array([10]), np.array([5])) == (0.0, 1.0, 0.0)
    assert all(np.isnan(methods.chi_squared(np.array([0, 0]), np.array([3, 4]))))


def test_jensen_shannon_equals_scipy() -> None:
    p = np.array([0.3, 0.25, 0.2, 0.15, 0.1, 0.0])
    q = np.array([0.27, 0.25, 0.2, 0.15, 0.1, 0.03])

    assert methods.jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2), rel=1e-12)
    assert methods.jensen_shannon(p, p) == 0.0
    assert methods.jensen_shannon(np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(1.0)


def test_psi_by_hand_with_an_empty_bin() -> None:
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.4, 0.5, 0.1])
    eps = methods.PSI_EPSILON
    expected = (0.4 - 0.5) * np.log(0.4 / 0.5) + (0.1 - eps) * np.log(0.1 / eps)

    assert methods.psi(p, q) == pytest.approx(expected, rel=1e-12)


def test_bins_aggregate_the_cells_exactly() -> None:
    rng = np.random.default_rng(6)
    baseline, target = rng.gamma(2, size=5000), rng.gamma(2.2, size=7000)
    summary, counts = counted(baseline, target)

    ours = methods.bin_counts(summary.values, summary.bin_edges, counts.cells)

    edges = np.concatenate([[-np.inf], summary.bin_edges, [np.inf]])
    expected = [
        np.count_nonzero((target > lo) & (target <= hi)) for lo, hi in itertools.pairwise(edges)
    ]
    assert ours.tolist() == expected
    assert len(summary.bin_shares) == 10
    assert summary.bin_shares == pytest.approx(np.full(10, 0.1))


def test_null_rate_test_equals_the_two_by_two_chi_squared() -> None:
    table = np.array([[120, 9880], [160, 7840]])
    _, expected, _, _ = stats.chi2_contingency(table, correction=False)

    assert methods.null_rate_p_value(120, 10_000, 160, 8000) == pytest.approx(expected, rel=1e-9)
    assert methods.null_rate_p_value(0, 100, 0, 50) == 1.0
    assert methods.null_rate_p_value(100, 100, 50, 50) == 1.0
