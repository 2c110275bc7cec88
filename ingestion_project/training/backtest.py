"""Replay a labelled dataset window by window through the monitor, the policy and the gate.

A user chooses a retraining policy before trusting it: for each window (a month, by default)
the backtest decides, with only what was known before the window, whether to train a challenger
(the declared policy on drift, realized and estimated performance of the previous window), runs
the promotion gate, and scores the window with the resulting champion. Beside it, in the same
run: "never retrain" (the first model throughout), "always retrain" (a model learnt from all
data before each window) and the oracle that picks the better of the two in every window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ingestion_project.catalog.spec import HIGHER_IS_BETTER, ModelSpec, RetrainPolicySpec
from ingestion_project.training.estimators import (
    PROBABILITY,
    TrainingError,
    metrics,
    predict,
    target_values,
)
from ingestion_project.training.lifecycle import challenge
from ingestion_project.training.policy import Evidence, decide
from ingestion_project.training.significance import DELONG


@dataclass(frozen=True)
class MonitorSettings:
    """The drift part of the policy: which columns, the tests, and the drift share that counts."""

    features: list[str]
    categorical: list[str]
    threshold: float
    settings: Any = None  # the engine's DriftSettings; its defaults when None


@dataclass(frozen=True)
class WindowOutcome:
    """One window: what the policy decided before it, and how every strategy did on it."""

    window: str
    rows: int
    champion: int
    decision: str
    realized: float
    never: float
    always: float
    drift_share: float | None = None
    estimated: float | None = None
    summary: str = ""


@dataclass
class BacktestResult:
    """Every window of a backtest, and the strategies' means over them."""

    model: str
    metric: str
    windows: list[WindowOutcome] = field(default_factory=list)

    def mean(self, strategy: str) -> float:
        values = [self._value(window, strategy) for window in self.windows]
        return float(np.nanmean(values)) if values else float("nan")

    def _value(self, window: WindowOutcome, strategy: str) -> float:
        if strategy != "oracle":
            return float(getattr(window, strategy))
        higher = HIGHER_IS_BETTER[self.metric]
        pick = max if higher else min
        return float(pick(window.never, window.always))

    def lines(self) -> list[str]:
        """The per-window table and the summary, as plain sentences and columns."""
        out = [
            f"Backtest of {self.model} ({self.metric}, "
            f"{'higher' if HIGHER_IS_BETTER[self.metric] else 'lower'} is better):",
            f"  {'window':<9} {'rows':>6} {'champion':>8} {'policy':>8} {'never':>8} "
            f"{'always':>8} {'oracle':>8}  decision",
        ]
        out.extend(
            f"  {w.window:<9} {w.rows:>6,} {'v' + str(w.champion):>8} {w.realized:>8.4f} "
            f"{w.never:>8.4f} {w.always:>8.4f} {self._value(w, 'oracle'):>8.4f}  "
            f"{w.summary or w.decision}"
            for w in self.windows
        )
        policy, never, always, oracle = (
            self.mean(name) for name in ("realized", "never", "always", "oracle")
        )
        out.append(
            f"Mean {self.metric} over {len(self.windows)} windows: policy {policy:.4f}, never "
            f"retrain {never:.4f}, always retrain {always:.4f}, oracle (best of the two per "
            f"window) {oracle:.4f}."
        )
        gain = oracle - never
        if gain != 0 and not np.isnan(gain):
            share = (policy - never) / gain
            out.append(
                f"The policy realized {share:.0%} of the oracle's gain over never retraining "
                f"({'beats' if self._better(policy, always) else 'does not beat'} always "
                "retraining)."
            )
        return out

    def _better(self, a: float, b: float) -> bool:
        return a > b if HIGHER_IS_BETTER[self.metric] else a < b


