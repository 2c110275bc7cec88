"""Annotations of a Label Studio project as progress figures and as a labeled-dataset version.

Read from one export snapshot: each task's annotation in use is its ground truth, else its most
recent one that was not skipped. A version of the labeled dataset holds the labeled images of
the image-dataset version last synced, as a table (``labels.parquet``: path, label or labels,
boxes in 0..1) and as COCO (``coco.json``: boxes in pixels, ``area``, ``iscrowd``, categories
from 1, images with no boxes kept).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from ingestion_project.datasets.profile import frame_profile, frame_schema
from ingestion_project.datasets.snapshot import discard_copies, new_snapshot_token, snapshot_prefix
from ingestion_project.datasets.versions import DatasetRegistry, Registration
from ingestion_project.datastores.base import FileDatastore
from ingestion_project.labeling.results import coco_box, labels_of
from ingestion_project.labeling.spec import TASK_TITLES, LabelingSpec
from ingestion_project.labeling.state import ProjectState
from ingestion_project.records import (
    DatasetLineage,
    DatasetVersionRecord,
    LoadOptions,
    Manifest,
    ManifestEntry,
    ReadOptions,
)

LABELS_FILE = "labels.parquet"
COCO_FILE = "coco.json"
COCO = "coco"


@dataclass(frozen=True)
class LabeledImage:
    """One image's labels as the annotation in use gives them."""

    path: str
    task_id: int
    width: int
    height: int
    label: Any
    annotator: str
    annotated_at: datetime | None


@dataclass
class LabelingProgress:
    """How far labeling is: tasks of the synced images, and who labeled what."""

    tasks: int = 0
    labeled: int = 0
    skipped: int = 0
    per_class: dict[str, int] = field(default_factory=dict)
    per_annotator: dict[str, dict[str, int]] = field(default_factory=dict)
    outdated: int = 0
    """Labeled tasks of images the synced image version no longer holds: left out of exports."""

    @property
    def remaining(self) -> int:
        return self.tasks - self.labeled - self.skipped

    @property
    def share_labeled(self) -> float:
        return self.labeled / self.tasks if self.tasks else 0.0

    def sentence(self) -> str:
        return (
            f"{self.labeled} of {self.tasks} images labeled ({self.share_labeled:.0%}), "
            f"{self.skipped} skipped, {self.remaining} to go"
        )


def read_annotations(
    spec: LabelingSpec,
    exported: list[dict[str, Any]],
    state: ProjectState,
) -> tuple[list[LabeledImage], LabelingProgress]:
    """The labeled images of the synced version, and the project's progress, from one export."""
    removed = set(state.removed)
    current = {path for path in state.tasks if path not in removed}
    progress = LabelingProgress(tasks=len(current))
    labeled: list[LabeledImage] = []
    per_class: Counter[str] = Counter()
    seen: set[str] = set()
    for task in exported:
        data = task.get("data") or {}
        path = data.get("path")
        if not isinstance(path, str) or path not in state.tasks or path in seen:
            continue  # a task we did not import (made by hand in Label Studio), or a duplicate
        seen.add(path)
        annotations = task.get("annotations") or []
        for annotation in annotations:
            who = _annotator(annotation)
            counts = progress.per_annotator.setdefault(who, {"labeled": 0, "skipped": 0})
            counts["skipped" if annotation.get("was_cancelled") else "labeled"] += 1
        in_use = _annotation_in_use(annotations)
        if in_use is None:
            if path in current and annotations:
                progress.skipped += 1
            continue
        if path not in current:
            progress.outdated += 1
            continue
        stored = state.tasks[path]
        label = labels_of(spec.task, in_use.get("result") or [])
        labeled.append(
            LabeledImage(
                path=path,
                task_id=int(task["id"]),
                width=stored.width or int(data.get("width") or 0),
                height=stored.height or int(data.get("height") or 0),
                label=label,
                annotator=_annotator(in_use),
                annotated_at=_time(in_use.get("updated_at") or in_use.get("created_at")),
            )
        )
        per_class.update(_classes_of(spec.task, label))
    progress.labeled = len(labeled)
    progress.per_class = {name: per_class.get(name, 0) for name in spec.classes}
    labeled.sort(key=lambda image: image.path)
    return labeled, progress


