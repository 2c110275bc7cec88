"""Benjamini-Hochberg against values worked out by hand."""

import numpy as np
import pytest

from ingestion_project.drift.fdr import benjamini_hochberg


def test_adjusted_values_and_rejections_by_hand() -> None:
    # Sorted: 0.001 (1), 0.008 (2), 0.039 (3), 0.041 (4), 0.2 (5); m = 5.
    # Scaled p * m / rank: 0.005, 0.02, 0.065, 0.05125, 0.2
    # Step-up minimum from the top: 0.005, 0.02, 0.05125, 0.05125, 0.2
    p_values = np.array([0.039, 0.2, 0.001, 0.041, 0.008])

    rejected, adjusted = benjamini_hochberg(p_values, 0.05)

    assert adjusted == pytest.approx([0.05125, 0.2, 0.005, 0.05125, 0.02])
    assert rejected.tolist() == [False, False, True, False, True]
    rejected, _ = benjamini_hochberg(p_values, 0.06)
    assert rejected.tolist() == [True, False, True, True, True]


def test_step_up_rejects_a_p_value_above_its_own_line() -> None:
    # 0.03 > 1 * 0.05 / 2 on its own, but 0.04 <= 2 * 0.05 / 2 carries it.
    rejected, adjusted = benjamini_hochberg(np.array([0.03, 0.04]), 0.05)

    assert rejected.tolist() == [True, True]
    assert adjusted == pytest.approx([0.04, 0.04])


def test_nan_is_left_out_of_the_family() -> None:
    rejected, adjusted = benjamini_hochberg(np.array([np.nan, 0.02, 0.5, np.nan]), 0.05)

    assert np.isnan(adjusted[0]) and np.isnan(adjusted[3])
    assert adjusted[1:3] == pytest.approx([0.04, 0.5])
    assert rejected.tolist() == [False, True, False, False]


def test_adjusted_values_are_capped_at_one_and_empty_input_works() -> None:
    _, adjusted = benjamini_hochberg(np.array([0.9, 0.95, 1.0]), 0.05)
    assert adjusted.max() <= 1.0
    rejected, adjusted = benjamini_hochberg(np.array([]), 0.05)
    assert rejected.shape == adjusted.shape == (0,)
