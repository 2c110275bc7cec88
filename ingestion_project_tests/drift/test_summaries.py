"""Baseline summaries: kinds by type, the bounded sample, exact figures, and their bytes."""

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ingestion_project.drift.summaries import (
    CATEGORICAL,
    NUMERIC,
    BaselineSummary,
    CategoricalSummary,
    NumericSummary,
    summarize,
)


def numeric(summary: BaselineSummary, name: str) -> NumericSummary:
    feature = summary.features[name]
    assert isinstance(feature, NumericSummary)
    return feature


def categorical(summary: BaselineSummary, name: str) -> CategoricalSummary:
    feature = summary.features[name]
    assert isinstance(feature, CategoricalSummary)
    return feature


@pytest.fixture(scope="module")
def mixed() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = 1000
    return pd.DataFrame(
        {
            "float": rng.normal(size=rows),
            "integer": rng.integers(0, 50, rows),
            "flag": rng.integers(0, 2, rows),
            "float_flag": np.where(rng.random(rows) < 0.1, np.nan, rng.integers(0, 2, rows)),
            "constant": np.full(rows, 7.0),
            "boolean": rng.random(rows) < 0.5,
            "text": rng.choice(["a", "b", "c"], rows),
            "mixed_objects": pd.Series(rng.choice([1, "x", 2.5], rows), dtype=object),
            "pandas_category": pd.Categorical(rng.choice(["u", "v"], rows)),
            "pandas_string": pd.array(rng.choice(["p", "q", "r"], rows), dtype="string"),
            "codes": rng.integers(100, 110, rows),
        }
    )


def test_kinds_follow_the_types(mixed: pd.DataFrame) -> None:
    summary = summarize(mixed, list(mixed.columns), categorical=["codes"])

    kinds = {name: summary.kind(name) for name in mixed.columns}
    assert kinds == {
        "float": NUMERIC,
        "integer": NUMERIC,
        "flag": CATEGORICAL,
        "float_flag": CATEGORICAL,
        "constant": CATEGORICAL,
        "boolean": CATEGORICAL,
        "text": CATEGORICAL,
        "mixed_objects": CATEGORICAL,
        "pandas_category": CATEGORICAL,
        "pandas_string": CATEGORICAL,
        "codes": CATEGORICAL,
    }
    assert set(categorical(summary, "flag").counts) == {"0", "1"}
    assert set(categorical(summary, "boolean").counts) == {"true", "false"}
    assert set(categorical(summary, "mixed_objects").counts) == {"1", "x", "2.5"}
    assert set(categorical(summary, "codes").counts) == {str(code) for code in range(100, 110)}
    float_flag = categorical(summary, "float_flag")
    assert float_flag.nulls == mixed["float_flag"].isna().sum()
    assert float_flag.count + float_flag.nulls == len(mixed)
    assert float_flag.counts == {
        "0": int((mixed["float_flag"] == 0).sum()),
        "1": int((mixed["float_flag"] == 1).sum()),
    }


def test_arrow_dictionary_and_temporal_types() -> None:
    table = pa.table(
        {
            "city": pa.array(["x", "y", None, "x"]).dictionary_encode(),
            "when": pa.array([1, 2, 3, 4], pa.timestamp("s")),
        }
    )

    assert categorical(summarize(table, ["city"]), "city").counts == {"x": 2, "y": 1}
    with pytest.raises(ValueError, match=r"'when' has type timestamp\[s\].*categorical"):
        summarize(table, ["when"])
    assert summarize(table, ["when"], categorical=["when"]).kind("when") == CATEGORICAL


def test_exact_figures_when_the_baseline_fits_the_sample(mixed: pd.DataFrame) -> None:
    values = mixed["float"].to_numpy().copy()
    values[::10] = np.nan
    summary = numeric(summarize(pd.DataFrame({"x": values}), ["x"]), "x")

    present = values[~np.isnan(values)]
    assert summary.values.tolist() == np.unique(present).tolist()
    assert summary.cdf[-1] == 1.0
    assert summary.sample_counts.sum() == summary.sample_size == summary.count == len(present)
    assert summary.nulls == 100
    assert summary.minimum == present.min() and summary.maximum == present.max()
    assert summary.mean == pytest.approx(present.mean(), rel=1e-12)
    assert summary.std == pytest.approx(present.std(), rel=1e-12)


