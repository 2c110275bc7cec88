import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ingestion_project.monitoring.drift import (
    DriftResult,
    FeatureDrift,
    compute_drift,
    drift_markdown,
)

DATA_NAME = "bikeshare_2011_hourly.csv"
NUMERICAL = ["temp", "atemp", "hum", "windspeed"]
CATEGORICAL = ["weathersit"]
COLUMNS = [*NUMERICAL, *CATEGORICAL]


def _data_path() -> Path:
    local = Path(__file__).parents[2].parent / "shared" / "data" / DATA_NAME
    return local if local.exists() else Path("/work/shared/data") / DATA_NAME


@pytest.fixture(scope="module")
def bikeshare() -> pd.DataFrame:
    frame = pd.read_csv(_data_path())
    # The `mnth` labels are inconsistent ("Jan", "March", "Sept"); day of year is not.
    start = pd.Timestamp("2011-01-01")
    frame["month"] = (start + pd.to_timedelta(frame["day"] - 1, unit="D")).dt.month
    return frame


@pytest.fixture(scope="module")
def jan_apr(bikeshare: pd.DataFrame) -> pd.DataFrame:
    return bikeshare[bikeshare["month"].between(1, 4)]


@pytest.fixture(scope="module")
def jun_aug(bikeshare: pd.DataFrame) -> pd.DataFrame:
    return bikeshare[bikeshare["month"].between(6, 8)]


@pytest.fixture(scope="module")
def seasonal(jan_apr: pd.DataFrame, jun_aug: pd.DataFrame) -> tuple[DriftResult, str]:
    return compute_drift(jan_apr, jun_aug, COLUMNS, categorical=CATEGORICAL)


def test_seasonal_drift_is_detected(seasonal: tuple[DriftResult, str]) -> None:
    result, _ = seasonal

    assert {"temp", "atemp"} <= set(result.drifted_columns)
    assert result.drift_share >= 0.4
    assert result.drift_share == len(result.drifted_columns) / len(result.features)
    assert [feature.column for feature in result.features] == COLUMNS
    assert result.baseline_rows == 2786
    assert result.current_rows == 2195


def test_seasonal_drift_uses_evidently_defaults_for_large_baselines(
    seasonal: tuple[DriftResult, str],
) -> None:
    result, _ = seasonal
    by_column = {feature.column: feature for feature in result.features}

    for name in NUMERICAL:
        assert by_column[name].kind == "numerical"
        assert by_column[name].stattest == "Wasserstein distance (normed)"
    assert by_column["weathersit"].kind == "categorical"
    assert by_column["weathersit"].stattest == "Jensen-Shannon distance"
    temp = by_column["temp"]
    assert temp.score > temp.threshold > 0


def test_seasonal_drift_returns_full_html_document(seasonal: tuple[DriftResult, str]) -> None:
    _, html = seasonal

    assert "<html" in html[:1000]
    assert html.rstrip().endswith("</html>")


def test_small_baseline_uses_p_value_tests(bikeshare: pd.DataFrame) -> None:
    january = bikeshare[bikeshare["month"] == 1]
    july = bikeshare[bikeshare["month"] == 7]

    result, _ = compute_drift(january, july, COLUMNS, categorical=CATEGORICAL)
    temp = next(feature for feature in result.features if feature.column == "temp")

    assert temp.stattest == "K-S p_value"
    assert temp.drifted
    assert temp.score < temp.threshold
    weathersit = next(feature for feature in result.features if feature.column == "weathersit")
    assert weathersit.stattest == "chi-square p_value"


def test_sample_of_same_frame_has_no_drift(jan_apr: pd.DataFrame) -> None:
    sample = jan_apr.sample(frac=0.5, random_state=7)

    result, _ = compute_drift(jan_apr, sample, COLUMNS, categorical=CATEGORICAL)

    assert result.drifted_columns == ()
    assert result.drift_share == 0
    assert not any(feature.drifted for feature in result.features)


@pytest.mark.parametrize("side", ["baseline", "current"])
def test_missing_column_is_named(jan_apr: pd.DataFrame, jun_aug: pd.DataFrame, side: str) -> None:
    baseline = jan_apr.drop(columns=["hum"]) if side == "baseline" else jan_apr
    current = jun_aug.drop(columns=["hum"]) if side == "current" else jun_aug

    with pytest.raises(ValueError, match=rf"{side} frame has no column\(s\) \['hum'\]"):
        compute_drift(baseline, current, COLUMNS, categorical=CATEGORICAL)


