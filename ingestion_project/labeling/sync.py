"""Keep a Label Studio project in step with its image dataset's latest version.

The first sync creates the project with the task's labeling configuration; every sync imports
only the images that have no task yet (we remember each image's task, see
``labeling.state``), reports the images the version no longer holds (their tasks and labels stay
in Label Studio, and are left out of exports), signs again the Azure URLs that are about to
expire, and pushes pre-labels to tasks that have none from the current source yet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ingestion_project.datasets.versions import logical_paths, manifest_store
from ingestion_project.datastores.base import FileDatastore
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.labeling.client import IMPORT_BATCH, LabelStudioClient
from ingestion_project.labeling.images import (
    IMAGE_SUFFIXES,
    ImageError,
    ImageFile,
    image_size,
    image_url,
    is_image,
    served_local_root,
)
from ingestion_project.labeling.label_config import label_config
from ingestion_project.labeling.results import prediction_result
from ingestion_project.labeling.spec import LabelingSpec
from ingestion_project.labeling.state import ProjectState, TaskState, read_state, write_state
from ingestion_project.records import DatasetVersionRecord

Progress = Callable[[str], None]
# Images imported between two writes of the state (in requests of IMPORT_BATCH): the state file
# grows with the project, so it is written once per this many new tasks, not per request.
CHECKPOINT_TASKS = 5_000


@dataclass(frozen=True)
class Prelabel:
    """A predicted label for one image, and which model or dataset version predicted it."""

    label: Any
    score: float | None
    source: str


@dataclass
class SyncReport:
    """What one sync did, for the asset's metadata and the CLI."""

    project_id: int
    project_url: str
    images_version: int
    images: int
    created_project: bool = False
    recreated_project: bool = False
    new_tasks: int = 0
    removed: list[str] = field(default_factory=list)
    not_images: int = 0
    resigned: int = 0
    prelabeled: int = 0
    repaired: int = 0
    unreadable: list[str] = field(default_factory=list)
    """Images Pillow cannot read: not imported (tried again next sync), so one bad file
    never blocks the others."""


def config_fingerprint(spec: LabelingSpec) -> str:
    payload = f"{label_config(spec)}\n{spec.instructions}\n{spec.title}"
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def version_images(record: DatasetVersionRecord) -> tuple[list[ImageFile], int]:
    """The version's image files by their dataset path, and how many other files it holds."""
    images, others = [], 0
    for path, info in zip(logical_paths(record), record.files(), strict=True):
        if is_image(path):
            images.append(ImageFile(path, info))
        else:
            others += 1
    return images, others


