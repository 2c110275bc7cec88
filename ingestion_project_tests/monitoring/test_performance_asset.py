"""Labels arrive after predictions: realized performance per window, beside its estimate.

The demo's classifier on real months: May is scored, then May's actuals join the history and
the performance asset records the realized AUC of the model version that scored May.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ingestion_project.demo.loop import DEMO_DATA, HISTORY, INCOMING
from ingestion_project_tests.catalogs import materialization_metadata, materialize
from ingestion_project_tests.conftest import place_month

MODEL = "busy_hours"
PERFORMANCE = f"{MODEL}_performance"


def run(defs: dg.Definitions, instance: dg.DagsterInstance, *names: str) -> dict[str, dict]:
    result = materialize(defs, *names, instance=instance)
    assert result.success
    done = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    return {name: materialization_metadata(result, name) for name in done}


def performance_events(instance: dg.DagsterInstance) -> list[dict]:
    records = instance.fetch_materializations(dg.AssetKey(PERFORMANCE), limit=100).records
    events = [record.asset_materialization for record in records]
    return [
        {key: value.value for key, value in event.metadata.items()}
        for event in reversed(events)
        if event is not None
    ]


@pytest.mark.slow
def test_labels_arriving_later_give_the_realized_metric_beside_the_estimate(
    defs: dg.Definitions, instance: dg.DagsterInstance, home: Path
) -> None:
    run(defs, instance, "bikeshare_history", MODEL)
    scored = run(defs, instance, "bikeshare_scoring", f"{MODEL}_predictions")
    predictions = scored[f"{MODEL}_predictions"]
    estimated = float(predictions["estimated_auc"])
    assert 0.5 < estimated <= 1
    assert predictions["evidence_key"] == "data:bikeshare_scoring:v1"

    # No labels for May yet: nothing to realize, nothing recorded.
    assert PERFORMANCE not in run(defs, instance, PERFORMANCE)

    place_month(home, HISTORY, 5)  # May's actual rentals join the history
    may = run(defs, instance, "bikeshare_history", PERFORMANCE)[PERFORMANCE]

    store = home / "datastores" / "workspace_default"
    written = pd.read_parquet(store / str(predictions["path"]))
    actual = pd.read_csv(DEMO_DATA / "2011-05.csv", parse_dates=["timestamp"])
    joined = written[["timestamp", "probability"]].merge(actual[["timestamp", "bikers"]])
    expected = roc_auc_score(joined["bikers"] > 300, joined["probability"])
    assert may["realized_auc"] == pytest.approx(expected, abs=1e-4)
    assert may["estimated_auc"] == pytest.approx(estimated, abs=1e-4)
    assert may["estimation_error"] == pytest.approx(estimated - may["realized_auc"], abs=1e-4)
    assert may["model_version"] == 1
    assert may["labelled_rows"] == len(actual)
    assert may["evidence_key"] == "labels:bikeshare_scoring:v1"
    assert "reference_auc" in may

    # Nothing new: no second record of the same window.
    assert PERFORMANCE not in run(defs, instance, PERFORMANCE)

    # June is scored, its labels arrive: one more point of the series the UI plots.
    place_month(home, INCOMING, 6)
    run(defs, instance, "bikeshare_scoring", f"{MODEL}_predictions")
    place_month(home, HISTORY, 6)
    # May is fully labelled, so its predictions are not read again (unreadable now, unharmed).
    (store / str(predictions["path"])).write_bytes(b"not parquet")
    june = run(defs, instance, "bikeshare_history", PERFORMANCE)[PERFORMANCE]

    series = performance_events(instance)
    assert [event["evidence_key"] for event in series] == [
        "labels:bikeshare_scoring:v1",
        "labels:bikeshare_scoring:v2",
    ]
    assert all(0.5 < float(event["realized_auc"]) <= 1 for event in series)
    assert june["window"] == "bikeshare_scoring v2"
    assert [row.data["window"] for row in june["windows"].records] == [
        "bikeshare_scoring v2",
        "bikeshare_scoring v1",
    ]
