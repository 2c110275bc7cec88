"""Sync, progress and export of one labeling entry, as the assets, the sensor and the CLI run them.

Each takes the catalog and the datastores it needs (``labeling_stores``) by name, so a Dagster
run passes its resources and the ``ingestion labeling`` command the workspace's datastores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ingestion_project.catalog.project import ProjectCatalog
from ingestion_project.datasets.versions import DatasetRegistry, Registration, dataset_registry
from ingestion_project.datastores.base import FileDatastore
from ingestion_project.labeling.client import LabelStudioClient
from ingestion_project.labeling.export import (
    LabelingProgress,
    coco_document,
    read_annotations,
    register_labels,
)
from ingestion_project.labeling.prelabel import read_prelabels
from ingestion_project.labeling.spec import project_asset_name
from ingestion_project.labeling.state import ProjectState, read_state
from ingestion_project.labeling.sync import SyncReport, sync_project

Say = Callable[[str], None]


class LabelingError(Exception):
    """A labeling entry cannot do what was asked yet; the message says what to do first."""


@dataclass(frozen=True)
class ProjectCounts:
    """Label Studio's own counters of a project: cheap to read, whatever its size.

    They count every task of the project, including those of images the dataset dropped; the
    per-class and per-annotator figures come from an export (the progress sensor, exports).
    """

    tasks: int
    labeled: int
    skipped: int

    @classmethod
    def of(cls, project: Mapping[str, Any]) -> ProjectCounts:
        return cls(
            tasks=int(project.get("task_number") or 0),
            labeled=int(project.get("num_tasks_with_annotations") or 0),
            skipped=int(project.get("skipped_annotations_number") or 0),
        )


@dataclass(frozen=True)
class Synced:
    """A sync: what it did, and the project's counters right after it."""

    report: SyncReport
    counts: ProjectCounts

    def sentences(self, images: str) -> list[str]:
        report, counts = self.report, self.counts
        made = "Created" if report.created_project else "Synced"
        lines = [
            f"{made} project {report.project_id} with '{images}' v{report.images_version} "
            f"({report.images} images): {report.new_tasks} new tasks, {len(report.removed)} "
            f"removed images, {report.resigned} URLs signed again, {report.prelabeled} "
            f"pre-labeled. Label Studio counts {counts.labeled} of {counts.tasks} tasks labeled "
            f"and {counts.skipped} skips."
        ]
        if report.unreadable:
            lines.append(
                f"{len(report.unreadable)} files of '{images}' are not images Pillow can read "
                f"(e.g. {report.unreadable[0]}): not imported. Replace or remove them; the next "
                "sync tries them again."
            )
        if report.removed:
            lines.append(
                f"{len(report.removed)} images of earlier versions are not in '{images}' "
                f"v{report.images_version} (e.g. {report.removed[0]}): their tasks stay in Label "
                "Studio, and their labels are left out of exports."
            )
        return lines


@dataclass(frozen=True)
class Exported:
    """An export: the version registered (None when nothing is labeled yet) and the progress."""

    registration: Registration | None
    progress: LabelingProgress
    coco: dict[str, Any] | None
    state: ProjectState


def labeling_stores(catalog: ProjectCatalog, name: str) -> set[str]:
    """The datastores a labeling entry reads: images, registry, and its pre-labels' source."""
    spec = catalog.labeling[name]
    stores = {catalog.datasets[spec.images].datastore, catalog.registry.datastore}
    if spec.prelabel is not None and spec.prelabel.model is not None:
        model = catalog.models[spec.prelabel.model]
        assert model.scoring is not None
        stores |= {model.scoring.datastore, catalog.datasets[model.scoring.dataset].datastore}
    elif spec.prelabel is not None and spec.prelabel.dataset in catalog.datasets:
        stores.add(catalog.datasets[spec.prelabel.dataset].datastore)
    return stores


def _registry(catalog: ProjectCatalog, stores: Mapping[str, FileDatastore]) -> DatasetRegistry:
    return dataset_registry(stores[catalog.registry.datastore], catalog.registry.prefix)


def _client(catalog: ProjectCatalog, name: str) -> LabelStudioClient:
    return LabelStudioClient(catalog.labeling[name].label_studio, where=f"labeling '{name}'")


def sync_labeling(
    name: str, catalog: ProjectCatalog, stores: Mapping[str, FileDatastore], *, say: Say
) -> Synced:
    """Bring the project in step with the latest version of its images, then read progress."""
    spec = catalog.labeling[name]
    registry = _registry(catalog, stores)
    images = registry.require_latest(spec.images)
    prelabels = read_prelabels(name, spec, catalog, registry, stores)
    with _client(catalog, name) as client:
        report = sync_project(
            name,
            spec,
            images,
            stores,
            registry.store,
            registry.prefix,
            client,
            prelabels=prelabels,
            progress=say,
        )
        project = client.get_project(report.project_id) or {}
    return Synced(report, ProjectCounts.of(project))


def labeling_progress(
    name: str, catalog: ProjectCatalog, stores: Mapping[str, FileDatastore]
) -> LabelingProgress:
    state = require_state(name, catalog, stores)
    with _client(catalog, name) as client:
        return _read(name, catalog, client, state)[1]


def export_labeling(
    name: str,
    catalog: ProjectCatalog,
    stores: Mapping[str, FileDatastore],
    *,
    run_id: str | None,
    code_version: str,
) -> Exported:
    """Register the project's labels as the next version of dataset ``name``, if they changed."""
    spec = catalog.labeling[name]
    state = require_state(name, catalog, stores)
    with _client(catalog, name) as client:
        labeled, progress = _read(name, catalog, client, state)
    if not labeled:
        return Exported(None, progress, None, state)
    coco = coco_document(spec, name, labeled)
    registration = register_labels(
        name,
        spec,
        labeled,
        state,
        _registry(catalog, stores),
        catalog.registry.datastore,
        coco=coco,
        run_id=run_id,
        code_version=code_version,
    )
    return Exported(registration, progress, coco, state)


def _read(
    name: str, catalog: ProjectCatalog, client: LabelStudioClient, state: ProjectState
) -> tuple[list[Any], LabelingProgress]:
    exported = client.export_snapshot(state.project_id, f"{name} (ingestion_project)")
    return read_annotations(catalog.labeling[name], exported, state)


def require_state(
    name: str, catalog: ProjectCatalog, stores: Mapping[str, FileDatastore]
) -> ProjectState:
    state = read_state(stores[catalog.registry.datastore], catalog.registry.prefix, name)
    if state is None:
        raise LabelingError(
            f"labeling '{name}' has no Label Studio project yet: sync it first "
            f"(dg launch --assets {project_asset_name(name)}, or ingestion labeling sync {name}); "
            "it creates the project and imports the images."
        )
    return state
