"""Benjamini-Hochberg: which of many p-values to call significant at a false discovery rate."""

from __future__ import annotations

import numpy as np


def benjamini_hochberg(p_values: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Rejected hypotheses and BH-adjusted p-values, controlling the FDR at ``alpha``.

    NaN p-values (no test) are left out of the family: never rejected, adjusted to NaN.
    """
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    size = len(tested)
    if size:
        order = tested[np.argsort(p[tested], kind="stable")]
        scaled = p[order] * size / np.arange(1, size + 1)
        # Each adjusted value is the smallest scaled one at its rank or above (step-up).
        stepped = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
        # Never below the raw p-value, which rounding of p * size / rank could otherwise give.
        adjusted[order] = np.maximum(stepped, p[order])
    rejected = np.zeros(p.shape, dtype=bool)
    rejected[tested] = adjusted[tested] <= alpha
    return rejected, adjusted
