"""Load a project's catalogs the way Dagster does: its defs folder and the Catalog component.

The `ingestion` command, the Python API and the demo use this one path, so they see exactly
what `dg dev` and the daemon see. A project is the nearest folder (from the working directory
up) whose pyproject.toml or dg.toml has a ``[tool.dg]`` project section.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from ingestion_project.catalog.errors import CatalogError
from ingestion_project.catalog.project import ProjectCatalog


class ProjectNotFoundError(Exception):
    """No Dagster project at or above a folder, or one without any catalog."""


@dataclass(frozen=True)
class LoadedProject:
    """A project's root folder and its catalogs, validated as one."""

    root: Path
    catalog: ProjectCatalog
    catalog_files: tuple[str, ...]


def find_project_root(start: Path | None = None) -> Path:
    from dagster_shared.utils.config import discover_config_file

    folder = (start or Path.cwd()).resolve()
    config = discover_config_file(folder)
    if config is None:
        raise ProjectNotFoundError(
            f"no Dagster project at {folder} or above it (no pyproject.toml or dg.toml with a "
            "[tool.dg] section). Run the command from your project's folder, pass --project, "
            "or create a project as the README says ('Your own project')."
        )
    return config.parent


def load_project(start: Path | None = None) -> LoadedProject:
    """Every catalog of the project at or above ``start`` (default: the working directory).

    Raises CatalogError for mistakes in the catalogs (all of them, each with its file) and
    ProjectNotFoundError when there is no project or it declares no catalog.
    """
    from dagster import ComponentTree

    from ingestion_project.components.catalog import Catalog, shared_project

    root = find_project_root(start)
    make_importable(root)
    try:
        tree = ComponentTree.for_project(root)
        catalogs = tree.get_all_components(Catalog)
    except Exception as error:
        catalog_error = catalog_error_in(error)
        if catalog_error is not None:
            raise catalog_error from None
        raise
    if not catalogs:
        raise ProjectNotFoundError(
            f"the project at {root} declares no catalog. Add one with `dg scaffold defs "
            "ingestion_project.components.Catalog catalog` (then edit its defs.yaml)."
        )
    project = shared_project(catalogs)
    files = tuple(sorted(catalog.parsed.source for catalog in catalogs))
    return LoadedProject(root=root, catalog=project, catalog_files=files)


def catalog_error_in(error: BaseException | None) -> CatalogError | None:
    """The CatalogError behind an error Dagster raised while loading components, if any."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, CatalogError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def make_importable(root: Path) -> None:
    """Let the project's package import from its folder, as `dagster -m` does with its cwd.

    An installed project (``uv sync``, ``pip install -e .``) imports already; this covers
    running from a checkout that is not installed.
    """
    from dagster_shared.utils.config import discover_config_file, load_toml_as_dict

    config = discover_config_file(root)
    if config is None:
        return
    toml = load_toml_as_dict(config)
    project = (toml if config.name == "dg.toml" else toml.get("tool", {}).get("dg", {})).get(
        "project", {}
    )
    module = str(project.get("root_module") or project.get("defs_module") or "").split(".")[0]
    if not module or importlib.util.find_spec(module) is not None:
        return
    for folder in (root / "src", root):
        if (folder / module).is_dir():
            sys.path.insert(0, str(folder))
            importlib.invalidate_caches()
            return
