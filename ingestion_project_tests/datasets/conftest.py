"""Fixtures most dataset tests share: a landing store that counts what it touched, a registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion_project.datasets.versions import DatasetRegistry, dataset_registry
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project_tests.datasets.dataset_helpers import CountingDatastore


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing"


@pytest.fixture
def store(landing: Path) -> CountingDatastore:
    return CountingDatastore(name="landing", root=str(landing))


@pytest.fixture
def registry_store(tmp_path: Path) -> LocalDatastore:
    return LocalDatastore(name="registry", root=str(tmp_path / "reg"))


@pytest.fixture
def registry(registry_store: LocalDatastore) -> DatasetRegistry:
    return dataset_registry(registry_store, "_reg")
