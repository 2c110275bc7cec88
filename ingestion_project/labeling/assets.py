"""The Dagster side of a labeling entry: the project asset, the labeled dataset, the sensor.

``<name>_project`` keeps the Label Studio project in step with the image dataset (it runs
whenever the images get a new version, with them); ``<name>`` exports the annotations as a
new version of the labeled dataset; ``<name>_progress`` reads the project every few minutes and
records its progress on ``<name>_project`` as an observation, which the asset page plots.
"""

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import dagster as dg

from ingestion_project.catalog.project import ProjectCatalog
from ingestion_project.datasets.assets import dataset_metadata
from ingestion_project.datasets.versions import dataset_registry, stores_from_resources
from ingestion_project.labeling.export import COCO_FILE, LabelingProgress
from ingestion_project.labeling.operations import (
    LabelingError,
    export_labeling,
    labeling_progress,
    labeling_stores,
    sync_labeling,
)
from ingestion_project.labeling.spec import TASK_TITLES, progress_sensor_name, project_asset_name
from ingestion_project.metadata import table

REMOVED_SHOWN = 20
PER_CLASS_COLUMNS = [dg.TableColumn("class", "string"), dg.TableColumn("count", "int")]
PER_ANNOTATOR_COLUMNS = [
    dg.TableColumn("annotator", "string"),
    dg.TableColumn("labeled", "int"),
    dg.TableColumn("skipped", "int"),
]
REMOVED_COLUMNS = [dg.TableColumn("path", "string")]


