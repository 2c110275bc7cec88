"""Per-column data drift between a baseline and a current frame, computed with evidently.

evidently is imported inside `compute_drift` only: importing it takes seconds, and code locations
that merely import this module (definitions loading, sensors) should not pay for it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

NUMERICAL = "numerical"
CATEGORICAL = "categorical"

_BAR_CELLS = 8
_DRIFTED_STATUS = "FAIL"


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one column as evidently's statistical test judged it.

    `score` and `threshold` are in the test's own units: for p-value tests (e.g. "K-S p_value")
    a score below the threshold means drift, for distances (e.g. "Wasserstein distance (normed)")
    a score at or above it does.
    """

    column: str
    kind: str
    stattest: str
    score: float
    threshold: float
    drifted: bool

    @property
    def severity(self) -> float:
        """How far the score is towards drift, relative to the threshold (1.0 = on it).

        Lets distances and p-values share one scale; evidently's verdict tells which way a test
        points, so no table of test names is needed.
        """
        lower_means_drift = self.drifted == (self.score < self.threshold)
        if lower_means_drift:
            return math.inf if self.score <= 0 else self.threshold / self.score
        return math.inf if self.threshold <= 0 else self.score / self.threshold

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so the result can go into Dagster metadata or JSON."""
        return {
            "column": self.column,
            "kind": self.kind,
            "stattest": self.stattest,
            "score": self.score,
            "threshold": self.threshold,
            "drifted": self.drifted,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureDrift:
        """Rebuild a feature result stored with `to_dict`."""
        return cls(
            column=str(data["column"]),
            kind=str(data["kind"]),
            stattest=str(data["stattest"]),
            score=float(data["score"]),
            threshold=float(data["threshold"]),
            drifted=bool(data["drifted"]),
        )


@dataclass(frozen=True)
class DriftResult:
    """Drift of every compared column, plus the sizes of the two samples behind it."""

    features: tuple[FeatureDrift, ...]
    drift_share: float
    baseline_rows: int
    current_rows: int

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        """Names of the drifted columns, in the order they were compared."""
        return tuple(feature.column for feature in self.features if feature.drifted)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so the result can go into Dagster metadata or JSON."""
        return {
            "drift_share": self.drift_share,
            "baseline_rows": self.baseline_rows,
            "current_rows": self.current_rows,
            "drifted_columns": list(self.drifted_columns),
            "features": [feature.to_dict() for feature in self.features],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftResult:
        """Rebuild a result stored with `to_dict`; `drifted_columns` is derived, so ignored."""
        return cls(
            features=tuple(FeatureDrift.from_dict(item) for item in data["features"]),
            drift_share=float(data["drift_share"]),
            baseline_rows=int(data["baseline_rows"]),
            current_rows=int(data["current_rows"]),
        )


def _validate_inputs(
    baseline: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str],
    categorical: Sequence[str],
) -> None:
    """Fail before evidently does, with messages that say which column or frame is wrong."""
    if not columns:
        raise ValueError("No columns to compare: pass at least one column name in `columns`.")
    duplicates = sorted(name for name, count in Counter(columns).items() if count > 1)
    if duplicates:
        raise ValueError(f"Columns listed more than once: {duplicates}. List each column once.")
    stray = [name for name in categorical if name not in columns]
    if stray:
        raise ValueError(
            f"Categorical columns {stray} are not in `columns` {list(columns)}; "
            "add them to `columns` or drop them from `categorical`."
        )
    for label, frame in (("baseline", baseline), ("current", current)):
        missing = [name for name in columns if name not in frame.columns]
        if missing:
            raise ValueError(
                f"The {label} frame has no column(s) {missing}; it has {list(frame.columns)}. "
                "Fix the column names or the data."
            )
        if frame.empty:
            raise ValueError(f"The {label} frame is empty; drift needs rows in both frames.")
        not_numeric = [
            name
            for name in columns
            if name not in categorical and not pd.api.types.is_numeric_dtype(frame[name])
        ]
        if not_numeric:
            raise ValueError(
                f"Column(s) {not_numeric} in the {label} frame are not numeric; "
                "list them in `categorical` or convert them to numbers."
            )


