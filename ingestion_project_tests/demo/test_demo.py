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
    assert [int(n) for n in re.findall(r"^\[(\d)/7\]", out, flags=re.M)] == list(range(1, 8))
    assert "bikeshare_history version 1: 4 files, 2,786 rows" in out
    assert "Summary" in out

    # Retraining fired from drift, with run keys built from drift results, each once.
    run_keys = re.findall(r"run key (bikeshare_drift:[0-9a-f]{16})", out)
    assert run_keys and len(run_keys) == len(set(run_keys))
    instance = dg.DagsterInstance.from_config(str(tmp_path / "dagster"))
    retrain_runs = instance.get_runs(filters=dg.RunsFilter(job_name="retrain_bikeshare_demand"))
    keyed = [
        run.tags.get("dagster/run_key") for run in retrain_runs if "dagster/run_key" in run.tags
    ]
    assert sorted(keyed) == sorted(run_keys)

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
