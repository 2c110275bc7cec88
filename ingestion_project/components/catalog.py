"""The `Catalog` component: a defs.yaml that declares datastores, datasets, models and monitors.

Our package ships the component type (registered through the ``dagster_dg_cli.registry_modules``
entry point); a team's own Dagster project holds any number of catalog folders. All of them form
one project-wide namespace (``catalog.project``): a datastore declared in one catalog serves
datasets in another, and every mistake of every file is reported in one pass.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from ingestion_project.catalog.code_versions import code_identity
from ingestion_project.catalog.datastore_entries import DatastoreEntry
from ingestion_project.catalog.definitions import build_definitions
from ingestion_project.catalog.errors import CatalogError, CatalogProblem
from ingestion_project.catalog.parse import ParsedCatalog, parse_catalog
from ingestion_project.catalog.project import ProjectCatalog, assemble_project
from ingestion_project.catalog.spec import (
    AlertSpec,
    AutomationSpec,
    DatasetSpec,
    ModelSpec,
    MonitorSpec,
    RegistrySpec,
)
from ingestion_project.components.scaffolder import CatalogScaffolder
from ingestion_project.labeling.spec import LabelingSpec
from ingestion_project.settings import ingestion_home

T = TypeVar("T")


class CatalogAttributes(BaseModel):
    """A catalog: datastores (where data lives), datasets, models and monitors over them."""

    model_config = ConfigDict(extra="forbid", title="Catalog")

    registry: RegistrySpec | None = Field(
        default=None, description="Where versions are recorded (one catalog per project)."
    )
    automation: AutomationSpec | None = Field(
        default=None, description="What re-runs by itself, e.g. {code_change: true}."
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
    alerts: dict[str, AlertSpec] = Field(
        default_factory=dict,
        description="Webhooks (Slack-compatible) for drift, performance drops and promotions.",
    )
    labeling: dict[str, LabelingSpec] = Field(
        default_factory=dict,
        description="Label Studio projects over image datasets; each name is its labeled dataset.",
    )

    _raw: Any = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: Any) -> CatalogAttributes:
        """Keep the attributes as written; ``Catalog.load`` validates them entry by entry.

        Dagster validates attributes before it hands them to the component, where the file is
        not known yet. The schema stays typed for editors and ``dg check yaml``; the entries are
        validated (once, with these same models) and their mistakes worded in ``load``, with the
        file, every entry at once, and what to do.
        """
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

    def __init__(
        self, parsed: ParsedCatalog, op_prefix: str = "catalog", home: Path | None = None
    ) -> None:
        self.parsed = parsed
        self.op_prefix = op_prefix
        self.home = home or ingestion_home()
        self._project: ProjectCatalog | None = None

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return CatalogAttributes

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> Catalog:
        raw = getattr(attributes, "_raw", None) or {}
        if _has_template(repr(raw)):
            raw = render_templates(raw, context.resolution_context)
        source = display_path(context)
        path = context.path / "defs.yaml"
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        home = ingestion_home(context.project_root)

        def parse() -> ParsedCatalog:
            parsed = parse_catalog(raw, source=source, home=home)
            parsed.problems[:0] = duplicate_key_problems(text, source)
            return parsed

        key = ("parse", source, str(home), _digest(text), _digest(raw))
        return cls(_RECENT.get_or_make(key, parse), op_prefix(context), home)

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
        project = self.project(context)
        return _RECENT.get_or_make(
            ("defs", id(project), self.parsed.source, code_identity()),
            lambda: (project, build_definitions(project, self.parsed.source, self.op_prefix)),
        )[1]


def shared_project(catalogs: Sequence[Catalog]) -> ProjectCatalog:
    """Assemble the catalogs into one project, once: every one of them then shares it.

    Sharing matters beyond speed: each catalog's definitions carry the same resource objects,
    which is what lets Dagster merge them without a conflict.
    """
    project = next((c._project for c in catalogs if c._project is not None), None)
    if project is None:
        parsed = tuple(sorted((catalog.parsed for catalog in catalogs), key=id))
        home = catalogs[0].home
        project = _RECENT.get_or_make(
            ("project", tuple(map(id, parsed)), str(home)),
            lambda: (parsed, assemble_project(parsed, home)),
        )[1]
    for catalog in catalogs:
        catalog._project = project
    return project


class _RecentLoads:
    """The last few parsed catalogs, projects and definitions, reused when nothing changed.

    Dagster builds a code location's definitions twice as it starts (to find them, then to
    build the repository; `dagster definitions validate` too). Equal inputs give equal
    definitions, so the second build reuses the first: keys are digests of what a catalog says
    (after templates) and where it lives. Values hold what their keys' ids refer to, so an id
    is never reused while its entry is here.
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self.entries: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def get_or_make(self, key: tuple[Any, ...], make: Callable[[], T]) -> T:
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        value = make()
        self.entries[key] = value
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return value


_RECENT = _RecentLoads()


def _digest(value: Any) -> str:
    """Of a file's text, or of what YAML made of it (in the file's order, so repr is stable)."""
    text = value if isinstance(value, str) else repr(value)
    return hashlib.sha256(text.encode()).hexdigest()


def _has_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def render_templates(value: Any, context: dg.ResolutionContext) -> Any:
    """Dagster's templates ({{ env.X }}, {{ context.project_root }}) as in any defs.yaml.

    Only strings that hold a template are rendered: rendering compiles a Jinja template per
    string, which for a catalog of 1,000 datasets cost more than everything else in loading it.
    """
    if isinstance(value, dict):
        return {key: render_templates(item, context.at_path(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [render_templates(item, context.at_path(i)) for i, item in enumerate(value)]
    if isinstance(value, str) and _has_template(value):
        return context.resolve_value(value)
    return value


def op_prefix(context: dg.ComponentLoadContext) -> str:
    """The catalog's folder under the defs folder as an op name: 'catalog', 'team_a__sales'."""
    try:
        folder = context.path.relative_to(context.defs_module_path)
    except ValueError:
        folder = Path(context.path.name)
    return re.sub(r"\W+", "_", "__".join(folder.parts)).strip("_") or "catalog"


def display_path(context: dg.ComponentLoadContext) -> str:
    """The catalog's defs.yaml relative to the project root, as people name it."""
    path = context.path / "defs.yaml"
    try:
        return str(path.relative_to(context.project_root))
    except ValueError:
        return str(path)


def duplicate_key_problems(text: str, source: str) -> list[CatalogProblem]:
    """A name written twice would silently replace the first; Dagster's reader keeps the last.

    Only the node tree is built (by libyaml when present), so this costs a fraction of a load.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        documents = list(yaml.compose_all(text, Loader=loader))
    except yaml.YAMLError:
        return []  # Dagster reports the syntax error itself, with its position
    problems = []
    pending: list[yaml.Node] = [node for node in documents if node is not None]
    while pending:
        node = pending.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[tuple[str, str]] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if (key.tag, key.value) in seen:
                        line = key.start_mark.line + 1
                        problems.append(
                            CatalogProblem(
                                "(file)",
                                f"'{key.value}' is declared twice in the same mapping (line "
                                f"{line}); YAML would keep only the last one",
                                "Keep one of them, or rename one.",
                                source,
                            )
                        )
                    seen.add((key.tag, key.value))
                pending.append(value)
        elif isinstance(node, yaml.SequenceNode):
            pending.extend(node.value)
    return problems


__all__ = ["Catalog", "CatalogAttributes", "CatalogError"]
