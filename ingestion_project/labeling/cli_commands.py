"""`ingestion labeling ...`: sync a labeling project, show its progress, export its labels.

The same operations the assets run (``labeling.operations``), from the project's folder and
its `.env`: handy for a labeling lead who wants the labels now, as files, without the web UI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ingestion_project.cli_support import explained_errors, loaded_project, project_option

if TYPE_CHECKING:
    from ingestion_project.datasets.api import Workspace
    from ingestion_project.datastores.base import FileDatastore
    from ingestion_project.labeling.export import LabelingProgress


@click.group()
def labeling() -> None:
    """Labeling projects on Label Studio: sync them, follow progress, export labels."""


@contextmanager
def _labeling_errors() -> Iterator[None]:
    """Label Studio's and the labeling entry's errors as one message and exit 1."""
    from ingestion_project.labeling.client import LabelStudioError
    from ingestion_project.labeling.images import ImageError
    from ingestion_project.labeling.operations import LabelingError
    from ingestion_project.labeling.prelabel import PrelabelError

    with explained_errors():
        try:
            yield
        except (LabelStudioError, LabelingError, ImageError, PrelabelError) as error:
            raise click.ClickException(str(error)) from None


def _entry(name: str, project: Path | None) -> tuple[Workspace, dict[str, FileDatastore]]:
    from ingestion_project.datasets.api import Workspace
    from ingestion_project.labeling.operations import labeling_stores
    from ingestion_project.settings import ingestion_home

    loaded = loaded_project(project)
    catalog = loaded.catalog
    if name not in catalog.labeling:
        declared = ", ".join(sorted(catalog.labeling)) or "none"
        raise click.UsageError(f"'{name}' is not a labeling entry (declared: {declared}).")
    workspace = Workspace(catalog, ingestion_home(loaded.root), loaded.root)
    stores = {store: workspace.file_datastore(store) for store in labeling_stores(catalog, name)}
    return workspace, stores


def _echo_progress(progress: LabelingProgress) -> None:
    click.echo(f"{progress.sentence()}.")
    counted = ", ".join(f"{label} {count}" for label, count in progress.per_class.items())
    click.echo(f"  per class: {counted}")
    for who, counts in sorted(progress.per_annotator.items()):
        click.echo(f"  {who}: {counts['labeled']} labeled, {counts['skipped']} skipped")
    if progress.outdated:
        click.echo(f"  {progress.outdated} labeled images are no longer in the image dataset.")


@labeling.command("sync")
@click.argument("name")
@project_option
def sync(name: str, project: Path | None) -> None:
    """Create the project or bring it in step with the images' latest version."""
    from ingestion_project.labeling.operations import sync_labeling

    with _labeling_errors():
        workspace, stores = _entry(name, project)
        synced = sync_labeling(name, workspace.catalog, stores, say=click.echo)
    for line in synced.sentences(workspace.catalog.labeling[name].images):
        click.echo(line)
    click.echo(f"Open it: {synced.report.project_url}")


@labeling.command("progress")
@click.argument("name")
@project_option
def progress(name: str, project: Path | None) -> None:
    """How far labeling is: labeled, skipped, per class and per annotator."""
    from ingestion_project.labeling.operations import labeling_progress

    with _labeling_errors():
        workspace, stores = _entry(name, project)
        _echo_progress(labeling_progress(name, workspace.catalog, stores))


@labeling.command("export")
@click.argument("name")
@click.option(
    "--coco",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the version's COCO JSON to this file.",
)
@click.option(
    "--table",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the version's table to this Parquet file.",
)
@project_option
def export(name: str, coco: Path | None, table: Path | None, project: Path | None) -> None:
    """Register the labels as the next version of dataset NAME (if they changed)."""
    from ingestion_project.catalog.code_versions import labeling_code_version
    from ingestion_project.labeling.operations import export_labeling

    with _labeling_errors():
        workspace, stores = _entry(name, project)
        click.echo(f"Exporting '{name}' from Label Studio...")
        exported = export_labeling(
            name,
            workspace.catalog,
            stores,
            run_id=None,
            code_version=labeling_code_version(workspace.catalog, name),
        )
    _echo_progress(exported.progress)
    outcome = exported.registration
    if outcome is None or exported.coco is None:
        raise click.ClickException(
            f"nothing is labeled yet in project {exported.state.project_id}: nothing to export. "
            "Label some images, then export again."
        )
    record = outcome.record
    verb = "Registered" if outcome.created else "Unchanged, still"
    click.echo(
        f"{verb} {name} version {record.version}: {record.row_count} labeled images "
        f"(ingestion datasets show {name}:{record.version})."
    )
    if coco is not None:
        coco.write_text(json.dumps(exported.coco, indent=1), encoding="utf-8")
        click.echo(
            f"Wrote {coco}: {len(exported.coco['images'])} images, "
            f"{len(exported.coco['annotations'])} annotations."
        )
    if table is not None:
        with _labeling_errors():
            frame = workspace.get(name, record.version).to_pandas()
        frame.to_parquet(table, index=False)
        click.echo(f"Wrote {table}: {len(frame)} rows.")
