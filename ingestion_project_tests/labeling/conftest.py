"""One real Label Studio server for the whole session's labeling tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestion_project_tests.label_studio import LabelStudioServer, running_label_studio


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
