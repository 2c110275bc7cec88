"""measure_drift end to end: streaming, verdicts, quality signals, reports and errors."""

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ingestion_project.drift.engine import (
    DriftReport,
    DriftSettings,
    measure_drift,
)
from ingestion_project.drift.summaries import BaselineSummary, summarize

ROWS = 20_000


def frames(shifted: bool, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.lognormal(1.0 + (0.1 if shifted else 0.0), 0.5, ROWS),
            "age": rng.integers(18, 90, ROWS),
            "score": rng.normal(size=ROWS),
            "city": rng.choice(["x", "y", "z"], ROWS, p=[0.5, 0.3, 0.2]),
            "flag": (rng.random(ROWS) < (0.2 if shifted else 0.1)).astype(int),
        }
    )


COLUMNS = ["amount", "age", "score", "city", "flag"]


@pytest.fixture(scope="module")
def baseline() -> BaselineSummary:
    return summarize(frames(False, 0), COLUMNS, sample_size=5000)


@pytest.fixture(scope="module")
def target() -> pd.DataFrame:
    return frames(True, 1)


def same(first: Any, second: Any) -> bool:
    """Equal reports as plain data, floats up to rounding."""
    if isinstance(first, dict):
        return first.keys() == second.keys() and all(same(first[k], second[k]) for k in first)
    if isinstance(first, list):
        return len(first) == len(second) and all(map(same, first, second))
    if isinstance(first, float) and isinstance(second, float):
        return math.isclose(first, second, rel_tol=1e-9, abs_tol=1e-12)
    return first == second


def test_shifted_features_drift_and_the_others_do_not(
    baseline: BaselineSummary, target: pd.DataFrame
) -> None:
    report = measure_drift(baseline, target)

    assert report.drifted == ("amount", "flag")
    assert report.feature("amount").method == "ks"
    assert report.feature("flag").method == "chi_squared"
    assert report.feature("flag").kind == "categorical"
    assert report.feature("amount").reason == "distribution"
    assert report.drift_share == 2 / 5
    assert report.magnitude == pytest.approx(np.mean([f.distance for f in report.features]))
    assert sum(f.contribution for f in report.features) == pytest.approx(1.0)
    assert report.baseline_rows == report.target_rows == ROWS
    for feature in report.features:
        assert feature.p_value is not None and feature.adjusted_p_value is not None
        assert feature.adjusted_p_value >= feature.p_value
        assert feature.threshold == 0.05
        assert 0 <= feature.distance <= 1


@pytest.mark.parametrize("batch_rows", [1, 999, 7000])
def test_the_report_does_not_depend_on_how_the_target_is_cut(
    baseline: BaselineSummary, target: pd.DataFrame, batch_rows: int
) -> None:
    settings = DriftSettings(methods={"amount": "wasserstein", "age": "psi", "city": "psi"})
    whole = measure_drift(baseline, target, settings).to_dict()
    table = pa.Table.from_pandas(target.iloc[: batch_rows * 3] if batch_rows == 1 else target)
    if batch_rows == 1:
        whole = measure_drift(baseline, table, settings).to_dict()
    as_batches = table.to_batches(max_chunksize=batch_rows)
    as_frames = [
        target.iloc[start : start + batch_rows] for start in range(0, len(table), batch_rows)
    ]

    assert same(measure_drift(baseline, as_batches, settings).to_dict(), whole)
    assert same(measure_drift(baseline, as_frames, settings).to_dict(), whole)
    assert same(measure_drift(baseline, table, settings).to_dict(), whole)


def test_report_round_trips_through_plain_json(
    baseline: BaselineSummary, target: pd.DataFrame
) -> None:
    target = target.assign(score=np.nan)
    report = measure_drift(baseline, target)

    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    restored = DriftReport.from_dict(data)

    assert data["drifted"] == list(report.drifted)
    assert same(restored.to_dict(), report.to_dict())
    assert math.isnan(restored.feature("score").statistic)
    assert restored.feature("city").quality == report.feature("city").quality


def test_an_all_null_column_drifts_by_nulls(baseline: BaselineSummary) -> None:
    target = frames(False, 2).assign(score=np.nan, city=None)

    report = measure_drift(baseline, target)

    for name in ("score", "city"):
        feature = report.feature(name)
        assert feature.drifted and feature.reason == "nulls"
        assert math.isnan(feature.statistic) and feature.distance == 0.0
        assert feature.quality.target_null_rate == 1.0
        assert feature.p_value == feature.quality.null_p_value


def test_injected_nulls_drift_by_nulls_and_a_shift_by_distribution(
    baseline: BaselineSummary,
) -> None:
    target = frames(False, 3)
    target["score"] = target["score"].mask(np.arange(ROWS) % 5 == 0)
    target["amount"] = (target["amount"] * 1.2).mask(np.arange(ROWS) % 4 == 0)

    report = measure_drift(baseline, target)

    assert report.feature("score").reason == "nulls"
    assert report.feature("score").quality.target_null_rate == pytest.approx(0.2)
    assert report.feature("amount").reason == "distribution and nulls"


def test_quality_signals(baseline: BaselineSummary) -> None:
    target = frames(False, 4)
    target["city"] = np.where(np.arange(ROWS) % 10 == 0, "new town", target["city"])
    target["age"] = np.where(np.arange(ROWS) % 20 == 0, 150, target["age"])
    score = target["score"].astype(object)
    score[:7] = "not a number"
    target["score"] = score

    report = measure_drift(baseline, target)

    city, age, score_drift = report.feature("city"), report.feature("age"), report.feature("score")
    assert city.quality.unseen_categories == ("new town",)
    assert city.quality.unseen_rate == pytest.approx(0.1)
    assert age.quality.out_of_range_rate == pytest.approx(0.05)
    assert age.quality.unseen_categories == ()
    assert score_drift.quality.type_errors == 7
    assert score_drift.quality.target_null_rate == pytest.approx(7 / ROWS)


