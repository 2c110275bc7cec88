"""Sensitivity suite: synthetic data with known shifts, 100,000 rows a side.

Every shifted column must be flagged, and over repeated draws without drift the share of false
alarms on unshifted columns must stay at or below the nominal level (alpha = 0.05).
"""

import numpy as np
import pandas as pd
import pytest

from ingestion_project.drift.engine import DriftReport, DriftSettings, measure_drift
from ingestion_project.drift.summaries import summarize

ROWS = 100_000
ALPHA = 0.05
CITIES = np.array(["north", "south", "east", "west", "centre"])
CITY_SHARES = np.array([0.35, 0.25, 0.2, 0.15, 0.05])
# Categorical frequencies changed: two points moved from the largest city to the smallest two.
SHIFTED_CITY_SHARES = np.array([0.33, 0.25, 0.2, 0.16, 0.06])
HEAVY_TAIL_DF = 5  # Student's t, rescaled to unit variance: same mean and sd, heavier tails


def unit_t(rng: np.random.Generator, rows: int) -> np.ndarray:
    return rng.standard_t(HEAVY_TAIL_DF, rows) / np.sqrt(HEAVY_TAIL_DF / (HEAVY_TAIL_DF - 2))


def shifted_columns(rng: np.random.Generator, shifted: bool) -> dict[str, np.ndarray]:
    """One column per kind of shift; with ``shifted`` false, all are drawn as in the baseline."""
    nulls = rng.normal(size=ROWS)
    if shifted:
        nulls[rng.random(ROWS) < 0.3] = np.nan
    return {
        "mean_shift": rng.normal(0.1 if shifted else 0.0, 1.0, ROWS),
        "variance": rng.normal(0.0, np.sqrt(1.5) if shifted else 1.0, ROWS),
        "category": rng.choice(CITIES, ROWS, p=SHIFTED_CITY_SHARES if shifted else CITY_SHARES),
        "rare_flag": (rng.random(ROWS) < (0.2 if shifted else 0.1)).astype(np.int64),
        "nulls": nulls,
        "heavy_tail": unit_t(rng, ROWS) if shifted else rng.normal(size=ROWS),
    }


SHIFTED = list(shifted_columns(np.random.default_rng(0), False))


def steady_columns(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Columns drawn the same way on both sides, of every type a table has."""
    return {
        "income": rng.lognormal(10.0, 0.8, ROWS),
        "age": rng.integers(18, 90, ROWS),
        "score": rng.normal(size=ROWS),
        "ratio": rng.uniform(size=ROWS),
        "visits": rng.poisson(3.0, ROWS),
        "channel": rng.choice(["web", "app", "shop"], ROWS, p=[0.6, 0.3, 0.1]),
        "member": (rng.random(ROWS) < 0.4).astype(np.int64),
        "sparse": np.where(rng.random(ROWS) < 0.1, np.nan, rng.normal(size=ROWS)),
    }


STEADY = list(steady_columns(np.random.default_rng(0)))


def draw(seed: int, shifted: bool) -> DriftReport:
    """A baseline and a target of ``ROWS`` rows each, measured with the default settings."""
    rng = np.random.default_rng(seed)
    baseline = pd.DataFrame({**shifted_columns(rng, False), **steady_columns(rng)})
    target = pd.DataFrame({**shifted_columns(rng, shifted), **steady_columns(rng)})
    summary = summarize(baseline, list(baseline.columns))
    return measure_drift(summary, target, DriftSettings(alpha=ALPHA))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_shifted_column_is_flagged(seed: int) -> None:
    report = draw(seed, shifted=True)

    missed = [name for name in SHIFTED if not report.feature(name).drifted]
    assert not missed, report.to_dict()
    assert report.feature("nulls").reason.endswith("nulls")
    assert report.feature("nulls").quality.target_null_rate == pytest.approx(0.3, abs=0.01)
    assert report.feature("rare_flag").kind == report.feature("category").kind == "categorical"
    assert report.feature("rare_flag").method == "chi_squared"
    for name in ("mean_shift", "variance", "heavy_tail"):
        assert report.feature(name).method == "ks"
        assert report.feature(name).reason == "distribution"


DRAWS = 40


def test_false_alarms_without_drift_stay_at_or_below_the_nominal_level() -> None:
    columns = SHIFTED + STEADY
    reports = [draw(100 + seed, shifted=False) for seed in range(DRAWS)]
    alarms = np.array([[report.feature(name).drifted for name in columns] for report in reports])
    # Every column is unshifted here: BH at level alpha keeps the chance of any false alarm in a
    # draw at alpha, so the share of alarmed columns stays far below it.
    assert alarms.mean() <= ALPHA
    assert alarms.any(axis=1).mean() <= ALPHA + 2 * np.sqrt(ALPHA * (1 - ALPHA) / DRAWS)


def test_beside_shifted_columns_the_false_discovery_rate_holds() -> None:
    """With real drift in six columns, the steady ones are flagged at most at the FDR level."""
    discoveries, steady_alarms = [], []
    for seed in range(DRAWS):
        report = draw(200 + seed, shifted=True)
        flagged = set(report.drifted)
        assert set(SHIFTED) <= flagged
        false = flagged & set(STEADY)
        discoveries.append(len(false) / len(flagged))
        steady_alarms.append(len(false) / len(STEADY))
    # BH bounds the expected share of false discoveries by alpha * 8 / 14 (eight of the fourteen
    # columns are steady), about 0.029; the mean over 40 draws has a sd of about 0.009.
    assert np.mean(discoveries) <= ALPHA
    assert np.mean(steady_alarms) <= ALPHA


def test_per_test_alpha_without_fdr_is_the_nominal_level_per_column() -> None:
    """With fdr off each column is tested at alpha on its own: about 5 % of steady columns."""
    rng = np.random.default_rng(7)
    rows = 2_000  # the nominal level does not depend on the size; small keeps this quick
    alarms = []
    for _ in range(200):
        baseline = pd.DataFrame({"x": rng.normal(size=rows), "c": rng.choice(list("abc"), rows)})
        target = pd.DataFrame({"x": rng.normal(size=rows), "c": rng.choice(list("abc"), rows)})
        report = measure_drift(
            summarize(baseline, ["x", "c"]), target, DriftSettings(alpha=ALPHA, fdr=False)
        )
        alarms.append([feature.drifted for feature in report.features])
    rate = np.mean(alarms)
    # 400 tests at 5 %: the binomial's sd is 1.1 points, so three sd either side.
    assert 0.05 - 0.033 <= rate <= 0.05 + 0.033
