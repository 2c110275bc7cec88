"""Model, predictions and drift assets materialized with `dg.materialize` on real demo data."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from ingestion_project.demo.loop import HISTORY, INCOMING
from ingestion_project.training.registry import ModelRegistry
from ingestion_project_tests.catalogs import materialization_metadata, materialize
from ingestion_project_tests.conftest import place_month

TRAIN = ["bikeshare_history", "bikeshare_demand"]
SCORE = ["bikeshare_scoring", "bikeshare_demand_predictions", "bikeshare_drift"]


def run(
    defs: dg.Definitions, instance: dg.DagsterInstance, names: list[str]
) -> dg.ExecuteInProcessResult:
    result = materialize(defs, *names, instance=instance)
    assert result.success
    return result


metadata = materialization_metadata


def models(home: Path) -> ModelRegistry:
    from ingestion_project.datastores.local import LocalDatastore

    store = LocalDatastore(
        name="workspace_default", root=str(home / "datastores" / "workspace_default")
    )
    return ModelRegistry(store, "_registry")


def test_first_training_registers_and_promotes_version_1(
    defs: dg.Definitions, instance: dg.DagsterInstance, home: Path
) -> None:
    result = run(defs, instance, TRAIN)
    meta = metadata(result, "bikeshare_demand")
    assert meta["model_version"] == 1
    assert meta["promoted"] is True
    assert meta["trained_on"] == "bikeshare_history v1"
    assert 0.3 < float(meta["holdout_r2"]) <= 1.0
    record = models(home).require_champion("bikeshare_demand")
    assert record.lineage.trained_on.version == 1
    assert record.lineage.run_id == result.run_id
    assert record.features[0] == "hr"


def test_unchanged_data_trains_nothing_new(
    defs: dg.Definitions, instance: dg.DagsterInstance, home: Path
) -> None:
    run(defs, instance, TRAIN)
    again = metadata(run(defs, instance, TRAIN), "bikeshare_demand")
    assert again["trained"] is False
    assert models(home).versions.version_numbers("bikeshare_demand") == [1]


def test_newer_data_gives_the_next_version_promoted_only_if_better(
    defs: dg.Definitions, instance: dg.DagsterInstance, home: Path
) -> None:
    run(defs, instance, TRAIN)
    place_month(home, HISTORY, 5)
    meta = metadata(run(defs, instance, TRAIN), "bikeshare_demand")
    record = models(home).versions.get("bikeshare_demand", 2)
    assert record.compared_with is not None
    champion_r2 = record.compared_with.champion_metrics["r2"]
    assert record.compared_with.champion_version == 1
    comparison = record.compared_with
    assert comparison.method == "paired_bootstrap" and comparison.p_value is not None
    assert comparison.difference == pytest.approx(record.metrics["r2"] - champion_r2, abs=2e-4)
    wins = comparison.difference > comparison.min_effect and comparison.p_value < comparison.alpha
    assert record.promoted == wins
    assert ("promote" if wins else "keep the champion") in record.decision
    expected_champion = 2 if record.promoted else 1
    assert meta["champion_version"] == expected_champion
    assert models(home).require_champion("bikeshare_demand").version == expected_champion


def test_scoring_writes_predictions_and_drift_is_recorded(
    defs: dg.Definitions, instance: dg.DagsterInstance, home: Path
) -> None:
    run(defs, instance, TRAIN)
    result = run(defs, instance, SCORE)
    predictions = metadata(result, "bikeshare_demand_predictions")
    path = home / "datastores" / "workspace_default" / str(predictions["path"])
    scored = pd.read_parquet(path)
    assert "prediction" in scored.columns
    assert len(scored) == predictions["dagster/row_count"] == 744  # May 2011: 31 days x 24 h
    assert predictions["model_version"] == 1
    assert "live_r2" in predictions

    drift = metadata(result, "bikeshare_drift")
    assert 0.0 <= float(drift["drift_share"]) <= 1.0
    assert drift["drift_detected"] == (float(drift["drift_share"]) >= 0.75)
    assert "temp" in str(drift["drifted_columns"])  # winter baseline, May weather
    assert "temp" in str(drift["features"])  # the per-feature table lists it
    # The result is kept as JSON beside the monitor; evidently's HTML only when `report: true`.
    result_file = home / "datastores" / "workspace_default" / str(drift["result_path"])
    assert json.loads(result_file.read_text())["report"]["features"]
    assert "report_path" not in drift


def test_same_inputs_give_the_same_drift_result_id(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    run(defs, instance, TRAIN)
    first = metadata(run(defs, instance, SCORE), "bikeshare_drift")
    second = metadata(run(defs, instance, SCORE), "bikeshare_drift")
    assert first["drift_result_id"] == second["drift_result_id"]


def test_retraining_before_any_scoring_data_skips_scoring(
    defs: dg.Definitions, instance: dg.DagsterInstance, home: Path
) -> None:
    for file in (home / "datastores" / "workspace_default" / INCOMING).iterdir():
        file.unlink()
    result = defs.resolve_job_def("retrain_bikeshare_demand").execute_in_process(instance=instance)
    assert result.success
    materialized = {
        event.asset_key.to_user_string() for event in result.get_asset_materialization_events()
    }
    assert materialized == {"bikeshare_history", "bikeshare_demand"}


def test_predictions_without_a_champion_fail_with_advice(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    with pytest.raises(Exception, match="no champion version yet"):
        materialize(defs, *SCORE, instance=instance)