def sync_project(
    name: str,
    spec: LabelingSpec,
    images_record: DatasetVersionRecord,
    stores: Mapping[str, FileDatastore],
    state_store: FileDatastore,
    state_prefix: str,
    client: LabelStudioClient,
    *,
    prelabels: Mapping[str, Prelabel] | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> SyncReport:
    """Bring the project in step with ``images_record``; see the module's docstring."""
    say = progress or (lambda _message: None)
    now = now or datetime.now(UTC)
    where = f"labeling '{name}'"
    store = manifest_store(images_record, stores)
    images, not_images = version_images(images_record)
    if not images:
        raise ImageError(
            f"{where}: version {images_record.version} of dataset '{spec.images}' holds no image "
            f"files ({', '.join(sorted(IMAGE_SUFFIXES))}). Point the dataset's path at images."
        )
    state = read_state(state_store, state_prefix, name)
    fingerprint = config_fingerprint(spec)
    report_created = recreated = False
    project = None
    if state is not None and state.url == client.url:
        project = client.get_project(state.project_id)
        if project is None:
            say(f"Project {state.project_id} no longer exists in Label Studio: creating it again.")
            recreated = True
    if project is None:
        project = client.create_project(spec.title or name, label_config(spec), spec.instructions)
        state = ProjectState(
            url=client.url, project_id=int(project["id"]), config_fingerprint=fingerprint
        )
        # Recorded at once: a crash after this never creates a second project.
        write_state(state_store, state_prefix, name, state)
        report_created = not recreated
        link = client.project_url(state.project_id)
        say(f"Created Label Studio project {state.project_id} ({link}).")
    assert state is not None
    if state.config_fingerprint != fingerprint:
        client.update_project(
            state.project_id,
            {
                "title": (spec.title or name)[:50],
                "label_config": label_config(spec),
                "expert_instruction": spec.instructions,
                "show_instruction": bool(spec.instructions),
            },
        )
        state = state.model_copy(update={"config_fingerprint": fingerprint})
        write_state(state_store, state_prefix, name, state)
        say("Updated the project's labeling configuration and instructions.")
    report = SyncReport(
        project_id=state.project_id,
        project_url=client.project_url(state.project_id),
        images_version=images_record.version,
        images=len(images),
        created_project=report_created,
        recreated_project=recreated,
        not_images=not_images,
    )
    if isinstance(store, LocalDatastore) and not spec.image_urls.base_url:
        if state.serving_storage is None:
            root, _ = served_local_root(store, spec.image_urls, where=where)
            storage = client.add_local_files_storage(state.project_id, root)
            state = state.model_copy(update={"serving_storage": storage})
            write_state(state_store, state_prefix, name, state)
    tasks = dict(state.tasks)
    if state.in_flight:
        report.repaired = _repair(client, state, tasks, now)
        state = state.model_copy(update={"tasks": tasks, "in_flight": []})
        write_state(state_store, state_prefix, name, state)
    current = {image.path: image for image in images}
    new = [image for image in images if image.path not in tasks]
    report.removed = sorted(path for path in tasks if path not in current)
    expiry = timedelta(seconds=spec.image_urls.expiry_seconds)
    guesses = prelabels or {}
    for start in range(0, len(new), CHECKPOINT_TASKS):
        chunk = new[start : start + CHECKPOINT_TASKS]
        paths = [image.path for image in chunk]
        # Recorded before the import: a crash in it is repaired from Label Studio next time.
        state = state.model_copy(update={"in_flight": paths})
        write_state(state_store, state_prefix, name, state)
        for first in range(0, len(chunk), IMPORT_BATCH):
            batch = chunk[first : first + IMPORT_BATCH]
            payload, made = [], []
            for image in batch:
                try:
                    width, height = image_size(image, store, where=where)
                except ImageError as error:
                    report.unreadable.append(image.path)
                    say(str(error))
                    continue
                url = image_url(image, store, spec.image_urls, where=where)
                guess = guesses.get(image.path)
                payload.append(_new_task(spec, image.path, url.url, width, height, guess))
                made.append((image.path, width, height, url.expires, guess))
            ids = client.import_tasks(state.project_id, payload) if payload else []
            for (path, width, height, expires, guess), task_id in zip(made, ids, strict=True):
                tasks[path] = TaskState(
                    id=task_id,
                    width=width,
                    height=height,
                    expires=expires,
                    prelabel=guess.source if guess else None,
                )
                report.prelabeled += guess is not None
            report.new_tasks += len(made)
            say(f"Imported {report.new_tasks} of {len(new)} new images as tasks.")
        state = state.model_copy(update={"tasks": tasks, "in_flight": []})
        write_state(state_store, state_prefix, name, state)
    soon = now + expiry / 2
    for path, task in list(tasks.items()):
        if path not in current or task.expires is None or task.expires > soon:
            continue
        url = image_url(current[path], store, spec.image_urls, where=where)
        client.update_task_data(task.id, _task_data(path, url.url, task.width, task.height))
        tasks[path] = task.model_copy(update={"expires": url.expires})
        report.resigned += 1
    for path, guess in guesses.items():
        task = tasks.get(path)
        if task is None or path not in current or task.prelabel == guess.source:
            continue
        result = prediction_result(spec.task, guess.label, task.width, task.height, guess.score)
        client.create_prediction(task.id, result, guess.score, guess.source)
        tasks[path] = task.model_copy(update={"prelabel": guess.source})
        report.prelabeled += 1
    state = state.model_copy(
        update={
            "tasks": tasks,
            "removed": report.removed,
            "images_version": images_record.version,
            "synced_at": now,
        }
    )
    write_state(state_store, state_prefix, name, state)
    return report


def _new_task(
    spec: LabelingSpec,
    path: str,
    url: str,
    width: int,
    height: int,
    guess: Prelabel | None,
) -> dict[str, Any]:
    """A task to import: its data and, with a pre-label, the prediction labelers start from."""
    task: dict[str, Any] = {"data": _task_data(path, url, width, height)}
    if guess is not None:
        result = prediction_result(spec.task, guess.label, width, height, guess.score)
        prediction: dict[str, Any] = {"result": result, "model_version": guess.source}
        if guess.score is not None:
            prediction["score"] = guess.score
        task["predictions"] = [prediction]
    return task


def _task_data(path: str, url: str, width: int, height: int) -> dict[str, Any]:
    """A task's data: the image URL the labeler loads, and the image's path and size."""
    return {"image": url, "path": path, "width": width, "height": height}


def _repair(
    client: LabelStudioClient, state: ProjectState, tasks: dict[str, TaskState], now: datetime
) -> int:
    """An import that was not recorded (a crash): take the tasks it made from Label Studio.

    Their URLs count as expired, so this sync signs them again.
    """
    found: dict[str, dict[str, Any]] = {}
    wanted = set(state.in_flight)
    for task in client.tasks(state.project_id):
        data = task.get("data") or {}
        path = data.get("path")
        if path in wanted and path not in found:
            found[path] = data
            tasks[path] = TaskState(
                id=int(task["id"]),
                width=int(data.get("width") or 0),
                height=int(data.get("height") or 0),
                expires=now,
            )
    return len(found)
