"""Catalogs for tests, loaded the way Dagster loads them: the component, or a real project folder.

``catalog_definitions`` and ``project_catalog_of`` go through the Catalog component itself
(Dagster's ``from_attributes_dict``); ``write_project`` writes a Dagster project to disk, for the
tests of what loads a project from its folder (the CLI, the Python API, ``dg``).
"""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from dagster import ComponentTree

from ingestion_project.catalog.project import ProjectCatalog
from ingestion_project.components.catalog import Catalog, shared_project

CATALOG_TYPE = "ingestion_project.components.Catalog"


def catalog_component(raw: Any, folder: str = "catalog") -> Catalog:
    """One Catalog component from a catalog's attributes, as if in ``defs/<folder>/defs.yaml``."""
    context = ComponentTree.for_test().load_context
    context = context.for_path(context.project_root / "defs" / folder)
    return Catalog.from_attributes_dict(attributes=raw, context=context)


def project_catalog_of(*catalogs: Any) -> ProjectCatalog:
    """The project-wide catalog of one or more catalogs' attributes (``catalog``, ``catalog_2``...).

    Raises CatalogError with every mistake, as loading a code location would.
    """
    components = [
        catalog_component(raw, "catalog" if index == 0 else f"catalog_{index + 1}")
        for index, raw in enumerate(catalogs)
    ]
    return shared_project(components)


def catalog_definitions(*catalogs: Any) -> dg.Definitions:
    """The merged definitions of the catalogs, as one code location would hold them."""
    context = ComponentTree.for_test().load_context
    components = [
        catalog_component(raw, "catalog" if index == 0 else f"catalog_{index + 1}")
        for index, raw in enumerate(catalogs)
    ]
    shared_project(components)
    return dg.Definitions.merge(*(component.build_defs(context) for component in components))


def materialize(
    defs: dg.Definitions,
    *assets: str,
    instance: dg.DagsterInstance | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """One run of ``assets`` as `dg launch --assets` or a sensor starts it: the asset job."""
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(),
        asset_selection=[dg.AssetKey(name) for name in assets],
        raise_on_error=raise_on_error,
    )


def materialization_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    """The metadata of the last materialization of ``asset`` in a run, as plain values."""
    events = [
        event
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey(asset)
    ]
    assert events, f"{asset} was not materialized"
    materialization = events[-1].step_materialization_data.materialization
    return {key: value.value for key, value in materialization.metadata.items()}


def project_definitions(root: Path) -> dg.Definitions:
    """The code location of the project at ``root``, built as `dg dev` builds it."""
    from ingestion_project.catalog.loading import make_importable

    make_importable(root)
    return ComponentTree.for_project(root).build_defs()


def write_project(root: Path, catalogs: Mapping[str, Any], *, package: str | None = None) -> Path:
    """A Dagster project folder with one defs folder per catalog; returns its root.

    ``catalogs`` maps a folder name to a catalog's attributes (a mapping) or to a whole defs.yaml
    text. Each project gets its own package name, so projects in one test process never share
    imported modules.
    """
    package = package or f"project_{uuid.uuid4().hex[:10]}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [project]
            name = "{package}"
            version = "0.1.0"

            [tool.dg]
            directory_type = "project"

            [tool.dg.project]
            root_module = "{package}"
            """
        ),
        encoding="utf-8",
    )
    defs = root / package / "defs"
    defs.mkdir(parents=True, exist_ok=True)
    (root / package / "__init__.py").write_text("", encoding="utf-8")
    (defs / "__init__.py").write_text("", encoding="utf-8")
    (root / package / "definitions.py").write_text(
        "from pathlib import Path\n\nimport dagster as dg\n\n\n@dg.definitions\n"
        "def defs() -> dg.Definitions:\n"
        "    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)\n",
        encoding="utf-8",
    )
    for folder, catalog in catalogs.items():
        write_catalog(defs / folder, catalog)
    return root


def write_catalog(folder: Path, catalog: Any) -> Path:
    """A defs.yaml in ``folder`` holding ``catalog`` (attributes, or a whole defs.yaml text)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "defs.yaml"
    text = (
        catalog
        if isinstance(catalog, str)
        else yaml.safe_dump({"type": CATALOG_TYPE, "attributes": catalog}, sort_keys=False)
    )
    path.write_text(text, encoding="utf-8")
    return path
