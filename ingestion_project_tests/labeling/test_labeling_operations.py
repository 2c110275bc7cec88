"""Labeling from the CLI, on Azure Blob images, and when things go wrong: against a real server.

Label Studio is the session's server (conftest.py); Azure Blob is Azurite.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
import requests
from azure.storage.blob import BlobServiceClient
from click.testing import CliRunner

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets.cli_commands import datasets
from ingestion_project.datasets.versions import dataset_registry, register_file_dataset
from ingestion_project.datastores.azure_blob import AzureBlobDatastore
from ingestion_project.datastores.azure_common import AzureCredential
from ingestion_project.datastores.base import DatastoreError
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.labeling.cli_commands import labeling as labeling_cli
from ingestion_project.labeling.client import LabelStudioClient
from ingestion_project.labeling.spec import LabelingSpec
from ingestion_project.labeling.state import read_state, write_state
from ingestion_project.labeling.sync import sync_project
from ingestion_project_tests.azurite import Azurite
from ingestion_project_tests.catalogs import materialize, write_project
from ingestion_project_tests.labeling.generated_images import write_digits, write_shapes
from ingestion_project_tests.labeling.labeler import DIGITS, Labeling, choices, declare


def run(project: Path, *args: str) -> Any:
    return CliRunner().invoke(labeling_cli, [*args, "--project", str(project)])


def test_the_cli_syncs_shows_progress_and_exports_files(labeling: Labeling, tmp_path: Path) -> None:
    digits = {d.path: d.digit for d in write_digits(labeling.images, "photos", range(4))}
    declare(labeling, "digit_labels", "multi_class", DIGITS)
    project = write_project(tmp_path / "project", {"catalog": labeling.raw})
    materialize(labeling.defs(), "photos")

    synced = run(project, "sync", "digit_labels")

    assert synced.exit_code == 0, synced.output
    assert "Created project" in synced.output and "(4 images): 4 new tasks" in synced.output
    assert "Label Studio counts 0 of 4 tasks labeled and 0 skips" in synced.output
    tasks = labeling.task_by_path(labeling.project_id("digit_labels"))
    for path in ["photos/digit_0000.png", "photos/digit_0001.png"]:
        labeling.annotate(tasks[path]["id"], choices(str(digits[path])))
    labeling.skip(tasks["photos/digit_0002.png"]["id"])

    progress = run(project, "progress", "digit_labels")

    assert progress.exit_code == 0, progress.output
    assert "2 of 4 images labeled (50%), 1 skipped, 1 to go" in progress.output
    assert f"{labeling.server.username}: 2 labeled, 1 skipped" in progress.output

    coco, table = tmp_path / "labels.coco.json", tmp_path / "labels.parquet"
    exported = run(project, "export", "digit_labels", "--coco", str(coco), "--table", str(table))

    assert exported.exit_code == 0, exported.output
    assert "Registered digit_labels version 1: 2 labeled images" in exported.output
    written = json.loads(coco.read_text())
    assert len(written["images"]) == 2 and len(written["annotations"]) == 2
    frame = pd.read_parquet(table)
    assert dict(zip(frame["image"], frame["label"], strict=True)) == {
        "photos/digit_0000.png": str(digits["photos/digit_0000.png"]),
        "photos/digit_0001.png": str(digits["photos/digit_0001.png"]),
    }
    again = run(project, "export", "digit_labels")
    assert "Unchanged, still digit_labels version 1" in again.output
    listed = CliRunner().invoke(datasets, ["list", "--project", str(project)])
    assert "digit_labels: labels, datastore workspace_default" in listed.output
    assert "latest: version 1, 2 rows" in listed.output


def test_a_missing_or_wrong_token_and_an_unreachable_server_say_what_to_do(
    labeling: Labeling, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_digits(labeling.images, "photos", range(2))
    declare(labeling, "digit_labels", "multi_class", DIGITS)
    project = write_project(tmp_path / "project", {"catalog": labeling.raw})
    materialize(labeling.defs(), "photos")

    monkeypatch.delenv("LABEL_STUDIO_TOKEN")
    missing = run(project, "sync", "digit_labels")
    assert missing.exit_code == 1
    assert "environment variable LABEL_STUDIO_TOKEN is not set" in missing.output
    assert "Access Token" in missing.output

    monkeypatch.setenv("LABEL_STUDIO_TOKEN", "not-the-token")
    refused = run(project, "sync", "digit_labels")
    assert refused.exit_code == 1
    assert "refused the token in LABEL_STUDIO_TOKEN (401)" in refused.output
    assert "not-the-token" not in refused.output

    monkeypatch.setenv("LABEL_STUDIO_TOKEN", labeling.server.token)
    labeling.raw["labeling"]["digit_labels"]["label_studio"]["url"] = "http://127.0.0.1:9"
    unreachable = write_project(tmp_path / "unreachable", {"catalog": labeling.raw})
    down = run(unreachable, "sync", "digit_labels")
    assert down.exit_code == 1
    assert "Label Studio at http://127.0.0.1:9 cannot be reached" in down.output
    assert "fix label_studio.url" in down.output

    nothing = run(project, "export", "digit_labels")
    assert nothing.exit_code == 1
    assert "no Label Studio project yet: sync it first" in nothing.output


def test_a_deleted_project_is_created_again_and_an_interrupted_import_is_not_repeated(
    labeling: Labeling,
) -> None:
    write_digits(labeling.images, "photos", range(3))
    declare(labeling, "digit_labels", "multi_class", DIGITS)
    labeling.sync("digit_labels")
    store = labeling.workspace().registry.store
    state = read_state(store, "_registry", "digit_labels")
    assert state is not None
    # A crash after Label Studio imported a task but before we recorded it: it is still in flight.
    lost = "photos/digit_0002.png"
    tasks = {path: task for path, task in state.tasks.items() if path != lost}
    write_state(
        store,
        "_registry",
        "digit_labels",
        state.model_copy(update={"tasks": tasks, "in_flight": [lost]}),
    )

    repaired = labeling.sync("digit_labels")

    assert repaired["new_tasks"] == 0
    assert labeling.get(f"/api/projects/{state.project_id}")["task_number"] == 3

    labeling.api.delete(f"{labeling.server.url}/api/projects/{state.project_id}").raise_for_status()
    recreated = labeling.sync("digit_labels")

    assert recreated["new_tasks"] == 3
    assert recreated["project_id"] != state.project_id
    assert labeling.get(f"/api/projects/{recreated['project_id']}")["task_number"] == 3


def test_a_new_class_in_the_yaml_updates_the_project(labeling: Labeling) -> None:
    write_shapes(labeling.images, "photos", 2)
    declare(labeling, "shape_boxes", "object_detection", ["cat", "dog"])
    labeling.sync("shape_boxes")
    labeling.raw["labeling"]["shape_boxes"]["classes"] = ["cat", "dog", "bird"]
    labeling.raw["labeling"]["shape_boxes"]["instructions"] = "Boxes around animals, birds too."

    labeling.sync("shape_boxes")

    details = labeling.get(f"/api/projects/{labeling.project_id('shape_boxes')}")
    assert '<Label value="bird"/>' in details["label_config"]
    assert details["expert_instruction"] == "Boxes around animals, birds too."
    assert details["task_number"] == 2


@pytest.fixture
def blob_images(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> AzureBlobDatastore:
    container = f"labeling-{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(azurite.connection_string).create_container(container)
    monkeypatch.setenv("AZ_LABELING_KEY", azurite.account_key)
    return AzureBlobDatastore(
        name="blob_images",
        account_url=azurite.account_url,
        container=container,
        credential=AzureCredential(account_key=dg.EnvVar("AZ_LABELING_KEY")),
        timeout_seconds=10,
    )


def test_signed_urls_read_one_blob_only_and_expire(blob_images: AzureBlobDatastore) -> None:
    blob_images.write_bytes("photos/a.png", b"png bytes")
    blob_images.write_bytes("photos/b.png", b"other")
    http = requests.Session()
    http.trust_env = False

    url = blob_images.signed_read_url("photos/a.png", timedelta(hours=1))

    assert http.get(url, timeout=10).content == b"png bytes"
    written = http.put(url, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10)
    assert written.status_code == 403  # read-only
    assert http.delete(url, timeout=10).status_code == 403
    other = url.replace("photos/a.png", "photos/b.png")
    assert http.get(other, timeout=10).status_code == 403  # signed for one blob
    expired = blob_images.signed_read_url("photos/a.png", timedelta(seconds=-1))
    assert http.get(expired, timeout=10).status_code == 403


def test_a_store_holding_only_a_sas_token_cannot_sign_urls(
    blob_images: AzureBlobDatastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZ_LABELING_SAS", "sv=2024-01-01&sig=abc")
    sas_only = blob_images.model_copy(
        update={"credential": AzureCredential(sas_token=dg.EnvVar("AZ_LABELING_SAS"))}
    )

    with pytest.raises(DatastoreError, match="no new read-only URL can be signed"):
        sas_only.signed_read_url("photos/a.png", timedelta(hours=1))


def test_azure_blob_images_reach_label_studio_through_signed_urls_signed_again_before_expiry(
    labeling: Labeling, blob_images: AzureBlobDatastore, tmp_path: Path
) -> None:
    shapes = write_shapes(tmp_path / "local", "photos", 3)
    for image in shapes:
        blob_images.write_bytes(image.path, (tmp_path / "local" / image.path).read_bytes())
    spec = LabelingSpec.model_validate(
        {
            "images": "photos",
            "task": "object_detection",
            "classes": ["cat", "dog"],
            "label_studio": {"url": labeling.server.url, "token": {"env": "LABEL_STUDIO_TOKEN"}},
            "image_urls": {"expiry": "1h"},
        }
    )
    registry_store = LocalDatastore(name="workspace_default", root=str(tmp_path / "registry"))
    registry = dataset_registry(registry_store, "_registry")
    images = register_file_dataset(
        "photos",
        DatasetSpec(kind="file", datastore="blob_images", path="photos/*.png"),
        blob_images,
        registry,
        run_id=None,
        code_version="test",
    ).record
    stores = {"blob_images": blob_images, "workspace_default": registry_store}
    http = requests.Session()
    http.trust_env = False

    with LabelStudioClient(spec.label_studio, where="labeling 'blob_boxes'") as client:
        first = sync_project(
            "blob_boxes", spec, images, stores, registry_store, "_registry", client
        )
        tasks = labeling.task_by_path(first.project_id)
        for image in shapes:
            url = tasks[image.path]["data"]["image"]
            assert "sig=" in url and "sp=r" in url
            assert http.get(url, timeout=10).content == blob_images.read_bytes(image.path)
        assert tasks[shapes[0].path]["data"]["width"] == 120

        time.sleep(1.1)  # SAS times are to the second: a URL signed now differs from the first
        later = sync_project(
            "blob_boxes",
            spec,
            images,
            stores,
            registry_store,
            "_registry",
            client,
            now=datetime.now(UTC) + timedelta(minutes=40),  # less than half of the hour left
        )

    assert (later.new_tasks, later.resigned) == (0, 3)
    again = labeling.task_by_path(first.project_id)
    assert all(again[p]["data"]["image"] != tasks[p]["data"]["image"] for p in tasks)
    assert all(http.get(again[p]["data"]["image"], timeout=10).ok for p in again)
    assert again[shapes[0].path]["data"]["width"] == 120  # the rest of the task's data is kept


def test_a_file_that_is_not_an_image_is_reported_and_does_not_block_the_others(
    labeling: Labeling,
) -> None:
    write_digits(labeling.images, "photos", range(2))
    (labeling.images / "photos/broken.png").write_bytes(b"not a png at all")
    declare(labeling, "digit_labels", "multi_class", DIGITS)

    synced = labeling.sync("digit_labels")

    assert (synced["new_tasks"], synced["unreadable_images"]) == (2, 1)
    assert [row.data["path"] for row in synced["unreadable_image_list"].records] == [
        "photos/broken.png"
    ]
    (labeling.images / "photos/broken.png").unlink()
    write_digits(labeling.images, "photos", [5])
    (labeling.images / "photos/digit_0005.png").rename(labeling.images / "photos/broken.png")

    fixed = labeling.sync("digit_labels")

    assert fixed["new_tasks"] == 1 and "unreadable_images" not in fixed
    assert labeling.get(f"/api/projects/{fixed['project_id']}")["task_number"] == 3
