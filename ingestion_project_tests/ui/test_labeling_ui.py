"""A labeling project's progress and its labeled dataset in the web UI, in a real browser.

The project is synced and exported against a real Label Studio; the real daemon runs the
progress sensor, whose observation the project's page then shows; `dagster-webserver` serves it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import Page, expect

from ingestion_project_tests.catalogs import materialize, project_definitions, write_project
from ingestion_project_tests.labeling.generated_images import write_digits
from ingestion_project_tests.labeling.labeler import DIGITS, Labeling, choices, declare
from ingestion_project_tests.processes import (
    running_web_server,
    start_daemon,
    stop_process_group,
    wait_for,
    write_workspace,
)
from ingestion_project_tests.ui.webui import INSTANCE_YAML, inner_row, metadata_row, metadata_value

pytestmark = pytest.mark.slow
PACKAGE = "labeling_ui_project"
PROJECT_ASSET = "digit_labels_project"


def latest_observation(instance: dg.DagsterInstance, asset: str) -> dict[str, object] | None:
    records = instance.fetch_observations(dg.AssetKey(asset), limit=1).records
    if not records:
        return None
    observation = records[0].asset_observation
    assert observation is not None
    return {key: value.value for key, value in observation.metadata.items()}


def test_progress_and_labels_show_on_their_asset_pages(
    labeling: Labeling, chromium: Path, page: Page, tmp_path: Path
) -> None:
    digits = {d.path: d.digit for d in write_digits(labeling.images, "photos", range(4))}
    declare(labeling, "digit_labels", "multi_class", DIGITS, progress_every="5s")
    root = write_project(tmp_path / "project", {"catalog": labeling.raw}, package=PACKAGE)
    write_workspace(root, PACKAGE)
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(INSTANCE_YAML)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "INGESTION_HOME": str(labeling.home),
        "LABEL_STUDIO_TOKEN": labeling.server.token,
    }
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    defs = project_definitions(root)
    materialize(defs, "photos", "digit_labels_project", instance=instance)
    tasks = labeling.task_by_path(labeling.project_id("digit_labels"))
    for path in ["photos/digit_0000.png", "photos/digit_0001.png"]:
        labeling.annotate(tasks[path]["id"], choices(str(digits[path])))
    labeling.skip(tasks["photos/digit_0002.png"]["id"])
    materialize(defs, "digit_labels", instance=instance)

    daemon = start_daemon(root, env, tmp_path / "daemon.log")
    try:
        wait_for(
            lambda: (
                (latest_observation(instance, "digit_labels_project") or {}).get("labeled") == 2
            ),
            "the progress sensor recorded the project's progress",
            tmp_path / "daemon.log",
        )
    finally:
        stop_process_group(daemon)

    with running_web_server(root, env, tmp_path / "webserver.log") as url:
        page.goto(f"{url}/assets/digit_labels_project?view=events")
        # The latest event, the sensor's observation, is open: its rows are key, value.
        expect(page.get_by_text("Observed", exact=True)).to_be_visible()
        for key, value in (("tasks", "4"), ("labeled", "2"), ("skipped", "1"), ("remaining", "1")):
            expect(metadata_row(page, key).locator("xpath=td[2]")).to_have_text(value)
        annotators = metadata_row(page, "per_annotator")
        expect(inner_row(annotators, labeling.server.username, "2", "1")).to_have_count(1)
        per_class = metadata_row(page, "per_class")
        first_class = str(digits["photos/digit_0000.png"])
        expect(inner_row(per_class, first_class, "1")).to_have_count(1)

        page.goto(f"{url}/assets/digit_labels")
        expect(metadata_value(page, "version")).to_have_text("1")
        expect(metadata_value(page, "coco_images")).to_have_text("2")
        expect(metadata_value(page, "coco_annotations")).to_have_text("2")
        expect(metadata_value(page, "new_version")).to_have_text(re.compile("true", re.I))
