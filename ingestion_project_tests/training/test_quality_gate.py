"""The demo chain on real data: a version that fails its checks is never trained on or scored."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from click.testing import CliRunner

from ingestion_project.datasets.api import Workspace
from ingestion_project.datasets.cli_commands import datasets
from ingestion_project.demo.loop import DEMO_DATA, HISTORY, INCOMING
from ingestion_project_tests.catalogs import materialization_metadata, materialize
from ingestion_project_tests.conftest import place_month
from ingestion_project_tests.training.test_model_assets import SCORE, TRAIN, models, run

metadata = materialization_metadata


def month(number: int) -> pd.DataFrame:
    return pd.read_csv(DEMO_DATA / f"2011-{number:02d}.csv")


def land(home: Path, folder: str, name: str, frame: pd.DataFrame) -> None:
    """A file arriving in the demo's datastore, as a source system would write it."""
    target = home / "datastores" / "workspace_default" / folder
    target.mkdir(parents=True, exist_ok=True)
    frame.to_csv(target / name, index=False)


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def test_out_of_range_history_is_never_trained_on_and_new_passing_data_is(
    defs: dg.Definitions, instance: dg.DagsterInstance, home: Path
) -> None:
    run(defs, instance, TRAIN)
    hot = month(5)
    hot["temp"] = (hot["temp"] * 41).round(1)  # degrees Celsius where [0, 1] is declared
    land(home, HISTORY, "2011-05.csv", hot)

    result = materialize(defs, *TRAIN, instance=instance, raise_on_error=False)

    history = metadata(result, "bikeshare_history")
    assert (history["version"], history["quality"], history["failed_checks"]) == (
        2,
        "failed",
        "between",
    )
    assert "use version 1, the latest that passed its checks" in str(history["used_instead"])
    assert materialized(result) == {"bikeshare_history"}  # the blocking check stopped training
    # On its own, the model keeps to the version that passed: it was trained on it already.
    alone = metadata(run(defs, instance, ["bikeshare_demand"]), "bikeshare_demand")
    assert alone["trained"] is False
    assert alone["decision"] == "skipped: v1 already trained on bikeshare_history v1"
    assert models(home).versions.version_numbers("bikeshare_demand") == [1]

    workspace = Workspace.load()
    assert workspace.get("bikeshare_history").version == 1
    failed = workspace.get("bikeshare_history", 2)
    assert not failed.passed and failed.quality is not None
    assert {item.column for item in failed.quality.failures} == {"temp"}
    assert failed.to_pandas()["temp"].max() > 1
    versions = CliRunner().invoke(datasets, ["versions", "bikeshare_history"])
    assert versions.exit_code == 0, versions.output
    assert versions.output.splitlines()[1].endswith("FAILED checks: between")
    assert "the latest is version 1; version 2 FAILED its checks" in versions.output

    place_month(home, HISTORY, 5)  # the corrected file replaces the bad one
    fixed = run(defs, instance, TRAIN)

    assert metadata(fixed, "bikeshare_history")["quality"] == "passed"
    retrained = metadata(fixed, "bikeshare_demand")
    assert retrained["model_version"] == 2
    assert retrained["trained_on"] == "bikeshare_history v3"


def test_a_history_that_lost_a_column_is_refused_by_training_with_what_failed(
    defs: dg.Definitions, instance: dg.DagsterInstance, home: Path
) -> None:
    for path in (home / "datastores" / "workspace_default" / HISTORY).glob("*.csv"):
        land(home, HISTORY, path.name, pd.read_csv(path).drop(columns=["windspeed"]))

    result = materialize(defs, *TRAIN, instance=instance, raise_on_error=False)

    assert metadata(result, "bikeshare_history")["failed_checks"] == "columns"
    assert materialized(result) == {"bikeshare_history"}
    with pytest.raises(
        Exception,
        match=r"dataset 'bikeshare_history' has no version that passed its checks; version 1 "
        r"failed columns\(windspeed\): the column is missing\. Fix the data",
    ):
        materialize(defs, "bikeshare_demand", instance=instance)
    listed = CliRunner().invoke(datasets, ["list"])
    assert listed.exit_code == 0, listed.output
    assert "newest: version 1 FAILED checks: columns, not used" in listed.output


def test_scoring_data_that_fails_its_checks_is_neither_scored_nor_monitored(
    defs: dg.Definitions, instance: dg.DagsterInstance, home: Path
) -> None:
    run(defs, instance, TRAIN)
    run(defs, instance, SCORE)
    june = month(6)
    june.loc[:9, "temp"] = None  # a sensor outage: ten hours without a temperature
    land(home, INCOMING, "2011-06.csv", june)

    result = materialize(defs, *SCORE, instance=instance, raise_on_error=False)

    scoring = metadata(result, "bikeshare_scoring")
    assert (scoring["version"], scoring["failed_checks"]) == (2, "not_null")
    assert materialized(result) == {"bikeshare_scoring"}
    # Predictions and drift run on their own keep to the scoring version that passed.
    alone = run(defs, instance, ["bikeshare_demand_predictions", "bikeshare_drift"])
    assert metadata(alone, "bikeshare_demand_predictions")["dataset_version"] == 1
    assert str(metadata(alone, "bikeshare_drift")["target"]).startswith("bikeshare_scoring v1 ")
