"""A labeler's view of Label Studio for the tests: the catalog, the runs, and the API calls.

Labels are posted through Label Studio's REST API, as its labeling UI does in a browser.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests

from ingestion_project.catalog.project import ProjectCatalog
from ingestion_project.datasets.api import Workspace
from ingestion_project.labeling.state import read_state
from ingestion_project_tests.catalogs import (
    catalog_definitions,
    materialization_metadata,
    materialize,
    project_catalog_of,
)
from ingestion_project_tests.label_studio import LabelStudioServer

DIGITS = [str(number) for number in range(10)]


@dataclass
class Labeling:
    """One test's catalog, its images folder, and a labeler's session on the server."""

    server: LabelStudioServer
    home: Path
    images: Path
    document_root: Path
    raw: dict[str, Any]
    api: requests.Session

    def defs(self) -> dg.Definitions:
        return catalog_definitions(self.raw)

    def catalog(self) -> ProjectCatalog:
        return project_catalog_of(self.raw)

    def workspace(self) -> Workspace:
        return Workspace(self.catalog(), self.home)

    def sync(self, name: str) -> dict[str, Any]:
        """Register the images' next version and sync the project, in one run."""
        result = materialize(self.defs(), "photos", f"{name}_project")
        return materialization_metadata(result, f"{name}_project")

    def export(self, name: str) -> dict[str, Any]:
        return materialization_metadata(materialize(self.defs(), name), name)

    def project_id(self, name: str) -> int:
        state = read_state(self.workspace().registry.store, "_registry", name)
        assert state is not None
        return state.project_id

    def tasks(self, project_id: int) -> list[dict[str, Any]]:
        answer = self.get("/api/tasks", project=project_id, page_size=1000, fields="all")
        return answer["tasks"]

    def task_by_path(self, project_id: int) -> dict[str, dict[str, Any]]:
        return {task["data"]["path"]: task for task in self.tasks(project_id)}

    def get(self, path: str, **params: Any) -> Any:
        response = self.api.get(f"{self.server.url}{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def annotate(self, task_id: int, result: list[dict[str, Any]]) -> None:
        response = self.api.post(
            f"{self.server.url}/api/tasks/{task_id}/annotations/",
            json={"result": result, "lead_time": 3.5},
            timeout=30,
        )
        assert response.status_code == 201, response.text

    def skip(self, task_id: int) -> None:
        response = self.api.post(
            f"{self.server.url}/api/tasks/{task_id}/annotations/",
            params={"was_cancelled": 1},
            json={"result": [], "was_cancelled": True},
            timeout=30,
        )
        assert response.status_code == 201, response.text


def declare(labeling: Labeling, name: str, task: str, classes: list[str], **extra: Any) -> None:
    labeling.raw["labeling"][name] = {
        "images": "photos",
        "task": task,
        "classes": classes,
        "instructions": "Label what you see; skip an image you cannot judge.",
        "label_studio": {"url": labeling.server.url, "token": {"env": "LABEL_STUDIO_TOKEN"}},
        "image_urls": {"local_files_document_root": str(labeling.document_root)},
        **extra,
    }


def choices(*labels: str) -> list[dict[str, Any]]:
    return [
        {
            "from_name": "label",
            "to_name": "image",
            "type": "choices",
            "value": {"choices": [*labels]},
        }
    ]


def rectangles(boxes: list[tuple[str, list[int]]], width: int, height: int) -> list[dict[str, Any]]:
    """Boxes drawn in the browser: Label Studio stores them in percent of the image."""
    return [
        {
            "id": uuid.uuid4().hex[:8],
            "from_name": "label",
            "to_name": "image",
            "type": "rectanglelabels",
            "original_width": width,
            "original_height": height,
            "image_rotation": 0,
            "value": {
                "x": x / width * 100,
                "y": y / height * 100,
                "width": w / width * 100,
                "height": h / height * 100,
                "rotation": 0,
                "rectanglelabels": [label],
            },
        }
        for label, (x, y, w, h) in boxes
    ]


@pytest.fixture
def labeling(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    label_studio: LabelStudioServer,
    label_studio_document_root: Path,
) -> Iterator[Labeling]:
    """A catalog with a local image dataset Label Studio can serve, and a labeler's session."""
    home = tmp_path / "home"
    monkeypatch.setenv("INGESTION_HOME", str(home))
    monkeypatch.setenv("LABEL_STUDIO_TOKEN", label_studio.token)
    images = label_studio_document_root / f"store-{uuid.uuid4().hex[:8]}"
    images.mkdir()
    raw = {
        "datastores": {"images": {"kind": "local", "root": str(images)}},
        "datasets": {"photos": {"kind": "file", "datastore": "images", "path": "photos/*.png"}},
        "labeling": {},
    }
    api = requests.Session()
    api.trust_env = False
    api.headers["Authorization"] = f"Token {label_studio.token}"
    yield Labeling(label_studio, home, images, label_studio_document_root, raw, api)
    api.close()
