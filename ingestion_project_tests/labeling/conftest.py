"""One real Label Studio server for the whole session's labeling tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ingestion_project_tests.label_studio import LabelStudioServer, running_label_studio
from ingestion_project_tests.labeling.labeler import Labeling


@pytest.fixture(scope="session")
def label_studio_document_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder Label Studio serves local files from: tests put their images under it."""
    return tmp_path_factory.mktemp("label-studio-files")


@pytest.fixture(scope="session")
def label_studio(
    tmp_path_factory: pytest.TempPathFactory, label_studio_document_root: Path
) -> Iterator[LabelStudioServer]:
    """Label Studio for the session (skips locally, fails under CI, if not installed)."""
    data_dir = tmp_path_factory.mktemp("label-studio")
    with running_label_studio(data_dir, document_root=label_studio_document_root) as server:
        yield server


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