@pytest.mark.parametrize("side", ["baseline", "current"])
def test_empty_frame_is_rejected(jan_apr: pd.DataFrame, jun_aug: pd.DataFrame, side: str) -> None:
    baseline = jan_apr.iloc[:0] if side == "baseline" else jan_apr
    current = jun_aug.iloc[:0] if side == "current" else jun_aug

    with pytest.raises(ValueError, match=f"{side} frame is empty"):
        compute_drift(baseline, current, COLUMNS, categorical=CATEGORICAL)


def test_text_column_must_be_declared_categorical(
    jan_apr: pd.DataFrame, jun_aug: pd.DataFrame
) -> None:
    with pytest.raises(ValueError, match=r"\['weathersit'\].*not numeric.*categorical"):
        compute_drift(jan_apr, jun_aug, COLUMNS)


def test_categorical_outside_columns_is_rejected(
    jan_apr: pd.DataFrame, jun_aug: pd.DataFrame
) -> None:
    with pytest.raises(ValueError, match=r"Categorical columns \['mnth'\]"):
        compute_drift(jan_apr, jun_aug, NUMERICAL, categorical=["mnth"])


def test_no_columns_is_rejected(jan_apr: pd.DataFrame, jun_aug: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="No columns"):
        compute_drift(jan_apr, jun_aug, [])


def test_round_trip_through_json(seasonal: tuple[DriftResult, str]) -> None:
    result, _ = seasonal

    encoded = json.dumps(result.to_dict())
    restored = DriftResult.from_dict(json.loads(encoded))

    assert restored == result
    assert DriftResult.from_dict(result.to_dict()) == result
    assert json.loads(encoded)["drifted_columns"] == list(result.drifted_columns)


def _feature(column: str, *, drifted: bool, score: float, stattest: str) -> FeatureDrift:
    threshold = 0.05 if "p_value" in stattest else 0.1
    return FeatureDrift(
        column=column,
        kind="numerical",
        stattest=stattest,
        score=score,
        threshold=threshold,
        drifted=drifted,
    )


def test_markdown_lists_drifted_rows_first() -> None:
    result = DriftResult(
        features=(
            _feature("calm", drifted=False, score=0.02, stattest="Wasserstein distance (normed)"),
            _feature("shifted", drifted=True, score=0.4, stattest="Wasserstein distance (normed)"),
            _feature("steady", drifted=False, score=0.8, stattest="K-S p_value"),
            _feature("moved", drifted=True, score=1e-30, stattest="K-S p_value"),
        ),
        drift_share=0.5,
        baseline_rows=100,
        current_rows=50,
    )

    markdown = drift_markdown(result)
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]
    row_columns = [row.split("|")[1].strip() for row in rows[1:]]

    assert row_columns == ["shifted", "moved", "calm", "steady"]
    assert "2 of 4 columns drifted (50%)" in markdown
    # The threshold is the bar's midpoint, whichever way the test points.
    bars = {name: row.split("`")[1] for name, row in zip(row_columns, rows[1:], strict=True)}
    assert bars["shifted"] == "████████"
    assert bars["moved"] == "████████"
    assert bars["calm"] == "░░░░░░░░"
    assert bars["steady"] == "░░░░░░░░"


def test_markdown_of_real_result_names_every_column(seasonal: tuple[DriftResult, str]) -> None:
    result, _ = seasonal

    markdown = drift_markdown(result)
    table_rows = [line for line in markdown.splitlines() if line.startswith("| ")][2:]

    assert len(table_rows) == len(COLUMNS)
    for name in COLUMNS:
        assert f"| {name} |" in markdown
    drifted_flags = [row.split("|")[5].strip() for row in table_rows]
    assert drifted_flags == sorted(drifted_flags, key=lambda flag: flag != "yes")


def test_importing_module_does_not_import_evidently() -> None:
    code = "import sys, ingestion_project.monitoring.drift; sys.exit('evidently' in sys.modules)"

    completed = subprocess.run([sys.executable, "-c", code], check=False, timeout=60)

    assert completed.returncode == 0
