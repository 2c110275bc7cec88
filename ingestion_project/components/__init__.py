"""Component types this project registers with `dg` (see [tool.dg.project] registry_modules)."""

from ingestion_project.components.catalog import Catalog

__all__ = ["Catalog"]
