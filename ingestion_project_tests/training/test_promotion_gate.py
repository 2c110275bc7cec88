"""Training windows and the promotion gate: same newest window, a minimum effect, a paired test."""

from __future__ import annotations

import pandas as pd
import pytest

from ingestion_project.training.estimators import TrainingError, fit, prepare_training
from ingestion_project.training.lifecycle import challenge
from ingestion_project.training.windows import split_newest_window, within_days
from ingestion_project_tests.training.bikeshare import busy_hours, demand, months


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return months(1, 2, 3, 4, 5, 6)


def test_train_window_in_days_keeps_the_most_recent_rows(history: pd.DataFrame) -> None:
    recent = within_days(history, "timestamp", 45, "history")

    stamps = pd.to_datetime(recent["timestamp"])
    assert stamps.min() > pd.Timestamp("2011-05-16") and stamps.max() == pd.Timestamp(
        "2011-06-30 23:00"
    )
    with pytest.raises(TrainingError, match="timestamp_column"):
        within_days(history, None, 45, "history")


def test_the_newest_window_is_cut_by_days_or_by_holdout_share(history: pd.DataFrame) -> None:
    shuffled = history.sample(frac=1, random_state=0)

    by_days = split_newest_window(shuffled, demand(), "timestamp", "history")
    by_share = split_newest_window(
        history, demand(promotion={}, holdout=0.25), "timestamp", "history"
    )

    june = pd.to_datetime(by_days.window["timestamp"])
    assert june.min() > pd.Timestamp("2011-05-31") and len(by_days.window) == 720
    assert len(by_days.learn) + len(by_days.window) == len(history)
    assert pd.to_datetime(by_days.learn["timestamp"]).max() < june.min()
    assert by_days.description == "the last 30 days (720 rows)"
    assert len(by_share.window) == len(history) - int(len(history) * 0.75)
    assert "newest 25% of rows" in by_share.description


def test_a_champion_that_learnt_stale_data_loses_to_a_fresh_challenger(
    history: pd.DataFrame,
) -> None:
    spec = busy_hours()
    stale = fit(prepare_training(months(1, 2, 3), spec, "winter"), spec)

    result = challenge(history, spec, (1, stale), timestamp_column="timestamp", what="history")

    assert result.promoted
    comparison = result.comparison
    assert comparison is not None and comparison.method == "delong"
    assert comparison.difference > 0 and comparison.p_value < 0.05
    # Both were judged on June, the newest labelled window, which the challenger never saw.
    assert result.window == "the last 30 days (720 rows)"
    assert comparison.champion_metrics["auc"] < result.metrics["auc"]
    assert "DeLong" in result.decision and "promote" in result.decision


def test_a_win_smaller_than_the_declared_minimum_effect_keeps_the_champion(
    history: pd.DataFrame,
) -> None:
    spec = busy_hours(promotion={"window_days": 30, "min_effect": 0.5})
    stale = fit(prepare_training(months(1, 2, 3), spec, "winter"), spec)

    result = challenge(history, spec, (1, stale), timestamp_column="timestamp", what="history")

    assert not result.promoted
    assert result.comparison is not None and result.comparison.min_effect == 0.5
    assert "keep the champion" in result.decision


def test_a_challenger_that_learnt_the_same_rows_is_not_promoted_by_chance(
    history: pd.DataFrame,
) -> None:
    spec = demand()
    learnt = split_newest_window(history, spec, "timestamp", "history").learn
    same = fit(prepare_training(learnt, spec, "history"), spec)

    result = challenge(history, spec, (1, same), timestamp_column="timestamp", what="history")

    assert not result.promoted
    assert result.comparison is not None and result.comparison.method == "paired_bootstrap"
    assert result.comparison.difference == pytest.approx(0, abs=1e-9)


def test_a_promoted_challenger_is_refit_on_every_row_including_the_window(
    history: pd.DataFrame,
) -> None:
    refit = challenge(history, demand(), None, timestamp_column="timestamp", what="history")
    kept = challenge(
        history,
        demand(promotion={"window_days": 30, "refit": False}),
        None,
        timestamp_column="timestamp",
        what="history",
    )

    assert refit.promoted and kept.promoted
    assert refit.learn_rows == kept.learn_rows == len(history) - 720
    june = months(6)
    features = demand().features
    assert not (
        refit.pipeline.predict(june[features]) == kept.pipeline.predict(june[features])
    ).all()
