"""The `Catalog` component: a defs.yaml that declares datastores, datasets, models and monitors.

Our package ships the component type (registered through the ``dagster_dg_cli.registry_modules``
entry point); a team's own Dagster project holds any number of catalog folders. All of them form
one project-wide namespace (``catalog.project``): a datastore declared in one catalog serves
datasets in another, and every mistake of every file is reported in one pass.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from ingestion_project.catalog.datastore_entries import DatastoreEntry
from ingestion_project.catalog.definitions import build_definitions
from ingestion_project.catalog.errors import CatalogError, CatalogProblem
from ingestion_project.catalog.parse import ParsedCatalog, parse_catalog
from ingestion_project.catalog.project import ProjectCatalog, assemble_project
from ingestion_project.catalog.spec import DatasetSpec, ModelSpec, MonitorSpec, RegistrySpec
from ingestion_project.components.scaffolder import CatalogScaffolder
from ingestion_project.settings import ingestion_home


class CatalogAttributes(BaseModel):
    """A catalog: datastores (where data lives), datasets, models and monitors over them."""

    model_config = ConfigDict(extra="forbid", title="Catalog")

    registry: RegistrySpec | None = Field(
        default=None, description="Where versions are recorded (one catalog per project)."
    )
    datastores: dict[str, DatastoreEntry] = Field(  # type: ignore[valid-type]
        default_factory=dict, description="Connection information, by name; secrets as {env: NAME}."
    )
    datasets: dict[str, DatasetSpec] = Field(
        default_factory=dict, description="Versioned references into datastores, by name."
    )
    models: dict[str, ModelSpec] = Field(
        default_factory=dict, description="Models trained on datasets, by name."
    )
    monitors: dict[str, MonitorSpec] = Field(
        default_factory=dict, description="Drift monitors, by name."
    )

    _raw: Any = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: Any) -> CatalogAttributes:
        """Keep the attributes as written; ``Catalog.load`` validates them entry by entry.

        Dagster validates attributes before it hands them to the component, where the file is
        not known yet. The schema stays typed for editors and ``dg check yaml``; the mistakes
        are worded in ``load``, with the file, every entry at once, and what to do.
        """
        try:
            model = handler(data)
        except ValidationError:
            model = cls.model_construct()
        model._raw = data
        return model


@dg.scaffold_with(CatalogScaffolder)
class Catalog(dg.Component):
    """A declarative catalog, Azure ML style: datastores, datasets, models and monitors in YAML.

    Each dataset becomes an asset that registers numbered versions, with checks, a refresh job
    and a data-change sensor or schedule; each model a training asset and its predictions; each
    monitor a drift asset and a retraining sensor. Secrets are written ``{env: NAME}`` and read
    only at run time.
    """

    def __init__(self, parsed: ParsedCatalog) -> None:
        self.parsed = parsed
        self._project: ProjectCatalog | None = None

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return CatalogAttributes

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> Catalog:
        raw = getattr(attributes, "_raw", None) or {}
        # Dagster's templates ({{ env.X }}, {{ context.project_root }}) as in any defs.yaml.
        raw = context.resolution_context.resolve_value(raw)
        source = display_path(context)
        parsed = parse_catalog(raw, source=source, home=ingestion_home())
        parsed.problems[:0] = duplicate_key_problems(context.path / "defs.yaml", source)
        return cls(parsed)

    def project(self, context: dg.ComponentLoadContext) -> ProjectCatalog:
        """The project-wide catalog that this catalog is part of."""
        if self._project is None:
            from dagster.components.core.component_tree import TestComponentTree

            tree = context.component_tree
            # A test context (dg.components.testing.component_defs) has no project to search.
            catalogs = (
                [] if isinstance(tree, TestComponentTree) else tree.get_all_components(Catalog)
            )
            shared_project(catalogs if self in catalogs else [self])
        assert self._project is not None
        return self._project

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return build_definitions(self.project(context), self.parsed.source)


def shared_project(catalogs: Sequence[Catalog]) -> ProjectCatalog:
    """Assemble the catalogs into one project, once: every one of them then shares it.

    Sharing matters beyond speed: each catalog's definitions carry the same resource objects,
    which is what lets Dagster merge them without a conflict.
    """
    project = next((c._project for c in catalogs if c._project is not None), None)
    if project is None:
        project = assemble_project([catalog.parsed for catalog in catalogs], ingestion_home())
    for catalog in catalogs:
        catalog._project = project
    return project


def display_path(context: dg.ComponentLoadContext) -> str:
    """The catalog's defs.yaml relative to the project root, as people name it."""
    path = context.path / "defs.yaml"
    try:
        return str(path.relative_to(context.project_root))
    except ValueError:
        return str(path)


class _DuplicateKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (YAML keeps the last)."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if isinstance(key, Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"'{key}' is declared twice in the same mapping", key_node.start_mark
            )
        if isinstance(key, Hashable):
            seen.add(key)
    return loader.construct_mapping(node)


_DuplicateKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def duplicate_key_problems(path: Path, source: str) -> list[CatalogProblem]:
    """A name written twice would silently replace the first; Dagster's reader keeps the last."""
    if not path.is_file():
        return []
    try:
        for _ in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_DuplicateKeyLoader):
            pass
    except yaml.YAMLError as error:
        return [
            CatalogProblem("(file)", f"{error}".replace("\n", " "), "Keep one of them.", source)
        ]
    return []


__all__ = ["Catalog", "CatalogAttributes", "CatalogError"]
