"""The `Catalog` component: one defs.yaml declares datastores, datasets, models and monitors."""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import BaseModel, ConfigDict

from ingestion_project.catalog.definitions import build_definitions
from ingestion_project.catalog.parse import parse_catalog
from ingestion_project.settings import ingestion_home


class Catalog(dg.Component, dg.Model, dg.Resolvable):
    """A declarative catalog, Azure ML style; every mistake is reported with its entry and fix."""

    # Sections are validated by our own parser, which words errors for people; extra keys
    # reach it too so that a misspelt section gets the same treatment.
    model_config = ConfigDict(extra="allow")

    registry: dict[str, Any] | None = None
    datastores: dict[str, Any] | None = None
    datasets: dict[str, Any] | None = None
    models: dict[str, Any] | None = None
    monitors: dict[str, Any] | None = None

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        # Dagster's derived schema forbids unknown keys; let them through to parse_catalog.
        base = cls.model()
        config = ConfigDict(**{**base.model_config, "extra": "allow"})
        return type(f"{base.__name__}AllowingExtra", (base,), {"model_config": config})

    @classmethod
    def resolve_from_model(cls, context: dg.ResolutionContext, model: BaseModel) -> Catalog:
        component = super().resolve_from_model(context, model)
        return component.model_copy(update=model.model_extra or {})

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        source = context.path / "defs.yaml"
        try:
            source = source.relative_to(context.project_root)
        except ValueError:
            pass
        raw = {key: value for key, value in self.model_dump().items() if value is not None}
        catalog = parse_catalog(raw, source=source)
        return build_definitions(catalog, ingestion_home())
