"""Render records as Dagster metadata that people can read in the web UI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from ingestion_project.records import SchemaColumn


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub-style markdown table; the UI renders it in the asset's metadata panel."""
    if not rows:
        return "_(none)_"
    names = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines.extend("| " + " | ".join(_cell(row.get(name)) for name in names) + " |" for row in rows)
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def column_schema(schema: Sequence[SchemaColumn]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name=column.name, type=column.type) for column in schema]
    )