def _annotation_in_use(annotations: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ground truth, else the most recently updated annotation that was not skipped."""
    kept = [item for item in annotations if not item.get("was_cancelled")]
    if not kept:
        return None
    truth = [item for item in kept if item.get("ground_truth")]
    pool = truth or kept
    return max(pool, key=lambda item: (str(item.get("updated_at") or ""), int(item.get("id", 0))))


def _annotator(annotation: Mapping[str, Any]) -> str:
    """The annotator's email (the export names them), else their user id."""
    who = annotation.get("completed_by")
    if isinstance(who, Mapping):
        return str(who.get("email") or f"user {who.get('id')}")
    return "unknown" if who is None else f"user {who}"


def _classes_of(task: str, label: Any) -> list[str]:
    if task == "multi_class":
        return [label] if label else []
    if task == "multi_label":
        return list(label)
    return [box["label"] for box in label]


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def labels_frame(labeled: list[LabeledImage]) -> pd.DataFrame:
    """The tabular form: one row per labeled image (Azure ML's labeled-dataset columns)."""
    frame = pd.DataFrame(
        {
            "image": [image.path for image in labeled],
            "label": pd.Series([image.label for image in labeled], dtype=object),
            "width": pd.Series([image.width for image in labeled], dtype="int64"),
            "height": pd.Series([image.height for image in labeled], dtype="int64"),
            "annotator": [image.annotator for image in labeled],
            "annotated_at": pd.to_datetime([image.annotated_at for image in labeled], utc=True),
            "task_id": pd.Series([image.task_id for image in labeled], dtype="int64"),
        }
    )
    return frame


def coco_document(spec: LabelingSpec, name: str, labeled: list[LabeledImage]) -> dict[str, Any]:
    """COCO as standard evaluators read it; every labeled image is listed, boxes or not."""
    categories = {label: number for number, label in enumerate(spec.classes, start=1)}
    images, annotations = [], []
    for image_id, image in enumerate(labeled, start=1):
        images.append(
            {
                "id": image_id,
                "file_name": image.path,
                "width": image.width,
                "height": image.height,
            }
        )
        if spec.task == "object_detection":
            for box in image.label:
                if box["label"] not in categories:
                    continue  # a class removed from the declaration since it was drawn
                pixels, area = coco_box(box, image.width, image.height)
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": categories[box["label"]],
                        "bbox": pixels,
                        "area": area,
                        "iscrowd": 0,
                        "segmentation": [],
                    }
                )
        else:
            annotations.extend(
                {
                    "id": len(annotations) + offset,
                    "image_id": image_id,
                    "category_id": categories[label],
                }
                for offset, label in enumerate(_classes_of(spec.task, image.label), start=1)
                if label in categories
            )
    return {
        "info": {
            "description": f"{name}: {TASK_TITLES[spec.task]}",
            "year": datetime.now(UTC).year,
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": number, "name": label, "supercategory": ""}
            for label, number in categories.items()
        ],
    }


def register_labels(
    name: str,
    spec: LabelingSpec,
    labeled: list[LabeledImage],
    state: ProjectState,
    registry: DatasetRegistry,
    store_name: str,
    *,
    coco: dict[str, Any],
    run_id: str | None,
    code_version: str,
) -> Registration:
    """Register the labels as a new version of dataset ``name``, unless they are unchanged.

    Both files are written under a fresh snapshot folder of the registry's store before the
    record, and removed again if anything fails before the record is written.
    """
    frame = labels_frame(labeled)
    content = json.dumps(
        {
            "rows": frame.astype({"annotated_at": str}).to_dict(orient="records"),
            "task": spec.task,
            "classes": spec.classes,
            "images_version": state.images_version,
        },
        sort_keys=True,
        default=str,
    )
    fingerprint = hashlib.sha256(content.encode()).hexdigest()
    latest = registry.latest(name, include_failed=True)
    if latest is not None and latest.fingerprint == fingerprint:
        return Registration(record=latest, created=False, frame=None)
    store: FileDatastore = registry.store
    folder = snapshot_prefix(registry.prefix, name, new_snapshot_token())
    table_path, coco_path = f"{folder}/{LABELS_FILE}", f"{folder}/{COCO_FILE}"
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    written: list[str] = []
    try:
        store.write_bytes(table_path, buffer.getvalue(), overwrite=False)
        written.append(table_path)
        store.write_bytes(coco_path, json.dumps(coco, indent=1).encode(), overwrite=False)
        written.append(coco_path)
        table_file, coco_file = store.stat(table_path), store.stat(coco_path)
    except BaseException as error:
        discard_copies(store, written, error)
        raise
    images_upstream = {"dataset": spec.images, "version": state.images_version}
    project = {"label_studio_project": state.project_id, "url": state.url}

    def build(version: int) -> DatasetVersionRecord:
        return DatasetVersionRecord(
            dataset=name,
            version=version,
            fingerprint=fingerprint,
            kind="tabular",
            mode="snapshot",
            datastore=store_name,
            manifest_store=store_name,
            path=table_path,
            format="parquet",
            read_options=ReadOptions(),
            load_options=LoadOptions(),
            manifest=Manifest.of([table_file]),
            attachments={COCO: ManifestEntry.of(coco_file)},
            bytes=table_file.size + coco_file.size,
            snapshot_prefix=folder,
            table_schema=frame_schema(frame),
            row_count=len(frame),
            profile=frame_profile(frame),
            lineage=DatasetLineage(
                run_id=run_id, code_version=code_version, upstream=[images_upstream, project]
            ),
            description=spec.description or f"Labels of '{spec.images}' ({TASK_TITLES[spec.task]})",
            tags=dict(spec.tags),
        )

    return Registration(record=registry.register(name, build), created=True, frame=frame)
