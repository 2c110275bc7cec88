"""Promotions and performance drops reach the declared webhook from the assets that see them.

The demo catalog as a user would declare it, plus an `alerts:` entry pointing at a local HTTP
server; the classifier is trained, scores May and June, and their actuals arrive later.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml

from ingestion_project.demo.loop import DEMO_DATA, HISTORY, INCOMING
from ingestion_project_tests.alerts.receiver import WebhookReceiver
from ingestion_project_tests.catalogs import catalog_definitions, materialize
from ingestion_project_tests.conftest import PROJECT_CATALOG

MODEL = "busy_hours"


def demo_catalog_with_alerts(events: list[str]) -> dict[str, Any]:
    attributes = yaml.safe_load(PROJECT_CATALOG.read_text())["attributes"]
    attributes["alerts"] = {
        "team": {"webhook": {"env": "TEAM_WEBHOOK_URL"}, "events": events, "subjects": [MODEL]}
    }
    return attributes


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path))
    root = tmp_path / "datastores" / "workspace_default"
    (root / HISTORY).mkdir(parents=True)
    for month in (1, 2, 3, 4):
        shutil.copy2(DEMO_DATA / f"2011-{month:02d}.csv", root / HISTORY)
    return root


def arrive(store: Path, month: int) -> None:
    """``month`` lands in the incoming folder, replacing the month before."""
    shutil.rmtree(store / INCOMING, ignore_errors=True)
    (store / INCOMING).mkdir(parents=True)
    shutil.copy2(DEMO_DATA / f"2011-{month:02d}.csv", store / INCOMING)


def label(store: Path, month: int, *, shuffled: bool = False) -> None:
    """``month``'s actual rentals join the history; shuffled, they no longer match the hours."""
    frame = pd.read_csv(DEMO_DATA / f"2011-{month:02d}.csv")
    if shuffled:
        frame["bikers"] = np.random.default_rng(month).permutation(frame["bikers"].to_numpy())
    frame.to_csv(store / HISTORY / f"2011-{month:02d}.csv", index=False)


def run(defs: dg.Definitions, instance: dg.DagsterInstance, *assets: str) -> None:
    assert materialize(defs, *assets, instance=instance).success


def test_a_promotion_is_posted_with_the_gate_s_reason(
    store: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_WEBHOOK_URL", receiver.url())
    defs = catalog_definitions(demo_catalog_with_alerts(["promotion"]))

    run(defs, dg.DagsterInstance.ephemeral(), "bikeshare_history", MODEL, "bikeshare_demand")

    # Only the subject named in the entry: busy_hours, not bikeshare_demand.
    assert len(receiver.received) == 1
    body = receiver.received[0].json()
    assert body["text"].startswith(f"{MODEL} v1 promoted: the first champion")


def test_a_realized_drop_is_posted_and_a_good_month_is_not(
    store: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_WEBHOOK_URL", receiver.url())
    defs = catalog_definitions(demo_catalog_with_alerts(["performance_drop"]))
    instance = dg.DagsterInstance.ephemeral()
    run(defs, instance, "bikeshare_history", MODEL)
    arrive(store, 5)
    run(defs, instance, "bikeshare_scoring", f"{MODEL}_predictions")

    # May's true actuals: the realized AUC holds up, nothing is posted.
    label(store, 5)
    run(defs, instance, "bikeshare_history", f"{MODEL}_performance")
    assert receiver.received == []

    # June's actuals arrive scrambled: the realized AUC falls to chance, and the team is told.
    arrive(store, 6)
    run(defs, instance, "bikeshare_scoring", f"{MODEL}_predictions")
    label(store, 6, shuffled=True)
    run(defs, instance, "bikeshare_history", f"{MODEL}_performance")

    assert len(receiver.received) == 1
    text = receiver.received[0].json()["text"]
    assert text.startswith(f"Performance drop on {MODEL} v1: realized AUC"), text
    assert "window: bikeshare_scoring v2" in text  # June's scoring version


def test_an_estimated_drop_is_posted_before_labels_arrive(
    store: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_WEBHOOK_URL", receiver.url())
    defs = catalog_definitions(demo_catalog_with_alerts(["performance_drop"]))
    instance = dg.DagsterInstance.ephemeral()
    run(defs, instance, "bikeshare_history", MODEL)
    # Only the quiet hours of May arrive: the calibrated probabilities are all small and close,
    # so the AUC they let one expect is far below the model's on a whole month.
    (store / INCOMING).mkdir(parents=True)
    may = pd.read_csv(DEMO_DATA / "2011-05.csv")
    may[may["hr"].between(0, 5)].to_csv(store / INCOMING / "2011-05.csv", index=False)
    run(defs, instance, "bikeshare_scoring", f"{MODEL}_predictions")

    assert len(receiver.received) == 1
    text = receiver.received[0].json()["text"]
    assert text.startswith(f"Performance drop on {MODEL} v1: estimated AUC"), text
