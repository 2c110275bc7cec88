"""The retraining policy's decision, and backtests that replay it over real months."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from ingestion_project.catalog.spec import RetrainPolicySpec
from ingestion_project.cli import cli
from ingestion_project.demo.loop import HISTORY
from ingestion_project.training.backtest import MonitorSettings, backtest
from ingestion_project.training.estimators import TrainingError
from ingestion_project.training.policy import Evidence, decide
from ingestion_project_tests.catalogs import materialize
from ingestion_project_tests.conftest import PROJECT_ROOT, place_month
from ingestion_project_tests.training.bikeshare import DRIFTING, busy_hours, demand, months


def test_drift_alone_retrains_only_when_drift_is_declared() -> None:
    drifted = Evidence(drift_share=0.8, drift_threshold=0.5, realized=0.95, reference=0.95)

    on_drift = decide(RetrainPolicySpec(when=["drift"]), "auc", drifted)
    on_loss = decide(RetrainPolicySpec(when=["performance_drop"]), "auc", drifted)

    assert on_drift.retrain and on_drift.short == "retrain (drift 0.80)"
    assert not on_loss.retrain
    assert "realized auc 0.9500 against 0.9500" in on_loss.reason


@pytest.mark.parametrize(
    ("metric", "reference", "value", "retrain"),
    [
        ("auc", 0.90, 0.87, True),  # lower AUC is worse
        ("auc", 0.90, 0.89, False),  # within tolerance
        ("auc", 0.90, 0.99, False),  # better
        ("mae", 40.0, 40.03, True),  # higher MAE is worse
        ("mae", 40.0, 39.0, False),
    ],
)
def test_a_performance_drop_is_measured_in_the_metrics_own_direction(
    metric: str, reference: float, value: float, retrain: bool
) -> None:
    policy = RetrainPolicySpec(when=["performance_drop"], tolerance=0.02)

    verdict = decide(policy, metric, Evidence(realized=value, reference=reference))

    assert verdict.retrain is retrain


def test_estimated_performance_counts_only_where_the_policy_says() -> None:
    estimated_drop = Evidence(estimated=0.80, realized=None, reference=0.90)

    assert decide(
        RetrainPolicySpec(when=["performance_drop"], performance="either"), "auc", estimated_drop
    ).retrain
    assert not decide(
        RetrainPolicySpec(when=["performance_drop"], performance="realized"), "auc", estimated_drop
    ).retrain
    assert (
        decide(
            RetrainPolicySpec(when=["performance_drop"], performance="estimated"),
            "auc",
            estimated_drop,
        ).short
        == "retrain (estimated drop 0.100)"
    )


def test_a_schedule_retrains_when_it_fires_and_needs_a_cron() -> None:
    policy = RetrainPolicySpec(when=["schedule"], cron="0 3 1 * *")

    assert decide(policy, "r2", Evidence(scheduled=True)).retrain
    assert not decide(policy, "r2", Evidence()).retrain
    with pytest.raises(ValidationError, match="go together"):
        RetrainPolicySpec(when=["schedule"])
    with pytest.raises(ValidationError, match="'when:', not 'on:'"):
        RetrainPolicySpec.model_validate({True: ["drift"]})


def test_without_evidence_the_policy_keeps_the_champion() -> None:
    verdict = decide(RetrainPolicySpec(when=["drift", "performance_drop"]), "auc", Evidence())

    assert not verdict.retrain
    assert verdict.reason == "keep: no trigger has evidence yet"


@pytest.fixture(scope="module")
def year() -> pd.DataFrame:
    return months(1, 2, 3, 4, 5, 6, 7, 8)


def test_a_backtest_replays_every_window_beside_never_and_always_retraining(
    year: pd.DataFrame,
) -> None:
    spec = busy_hours(retrain={"when": ["drift", "performance_drop"], "tolerance": 0.02})
    monitor = MonitorSettings(DRIFTING, ["weathersit"], threshold=0.75)
    said: list[str] = []

    result = backtest(
        "busy_hours",
        year,
        spec,
        timestamp_column="timestamp",
        monitor=monitor,
        warmup=4,
        say=said.append,
    )

    assert [w.window for w in result.windows] == ["2011-05", "2011-06", "2011-07", "2011-08"]
    assert [w.rows for w in result.windows] == [len(months(m)) for m in (5, 6, 7, 8)]
    first = result.windows[0]
    # The first window is scored by the first model under every strategy.
    assert first.realized == first.never == first.always
    assert first.decision == "keep: first window after training"
    later = result.windows[1:]
    assert all(w.drift_share is not None and w.estimated is not None for w in later)
    # Champions only ever move forward, one version at a time.
    champions = [w.champion for w in result.windows]
    assert champions == sorted(champions) and champions[0] == 1
    assert all(b - a <= 1 for a, b in pairwise(champions))
    for window in result.windows:
        if window.champion == 1:
            assert window.realized == window.never
    # The oracle is the better of never and always in every window.
    assert result.mean("oracle") >= max(result.mean("never"), result.mean("always"))
    lines = result.lines()
    assert lines[0] == "Backtest of busy_hours (auc, higher is better):"
    assert lines[-2].startswith("Mean auc over 4 windows: policy ")
    assert len(said) == 4


def test_a_policy_that_never_fires_is_never_retraining(year: pd.DataFrame) -> None:
    spec = demand(retrain={"when": ["performance_drop"], "tolerance": 100.0})

    result = backtest("demand", year, spec, timestamp_column="timestamp", warmup=5)

    assert [w.champion for w in result.windows] == [1, 1, 1]
    assert result.mean("realized") == result.mean("never")
    assert all(w.decision.startswith("keep") for w in result.windows)


def test_a_monthly_schedule_retrains_every_window_through_the_gate(year: pd.DataFrame) -> None:
    spec = demand(retrain={"when": ["schedule"], "cron": "0 3 1 * *"})

    result = backtest("demand", year, spec, timestamp_column="timestamp", warmup=5)

    decisions = [w.summary for w in result.windows[1:]]
    assert all(d.startswith("retrain (schedule) -> ") for d in decisions), decisions
    assert all(("promoted" in d) or ("kept" in d) for d in decisions)


def test_a_backtest_needs_a_timestamp_and_enough_windows(year: pd.DataFrame) -> None:
    with pytest.raises(TrainingError, match="timestamp_column"):
        backtest("demand", year, demand(), timestamp_column=None)
    with pytest.raises(TrainingError, match="needs more than 8 windows"):
        backtest("demand", year, demand(), timestamp_column="timestamp", warmup=8)


@pytest.mark.slow
def test_the_backtest_command_replays_the_declared_model_over_its_latest_passing_version(
    defs: dg.Definitions, home: Path
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(defs, "bikeshare_history", instance=instance).success
    for month in (5, 6):
        place_month(home, HISTORY, month)
    assert materialize(defs, "bikeshare_history", instance=instance).success

    command = ["backtest", "busy_hours", "--warmup", "3", "--project", str(PROJECT_ROOT)]
    result = CliRunner().invoke(cli, command)
    first = CliRunner().invoke(cli, [*command, "--version", "1"])
    unknown = CliRunner().invoke(cli, ["backtest", "nope", "--project", str(PROJECT_ROOT)])

    assert result.exit_code == 0, result.output
    rows = len(months(1, 2, 3, 4, 5, 6))
    assert f"Replaying busy_hours over bikeshare_history v2 ({rows:,} rows)" in result.output
    assert "Backtest of busy_hours (auc, higher is better):" in result.output
    assert re.search(r"^  2011-06 +720 +v\d", result.output, flags=re.M)
    assert "Mean auc over 3 windows: policy " in result.output
    assert first.exit_code == 0 and "Mean auc over 1 windows" in first.output
    assert unknown.exit_code == 2
    assert "'nope' is not a declared model (declared: bikeshare_demand, busy_hours)" in (
        unknown.output
    )


def test_a_warmup_too_short_to_learn_from_says_to_give_it_more() -> None:
    with pytest.raises(TrainingError, match=r"first 1 window\(s\) cannot train.*--warmup"):
        backtest("busy", months(1, 2, 3), busy_hours(), timestamp_column="timestamp", warmup=1)
