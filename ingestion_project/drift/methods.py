"""The drift statistics, computed from counts: the baseline summary against target counts.

Every function is vectorized over cells, bins or categories and never sees a target row, so
the cost does not grow with the target. scipy is imported inside the functions that need it:
``scipy.stats`` takes about 2 s to import.
"""

from __future__ import annotations

import math

import numpy as np

# Largest effective sample size for the finite-n KS distribution (scipy's `kstwo`), whose cost
# grows with n (13 ms at 10,000, 130 ms at 90,000); above it the limiting Kolmogorov
# distribution (`kstwobign`) is within 1 % and takes microseconds.
KS_FINITE_LIMIT = 10_000
# Share given to an empty bin in PSI, whose logarithm is otherwise infinite.
PSI_EPSILON = 1e-4


def ks_statistic(cdf: np.ndarray, cells: np.ndarray) -> float:
    """Two-sample KS D between the baseline sample (ECDF ``cdf``) and the counted target.

    Both ECDFs are steps, so the supremum is reached at the end of a cell: at a baseline value
    (cell 2k+1) or just before one, at the last target value inside a gap (cell 2k).
    """
    target = np.cumsum(cells) / cells.sum()
    baseline = np.empty(len(cells), dtype=np.float64)
    baseline[0] = 0.0
    baseline[1::2] = cdf
    baseline[2::2] = cdf
    return float(np.abs(baseline - target).max())


def ks_p_value(statistic: float, baseline_size: int, target_size: int) -> float:
    """Two-sided asymptotic p-value, as ``scipy.stats.ks_2samp(method="asymp")`` gives it.

    scipy's ``kstwo`` at the rounded effective size up to ``KS_FINITE_LIMIT``, the Kolmogorov
    limit above it.
    """
    from scipy.stats import kstwo, kstwobign

    effective = baseline_size * target_size / (baseline_size + target_size)
    if round(effective) <= KS_FINITE_LIMIT:
        p_value = float(kstwo.sf(statistic, round(effective)))
    else:
        p_value = float(kstwobign.sf(statistic * math.sqrt(effective)))
    return min(1.0, max(0.0, p_value))


def wasserstein(
    values: np.ndarray, cdf: np.ndarray, cells: np.ndarray, gap_sums: np.ndarray
) -> float:
    """Wasserstein-1 distance, the integral of ``|F_baseline - F_target|``.

    Exact outside the baseline's range and wherever the two ECDFs do not cross inside a gap
    between consecutive baseline values: the gap's integral follows from the count and the sum
    of the target values in it. Where they cross it is exact for a single target value in the
    gap; several are taken as evenly spaced around their mean.
    """
    total = cells.sum()
    gaps = cells[0::2].astype(np.float64)
    lower_tail = (gaps[0] * values[0] - gap_sums[0]) / total
    upper_tail = (gap_sums[-1] - gaps[-1] * values[-1]) / total
    if len(values) < 2:
        return float(lower_tail + upper_tail)
    inside, sums = gaps[1:-1], gap_sums[1:-1]
    at_values = np.cumsum(cells)[1::2] / total  # target ECDF at each baseline value
    start = at_values[:-1] - cdf[:-1]  # F_target - F_baseline at the left end of each gap
    signed = start * np.diff(values) + (inside * values[1:] - sums) / total
    area = np.abs(signed)
    crossing = (start < 0) & (start + inside / total > 0)
    if crossing.any():
        area[crossing] = signed[crossing] + 2 * _below_zero(
            start[crossing],
            inside[crossing],
            sums[crossing] / inside[crossing],
            values[:-1][crossing],
            values[1:][crossing],
            total,
        )
    return float(lower_tail + upper_tail + area.sum())


def _below_zero(
    start: np.ndarray,
    count: np.ndarray,
    mean: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    total: int,
) -> np.ndarray:
    """The area where ``F_target < F_baseline`` in gaps where the two cross.

    The difference starts at ``start`` < 0 and rises by ``1 / total`` at each of the ``count``
    target values; it turns non-negative at the j-th, placed evenly around the known mean.
    """
    steps = np.ceil(-start * total - 1e-9)  # j
    spacing = np.where(
        count > 1, 2 * np.minimum(mean - left, right - mean) / np.maximum(count - 1, 1), 0.0
    )
    crossed_at = mean + (steps - (count + 1) / 2) * spacing
    return -start * (crossed_at - left) - spacing * steps * (steps - 1) / (2 * total)


def bin_counts(values: np.ndarray, edges: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Target counts in the right-closed bins cut at ``edges``, which are baseline values."""
    cumulative = np.cumsum(cells)
    upto = cumulative[2 * np.searchsorted(values, edges) + 1]
    return np.diff(np.concatenate([[0], upto, [cumulative[-1]]]))


def psi(baseline_shares: np.ndarray, target_shares: np.ndarray) -> float:
    """Population stability index; an empty bin counts as ``PSI_EPSILON``."""
    expected = np.clip(baseline_shares, PSI_EPSILON, None)
    actual = np.clip(target_shares, PSI_EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def jensen_shannon(baseline_shares: np.ndarray, target_shares: np.ndarray) -> float:
    """Jensen-Shannon distance in base 2, in [0, 1], as ``scipy.spatial.distance``'s."""
    p = baseline_shares / baseline_shares.sum()
    q = target_shares / target_shares.sum()
    middle = (p + q) / 2
    divergence = (_relative_entropy(p, middle) + _relative_entropy(q, middle)) / 2
    return math.sqrt(max(0.0, divergence))


def _relative_entropy(p: np.ndarray, q: np.ndarray) -> float:
    kept = p > 0
    return float(np.sum(p[kept] * np.log2(p[kept] / q[kept])))


def chi_squared(
    baseline_counts: np.ndarray, target_counts: np.ndarray
) -> tuple[float, float, float]:
    """Chi-squared test of homogeneity of two count vectors: statistic, p-value, Cramer's V.

    The same as ``scipy.stats.chi2_contingency(..., correction=False)`` on the 2 x k table;
    NaNs when either side has no rows.
    """
    from scipy.stats import chi2

    table = np.vstack([baseline_counts, target_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    total = table.sum()
    sides = table.sum(axis=1)
    if (sides == 0).any():
        return math.nan, math.nan, math.nan
    expected = np.outer(sides, table.sum(axis=0)) / total
    statistic = float(np.sum(np.square(table - expected) / expected))
    freedom = table.shape[1] - 1
    if freedom == 0:
        return 0.0, 1.0, 0.0
    return statistic, float(chi2.sf(statistic, freedom)), math.sqrt(statistic / total)


def total_variation(baseline_shares: np.ndarray, target_shares: np.ndarray) -> float:
    return float(np.abs(baseline_shares - target_shares).sum() / 2)


def null_rate_p_value(
    baseline_nulls: int, baseline_rows: int, target_nulls: int, target_rows: int
) -> float:
    """Two-sided pooled two-proportion z-test (the 2 x 2 chi-squared) of the missing rate."""
    pooled = (baseline_nulls + target_nulls) / (baseline_rows + target_rows)
    if pooled <= 0 or pooled >= 1:
        return 1.0
    error = math.sqrt(pooled * (1 - pooled) * (1 / baseline_rows + 1 / target_rows))
    difference = target_nulls / target_rows - baseline_nulls / baseline_rows
    return math.erfc(abs(difference / error) / math.sqrt(2))
