"""The demo command runs the whole loop end to end, as `make demo` does."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from ingestion_project.cli import cli
from ingestion_project.training.registry import ModelRegistry


@pytest.mark.slow
def test_demo_runs_the_loop_and_says_what_happened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    result = CliRunner().invoke(cli, ["demo"], catch_exceptions=False)
    out = result.output
    assert result.exit_code == 0, out

    # Progress: one numbered line per step, then the summary.
    assert [int(n) for n in re.findall(r"^\[(\d)/9\]", out, flags=re.M)] == list(range(1, 10))
    assert "bikeshare_history version 1: 4 files, 2,786 rows" in out
    assert "Summary" in out

    # Retraining fired from the policy, one run per scored month, keyed by the data it judged;
    # the retraining run's own re-scoring never asked again.
    run_keys = re.findall(r"run key (bikeshare_demand:data:bikeshare_scoring:v\d+)", out)
    assert run_keys and len(run_keys) == len(set(run_keys))
    instance = dg.DagsterInstance.from_config(str(tmp_path / "dagster"))
    retrain_runs = instance.get_runs(filters=dg.RunsFilter(job_name="retrain_bikeshare_demand"))
    keyed = [
        run.tags.get("dagster/run_key") for run in retrain_runs if "dagster/run_key" in run.tags
    ]
    assert sorted(keyed) == sorted(run_keys)
    assert "asked again" not in out

    # The registry holds the versions the demo talked about; a retrained champion exists.
    from ingestion_project.datastores.local import LocalDatastore

    store = LocalDatastore(
        name="workspace_default", root=str(tmp_path / "datastores" / "workspace_default")
    )
    models = ModelRegistry(store, "_registry")
    versions = models.versions.all("bikeshare_demand")
    assert len(versions) >= 2
    champion = models.require_champion("bikeshare_demand")
    assert champion.version > 1
    assert champion.lineage.trained_on.version > 1
    assert f"v{champion.version} (champion)" in out
    # Drift was measured against the champion's own training data, not a fixed baseline.
    assert re.search(r"against bikeshare_history v[2-9]", out)

    # The classifier: realized AUC per month once labels arrived, beside the estimate made
    # before they did; its gate decisions carry the paired test.
    realized = re.findall(
        r"busy_hours: realized AUC on \w+ (0\.\d+) \(model v\d+; estimated (0\.\d+)", out
    )
    assert len(realized) == 5
    assert all(0.5 < float(value) <= 1 for pair in realized for value in pair)
    assert re.search(r"busy_hours v\d+: AUC .* DeLong p", out)
    classifier = models.versions.all("busy_hours")
    assert classifier[0].task == "classification" and classifier[0].calibration

    # The daily monitor's backfill: one run measured every day of the history against January.
    backfill = re.search(r"(\d+) daily windows measured in [\d.]+ s; (\d+) raised an alarm", out)
    assert backfill, out
    assert int(backfill.group(1)) >= 120  # January to at least May, one window a day
    daily = instance.get_runs(filters=dg.RunsFilter(job_name="monitor_weather_daily"))
    assert len(daily) == 1
    assert "Mean drift magnitude by month: Jan " in out

    # The backtest: the policy is compared with never and always retraining in the same run,
    # and on this data it does not do worse than never retraining.
    means = re.search(
        r"Mean auc over (\d+) windows: policy (0\.\d+), never retrain (0\.\d+), "
        r"always retrain (0\.\d+), oracle \(best of the two per window\) (0\.\d+)",
        out,
    )
    assert means, out
    windows, policy, never, always, oracle = (float(group) for group in means.groups())
    assert windows == 5
    assert policy >= never
    assert oracle >= max(never, always)
    # Where it trails always retraining, the demo says so and why.
    assert ("Where it trails always retraining" in out) == (policy < always)