def backtest(
    name: str,
    frame: pd.DataFrame,
    spec: ModelSpec,
    *,
    timestamp_column: str | None,
    monitor: MonitorSettings | None = None,
    policy: RetrainPolicySpec | None = None,
    period: str = "M",
    warmup: int = 1,
    say: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Replay ``frame`` (labelled rows) window by window; see the module's docstring."""
    policy = policy or spec.retrain or RetrainPolicySpec(when=["drift"])
    windows = _windows(frame, timestamp_column, period)
    if len(windows) <= warmup:
        raise TrainingError(
            f"backtest of '{name}' needs more than {warmup} windows of data; it has "
            f"{len(windows)}. Use a shorter period or more data."
        )
    metric = spec.metric_name
    history = pd.concat([rows for _, rows in windows[:warmup]])
    try:
        first = challenge(history, spec, None, timestamp_column=timestamp_column, what=name)
    except TrainingError as error:
        raise TrainingError(
            f"backtest of '{name}': the first {warmup} window(s) cannot train a first model: "
            f"{error} Give it more windows to learn from first (warmup, --warmup)."
        ) from None
    never = first.pipeline
    champion = _Champion(1, first.pipeline, history, first.metrics.get(metric), first)
    result = BacktestResult(name, metric)
    previous: pd.DataFrame | None = None
    previous_label = windows[warmup - 1][0]
    for index in range(warmup, len(windows)):
        label, rows = windows[index]
        history = pd.concat([part for _, part in windows[:index]])
        decision = summary = "keep: first window after training"
        drift = estimated = None
        if previous is not None:
            evidence = _evidence(champion, previous, spec, monitor)
            evidence = replace(evidence, scheduled=_scheduled(policy, previous_label, period))
            drift, estimated = evidence.drift_share, evidence.estimated
            verdict = decide(policy, metric, evidence)
            decision, summary = verdict.reason, verdict.short
            if verdict.retrain:
                champion, decision, gate = _retrain(
                    champion, history, spec, timestamp_column, name, verdict.reason
                )
                summary = f"{verdict.short} -> {gate}"
        always = challenge(history, spec, None, timestamp_column=timestamp_column, what=name)
        labels = target_values(rows, spec)
        outcome = WindowOutcome(
            window=label,
            rows=len(rows),
            champion=champion.version,
            decision=decision,
            realized=metrics(labels, predict(champion.pipeline, rows, spec), spec)[metric],
            never=metrics(labels, predict(never, rows, spec), spec)[metric],
            always=metrics(labels, predict(always.pipeline, rows, spec), spec)[metric],
            drift_share=drift,
            estimated=estimated,
            summary=summary,
        )
        result.windows.append(outcome)
        if say is not None:
            say(
                f"  {label}: champion v{outcome.champion} {metric} {outcome.realized:.4f} "
                f"(never {outcome.never:.4f}, always {outcome.always:.4f}); {summary}"
            )
        previous, previous_label = rows, label
    return result


@dataclass(frozen=True)
class _Champion:
    version: int
    pipeline: Any
    trained_on: pd.DataFrame
    reference: float | None
    trained: Any


def _retrain(
    champion: _Champion,
    history: pd.DataFrame,
    spec: ModelSpec,
    timestamp_column: str | None,
    name: str,
    why: str,
) -> tuple[_Champion, str, str]:
    """The gate's outcome: the champion after it, the full decision, and a short one."""
    result = challenge(
        history,
        spec,
        (champion.version, champion.pipeline),
        timestamp_column=timestamp_column,
        what=name,
    )
    figures = ""
    comparison = result.comparison
    if comparison is not None and comparison.p_value is not None:
        test = "DeLong" if comparison.method == DELONG else "bootstrap"
        p_value = comparison.p_value
        p_text = f"={p_value:.2g}" if p_value >= 1e-4 else "<0.0001"
        figures = f" ({comparison.difference or 0:+.3f}, {test} p{p_text})"
    if not result.promoted:
        return (
            champion,
            f"{why} -> kept v{champion.version}: {result.decision}",
            f"kept v{champion.version}{figures}",
        )
    promoted = _Champion(
        champion.version + 1,
        result.pipeline,
        history,
        result.metrics.get(spec.metric_name),
        result,
    )
    return (
        promoted,
        f"{why} -> promoted v{promoted.version}: {result.decision}",
        f"promoted v{promoted.version}{figures}",
    )


def _evidence(
    champion: _Champion,
    window: pd.DataFrame,
    spec: ModelSpec,
    monitor: MonitorSettings | None,
) -> Evidence:
    """What was known about the previous window when deciding for the next one."""
    predicted = predict(champion.pipeline, window, spec)
    realized = metrics(target_values(window, spec), predicted, spec)[spec.metric_name]
    drift_share = threshold = None
    if monitor is not None:
        from ingestion_project.drift.engine import DriftSettings, measure_drift
        from ingestion_project.drift.summaries import summarize

        columns = monitor.features
        summary = summarize(champion.trained_on[columns], columns, categorical=monitor.categorical)
        report = measure_drift(
            summary, window[columns], monitor.settings or DriftSettings(), features=columns
        )
        drift_share, threshold = report.drift_share, monitor.threshold
    estimated = None
    if spec.task_name == "classification" and champion.trained is not None:
        estimated = _estimated(champion, window, predicted, spec)
    return Evidence(
        drift_share=drift_share,
        drift_threshold=threshold,
        realized=realized,
        estimated=estimated,
        reference=champion.reference,
    )


def _estimated(
    champion: _Champion, window: pd.DataFrame, predicted: pd.DataFrame, spec: ModelSpec
) -> float | None:
    """The champion's metric on the window estimated from probabilities alone (CBPE)."""
    from ingestion_project.monitoring.performance import estimate_performance

    calibrator = champion.trained.calibrator
    if calibrator is None:
        return None
    estimate = estimate_performance(predicted[PROBABILITY].to_numpy(dtype=float), calibrator)
    return estimate.get(spec.metric_name)


def _scheduled(policy: RetrainPolicySpec, window: str, period: str) -> bool:
    """Whether the policy's cron fired during ``window``: a schedule retrains after it."""
    if "schedule" not in policy.when or policy.cron is None:
        return False
    from zoneinfo import ZoneInfo

    from croniter import croniter

    span = pd.Period(window, freq=period)
    assert isinstance(span, pd.Period), f"window {window!r} is a period"
    zone = ZoneInfo(policy.timezone)
    start = span.start_time.to_pydatetime().replace(tzinfo=zone)
    end = (span.end_time + pd.Timedelta(nanoseconds=1)).to_pydatetime().replace(tzinfo=zone)
    after = croniter(policy.cron, start - timedelta(microseconds=1))
    return bool(after.get_next(datetime) < end)


def _windows(
    frame: pd.DataFrame, timestamp_column: str | None, period: str
) -> list[tuple[str, pd.DataFrame]]:
    if not timestamp_column or timestamp_column not in frame.columns:
        raise TrainingError(
            "a backtest needs the dataset's 'timestamp_column' to cut windows; declare it."
        )
    stamps = pd.to_datetime(frame[timestamp_column], errors="coerce")
    ordered = frame.assign(_period=stamps.dt.to_period(period)).sort_values(
        "_period", kind="stable"
    )
    return [
        (str(key), rows.drop(columns="_period"))
        for key, rows in ordered.groupby("_period", sort=True)
        if len(rows)
    ]


def backtest_model(
    catalog: Any,
    model: str,
    frame: pd.DataFrame,
    *,
    period: str = "M",
    warmup: int = 1,
    say: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Backtest a declared model with its declared policy, gate and drift monitor."""
    spec: ModelSpec = catalog.models[model]
    history = catalog.datasets[spec.train_on]
    monitors = [
        name
        for name, monitor in catalog.monitors.items()
        if monitor.model == model and monitor.retrain
    ]
    settings = None
    if monitors:
        from ingestion_project.monitoring.measure import engine_settings

        features = catalog.monitor_features(monitors[0]) or list(spec.features)
        settings = MonitorSettings(
            features=features,
            categorical=[column for column in features if column in spec.categorical],
            threshold=catalog.monitors[monitors[0]].threshold,
            settings=engine_settings(catalog.monitors[monitors[0]]),
        )
    policy = spec.retrain or (RetrainPolicySpec(when=["drift"]) if monitors else None)
    return backtest(
        model,
        frame,
        spec,
        timestamp_column=history.timestamp_column,
        monitor=settings,
        policy=policy,
        period=period,
        warmup=warmup,
        say=say,
    )
