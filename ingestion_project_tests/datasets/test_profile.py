"""The column profile every tabular version records: exact where it is cheap, estimated beyond."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingestion_project.datasets.profile import EXACT_DISTINCT, frame_profile


def by_column(frame: pd.DataFrame) -> dict[str, dict[str, object]]:
    return {row.column: row.model_dump() for row in frame_profile(frame)}


def test_each_kind_of_column_is_profiled_as_pandas_would_describe_it() -> None:
    frame = pd.DataFrame(
        {
            "amount": [1.5, 2.0, 2.0, None],
            "city": ["Oslo", "Bergen", None, "Bergen"],
            "kind": pd.Categorical(["a", "b", "a", None]),
            "flag": [True, False, True, True],
            "at": pd.to_datetime(["2024-01-02", "2024-01-01", None, "2024-01-03"]),
            "count": pd.array([1, None, 3, 3], dtype="Int64"),
            "tags": [["x", "y"], ["x", "y"], None, {"z": 1}],
        }
    )

    profile = by_column(frame)

    assert profile["amount"] | {"column": None} == {
        "column": None,
        "type": "float64",
        "nulls": 1,
        "distinct": 2,
        "min": 1.5,
        "max": 2,
        "mean": pytest.approx(5.5 / 3, abs=1e-6),
    }
    assert (profile["city"]["nulls"], profile["city"]["distinct"]) == (1, 2)
    assert (profile["city"]["min"], profile["city"]["max"]) == ("Bergen", "Oslo")
    assert (profile["kind"]["distinct"], profile["kind"]["nulls"]) == (2, 1)
    assert (profile["flag"]["distinct"], profile["flag"]["min"]) == (2, "False")
    assert profile["at"]["min"] == "2024-01-01 00:00:00"
    assert (profile["at"]["nulls"], profile["at"]["distinct"]) == (1, 3)
    assert (profile["count"]["min"], profile["count"]["mean"]) == (1, pytest.approx(7 / 3))
    assert (profile["tags"]["distinct"], profile["tags"]["nulls"]) == (2, 1)


def test_distinct_counts_are_exact_below_the_limit_and_estimated_within_2_percent_above() -> None:
    rng = np.random.default_rng(7)
    rows = 1_000_000
    frame = pd.DataFrame(
        {
            "few": rng.integers(0, EXACT_DISTINCT - 1, rows),
            "ids": np.arange(rows),
            "floats": rng.random(rows),
            "repeated": np.repeat(np.arange(rows // 4), 4),
        }
    )

    profile = by_column(frame)

    assert profile["few"]["distinct"] == frame["few"].nunique()
    for column in ("ids", "floats", "repeated"):
        exact = frame[column].nunique()
        assert profile[column]["distinct"] == pytest.approx(exact, rel=0.02), column


def test_estimates_hold_for_values_with_structure_not_only_random_ones() -> None:
    """Prices in cents, times in whole seconds, ids in steps of 1,024, integers far apart."""
    rng = np.random.default_rng(11)
    rows = 1_000_000
    frame = pd.DataFrame(
        {
            "prices": np.round(rng.uniform(1.0, 5_000.0, rows), 2),
            "seconds": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 86_400 * 30, rows), unit="s"),
            "steps": rng.integers(0, 400_000, rows) * 1_024,
            "far": rng.integers(-(2**62), 2**62, rows),
            "halves": rng.integers(0, 300_000, rows) / 2,
            "signed_zeros": np.where(rng.random(rows) < 0.5, -0.0, 0.0),
        }
    )

    profile = by_column(frame)

    for column in ("prices", "seconds", "steps", "far", "halves"):
        exact = frame[column].nunique()
        assert exact > EXACT_DISTINCT
        assert profile[column]["distinct"] == pytest.approx(exact, rel=0.02), column
    assert profile["signed_zeros"]["distinct"] == 1  # -0.0 and 0.0 are one value to pandas


def test_narrow_integers_and_columns_with_few_values_are_counted_exactly() -> None:
    rng = np.random.default_rng(5)
    rows = 500_000
    frame = pd.DataFrame(
        {
            "ids": np.arange(rows, dtype=np.int64) + 10**12,  # dense: a bitmap
            "small": rng.integers(-3, 4, rows).astype(np.int16),
            "unsigned": rng.integers(0, 2**63, 1_000, dtype=np.uint64)[
                rng.integers(0, 1_000, rows)
            ],
            "few_floats": rng.choice([0.1, 0.2, 0.30000000000000004, np.nan], rows),
        }
    )

    profile = by_column(frame)

    for column in frame.columns:
        assert profile[column]["distinct"] == frame[column].nunique(), column
    assert (profile["small"]["min"], profile["small"]["max"]) == (-3, 3)
    assert profile["few_floats"]["nulls"] == int(frame["few_floats"].isna().sum())


def test_narrow_integers_that_span_their_whole_type_are_counted_exactly() -> None:
    """int16 from -30,000 to 30,000: the offsets overflow 16 bits, so they are taken in 64."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "int16": rng.integers(-30_000, 30_001, 200_000).astype(np.int16),
            "uint8": rng.integers(0, 256, 200_000).astype(np.uint8),
            "top_of_uint64": np.uint64(2**64 - 1)
            - rng.integers(0, 5_000, 200_000).astype(np.uint64),
        }
    )

    profile = by_column(frame)

    for column in frame.columns:
        assert profile[column]["distinct"] == frame[column].nunique(), column
    assert (profile["int16"]["min"], profile["int16"]["max"]) == (
        int(frame["int16"].min()),
        int(frame["int16"].max()),
    )


