"""What we remember of a labeling project between syncs, kept beside the registry's versions.

The project's id, and for each image path its task and the URL's expiry: so a sync imports only
new images (no duplicates, no rescan of Label Studio or the store), and a crash between an
import and the write that records it is repaired from Label Studio on the next sync
(``in_flight``).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ingestion_project.datastores.base import FileDatastore
from ingestion_project.records import (
    IsoDatetime,
    RecordModel,
    StoredRecord,
    read_record,
)


class TaskState(RecordModel):
    """One image's task: its id, its size, when its URL expires, which prediction it has."""

    id: int
    width: int
    height: int
    expires: IsoDatetime | None = None
    prelabel: str | None = None


class ProjectState(StoredRecord):
    """A labeling entry's Label Studio project and the tasks it holds, by image path."""

    label: ClassVar[str] = "labeling project state"

    url: str
    project_id: int
    config_fingerprint: str
    images_version: int | None = None
    serving_storage: int | None = None
    """The Local Files storage that lets Label Studio serve local images (None: not needed)."""
    tasks: dict[str, TaskState] = Field(default_factory=dict)
    removed: list[str] = Field(default_factory=list)
    in_flight: list[str] = Field(default_factory=list)
    synced_at: IsoDatetime | None = None


def state_path(prefix: str, name: str) -> str:
    root = prefix.strip("/")
    return f"{root}/labeling/{name}/project.json" if root else f"labeling/{name}/project.json"


def read_state(store: FileDatastore, prefix: str, name: str) -> ProjectState | None:
    path = state_path(prefix, name)
    try:
        payload = store.read_bytes(path)
    except FileNotFoundError:
        return None
    return read_record(ProjectState, payload, f"labeling '{name}' state ('{path}')")


def write_state(store: FileDatastore, prefix: str, name: str, state: ProjectState) -> None:
    """Pydantic's own serializer: the state holds a task per image, so it must be quick."""
    store.write_bytes(state_path(prefix, name), state.model_dump_json().encode())
