"""One monitor window measured: the baseline's summary (computed once, kept), the target's drift.

The statistics are the drift engine's (``ingestion_project.drift``); this module decides what is
compared (input features, and the model's output as prediction drift), keeps each baseline's
summary in the registry's datastore so later windows only read the target, and turns the
per-feature verdicts into the monitor's share and magnitude.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pandas as pd

from ingestion_project.catalog.spec import MonitorSpec
from ingestion_project.datastores.base import FileDatastore
from ingestion_project.drift.engine import DriftReport, DriftSettings, FeatureDrift, measure_drift
from ingestion_project.drift.summaries import BaselineSummary, summarize
from ingestion_project.monitoring.sources import MonitorDataError, RowSource

SUMMARY_FORMAT = 1
BASELINE_SAMPLE = 100_000


@dataclass(frozen=True)
class WindowDrift:
    """The engine's report and the monitor's reading of it.

    ``drift_share`` and ``magnitude`` are over the input features; the model's output, when
    monitored, is ``prediction`` (prediction drift), reported apart so that it neither hides nor
    inflates drift of the inputs.
    """

    report: DriftReport
    inputs: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None
    drift_share: float
    magnitude: float

    @property
    def drifted(self) -> list[str]:
        return [feature.feature for feature in self.inputs if feature.drifted]


def engine_settings(spec: MonitorSpec) -> DriftSettings:
    thresholds = spec.thresholds
    return DriftSettings(
        alpha=thresholds.alpha,
        fdr=thresholds.fdr,
        methods=dict(spec.methods),
        thresholds={
            "wasserstein": thresholds.wasserstein,
            "psi": thresholds.psi,
            "jensen_shannon": thresholds.jensen_shannon,
        },
        min_effect=thresholds.min_effect,
    )


def summary_path(prefix: str, monitor: str, key: str) -> str:
    return f"{prefix.strip('/')}/monitors/{monitor}/baselines/{key}.npz"


def baseline_summary(
    source: RowSource,
    columns: Sequence[str],
    categorical: Sequence[str],
    store: FileDatastore,
    prefix: str,
    monitor: str,
) -> tuple[BaselineSummary, bool]:
    """The baseline's summary and whether it was reused; computed once per baseline and columns."""
    key = source.key(sorted(columns), sorted(categorical), BASELINE_SAMPLE, SUMMARY_FORMAT)
    path = summary_path(prefix, monitor, key)
    if store.exists(path):
        return BaselineSummary.from_bytes(store.read_bytes(path)), True
    frames = non_empty(source)
    first = next(frames, None)
    if first is None:
        raise MonitorDataError(
            f"the baseline ({source.label}) has no rows. Check its dataset version and window."
        )
    _require_columns(list(first.columns), columns, f"the baseline ({source.label})")
    summary = summarize(
        (frame[list(columns)] for frame in itertools.chain([first], frames)),
        columns,
        categorical=[column for column in categorical if column in columns],
        sample_size=BASELINE_SAMPLE,
    )
    store.write_bytes(path, summary.to_bytes())
    return summary, False


def non_empty(source: RowSource) -> Iterator[pd.DataFrame]:
    return (frame for frame in source.frames() if len(frame))


def measure_window(
    summary: BaselineSummary,
    target: RowSource,
    inputs: Sequence[str],
    outputs: Sequence[str],
    settings: DriftSettings,
) -> WindowDrift | None:
    """Drift of the target's rows against the baseline summary; None if it has no rows."""
    columns = [*inputs, *outputs]
    frames = non_empty(target)
    first = next(frames, None)
    if first is None:
        return None
    _require_columns(list(first.columns), columns, f"the target ({target.label})")
    chained = (frame[columns] for frame in itertools.chain([first], frames))
    report = measure_drift(summary, chained, settings, features=columns)
    measured_inputs = tuple(feature for feature in report.features if feature.feature in inputs)
    prediction = next((f for f in report.features if f.feature in outputs), None)
    share = (
        sum(feature.drifted for feature in measured_inputs) / len(measured_inputs)
        if measured_inputs
        else 0.0
    )
    magnitude = (
        sum(feature.distance for feature in measured_inputs) / len(measured_inputs)
        if measured_inputs
        else 0.0
    )
    return WindowDrift(report, measured_inputs, prediction, round(share, 4), round(magnitude, 4))


def _require_columns(present: Sequence[str], wanted: Sequence[str], what: str) -> None:
    missing = [column for column in wanted if column not in set(present)]
    if missing:
        raise MonitorDataError(
            f"{what} lacks the monitored columns {missing} (it has: "
            f"{', '.join(map(str, present))}). Fix the monitor's 'features' or the data."
        )