def test_sample_is_bounded_uniform_and_deterministic() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=50_000)
    frame = pd.DataFrame({"x": values})

    summary = numeric(summarize(frame, ["x"], sample_size=2000), "x")
    again = numeric(summarize(frame, ["x"], sample_size=2000), "x")
    other_seed = numeric(summarize(frame, ["x"], sample_size=2000, seed=1), "x")

    assert summary.sample_size == 2000 and len(summary.values) == 2000
    assert summary.count == 50_000
    assert np.isin(summary.values, values).all()
    assert summary == again
    assert not np.array_equal(summary.values, other_seed.values)
    # Uniform: the sample's quantiles sit near the data's.
    quantiles = np.quantile(values, [0.1, 0.5, 0.9])
    assert summary.values[np.searchsorted(summary.cdf, [0.1, 0.5, 0.9])] == pytest.approx(
        quantiles, abs=0.1
    )


def test_sample_does_not_depend_on_batch_sizes() -> None:
    rng = np.random.default_rng(2)
    table = pa.table(
        {"x": rng.normal(size=20_000), "flag": rng.integers(0, 2, 20_000).astype(float)}
    )

    whole = summarize(table, ["x", "flag"], sample_size=3000)
    streamed = summarize(table.to_batches(max_chunksize=777), ["x", "flag"], sample_size=3000)

    assert whole.features["flag"] == streamed.features["flag"]
    x, streamed_x = numeric(whole, "x"), numeric(streamed, "x")
    assert np.array_equal(x.values, streamed_x.values)
    assert np.array_equal(x.cdf, streamed_x.cdf)
    assert np.array_equal(x.bin_edges, streamed_x.bin_edges)
    # Moments are sums in a different order: equal up to rounding.
    assert (x.mean, x.std) == pytest.approx((streamed_x.mean, streamed_x.std), rel=1e-12)


def test_quantile_bins_hold_equal_shares_and_merge_ties() -> None:
    rng = np.random.default_rng(3)
    continuous = numeric(summarize(pd.DataFrame({"x": rng.normal(size=10_000)}), ["x"]), "x")
    lumpy = numeric(summarize(pd.DataFrame({"x": rng.poisson(1, 10_000)}), ["x"]), "x")

    assert len(continuous.bin_edges) == 9
    assert continuous.bin_shares == pytest.approx(np.full(10, 0.1))
    assert np.isin(continuous.bin_edges, continuous.values).all()
    assert len(lumpy.bin_edges) < 9
    assert lumpy.bin_shares.sum() == pytest.approx(1.0)
    assert (lumpy.bin_shares > 0).all()


def test_bytes_round_trip_without_pickle(mixed: pd.DataFrame) -> None:
    summary = summarize(mixed, list(mixed.columns), sample_size=500)

    data = summary.to_bytes()
    restored = BaselineSummary.from_bytes(data)

    assert restored == summary
    assert list(restored.features) == list(mixed.columns)
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        assert "header" in archive.files


def test_bytes_that_are_not_a_summary() -> None:
    with pytest.raises(ValueError, match="not a drift baseline summary"):
        BaselineSummary.from_bytes(b"not an archive")


@pytest.mark.parametrize(
    ("columns", "categorical", "message"),
    [
        (["x", "nope"], (), r"baseline has no column\(s\) \['nope'\]; its columns are \['x'\]"),
        (["x", "x"], (), "more than once"),
        (["x"], ["y"], "not in `columns`"),
        ([], (), "No columns"),
    ],
)
def test_errors_name_the_problem(columns: list[str], categorical: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        summarize(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), columns, categorical=categorical)


def test_a_baseline_without_rows_is_an_error() -> None:
    with pytest.raises(ValueError, match="baseline has no rows"):
        summarize(pd.DataFrame({"x": pd.Series([], dtype=float)}), ["x"])


def test_a_numeric_column_that_turns_to_text_is_an_error() -> None:
    batches = [pa.record_batch({"x": [1.0, 2.0, 3.0]}), pa.record_batch({"x": ["a", "b", "c"]})]
    with pytest.raises(ValueError, match="'x' changes type from double to string"):
        summarize(batches, ["x"])


def test_feature_kind_of_an_unknown_feature() -> None:
    summary = summarize(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), ["x"])
    with pytest.raises(KeyError, match="no feature 'y'"):
        summary.kind("y")
