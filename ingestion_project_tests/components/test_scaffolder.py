"""`dg scaffold defs ingestion_project.components.Catalog <folder>` writes a catalog that loads."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest
import yaml

from ingestion_project.catalog.loading import load_project
from ingestion_project.components.catalog import Catalog
from ingestion_project.components.scaffolder import (
    CatalogScaffolder,
    CatalogScaffoldParams,
    catalog_name,
)
from ingestion_project_tests.catalogs import CATALOG_TYPE, project_definitions, write_project

# A commented line that is YAML once its '# ' goes: '# key: ...' (prose starts otherwise).
COMMENTED_YAML = re.compile(r"^(\s*)# (\s*[a-z_]+:.*)$")


def scaffold(root: Path, folder: str, **params: str) -> Path:
    """What `dg scaffold defs` does for our type: make the folder, run the scaffolder."""
    target = next(root.glob("*/defs")) / folder
    target.mkdir(parents=True)
    CatalogScaffolder().scaffold(
        dg.ScaffoldRequest(
            type_name=CATALOG_TYPE,
            target_path=target,
            scaffold_format="yaml",
            project_root=root,
            params=CatalogScaffoldParams(**params),
        )
    )
    return target / "defs.yaml"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INGESTION_HOME", str(tmp_path / "home"))
    return write_project(tmp_path / "project", {})


def test_the_catalog_type_has_our_scaffolder() -> None:
    from dagster.components.scaffold.scaffold import get_scaffolder

    assert isinstance(get_scaffolder(Catalog), CatalogScaffolder)


def test_a_scaffolded_catalog_loads_with_its_dataset_and_sensor(project: Path) -> None:
    path = scaffold(project, "sales")

    assert yaml.safe_load(path.read_text(encoding="utf-8"))["type"] == CATALOG_TYPE
    loaded = load_project(project)
    dataset = loaded.catalog.datasets["sales_files"]
    assert (dataset.datastore, dataset.path) == ("workspace_default", "sales/*.csv")
    defs = project_definitions(project)
    assert {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()} == {
        "sales_files"
    }
    assert [sensor.name for sensor in defs.sensors or []] == ["sales__data_change_every_30s"]


def test_the_dataset_can_be_named(project: Path) -> None:
    scaffold(project, "sales", dataset="orders")

    assert set(load_project(project).catalog.datasets) == {"orders"}


def test_every_commented_example_loads_once_uncommented(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = scaffold(project, "sales")
    lines = path.read_text(encoding="utf-8").splitlines()
    uncommented = [COMMENTED_YAML.sub(r"\1\2", line) for line in lines]
    assert sum(a != b for a, b in zip(lines, uncommented, strict=True)) >= 10
    path.write_text("\n".join(uncommented) + "\n", encoding="utf-8")
    monkeypatch.setenv("WAREHOUSE_PASSWORD", "not-a-real-password")
    monkeypatch.setenv("RAW_SAS", "sv=2024&sig=not-real")

    catalog = load_project(project).catalog

    assert set(catalog.datastores) == {"workspace_default", "warehouse", "raw_blob"}
    assert set(catalog.datasets) == {"sales_files", "customers"}
    assert catalog.models["demand"].train_on == "sales_files"
    assert catalog.datasets["sales_files"].checks


@pytest.mark.parametrize(
    ("scaffold_format", "append", "params", "message"),
    [
        ("python", False, {}, "without --format python"),
        ("yaml", True, {}, "without --format python or --append"),
        ("yaml", False, {"dataset": "Orders-2024"}, "is not a valid name"),
    ],
)
def test_what_the_scaffolder_refuses(
    tmp_path: Path, scaffold_format: str, append: bool, params: dict[str, str], message: str
) -> None:
    request = dg.ScaffoldRequest(
        type_name=CATALOG_TYPE,
        target_path=tmp_path,
        scaffold_format=scaffold_format,  # type: ignore[arg-type]
        project_root=tmp_path,
        params=CatalogScaffoldParams(**params),
        append=append,
    )
    with pytest.raises(ValueError, match=message):
        CatalogScaffolder().scaffold(request)
    assert not (tmp_path / "defs.yaml").exists()


@pytest.mark.parametrize(
    ("folder", "name"),
    [("sales", "sales"), ("Sales-EU", "sales_eu"), ("2024", "catalog_2024"), ("__", "catalog")],
)
def test_folder_names_become_catalog_names(folder: str, name: str) -> None:
    assert catalog_name(folder) == name