def test_times_report_their_extremes_as_pandas_prints_them() -> None:
    frame = pd.DataFrame(
        {
            "ms": pd.Series(
                pd.to_datetime(["2024-01-01 00:00:00.123", None, "2023-05-01 00:00:00.000"])
            ).astype("datetime64[ms]"),
            "waits": pd.to_timedelta(["1 days 00:00:01", "2 s", None]),
        }
    )

    profile = by_column(frame)

    for column in frame.columns:
        row = profile[column]
        assert (row["min"], row["max"]) == (str(frame[column].min()), str(frame[column].max()))
        assert (row["nulls"], row["distinct"]) == (1, 2)


@pytest.mark.parametrize("distinct", [9_000, 60_000, 400_000])
def test_counts_past_the_bitmap_fall_back_to_the_smallest_hashes(
    monkeypatch: pytest.MonkeyPatch, distinct: int
) -> None:
    """A bitmap too full to count from (here shrunk to 1,024 flags) hands over to the sketch."""
    from ingestion_project.datasets import profile

    monkeypatch.setattr(profile, "_FLAG_BITS", 10)
    rng = np.random.default_rng(distinct)
    values = rng.permutation(np.repeat(np.arange(distinct) * 0.25, 3))
    frame = pd.DataFrame({"quarters": values, "ids": (values * 4).astype(np.int64) * 4_096})

    counted = by_column(frame)

    for column in frame.columns:
        assert counted[column]["distinct"] == pytest.approx(distinct, rel=0.02), column


def test_nulls_are_found_however_the_sums_come_out() -> None:
    """Infinities of both signs sum to NaN without being null; NaT is found however it sorts."""
    frame = pd.DataFrame(
        {
            "infinities": [np.inf, -np.inf, 1.0, 1.0],
            "with_nan": [np.inf, np.nan, 2.0, 4.0],
            "times": pd.to_datetime(["2024-01-02", None, "2024-01-01", None]),
            "no_nat": pd.to_datetime(["2024-01-02", "2024-01-02", "2024-01-01", "1677-09-22"]),
        }
    )

    profile = by_column(frame)

    for column in frame.columns:
        row = profile[column]
        assert row["nulls"] == int(frame[column].isna().sum()), column
        assert row["distinct"] == frame[column].nunique(), column
    assert (profile["infinities"]["min"], profile["infinities"]["mean"]) == (-np.inf, None)
    assert (profile["with_nan"]["max"], profile["with_nan"]["mean"]) == (np.inf, np.inf)
    assert profile["no_nat"]["min"] == str(frame["no_nat"].min())