def test_unseen_categories_are_capped_and_ordered_by_rows(baseline: BaselineSummary) -> None:
    target = frames(False, 5)
    target["city"] = [f"c{index % 30:02d}" for index in range(ROWS)]
    target.loc[:4999, "city"] = "most"

    quality = measure_drift(baseline, target).feature("city").quality

    assert len(quality.unseen_categories) == 20
    assert quality.unseen_categories[0] == "most"
    assert quality.unseen_rate == 1.0


def test_a_flag_stored_as_floats_or_booleans_reads_the_same(baseline: BaselineSummary) -> None:
    target = frames(False, 6)
    as_float = measure_drift(baseline, target.assign(flag=target["flag"].astype(float)))
    as_int = measure_drift(baseline, target)

    assert as_float.feature("flag").statistic == as_int.feature("flag").statistic
    assert as_float.feature("flag").quality.unseen_categories == ()


def test_distance_methods_use_thresholds(baseline: BaselineSummary, target: pd.DataFrame) -> None:
    low = DriftSettings(
        methods={"amount": "psi", "city": "jensen_shannon"}, thresholds={"psi": 0.01}
    )
    high = DriftSettings(methods={"amount": "psi", "city": "jensen_shannon"})

    amount_low = measure_drift(baseline, target, low).feature("amount")
    amount_high = measure_drift(baseline, target, high).feature("amount")

    assert amount_low.p_value is None and amount_low.adjusted_p_value is None
    assert amount_low.threshold == 0.01 and amount_high.threshold == 0.2
    assert 0.01 <= amount_low.effect < 0.2
    assert amount_low.drifted and not amount_high.drifted
    city = measure_drift(baseline, target, high).feature("city")
    assert city.method == "jensen_shannon" and city.threshold == 0.1 and not city.drifted


def test_min_effect_keeps_small_significant_shifts_quiet(
    baseline: BaselineSummary, target: pd.DataFrame
) -> None:
    distance = measure_drift(baseline, target).feature("amount").distance

    assert (
        measure_drift(baseline, target, DriftSettings(min_effect=distance / 2))
        .feature("amount")
        .drifted
    )
    assert (
        not measure_drift(baseline, target, DriftSettings(min_effect=distance * 2))
        .feature("amount")
        .drifted
    )


def test_without_fdr_adjusted_equals_raw(baseline: BaselineSummary, target: pd.DataFrame) -> None:
    report = measure_drift(baseline, target, DriftSettings(fdr=False))

    assert not report.fdr
    for feature in report.features:
        assert feature.adjusted_p_value == feature.p_value
        assert feature.drifted == (feature.p_value is not None and feature.p_value <= 0.05)


def test_a_subset_of_features(baseline: BaselineSummary, target: pd.DataFrame) -> None:
    report = measure_drift(baseline, target[["city", "score"]], features=["score", "city"])

    assert [feature.feature for feature in report.features] == ["score", "city"]


def test_a_feature_missing_from_the_target(baseline: BaselineSummary) -> None:
    with pytest.raises(
        ValueError, match=r"target has no column\(s\) \['flag'\]; its columns are \['amount'"
    ):
        measure_drift(baseline, frames(False, 7).drop(columns="flag"))


@pytest.mark.parametrize(
    "empty",
    [
        pd.DataFrame({name: [] for name in COLUMNS}),
        [],
        pa.table({name: pa.array([], pa.float64()) for name in COLUMNS}),
    ],
    ids=["frame", "no batches", "table"],
)
def test_a_target_without_rows(baseline: BaselineSummary, empty: Any) -> None:
    with pytest.raises(ValueError, match="target has no rows"):
        measure_drift(baseline, empty)


@pytest.mark.parametrize(
    ("settings", "features", "message"),
    [
        (DriftSettings(methods={"city": "ks"}), None, "'ks' does not apply to categorical"),
        (DriftSettings(methods={"age": "chi_squared"}), None, "'chi_squared' does not apply"),
        (DriftSettings(methods={"nope": "ks"}), None, r"\['nope'\] are not in the baseline"),
        (DriftSettings(), ["age", "age"], "more than once"),
        (DriftSettings(), ["height"], r"\['height'\] are not in the baseline"),
    ],
)
def test_feature_and_method_errors(
    baseline: BaselineSummary,
    target: pd.DataFrame,
    settings: DriftSettings,
    features: list[str] | None,
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        measure_drift(baseline, target, settings, features=features)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"methods": {"age": "t-test"}}, "Unknown drift method"),
        ({"thresholds": {"ks": 0.1}}, "distance methods"),
        ({"thresholds": {"psi": -1.0}}, "0 or more"),
        ({"min_effect": 2.0}, "min_effect"),
    ],
)
def test_settings_are_checked(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DriftSettings(**arguments)


def test_a_summary_read_back_from_bytes_gives_the_same_report(
    baseline: BaselineSummary, target: pd.DataFrame
) -> None:
    restored = BaselineSummary.from_bytes(baseline.to_bytes())

    assert measure_drift(restored, target).to_dict() == measure_drift(baseline, target).to_dict()