def _features_from_snapshot(
    snapshot: Mapping[str, Any], columns: Sequence[str], categorical: Sequence[str]
) -> tuple[FeatureDrift, ...]:
    """Read each column's ValueDrift test out of `Snapshot.dict()`.

    The test carries the resolved stattest, threshold and evidently's verdict; the metric with
    the same id carries the score.
    """
    scores = {metric["id"]: metric["value"] for metric in snapshot["metrics"]}
    by_column: dict[str, FeatureDrift] = {}
    for test in snapshot["tests"]:
        config = test["metric_config"]
        params = config["params"]
        if not params.get("type", "").endswith(":ValueDrift"):
            continue
        column = params["column"]
        by_column[column] = FeatureDrift(
            column=column,
            kind=CATEGORICAL if column in categorical else NUMERICAL,
            stattest=str(params["method"]),
            score=float(scores[config["metric_id"]]),
            threshold=float(params["threshold"]),
            drifted=test["status"] == _DRIFTED_STATUS,
        )
    missing = [name for name in columns if name not in by_column]
    if missing:
        raise RuntimeError(
            f"evidently returned no value-drift test for column(s) {missing}; "
            "the installed evidently version may lay out its snapshot differently."
        )
    return tuple(by_column[name] for name in columns)


def compute_drift(
    baseline: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str],
    *,
    categorical: Sequence[str] = (),
    html: bool = True,
) -> tuple[DriftResult, str]:
    """Return per-column drift (evidently) and the evidently HTML report as a string.

    ``html=False`` skips rendering the report (an empty string instead): backtests compare
    many windows and read only the figures.

    evidently picks each column's test by type and size (e.g. K-S or chi-square on small
    baselines, Wasserstein or Jensen-Shannon above 1,000 rows), so results stay comparable with
    its report.

    Args:
        baseline: The reference data, e.g. what the current model was trained on.
        current: The new data to compare against the baseline.
        columns: Columns to compare; those not in `categorical` must be numeric.
        categorical: The subset of `columns` to treat as categories.
        html: Whether to render evidently's report (an empty string when not).

    Returns:
        The per-column result and a self-contained HTML document of evidently's report.

    Raises:
        ValueError: If a column is missing or not numeric, or a frame is empty.
    """
    _validate_inputs(baseline, current, columns, categorical)

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    names = list(columns)
    definition = DataDefinition(
        numerical_columns=[name for name in names if name not in categorical],
        categorical_columns=[name for name in names if name in categorical],
    )
    # include_tests makes each ValueDrift carry evidently's drifted/not-drifted verdict.
    report = Report([DataDriftPreset(columns=names)], include_tests=True)
    snapshot = report.run(
        current_data=Dataset.from_pandas(current.loc[:, names], data_definition=definition),
        reference_data=Dataset.from_pandas(baseline.loc[:, names], data_definition=definition),
    )
    features = _features_from_snapshot(snapshot.dict(), names, categorical)
    drifted = sum(feature.drifted for feature in features)
    result = DriftResult(
        features=features,
        drift_share=drifted / len(features),
        baseline_rows=len(baseline),
        current_rows=len(current),
    )
    return result, snapshot.get_html_str(as_iframe=False) if html else ""


def _severity_bar(feature: FeatureDrift) -> str:
    """Eight cells with the threshold at the midpoint: half full or more means drifted."""
    half = _BAR_CELLS // 2
    severity = feature.severity
    if math.isnan(severity):
        filled = 0
    elif math.isinf(severity):
        filled = _BAR_CELLS
    else:
        filled = int(severity * half)
    # Keep the bar on the same side of the midpoint as evidently's verdict, even at the edge.
    filled = max(half, filled) if feature.drifted else min(half - 1, filled)
    filled = max(0, min(_BAR_CELLS, filled))
    return "█" * filled + "░" * (_BAR_CELLS - filled)


def drift_markdown(result: DriftResult) -> str:
    """A markdown table for the Dagster UI: column, test, score, threshold, drifted, and a bar.

    Drifted rows come first so the reason for a retrain is at the top; the bar puts each test's
    threshold at its midpoint, so distances and p-values read the same way.
    """
    drifted = len(result.drifted_columns)
    lines = [
        f"**{drifted} of {len(result.features)} columns drifted "
        f"({result.drift_share:.0%})**: baseline {result.baseline_rows:,} rows, "
        f"current {result.current_rows:,} rows.",
        "",
        "| column | test | score | threshold | drifted | score vs threshold |",
        "| --- | --- | ---: | ---: | :---: | --- |",
    ]
    ordered = sorted(result.features, key=lambda feature: not feature.drifted)
    lines.extend(
        f"| {feature.column} | {feature.stattest} | {feature.score:.3g} | "
        f"{feature.threshold:.3g} | {'yes' if feature.drifted else 'no'} | "
        f"`{_severity_bar(feature)}` |"
        for feature in ordered
    )
    return "\n".join(lines)
