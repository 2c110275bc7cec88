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