def build_labeling_assets(
    name: str, catalog: ProjectCatalog, code_version: str
) -> list[dg.AssetsDefinition]:
    spec = catalog.labeling[name]
    project_key = project_asset_name(name)
    registry_spec = catalog.registry
    stores = labeling_stores(catalog, name)
    deps: list[str] = [spec.images]
    if spec.prelabel is not None:
        source = spec.prelabel.model or spec.prelabel.dataset
        deps.append(f"{source}_predictions" if spec.prelabel.model else str(source))

    @dg.asset(
        name=project_key,
        group_name="labeling",
        deps=deps,
        description=f"The Label Studio project labeling '{spec.images}' "
        f"({TASK_TITLES[spec.task]}), kept in step with its latest version: new images become "
        "tasks, removed ones are reported.",
        code_version=code_version,
        kinds={"labelstudio"},
        tags=dict(spec.tags),
        owners=list(spec.owners),
        metadata={"task": TASK_TITLES[spec.task], "classes": ", ".join(spec.classes)},
        required_resource_keys=stores,
    )
    def labeling_project(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        found = stores_from_resources(context.resources, stores)
        synced = sync_labeling(name, catalog, found, say=context.log.info)
        report = synced.report
        first, *warnings = synced.sentences(spec.images)
        context.log.info(first)
        for warning in warnings:
            context.log.warning(warning)
        metadata: dict[str, Any] = {
            "project_url": dg.MetadataValue.url(report.project_url),
            "project_id": report.project_id,
            "images_version": report.images_version,
            "new_tasks": report.new_tasks,
            "removed_images": len(report.removed),
            "resigned_urls": report.resigned,
            "prelabeled": report.prelabeled,
            "tasks": report.images,
            "project_tasks": synced.counts.tasks,
            "labeled_tasks": synced.counts.labeled,
            "skipped_annotations": synced.counts.skipped,
        }
        if report.removed:
            rows = [{"path": path} for path in report.removed[:REMOVED_SHOWN]]
            metadata["removed_image_list"] = table(rows, REMOVED_COLUMNS)
        if report.not_images:
            metadata["not_images"] = report.not_images
        if report.unreadable:
            metadata["unreadable_images"] = len(report.unreadable)
            rows = [{"path": path} for path in report.unreadable[:REMOVED_SHOWN]]
            metadata["unreadable_image_list"] = table(rows, REMOVED_COLUMNS)
        return dg.MaterializeResult(
            metadata=metadata,
            data_version=dg.DataVersion(f"{report.project_id}:{report.images_version}"),
        )

    @dg.asset(
        name=name,
        group_name="labeling",
        deps=[project_key],
        description=spec.description
        or f"Labels of '{spec.images}' from Label Studio ({TASK_TITLES[spec.task]}): each "
        "export registers a version, as a table (labels.parquet) and as COCO (coco.json).",
        code_version=code_version,
        kinds={"labelstudio", "parquet"},
        tags=dict(spec.tags),
        owners=list(spec.owners),
        required_resource_keys={registry_spec.datastore},
        output_required=False,
    )
    def labeled_dataset(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
        found = stores_from_resources(context.resources, [registry_spec.datastore])
        try:
            exported = export_labeling(
                name, catalog, found, run_id=context.run.run_id, code_version=code_version
            )
        except LabelingError as error:
            raise dg.Failure(str(error)) from None
        progress, state = exported.progress, exported.state
        outcome = exported.registration
        if outcome is None or exported.coco is None:
            context.log.warning(
                f"labeling '{name}': no image of '{spec.images}' v{state.images_version} is "
                f"labeled yet ({progress.sentence()}): nothing to export. Label some in "
                f"{state.url}/projects/{state.project_id}, then export again."
            )
            return
        record = outcome.record
        verb = "Registered" if outcome.created else "Unchanged:"
        context.log.info(
            f"{verb} {name} version {record.version}: {record.row_count} labeled images of "
            f"'{spec.images}' v{state.images_version} ({progress.sentence()})."
        )
        registry = dataset_registry(
            getattr(context.resources, registry_spec.datastore), registry_spec.prefix
        )
        yield dg.MaterializeResult(
            metadata={
                **dataset_metadata(outcome, registry),
                "coco_file": dg.MetadataValue.path(f"{record.snapshot_prefix}/{COCO_FILE}"),
                "coco_images": len(exported.coco["images"]),
                "coco_annotations": len(exported.coco["annotations"]),
                **progress_metadata(progress),
            },
            data_version=dg.DataVersion(record.fingerprint),
        )

    return [labeling_project, labeled_dataset]


def build_progress_sensor(name: str, catalog: ProjectCatalog) -> dg.SensorDefinition:
    """Every ``progress_every``, the project's progress as an observation of its asset.

    Only a change is recorded (the cursor holds the last figures), so the asset's plots show
    each step of the labeling, not one point per tick.
    """
    spec = catalog.labeling[name]
    registry_spec = catalog.registry
    project_key = project_asset_name(name)

    @dg.sensor(
        name=progress_sensor_name(name),
        minimum_interval_seconds=spec.progress_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        asset_selection=dg.AssetSelection.assets(project_key),
        required_resource_keys={registry_spec.datastore},
        description=f"Reads the labeling progress of '{name}' in Label Studio every "
        f"{spec.progress_every} and records it on {project_key} when it changed.",
    )
    def progress_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        stores = stores_from_resources(context.resources, [registry_spec.datastore])
        try:
            progress = labeling_progress(name, catalog, stores)
        except LabelingError:
            return dg.SkipReason(f"No project yet: materialize {project_key} to create it.")
        digest = hashlib.sha256(
            json.dumps(dataclasses.asdict(progress), sort_keys=True).encode()
        ).hexdigest()[:16]
        if digest == context.cursor:
            return dg.SkipReason(f"Unchanged: {progress.sentence()}.")
        return dg.SensorResult(
            asset_events=[
                dg.AssetObservation(asset_key=project_key, metadata=progress_metadata(progress))
            ],
            cursor=digest,
        )

    return progress_sensor


def progress_metadata(progress: LabelingProgress) -> dict[str, Any]:
    """Totals as plain numbers (plotted), per class and per annotator as tables."""
    return {
        "tasks": progress.tasks,
        "labeled": progress.labeled,
        "skipped": progress.skipped,
        "remaining": progress.remaining,
        "share_labeled": round(progress.share_labeled, 4),
        "per_class": table(
            [{"class": label, "count": count} for label, count in progress.per_class.items()],
            PER_CLASS_COLUMNS,
        ),
        "per_annotator": table(
            [
                {"annotator": who, **counts}
                for who, counts in sorted(progress.per_annotator.items())
            ],
            PER_ANNOTATOR_COLUMNS,
        ),
    }
