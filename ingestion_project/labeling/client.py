"""A small client for the parts of Label Studio's REST API that labeling projects use.

Plain ``requests`` against the documented endpoints (projects, import, tasks, predictions,
export snapshots, users), so that our own environment does not take Label Studio's pins. Every
failure becomes a :class:`LabelStudioError` that says what to do; the token never appears in one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import requests

from ingestion_project.labeling.spec import LabelStudioConnection

TASK_PAGE_SIZE = 500
IMPORT_BATCH = 500
SNAPSHOT_POLL_SECONDS = 0.5
GET_ATTEMPTS = 3


def project_title(title: str) -> str:
    """A title Label Studio accepts: 3 to 50 characters."""
    return (title if len(title) >= 3 else f"{title} labels")[:50]


class LabelStudioError(Exception):
    """Label Studio could not be reached, refused us, or answered what we did not expect."""


class LabelStudioClient:
    """One Label Studio server, authenticated by the token in the declared environment variable."""

    def __init__(self, connection: LabelStudioConnection, *, where: str) -> None:
        self.url = connection.url
        self.where = where
        self.timeout = connection.timeout_seconds
        token = os.environ.get(connection.token.env)
        if not token:
            raise LabelStudioError(
                f"{where}: environment variable {connection.token.env} is not set; it holds the "
                f"Label Studio API token. Copy the token from Label Studio (Account & Settings > "
                f"Access Token) into {connection.token.env} in the environment of the process "
                "that runs this (the run worker, the daemon's code server, or a .env file in the "
                "project root), then try again."
            )
        self._token_env = connection.token.env
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> LabelStudioClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def project_url(self, project_id: int) -> str:
        """Where people open the project in the browser."""
        return f"{self.url}/projects/{project_id}/data"

    # Projects.
    def create_project(self, title: str, label_config: str, instructions: str) -> dict[str, Any]:
        body = {
            "title": project_title(title),
            "label_config": label_config,
            "expert_instruction": instructions,
            "show_instruction": bool(instructions),
        }
        return self._request("POST", "/api/projects", json=body)

    def get_project(self, project_id: int) -> dict[str, Any] | None:
        """The project, or None when it no longer exists (deleted in Label Studio)."""
        return self._request("GET", f"/api/projects/{project_id}", missing_ok=True)

    def update_project(self, project_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Change title, configuration or instructions; refused if annotations do not fit."""
        return self._request("PATCH", f"/api/projects/{project_id}", json=fields)

    # Tasks.
    def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> list[int]:
        """Create ``tasks`` (each ``{"data": ..., "predictions": [...]}``); their ids, in order.

        Label Studio imports synchronously and never deduplicates: importing twice makes two.
        """
        answer = self._request(
            "POST",
            f"/api/projects/{project_id}/import",
            params={"return_task_ids": "true"},
            json=tasks,
        )
        ids = [int(task_id) for task_id in answer.get("task_ids", [])]
        if len(ids) != len(tasks):
            raise LabelStudioError(
                f"{self.where}: Label Studio created {len(ids)} tasks for {len(tasks)} images in "
                f"project {project_id}. Sync again: images already imported are recognised."
            )
        return ids

    def add_local_files_storage(self, project_id: int, path: str) -> int:
        """Let the project serve local files under ``path`` (Label Studio checks each request).

        Label Studio serves ``/data/local-files/`` only from folders of a Local Files storage of
        the user's projects. The storage is for serving alone: its regex matches no file, so a
        Sync pressed in its UI imports nothing (our syncs import the images).
        """
        answer = self._request(
            "POST",
            "/api/storages/localfiles",
            json={
                "project": project_id,
                "path": path,
                "use_blob_urls": True,
                "regex_filter": "$^",
                "title": "Images (served for ingestion_project; do not sync)",
            },
        )
        return int(answer["id"])

    def tasks(self, project_id: int) -> Iterator[dict[str, Any]]:
        """Every task of the project with its data and counts, a page at a time."""
        page = 1
        while True:
            answer = self._request(
                "GET",
                "/api/tasks",
                params={"project": project_id, "page": page, "page_size": TASK_PAGE_SIZE},
                missing_ok=True,  # past the last page
            )
            if answer is None:
                return
            tasks = answer.get("tasks", [])
            yield from tasks
            if not tasks or page * TASK_PAGE_SIZE >= answer.get("total", 0):
                return
            page += 1

    def update_task_data(self, task_id: int, data: dict[str, Any]) -> None:
        self._request("PATCH", f"/api/tasks/{task_id}", json={"data": data})

    def create_prediction(
        self, task_id: int, result: list[dict[str, Any]], score: float | None, model_version: str
    ) -> None:
        body: dict[str, Any] = {"task": task_id, "result": result, "model_version": model_version}
        if score is not None:
            body["score"] = score
        self._request("POST", "/api/predictions", json=body)

    # Export.
    def export_snapshot(self, project_id: int, title: str) -> list[dict[str, Any]]:
        """Every task with its annotations, through an export snapshot (not one long request).

        Label Studio builds the snapshot (in the background where it has a queue), we download
        its JSON, then delete it so snapshots do not pile up on the server.
        """
        # No annotation filter: naming one drops ground-truth annotations unless all three flags
        # are set. Annotators come as objects with their email.
        created = self._request(
            "POST",
            f"/api/projects/{project_id}/exports/",
            json={
                "title": title,
                "serialization_options": {"annotations__completed_by": {"only_id": False}},
            },
        )
        export_id = created["id"]
        deadline = time.monotonic() + max(self.timeout, 600)
        try:
            status = created.get("status")
            while status not in ("completed", "failed"):
                if time.monotonic() > deadline:
                    raise LabelStudioError(
                        f"{self.where}: Label Studio's export {export_id} of project {project_id} "
                        f"did not finish in {max(self.timeout, 600):.0f} s (status {status!r}). "
                        "Check its workers, then export again."
                    )
                time.sleep(SNAPSHOT_POLL_SECONDS)
                status = self._request(
                    "GET", f"/api/projects/{project_id}/exports/{export_id}"
                ).get("status")
            if status == "failed":
                raise LabelStudioError(
                    f"{self.where}: Label Studio's export {export_id} of project {project_id} "
                    "failed; its server log says why. Export again once it is fixed."
                )
            tasks = self._request(
                "GET",
                f"/api/projects/{project_id}/exports/{export_id}/download",
                params={"exportType": "JSON"},
            )
        finally:
            try:
                self._request("DELETE", f"/api/projects/{project_id}/exports/{export_id}")
            except LabelStudioError:
                pass  # a leftover snapshot on the server is harmless
        if not isinstance(tasks, list):
            raise LabelStudioError(
                f"{self.where}: the export of project {project_id} is not a list"
            )
        return tasks

    def _request(self, method: str, path: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        url = f"{self.url}{path}"
        attempts = GET_ATTEMPTS if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except requests.RequestException as error:
                if attempt < attempts:
                    time.sleep(0.5 * attempt)
                    continue
                raise LabelStudioError(
                    f"{self.where}: Label Studio at {self.url} cannot be reached "
                    f"({type(error).__name__}). Start it, or fix label_studio.url; then try again."
                ) from None
            if response.status_code >= 500 and attempt < attempts:
                time.sleep(0.5 * attempt)
                continue
            break
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code in (401, 403):
            raise LabelStudioError(
                f"{self.where}: Label Studio at {self.url} refused the token in "
                f"{self._token_env} ({response.status_code}). Put a valid API token there (Account "
                "& Settings > Access Token; a legacy token needs the server's "
                "--enable-legacy-api-token), then try again."
            )
        if response.status_code >= 400:
            detail = response.text[:300].replace("\n", " ")
            raise LabelStudioError(
                f"{self.where}: Label Studio answered {response.status_code} to {method} {path}: "
                f"{detail}"
            )
        if response.status_code == 204 or not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise LabelStudioError(
                f"{self.where}: Label Studio at {self.url} answered {method} {path} with something "
                "other than JSON: is label_studio.url the server's address?"
            ) from None
